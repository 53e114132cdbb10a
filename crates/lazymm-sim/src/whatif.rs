//! What-if: the same simulation under two kernel profiles, the predicted change, and
//! how far it moves when the values the machine file marks `assumed` move.
//!
//! The change is `after / before - 1` of the predicted context switches per second.
//! The interval varies every assumed value of the machine file ([`Machine::assumed`])
//! one at a time to half and to twice its value (the same as `--vary KEY=V/2,2V` per
//! key), reruns both profiles on each varied machine, and keeps the lowest and highest
//! change. Sourced values never move.

use crate::sim::{simulate, SimError, SimSpec};
use lazymm::Profile;
use lazymm_cost::machine::{Machine, MachineError};

/// A predicted change and its interval over the assumed values.
#[derive(Debug, Clone)]
pub struct WhatIf {
    /// Switches per second under the first profile.
    pub before: f64,
    /// Under the second.
    pub after: f64,
    /// `after / before - 1`.
    pub change: f64,
    /// The lowest change over the varied machines (the change itself included).
    pub low: f64,
    /// The highest.
    pub high: f64,
    /// The key and value that gave the lowest change, if a varied machine did.
    pub low_at: Option<(String, f64)>,
    /// The key and value that gave the highest change.
    pub high_at: Option<(String, f64)>,
}

/// A what-if that could not run.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// The simulation.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A varied machine.
    #[error(transparent)]
    Machine(#[from] MachineError),
}

fn change(m: &Machine, spec: &SimSpec, a: Profile, b: Profile) -> Result<(f64, f64), SimError> {
    let run = |p: Profile| {
        let mut s = spec.clone();
        s.profile = p;
        simulate(m, &s).map(|r| r.switches_per_sec())
    };
    Ok((run(a)?, run(b)?))
}

/// Runs `spec` on machine `name` (a preset or a file) under `a` and `b`, and again
/// with each assumed value halved and doubled (`vary_assumed`; off: no interval).
pub fn what_if(
    name: &str,
    spec: &SimSpec,
    a: Profile,
    b: Profile,
    vary_assumed: bool,
) -> Result<WhatIf, WhatIfError> {
    let m = Machine::load(name)?;
    let (before, after) = change(&m, spec, a, b)?;
    let c = after / before - 1.0;
    let mut w = WhatIf {
        before,
        after,
        change: c,
        low: c,
        high: c,
        low_at: None,
        high_at: None,
    };
    if !vary_assumed {
        return Ok(w);
    }
    for (key, v) in &m.assumed {
        let v = *v;
        for x in [v / 2.0, v * 2.0] {
            // Whole-number fields stay whole.
            let x = if v.fract() == 0.0 { x.round().max(1.0) } else { x };
            let vm = match Machine::load_varied(name, &[(key.clone(), x)]) {
                Ok(vm) => vm,
                // A halved or doubled value the file refuses (out of its range): skip.
                Err(MachineError::Invalid { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let (b0, a0) = change(&vm, spec, a, b)?;
            let cx = a0 / b0 - 1.0;
            if cx < w.low {
                w.low = cx;
                w.low_at = Some((key.clone(), x));
            }
            if cx > w.high {
                w.high = cx;
                w.high_at = Some((key.clone(), x));
            }
        }
    }
    Ok(w)
}
