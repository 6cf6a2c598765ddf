//! Shared by the profiler attribution tests (each its own test binary: pprof allows one
//! profiler per process).

use std::path::Path;

use perfstore::{Reader, TimeRange};

/// A function that burns CPU in its own body (a distinct symbol per name).
#[macro_export]
macro_rules! burner {
    ($name:ident, $salt:expr, $iters:expr) => {
        #[inline(never)]
        fn $name() -> u64 {
            let mut x: u64 = $salt;
            for i in 0..$iters {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i ^ $salt));
            }
            x
        }
    };
}

/// For each `(operation, function)`: at least 20 samples, at least 95 % of them in its own
/// function, none in another operation's.
pub fn assert_attribution(db: &Path, pairs: &[(&str, &str)]) {
    let mut reader = Reader::open(db).unwrap();
    let snap = reader.snapshot().unwrap();
    for (i, (op, function)) in pairs.iter().enumerate() {
        let stacks = snap.profile(op, None, TimeRange::new(0, i64::MAX / 2)).unwrap();
        let total: u64 = stacks.iter().map(|s| s.samples).sum();
        let own: u64 = stacks.iter().filter(|s| s.frames.contains(function)).map(|s| s.samples).sum();
        let others: u64 = stacks
            .iter()
            .filter(|s| pairs.iter().enumerate().any(|(j, (_, f))| j != i && s.frames.contains(f)))
            .map(|s| s.samples)
            .sum();
        eprintln!("{op}: {total} samples, {own} in {function}, {others} in the other operations' functions");
        assert!(total >= 20, "{op}: too few samples ({total}) to judge");
        assert!(own as f64 >= 0.95 * total as f64, "{op}: only {own} of {total} samples contain {function}");
        assert_eq!(others, 0, "{op}: samples of other operations' functions");
    }
}
