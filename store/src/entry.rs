//! Points on their way to the store: a flush's samples as borrowed, or points decoded from
//! the recent log, put in series and time order and merged where two share an interval,
//! before the recent log ([`crate::recent`]) or the heads ([`crate::write`]) take them.

use crate::error::{Error, Result};
use crate::model::{Kind, Point, Sample, SeriesId};
use crate::registry::Registry;
use crate::sketch::Sketch;

/// A point on its way to the store, as [`sort_and_merge`] and the recent log see it.
pub(crate) trait Entry {
    /// Its series.
    fn series(&self) -> SeriesId;
    /// Its kind.
    fn kind(&self) -> Kind;
    /// Start of its interval, Unix ms.
    fn ts_ms(&self) -> i64;
    /// Merge a later point of the same series and interval into this one
    /// ([`Point::merge_same_interval`]).
    fn merge_later(&mut self, later: &Self);
    /// The fields the recent log stores.
    fn fields(&self) -> Fields<'_>;
}

/// What the recent log stores of a point: one value for counters and sets (`last`), three for
/// gauges, and count, sum, min, max and sketch for distributions.
pub(crate) struct Fields<'a> {
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub count: f64,
    pub sum: f64,
    pub sketch: Option<&'a Sketch>,
}

impl<'a> Fields<'a> {
    fn of(p: &'a Point) -> Self {
        Fields { last: p.last, min: p.min, max: p.max, count: p.count, sum: p.sum, sketch: p.sketch.as_ref() }
    }
}

impl Entry for (SeriesId, Kind, Point) {
    fn series(&self) -> SeriesId {
        self.0
    }
    fn kind(&self) -> Kind {
        self.1
    }
    fn ts_ms(&self) -> i64 {
        self.2.ts_ms
    }
    fn merge_later(&mut self, later: &Self) {
        self.2.merge_same_interval(&later.2, self.1);
    }
    fn fields(&self) -> Fields<'_> {
        Fields::of(&self.2)
    }
}

/// A sample of a flush, borrowed until two of one series and interval are merged: 32 bytes
/// (a flush of 100 000 series holds 100 000 of them while it is written).
pub(crate) struct Flushed<'s> {
    series: SeriesId,
    ts_ms: i64,
    value: FlushedValue<'s>,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Flushed<'_>>() == 32);

/// The kind sits beside the variant's tag, in what would be padding.
enum FlushedValue<'s> {
    Sample(Kind, &'s Sample),
    Merged(Kind, Box<Point>),
}

impl<'s> Flushed<'s> {
    /// `sample`, borrowed.
    pub(crate) fn sample(series: SeriesId, kind: Kind, ts_ms: i64, sample: &'s Sample) -> Self {
        Self { series, ts_ms, value: FlushedValue::Sample(kind, sample) }
    }

    /// The point this is.
    pub(crate) fn point(&self) -> Point {
        match &self.value {
            FlushedValue::Sample(_, s) => Point::from_sample(self.ts_ms, s),
            FlushedValue::Merged(_, p) => Point::clone(p),
        }
    }
}

impl Entry for Flushed<'_> {
    fn series(&self) -> SeriesId {
        self.series
    }
    fn kind(&self) -> Kind {
        match self.value {
            FlushedValue::Sample(kind, _) | FlushedValue::Merged(kind, _) => kind,
        }
    }
    fn ts_ms(&self) -> i64 {
        self.ts_ms
    }
    fn merge_later(&mut self, later: &Self) {
        // Rare (a backfill of an interval flushed in the same write): a copy costs nothing.
        let (kind, mut merged) = (self.kind(), self.point());
        merged.merge_same_interval(&later.point(), kind);
        self.value = FlushedValue::Merged(kind, Box::new(merged));
    }
    fn fields(&self) -> Fields<'_> {
        match &self.value {
            FlushedValue::Merged(_, p) => Fields::of(p),
            FlushedValue::Sample(_, s) => {
                let scalar =
                    |last: f64, min: f64, max: f64| Fields { last, min, max, count: 1.0, sum: last, sketch: None };
                match s {
                    Sample::Counter(v) | Sample::Set(v) => scalar(*v, *v, *v),
                    Sample::Gauge { last, min, max } => scalar(*last, *min, *max),
                    Sample::Distribution(d) => Fields {
                        last: 0.0,
                        min: d.min,
                        max: d.max,
                        count: d.count,
                        sum: d.sum,
                        sketch: Some(&d.sketch),
                    },
                }
            }
        }
    }
}

/// A sample checked against its series (registered, of its kind) and the time range.
pub(crate) fn flushed<'s>(
    registry: &Registry,
    (series, ts_ms, sample): (SeriesId, i64, &'s Sample),
) -> Result<Flushed<'s>> {
    let kind = registry.kind(series).ok_or_else(|| Error::Invalid(format!("series {series} is not registered")))?;
    crate::tier::check_time(|| format!("series {series}"), ts_ms)?;
    if sample.kind() != kind {
        return Err(Error::Invalid(format!("series {series} is a {kind}, got a {} sample", sample.kind())));
    }
    Ok(Flushed::sample(series, kind, ts_ms, sample))
}

/// `sorted` (checked samples in series order) with `rest` (in order too) merged in: a
/// point of `sorted` comes before one of `rest` of the same series and interval, which was
/// written after it.
pub(crate) fn in_series_order<'s>(
    sorted: impl Iterator<Item = Result<Flushed<'s>>>,
    rest: Vec<Flushed<'s>>,
) -> impl Iterator<Item = Result<Flushed<'s>>> {
    let key = |p: &Flushed<'_>| (p.series(), p.ts_ms());
    let (mut sorted, mut rest) = (sorted.peekable(), rest.into_iter().peekable());
    std::iter::from_fn(move || match sorted.peek() {
        Some(Ok(p)) if rest.peek().is_some_and(|r| key(r) < key(p)) => rest.next().map(Ok),
        Some(_) => sorted.next(),
        None => rest.next().map(Ok),
    })
}

/// Series of sorted points.
pub(crate) fn series_in(points: &[Flushed<'_>]) -> usize {
    points.chunk_by(|a, b| a.series() == b.series()).count()
}

/// Order points by series, then time (keeping the order written within a timestamp), and
/// merge the points of one series that share a timestamp.
pub(crate) fn sort_and_merge<E: Entry>(points: &mut Vec<E>) {
    let key = |e: &E| (e.series(), e.ts_ms());
    // A flush usually comes in series order already (the agent's live series are in the
    // order they were registered) but for a few points, such as the host sample at its end.
    if !points.is_sorted_by_key(key) {
        match u32::try_from(points.len()) {
            // Order the positions, not the points: a stable sort of 128-byte points took an
            // 8 MB scratch buffer every flush at 100 000 series; this takes 4 bytes a point.
            // Each key ends with the position, so equal keys keep the order written.
            Ok(n) => {
                let mut order: Vec<u32> = (0..n).collect();
                order.sort_unstable_by_key(|&i| (key(&points[i as usize]), i));
                permute(points, order);
            }
            Err(_) => points.sort_by_key(key),
        }
    }
    points.dedup_by(|later, kept| {
        let same = key(later) == key(kept);
        if same {
            kept.merge_later(later);
        }
        same
    });
}

/// Put what was at `order[k]` at `k`, for every `k` (`order` is a permutation of the
/// positions), in place: each cycle of the permutation is walked once, one swap a step.
fn permute<T>(items: &mut [T], mut order: Vec<u32>) {
    for start in 0..items.len() {
        let mut at = start;
        // A position whose item is in place points at itself.
        while order[at] as usize != at {
            let from = order[at] as usize;
            order[at] = at as u32;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::model::Distribution;

    use super::*;

    proptest! {
        /// Points come out as a stable sort by series and time leaves them, merged alike
        /// (a gauge's last value is the one written last).
        #[test]
        fn sort_and_merge_is_a_stable_sort_then_a_merge(
            raw in proptest::collection::vec((0i64..6, 0i64..4, -5i32..5), 0..60),
            sorted_first in any::<bool>(),
        ) {
            let mut raw = raw;
            if sorted_first {
                raw.sort_by_key(|&(s, t, _)| (s, t));
            }
            // Series 0 and 1 are counters, the others gauges.
            let kind = |s: i64| if s < 2 { Kind::Counter } else { Kind::Gauge };
            let samples: Vec<(SeriesId, i64, Sample)> = raw
                .iter()
                .map(|&(s, t, v)| {
                    let v = f64::from(v);
                    let sample = if s < 2 { Sample::Counter(v) } else { Sample::Gauge { last: v, min: v, max: v } };
                    (SeriesId(s), t * 1000, sample)
                })
                .collect();
            let points: Vec<(SeriesId, Kind, Point)> =
                samples.iter().map(|(s, t, x)| (*s, kind(s.0), Point::from_sample(*t, x))).collect();
            let mut want = points.clone();
            want.sort_by_key(|(s, _, p)| (*s, p.ts_ms));
            want.dedup_by(|later, kept| {
                let same = later.0 == kept.0 && later.2.ts_ms == kept.2.ts_ms;
                if same {
                    kept.2.merge_same_interval(&later.2, kept.1);
                }
                same
            });
            let mut got = points;
            sort_and_merge(&mut got);
            prop_assert_eq!(&got, &want);
            // A flush's borrowed samples come out as the same points.
            let mut flushed: Vec<Flushed<'_>> = samples
                .iter()
                .map(|(s, t, x)| Flushed { series: *s, ts_ms: *t, value: FlushedValue::Sample(kind(s.0), x) })
                .collect();
            sort_and_merge(&mut flushed);
            let got: Vec<_> = flushed.iter().map(|f| (f.series, f.kind(), f.point())).collect();
            prop_assert_eq!(&got, &want);
            // And the recent log stores the same fields either way.
            let base = 0;
            prop_assert_eq!(crate::recent::encode(&flushed, base), crate::recent::encode(&want, base));
        }
    }

    #[test]
    fn the_log_stores_a_borrowed_sample_as_its_point() {
        let mut sketch = Sketch::new();
        for v in [0.012, 0.5, 3.25] {
            sketch.add(v);
        }
        let dist = Distribution { count: 3.0, sum: 3.762, min: 0.012, max: 3.25, sketch };
        let samples = [
            (Kind::Counter, Sample::Counter(7.5)),
            (Kind::Gauge, Sample::Gauge { last: -2.5, min: -9.0, max: 4.0 }),
            (Kind::Set, Sample::Set(12.0)),
            (Kind::Distribution, Sample::Distribution(Box::new(dist))),
        ];
        for (i, (kind, sample)) in samples.iter().enumerate() {
            let series = SeriesId(i as i64 + 1);
            let flushed = [Flushed { series, ts_ms: 5_000, value: FlushedValue::Sample(*kind, sample) }];
            let point = [(series, *kind, Point::from_sample(5_000, sample))];
            assert_eq!(crate::recent::encode(&flushed, 1_000), crate::recent::encode(&point, 1_000), "{kind}");
            assert_eq!(flushed[0].point(), point[0].2, "{kind}");
        }
    }

    #[test]
    fn permute_puts_each_item_where_the_order_says() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        // Two cycles and a fixed point.
        permute(&mut items, vec![2, 0, 1, 3, 5, 4]);
        assert_eq!(items, ['c', 'a', 'b', 'd', 'f', 'e']);
    }
}
