//! Splitting a check across machines, and merging what the parts found.
//!
//! A check's iterations are numbered `0..iterations` (a mutant hunt's `0..budget`), and
//! iteration `i` is fully determined by the base seed and `i`: its seed
//! ([`iteration_seed`](super::iteration_seed)), its arch (`archs[i % archs.len()]`) and
//! its operation mix ([`Mix::rotation`](super::program::Mix::rotation)). Shard `K/N`
//! runs the iterations with `i % N == K - 1`, each exactly as the whole run makes it, so
//! the shards `1/N` … `N/N` together run exactly the whole run's schedules, and
//! [`Summary::merge`] adds their counts back up. A sharded mutant hunt stops at its
//! own first catch; the merged first catch (the smallest iteration over the shards) is
//! the whole hunt's.
//!
//! Batch schedulers name the shard in the environment ([`Shard::from_env`]): a Slurm
//! job array (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN`)
//! or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with the count in
//! `LAZYMM_SHARD_COUNT`: Kubernetes does not export `completions`).

use super::{Coverage, Report};
use crate::registry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One part of a check's iteration space: iterations `i` with `i % count == index`.
///
/// # Invariants
/// `index < count`, and `count >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The whole run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `k` (1-based, as written `K/N`) of `n`.
    pub fn new(k: u64, n: u64) -> Result<Shard, String> {
        if n == 0 || k == 0 || k > n {
            return Err(format!(
                "shard {k}/{n}: K must be between 1 and N (and N at least 1)"
            ));
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    /// Parses `K/N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard '{s}': expected K/N, as 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n)
    }

    /// The shard a batch scheduler's environment names, read through `get` (give it
    /// `|k| std::env::var(k).ok()`); `None` when no scheduler variable is set.
    ///
    /// - Slurm job array (`sbatch --array=A-B`): shard `SLURM_ARRAY_TASK_ID -
    ///   SLURM_ARRAY_TASK_MIN + 1` of `SLURM_ARRAY_TASK_COUNT` (the array must be
    ///   contiguous: no `:step`, no list);
    /// - Kubernetes Indexed Job: shard `JOB_COMPLETION_INDEX + 1` of
    ///   `LAZYMM_SHARD_COUNT`, which the Job sets equal to its `completions`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let num = |k: &str| -> Result<Option<u64>, String> {
            match get(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{k}='{v}' is not a whole number")),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let n = num("SLURM_ARRAY_TASK_COUNT")?.ok_or(
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".to_string(),
            )?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let k = id.checked_sub(min).ok_or(format!(
                "SLURM_ARRAY_TASK_ID {id} < SLURM_ARRAY_TASK_MIN {min}"
            ))?;
            return Shard::new(k + 1, n).map(Some);
        }
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = num("LAZYMM_SHARD_COUNT")?.ok_or(
                "JOB_COMPLETION_INDEX is set: set LAZYMM_SHARD_COUNT to the Job's completions"
                    .to_string(),
            )?;
            return Shard::new(i + 1, n).map(Some);
        }
        Ok(None)
    }

    /// `K` of `K/N` (1-based).
    pub fn k(self) -> u64 {
        self.index + 1
    }

    /// `N` of `K/N`.
    pub fn n(self) -> u64 {
        self.count
    }

    /// Whether this shard runs iteration `i`.
    pub fn owns(self, i: u64) -> bool {
        i % self.count == self.index
    }

    /// The iterations below `total` this shard runs, in order.
    pub fn iterations(self, total: u64) -> impl Iterator<Item = u64> {
        (self.index..total).step_by(self.count as usize)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k(), self.n())
    }
}

/// Iterations and violating iterations under one mix, as JSON.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct MixSummary {
    /// Iterations run under the mix.
    pub iterations: u64,
    /// Of those, iterations that found a violation.
    pub violations: u64,
}

/// One target's result as `check --json` writes it, and as `check --merge` reads and
/// adds up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Scheme (or mutant) name.
    pub name: String,
    /// Arch: the target's, or for a hunt over every arch, the first catch's.
    pub arch: String,
    /// Iterations run.
    pub iterations: u64,
    /// Iterations that found a violation.
    pub violations: u64,
    /// Iterations that hit the decision limit.
    pub stalled: u64,
    /// Scheduling decisions made.
    pub decisions: u64,
    /// The first violating iteration (1-based, as `iterations_to_catch`), if any.
    pub first_iteration: Option<u64>,
    /// Its replay file, if one was written.
    pub replay: Option<String>,
    /// Iterations per operation mix.
    pub mixes: BTreeMap<String, MixSummary>,
    /// Violating iterations by the property (`a`, `b`, ...) their first violation breaks.
    #[serde(default)]
    pub by_property: BTreeMap<String, u64>,
    /// The listed finding this configuration is (a scheme × arch that breaks as the
    /// kernel is written: [`registry::listed_finding`]), if it is one.
    #[serde(default)]
    pub listed: Option<String>,
    /// What the iterations reached.
    pub coverage: Coverage,
}

impl Summary {
    /// A report's summary, with the replay file written for its first violation.
    pub fn of(name: &str, r: &Report, replay: Option<String>) -> Summary {
        Summary {
            name: name.to_string(),
            arch: r.target.arch.to_string(),
            iterations: r.iterations,
            violations: r.violating,
            stalled: r.stalled,
            decisions: r.decisions,
            first_iteration: r.first.as_ref().map(|f| f.iteration + 1),
            replay,
            mixes: r
                .per_mix
                .iter()
                .map(|(m, c)| {
                    (
                        m.name().to_string(),
                        MixSummary {
                            iterations: c.iterations,
                            violations: c.violating,
                        },
                    )
                })
                .collect(),
            by_property: r
                .by_property
                .iter()
                .map(|(p, n)| (p.to_string(), *n))
                .collect(),
            listed: match r.target.mutant {
                None => registry::listed_finding(r.target.scheme, r.target.arch)
                    .map(|m| m.name().to_string()),
                Some(_) => None,
            },
            coverage: r.coverage.clone(),
        }
    }

    /// The declaration of [`Summary::listed`], if the target is a listed finding.
    pub fn listed_finding(&self) -> Option<lazymm::Mutant> {
        self.listed
            .as_deref()
            .and_then(|n| registry::mutant(n).ok())
    }

    /// A scheme check's verdict: clean when no iteration violated or stalled; a listed
    /// finding is clean too when nothing stalled and every violation breaks a property
    /// the finding declares (any other violation is news, and fails).
    pub fn clean(&self) -> bool {
        if self.stalled > 0 {
            return false;
        }
        if self.violations == 0 {
            return true;
        }
        let Some(m) = self.listed_finding() else {
            return false;
        };
        let declared: Vec<String> = m.info().breaks.iter().map(|p| p.to_string()).collect();
        self.by_property.keys().all(|p| declared.contains(p))
            && self.by_property.values().sum::<u64>() == self.violations
    }

    /// Adds another result's counts, per-mix counts and coverage to these (of any
    /// target: what a total over targets needs; [`Summary::merge`] is the same target's).
    pub fn add_counts(&mut self, o: &Summary) {
        self.iterations += o.iterations;
        self.violations += o.violations;
        self.stalled += o.stalled;
        self.decisions += o.decisions;
        for (p, n) in &o.by_property {
            *self.by_property.entry(p.clone()).or_default() += n;
        }
        for (m, c) in &o.mixes {
            let e = self.mixes.entry(m.clone()).or_default();
            e.iterations += c.iterations;
            e.violations += c.violations;
        }
        self.coverage.add(&o.coverage);
    }

    /// Adds another shard's result for the same target: counts add up, and the first
    /// violation (with its arch and replay) is the earlier of the two.
    pub fn merge(&mut self, o: &Summary) -> Result<(), String> {
        if o.name != self.name {
            return Err(format!("cannot merge {} with {}", self.name, o.name));
        }
        self.add_counts(o);
        let earlier = match (self.first_iteration, o.first_iteration) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b < a,
            _ => false,
        };
        if earlier {
            self.first_iteration = o.first_iteration;
            self.replay = o.replay.clone();
            self.arch = o.arch.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_iterations() {
        for n in 1..6u64 {
            let mut seen: Vec<u64> = (1..=n)
                .flat_map(|k| Shard::new(k, n).unwrap().iterations(23))
                .collect();
            seen.sort();
            assert_eq!(seen, (0..23).collect::<Vec<_>>(), "N = {n}");
        }
    }

    fn summary(listed: Option<&str>, by_property: &[(&str, u64)], stalled: u64) -> Summary {
        let by_property: BTreeMap<String, u64> = by_property
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect();
        Summary {
            name: "shootdown-debug".into(),
            arch: "x86".into(),
            iterations: 300,
            violations: by_property.values().sum(),
            stalled,
            decisions: 0,
            first_iteration: None,
            replay: None,
            mixes: BTreeMap::new(),
            by_property,
            listed: listed.map(str::to_string),
            coverage: Coverage::default(),
        }
    }

    #[test]
    fn a_listed_finding_is_clean_only_for_what_it_declares() {
        let listed = Some("finding-x86-shootdown-lazy-trim");
        assert!(summary(None, &[], 0).clean());
        assert!(!summary(None, &[("c", 1)], 0).clean());
        assert!(summary(listed, &[("c", 3)], 0).clean());
        // The finding declares c only: a use after free beside it is news.
        assert!(!summary(listed, &[("c", 3), ("a", 1)], 0).clean());
        assert!(!summary(listed, &[("c", 3)], 1).clean());
        assert!(!summary(Some("no-such-finding"), &[("c", 1)], 0).clean());
    }

    #[test]
    fn parse_and_reject() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard::new(2, 8).unwrap());
        assert_eq!(Shard::parse("2/8").unwrap().to_string(), "2/8");
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_names_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        // sbatch --array=0-3: task 2 is shard 3/4.
        let s = Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ]));
        assert_eq!(s.unwrap(), Some(Shard::new(3, 4).unwrap()));
        // sbatch --array=1-4: task 1 is shard 1/4.
        let s = Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]));
        assert_eq!(s.unwrap(), Some(Shard::new(1, 4).unwrap()));
        let s = Shard::from_env(env(&[
            ("JOB_COMPLETION_INDEX", "0"),
            ("LAZYMM_SHARD_COUNT", "2"),
        ]));
        assert_eq!(s.unwrap(), Some(Shard::new(1, 2).unwrap()));
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        assert!(Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .is_err());
    }
}
