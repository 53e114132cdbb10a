//! The bench's statistics: each scheme's slowdown against a baseline as a paired ratio
//! with a bootstrap confidence interval, and the verdict read from that interval.
//!
//! # Method
//! A row's samples are taken in rounds: in round `i` every scheme of the group runs one
//! sample, one after the other. The slowdown of scheme `x` against the baseline `b` in
//! round `i` is `b[i] / x[i]` (switches per second of the baseline over the scheme's:
//! how many times longer a switch takes). Noise that lasts longer than a round (another
//! process, a frequency change, the host's other tenants) moves both samples of a round
//! alike and cancels in their ratio; a burst shorter than a round spoils one ratio, and
//! the median of the rounds' ratios ignores it. The point estimate is that median.
//!
//! Its confidence interval is a percentile bootstrap over the rounds, as criterion does:
//! [`RESAMPLES`] times, draw as many rounds as there are, with replacement, and take the
//! median of their ratios; the interval runs from the 2.5th to the 97.5th percentile of
//! those medians. Resampling whole rounds keeps each pair together (the pairing is what
//! cancels the slow noise). The resampling generator is seeded from the samples' own
//! bits, so the interval is a deterministic function of the samples: the same samples
//! give the same interval in every report and test.
//!
//! The verdict is `slower` when the whole interval lies above `1 + NOISE_THRESHOLD`,
//! `faster` when it lies below `1 - NOISE_THRESHOLD`, and `within noise` otherwise. The
//! threshold (criterion's noise threshold, here 2 %) keeps a difference too small to
//! matter, or one the host's drift between groups can fake, from being called real.

use serde::Serialize;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;
/// The interval's coverage.
pub const CONFIDENCE: f64 = 0.95;
/// Relative changes smaller than this are never called `faster` or `slower`.
pub const NOISE_THRESHOLD: f64 = 0.02;

/// What a row's interval says about the scheme against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Verdict {
    /// The whole interval is below `1 - NOISE_THRESHOLD`.
    #[serde(rename = "faster")]
    Faster,
    /// The whole interval is above `1 + NOISE_THRESHOLD`.
    #[serde(rename = "slower")]
    Slower,
    /// The interval reaches into `1 ± NOISE_THRESHOLD`: no difference can be told.
    #[serde(rename = "within noise")]
    WithinNoise,
}

impl Verdict {
    /// The verdict of a slowdown interval `[lo, hi]` (1 = as fast as the baseline).
    pub fn of(lo: f64, hi: f64) -> Verdict {
        if lo > 1.0 + NOISE_THRESHOLD {
            Verdict::Slower
        } else if hi < 1.0 - NOISE_THRESHOLD {
            Verdict::Faster
        } else {
            Verdict::WithinNoise
        }
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// A point estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The estimate.
    pub estimate: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
    pub hi: f64,
}

/// The median of a list (0 for an empty one).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    median_sorted(&v)
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// SplitMix64: the resampling generator (frozen, so intervals never change with a crate).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (Lemire's multiply-shift; the bias is below 2^-50 here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// FNV-1a over the bits of the values: the seed that makes an interval a function of
/// its samples.
fn seed_of(xs: &[f64]) -> u64 {
    xs.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, x| {
        x.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
    })
}

/// The median of `xs` with its percentile-bootstrap interval (see the module docs).
/// `None` for an empty list.
pub fn median_interval(xs: &[f64]) -> Option<Interval> {
    if xs.is_empty() {
        return None;
    }
    let estimate = median(xs);
    if xs.len() == 1 {
        return Some(Interval {
            estimate,
            lo: estimate,
            hi: estimate,
        });
    }
    let mut rng = SplitMix(seed_of(xs));
    let mut draw = vec![0.0; xs.len()];
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for d in draw.iter_mut() {
                *d = xs[rng.below(xs.len())];
            }
            draw.sort_by(f64::total_cmp);
            median_sorted(&draw)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let at = |q: f64| medians[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some(Interval {
        estimate,
        lo: at(tail),
        hi: at(1.0 - tail),
    })
}

/// The slowdown of `x` against `base`, paired by round: the median over rounds of
/// `base[i] / x[i]`, with its bootstrap interval over the rounds. `None` when the lists
/// differ in length, are empty, or hold a sample that is not positive.
pub fn paired_slowdown(base: &[f64], x: &[f64]) -> Option<Interval> {
    if base.len() != x.len() || base.iter().chain(x).any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let ratios: Vec<f64> = base.iter().zip(x).map(|(b, x)| b / x).collect();
    median_interval(&ratios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn verdicts_need_the_whole_interval_past_the_threshold() {
        assert_eq!(Verdict::of(1.5, 1.9), Verdict::Slower);
        assert_eq!(Verdict::of(1.01, 1.9), Verdict::WithinNoise);
        assert_eq!(Verdict::of(0.9, 1.1), Verdict::WithinNoise);
        assert_eq!(Verdict::of(0.5, 0.97), Verdict::Faster);
        assert_eq!(Verdict::of(0.5, 0.99), Verdict::WithinNoise);
        assert_eq!(Verdict::WithinNoise.name(), "within noise");
        assert_eq!(
            serde_json::to_value(Verdict::WithinNoise).expect("json"),
            "within noise"
        );
    }

    #[test]
    fn the_interval_is_a_function_of_the_samples() {
        let base = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9, 10.1, 10.4];
        let x = [5.0, 5.6, 4.6, 5.1, 5.5, 5.0, 4.9, 5.3];
        let a = paired_slowdown(&base, &x).expect("interval");
        let b = paired_slowdown(&base, &x).expect("interval");
        assert_eq!(a, b);
        assert!(a.lo <= a.estimate && a.estimate <= a.hi, "{a:?}");
        assert!((a.estimate - 2.0).abs() < 0.05, "{a:?}");
        // Every round says about 2x: the interval is narrow and the verdict clear.
        assert!(a.lo > 1.9 && a.hi < 2.1, "{a:?}");
        assert_eq!(Verdict::of(a.lo, a.hi), Verdict::Slower);
        // Another sample moves the interval's seed, and the interval stays sane.
        let mut x2 = x;
        x2[0] = 5.01;
        let c = paired_slowdown(&base, &x2).expect("interval");
        assert!(c.lo <= c.estimate && c.estimate <= c.hi);
    }

    #[test]
    fn pairing_cancels_noise_common_to_a_round() {
        // The host's speed drifts by 2x from round to round; the scheme is always 10 %
        // slower than the baseline in the same round.
        let base: Vec<f64> = (0..10)
            .map(|i| 100.0 * (1.0 + (i % 3) as f64 / 2.0))
            .collect();
        let x: Vec<f64> = base.iter().map(|b| b / 1.1).collect();
        let s = paired_slowdown(&base, &x).expect("interval");
        assert!(
            (s.lo - 1.1).abs() < 1e-9 && (s.hi - 1.1).abs() < 1e-9,
            "{s:?}"
        );
        assert_eq!(Verdict::of(s.lo, s.hi), Verdict::Slower);
        // Unpaired, the two medians' intervals overlap: the drift hides the difference.
        let (mb, mx) = (
            median_interval(&base).expect("b"),
            median_interval(&x).expect("x"),
        );
        assert!(mx.hi > mb.lo, "{mb:?} {mx:?}");
    }

    #[test]
    fn one_burst_does_not_decide_the_verdict() {
        // Equal schemes, but one round of the scheme was hit by a 4x burst.
        let base = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 10.1, 9.9, 10.0];
        let mut x = base;
        x[4] /= 4.0;
        let s = paired_slowdown(&base, &x).expect("interval");
        assert!((s.estimate - 1.0).abs() < 1e-9, "{s:?}");
        assert_eq!(Verdict::of(s.lo, s.hi), Verdict::WithinNoise, "{s:?}");
    }

    #[test]
    fn unusable_samples_give_no_interval() {
        assert!(paired_slowdown(&[1.0, 2.0], &[1.0]).is_none());
        assert!(paired_slowdown(&[], &[]).is_none());
        assert!(paired_slowdown(&[1.0, 0.0], &[1.0, 1.0]).is_none());
        let one = paired_slowdown(&[3.0], &[1.5]).expect("one round");
        assert_eq!((one.estimate, one.lo, one.hi), (2.0, 2.0, 2.0));
    }
}
