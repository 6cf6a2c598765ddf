//! Operation scopes, and helpers for caches and connection pools.
//!
//! One scope is one logical call of an operation: exactly one `op.duration` event when it
//! ends, with tags `op`, `outcome` (`ok`/`error`) and, when set, `cache`, `batched` and `pool`
//! (whether its connection came from the pool). Its duration includes its retries, which count
//! in `op.retries`, not as calls. A scope that ends without [`Scope::finish`] (an early `?`, a
//! panic) is an error.
//!
//! **Phases** ([`OpCtx::phase`]) split a call's wall time into named parts, recorded as
//! `op.phase.duration{op, phase}` when the call ends. The rule that keeps them from being
//! counted twice: every instant of the call belongs to exactly one phase, the most recently
//! started one still running at that instant (so a nested phase takes its time from its
//! parent, and of concurrent phases of parallel sub-calls the latest started wins); instants
//! in no phase are `other`. The phases of a call therefore add up to its duration exactly.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use perfstore::convention::{self as conv, CacheResult, CircuitState, Outcome, PoolResult, tag};

use super::buffer::{Gauge, Striped};
use super::markers;
use super::shared::Shared;

/// The `cache` tag of a call: none, or one of [`CacheResult::ALL`] (stored as its index + 1).
const CACHE_TAGS: usize = 1 + CacheResult::ALL.len();
/// The `batched` tag of a call: none, `false`, `true` (stored as 0, 1, 2).
const BATCHED_TAGS: [Option<&str>; 3] = [None, Some(conv::BATCHED_FALSE), Some(conv::BATCHED_TRUE)];
/// The `pool` tag of a call: none, or one of [`PoolResult::ALL`] (stored as its index + 1).
const POOL_TAGS: usize = 1 + PoolResult::ALL.len();
/// `op.duration` series per operation: one per combination of outcome and tags.
pub(crate) const DURATION_SERIES: usize = Outcome::ALL.len() * CACHE_TAGS * BATCHED_TAGS.len() * POOL_TAGS;

/// A tag value's code: 0 for none, else its index in `all` + 1.
fn code<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).map_or(0, |i| i as u8 + 1)
}

/// Register an operation's `op.duration` series, one per combination of tags; the index of
/// each is [`duration_index`].
pub(crate) fn register_durations(s: &Shared, op: &str) -> [u32; DURATION_SERIES] {
    let mut ids = [0u32; DURATION_SERIES];
    for (outcome_i, outcome) in Outcome::ALL.iter().enumerate() {
        for cache_i in 0..CACHE_TAGS {
            for (batched_i, batched) in BATCHED_TAGS.iter().enumerate() {
                for pool_i in 0..POOL_TAGS {
                    let mut tags = vec![(tag::OP, op), (tag::OUTCOME, outcome.as_str())];
                    if let Some(c) = cache_i.checked_sub(1).map(|i| CacheResult::ALL[i]) {
                        tags.push((tag::CACHE, c.as_str()));
                    }
                    if let Some(b) = batched {
                        tags.push((tag::BATCHED, b));
                    }
                    if let Some(p) = pool_i.checked_sub(1).map(|i| PoolResult::ALL[i]) {
                        tags.push((tag::POOL, p.as_str()));
                    }
                    ids[duration_index(outcome_i, cache_i, batched_i, pool_i)] =
                        s.dist(conv::OP_DURATION.name, s.tags(&tags), "ms");
                }
            }
        }
    }
    ids
}

/// The operation a call belongs to: borrowed by synchronous scopes (no shared reference
/// count to bump, so threads running the same operation do not contend), owned by futures.
#[derive(Debug)]
enum OpRef<'a> {
    Borrowed(&'a OpInner),
    Owned(Arc<OpInner>),
}

impl std::ops::Deref for OpRef<'_> {
    type Target = OpInner;
    fn deref(&self) -> &OpInner {
        match self {
            OpRef::Borrowed(o) => o,
            OpRef::Owned(o) => o,
        }
    }
}

/// A phase boundary: (raw clock, phase, start?).
type Mark = (u64, &'static str, bool);

/// Index of an `op.duration` series among [`DURATION_SERIES`]: outcome × cache × batched × pool.
pub(crate) fn duration_index(outcome: usize, cache: usize, batched: usize, pool: usize) -> usize {
    ((outcome * CACHE_TAGS + cache) * BATCHED_TAGS.len() + batched) * POOL_TAGS + pool
}

/// What a call did, set while it runs.
#[derive(Debug)]
pub struct OpCtx<'a> {
    op: OpRef<'a>,
    cache: AtomicU8,
    /// 0 unset, 1 not batched, 2 batched.
    batched: AtomicU8,
    /// 0 unset, 1 pooled connection, 2 new connection.
    pool: AtomicU8,
    retries: AtomicU32,
    failed: AtomicBool,
    /// Phase starts and ends: (raw clock, phase, start?), created by the first phase, so calls
    /// without phases pay nothing for them.
    phases: std::sync::OnceLock<std::sync::Mutex<Vec<Mark>>>,
}

/// Split a call of `total` ns among its phases from their start and end marks (ns from the
/// call's start): each instant goes to the most recently started phase still running, or to
/// `other`. The parts add up to `total` exactly.
pub(crate) fn attribute(marks: &[(u64, &'static str, bool)], total: u64) -> Vec<(&'static str, u64)> {
    let mut events: Vec<(u64, usize, &'static str, bool)> =
        marks.iter().enumerate().map(|(i, &(t, name, start))| (t.min(total), i, name, start)).collect();
    events.sort_by_key(|e| (e.0, e.1));
    let mut active: Vec<&'static str> = Vec::new();
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    let mut add = |name: &'static str, ns: u64| {
        if ns == 0 {
            return;
        }
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += ns,
            None => out.push((name, ns)),
        }
    };
    let mut at = 0u64;
    for (t, _, name, start) in events {
        add(active.last().copied().unwrap_or(conv::OTHER_PHASE), t - at);
        at = t;
        if start {
            active.push(name);
        } else if let Some(i) = active.iter().rposition(|n| *n == name) {
            active.remove(i);
        }
    }
    add(active.last().copied().unwrap_or(conv::OTHER_PHASE), total - at);
    out
}

/// A running phase of a call; it ends when dropped (or with [`Phase::end`]).
#[derive(Debug)]
pub struct Phase<'c, 'a> {
    ctx: &'c OpCtx<'a>,
    name: &'static str,
}

impl Phase<'_, '_> {
    /// End the phase now.
    pub fn end(self) {}
}

impl Drop for Phase<'_, '_> {
    fn drop(&mut self) {
        self.ctx.mark(self.name, false);
    }
}

impl<'a> OpCtx<'a> {
    fn new(op: OpRef<'a>) -> Self {
        Self {
            op,
            cache: AtomicU8::new(0),
            batched: AtomicU8::new(0),
            pool: AtomicU8::new(0),
            retries: AtomicU32::new(0),
            failed: AtomicBool::new(false),
            phases: std::sync::OnceLock::new(),
        }
    }

    fn mark(&self, name: &'static str, start: bool) {
        let now = self.op.shared.clock.raw();
        self.phases.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).push((now, name, start));
    }

    /// Start a named phase (`"api"`, `"network"`, `"wait"`, …); it lasts until the returned
    /// guard drops. Phases nest, and may run concurrently from parallel sub-calls: see the
    /// module docs for how their time is attributed.
    pub fn phase(&self, name: &'static str) -> Phase<'_, 'a> {
        self.mark(name, true);
        Phase { ctx: self, name }
    }

    /// Run `fut` as a phase of this call (async).
    pub async fn in_phase<F: Future>(&self, name: &'static str, fut: F) -> F::Output {
        let _p = self.phase(name);
        fut.await
    }

    /// Whether the call's connection came from a pool (`pool=hit`) or had to be opened
    /// (`pool=miss`).
    pub fn pooled(&self, reused: bool) {
        let r = if reused { PoolResult::Hit } else { PoolResult::Miss };
        self.pool.store(code(PoolResult::ALL, &r), Ordering::Relaxed);
    }

    /// Where the answer came from (tags the call `cache=hit|miss|stale`).
    pub fn cache(&self, r: CacheResult) {
        self.cache.store(code(CacheResult::ALL, &r), Ordering::Relaxed);
    }

    /// The call carried `n` requests: `n > 1` tags it `batched=true` and records
    /// `op.batch.size`; `n <= 1` tags it `batched=false`.
    pub fn batched(&self, n: u32) {
        if n > 1 {
            self.batched.store(2, Ordering::Relaxed);
            self.op.shared.values.push((self.op.batch_size, f64::from(n)));
        } else {
            self.batched.store(1, Ordering::Relaxed);
        }
    }

    /// One retry (counted in `op.retries`; the call's duration includes it).
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.op.retries.add(1);
    }

    /// The call failed: `outcome=error`, and `err` becomes the operation's last error.
    pub fn fail(&self, err: &dyn Display) {
        self.failed.store(true, Ordering::Relaxed);
        self.op.shared.error(&self.op.name, &err.to_string());
    }

    /// Retries so far.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Record the call: `ns` long, and when it ran on the SDK clock if it was timed (`span`).
    fn finish(&self, ns: u64, ok: bool, span: Option<(u64, u64)>) {
        let outcome = usize::from(!ok || self.failed.load(Ordering::Relaxed));
        let cache = usize::from(self.cache.load(Ordering::Relaxed));
        let batched = usize::from(self.batched.load(Ordering::Relaxed));
        let pool = usize::from(self.pool.load(Ordering::Relaxed));
        let series = self.op.durations[duration_index(outcome, cache, batched, pool)];
        self.op.shared.values.push((series, ns as f64 / 1e6));
        if let Some(phases) = self.phases.get() {
            self.record_phases(phases, ns, span);
        }
    }

    /// The uncommon path: split the call among its phases and record them.
    #[cold]
    #[inline(never)]
    fn record_phases(&self, phases: &std::sync::Mutex<Vec<Mark>>, ns: u64, span: Option<(u64, u64)>) {
        let marks = std::mem::take(&mut *phases.lock().unwrap_or_else(|e| e.into_inner()));
        if marks.is_empty() {
            return;
        }
        let clock = &self.op.shared.clock;
        let origin = span.map_or(marks[0].0, |s| s.0);
        let offsets: Vec<Mark> = marks
            .iter()
            .map(|&(raw, name, start)| (if raw > origin { clock.delta_as_nanos(origin, raw) } else { 0 }, name, start))
            .collect();
        for (phase, phase_ns) in attribute(&offsets, ns) {
            let tags = self.op.shared.tags(&[(tag::OP, &self.op.name), (tag::PHASE, phase)]);
            let id = self.op.shared.dist(conv::OP_PHASE_DURATION.name, tags, "ms");
            self.op.shared.values.push((id, phase_ns as f64 / 1e6));
        }
    }
}

/// An operation's pre-registered handles: get one with [`super::Perf::operation`] and keep it;
/// scopes on it touch no lock and allocate nothing (a name lookup per call is what
/// [`super::Perf::op`] costs).
#[derive(Debug, Clone)]
pub struct Operation {
    pub(crate) inner: Arc<OpInner>,
}

#[derive(Debug)]
pub(crate) struct OpInner {
    pub(crate) name: String,
    /// Marker id for the profiler.
    pub(crate) id: u32,
    /// Distribution ids of `op.duration` by outcome × cache × batched × pool.
    pub(crate) durations: [u32; DURATION_SERIES],
    pub(crate) batch_size: u32,
    pub(crate) retries: Arc<Striped>,
    /// Calls in flight (a striped level: starts and ends on different threads do not
    /// contend).
    pub(crate) inflight: Arc<Striped>,
    pub(crate) shared: Arc<Shared>,
}

impl Operation {
    /// The operation's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Start a call (metrics only: no profiler attribution). End it with [`Scope::finish`];
    /// dropped unfinished, it counts as an error.
    pub fn start(&self) -> Scope<'_> {
        self.inner.inflight.add_signed(1);
        Scope { ctx: OpCtx::new(OpRef::Borrowed(&self.inner)), start: self.inner.shared.clock.raw(), done: false }
    }

    /// Run one call of the operation, profiled: CPU samples taken while `f` runs are
    /// attributed to this operation. The call is ok unless `f` calls [`OpCtx::fail`] or
    /// panics.
    pub fn run<T>(&self, f: impl FnOnce(&OpCtx<'_>) -> T) -> T {
        let mut scope = self.start();
        let mut f = Some(f);
        let mut out = None;
        let ctx = &scope.ctx;
        markers::enter(self.inner.id, &mut || {
            if let Some(f) = f.take() {
                out = Some(f(ctx));
            }
        });
        scope.finish();
        #[allow(clippy::expect_used)] // `enter` calls its body exactly once, so `out` is set
        out.expect("the marker frames ran the body")
    }

    /// [`Operation::run`] for bodies returning `Result`: an `Err` fails the call with its
    /// message.
    pub fn try_run<T, E: Display>(&self, f: impl FnOnce(&OpCtx<'_>) -> Result<T, E>) -> Result<T, E> {
        self.run(|op| {
            let r = f(op);
            if let Err(e) = &r {
                op.fail(e);
            }
            r
        })
    }

    /// Instrument a future: one call from its first poll to its completion, profiled (each
    /// poll runs inside the marker frames, on whichever thread polls it). The body gets the
    /// call's context to set cache, batching, retries and failures.
    pub fn instrument<F, Fut>(&self, f: F) -> Instrumented<Fut>
    where
        F: FnOnce(Arc<OpCtx<'static>>) -> Fut,
        Fut: Future,
    {
        let ctx = Arc::new(OpCtx::new(OpRef::Owned(self.inner.clone())));
        Instrumented { fut: f(ctx.clone()), ctx, start: None, done: false }
    }

    /// Record a call that already happened, with an explicit duration (imports, replays and
    /// deterministic tests). `f` sets what the call did.
    pub fn record(&self, duration: Duration, f: impl FnOnce(&OpCtx<'_>)) {
        let ctx = OpCtx::new(OpRef::Borrowed(&self.inner));
        f(&ctx);
        ctx.finish(duration.as_nanos().min(u128::from(u64::MAX)) as u64, true, None);
    }
}

/// A call in progress (the drop-guard form). Derefs to [`OpCtx`].
#[derive(Debug)]
pub struct Scope<'a> {
    ctx: OpCtx<'a>,
    start: u64,
    done: bool,
}

impl<'a> std::ops::Deref for Scope<'a> {
    type Target = OpCtx<'a>;
    fn deref(&self) -> &OpCtx<'a> {
        &self.ctx
    }
}

impl Scope<'_> {
    /// End the call now; ok unless [`OpCtx::fail`] was called.
    pub fn finish(&mut self) {
        self.end(true);
    }

    /// End the call with an explicit duration instead of the clock's.
    pub fn finish_with(&mut self, d: Duration) {
        if !self.done {
            self.done = true;
            self.ctx.op.inflight.add_signed(-1);
            self.ctx.finish(d.as_nanos().min(u128::from(u64::MAX)) as u64, true, None);
        }
    }

    fn end(&mut self, ok: bool) {
        if !self.done {
            self.done = true;
            self.ctx.op.inflight.add_signed(-1);
            let clock = &self.ctx.op.shared.clock;
            let end = clock.raw();
            self.ctx.finish(clock.delta_as_nanos(self.start, end), ok, Some((self.start, end)));
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// A future whose polls are one profiled call. See [`Operation::instrument`].
#[derive(Debug)]
pub struct Instrumented<F> {
    fut: F,
    ctx: Arc<OpCtx<'static>>,
    start: Option<u64>,
    done: bool,
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self` and never
        // handed out unpinned; the other fields are plain data we may change in place.
        let this = unsafe { self.get_unchecked_mut() };
        let clock = &this.ctx.op.shared.clock;
        let start = *this.start.get_or_insert_with(|| {
            this.ctx.op.inflight.add_signed(1);
            clock.raw()
        });
        // SAFETY: see above; `this.fut` stays where it is.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        let mut fut = Some(fut);
        let mut out = Poll::Pending;
        markers::enter(this.ctx.op.id, &mut || {
            if let Some(f) = fut.take() {
                out = f.poll(cx);
            }
        });
        if out.is_ready() && !this.done {
            this.done = true;
            this.ctx.op.inflight.add_signed(-1);
            let end = clock.raw();
            this.ctx.finish(clock.delta_as_nanos(start, end), true, Some((start, end)));
        }
        out
    }
}

impl<F> Drop for Instrumented<F> {
    fn drop(&mut self) {
        // Dropped before completion (cancelled, timed out): an error call.
        if let Some(start) = self.start
            && !self.done
        {
            self.done = true;
            self.ctx.op.inflight.add_signed(-1);
            let clock = &self.ctx.op.shared.clock;
            let end = clock.raw();
            self.ctx.finish(clock.delta_as_nanos(start, end), false, Some((start, end)));
        }
    }
}

/// A connection pool's metrics: `pool.acquire{result=hit|miss}`, `pool.size`,
/// `pool.evictions`.
#[derive(Debug, Clone)]
pub struct Pool {
    pub(crate) hits: Arc<Striped>,
    pub(crate) misses: Arc<Striped>,
    pub(crate) size: Arc<Gauge>,
    pub(crate) evictions: Arc<Striped>,
}

impl Pool {
    /// A checkout: `reused` when an idle connection served it.
    pub fn acquire(&self, reused: bool) {
        if reused { self.hits.add(1) } else { self.misses.add(1) }
    }

    /// Connections in the pool now.
    pub fn size(&self, n: u64) {
        self.size.set(n as f64);
    }

    /// `n` connections evicted.
    pub fn evicted(&self, n: u64) {
        self.evictions.add(n);
    }
}

/// A circuit breaker's metrics: `circuit.state` (0 closed, 1 half-open, 2 open) and
/// `circuit.transitions{to}`. `perfctl stats` shows the circuits that were open in a window,
/// and for how long.
#[derive(Debug, Clone)]
pub struct Circuit {
    pub(crate) state: Arc<Gauge>,
    pub(crate) transitions: [Arc<Striped>; 3],
    pub(crate) current: Arc<AtomicU8>,
}

impl Circuit {
    /// The breaker moved to `to` (a no-op when it is there already).
    pub fn set(&self, to: CircuitState) {
        let code = to.code();
        if self.current.swap(code, Ordering::Relaxed) != code {
            self.transitions[usize::from(code)].add(1);
        }
        self.state.set(f64::from(code));
    }
}

/// A cache's metrics: `cache.requests{result=hit|miss|stale}`, `cache.refresh`, `cache.size`.
#[derive(Debug, Clone)]
pub struct Cache {
    pub(crate) results: [Arc<Striped>; 3],
    pub(crate) refreshes: Arc<Striped>,
    pub(crate) size: Arc<Gauge>,
}

impl Cache {
    /// A lookup and where its answer came from.
    pub fn lookup(&self, r: CacheResult) {
        self.results[usize::from(code(CacheResult::ALL, &r)) - 1].add(1);
    }

    /// A background refresh.
    pub fn refresh(&self) {
        self.refreshes.add(1);
    }

    /// Entries in the cache now.
    pub fn size(&self, n: u64) {
        self.size.set(n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::attribute;

    fn sorted(mut v: Vec<(&'static str, u64)>) -> Vec<(&'static str, u64)> {
        v.sort();
        v
    }

    #[test]
    fn phases_add_up_and_are_never_counted_twice() {
        // 0-10 other, 10-60 api, nested 20-30 network (taken from api), 60-100 other.
        let m = [(10, "api", true), (20, "network", true), (30, "network", false), (60, "api", false)];
        assert_eq!(sorted(attribute(&m, 100)), vec![("api", 40), ("network", 10), ("other", 50)]);
        // Two parallel sub-calls' api phases overlap (10-50 and 30-70): 60 of api, not 80.
        let m = [(10, "api", true), (30, "api", true), (50, "api", false), (70, "api", false)];
        assert_eq!(sorted(attribute(&m, 100)), vec![("api", 60), ("other", 40)]);
        // Concurrent different phases: the latest started owns the overlap.
        let m = [(0, "api", true), (40, "wait", true), (60, "api", false), (80, "wait", false)];
        assert_eq!(sorted(attribute(&m, 80)), vec![("api", 40), ("wait", 40)]);
        // A phase still open at the end runs to the end; marks past the end are clamped.
        let m = [(50, "poll", true), (500, "x", true)];
        assert_eq!(sorted(attribute(&m, 100)), vec![("other", 50), ("poll", 50)]);
        let total: u64 = attribute(&[(3, "a", true), (7, "b", true), (9, "a", false)], 11).iter().map(|p| p.1).sum();
        assert_eq!(total, 11);
    }
}
