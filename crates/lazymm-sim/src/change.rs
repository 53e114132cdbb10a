//! What-if results as data: the predicted change of one row under a second kernel
//! profile, its interval over the machine's assumed values, and which values those were.
//!
//! A leaf: [`crate::whatif`] computes these, [`crate::predict::Prediction`] and its rows
//! carry them and [`crate::report`] prints them, so `predict` needs nothing of `whatif`.

use lazymm::Profile;

/// A predicted change and its interval over the assumed values.
///
/// # Invariants
/// `low <= change <= high` (the change itself is one of the values the interval is taken
/// over).
#[derive(Debug, Clone, PartialEq)]
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

impl WhatIf {
    /// The change from `before` to `after` switches per second, with no interval yet.
    pub fn new(before: f64, after: f64) -> WhatIf {
        let c = after / before - 1.0;
        WhatIf {
            before,
            after,
            change: c,
            low: c,
            high: c,
            low_at: None,
            high_at: None,
        }
    }

    /// Widens the interval with the change `before -> after` on a machine varied at
    /// `key = value`.
    pub fn widen(&mut self, before: f64, after: f64, key: &str, value: f64) {
        let c = after / before - 1.0;
        if c < self.low {
            self.low = c;
            self.low_at = Some((key.to_string(), value));
        }
        if c > self.high {
            self.high = c;
            self.high_at = Some((key.to_string(), value));
        }
    }
}

/// One value the machine file marks `assumed`, and the values the interval tried for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumed {
    /// The machine-file key (as `--vary` takes it).
    pub key: String,
    /// Its value in the file.
    pub value: f64,
    /// The values tried: half and twice `value` (whole-number fields rounded), those the
    /// file accepts; empty if it refused both.
    pub tried: Vec<f64>,
}

/// A sweep under two profiles: what the rows of a [`crate::predict::Prediction`] under
/// the second profile are compared with (each row's change is its `Row::change`).
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The profile the change is measured from (the prediction's own is the other).
    pub before: Profile,
    /// The machine's assumed values, each halved and doubled one at a time (not jointly)
    /// for the interval; empty when the interval was not taken.
    pub assumed: Vec<Assumed>,
}
