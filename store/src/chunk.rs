//! Chunk encodings: how a run of points of one series is packed into one blob.
//!
//! Two formats, picked by the first byte:
//!
//! * **Scalar raw** (counters, gauges, sets at flush resolution): timestamps as
//!   delta-of-delta (Gorilla buckets: a regular flush costs 1 bit), one value column, and for
//!   gauges min/max stored as XOR against the value (1 bit when a gauge was set once).
//! * **Aggregate** (distributions, and every rollup tier): timestamps plus count, sum, min,
//!   max, last and the offset of the last sample, each its own column, and an optional sketch
//!   per point.
//!
//! Each value column picks the cheapest of integer, float-delta and XOR coding (see
//! [`crate::column`]). Everything round-trips bit for bit.
//!
//! Formats 1 and 2 (schema 4 and older) have 1-bit column modes and flagged integer codes;
//! formats 4 and 5 have 2-bit modes (room for float deltas) and framed codes. Both are read.
//!
//! ## Failure modes
//! Decoding is defensive: lengths are checked against the blob, every read is bounds-checked,
//! and any inconsistency is a [`Truncated`] error that the store reports as corruption.

use crate::codec::{
    BitReader, BitWriter, Layout, Truncated, bit_width, get_varint, plan_codes, read_codes, unzigzag, write_codes,
    zigzag,
};
use crate::column::{
    INT_LIMIT, MAX_SCALE, as_scaled_ints, read_values, read_xor_against, write_values, write_xor_against,
};
use crate::model::Point;
use crate::sketch::Sketch;

const FORMAT_SCALAR_V1: u8 = 1;
const FORMAT_AGG_V1: u8 = 2;
const FORMAT_SCALAR: u8 = 4;
const FORMAT_AGG: u8 = 5;
/// Segments: `3`, then `varint length, chunk` repeated. An open head is kept this way so a
/// flush encodes only its newest segment (see [`append_segment`]); a sealed chunk is one
/// plain chunk again.
const FORMAT_SEGMENTS: u8 = 3;
/// Points a head segment takes before the next flush starts a new one: a flush re-encodes
/// at most this many points whatever the head's length.
pub const SEGMENT_POINTS: usize = 8;
/// Refuse to decode chunks claiming more points than this (a damaged length field).
const MAX_POINTS: u64 = 1 << 20;

/// Encode raw scalar points (count 1, sum == last, as the writer makes them).
pub fn encode_scalar(points: &[Point]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(16 + points.len() * 2);
    w.write_bytes(&[FORMAT_SCALAR]);
    w.write_varint(points.len() as u64);
    write_timestamps(&mut w, points.iter().map(|p| p.ts_ms));
    let values: Vec<f64> = points.iter().map(|p| p.last).collect();
    write_values(&mut w, &values);
    let has_range = points.iter().any(|p| p.min.to_bits() != p.last.to_bits() || p.max.to_bits() != p.last.to_bits());
    w.write_bit(has_range);
    if has_range {
        let all: Vec<f64> = points.iter().flat_map(|p| [p.last, p.min, p.max]).collect();
        match as_scaled_ints(&all) {
            // Gauges with decimal values: min and max as (scaled) distances below and above
            // the value, usually a few bits.
            Some((k, ints)) => {
                w.write_bit(true);
                w.write_bits(u64::from(k), 3);
                let below: Vec<u64> = ints.chunks(3).map(|t| zigzag(t[0].wrapping_sub(t[1]))).collect();
                let above: Vec<u64> = ints.chunks(3).map(|t| zigzag(t[2].wrapping_sub(t[0]))).collect();
                write_codes(&mut w, &below, plan_codes(&below, Layout::Framed));
                write_codes(&mut w, &above, plan_codes(&above, Layout::Framed));
            }
            None => {
                w.write_bit(false);
                write_xor_against(&mut w, points.iter().map(|p| (p.min, p.last)));
                write_xor_against(&mut w, points.iter().map(|p| (p.max, p.last)));
            }
        }
    }
    w.finish()
}

/// Encode aggregate points (distributions and rollups).
pub fn encode_agg(points: &[Point]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(32 + points.len() * 8);
    w.write_bytes(&[FORMAT_AGG]);
    w.write_varint(points.len() as u64);
    write_timestamps(&mut w, points.iter().map(|p| p.ts_ms));
    let col = |f: &dyn Fn(&Point) -> f64| points.iter().map(f).collect::<Vec<f64>>();
    write_values(&mut w, &col(&|p| p.count));
    write_values(&mut w, &col(&|p| p.sum));
    write_values(&mut w, &col(&|p| p.min));
    write_values(&mut w, &col(&|p| p.max));
    write_values(&mut w, &col(&|p| p.last));
    write_values(&mut w, &col(&|p| (p.last_ts_ms - p.ts_ms) as f64));
    let has_sketch = points.iter().any(|p| p.sketch.is_some());
    w.write_bit(has_sketch);
    if has_sketch {
        let mut buf = Vec::new();
        for p in points {
            buf.clear();
            if let Some(s) = &p.sketch {
                s.encode_into(&mut buf);
            }
            w.write_varint(buf.len() as u64);
            w.write_bytes(&buf);
        }
    }
    w.finish()
}

/// The plain chunks of a blob: itself, or its segments.
pub fn segments(blob: &[u8]) -> Result<Vec<&[u8]>, Truncated> {
    if blob.first() != Some(&FORMAT_SEGMENTS) {
        return Ok(vec![blob]);
    }
    let mut out = Vec::new();
    let mut at = 1;
    while at < blob.len() {
        let len = usize::try_from(get_varint(blob, &mut at)?).map_err(|_| Truncated)?;
        let seg = blob.get(at..at.checked_add(len).ok_or(Truncated)?).ok_or(Truncated)?;
        if seg.first().is_none_or(|&f| f == FORMAT_SEGMENTS) {
            return Err(Truncated);
        }
        out.push(seg);
        at += len;
    }
    Ok(out)
}

/// Points in a plain chunk, from its header.
pub fn point_count(chunk: &[u8]) -> Result<usize, Truncated> {
    let mut r = BitReader::new(chunk);
    r.read_bytes(1)?;
    Ok(r.read_varint()? as usize)
}

/// `head` (plain or segmented) with `open`, the encoding of its newest points, as its
/// last segment, replacing the segment `open` was built from when `replace_last`.
pub fn append_segment(head: &[u8], replace_last: bool, open: &[u8]) -> Result<Vec<u8>, Truncated> {
    let mut keep = segments(head)?;
    if replace_last {
        keep.pop();
    }
    if keep.is_empty() {
        return Ok(open.to_vec());
    }
    let mut w = BitWriter::with_capacity(head.len() + open.len() + 8);
    w.write_bytes(&[FORMAT_SEGMENTS]);
    for seg in keep.into_iter().chain([open]) {
        w.write_varint(seg.len() as u64);
        w.write_bytes(seg);
    }
    Ok(w.finish())
}

/// Decode any format.
pub fn decode(blob: &[u8]) -> Result<Vec<Point>, Truncated> {
    if blob.first() == Some(&FORMAT_SEGMENTS) {
        let mut out = Vec::new();
        for seg in segments(blob)? {
            out.extend(decode_plain(seg)?);
        }
        if out.windows(2).any(|w| w[0].ts_ms >= w[1].ts_ms) {
            return Err(Truncated);
        }
        return Ok(out);
    }
    decode_plain(blob)
}

fn decode_plain(blob: &[u8]) -> Result<Vec<Point>, Truncated> {
    let mut r = BitReader::new(blob);
    let format = r.read_bytes(1)?[0];
    let n = r.read_varint()?;
    if n > MAX_POINTS || n as usize > blob.len() * 8 {
        return Err(Truncated);
    }
    let n = n as usize;
    let ts = read_timestamps(&mut r, n)?;
    // Formats 1 and 2: 1-bit value modes and flagged codes only.
    let layout = match format {
        FORMAT_SCALAR_V1 | FORMAT_AGG_V1 => Layout::Flagged,
        _ => Layout::Framed,
    };
    let points = match format {
        FORMAT_SCALAR | FORMAT_SCALAR_V1 => {
            let values = read_values(&mut r, n, layout)?;
            let (mins, maxs) = if !r.read_bit()? {
                (values.clone(), values.clone())
            } else if r.read_bit()? {
                let k = r.read_bits(3)? as u32;
                if k > MAX_SCALE {
                    return Err(Truncated);
                }
                let f = 10f64.powi(k as i32);
                let below = read_codes(&mut r, n, layout)?;
                let above = read_codes(&mut r, n, layout)?;
                let mut mins = Vec::with_capacity(n);
                let mut maxs = Vec::with_capacity(n);
                for (i, v) in values.iter().enumerate() {
                    let vi = (v * f).round() as i64;
                    mins.push(vi.wrapping_sub(unzigzag(below[i])) as f64 / f);
                    maxs.push(vi.wrapping_add(unzigzag(above[i])) as f64 / f);
                }
                (mins, maxs)
            } else {
                (read_xor_against(&mut r, &values)?, read_xor_against(&mut r, &values)?)
            };
            ts.iter()
                .zip(values)
                .zip(mins.into_iter().zip(maxs))
                .map(|((&ts_ms, v), (min, max))| Point {
                    ts_ms,
                    count: 1.0,
                    sum: v,
                    min,
                    max,
                    last: v,
                    last_ts_ms: ts_ms,
                    sketch: None,
                })
                .collect()
        }
        FORMAT_AGG | FORMAT_AGG_V1 => {
            let count = read_values(&mut r, n, layout)?;
            let sum = read_values(&mut r, n, layout)?;
            let min = read_values(&mut r, n, layout)?;
            let max = read_values(&mut r, n, layout)?;
            let last = read_values(&mut r, n, layout)?;
            let last_off = read_values(&mut r, n, layout)?;
            let mut sketches = vec![None; n];
            if r.read_bit()? {
                for s in &mut sketches {
                    let len = r.read_varint()? as usize;
                    let bytes = r.read_bytes(len)?;
                    if len > 0 {
                        *s = Some(Sketch::decode(bytes)?);
                    }
                }
            }
            let mut out = Vec::with_capacity(n);
            for (i, sketch) in sketches.into_iter().enumerate() {
                let off = last_off[i];
                if off.fract() != 0.0 || off.abs() > INT_LIMIT {
                    return Err(Truncated);
                }
                out.push(Point {
                    ts_ms: ts[i],
                    count: count[i],
                    sum: sum[i],
                    min: min[i],
                    max: max[i],
                    last: last[i],
                    last_ts_ms: ts[i].checked_add(off as i64).ok_or(Truncated)?,
                    sketch,
                });
            }
            out
        }
        _ => return Err(Truncated),
    };
    if !r.at_end() {
        return Err(Truncated);
    }
    Ok(points)
}

// ---- timestamps: delta-of-delta in Gorilla-style buckets ----

const TS_BUCKETS: [(u32, u32); 4] = [(2, 8), (3, 16), (4, 32), (4, 64)]; // (prefix bits, payload bits)

fn write_timestamps(w: &mut BitWriter, ts: impl Iterator<Item = i64>) {
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, t) in ts.enumerate() {
        if i == 0 {
            w.write_bits(zigzag(t), 64);
        } else {
            let delta = t.wrapping_sub(prev);
            let dod = zigzag(delta.wrapping_sub(prev_delta));
            if dod == 0 {
                w.write_bit(false);
            } else {
                let width = bit_width(dod);
                let (b, &(prefix, payload)) =
                    TS_BUCKETS.iter().enumerate().find(|(_, (_, p))| width <= *p).unwrap_or((3, &TS_BUCKETS[3]));
                // prefixes: 10, 110, 1110, 1111
                let code = if b == 3 { 0b1111 } else { ((1u64 << (b + 1)) - 1) << 1 };
                w.write_bits(code, prefix);
                w.write_bits(dod, payload);
            }
            prev_delta = delta;
        }
        prev = t;
    }
}

fn read_timestamps(r: &mut BitReader<'_>, n: usize) -> Result<Vec<i64>, Truncated> {
    let mut out = Vec::with_capacity(n);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for i in 0..n {
        let t = if i == 0 {
            unzigzag(r.read_bits(64)?)
        } else {
            let mut ones = 0;
            while ones < 4 && r.read_bit()? {
                ones += 1;
            }
            let dod = match ones {
                0 => 0,
                k => unzigzag(r.read_bits(TS_BUCKETS[k - 1].1)?),
            };
            let delta = prev_delta.wrapping_add(dod);
            prev_delta = delta;
            prev.wrapping_add(delta)
        };
        out.push(t);
        prev = t;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::{IntColumn, XorWriter, ordered, xor_cost};
    use proptest::prelude::*;

    fn counters(ts: std::ops::Range<i64>) -> Vec<Point> {
        ts.map(|t| Point::from_sample(t * 1000, &crate::model::Sample::Counter((t % 7) as f64))).collect()
    }

    #[test]
    fn segments_decode_as_one_run_and_damage_is_refused() -> Result<(), Truncated> {
        let (a, b, c) = (counters(0..70), counters(70..75), counters(75..80));
        let head = append_segment(&encode_scalar(&a), false, &encode_scalar(&b))?;
        assert_eq!(head[0], FORMAT_SEGMENTS);
        assert_eq!(decode(&head)?, [a.clone(), b.clone()].concat());
        // The open segment is replaced, the others copied.
        let bc = [b.clone(), c.clone()].concat();
        let head = append_segment(&head, true, &encode_scalar(&bc))?;
        assert_eq!(decode(&head)?, [a.clone(), bc].concat());
        assert_eq!(segments(&head)?.len(), 2);
        // A length past the end, an empty or nested segment, or time going back: refused.
        for bad in [vec![FORMAT_SEGMENTS, 200, 1], vec![FORMAT_SEGMENTS, 0], vec![FORMAT_SEGMENTS, 1, FORMAT_SEGMENTS]]
        {
            assert_eq!(decode(&bad), Err(Truncated), "{bad:?}");
        }
        let backwards = append_segment(&encode_scalar(&c), false, &encode_scalar(&a))?;
        assert_eq!(decode(&backwards), Err(Truncated));
        Ok(())
    }

    /// What the fixture below holds: a full-precision walk with ranges, small integers, and
    /// minute aggregates of the walk.
    fn compat_inputs() -> (Vec<Point>, Vec<Point>, Vec<Point>) {
        let t0 = 1_767_225_600_000i64;
        let mut lvl = 0.75f64;
        let walk: Vec<Point> = (0..40)
            .map(|i| {
                lvl += (f64::from(i) * 0.618_033_988_749_895).fract() - 0.5;
                let v = lvl;
                Point {
                    ts_ms: t0 + i64::from(i) * 10_000,
                    count: 1.0,
                    sum: v,
                    min: v - 0.125 * (f64::from(i) * 0.3).sin().abs(),
                    max: v,
                    last: v,
                    last_ts_ms: t0 + i64::from(i) * 10_000,
                    sketch: None,
                }
            })
            .collect();
        let ints: Vec<Point> = (0..40)
            .map(|i| {
                Point::from_sample(t0 + i64::from(i) * 10_000, &crate::model::Sample::Counter(f64::from((i * 37) % 11)))
            })
            .collect();
        let agg: Vec<Point> = walk
            .chunks(6)
            .enumerate()
            .map(|(k, c)| {
                let mut p = c[0].clone();
                for q in &c[1..] {
                    p.merge(q);
                }
                p.ts_ms = t0 + k as i64 * 60_000;
                p
            })
            .collect();
        (walk, ints, agg)
    }
    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect()
    }

    /// Chunks as schema 4 wrote them (formats 1 and 2, printed by that version's encoder):
    /// stores written before the float-delta mode must read back bit for bit.
    #[test]
    fn chunks_of_schema_4_still_decode() -> Result<(), Truncated> {
        let (walk, ints, agg) = compat_inputs();
        for (hex, want) in [
            (
                "012800000336edb55000c9c400000000004ff40000000000003371f1bbcdcbfa547275da576684441a76cfeab7748660ae0db30db301ab329d146e6cd69b6eb08df2c4dbf2fac2c9bd10c186dae7a3ce2d43a67f2b5f82d2cd85677c6bc367f79020a8ebef0fd5dda9d0ef1c1a66da02e0703e805f041ddf36211f40202ed77a4f625ea01de7a1e1b3f63d500cd41b75d65ec2e000097c555a304c140319c2f705eeaeba01d99e6b07167dd400cb2b3f05d5dd1b2768704dd31db9dff031bb346621cf09bb4d3ba8b4140cc74e694da9f2860d5bcb47ecb221248a43a510abf3883ece29df4d9144a1fa3ba346a8a4debf9a332da670750f9f86fb8809b433b73d76ac8cc24e502de4bdc67f521c1a5b446381f4024d21c55b5c77fa00a317642f59c16500faa64f945ace7a800cfd0b872ad8f900033104627fc400a0030d4967ab4a5e4cec2bd7ad5f7a9ff979ee3eb417338f9ca5dc326196a71999fcfb79444cf59e07f005f57bf8ac4f0e7003b12a3d70644edd000e7d22f04dabed0002bc54e6b89a54c000374ca248b77e30001230f992c93b6c0003c3103cbc914900024b5c6cc31f3fc0074e86285c872270031ecc170281b5e400febb3c52b67099000ac9102d1725914003614a62eb2ad01003a13d3e036549b400fa36176984424900608fcc7b4602f840001e2f3dc8669bd0000e086ae81484c4000941ce0e2c335d000269e4e5a6cdb0c00782fd5e4681fbb0035982d7c67b5574003014b878505e2d003aafd53ba11131c0006d3c731d5a98100037501f250628cc00067dcc7433634d0001ebdf6420dfebc000fbe112849d59d00179a9101309b73c01d6807fd61165710008897023df6060400ef508c8671bda9003930cc59e598c94002d54bbcacc22ce0000000000",
                &walk,
            ),
            ("012800000336edb55000c9c4000000000000201086a10d421a86a10d421a84350d421a8435086a1a84350868", &ints),
            (
                "020700000336edb55000e0001d4c000225808e7ff432b48b8ce61983f7ffb1a7883380391bff8719f6c4be680400211b07a592e98efffa1730f9fccf5b0004d0d44b8813fcbfdf1cdceb4208a7efeeaad62f2dc3e4f2f48dbb4aba4cbcae4eb86fd7b3bc2c10c39d5e7ca6ed9ee07b00d1c37d0b32d95e07f002e85ba49f5bcab003551d3fdc224b24ff754cda58fbbf3b2b5f2ace8954bb3c6f307244978b986fa8eb0adaee6861ae8f499f3f88205e35e488e9b42a5cc84310066ce7f2a010ef3aaefc193b74492b438f513f994021e68f6200c1ce884202fd2826ff768724cc5e35f8df4b9281ef7c0f601efe4045d547af051b0d4009387e",
                &agg,
            ),
        ] {
            let blob = unhex(hex);
            assert!(matches!(blob[0], FORMAT_SCALAR_V1 | FORMAT_AGG_V1));
            assert!(same(&decode(&blob)?, want));
        }
        // Re-encoded today: the new formats, and the walk in float-delta mode is smaller.
        let now = encode_scalar(&walk);
        assert_eq!(now[0], FORMAT_SCALAR);
        assert!(same(&decode(&now)?, &walk));
        assert!(same(&decode(&encode_agg(&agg))?, &agg));
        Ok(())
    }

    /// An hour of a full-precision random walk at 10 s: float-delta mode, and about 6 bytes
    /// a point (XOR took 6.9 on the footprint benchmark's walks).
    #[test]
    fn random_walks_code_as_float_deltas() -> Result<(), Truncated> {
        let mut level = 41.3f64;
        let walk: Vec<Point> = (0..360)
            .map(|i| {
                level += (f64::from(i) * 0.754_877_666_246_692_7).fract() - 0.5;
                scalar(i64::from(i) * 10_000, level, level, level)
            })
            .collect();
        let blob = encode_scalar(&walk);
        let xor_bytes = xor_cost(walk.iter().map(|p| p.last.to_bits())) / 8;
        assert!(same(&decode(&blob)?, &walk));
        assert!(blob.len() as u64 + 40 < xor_bytes, "{} bytes, XOR alone {xor_bytes}", blob.len());
        assert!(blob.len() < 360 * 62 / 10, "{} bytes for 360 points", blob.len());
        Ok(())
    }

    fn scalar(ts_ms: i64, v: f64, min: f64, max: f64) -> Point {
        Point { ts_ms, count: 1.0, sum: v, min, max, last: v, last_ts_ms: ts_ms, sketch: None }
    }

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.ts_ms == y.ts_ms
                    && x.last_ts_ms == y.last_ts_ms
                    && [x.count, x.sum, x.min, x.max, x.last]
                        .iter()
                        .zip([y.count, y.sum, y.min, y.max, y.last])
                        .all(|(p, q)| p.to_bits() == q.to_bits())
                    && x.sketch == y.sketch
            })
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1000i64..1000).prop_map(|v| v as f64),
            (-100000i64..100000).prop_map(|v| v as f64 / 100.0),
            Just(0.0),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn scalar_chunks_round_trip_bit_for_bit(
            raw in proptest::collection::vec((any::<i32>(), any_f64(), any_f64(), any_f64()), 0..200),
            start in any::<i64>(),
        ) {
            let mut ts = start / 2;
            let points: Vec<Point> = raw.iter().map(|&(dt, v, a, b)| {
                ts = ts.wrapping_add(i64::from(dt));
                scalar(ts, v, a, b)
            }).collect();
            let back = decode(&encode_scalar(&points)).unwrap();
            prop_assert!(same(&back, &points));
        }

        #[test]
        fn agg_chunks_round_trip(
            raw in proptest::collection::vec((0i64..100_000, any_f64(), any_f64(), 0i64..10_000, proptest::option::of(proptest::collection::vec(1e-4f64..10.0, 1..20))), 0..100),
        ) {
            let mut ts = 1_700_000_000_000i64;
            let points: Vec<Point> = raw.iter().map(|(dt, a, b, off, vals)| {
                ts += dt;
                let sketch = vals.as_ref().map(|vs| { let mut s = Sketch::new(); for &v in vs { s.add(v); } s });
                Point { ts_ms: ts, count: (*off % 7) as f64, sum: *a, min: *b, max: *a, last: *b, last_ts_ms: ts + off, sketch }
            }).collect();
            let back = decode(&encode_agg(&points)).unwrap();
            prop_assert!(same(&back, &points));
        }

        #[test]
        fn float_columns_round_trip_in_every_mode(
            start in -100.0f64..100.0,
            steps in proptest::collection::vec(prop_oneof![-0.5f64..0.5, any_f64()], 1..300),
        ) {
            let mut level = start;
            let walk: Vec<Point> = steps.iter().enumerate().map(|(i, s)| {
                level += s;
                scalar(i as i64 * 1000, level, level - s.abs(), level)
            }).collect();
            prop_assert!(same(&decode(&encode_scalar(&walk)).unwrap(), &walk));
            // The size model that picks a mode is the size written.
            let vals: Vec<f64> = walk.iter().map(|p| p.last).collect();
            let mut w = BitWriter::default();
            let mut xw = XorWriter::default();
            for v in &vals {
                xw.write(&mut w, v.to_bits());
            }
            prop_assert_eq!(w.bits(), xor_cost(vals.iter().map(|v| v.to_bits())));
            let column = IntColumn::plan(&vals.iter().map(|v| ordered(v.to_bits())).collect::<Vec<_>>());
            let mut w = BitWriter::default();
            column.write(&mut w);
            prop_assert_eq!(w.bits(), column.cost());
        }

        #[test]
        fn ordered_bits_order_like_the_doubles(a in any::<f64>(), b in any::<f64>()) {
            prop_assert_eq!(ordered(ordered(a.to_bits()) as u64) as u64, a.to_bits());
            if let Some(o) = a.partial_cmp(&b).filter(|_| a != 0.0 || b != 0.0) {
                prop_assert_eq!(ordered(a.to_bits()).cmp(&ordered(b.to_bits())), o);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn regular_integer_counter_costs_its_range_in_bits() {
        let mut x: u64 = 7;
        let points: Vec<Point> = (0..360)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                let v = 40.0 + ((x >> 33) % 20) as f64;
                scalar(1_700_000_000_000 + i * 10_000, v, v, v)
            })
            .collect();
        let blob = encode_scalar(&points);
        // Offsets from 40 in exactly 5 bits with no per-value flag, and 1 bit per regular
        // timestamp: 270 bytes and the headers (with a flag per value it was 315).
        assert!(blob.len() < 300, "{} bytes for 360 points", blob.len());
        assert!(same(&decode(&blob).unwrap(), &points));
    }

    #[test]
    fn decimal_gauges_use_scaled_integers() {
        // A CPU-percent gauge with one decimal, set once per interval.
        let steady: Vec<Point> = (0..100)
            .map(|i| {
                let v = (455 + i % 7) as f64 / 10.0;
                scalar(i * 10_000, v, v, v)
            })
            .collect();
        let blob = encode_scalar(&steady);
        assert!(blob.len() < 100, "{} bytes", blob.len());
        assert!(same(&decode(&blob).unwrap(), &steady));
        // The same gauge with min and max spread around the value: a few bits each.
        let ranged: Vec<Point> = (0..100)
            .map(|i| {
                let d = i % 7;
                scalar(i * 10_000, (455 + d) as f64 / 10.0, (452 + d) as f64 / 10.0, (467 + d) as f64 / 10.0)
            })
            .collect();
        let blob = encode_scalar(&ranged);
        assert!(blob.len() < 250, "{} bytes", blob.len());
        assert!(same(&decode(&blob).unwrap(), &ranged));
    }

    #[test]
    fn truncated_blob_is_an_error() {
        let points: Vec<Point> = (0..50).map(|i| scalar(i * 1000, 0.1 * i as f64, 0.0, 9.0)).collect();
        let blob = encode_scalar(&points);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
    }
}
