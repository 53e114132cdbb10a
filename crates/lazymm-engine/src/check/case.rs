//! What one checker run is: its target (scheme, arch, mutant) and its case (the
//! machine's size and each CPU's program), generated from a seed.

use super::pct::{Policy, Rng};
use super::program::{Mix, Op, Swarm};
use lazymm::Mutant;

/// One thing to check: a scheme on an arch, maybe with a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Scheme name.
    pub scheme: &'static str,
    /// Arch name.
    pub arch: &'static str,
    /// The mutant, if any.
    pub mutant: Option<Mutant>,
    /// The kernel profile.
    pub profile: lazymm::Profile,
}

impl Target {
    /// The name used in reports and replay file names.
    pub fn name(&self) -> String {
        match self.mutant {
            Some(m) => format!("{}@{}", m.name(), self.arch),
            None => format!("{}@{}", self.scheme, self.arch),
        }
    }
}

/// One run's machine and programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Scheme name.
    pub scheme: &'static str,
    /// Arch name.
    pub arch: &'static str,
    /// The mutant, if any.
    pub mutant: Option<Mutant>,
    /// The seed the case was generated from (it also seeds the CPUs' own choices:
    /// speculative walks).
    pub seed: u64,
    /// Simulated CPUs.
    pub cpus: usize,
    /// mm slots besides `init_mm`.
    pub arena: usize,
    /// Speculative walk period of `Config`.
    pub walk_period: u32,
    /// Each CPU's program.
    pub programs: Vec<Vec<Op>>,
    /// The kernel profile the model runs.
    pub profile: lazymm::Profile,
}

/// Mixes a run seed out of a base seed and an iteration number.
pub fn iteration_seed(base: u64, iteration: u64) -> u64 {
    let mut r = Rng::new(base ^ iteration.wrapping_mul(0xA076_1D64_78BD_642F));
    r.next_u64()
}

impl Case {
    /// A case set up by hand: `programs`, one per CPU, on eight mm slots, with no
    /// speculative walks, under the bare profile, seed 1 (the seed only drives the
    /// CPUs' own choices).
    pub fn by_hand(
        scheme: &'static str,
        arch: &'static str,
        mutant: Option<Mutant>,
        programs: Vec<Vec<Op>>,
    ) -> Case {
        Case {
            scheme,
            arch,
            mutant,
            seed: 1,
            cpus: programs.len(),
            arena: 8,
            walk_period: 0,
            programs,
            profile: lazymm::Profile::BARE,
        }
    }

    /// The case and the scheduling policy of one seed, under operation mix `mix`.
    pub fn generate(target: Target, seed: u64, mix: Mix) -> (Case, Policy) {
        let mut rng = Rng::new(seed);
        match mix {
            Mix::LazyExec => return Self::lazy_exec(target, seed, &mut rng),
            // Half the flush mix's cases race a trimming flush against a kernel worker.
            Mix::TlbFlush if rng.below(2) == 0 => {
                return Self::kthread_trim(target, seed, &mut rng);
            }
            Mix::Usual | Mix::TlbFlush => {}
        }
        let cpus = 4 + rng.below(5) as usize;
        let arena = cpus + 2 + rng.below(2 * cpus as u64) as usize;
        let walk_period = 2 + rng.below(6) as u32;
        // Half the cases use every kind of operation, half a random subset.
        let swarm = if rng.below(2) == 0 {
            Swarm::all()
        } else {
            Swarm::random(&mut rng)
        };
        let programs: Vec<Vec<Op>> = (0..cpus)
            .map(|c| {
                let len = 6 + rng.below(20) as usize;
                // Under the flush mix, each CPU's process starts a thread on the next
                // CPU, and each CPU then switches between its own process and the
                // thread it got, unmapping in each: every mm is run, switched into and
                // flushed by two CPUs from the start.
                let next = (c as u8 + 1) % cpus as u8;
                let share = match mix {
                    Mix::TlbFlush => vec![
                        Op::Run(1),
                        Op::Clone(next),
                        Op::Run(2),
                        Op::Munmap,
                        Op::Run(1),
                        Op::Munmap,
                        Op::Run(2),
                        Op::Munmap,
                    ],
                    Mix::Usual | Mix::LazyExec => Vec::new(),
                };
                share
                    .into_iter()
                    .chain((0..len).map(|_| Op::random(&mut rng, swarm, mix, c, cpus)))
                    .collect()
            })
            .collect();
        let ops: usize = programs.iter().map(Vec::len).sum();
        let policy = pct_policy(&mut rng, 5 * ops as u64, 3, (4, 28));
        let case = Case {
            scheme: target.scheme,
            arch: target.arch,
            mutant: target.mutant,
            seed,
            cpus,
            arena,
            walk_period,
            programs,
            profile: target.profile,
        };
        (case, policy)
    }

    /// The operation mix [`Mix::LazyExec`] (every case of a
    /// [`lazymm::Exercise::LazyExec`] mutant's hunt, every third of a correct-scheme
    /// check): CPU 0's process clones a thread onto CPU 1 and exits (CPU 0 stays lazy
    /// on its mm), then CPU 0's kernel worker leaves that lazy mm while the thread on
    /// CPU 1, its last user, exits. Half the cases it leaves by exec (it starts a user
    /// helper); half by adopting, with `kthread_use_mm`, the mm a third CPU's process
    /// hands the workers. Random programs rarely line these up; the scheduler still
    /// searches the interleavings.
    fn lazy_exec(target: Target, seed: u64, rng: &mut Rng) -> (Case, Policy) {
        let mut programs = vec![
            vec![Op::Run(1), Op::Clone(1), Op::Touch, Op::Exit, Op::Exec],
            vec![Op::Touch, Op::Touch, Op::Run(2), Op::Touch, Op::Exit],
        ];
        let policy = pct_policy(rng, 80, 2, (2, 5));
        // Drawn after the policy: the exec cases are the same as before the variant.
        if rng.below(2) == 0 {
            programs[0].pop();
            programs[0].extend([Op::Work, Op::Work]);
            programs.push(vec![Op::Run(1), Op::Submit]);
        }
        let case = Case {
            seed,
            profile: target.profile,
            ..Case::by_hand(target.scheme, target.arch, target.mutant, programs)
        };
        (case, policy)
    }

    /// Half the cases of the operation mix [`Mix::TlbFlush`]: CPU 0's process clones a
    /// thread onto CPU 1 and hands its mm to the kernel workers; the thread exits on CPU 1 (which stays lazy on the mm, in its
    /// `mm_cpumask`), CPU 0's process unmaps a page (single-threaded now: on powerpc the
    /// flush trims the mask) and exits, while CPU 2's worker adopts the mm with
    /// `mmget_not_zero` and `kthread_use_mm` (the io_uring shape of a665eec0a22e). The
    /// switches to idle and back between the unmaps are where the scheduler can let the
    /// other CPUs in; each unmap is preceded by a new work item.
    fn kthread_trim(target: Target, seed: u64, rng: &mut Rng) -> (Case, Policy) {
        let programs = vec![
            vec![
                Op::Run(1),
                Op::Clone(1),
                Op::Submit,
                Op::Idle,
                Op::Run(1),
                Op::Munmap,
                Op::Submit,
                Op::Idle,
                Op::Run(1),
                Op::Munmap,
                Op::Submit,
                Op::Idle,
                Op::Run(1),
                Op::Munmap,
                Op::Exit,
            ],
            vec![Op::Run(2), Op::Run(2), Op::Run(2), Op::Run(2), Op::Exit],
            vec![Op::Work; 6],
        ];
        let policy = Policy::Pct {
            seed: rng.next_u64(),
            depth: 1 + rng.below(6) as u32,
            horizon: 150,
            random_switch: 2 + rng.below(5) as u32,
            hold_windows: rng.below(2) == 0,
        };
        let case = Case {
            seed,
            profile: target.profile,
            ..Case::by_hand(target.scheme, target.arch, target.mutant, programs)
        };
        (case, policy)
    }

    /// The target this case runs.
    pub fn target(&self) -> Target {
        Target {
            scheme: self.scheme,
            arch: self.arch,
            mutant: self.mutant,
            profile: self.profile,
        }
    }

    /// Operations in all programs.
    pub fn ops(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }
}

/// A PCT policy drawn from `rng` (its seed, then its depth, 1 to 6, then whether and how
/// often it also switches at random, then whether it holds interrupts-on windows open),
/// for a run of about `horizon` decisions: with one chance in `odds`, one decision in
/// `min + below(span)` also switches to a random CPU; one run in two holds windows.
fn pct_policy(rng: &mut Rng, horizon: u64, odds: u64, (min, span): (u32, u64)) -> Policy {
    let seed = rng.next_u64();
    let depth = 1 + rng.below(6) as u32;
    let random_switch = if rng.below(odds) == 0 {
        min + rng.below(span) as u32
    } else {
        0
    };
    Policy::Pct {
        seed,
        depth,
        horizon,
        random_switch,
        // Drawn last: the draws above, and so each seed's case, are as before.
        hold_windows: rng.below(2) == 0,
    }
}
