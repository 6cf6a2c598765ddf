//! From an [`Input`] to the [`Report`]: pure, no database.

use std::collections::{BTreeMap, HashMap};

use perfstore::convention::{self as conv, CacheResult, Direction, Outcome, PoolResult, tag};
use perfstore::{Point, SeriesKey, glob_match, merge_into};

use super::report::{
    Cache, Calls, CircuitOpen, Disk, Host, Latency, OpStats, Overall, Pool, Report, TargetKind, Violation,
};
use super::{Input, Options};
use crate::error::{Error, NoData};
use crate::targets::Targets;
use crate::time::{Window, rfc3339};

/// Per-operation sums while reading.
#[derive(Debug, Default)]
struct Acc {
    calls: f64,
    errors: f64,
    cached: f64,
    batched: f64,
    retries: f64,
    durations: Option<Point>,
    batch: Option<Point>,
}

impl Acc {
    fn absorb(&mut self, o: &Acc) {
        self.calls += o.calls;
        self.errors += o.errors;
        self.cached += o.cached;
        self.batched += o.batched;
        self.retries += o.retries;
        if let Some(p) = &o.durations {
            merge_into(&mut self.durations, p);
        }
        if let Some(p) = &o.batch {
            merge_into(&mut self.batch, p);
        }
    }

    fn add(&mut self, key: &SeriesKey, p: &Point) {
        match key.name.as_str() {
            n if n == conv::OP_DURATION.name => {
                self.calls += p.count;
                if key.get(tag::OUTCOME) == Some(Outcome::Error.as_str()) {
                    self.errors += p.count;
                }
                if key.get(tag::CACHE).and_then(CacheResult::parse).is_some_and(CacheResult::is_hit) {
                    self.cached += p.count;
                }
                if key.get(tag::BATCHED) == Some(conv::BATCHED_TRUE) {
                    self.batched += p.count;
                }
                merge_into(&mut self.durations, p);
            }
            n if n == conv::OP_RETRIES.name => self.retries += p.sum,
            _ => merge_into(&mut self.batch, p),
        }
    }

    fn calls(&self) -> Calls {
        let n = self.calls;
        let of = |x: f64| (n > 0.0).then(|| x / n);
        Calls {
            calls: n,
            errors: self.errors,
            success_rate: of(n - self.errors),
            error_rate: of(self.errors),
            cached_pct: of(self.cached).map(|r| r * 100.0),
            batched_pct: of(self.batched).map(|r| r * 100.0),
            batch_efficiency: self.batch.as_ref().and_then(Point::avg),
            retries: self.retries,
            total_time_s: self.durations.as_ref().map_or(0.0, |p| p.sum),
            latency_ms: self.durations.as_ref().filter(|p| p.count > 0.0).map(latency),
        }
    }
}

fn latency(p: &Point) -> Latency {
    let q = |q: f64| p.quantile(q).unwrap_or(f64::NAN) * 1000.0;
    Latency {
        min: p.min * 1000.0,
        avg: p.sum / p.count * 1000.0,
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        max: p.max * 1000.0,
    }
}

fn is_op_metric(name: &str) -> bool {
    [conv::OP_DURATION.name, conv::OP_RETRIES.name, conv::OP_BATCH_SIZE.name].contains(&name)
}

/// The report for `input`, or [`Error::NoData`] when the window holds nothing to report.
pub fn compute(input: &Input, opts: &Options, targets: &Targets) -> crate::Result<Report> {
    let keep_op = |op: &str| opts.op.as_deref().is_none_or(|g| glob_match(g, op));
    let group_of = |k: &SeriesKey| opts.by.as_deref().map(|t| k.get(t).unwrap_or("").to_owned());
    let mut ops: BTreeMap<(Option<String>, String), Acc> = BTreeMap::new();
    let mut host_points: HashMap<&str, Vec<(&SeriesKey, &Point)>> = HashMap::new();
    for (k, p) in &input.series {
        if is_op_metric(&k.name) {
            let op = k.get(tag::OP).unwrap_or(conv::NO_OP).to_owned();
            if keep_op(&op) {
                ops.entry((group_of(k), op)).or_default().add(k, p);
            }
        } else {
            host_points.entry(k.name.as_str()).or_default().push((k, p));
        }
    }
    let cache = cache(&host_points);
    let pool = pool(&host_points);
    let mut total = Acc::default();
    for acc in ops.values() {
        total.absorb(acc);
    }
    let mut op_rows = op_rows(ops, input, opts);
    op_rows.sort_by(|a, b| {
        b.calls.total_time_s.total_cmp(&a.calls.total_time_s).then_with(|| a.op.cmp(&b.op)).then(a.group.cmp(&b.group))
    });
    let host = host(&host_points);
    if op_rows.is_empty() && host.is_none() && cache.is_none() && pool.is_none() {
        return Err(Error::NoData(NoData {
            subject: opts.op.as_deref().map_or(String::new(), |g| format!(" for operations matching '{g}'")),
            range: opts.range,
            db: input.db.clone().into(),
            matched: None,
            newest_ms: input.newest_ms,
        }));
    }
    let circuits = circuits(input, &host_points);
    let mut violations = violations(&op_rows, host.as_ref(), targets);
    if let Some(floor) = targets.cache_hit_rate {
        // Each cache on its own (a busy cache hitting well must not hide a cold one).
        for (name, rate) in cache_hit_rates(&host_points).into_iter().filter(|(_, r)| *r < floor) {
            let name = (!name.is_empty()).then_some(name);
            violations.push(Violation::new(TargetKind::CacheHitRate, name, rate, floor));
        }
    }
    if let Some(limit) = targets.circuit_open_s {
        for c in circuits.iter().filter(|c| c.open_s > limit) {
            violations.push(Violation::new(TargetKind::CircuitOpen, Some(c.circuit.clone()), c.open_s, limit));
        }
    }
    Ok(Report {
        db: input.db.clone(),
        schema_version: input.schema_version,
        window: Window::from(opts.range),
        overall: Overall { calls: total.calls(), cache, pool },
        ops: op_rows,
        host,
        circuits,
        violations,
        targets: targets.clone(),
    })
}

/// One row per (group, operation), with its latest error.
fn op_rows(ops: BTreeMap<(Option<String>, String), Acc>, input: &Input, opts: &Options) -> Vec<OpStats> {
    // The latest error per operation (and group, when grouping by service).
    let mut last_error: HashMap<(Option<String>, &str), (i64, &str)> = HashMap::new();
    for e in &input.last_errors {
        let group = opts.by.as_deref().map(|t| if t == tag::SERVICE { e.service.clone() } else { String::new() });
        let slot = last_error.entry((group, e.op.as_str())).or_insert((i64::MIN, ""));
        if e.ts_ms > slot.0 {
            *slot = (e.ts_ms, e.message.as_str());
        }
    }
    ops.into_iter()
        .map(|((group, op), acc)| {
            let err = last_error.get(&(group.clone(), op.as_str()));
            OpStats {
                group: group.map(|g| BTreeMap::from([(opts.by.clone().unwrap_or_default(), g)])),
                calls: acc.calls(),
                last_error: err.map(|e| e.1.to_owned()),
                last_error_at: err.map(|e| rfc3339(e.0)),
                op,
            }
        })
        .collect()
}

type ByName<'a> = HashMap<&'a str, Vec<(&'a SeriesKey, &'a Point)>>;

fn cache(points: &ByName<'_>) -> Option<Cache> {
    let requests = points.get(conv::CACHE_REQUESTS.name);
    let refreshes = points.get(conv::CACHE_REFRESH.name);
    if requests.is_none() && refreshes.is_none() {
        return None;
    }
    let mut c = Cache::default();
    for (k, p) in requests.into_iter().flatten() {
        c.requests += p.sum;
        match k.get(tag::RESULT).and_then(CacheResult::parse) {
            Some(CacheResult::Hit) => c.hits += p.sum,
            Some(CacheResult::Stale) => c.stale_hits += p.sum,
            Some(CacheResult::Miss) => c.misses += p.sum,
            None => {}
        }
    }
    c.refreshes = refreshes.into_iter().flatten().map(|(_, p)| p.sum).sum();
    c.hit_rate = (c.requests > 0.0).then(|| (c.hits + c.stale_hits) / c.requests);
    Some(c)
}

/// Hit rate (hits and stale hits over lookups) per cache (`cache` tag), for the floor target.
fn cache_hit_rates(points: &ByName<'_>) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (k, p) in points.get(conv::CACHE_REQUESTS.name).into_iter().flatten() {
        let e = by.entry(k.get(tag::CACHE).unwrap_or("").to_owned()).or_default();
        e.1 += p.sum;
        if matches!(k.get(tag::RESULT).and_then(CacheResult::parse), Some(CacheResult::Hit | CacheResult::Stale)) {
            e.0 += p.sum;
        }
    }
    by.into_iter().filter(|(_, (_, n))| *n > 0.0).map(|(c, (h, n))| (c, h / n)).collect()
}

fn pool(points: &ByName<'_>) -> Option<Pool> {
    let acquires = points.get(conv::POOL_ACQUIRE.name);
    let evictions = points.get(conv::POOL_EVICTIONS.name);
    if acquires.is_none() && evictions.is_none() {
        return None;
    }
    let mut pool = Pool::default();
    for (k, p) in acquires.into_iter().flatten() {
        pool.acquires += p.sum;
        match k.get(tag::RESULT).and_then(PoolResult::parse) {
            Some(PoolResult::Hit) => pool.hits += p.sum,
            Some(PoolResult::Miss) => pool.misses += p.sum,
            None => {}
        }
    }
    pool.evictions = evictions.into_iter().flatten().map(|(_, p)| p.sum).sum();
    pool.hit_rate = (pool.acquires > 0.0).then(|| pool.hits / pool.acquires);
    Some(pool)
}

fn circuits(input: &Input, points: &ByName<'_>) -> Vec<CircuitOpen> {
    let mut out: BTreeMap<&str, CircuitOpen> = BTreeMap::new();
    let entry = |out: &mut BTreeMap<&str, CircuitOpen>, name: &str| -> CircuitOpen {
        out.remove(name).unwrap_or(CircuitOpen { circuit: name.to_owned(), open_s: 0.0, opened: 0.0 })
    };
    for (name, open) in &input.circuit_open_s {
        let mut c = entry(&mut out, name);
        c.open_s += open;
        out.insert(name, c);
    }
    for (k, p) in points.get(conv::CIRCUIT_TRANSITIONS.name).into_iter().flatten() {
        if k.get(tag::TO) == Some(conv::CircuitState::Open.as_str()) {
            let name = k.get(tag::CIRCUIT).unwrap_or("");
            let mut c = entry(&mut out, name);
            c.opened += p.sum;
            out.insert(name, c);
        }
    }
    out.into_values().filter(|c| c.open_s > 0.0 || c.opened > 0.0).collect()
}

fn merged(points: &ByName<'_>, name: &str) -> Option<Point> {
    let mut acc = None;
    for (_, p) in points.get(name)? {
        merge_into(&mut acc, p);
    }
    acc
}

fn disks(points: &ByName<'_>) -> Vec<Disk> {
    let by_mount = |name: &str| -> BTreeMap<&str, Vec<&Point>> {
        let mut m: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
        for (k, p) in points.get(name).into_iter().flatten() {
            m.entry(k.get(tag::MOUNTPOINT).unwrap_or("")).or_default().push(p);
        }
        m
    };
    let used: BTreeMap<&str, f64> = by_mount(conv::SYSTEM_FILESYSTEM_USAGE.name)
        .into_iter()
        .filter_map(|(m, ps)| ps.iter().max_by_key(|p| p.last_ts_ms).map(|p| (m, p.last)))
        .collect();
    let mut disks: Vec<Disk> = by_mount(conv::SYSTEM_FILESYSTEM_UTILIZATION.name)
        .into_iter()
        .filter_map(|(m, ps)| {
            let last = ps.iter().max_by_key(|p| p.last_ts_ms)?;
            let peak = ps.iter().map(|p| p.max).fold(f64::MIN, f64::max);
            Some(Disk {
                used_bytes: used.get(m).copied(),
                used_pct: last.last * 100.0,
                peak_pct: peak * 100.0,
                mountpoint: m.to_owned(),
            })
        })
        .collect();
    disks.sort_by(|a, b| b.peak_pct.total_cmp(&a.peak_pct).then_with(|| a.mountpoint.cmp(&b.mountpoint)));
    disks
}

fn host(points: &ByName<'_>) -> Option<Host> {
    let cpu = merged(points, conv::SYSTEM_CPU_UTILIZATION.name);
    let mem = merged(points, conv::SYSTEM_MEMORY_UTILIZATION.name);
    if cpu.is_none() && mem.is_none() {
        return None;
    }
    let io = |name: &str, direction: Direction| -> Option<f64> {
        points
            .get(name)?
            .iter()
            .filter(|(k, _)| k.get(tag::DIRECTION) == Some(direction.as_str()) && k.get(tag::DEVICE) != Some("lo"))
            .map(|(_, p)| p.sum)
            .reduce(|a, b| a + b)
    };
    let last = |name: &str| merged(points, name).map(|p| p.last);
    Some(Host {
        cpu_avg_pct: cpu.as_ref().and_then(Point::avg).map(|v| v * 100.0),
        cpu_peak_pct: cpu.as_ref().map(|p| p.max * 100.0),
        cpu_cores: last(conv::CONTAINER_CPU_LIMIT.name).or_else(|| last(conv::SYSTEM_CPU_LOGICAL_COUNT.name)),
        mem_avg_pct: mem.as_ref().and_then(Point::avg).map(|v| v * 100.0),
        mem_peak_pct: mem.as_ref().map(|p| p.max * 100.0),
        mem_peak_bytes: merged(points, conv::SYSTEM_MEMORY_USAGE.name).map(|p| p.max),
        mem_limit_bytes: last(conv::SYSTEM_MEMORY_LIMIT.name),
        disks: disks(points),
        disk_read_bytes: io(conv::SYSTEM_DISK_IO.name, Direction::Read),
        disk_write_bytes: io(conv::SYSTEM_DISK_IO.name, Direction::Write),
        net_receive_bytes: io(conv::SYSTEM_NETWORK_IO.name, Direction::Receive),
        net_transmit_bytes: io(conv::SYSTEM_NETWORK_IO.name, Direction::Transmit),
    })
}

fn violations(ops: &[OpStats], host: Option<&Host>, targets: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in ops {
        let t = targets.for_op(&o.op);
        let op = Some(o.op.clone());
        if let Some(l) = &o.calls.latency_ms {
            for (kind, value, limit) in [(TargetKind::P95, l.p95, t.p95_ms), (TargetKind::P99, l.p99, t.p99_ms)] {
                if let Some(limit) = limit.filter(|&limit| value > limit) {
                    out.push(Violation::new(kind, op.clone(), value, limit));
                }
            }
        }
        if let (Some(rate), Some(limit)) = (o.calls.error_rate, t.error_rate)
            && rate > limit
        {
            out.push(Violation::new(TargetKind::ErrorRate, op.clone(), rate, limit));
        }
        if let Some(limit) = targets.retry_rate
            && o.calls.calls > 0.0
            && o.calls.retries / o.calls.calls > limit
        {
            out.push(Violation::new(TargetKind::RetryRate, op, o.calls.retries / o.calls.calls, limit));
        }
    }
    if let Some(h) = host {
        if let (Some(v), Some(limit)) = (h.cpu_avg_pct, targets.cpu_pct)
            && v > limit
        {
            out.push(Violation::new(TargetKind::Cpu, None, v, limit));
        }
        if let (Some(v), Some(limit)) = (h.mem_peak_pct, targets.memory_pct)
            && v > limit
        {
            out.push(Violation::new(TargetKind::Memory, None, v, limit));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfstore::{Distribution, Event, EventKind, Sample, TimeRange};

    const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    fn calls(op: &str, outcome: &str, extra: &[(&str, &str)], ms: &[f64]) -> (SeriesKey, Point) {
        let mut k = conv::OP_DURATION.key("api").label(tag::OP, op).label(tag::OUTCOME, outcome);
        for (a, b) in extra {
            k = k.label(a, b);
        }
        let d = Distribution::from_values(&ms.iter().map(|v| v / 1000.0).collect::<Vec<_>>());
        (k, Point::from_sample(T0, &Sample::Distribution(Box::new(d))))
    }

    fn counter(key: SeriesKey, v: f64) -> (SeriesKey, Point) {
        (key, Point::from_sample(T0, &Sample::Counter(v)))
    }

    fn gauge(key: SeriesKey, values: &[f64]) -> (SeriesKey, Point) {
        let mut acc = None;
        for (i, &v) in values.iter().enumerate() {
            merge_into(
                &mut acc,
                &Point::from_sample(T0 + i as i64 * 10_000, &Sample::Gauge { last: v, min: v, max: v }),
            );
        }
        (key, acc.expect("values"))
    }

    fn opts() -> Options {
        Options { range: TimeRange::new(T0, T0 + 3_600_000), op: None, by: None }
    }

    fn input(series: Vec<(SeriesKey, Point)>) -> Input {
        Input { db: "/x/perf.db".into(), schema_version: 2, series, ..Input::default() }
    }

    #[test]
    fn calls_errors_cache_batches_and_latency_by_hand() {
        let i = input(vec![
            calls("vm.list", "ok", &[("cache", "hit")], &[1.0, 2.0, 3.0]),
            calls("vm.list", "ok", &[("cache", "miss")], &[100.0]),
            calls("vm.list", "error", &[("cache", "stale")], &[4.0]),
            calls("vm.start", "ok", &[("batched", "true")], &[200.0, 300.0]),
            calls("vm.start", "ok", &[("batched", "false")], &[250.0]),
            counter(conv::OP_RETRIES.key("api").label(tag::OP, "vm.start"), 3.0),
        ]);
        let r = compute(&i, &opts(), &Targets::default()).unwrap();
        let o = &r.overall.calls;
        assert_eq!((o.calls, o.errors, o.retries), (8.0, 1.0, 3.0));
        assert_eq!(o.cached_pct, Some(4.0 / 8.0 * 100.0), "hit and stale count as cached");
        assert_eq!(o.batched_pct, Some(2.0 / 8.0 * 100.0));
        assert!((o.total_time_s - 0.860).abs() < 1e-12);
        let l = o.latency_ms.unwrap();
        assert_eq!((l.min, l.max), (1.0, 300.0));
        assert!((l.avg - 107.5).abs() < 1e-9);
        // Most total time first: vm.start 750 ms, vm.list 110 ms.
        assert_eq!(r.ops.iter().map(|o| o.op.as_str()).collect::<Vec<_>>(), ["vm.start", "vm.list"]);
        // vm.start p95 300 ms > 200 ms; vm.list error rate 20 % > 1 %.
        let v: Vec<(TargetKind, Option<&str>)> = r.violations.iter().map(|v| (v.target, v.op.as_deref())).collect();
        assert_eq!(v, [(TargetKind::P95, Some("vm.start")), (TargetKind::ErrorRate, Some("vm.list"))]);
        assert!(r.overall.cache.is_none() && r.overall.pool.is_none() && r.host.is_none());
    }

    #[test]
    fn op_glob_grouping_and_last_errors() {
        let mut i = input(vec![
            calls("vm.list", "ok", &[], &[10.0]),
            (calls("vm.list", "ok", &[], &[10.0]).0.label("service", "batch"), calls("x", "ok", &[], &[20.0]).1),
            calls("blob.read", "ok", &[], &[5.0]),
        ]);
        i.last_errors = vec![
            Event {
                ts_ms: T0 + 5,
                service: "api".into(),
                op: "vm.list".into(),
                kind: EventKind::Error,
                message: "old".into(),
            },
            Event {
                ts_ms: T0 + 9,
                service: "api".into(),
                op: "vm.list".into(),
                kind: EventKind::Error,
                message: "new".into(),
            },
        ];
        let o = Options { op: Some("vm.*".into()), by: Some("service".into()), ..opts() };
        let r = compute(&i, &o, &Targets::default()).unwrap();
        assert_eq!(r.ops.len(), 2, "blob.read filtered out, vm.list split by service");
        assert_eq!(r.group_key(), Some("service"));
        let api = r.ops.iter().find(|o| o.group_value() == Some("api")).unwrap();
        assert_eq!(
            (api.last_error.as_deref(), api.last_error_at.as_deref()),
            (Some("new"), Some("2026-11-23T00:00:00Z"))
        );
        let batch = r.ops.iter().find(|o| o.group_value() == Some("batch")).unwrap();
        assert_eq!(batch.last_error, None, "errors are filed under their own service");
    }

    #[test]
    fn cache_pool_host_and_circuits_by_hand() {
        let host = |m: &conv::Metric| m.key(conv::HOST_SERVICE);
        let mut i = input(vec![
            counter(conv::CACHE_REQUESTS.key("api").label(tag::RESULT, "hit"), 6.0),
            counter(conv::CACHE_REQUESTS.key("api").label(tag::RESULT, "stale"), 2.0),
            counter(conv::CACHE_REQUESTS.key("api").label(tag::RESULT, "miss"), 2.0),
            counter(conv::POOL_ACQUIRE.key("api").label(tag::RESULT, "hit"), 9.0),
            counter(conv::POOL_ACQUIRE.key("api").label(tag::RESULT, "miss"), 1.0),
            gauge(host(&conv::SYSTEM_CPU_UTILIZATION), &[0.7, 0.9, 1.0]),
            gauge(host(&conv::SYSTEM_CPU_LOGICAL_COUNT), &[4.0]),
            gauge(host(&conv::SYSTEM_MEMORY_UTILIZATION), &[0.5, 0.95]),
            counter(host(&conv::SYSTEM_NETWORK_IO).label(tag::DEVICE, "lo").label(tag::DIRECTION, "receive"), 1e9),
            counter(host(&conv::SYSTEM_NETWORK_IO).label(tag::DEVICE, "eth0").label(tag::DIRECTION, "receive"), 5.0),
            counter(conv::CIRCUIT_TRANSITIONS.key("api").label(tag::CIRCUIT, "db").label(tag::TO, "open"), 2.0),
        ]);
        i.circuit_open_s.insert("db".into(), 30.0);
        let r = compute(&i, &opts(), &Targets::default()).unwrap();
        let c = r.overall.cache.unwrap();
        assert_eq!((c.requests, c.hit_rate), (10.0, Some(0.8)));
        assert_eq!(r.overall.pool.unwrap().hit_rate, Some(0.9));
        let h = r.host.unwrap();
        assert_eq!((h.cpu_cores, h.cpu_peak_pct, h.mem_peak_pct), (Some(4.0), Some(100.0), Some(95.0)));
        assert!((h.cpu_avg_pct.unwrap() - 86.666_666).abs() < 1e-3);
        assert_eq!(h.net_receive_bytes, Some(5.0), "loopback is not network traffic");
        assert_eq!(r.circuits.len(), 1);
        assert_eq!((r.circuits[0].open_s, r.circuits[0].opened), (30.0, 2.0));
        let v: Vec<TargetKind> = r.violations.iter().map(|v| v.target).collect();
        assert_eq!(v, [TargetKind::Cpu, TargetKind::Memory], "mean CPU 86.7% > 80%, peak memory 95% > 90%");
        // The other kinds: a cache hit-rate floor of 90 % (the cache hits 80 %), at most 10 s
        // of a circuit open (db was open 30 s).
        let t = Targets { cache_hit_rate: Some(0.9), circuit_open_s: Some(10.0), ..Targets::default() };
        let r = compute(&i, &opts(), &t).unwrap();
        let v: Vec<(TargetKind, Option<&str>, f64)> =
            r.violations.iter().map(|v| (v.target, v.op.as_deref(), v.value)).collect();
        assert_eq!(v[2..], [(TargetKind::CacheHitRate, None, 0.8), (TargetKind::CircuitOpen, Some("db"), 30.0)]);
        assert_eq!(TargetKind::CircuitOpen.unit(), super::super::Unit::S);
    }

    #[test]
    fn each_cache_meets_the_floor_on_its_own() {
        // vm-list hits 9 of 10, blob 1 of 10: overall 50 % meets a 40 % floor, blob does not.
        let i = input(vec![
            counter(conv::CACHE_REQUESTS.key("api").label(tag::CACHE, "vm-list").label(tag::RESULT, "hit"), 9.0),
            counter(conv::CACHE_REQUESTS.key("api").label(tag::CACHE, "vm-list").label(tag::RESULT, "miss"), 1.0),
            counter(conv::CACHE_REQUESTS.key("api").label(tag::CACHE, "blob").label(tag::RESULT, "stale"), 1.0),
            counter(conv::CACHE_REQUESTS.key("api").label(tag::CACHE, "blob").label(tag::RESULT, "miss"), 9.0),
        ]);
        let t = Targets { cache_hit_rate: Some(0.4), ..Targets::default() };
        let r = compute(&i, &opts(), &t).unwrap();
        assert_eq!(r.overall.cache.as_ref().unwrap().hit_rate, Some(0.5));
        let v: Vec<(TargetKind, Option<&str>, f64)> =
            r.violations.iter().map(|v| (v.target, v.op.as_deref(), v.value)).collect();
        assert_eq!(v, [(TargetKind::CacheHitRate, Some("blob"), 0.1)]);
    }

    #[test]
    fn retries_per_call_above_the_ceiling() {
        // 3 calls of vm.start and 2 retries: 0.67 retries per call against 0.5.
        let i = input(vec![
            calls("vm.start", "ok", &[], &[100.0, 200.0, 300.0]),
            counter(conv::OP_RETRIES.key("api").label(tag::OP, "vm.start"), 2.0),
        ]);
        let t = Targets { retry_rate: Some(0.5), ..Targets::default() };
        let r = compute(&i, &opts(), &t).unwrap();
        let v = r.violations.iter().find(|v| v.target == TargetKind::RetryRate).unwrap();
        assert_eq!(v.op.as_deref(), Some("vm.start"));
        assert!((v.value - 2.0 / 3.0).abs() < 1e-6 && v.threshold == 0.5);
    }

    #[test]
    fn nothing_in_the_window_is_an_error_naming_the_store() {
        let i = Input { newest_ms: Some(T0 - 86_400_000), ..input(vec![]) };
        let e = compute(&i, &opts(), &Targets::default()).unwrap_err().to_string();
        assert_eq!(
            e,
            "no data between 2026-11-23T00:00:00Z and 2026-11-23T01:00:00Z in /x/perf.db (its newest data is from \
             2026-11-22T00:00:00Z)"
        );
    }
}
