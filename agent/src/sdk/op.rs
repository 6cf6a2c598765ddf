//! Operation scopes, and helpers for caches and connection pools.
//!
//! One scope is one logical call of an operation: exactly one `op.duration` event when it
//! ends, with tags `op`, `outcome` (`ok`/`error`) and, when set, `cache` and `batched`. Its
//! duration includes its retries, which count in `op.retries`, not as calls. A scope that
//! ends without [`Scope::finish`] (an early `?`, a panic) is an error.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use super::Shared;
use super::buffer::{Gauge, Striped};
use super::markers;

/// Where a call's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Served fresh from a cache.
    Hit,
    /// Not in the cache: the call went to the API.
    Miss,
    /// Served stale from the cache while it refreshes in the background.
    Stale,
}

impl CacheResult {
    fn code(self) -> u8 {
        match self {
            CacheResult::Hit => 1,
            CacheResult::Miss => 2,
            CacheResult::Stale => 3,
        }
    }
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

/// What a call did, set while it runs.
#[derive(Debug)]
pub struct OpCtx<'a> {
    op: OpRef<'a>,
    cache: AtomicU8,
    /// 0 unset, 1 not batched, 2 batched.
    batched: AtomicU8,
    retries: AtomicU32,
    failed: AtomicBool,
}

impl<'a> OpCtx<'a> {
    fn new(op: OpRef<'a>) -> Self {
        Self {
            op,
            cache: AtomicU8::new(0),
            batched: AtomicU8::new(0),
            retries: AtomicU32::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// Where the answer came from (tags the call `cache=hit|miss|stale`).
    pub fn cache(&self, r: CacheResult) {
        self.cache.store(r.code(), Ordering::Relaxed);
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

    fn finish(&self, ns: u64, ok: bool) {
        let outcome = usize::from(!ok || self.failed.load(Ordering::Relaxed));
        let cache = usize::from(self.cache.load(Ordering::Relaxed));
        let batched = usize::from(self.batched.load(Ordering::Relaxed));
        let series = self.op.durations[outcome * 12 + cache * 3 + batched];
        self.op.shared.values.push((series, ns as f64 / 1e6));
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
    /// Distribution ids of `op.duration` by outcome (2) × cache (4) × batched (3).
    pub(crate) durations: [u32; 24],
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
        ctx.finish(duration.as_nanos().min(u128::from(u64::MAX)) as u64, true);
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
            self.ctx.finish(d.as_nanos().min(u128::from(u64::MAX)) as u64, true);
        }
    }

    fn end(&mut self, ok: bool) {
        if !self.done {
            self.done = true;
            self.ctx.op.inflight.add_signed(-1);
            let clock = &self.ctx.op.shared.clock;
            self.ctx.finish(clock.delta_as_nanos(self.start, clock.raw()), ok);
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
            this.ctx.finish(clock.delta_as_nanos(start, clock.raw()), true);
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
            self.ctx.finish(clock.delta_as_nanos(start, clock.raw()), false);
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
        self.results[usize::from(r.code() - 1)].add(1);
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
