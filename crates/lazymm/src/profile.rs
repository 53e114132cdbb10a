//! Kernel profiles: the scheme-independent shared accesses a kernel's context switch,
//! remote wakeup, idle entry and exit, fork and exit make, and which fields share a
//! cache line, for
//! the kernels users run and the states just before and after the commits that changed
//! them.
//!
//! A [`Profile`] is a set of [`Item`]s, each on or off, and a name. Every host runs the
//! model's own paths, so every host performs a profile's accesses: `context_switch`
//! (`mm_cid`, the x86 `mm_cpumask` test, the wake list's drain), idle entry and exit
//! (nohz idle accounting), and the remote wakeup ([`Kernel::ttwu_accesses`](crate::Kernel::ttwu_accesses), called by
//! the host layer where it wakes a task on another CPU), fork (`Kernel::fork`,
//! `Kernel::clone_thread`: `pidmap_lock`, `tasklist_lock`) and exit (`Kernel::exit_mm`:
//! `mmap_lock`; `Kernel::do_exit`: `tasklist_lock`, `pidmap_lock`). The layout item moves
//! `mm_count` on or off the line of the mm's other hot fields: which fields share a line
//! is the profile's ([`Profile::layout`]), stamped on every recorded access, so a host
//! that prices coherence needs no change when a field moves.
//!
//! The default profile is [`Profile::BARE`] (`bare`): the accesses the model made before
//! profiles existed (the scheme's and the arch's own, x86's `mm_cpumask` test on a
//! same-mm switch included, every field on its own line), so results recorded before
//! profiles keep their meaning.
//!
//! # Simplifications (named)
//! - The `mm_cid` variants are reduced to the shared accesses a switch makes on the
//!   mm's lines; the per-CPU slots (local lines) and the periodic compaction scan
//!   (`task_mm_cid_work`) are left out.
//! - nohz idle accounting: every idle entry stops the tick (`nohz_balance_enter_idle`),
//!   and the exit side (`nohz_balance_exit_idle`, which the kernel runs from the next
//!   busy tick) is performed at idle exit.
//! - The wake list: the target's drain (`sched_ttwu_pending`'s `llist_del_all`) is
//!   performed at the target's next `context_switch`, not from its IPI or idle loop; the
//!   wakeup IPI itself is the host's (it is a host event, not a model access).
//! - Fork and exit: only the machine-wide locks and the mm's `mmap_lock`; the parent's
//!   `sighand->siglock` and `signal_struct` counters, `mm_init_cid` and
//!   `sched_mm_cid_exit` are left out. `release_task` runs on the exiting CPU right
//!   after `exit_notify` (a thread reaps itself there; a process's parent would run it
//!   from `wait`, on its own CPU). One PID-namespace level (the root).

use crate::field::Field;
use crate::sync::raw;
use core::fmt;

/// One switchable part of a kernel profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Item {
    /// `mm_count` on a cache line of its own. Before c1753fd02a00 ("mm: Move mm_count
    /// into its own cache line", v6.4) it shared a line with the mm's read-mostly hot
    /// fields (`mm_users`, `membarrier_state`, the `mm_cid` state), so every lazy
    /// reference RMW invalidated the line every switching CPU reads.
    MmCountOwnLine,
    /// x86 `switch_mm_irqs_off`, same mm: `cpumask_test_cpu(cpu, mm_cpumask(next))`
    /// (sets the bit if clear) on every switch. From 7e33001b8b ("x86/mm/tlb: Put
    /// cpumask_test_cpu() check in switch_mm_irqs_off() under CONFIG_DEBUG_VM", v6.14)
    /// it runs only under `CONFIG_DEBUG_VM`. No effect on other archs.
    SwitchMmCpumaskTest,
    /// `mm_cid` as introduced by af7f588d8f73 ("sched: Introduce per-memory-map
    /// concurrency ID", v6.3): each switch into or out of a user task takes
    /// `mm->cid_lock` and finds, sets or clears a bit of `mm_cidmask(mm)`.
    MmCidLock,
    /// `mm_cid` after 223baf9d17f2 ("sched: Fix performance regression introduced by
    /// mm_cid", v6.4, to v6.18): per-CPU IDs; a switch into or out of a user task reads
    /// the mm's read-mostly `mm->pcpu_cid` pointer (and touches only its own per-CPU
    /// slot).
    MmCidPercpu,
    /// `mm_cid` after the rewrite ("sched: Rewrite MM CID management", Thomas Gleixner,
    /// v6.19): per-task IDs while the threads fit the CPUs; a switch into a user task
    /// reads the mm's `mm_cid` mode word. A simplification of the series' fast path.
    MmCidTask,
    /// x86: a lazy return to the same mm reads `next->context.tlb_gen` (b956575bed91,
    /// "x86/mm: Rework lazy TLB mode and TLB freshness tracking", v4.14). Part of the x86
    /// protocol the checker verifies: it cannot be switched off.
    TlbGenLazyReturn,
    /// A remote wakeup (`try_to_wake_up` → `ttwu_queue`) takes the target's `rq->lock`.
    TtwuRqLock,
    /// `TTWU_QUEUE`: a remote wakeup whose target shares no cache with the waker, or is
    /// idle (f3dd3f674555, v6.0), queues on the target's wake list
    /// (`ttwu_queue_wakelist`: `llist_add` on `call_single_queue`) instead of taking its
    /// lock; the target drains it. Needs [`Item::TtwuRqLock`] for the other wakeups.
    TtwuQueue,
    /// nohz idle accounting: idle entry with the tick stopped runs
    /// `nohz_balance_enter_idle` (sets the CPU in `nohz.idle_cpus_mask`, increments
    /// `nohz.nr_cpus`), and leaving idle `nohz_balance_exit_idle` (the reverse).
    NohzIdle,
    /// `tasklist_lock`, taken for writing by `copy_process` (to link the child into
    /// the task list and its thread group), by `exit_notify` and by `release_task`
    /// (`kernel/fork.c`, `kernel/exit.c`): one machine-wide line that every fork and
    /// exit writes, whatever the lazy-mm scheme.
    TasklistLock,
    /// `pidmap_lock`: `alloc_pid` takes it around `idr_alloc` (once per PID-namespace
    /// level) and again to publish the PID (`idr_replace`, `pid_allocated++`);
    /// `free_pid` takes it once (`kernel/pid.c`, since the IDR conversion 95846ecf9dac,
    /// v4.15).
    PidmapLock,
    /// `exit_mm` holds `mmap_read_lock(mm)` around dropping `current->mm`
    /// (`kernel/exit.c`): a read-side RMW and its release on the mm's `mmap_lock`, the
    /// line every thread of the process shares.
    ExitMmMmapLock,
}

impl Item {
    /// Every item.
    pub const ALL: [Item; 12] = [
        Item::MmCountOwnLine,
        Item::SwitchMmCpumaskTest,
        Item::MmCidLock,
        Item::MmCidPercpu,
        Item::MmCidTask,
        Item::TlbGenLazyReturn,
        Item::TtwuRqLock,
        Item::TtwuQueue,
        Item::NohzIdle,
        Item::TasklistLock,
        Item::PidmapLock,
        Item::ExitMmMmapLock,
    ];

    /// Its name on the command line (`--profile-item NAME=on|off`).
    pub const fn name(self) -> &'static str {
        match self {
            Item::MmCountOwnLine => "mm-count-own-line",
            Item::SwitchMmCpumaskTest => "switch-mm-cpumask-test",
            Item::MmCidLock => "mm-cid-lock",
            Item::MmCidPercpu => "mm-cid-percpu",
            Item::MmCidTask => "mm-cid-task",
            Item::TlbGenLazyReturn => "tlb-gen-lazy-return",
            Item::TtwuRqLock => "ttwu-rq-lock",
            Item::TtwuQueue => "ttwu-queue",
            Item::NohzIdle => "nohz-idle",
            Item::TasklistLock => "tasklist-lock",
            Item::PidmapLock => "pidmap-lock",
            Item::ExitMmMmapLock => "exit-mm-mmap-lock",
        }
    }

    /// The kernel function or field it is about, as the kernel names it.
    pub const fn kernel_name(self) -> &'static str {
        match self {
            Item::MmCountOwnLine => "mm_struct.mm_count",
            Item::SwitchMmCpumaskTest => "switch_mm_irqs_off: cpumask_test_cpu(mm_cpumask)",
            Item::MmCidLock => "switch_mm_cid: mm->cid_lock, mm_cidmask",
            Item::MmCidPercpu => "switch_mm_cid: mm->pcpu_cid",
            Item::MmCidTask => "mm_cid_switch_to: mm->mm_cid",
            Item::TlbGenLazyReturn => "switch_mm_irqs_off: next->context.tlb_gen",
            Item::TtwuRqLock => "ttwu_queue: rq->lock",
            Item::TtwuQueue => "ttwu_queue_wakelist: call_single_queue",
            Item::NohzIdle => "nohz_balance_enter_idle / nohz_balance_exit_idle",
            Item::TasklistLock => "copy_process, exit_notify, release_task: tasklist_lock",
            Item::PidmapLock => "alloc_pid, free_pid: pidmap_lock",
            Item::ExitMmMmapLock => "exit_mm: mmap_read_lock(mm)",
        }
    }

    /// The commit that introduced or changed it, and the first kernel with that change.
    pub const fn commit(self) -> &'static str {
        match self {
            Item::MmCountOwnLine => "c1753fd02a00 (v6.4): on from there",
            Item::SwitchMmCpumaskTest => {
                "7e33001b8b (v6.14): off from there (CONFIG_DEBUG_VM only)"
            }
            Item::MmCidLock => "af7f588d8f73 (v6.3), until 223baf9d17f2 (v6.4)",
            Item::MmCidPercpu => "223baf9d17f2 (v6.4), until the v6.19 rewrite",
            Item::MmCidTask => "\"sched: Rewrite MM CID management\" series (v6.19)",
            Item::TlbGenLazyReturn => "b956575bed91 (v4.14)",
            Item::TtwuRqLock => "before v2.6 (ttwu_queue: rq_lock)",
            Item::TtwuQueue => "317f394160e9 (v3.0); idle targets f3dd3f674555 (v6.0)",
            Item::NohzIdle => "nohz_balance_enter_idle (v3.x), unchanged since v5.x",
            Item::TasklistLock => "before v2.6 (write_lock_irq(&tasklist_lock))",
            Item::PidmapLock => "95846ecf9dac (v4.15): the PID IDR under pidmap_lock",
            Item::ExitMmMmapLock => {
                "before v2.6 (down_read(&mm->mmap_sem); mmap_read_lock from d8ed45c5dcd4, v5.8)"
            }
        }
    }

    /// The item named `name`.
    pub fn by_name(name: &str) -> Option<Item> {
        Item::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The `mm_cid` items, of which at most one is on.
    const MM_CID: [Item; 3] = [Item::MmCidLock, Item::MmCidPercpu, Item::MmCidTask];
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel profile: a name and the set of items that are on.
///
/// # Invariants
/// At most one of the `mm_cid` items is on; [`Item::TlbGenLazyReturn`] is always on;
/// [`Item::TtwuQueue`] is on only with [`Item::TtwuRqLock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    name: &'static str,
    items: u16,
    /// Whether items were switched after the preset was chosen (the name then reads
    /// `NAME+`).
    custom: bool,
}

const fn bits(items: &[Item]) -> u16 {
    let mut b = 0;
    let mut i = 0;
    while i < items.len() {
        b |= 1 << items[i] as u16;
        i += 1;
    }
    b
}

const fn preset(name: &'static str, items: &[Item]) -> Profile {
    Profile {
        name,
        items: bits(items),
        custom: false,
    }
}

use Item::*;

impl Profile {
    /// `bare`, the default: only what the model did before profiles (x86's
    /// `mm_cpumask` test on a same-mm switch and its `tlb_gen` read; every field on its
    /// own line; no scheduler or idle accesses).
    pub const BARE: Profile = preset(
        "bare",
        &[MmCountOwnLine, SwitchMmCpumaskTest, TlbGenLazyReturn],
    );

    /// Every preset, with what it stands for.
    pub const PRESETS: [(Profile, &'static str); 11] = [
        (Profile::BARE, "the model before profiles (default)"),
        (
            preset(
                "6.1",
                &[
                    SwitchMmCpumaskTest,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "v6.1 (LTS): mm_count shares its line, no mm_cid",
        ),
        (
            preset(
                "6.6",
                &[
                    MmCountOwnLine,
                    SwitchMmCpumaskTest,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "v6.6 (LTS): mm_count on its own line, per-CPU mm_cid",
        ),
        (
            preset(
                "6.12",
                &[
                    MmCountOwnLine,
                    SwitchMmCpumaskTest,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "v6.12 (LTS): as v6.6 for these items",
        ),
        (
            preset(
                "mainline-2026",
                &[
                    MmCountOwnLine,
                    MmCidTask,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "mainline as of 2026 (v6.19+): mm_cpumask test under CONFIG_DEBUG_VM, rewritten mm_cid",
        ),
        (
            preset(
                "pre-af7f588d8f",
                &[
                    SwitchMmCpumaskTest,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "the parent of af7f588d8f73 (v6.2 state)",
        ),
        (
            preset(
                "af7f588d8f",
                &[
                    SwitchMmCpumaskTest,
                    MmCidLock,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "af7f588d8f73: mm_cid under mm->cid_lock, mm_count still shares its line",
        ),
        (
            preset(
                "pre-c1753fd02a00",
                &[
                    SwitchMmCpumaskTest,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "the parent of c1753fd02a00 (v6.4-rc: per-CPU mm_cid, mm_count shares its line)",
        ),
        (
            preset(
                "c1753fd02a00",
                &[
                    MmCountOwnLine,
                    SwitchMmCpumaskTest,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "c1753fd02a00: mm_count on its own line",
        ),
        (
            preset(
                "pre-7e33001b8b",
                &[
                    MmCountOwnLine,
                    SwitchMmCpumaskTest,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "the parent of 7e33001b8b (v6.13-rc)",
        ),
        (
            preset(
                "7e33001b8b",
                &[
                    MmCountOwnLine,
                    MmCidPercpu,
                    TlbGenLazyReturn,
                    TtwuRqLock,
                    TtwuQueue,
                    NohzIdle,
                    TasklistLock,
                    PidmapLock,
                    ExitMmMmapLock,
                ],
            ),
            "7e33001b8b: the mm_cpumask test only under CONFIG_DEBUG_VM",
        ),
    ];

    /// The preset named `name`.
    pub fn by_name(name: &str) -> Option<Profile> {
        Profile::PRESETS
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| p.name == name)
    }

    /// The preset names, comma-separated (for error messages).
    pub fn names() -> String {
        let v: Vec<&str> = Profile::PRESETS.iter().map(|(p, _)| p.name).collect();
        v.join(", ")
    }

    /// Its name: the preset's, with `+` once an item was switched.
    pub fn name(&self) -> String {
        if self.custom {
            format!("{}+", self.name)
        } else {
            self.name.to_string()
        }
    }

    /// The preset it started from.
    pub fn preset_name(&self) -> &'static str {
        self.name
    }

    /// Whether `item` is on.
    #[inline(always)]
    pub const fn has(&self, item: Item) -> bool {
        self.items & (1 << item as u16) != 0
    }

    /// The items that are on.
    pub fn items(&self) -> impl Iterator<Item = Item> + '_ {
        Item::ALL.into_iter().filter(|i| self.has(*i))
    }

    /// Switches `item` on or off. Switching one `mm_cid` item on switches the others
    /// off; switching `ttwu-rq-lock` off switches `ttwu-queue` off, and `ttwu-queue` on
    /// switches `ttwu-rq-lock` on.
    pub fn set(&mut self, item: Item, on: bool) -> Result<(), ItemError> {
        if item == TlbGenLazyReturn && !on {
            return Err(ItemError::Fixed(item));
        }
        let before = self.items;
        if on {
            if Item::MM_CID.contains(&item) {
                for i in Item::MM_CID {
                    self.items &= !(1 << i as u16);
                }
            }
            if item == TtwuQueue {
                self.items |= 1 << TtwuRqLock as u16;
            }
            self.items |= 1 << item as u16;
        } else {
            self.items &= !(1 << item as u16);
            if item == TtwuRqLock {
                self.items &= !(1 << TtwuQueue as u16);
            }
        }
        self.custom |= self.items != before;
        Ok(())
    }

    /// Applies one `ITEM=on|off` switch.
    pub fn apply(&mut self, switch: &str) -> Result<(), ItemError> {
        let (name, value) = switch
            .split_once('=')
            .ok_or_else(|| ItemError::Syntax(switch.to_string()))?;
        let item = Item::by_name(name).ok_or_else(|| ItemError::Unknown(name.to_string()))?;
        let on = match value {
            "on" => true,
            "off" => false,
            _ => return Err(ItemError::Value(value.to_string())),
        };
        self.set(item, on)
    }

    /// The `ITEM=on|off` switches that make this profile from its preset, in item
    /// order (empty for a preset).
    pub fn switches(&self) -> Vec<String> {
        let base = Profile::by_name(self.name).unwrap_or(Profile::BARE);
        Item::ALL
            .into_iter()
            .filter(|i| base.has(*i) != self.has(*i))
            .map(|i| format!("{}={}", i.name(), if self.has(i) { "on" } else { "off" }))
            .collect()
    }

    /// The preset `name` with `switches` (`ITEM=on|off`) applied, as the command line's
    /// `--kernel NAME --profile-item ITEM=on|off ...` builds it.
    pub fn build(name: &str, switches: &[String]) -> Result<Profile, ProfileError> {
        let mut p =
            Profile::by_name(name).ok_or_else(|| ProfileError::Unknown(name.to_string()))?;
        for s in switches {
            p.apply(s).map_err(ProfileError::Item)?;
        }
        Ok(p)
    }

    /// The profile of a real kernel: the preset nearest release `major.minor` for the
    /// items it has, then its configuration: `CONFIG_DEBUG_VM` keeps x86's `mm_cpumask`
    /// test after 7e33001b8b, no `CONFIG_SCHED_MM_CID` means no `mm_cid`, no
    /// `CONFIG_NO_HZ_COMMON` no nohz idle accounting.
    pub fn for_kernel(
        (major, minor): (u32, u32),
        debug_vm: bool,
        sched_mm_cid: bool,
        no_hz_common: bool,
    ) -> Profile {
        let v = (major, minor);
        let name = if v < (6, 3) {
            "6.1"
        } else if v < (6, 4) {
            "af7f588d8f"
        } else if v < (6, 7) {
            "6.6"
        } else if v < (6, 14) {
            "6.12"
        } else if v < (6, 19) {
            "7e33001b8b"
        } else {
            "mainline-2026"
        };
        let mut p = Profile::by_name(name).unwrap_or(Profile::BARE);
        let mut set = |i: Item, on: bool| {
            // INVARIANT: only switchable items are set here.
            let _ = p.set(i, on);
        };
        if debug_vm {
            set(SwitchMmCpumaskTest, true);
        }
        if !sched_mm_cid {
            for i in Item::MM_CID {
                set(i, false);
            }
        }
        if !no_hz_common {
            set(NohzIdle, false);
        }
        p
    }

    /// The line group of every field under this profile (indexed by [`Field`]): equal
    /// groups share a line of one object.
    pub fn layout(&self) -> [Field; Field::COUNT] {
        let mut l = Field::ALL.map(Field::base_group);
        if !self.has(MmCountOwnLine) {
            // Before c1753fd02a00: mm_count beside mm_users, membarrier_state and the
            // mm_cid state (include/linux/mm_types.h of v6.1 to v6.3).
            for f in [Field::MmUsers, Field::MmCount, Field::MembarrierState] {
                l[f as usize] = Field::MmCid;
            }
        }
        l
    }

    /// A one-line summary: name and items on.
    pub fn describe(&self) -> String {
        let v: Vec<&str> = self.items().map(Item::name).collect();
        format!("{} [{}]", self.name(), v.join(", "))
    }
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::BARE
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A bad `ITEM=on|off` switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemError {
    /// Not `ITEM=on|off`.
    Syntax(String),
    /// No such item.
    Unknown(String),
    /// Neither `on` nor `off`.
    Value(String),
    /// The item cannot be switched off.
    Fixed(Item),
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Item::ALL.iter().map(|i| i.name()).collect();
        match self {
            ItemError::Syntax(s) => write!(
                f,
                "'{s}' is not ITEM=on|off (valid items: {})",
                names.join(", ")
            ),
            ItemError::Unknown(s) => write!(
                f,
                "unknown profile item '{s}' (valid: {})",
                names.join(", ")
            ),
            ItemError::Value(s) => write!(f, "profile item value '{s}' (valid: on, off)"),
            ItemError::Fixed(i) => write!(
                f,
                "profile item '{i}' cannot be switched off: the x86 protocol needs it (valid: {i}=on)"
            ),
        }
    }
}

impl std::error::Error for ItemError {}

/// A profile that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// No preset of that name.
    Unknown(String),
    /// A bad switch.
    Item(ItemError),
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Unknown(s) => write!(
                f,
                "unknown kernel profile '{s}' (valid: {})",
                Profile::names()
            ),
            ProfileError::Item(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProfileError {}

/// Per-CPU state of the profile's accesses that is the model's bookkeeping, not the
/// kernel's memory: whether the CPU's wake list holds wakeups (the kernel reads the
/// list head itself; the model's list has no entries, so this flag stands for them).
/// Never counted or recorded.
#[derive(Debug, Default)]
pub struct WakeListPending(pub(crate) raw::AtomicBool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_unique_names_and_keep_the_invariants() {
        let mut names: Vec<_> = Profile::PRESETS.iter().map(|(p, _)| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Profile::PRESETS.len());
        for (p, _) in Profile::PRESETS {
            assert!(p.has(TlbGenLazyReturn), "{p}");
            assert!(
                Item::MM_CID.iter().filter(|i| p.has(**i)).count() <= 1,
                "{p}"
            );
            assert!(!p.has(TtwuQueue) || p.has(TtwuRqLock), "{p}");
        }
    }

    #[test]
    fn each_commit_pair_differs_in_its_item_alone() {
        let pairs = [
            ("pre-c1753fd02a00", "c1753fd02a00", vec![MmCountOwnLine]),
            ("pre-7e33001b8b", "7e33001b8b", vec![SwitchMmCpumaskTest]),
            ("pre-af7f588d8f", "af7f588d8f", vec![MmCidLock]),
        ];
        for (a, b, diff) in pairs {
            let (a, b) = (Profile::by_name(a).unwrap(), Profile::by_name(b).unwrap());
            let got: Vec<Item> = Item::ALL
                .into_iter()
                .filter(|i| a.has(*i) != b.has(*i))
                .collect();
            assert_eq!(got, diff, "{a} vs {b}");
        }
    }

    #[test]
    fn switches_parse_and_name_the_result() {
        let mut p = Profile::by_name("6.6").unwrap();
        p.apply("mm-count-own-line=off").unwrap();
        assert!(!p.has(MmCountOwnLine));
        assert_eq!(p.name(), "6.6+");
        p.apply("mm-cid-lock=on").unwrap();
        assert!(p.has(MmCidLock) && !p.has(MmCidPercpu));
        assert_eq!(
            p.apply("nohz-idle=maybe"),
            Err(ItemError::Value("maybe".into()))
        );
        assert_eq!(p.apply("nohz"), Err(ItemError::Syntax("nohz".into())));
        assert_eq!(p.apply("bogus=on"), Err(ItemError::Unknown("bogus".into())));
        assert_eq!(
            p.apply("tlb-gen-lazy-return=off"),
            Err(ItemError::Fixed(TlbGenLazyReturn))
        );
        assert_eq!(
            p.switches(),
            vec![
                "mm-count-own-line=off",
                "mm-cid-lock=on",
                "mm-cid-percpu=off"
            ]
        );
        assert_eq!(Profile::build("6.6", &p.switches()), Ok(p));
        assert_eq!(
            Profile::build("6.7", &[]),
            Err(ProfileError::Unknown("6.7".into()))
        );
        let mut q = Profile::BARE;
        q.apply("mm-count-own-line=on").unwrap();
        assert_eq!(
            q.name(),
            "bare",
            "a switch that changes nothing keeps the name"
        );
    }

    #[test]
    fn a_kernel_release_picks_its_preset_and_its_config_adjusts_it() {
        let p = |v, dbg| Profile::for_kernel(v, dbg, true, true);
        assert_eq!(p((6, 1), false).name(), "6.1");
        assert_eq!(p((6, 12), false).name(), "6.12");
        assert_eq!(p((6, 16), false).name(), "7e33001b8b");
        assert_eq!(p((6, 19), false).name(), "mainline-2026");
        let dbg = p((6, 16), true);
        assert!(dbg.has(SwitchMmCpumaskTest));
        assert_eq!(dbg.name(), "7e33001b8b+");
        assert_eq!(
            p((6, 12), true).name(),
            "6.12",
            "6.12 tests the mask anyway"
        );
        let no_cid = Profile::for_kernel((6, 6), false, false, false);
        assert!(!no_cid.has(MmCidPercpu) && !no_cid.has(NohzIdle));
    }

    #[test]
    fn layout_moves_mm_count_only_without_its_own_line() {
        let own = Profile::by_name("c1753fd02a00").unwrap().layout();
        let shared = Profile::by_name("pre-c1753fd02a00").unwrap().layout();
        assert_ne!(own[Field::MmCount as usize], own[Field::MmCid as usize]);
        assert_eq!(
            shared[Field::MmCount as usize],
            shared[Field::MmCid as usize]
        );
        assert_eq!(own[Field::RqLock as usize], shared[Field::RqLock as usize]);
    }
}
