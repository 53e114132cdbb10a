//! CPU masks sized at boot: [`CpuMask`], a plain bitmap (`struct cpumask` on the stack),
//! and [`SharedCpuMask`], one that CPUs update concurrently (`mm_cpumask(mm)`,
//! `cpu_online_mask`).
//!
//! A machine may have up to [`MAX_CPUS`](crate::MAX_CPUS) CPUs, so a mask is a slice
//! of 64-bit words, as many as the machine needs (`nr_cpu_ids` bits), never a single
//! word.

use crate::sync::{Acct, CachePadded, Field, Ordering, SharedU64, Tag};
use core::fmt;

/// Shared 64-bit words laid out on whole cache lines (16 to a 128-byte line), so that
/// which words share a line does not depend on the allocator: a host that charges
/// coherence costs per line groups them the same way in every run.
///
/// # Invariants
/// `chunks.len() == len.div_ceil(16)` (at least one); words past `len` exist but are
/// never used.
pub(crate) struct LineWords {
    chunks: Box<[CachePadded<[SharedU64; 16]>]>,
    len: usize,
}

impl LineWords {
    /// `len` words, all zero, of `field` of object `obj`; chunk `c` is line `first + c`
    /// of that field of that object.
    ///
    /// # Simplification
    /// Each word carries its [`Tag`] beside it, so natively a chunk spans two 128-byte
    /// lines; the hosts that price coherence use the tags (16 words to a line), not the
    /// host layout.
    pub(crate) fn new(len: usize, field: Field, obj: u32, first: u16) -> LineWords {
        LineWords {
            chunks: (0..len.div_ceil(16).max(1))
                .map(|c| {
                    let tag = Tag::line(field, obj, first + c as u16);
                    CachePadded(core::array::from_fn(|_| SharedU64::new(0, tag)))
                })
                .collect(),
            len,
        }
    }

    /// Word `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &SharedU64 {
        &self.chunks[i / 16].0[i % 16]
    }

    /// The words in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SharedU64> {
        self.chunks.iter().flat_map(|c| c.0.iter()).take(self.len)
    }

    /// How many words.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A set of CPUs of one machine.
///
/// # Invariants
/// `words.len() == nr.div_ceil(64)` (at least one word), and no bit at or above `nr` is
/// set.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CpuMask {
    words: Box<[u64]>,
    nr: u32,
}

impl CpuMask {
    /// The empty mask of a machine with `nr` CPUs.
    pub fn new(nr: usize) -> CpuMask {
        CpuMask {
            words: vec![0; nr.div_ceil(64).max(1)].into_boxed_slice(),
            nr: nr as u32,
        }
    }

    /// Every CPU of a machine with `nr` CPUs.
    pub fn full(nr: usize) -> CpuMask {
        let mut m = CpuMask::new(nr);
        for i in 0..nr {
            m.set(i);
        }
        m
    }

    /// The mask holding only `cpu`.
    pub fn of(nr: usize, cpu: usize) -> CpuMask {
        let mut m = CpuMask::new(nr);
        m.set(cpu);
        m
    }

    /// How many CPUs the machine has (`nr_cpu_ids`).
    pub fn nr_cpus(&self) -> usize {
        self.nr as usize
    }

    /// `cpumask_set_cpu`.
    #[inline]
    pub fn set(&mut self, cpu: usize) {
        debug_assert!(cpu < self.nr as usize, "cpu {cpu} out of range");
        // INVARIANT: only bits below nr are set.
        if cpu < self.nr as usize {
            self.words[cpu / 64] |= 1 << (cpu % 64);
        }
    }

    /// `cpumask_clear_cpu`.
    #[inline]
    pub fn clear(&mut self, cpu: usize) {
        if let Some(w) = self.words.get_mut(cpu / 64) {
            *w &= !(1 << (cpu % 64));
        }
    }

    /// `cpumask_test_cpu`.
    #[inline]
    pub fn test(&self, cpu: usize) -> bool {
        self.words
            .get(cpu / 64)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// Whether no CPU is set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// How many CPUs are set (`cpumask_weight`).
    pub fn weight(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `self &= other`.
    pub fn and(&mut self, other: &CpuMask) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a &= b;
        }
    }

    /// `self |= other`.
    pub fn or(&mut self, other: &CpuMask) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= b;
        }
    }

    /// `self &= !other`.
    pub fn and_not(&mut self, other: &CpuMask) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a &= !b;
        }
    }

    /// The set CPUs in increasing order (`for_each_cpu`).
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            core::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + b)
            })
        })
    }

    /// The 64-bit words, lowest CPUs first.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

impl fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for CpuMask {
    /// The kernel's cpulist format: `0-3,8,10-11`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.iter().peekable();
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end = it.next().unwrap_or(end);
            }
            if !first {
                write!(f, ",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// A CPU mask that CPUs set and clear bits of concurrently, word by word, as the
/// kernel's `cpumask_set_cpu` on a shared mask does (an atomic `or` on one word).
///
/// # Invariants
/// `words.len() == nr.div_ceil(64)` (at least one word); no bit at or above `nr` is set.
pub struct SharedCpuMask {
    words: LineWords,
    nr: u32,
}

impl SharedCpuMask {
    /// The empty mask of a machine with `nr` CPUs: `field` of object `obj`.
    pub fn new(nr: usize, field: Field, obj: u32) -> SharedCpuMask {
        SharedCpuMask {
            words: LineWords::new(nr.div_ceil(64).max(1), field, obj, 0),
            nr: nr as u32,
        }
    }

    /// Tests `cpu`'s bit (one load of its word, by the CPU owning `a`).
    #[inline]
    pub fn test(&self, a: &mut Acct, cpu: usize, o: Ordering) -> bool {
        self.words.get(cpu / 64).load(a, o) & (1 << (cpu % 64)) != 0
    }

    /// Sets `cpu`'s bit; returns whether it was already set.
    #[inline]
    pub fn set(&self, a: &mut Acct, cpu: usize, o: Ordering) -> bool {
        debug_assert!(cpu < self.nr as usize);
        let bit = 1 << (cpu % 64);
        self.words.get(cpu / 64).fetch_or(a, bit, o) & bit != 0
    }

    /// Clears `cpu`'s bit; returns whether it was set.
    #[inline]
    pub fn clear(&self, a: &mut Acct, cpu: usize, o: Ordering) -> bool {
        let bit = 1 << (cpu % 64);
        self.words.get(cpu / 64).fetch_and(a, !bit, o) & bit != 0
    }

    /// Reads the whole mask, word by word (one load each; not a snapshot of one instant,
    /// as the kernel's reads of a shared mask are not).
    pub fn read(&self, a: &mut Acct, o: Ordering) -> CpuMask {
        let mut m = CpuMask::new(self.nr as usize);
        for (dst, w) in m.words.iter_mut().zip(self.words.iter()) {
            *dst = w.load(a, o);
        }
        m
    }

    /// Reads the whole mask for the oracle or a report: never counted or recorded.
    pub fn oracle_read(&self) -> CpuMask {
        let mut m = CpuMask::new(self.nr as usize);
        for (dst, w) in m.words.iter_mut().zip(self.words.iter()) {
            *dst = w.oracle_load(Ordering::Relaxed);
        }
        m
    }

    /// Tests `cpu`'s bit for the oracle: never counted or recorded.
    pub fn oracle_test(&self, cpu: usize) -> bool {
        cpu / 64 < self.words.len()
            && self.words.get(cpu / 64).oracle_load(Ordering::Relaxed) & (1 << (cpu % 64)) != 0
    }

    /// Empties the mask before the structure holding it is reused (the arena's
    /// `mm_init`): not a protocol access.
    pub(crate) fn oracle_clear_all(&self) {
        for w in self.words.iter() {
            w.oracle_store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn masks_of_many_words() {
        let mut m = CpuMask::new(200);
        for c in [0, 63, 64, 130, 199] {
            m.set(c);
        }
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 63, 64, 130, 199]);
        assert_eq!(m.weight(), 5);
        assert!(m.test(130) && !m.test(131) && !m.test(4000));
        m.clear(64);
        assert_eq!(m.to_string(), "0,63,130,199");
        let full = CpuMask::full(200);
        assert_eq!(full.weight(), 200);
        assert_eq!(full.to_string(), "0-199");
        let mut x = full.clone();
        x.and_not(&m);
        assert_eq!(x.weight(), 196);
        x.and(&m);
        assert!(x.is_empty());
    }

    #[test]
    fn shared_masks_count_their_rmws() {
        let m = SharedCpuMask::new(1024, Field::CpuOnlineMask, 0);
        let mut a = Acct::default();
        assert!(!m.set(&mut a, 1000, Ordering::Relaxed));
        assert!(m.set(&mut a, 1000, Ordering::Relaxed));
        assert!(m.test(&mut a, 1000, Ordering::Relaxed));
        assert_eq!(a.rmw(), 2);
        assert_eq!(m.oracle_read().iter().collect::<Vec<_>>(), vec![1000]);
        assert!(m.clear(&mut a, 1000, Ordering::Relaxed));
        assert!(!m.oracle_test(1000));
        assert_eq!(a.rmw(), 3);
    }
}
