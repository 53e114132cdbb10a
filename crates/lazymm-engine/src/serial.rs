//! A machine whose simulated CPUs are all played by one host thread.
//!
//! The native engine gives every CPU a thread of its own, so a CPU waiting for the IPIs
//! it sent simply spins until the targets' threads answer. A host that plays every CPU
//! on one thread (a trace replayer, a discrete-event simulator, a micro-benchmark) has
//! nobody to answer them: it keeps the CPUs here and hands this to the kernel as its
//! [`IpiHost`], so that a waiting CPU makes the targets run their pending calls right
//! away, in CPU order.
//!
//! The host drives one CPU at a time through [`Serial::cpu`]. While a call into the
//! model runs on CPU `i`, the host must hold no other CPU's guard: the model may need
//! any other CPU to answer an IPI.

use lazymm::{Arch, Config, Cpu, CpuMask, IpiHost, Kernel, Scheme};
use std::sync::{Arc, Mutex, MutexGuard};

/// Every CPU of one machine, played by one host thread.
///
/// # Invariants
/// `cpus[i].id == i`. A guard is held only by the host's call into the model on that CPU,
/// or by [`IpiHost::run_ipis`] for the duration of one target's calls.
pub struct Serial<S: Scheme, A: Arch> {
    cpus: Box<[Mutex<Cpu<S, A>>]>,
}

impl<S: Scheme, A: Arch> Serial<S, A> {
    /// Boots a machine whose CPUs this host thread plays, with this as its IPI host.
    pub fn boot(cfg: Config) -> (Kernel<S, A>, Arc<Serial<S, A>>) {
        let (mut k, cpus) = Kernel::<S, A>::boot(cfg);
        let serial = Arc::new(Serial {
            cpus: cpus.into_iter().map(Mutex::new).collect(),
        });
        k.set_ipi_host(serial.clone());
        (k, serial)
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    /// Whether the machine has no CPU (never: a machine boots with at least one).
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// CPU `i`, for one call into the model.
    pub fn cpu(&self, i: usize) -> MutexGuard<'_, Cpu<S, A>> {
        self.cpus[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the CPUs back (when the run is over).
    pub fn into_cpus(self) -> Vec<Cpu<S, A>> {
        self.cpus
            .into_vec()
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}

impl<S: Scheme, A: Arch> IpiHost<S, A> for Serial<S, A> {
    fn run_ipis(&self, k: &Kernel<S, A>, waiter: &mut Cpu<S, A>, targets: &CpuMask) -> bool {
        let mut ran = false;
        for t in targets.iter().filter(|&t| t != waiter.id) {
            // A target whose guard is held is in the middle of a call into the model on
            // this same thread (the host broke the rule above); it cannot answer now.
            if let Ok(mut cpu) = self.cpus[t].try_lock() {
                ran |= k.flush_smp_call_function_queue(&mut cpu);
            }
        }
        ran
    }
}
