//! StatsD sets (`|s`): distinct members per interval, exact up to a limit, then a HyperLogLog
//! with 4096 registers (standard error 1.6 %).

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

const HLL_BITS: u32 = 12;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// A set's distinct members in one interval: exact, then a HyperLogLog past a limit.
#[derive(Debug, Clone)]
pub(crate) enum Members {
    Exact(HashSet<u64>),
    Hll(Box<[u8; HLL_REGISTERS]>),
}

impl Members {
    /// Add a member; past `exact_limit` distinct ones the set becomes a HyperLogLog.
    pub(crate) fn insert(&mut self, member: &str, exact_limit: usize) {
        let mut h = DefaultHasher::new();
        member.hash(&mut h);
        let hash = h.finish();
        match self {
            Members::Exact(set) => {
                set.insert(hash);
                if set.len() > exact_limit {
                    let mut regs = Box::new([0u8; HLL_REGISTERS]);
                    for &x in set.iter() {
                        hll_add(&mut regs, x);
                    }
                    *self = Members::Hll(regs);
                }
            }
            Members::Hll(regs) => hll_add(regs, hash),
        }
    }

    /// Distinct members (estimated once a HyperLogLog).
    pub(crate) fn count(&self) -> f64 {
        match self {
            Members::Exact(set) => set.len() as f64,
            Members::Hll(regs) => hll_estimate(regs),
        }
    }
}

fn hll_add(regs: &mut [u8; HLL_REGISTERS], hash: u64) {
    let idx = (hash >> (64 - HLL_BITS)) as usize;
    let rest = hash << HLL_BITS;
    let rank = (rest.leading_zeros() + 1).min(64 - HLL_BITS + 1) as u8;
    regs[idx] = regs[idx].max(rank);
}

fn hll_estimate(regs: &[u8; HLL_REGISTERS]) -> f64 {
    let m = HLL_REGISTERS as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|&&r| r == 0).count();
    if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_estimated() {
        let mut m = Members::Exact(HashSet::new());
        for i in 0..100 {
            m.insert(&format!("u{}", i % 50), 100);
        }
        assert_eq!(m.count(), 50.0);
        for i in 0..20_000 {
            m.insert(&format!("user{i}"), 100);
        }
        assert!(matches!(m, Members::Hll(_)));
        assert!((m.count() - 20_050.0).abs() / 20_050.0 < 0.05, "{}", m.count());
    }
}
