//! Tests of the sketch: keys, batches, deferred values, histogram counts, encoding.

use super::*;

#[test]
fn whole_magnitudes_take_the_key_the_logarithm_gives() {
    for m in 1..5000 {
        let m = m as f64;
        assert_eq!(key_of_fast(m), key_of(m), "{m}");
        for x in [m - 0.5, m + 1e-9, m * (1.0 + f64::EPSILON), 1.0 / m] {
            assert_eq!(key_of_fast(x), key_of(x), "{x}");
        }
    }
    assert_eq!(key_of_fast(1e300), key_of(1e300));
    // And the tables' keys keep the sketch's promise on their own: each whole magnitude's
    // bucket value is within the relative accuracy of it (1 is key 0, exactly).
    assert_eq!(key_of_fast(1.0), 0);
    for m in 1..5000 {
        let m = m as f64;
        let v = value_of(key_of_fast(m));
        assert!((v - m).abs() <= RELATIVE_ACCURACY * m * (1.0 + 1e-9), "{m} -> {v}");
    }
}

#[test]
fn a_deferred_sketch_reads_encodes_and_grows_as_its_values_binned_would() {
    let values = [0.004, 0.004, 0.2, 3.0, -1.5, 0.0, 1e-12, f64::NAN, 250.0];
    let mut binned = Sketch::new();
    binned.add_values(&values);
    let deferred = Sketch::deferred(values.to_vec());
    assert_eq!(deferred, binned);
    assert_eq!(deferred.encode(), binned.encode());
    assert_eq!((deferred.count(), deferred.bins(), deferred.is_empty()), (binned.count(), binned.bins(), false));
    assert_eq!(deferred.bin_values(), binned.bin_values());
    for q in [0.0, 0.3, 0.5, 0.99, 1.0] {
        assert_eq!(deferred.quantile(q), binned.quantile(q), "q {q}");
    }
    let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
    let bounds = BucketBounds::new(&[-1.0, 0.1, 10.0]);
    deferred.counts_at_most(&bounds, &mut a);
    binned.counts_at_most(&bounds, &mut b);
    assert_eq!((a, deferred.count_at_most(0.1)), (b, binned.count_at_most(0.1)));
    // Changed: the deferred values come first, as they came first.
    let (mut d, mut e) = (deferred.clone(), binned.clone());
    d.add_weighted(7.0, 2.5);
    e.add_weighted(7.0, 2.5);
    d.merge(&Sketch::deferred(vec![0.5, 0.5]));
    e.add_values(&[0.5, 0.5]);
    assert_eq!(d.encode(), e.encode());
    let mut m = Sketch::new();
    m.merge(&deferred);
    assert_eq!(m.encode(), binned.encode());
    assert!(Sketch::deferred(vec![f64::NAN]).is_empty());
    assert_eq!(Sketch::deferred(Vec::new()), Sketch::new());
    // Settled: bins of its own, the same to every reader.
    let mut settled = deferred.clone();
    assert_eq!((settled.deferred_len(), binned.deferred_len()), (values.len(), 0));
    settled.settle();
    assert_eq!(settled.deferred_len(), 0);
    assert_eq!((settled.encode(), settled.bin_values()), (binned.encode(), binned.bin_values()));
    settled.counts_at_most(&bounds, &mut a);
    assert_eq!(a, b);
}

#[test]
fn counts_at_most_are_each_bound_s_count_at_most() {
    // Bounds on both sides of zero, on a bin's value exactly, and one ulp either side of it.
    let on_a_bin = value_of(key_of(0.25));
    let mut bounds = vec![-3.0, -0.5, 0.0, 0.005, 0.25, 1.0, 2.5, 10.0, 1e6];
    bounds.extend([on_a_bin, f64::from_bits(on_a_bin.to_bits() - 1), f64::from_bits(on_a_bin.to_bits() + 1)]);
    bounds.extend([-on_a_bin, f64::NEG_INFINITY, f64::INFINITY, 1e-12, -1e-12, f64::MAX, f64::MIN_POSITIVE, -0.0]);
    // Within the lowest bins, which a sketch of more than `MAX_BINS` keys folds into one.
    bounds.extend([1e-8, 5e-8]);
    bounds.sort_by(f64::total_cmp);
    let buckets = BucketBounds::new(&bounds);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for n in [0, 1, 7, 300, 3000] {
        // Values around every bound, weighted (binned) and of weight one (deferred).
        let values: Vec<f64> = (0..n)
            .map(|i| match next() % 5 {
                0 => 0.0,
                1 => bounds[i % bounds.len()],
                2 => (next() % 20_000) as f64 / 1000.0 - 4.0,
                3 => f64::from_bits(bounds[i % bounds.len()].to_bits().wrapping_add(next() % 5).wrapping_sub(2)),
                _ => 10f64.powi((next() % 40) as i32 - 20) * if next() % 2 == 0 { 1.0 } else { -1.0 },
            })
            .collect();
        // Weighted, and weighted with no negative values (the usual distribution).
        let (mut weighted, mut positive) = (Sketch::new(), Sketch::new());
        for (i, &v) in values.iter().enumerate() {
            weighted.add_weighted(v, 1.0 + (i % 3) as f64 / 3.0);
            positive.add_weighted(v.abs(), 1.0 + (i % 7) as f64 / 7.0);
        }
        // More keys than a sketch keeps bins (the lowest are folded together).
        let spread: Vec<f64> = (0..n).map(|i| 1.03f64.powi(i as i32 - 1500)).collect();
        for s in [weighted, positive, Sketch::deferred(values.clone()), Sketch::deferred(spread)] {
            let mut counts = vec![f64::NAN; bounds.len()];
            s.counts_at_most(&buckets, &mut counts);
            for (b, c) in bounds.iter().zip(&counts) {
                assert_eq!(c.to_bits(), s.count_at_most(*b).to_bits(), "{n} values, bound {b}");
                // As the bins' values read against the bound, one by one.
                let want: f64 = s.bin_values().iter().filter(|(v, _)| v <= b).map(|(_, w)| w).sum();
                assert!((c - want).abs() <= 1e-9 * want.max(1.0), "{n} values, bound {b}: {c} against {want}");
            }
        }
    }
}

#[test]
fn bucket_bounds_split_the_keys_where_the_bins_values_cross_them() {
    for b in [0.005, 0.1, 1.0, 7.5, 1000.0, -0.2, 0.0, 1e-300, 1e300] {
        let buckets = BucketBounds::new(&[b]);
        // Every key around the split: under it exactly when its value is.
        let (pos, neg) = (buckets.pos_last[0], buckets.neg_first[0]);
        for k in (pos - 3..=pos + 3).chain(neg - 3..=neg + 3).filter(|k| k.abs() <= KEY_LIMIT) {
            assert_eq!(k <= pos, value_of(k) <= b, "bound {b}, positive key {k}");
            assert_eq!(k >= neg, -value_of(k) <= b, "bound {b}, negative key {k}");
        }
    }
}

#[test]
fn a_batch_makes_the_sketch_adding_one_by_one_makes() {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..50 {
        let n = (next() % 5000) as usize;
        let pairs: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                // Odd rounds: latencies in milliseconds, a few hundred keys (the dense
                // path); even rounds: values across orders of magnitude (the sorted path).
                if round % 2 == 1 {
                    let v = if next() % 9 == 0 { -((next() % 50) as f64) } else { (next() % 1000) as f64 };
                    return (v, (1 + next() % 3) as f64);
                }
                let v = match next() % 5 {
                    0 => (next() % 1000) as f64 * 0.001,
                    1 => -((next() % 300) as f64),
                    2 => 0.0,
                    3 => (next() % 1_000_000) as f64 / 7.0,
                    _ => 1e-12,
                };
                (v, (1 + next() % 3) as f64)
            })
            .collect();
        let mut one = Sketch::new();
        let mut batch = Sketch::new();
        // Both start from the same earlier content.
        for s in [&mut one, &mut batch] {
            s.add(0.5);
            s.add(-2.0);
        }
        for &(v, w) in &pairs {
            one.add_weighted(v, w);
        }
        batch.add_batch(&pairs);
        assert_eq!(one, batch, "round {round}");
    }
}

#[test]
fn bin_values_rebuild_the_sketch() {
    let mut s = Sketch::new();
    for v in [-3.5, -0.25, 0.0, 1e-12, 0.004, 0.2, 0.2, 17.0, 1e6] {
        s.add_weighted(v, 1.5);
    }
    let bins = s.bin_values();
    assert!(bins.windows(2).all(|w| w[0].0 < w[1].0), "{bins:?}");
    let mut t = Sketch::new();
    for (v, w) in bins {
        t.add_weighted(v, w);
    }
    assert_eq!(s, t);
}
use proptest::prelude::*;

fn exact(sorted: &[f64], q: f64) -> f64 {
    let r = nearest_rank(q, sorted.len() as f64) as usize;
    sorted[r - 1]
}

proptest! {
    #[test]
    fn quantiles_within_relative_accuracy(
        mut values in proptest::collection::vec(
            prop_oneof![1e-6f64..1e-3, 1e-3f64..10.0, 10.0f64..1e6, -1e3f64..-1e-3], 1..400),
        q in 0.0f64..=1.0,
    ) {
        let mut s = Sketch::new();
        for &v in &values { s.add(v); }
        values.sort_by(f64::total_cmp);
        let want = exact(&values, q);
        let got = s.quantile(q).unwrap();
        prop_assert!((got - want).abs() <= RELATIVE_ACCURACY * want.abs() * (1.0 + 1e-9),
            "q={q} want={want} got={got}");
    }

    #[test]
    fn merge_equals_sketch_of_union(
        a in proptest::collection::vec(1e-6f64..1e6, 0..200),
        b in proptest::collection::vec(-1e6f64..1e6, 0..200),
    ) {
        let (mut sa, mut sb, mut su) = (Sketch::new(), Sketch::new(), Sketch::new());
        for &v in &a { sa.add(v); su.add(v); }
        for &v in &b { sb.add(v); su.add(v); }
        sa.merge(&sb);
        prop_assert_eq!(&sa, &su);
    }

    #[test]
    fn encoding_round_trips(
        values in proptest::collection::vec((-1e9f64..1e9, prop_oneof![Just(1.0), 0.01f64..100.0]), 0..300),
    ) {
        let mut s = Sketch::new();
        for &(v, w) in &values { s.add_weighted(v, w); }
        let back = Sketch::decode(&s.encode()).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Sketch::decode(&bytes);
    }
}

#[test]
fn weights_scale_counts_not_values() {
    let mut s = Sketch::new();
    s.add_weighted(0.250, 10.0); // "250|ms|@0.1" seen once stands for ten calls
    assert_eq!(s.count(), 10.0);
    let p50 = s.quantile(0.5).unwrap();
    assert!((p50 - 0.25).abs() <= 0.0025, "{p50}");
}

#[test]
fn bin_cap_folds_lowest_bins_and_keeps_high_quantiles() {
    let mut s = Sketch::new();
    let mut v = 1e-6;
    for _ in 0..5000 {
        s.add(v);
        v *= 1.03;
    }
    assert!(s.bins() <= MAX_BINS);
    assert_eq!(s.count(), 5000.0);
    let top = v / 1.03;
    let p100 = s.quantile(1.0).unwrap();
    assert!((p100 - top).abs() <= top * RELATIVE_ACCURACY, "{p100} vs {top}");
}

#[test]
fn damaged_encodings_are_rejected() {
    let mut s = Sketch::new();
    for v in [0.01, 0.02, 0.5, 3.0] {
        s.add(v);
    }
    let good = s.encode();
    assert!(Sketch::decode(&good[..good.len() - 1]).is_err(), "truncated");
    let mut extra = good.clone();
    extra.push(0);
    assert!(Sketch::decode(&extra).is_err(), "trailing byte");
    let mut bad_version = good;
    bad_version[0] = (bad_version[0] & 0xf0) | 0x0f;
    assert!(Sketch::decode(&bad_version).is_err(), "unknown version");
}

#[test]
fn typical_timer_sketch_is_small() {
    // 1000 calls log-normally spread around 80 ms: a realistic 10 s interval of a busy op.
    let mut s = Sketch::new();
    let mut x: u64 = 42;
    for _ in 0..1000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        s.add(0.08 * (2.0 * (u - 0.5)).exp());
    }
    let bytes = s.encode().len();
    assert!(bytes < 250, "encoded {bytes} bytes for {} bins", s.bins());
}

/// A sketch kept between batches (a busy timer's) holds room for its bins, not for the
/// values of the batch that made them.
#[test]
fn a_batch_leaves_room_for_its_bins_not_its_values() {
    let mut s = Sketch::new();
    s.add_values(&[0.25; 256]);
    s.add_values(&[-0.5; 100]);
    assert_eq!((s.pos.0.len(), s.neg.0.len()), (1, 1));
    assert!(s.pos.0.capacity() <= 2 && s.neg.0.capacity() <= 2, "{} {}", s.pos.0.capacity(), s.neg.0.capacity());
    assert_eq!(s.count(), 356.0);
}

#[test]
fn a_stored_key_past_the_range_of_keys_is_refused() {
    for key in [KEY_LIMIT + 1, -KEY_LIMIT - 1, 1 << 30, -(1 << 30)] {
        let mut s = Sketch::new();
        s.pos = Bins(vec![(key, 1.0)]);
        assert_eq!(Sketch::decode(&s.encode()), Err(Truncated), "key {key}");
        s.pos = Bins(vec![(key.clamp(-KEY_LIMIT, KEY_LIMIT), 1.0)]);
        assert!(Sketch::decode(&s.encode()).is_ok(), "key {key}");
    }
}
