//! What a shared word is: the kernel field it models ([`Field`]) and the object it
//! belongs to, set where the word is constructed ([`Tag`]), so every recorded access
//! names what it touched without a consumer guessing from addresses.
//!
//! Which fields share a cache line is not the host's allocator's business but the kernel
//! profile's ([`crate::profile::Profile::layout`]): a CPU's [`Acct`](crate::sync::Acct)
//! stamps each recorded access with the line group of its field under the profile, and a
//! host that prices coherence keys its lines by [`Access::line`](crate::sync::Access::line)
//! (group, object, line within the object), never by the host address.

/// A kernel field the model keeps in shared memory (or that a kernel profile adds).
///
/// Names are the kernel's (`include/linux/mm_types.h`, `kernel/sched/sched.h`,
/// `arch/x86/include/asm/tlbflush.h`, `kernel/smp.c`, `kernel/sched/fair.c`, `kernel/fork.c`,
/// `kernel/pid.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    /// Not a memory word: a fence, a page-table-root write, an IPI, a wait.
    None = 0,
    /// `mm->mm_users`.
    MmUsers,
    /// `mm->mm_count`.
    MmCount,
    /// `mm_cpumask(mm)`.
    MmCpumask,
    /// `mm->membarrier_state`.
    MembarrierState,
    /// `mm->context.tlb_gen` (x86).
    TlbGen,
    /// The mm's concurrency-ID state the scheduler reads or locks on a switch
    /// (`mm->cid_lock` in v6.3, the read-mostly `mm->pcpu_cid` pointer from v6.4, the
    /// `mm->mm_cid` mode word from v6.19); added by a profile.
    MmCid,
    /// `mm_cidmask(mm)`, the bitmap of allocated concurrency IDs; added by a profile.
    MmCidMask,
    /// `rq->curr` (the mm of the task that runs, as `membarrier()` reads it).
    RqCurr,
    /// `rq->__lock`.
    RqLock,
    /// `per_cpu(call_single_queue, cpu)`: a CPU's IPI mailbox and the wake list
    /// `ttwu_queue_wakelist` queues on.
    CallSingleQueue,
    /// The sender's `call_single_data` (the call record its targets read).
    CallSingleData,
    /// `cpu_online_mask`.
    CpuOnlineMask,
    /// `cpu_tlbstate.loaded_mm` (x86), on the line of `cpu_tlbstate_shared.is_lazy` in
    /// the model.
    LoadedMm,
    /// `cpu_tlbstate_shared.is_lazy` (x86).
    IsLazy,
    /// `rq->lazy_mm` (`hazptr-luto`).
    RqLazyMm,
    /// `rq->drop_mm` (`hazptr-luto`), on the line of `rq->lazy_mm`.
    RqDropMm,
    /// A CPU's hazard-pointer slot (`hazptr-mathieu`).
    HazardSlot,
    /// `nohz.idle_cpus_mask`; added by a profile.
    NohzIdleCpusMask,
    /// `nohz.nr_cpus` (and `nohz.has_blocked`, on the same line); added by a profile.
    NohzNrCpus,
    /// `tasklist_lock` (`kernel/fork.c`), the machine-wide rwlock fork and exit take
    /// for writing; added by a profile.
    TasklistLock,
    /// `pidmap_lock` (`kernel/pid.c`), the machine-wide spinlock of PID allocation and
    /// freeing; added by a profile.
    PidmapLock,
    /// `mm->mmap_lock`, the mm's rwsem (its count word); added by a profile.
    MmapLock,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 23] = [
        Field::None,
        Field::MmUsers,
        Field::MmCount,
        Field::MmCpumask,
        Field::MembarrierState,
        Field::TlbGen,
        Field::MmCid,
        Field::MmCidMask,
        Field::RqCurr,
        Field::RqLock,
        Field::CallSingleQueue,
        Field::CallSingleData,
        Field::CpuOnlineMask,
        Field::LoadedMm,
        Field::IsLazy,
        Field::RqLazyMm,
        Field::RqDropMm,
        Field::HazardSlot,
        Field::NohzIdleCpusMask,
        Field::NohzNrCpus,
        Field::TasklistLock,
        Field::PidmapLock,
        Field::MmapLock,
    ];

    /// How many fields there are.
    pub const COUNT: usize = Field::ALL.len();

    /// The kernel's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Field::None => "none",
            Field::MmUsers => "mm_users",
            Field::MmCount => "mm_count",
            Field::MmCpumask => "mm_cpumask",
            Field::MembarrierState => "membarrier_state",
            Field::TlbGen => "tlb_gen",
            Field::MmCid => "mm_cid",
            Field::MmCidMask => "mm_cidmask",
            Field::RqCurr => "rq->curr",
            Field::RqLock => "rq->lock",
            Field::CallSingleQueue => "call_single_queue",
            Field::CallSingleData => "call_single_data",
            Field::CpuOnlineMask => "cpu_online_mask",
            Field::LoadedMm => "loaded_mm",
            Field::IsLazy => "is_lazy",
            Field::RqLazyMm => "rq->lazy_mm",
            Field::RqDropMm => "rq->drop_mm",
            Field::HazardSlot => "hazard_slot",
            Field::NohzIdleCpusMask => "nohz.idle_cpus_mask",
            Field::NohzNrCpus => "nohz.nr_cpus",
            Field::TasklistLock => "tasklist_lock",
            Field::PidmapLock => "pidmap_lock",
            Field::MmapLock => "mmap_lock",
        }
    }

    /// The field whose line this one shares in the model's own structures, before any
    /// profile moves it (words the model keeps together on one padded line).
    pub(crate) const fn base_group(self) -> Field {
        match self {
            Field::IsLazy => Field::LoadedMm,
            Field::RqDropMm => Field::RqLazyMm,
            f => f,
        }
    }
}

/// What one shared word is: its field, the object it belongs to (an arena slot for an
/// mm's fields, a CPU for per-CPU fields, 0 for machine-wide ones) and which line of
/// that field of that object it sits on (a mask's 16-word line, 0 otherwise).
///
/// # Invariants
/// Two words with equal `field`, `obj` and `sub` are on the same cache line of the
/// model; the model never gives two different lines the same tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The field.
    pub field: Field,
    /// The line group the recording CPU's profile puts the field on (set when the
    /// access is recorded; [`Field::None`] until then).
    pub group: Field,
    /// Which line of the object's field (mask words: word / 16).
    pub sub: u16,
    /// The object: arena slot, CPU, or 0.
    pub obj: u32,
}

impl Tag {
    /// The word of `field` of object `obj` (line 0 of it).
    pub const fn new(field: Field, obj: u32) -> Tag {
        Tag {
            field,
            group: Field::None,
            sub: 0,
            obj,
        }
    }

    /// Line `sub` of `field` of object `obj`.
    pub const fn line(field: Field, obj: u32, sub: u16) -> Tag {
        Tag {
            field,
            group: Field::None,
            sub,
            obj,
        }
    }

    /// Not a memory word (fences, root writes), or the CPU `obj` an IPI goes to.
    pub const NONE: Tag = Tag::new(Field::None, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_field_once_in_order() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f:?}");
        }
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::COUNT);
    }
}
