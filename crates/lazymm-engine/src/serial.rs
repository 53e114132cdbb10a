//! A machine whose simulated CPUs are all played by one host thread.
//!
//! The native engine gives every CPU a thread of its own, so a CPU waiting for the IPIs
//! it sent simply spins until the targets' threads answer. A host that plays every CPU
//! on one thread (a trace replayer, a discrete-event simulator, a micro-benchmark) has
//! nobody to answer them: it keeps the CPUs here and hands this to the kernel as its
//! [`IpiHost`], so that a waiting CPU makes the targets run their pending calls right
//! away, in CPU order.
//!
//! What the machine keeps per CPU is the host's choice ([`OwnsCpu`]): bare `Cpu`s (the
//! replayer), or whole runqueues that own their `Cpu` (the simulator), so the IPI host
//! reaches a target's `Cpu` wherever the host keeps it.
//!
//! The host drives one CPU at a time through [`Serial::cpu`]. While a call into the
//! model runs on CPU `i`, the host must hold no other CPU's guard: the model may need
//! any other CPU to answer an IPI.

use crate::host::Runqueue;
use lazymm::{Arch, Config, Cpu, CpuMask, IpiHost, Kernel, Scheme};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a [`Serial`] machine keeps per CPU: something that owns that CPU's [`Cpu`].
pub trait OwnsCpu<S: Scheme, A: Arch>: Send + 'static {
    /// The CPU's own state.
    fn cpu_mut(&mut self) -> &mut Cpu<S, A>;
}

impl<S: Scheme, A: Arch> OwnsCpu<S, A> for Cpu<S, A> {
    #[inline]
    fn cpu_mut(&mut self) -> &mut Cpu<S, A> {
        self
    }
}

impl<S: Scheme, A: Arch, P: Send + 'static> OwnsCpu<S, A> for Runqueue<S, A, P> {
    #[inline]
    fn cpu_mut(&mut self) -> &mut Cpu<S, A> {
        &mut self.cpu
    }
}

/// A booted machine: its kernel (with the machine as its IPI host) and its CPUs.
pub type Booted<S, A, C> = (Kernel<S, A>, Arc<Serial<S, A, C>>);

/// Every CPU of one machine, played by one host thread; `C` is what the host keeps per
/// CPU (a bare [`Cpu`] by default).
///
/// # Invariants
/// `cpus[i]` owns CPU `i`. A guard is held only by the host's call into the model on
/// that CPU, or by [`IpiHost::run_ipis`] for the duration of one target's calls.
pub struct Serial<S: Scheme, A: Arch, C: OwnsCpu<S, A> = Cpu<S, A>> {
    cpus: Box<[Mutex<C>]>,
    _k: std::marker::PhantomData<fn() -> (S, A)>,
}

impl<S: Scheme, A: Arch> Serial<S, A> {
    /// Boots a machine whose CPUs this host thread plays, with this as its IPI host.
    pub fn boot(cfg: Config) -> (Kernel<S, A>, Arc<Serial<S, A>>) {
        Serial::boot_with(cfg, |_, cpus| cpus)
    }
}

impl<S: Scheme, A: Arch, C: OwnsCpu<S, A>> Serial<S, A, C> {
    /// Boots a machine and lets the host wrap each booted `Cpu` (in CPU order) into what
    /// it keeps per CPU, with this as the kernel's IPI host.
    pub fn boot_with(
        cfg: Config,
        wrap: impl FnOnce(&Kernel<S, A>, Vec<Cpu<S, A>>) -> Vec<C>,
    ) -> Booted<S, A, C> {
        let (mut k, cpus) = Kernel::<S, A>::boot(cfg);
        let held = wrap(&k, cpus);
        let serial = Arc::new(Serial {
            cpus: held.into_iter().map(Mutex::new).collect(),
            _k: std::marker::PhantomData,
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

    /// CPU `i` (what the host keeps for it), for one call into the model.
    pub fn cpu(&self, i: usize) -> MutexGuard<'_, C> {
        self.cpus[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the CPUs back (when the run is over).
    pub fn into_cpus(self) -> Vec<C> {
        self.cpus
            .into_vec()
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}

impl<S: Scheme, A: Arch, C: OwnsCpu<S, A>> IpiHost<S, A> for Serial<S, A, C> {
    fn run_ipis(&self, k: &Kernel<S, A>, waiter: &mut Cpu<S, A>, targets: &CpuMask) -> bool {
        let mut ran = false;
        for t in targets.iter().filter(|&t| t != waiter.id) {
            // A target whose guard is held is in the middle of a call into the model on
            // this same thread (the host broke the rule above); it cannot answer now.
            if let Ok(mut held) = self.cpus[t].try_lock() {
                ran |= k.flush_smp_call_function_queue(held.cpu_mut());
            }
        }
        ran
    }
}
