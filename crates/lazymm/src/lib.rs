//! lazymm: an executable model of how a kernel keeps lazily used address spaces alive.
//!
//! A kernel thread or the idle task does not switch page tables: it keeps running on the
//! previous user task's address space ("lazy TLB mode"). Something must keep that
//! address space from being freed while a CPU still has it loaded. This crate models the
//! schemes that do it, side by side, on the same generic kernel code:
//!
//! - [`mm`]: the mm arena, with generation-checked handles, so a use-after-free is
//!   reported, never performed;
//! - [`task`], [`cpu`]: tasks and per-CPU state (the runqueue fields, the IPI mailbox);
//! - [`sched`], [`lifecycle`]: `context_switch`, `finish_task_switch`, fork, exit, exec,
//!   `kthread_use_mm`, hotplug — in the kernel's order, written once;
//! - [`scheme`]: the [`Scheme`] trait and each scheme;
//! - [`arch`]: the [`Arch`] trait and each architecture layer;
//! - [`profile`]: kernel profiles, the scheme-independent shared accesses of a kernel
//!   version (switch, wakeup, idle) and its cache-line layout;
//! - [`field`]: what each shared word is, as every recorded access names it;
//! - [`oracle`]: the safety properties, checked as the model runs;
//! - [`sync`]: the one facade for atomics (std, or loom under `cfg(loom)`).
//!
//! The model does no I/O and starts no threads: hosts (the native engine, the checker)
//! drive it, one host thread or one scheduled actor per simulated CPU.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod arch;
pub mod config;
pub mod cpu;
pub mod cpumask;
pub mod field;
pub mod ipi;
pub mod kernel;
pub mod lifecycle;
pub mod mm;
pub mod mutant;
pub mod oracle;
pub mod profile;
pub mod sched;
pub mod scheme;
pub mod smp;
pub mod sync;
pub mod task;
pub mod tracepoint;

pub use arch::Arch;
pub use config::Config;
pub use cpu::{Cpu, CpuShared, IrqGuard, LazyMm};
pub use cpumask::CpuMask;
pub use ipi::Ipi;
pub use kernel::{Kernel, MAX_CPUS};
pub use mm::{MmCount, MmId, MmUsers};
pub use mutant::{Exercise, Kind, Mutant, MutantInfo, Setting};
pub use oracle::{Property, Stats, TeardownHist, Violation, ViolationKind};
pub use profile::{Item, Profile};
pub use scheme::Scheme;
pub use smp::IpiHost;
pub use task::{Task, TaskMm};
