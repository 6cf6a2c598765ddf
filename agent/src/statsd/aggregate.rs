//! Per-interval aggregation of parsed StatsD lines (sans-IO: no sockets, no clock).
//!
//! Each series is looked up by its raw bytes (name, kind, tag text) so the hot path hashes
//! once and allocates nothing; the canonical [`SeriesKey`] (labels sorted, the last duplicate
//! key winning, `service` filled in) is built only when a series is first seen.
//!
//! Semantics (the convention in DESIGN.md):
//! * `c`: the interval's sum of `value / rate` (negative and fractional values allowed);
//!   only series that received something are flushed.
//! * `g`: last, min and max; `+N`/`-N` change the last value. A gauge keeps its value and is
//!   flushed every interval until it expires from memory.
//! * `ms`, `h`, `d`: count (weighted by 1/rate), sum, min, max and a sketch. Durations arrive
//!   in milliseconds and are stored in seconds: `ms` always, `h` and `d` when the name ends in
//!   `duration` (`op.duration`, `op.phase.duration`); other histograms keep their values.
//! * `s`: distinct members per interval, exact up to [`AggregatorConfig::set_exact_limit`],
//!   then a HyperLogLog with 4096 registers (standard error 1.6 %).
//! * `|T<ts>`: the line counts in the interval holding `ts` (a backfill point).
//! * `_e` events with `alert_type:error` and an `op` tag become that operation's last error;
//!   service checks are counted.
//!
//! ## Failure modes
//! Nothing here panics on input. A line that cannot be taken is counted in [`Stats`] under a
//! bounded reason (parse errors, cardinality limits, the backfill bound) and skipped.

use std::collections::BTreeMap;
use std::sync::Arc;

use perfstore::convention::{self, tag};
use perfstore::{Event, Kind, LabelSets, SeriesKey, SharedStr};
/// Maps keyed by bytes from the network hash with a per-process random seed, so nobody can
/// precompute colliding keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use super::backlog::Backlog;
use super::bounds::check_identity;
pub use super::bounds::{MAX_FUTURE_MS, MAX_NAME_BYTES, MAX_TAGS_BYTES};
use super::fast;
pub use super::flush::{Flush, HeldBytes};
use super::parser::{EventLine, Line, MetricLine, MetricType, ParseError, Value, parse_line};
use super::series::{Dist, Ident, LiveTable, stamp};
use super::state::{State, apply, take_sample};

/// Tunables of an [`Aggregator`].
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// `service` label of series whose lines carry no `service` tag.
    pub service: String,
    /// Most series held at once.
    pub max_series: usize,
    /// Most series sharing one name.
    pub max_series_per_name: usize,
    /// Distinct set members counted exactly per series and interval before switching to HLL.
    pub set_exact_limit: usize,
    /// A series not seen for this many flushes leaves memory (a gauge stops being flushed).
    pub idle_flushes: u64,
    /// Most pending backfill (`|T`) series-intervals.
    pub max_backfill: usize,
    /// Oldest `|T` timestamp taken, as an age (older data would expire at once): the store's
    /// longest retention.
    pub max_backfill_age_ms: i64,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            service: "unknown".into(),
            max_series: 100_000,
            max_series_per_name: 10_000,
            set_exact_limit: 1_000,
            idle_flushes: 360,
            max_backfill: 10_000,
            max_backfill_age_ms: 730 * 86_400_000,
        }
    }
}

/// What the aggregator took and dropped, by bounded reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Metric lines aggregated.
    pub lines: u64,
    /// Events received.
    pub events: u64,
    /// Service checks received.
    pub service_checks: u64,
    /// Lines dropped, by reason (`bad_value`, `cardinality_total`, …).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Series that left memory after being idle.
    pub expired: u64,
}

impl Stats {
    /// Everything received so far: lines (taken or dropped), events and service checks.
    pub fn received(&self) -> u64 {
        self.lines + self.events + self.service_checks + self.dropped.values().sum::<u64>()
    }

    fn drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// All dropped lines.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// A series' identity bytes and the interval of a backfilled point.
type BackfillKey = (Box<[u8]>, i64);

/// Room left in a flush's points for the host sample the writer appends to it.
const HOST_POINTS: usize = 64;

/// Distinct label sets the aggregator shares among its keys, at most. Sharing saves the 32 to
/// 48 bytes of a set's own allocation in every key that repeats it (100 000 series of the
/// peers' load generator hold 100 sets); a set no other key holds costs 16 bytes more than
/// an unshared one (its counts) and a slot here, so past this many no new set is held (the
/// sets held are still shared).
const SHARED_LABEL_SETS: usize = 16_384;

/// Series held at most, whatever [`AggregatorConfig::max_series`] says: their positions take
/// 31 bits in the index and the distribution log.
const MAX_LIVE_SERIES: usize = (1 << 31) - 1;

/// The identity a fast line is looked up by.
#[inline(always)]
fn ident_of<'a>(f: &fast::FastLine<'a>) -> Ident<'a> {
    // By the type's position in `MetricType` (the debug assertion below checks the order):
    // 2 instructions a tagged line fewer than a `match` (callgrind, `ingest-cost`).
    const BYTES: [u8; 6] = [b'c', b'g', b'd', b'd', b'd', b's'];
    let kind = BYTES[f.kind as usize];
    debug_assert_eq!(kind, kind_byte(kind_of(f.kind)));
    Ident { name_part: f.name_part, kind, tags: f.tags }
}

/// Aggregates lines into per-interval samples. See the module docs.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregatorConfig,
    live: LiveTable,
    hasher: foldhash::fast::RandomState,
    /// Timestamped (`|T`) points of other intervals, by identity and interval.
    backfill: HashMap<BackfillKey, (SeriesKey, State)>,
    /// Series held (live, and backfilled until flushed) by name. Its keys are the names the
    /// series' keys share.
    per_name: HashMap<SharedStr, usize>,
    /// Units the series' keys share.
    units: HashMap<&'static str, SharedStr>,
    /// Label sets the series' keys share (up to [`SHARED_LABEL_SETS`] of them).
    label_sets: LabelSets,
    events: Vec<Event>,
    interval_start_ms: i64,
    interval_ms: i64,
    flushes: u64,
    /// Series held from which lines are looked up in groups ([`grouped::GROUPED_FROM_SERIES`]).
    grouped_from: usize,
    /// The slow path's `name[,influx tags]`.
    scratch: Vec<u8>,
    /// Distribution values waiting for their series.
    dist_log: dist_log::DistLog,
    stats: Stats,
    over_limit: Option<(u64, String)>,
}

fn kind_of(t: MetricType) -> Kind {
    match t {
        MetricType::Counter => Kind::Counter,
        MetricType::Gauge => Kind::Gauge,
        MetricType::Timer | MetricType::Histogram | MetricType::Distribution => Kind::Distribution,
        MetricType::Set => Kind::Set,
    }
}

/// Seconds per unit received: StatsD durations are milliseconds.
fn scale_of(t: MetricType, name: &str) -> f64 {
    match t {
        MetricType::Timer => 0.001,
        MetricType::Histogram | MetricType::Distribution if convention::statsd_is_milliseconds(false, name) => 0.001,
        _ => 1.0,
    }
}

/// The unit of a new series: seconds for durations, else the convention's unit for its name
/// and kind (so `system.cpu.utilization` sent over StatsD is a ratio, as the sampler's is).
fn unit_of(kind: Kind, name: &str, scale: f64) -> &'static str {
    if scale != 1.0 {
        return "s";
    }
    convention::find(name).filter(|m| m.kind == kind).map_or("", |m| m.unit)
}

impl Aggregator {
    /// An aggregator whose first interval starts at `start_ms` and lasts `interval_ms`.
    pub fn new(cfg: AggregatorConfig, start_ms: i64, interval_ms: i64) -> Self {
        Self {
            cfg,
            live: LiveTable::default(),
            hasher: foldhash::fast::RandomState::default(),
            backfill: HashMap::default(),
            per_name: HashMap::default(),
            units: HashMap::default(),
            label_sets: LabelSets::default(),
            events: Vec::new(),
            interval_start_ms: start_ms,
            interval_ms: interval_ms.max(1),
            flushes: 0,
            grouped_from: grouped::GROUPED_FROM_SERIES,
            scratch: Vec::with_capacity(256),
            dist_log: dist_log::DistLog::default(),
            stats: Stats::default(),
            over_limit: None,
        }
    }

    /// Look lines up in groups whatever the number of series (tests of that path).
    #[cfg(test)]
    pub(super) fn always_grouped(&mut self) {
        self.grouped_from = 0;
    }

    /// Look each line up at once whatever the number of series (tests of that path).
    #[cfg(test)]
    pub(super) fn never_grouped(&mut self) {
        self.grouped_from = usize::MAX;
    }

    /// Counters of what was taken and dropped.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Count a line dropped before parsing (by a listener), under `reason`.
    pub fn count_drop(&mut self, reason: &'static str) {
        self.stats.drop(reason);
    }

    /// Count `n` drops under `reason` (points the store backlog could not keep).
    pub fn count_drops(&mut self, reason: &'static str, n: u64) {
        if n > 0 {
            *self.stats.dropped.entry(reason).or_default() += n;
        }
    }

    /// Series held in memory.
    pub fn series(&self) -> usize {
        self.live.len()
    }

    /// Parse and aggregate every line of a datagram (or TCP buffer).
    ///
    /// A line of a series already held, in a common shape, takes the fast path (split on
    /// bytes, one hash lookup, no allocation); every other line goes through
    /// [`parse_line`], the reference, which also validates a new series once.
    pub fn ingest_datagram(&mut self, buf: &[u8]) {
        self.ingest_batch(std::iter::once(Some(buf)));
    }

    /// [`Aggregator::ingest_datagram`] for each datagram of a batch, in order; `None` is one
    /// cut short by its buffer, dropped whole and counted as `truncated`.
    ///
    /// From `GROUPED_FROM_SERIES` (1024) series on, lines are taken 16 at a time (`GROUP`),
    /// each group's lookups in steps, each step prefetching what the next one reads (index
    /// slot, entry, a long identity). The series then no longer fit in the CPU's
    /// caches and every step is a cache miss; this way a group's misses overlap. The steps
    /// run a round apart, four groups in flight across the batch's datagrams, so that what
    /// a step brings in has arrived when the next one reads it. The lines are still applied
    /// one by one in order, and a lookup that a line before could have changed (a series it
    /// created) is done again then. With fewer series everything is in cache and the steps
    /// would only add instructions, so each line is looked up at once.
    pub fn ingest_batch<'a>(&mut self, datagrams: impl Iterator<Item = Option<&'a [u8]>>) {
        if self.live.len() >= self.grouped_from {
            self.ingest_grouped(datagrams.fuse());
            return;
        }
        for d in datagrams {
            match d {
                Some(buf) => self.ingest_each(buf),
                None => self.count_drop("truncated"),
            }
        }
    }

    /// [`Aggregator::ingest_datagram`] for few series: each line looked up at once.
    fn ingest_each(&mut self, buf: &[u8]) {
        let mut rest = buf;
        while !rest.is_empty() {
            // One pass finds the line's end and where its name and type start.
            let (end, colon_bar) = fast::scan(rest);
            let line = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if let Some(f) = colon_bar.and_then(|cb| fast::split_at(line, cb)) {
                let ident = ident_of(&f);
                let hash = ident.hash(&self.hasher);
                if self.ingest_fast(&f, &ident, hash, None) {
                    continue;
                }
            }
            self.ingest_line(line);
        }
    }

    /// [`Aggregator::ingest_datagram`] through the reference parser only: the fast path's
    /// yardstick in its tests.
    #[cfg(test)]
    pub(super) fn ingest_datagram_reference(&mut self, buf: &[u8]) {
        for line in super::parser::lines(buf) {
            self.ingest_line(line);
        }
    }

    fn ingest_line(&mut self, line: &[u8]) {
        match parse_line(line) {
            Ok(Line::Metric(m)) => self.ingest_metric(&m),
            Ok(Line::Event(e)) => self.ingest_event(&e),
            Ok(Line::ServiceCheck(_)) => self.stats.service_checks += 1,
            Err(e) => self.stats.drop(parse_reason(e)),
        }
    }

    /// The fast path: true when the line was taken (its series is held), false to send it
    /// to the reference. `at` is where the series probably is.
    #[inline(always)]
    fn ingest_fast(&mut self, f: &fast::FastLine<'_>, ident: &Ident<'_>, hash: u64, at: Option<usize>) -> bool {
        let found = match at {
            Some(i) if self.live.is_at(ident, i) => Some(i),
            // Another series shares the hash's tag, or a line before this one in its group
            // added the series.
            _ => self.live.find(ident, hash),
        };
        let Some(i) = found else { return false };
        let entry = &mut self.live.entries[i];
        entry.last_seen = stamp(self.flushes);
        if let State::Dist(..) = entry.state {
            // The common distribution line waits in the log; any other applies after what
            // waits.
            if let (true, Value::Number(x)) = (f.rest.is_empty() && f.sample_rate == 1.0, f.first) {
                self.stats.lines += 1;
                if self.dist_log.push(i, x, f.kind == MetricType::Timer) {
                    self.apply_logged();
                }
                return true;
            }
            self.apply_logged();
        }
        let entry = &mut self.live.entries[i];
        let weight = 1.0 / f.sample_rate;
        let limit = self.cfg.set_exact_limit;
        // Most lines carry one value: no iterator chain for them.
        let applied = if f.rest.is_empty() {
            apply(&mut entry.state, std::iter::once(f.first), weight, f.kind, limit)
        } else {
            apply(&mut entry.state, f.values(), weight, f.kind, limit)
        };
        if applied {
            self.stats.lines += 1;
        } else {
            self.stats.drop("value_overflow");
        }
        true
    }

    /// Aggregate one parsed metric line.
    pub fn ingest_metric(&mut self, m: &MetricLine<'_>) {
        self.ingest_with(m, m.values());
    }

    /// Aggregate `values` as if they were the values of line `m` (its own are ignored): how
    /// the embedded SDK hands over timer values without formatting and re-parsing them.
    pub fn ingest_values(&mut self, m: &MetricLine<'_>, values: &[f64]) {
        self.ingest_with(m, values.iter().map(|&v| Value::Number(v)));
    }

    fn ingest_with<'v>(&mut self, m: &MetricLine<'_>, values: impl Iterator<Item = Value<'v>>) {
        let kind = kind_of(m.kind);
        // The name as received with its Influx tags, as the fast path sees it (a `,` with no
        // tags after it is left out: such a line always comes here).
        let mut name_part = std::mem::take(&mut self.scratch);
        name_part.clear();
        name_part.extend_from_slice(m.name.as_bytes());
        if !m.influx_tags.is_empty() {
            name_part.push(b',');
            name_part.extend_from_slice(m.influx_tags.as_bytes());
        }
        self.ingest_named(m, kind, &name_part, values);
        self.scratch = name_part;
    }

    fn ingest_named<'v>(
        &mut self,
        m: &MetricLine<'_>,
        kind: Kind,
        name_part: &[u8],
        values: impl Iterator<Item = Value<'v>>,
    ) {
        let ident = Ident { name_part, kind: kind_byte(kind), tags: m.tags.as_bytes() };
        let backfill_ts = match m.timestamp {
            None => None,
            Some(secs) => match self.backfill_interval(secs) {
                Some(ts) => Some(ts).filter(|&ts| ts != self.interval_start_ms),
                None => return self.stats.drop("timestamp_out_of_range"),
            },
        };
        let flushes = self.flushes;
        let exact_limit = self.cfg.set_exact_limit;
        let state = match backfill_ts {
            None => {
                let hash = ident.hash(&self.hasher);
                let i = match self.live.find(&ident, hash) {
                    Some(i) => i,
                    None => match self.new_slot(m, kind) {
                        Ok((key, state)) => self.live.push(&ident, hash, key, state, flushes),
                        Err(reason) => return self.refuse(reason, m),
                    },
                };
                if !self.dist_log.is_empty() && matches!(self.live.entries[i].state, State::Dist(..)) {
                    self.apply_logged();
                }
                let entry = &mut self.live.entries[i];
                entry.last_seen = stamp(flushes);
                &mut entry.state
            }
            Some(ts) => {
                let k = (ident.to_bytes(), ts);

                if !self.backfill.contains_key(&k) {
                    if self.backfill.len() >= self.cfg.max_backfill {
                        return self.stats.drop("backfill_limit");
                    }
                    match self.new_slot(m, kind) {
                        Ok(slot) => {
                            self.backfill.insert(k.clone(), slot);
                        }
                        Err(reason) => return self.refuse(reason, m),
                    }
                }
                let Some((_, state)) = self.backfill.get_mut(&k) else { return };
                state
            }
        };
        let weight = 1.0 / m.sample_rate;
        if apply(state, values, weight, m.kind, exact_limit) {
            self.stats.lines += 1;
        } else {
            self.stats.drop("value_overflow");
        }
    }

    /// The interval a `|T` timestamp (Unix seconds) falls in, or `None` outside what is taken:
    /// older than the store keeps, or further ahead than clock skew explains.
    fn backfill_interval(&self, secs: i64) -> Option<i64> {
        let ms = secs.checked_mul(1000)?;
        let (lo, hi) = (self.interval_start_ms - self.cfg.max_backfill_age_ms, self.interval_start_ms + MAX_FUTURE_MS);
        (lo..=hi).contains(&ms).then(|| ms.div_euclid(self.interval_ms) * self.interval_ms)
    }

    /// Count a line refused by a cardinality limit, remembering the first one per interval
    /// so the log can name it.
    fn refuse(&mut self, reason: &'static str, m: &MetricLine<'_>) {
        self.stats.drop(reason);
        if !reason.starts_with("cardinality") {
            return;
        }
        match &mut self.over_limit {
            Some((n, _)) => *n += 1,
            None => {
                let tags =
                    [m.influx_tags, m.tags].iter().filter(|t| !t.is_empty()).copied().collect::<Vec<_>>().join(",");
                let series = if tags.is_empty() { m.name.to_string() } else { format!("{}{{{tags}}}", m.name) };
                self.over_limit = Some((1, series.chars().take(300).collect()));
            }
        }
    }

    fn new_slot(&mut self, m: &MetricLine<'_>, kind: Kind) -> Result<(SeriesKey, State), &'static str> {
        // Checked once per series, when it is first seen: lines of a known series have the
        // same bytes, so the hot path pays nothing for it.
        check_identity(m)?;
        let in_name = self.per_name.get(m.name).copied().unwrap_or(0);
        if in_name >= self.cfg.max_series_per_name {
            return Err("cardinality_per_name");
        }
        // Whatever the configured limit, positions stay in the 31 bits the index and the
        // distribution log keep them in.
        if self.live.len() + self.backfill.len() >= self.cfg.max_series.min(MAX_LIVE_SERIES) {
            return Err("cardinality_total");
        }
        let scale = scale_of(m.kind, m.name);
        let name = match self.per_name.get_key_value(m.name) {
            Some((name, _)) => name.clone(),
            None => SharedStr::from(m.name),
        };
        let unit = unit_of(kind, m.name, scale);
        let unit = self.units.entry(unit).or_insert_with(|| SharedStr::from(unit)).clone();
        let key = self.label_sets.key(&self.cfg.service, name.clone(), kind, unit, m.tag_pairs(), SHARED_LABEL_SETS);
        *self.per_name.entry(name).or_default() += 1;
        let state = match kind {
            Kind::Counter => State::Counter { sum: 0.0, touched: false },
            Kind::Gauge => State::Gauge { last: f64::NAN, min: f64::NAN, max: f64::NAN },
            Kind::Distribution => State::Dist(Box::new(Dist::new(scale_of(MetricType::Distribution, m.name)))),
            Kind::Set => State::Set(None),
        };
        Ok((key, state))
    }

    /// Take a DogStatsD event: an error event tagged with an operation becomes its last error.
    pub fn ingest_event(&mut self, e: &EventLine<'_>) {
        self.stats.events += 1;
        if e.alert_type != Some("error") {
            return;
        }
        let mut op = None;
        let mut service = self.cfg.service.as_str();
        for (k, v) in e.tag_pairs() {
            match k {
                tag::OP => op = Some(v),
                tag::SERVICE => service = v,
                _ => {}
            }
        }
        let Some(op) = op else { return };
        let message = if e.text.is_empty() { e.title } else { e.text };
        self.events.push(Event {
            ts_ms: e.timestamp.map_or(self.interval_start_ms, |s| s.saturating_mul(1000)),
            service: service.to_owned(),
            op: op.to_owned(),
            kind: perfstore::EventKind::Error,
            message: message.replace("\\n", "\n").chars().take(perfstore::EVENT_MESSAGE_MAX_CHARS).collect(),
        });
    }

    /// Close the current interval: return its samples (and pending backfill points), reset
    /// per-interval state, expire idle series, and start the next interval.
    pub fn flush(&mut self) -> Flush {
        self.apply_logged();
        let ts = self.interval_start_ms;
        // Backfill (timestamped lines of other intervals) in key order, then live series in
        // the order they arrived: ordering 100 000 keys by their strings was a tenth of the
        // receive thread. Backfill is mostly older, so a series. older points come first.
        let per_name = &mut self.per_name;
        let backfilled = !self.backfill.is_empty();
        let mut points: Vec<_> = self
            .backfill
            .drain()
            .filter_map(|((_, bts), (key, mut state))| {
                // A backfilled series counted against its name's limit until now.
                if let Some(n) = per_name.get_mut(&key.name) {
                    *n = n.saturating_sub(1);
                }
                take_sample(&mut state).map(|s| (Arc::new(key), bts, s))
            })
            .collect();
        points.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        // With room for the host sample the writer appends (about 30 points): growing a
        // vector of 100 000 points for it copied them into one twice the size.
        points.reserve(self.live.len() + HOST_POINTS);
        for (key, entry) in self.live.keys.iter().zip(&mut self.live.entries) {
            if let Some(sample) = take_sample(&mut entry.state) {
                points.push((key.clone(), ts, sample));
            }
        }
        // Expire idle series.
        let (now, idle) = (self.flushes, self.cfg.idle_flushes);
        let per_name = &mut self.per_name;
        let expired = self.live.retain(|key, entry| {
            let keep = u64::from(stamp(now).wrapping_sub(entry.last_seen)) < idle;
            if !keep && let Some(n) = per_name.get_mut(&key.name) {
                *n = n.saturating_sub(1);
            }
            keep
        }) as u64;
        per_name.retain(|_, n| *n > 0);
        if expired > 0 || backfilled {
            self.label_sets.prune();
        }
        self.stats.expired += expired;
        self.flushes += 1;
        self.interval_start_ms += self.interval_ms;
        Flush {
            interval_start_ms: ts,
            points,
            events: std::mem::take(&mut self.events),
            over_limit: self.over_limit.take(),
            profiles: Vec::new(),
            held: Vec::new(),
        }
    }
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Counter => b'c',
        Kind::Gauge => b'g',
        Kind::Distribution => b'd',
        Kind::Set => b's',
    }
}

fn parse_reason(e: ParseError) -> &'static str {
    e.as_str()
}

#[path = "dist_log.rs"]
mod dist_log;
#[path = "grouped.rs"]
mod grouped;

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
