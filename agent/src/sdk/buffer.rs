//! The SDK's hot path: lock-free and allocation-free per event.
//!
//! * Counters are striped: 16 cache-line-padded atomics, each thread adding to its own slot,
//!   so two threads on one series do not fight over one cache line.
//! * Gauges are one atomic holding the f64's bits.
//! * Timer and histogram values go into a per-thread single-producer / single-consumer ring
//!   (the thread pushes, the collector drains every few tens of milliseconds). A full ring
//!   (a thread recording faster than the collector drains) spills into that thread's own
//!   vector under a mutex only the collector also takes: the uncommon path, and bounded.

use std::cell::{RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const STRIPES: usize = 16;

#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded(AtomicU64);

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

fn stripe() -> usize {
    STRIPE.with(|s| *s)
}

/// A counter many threads add to without contention.
#[derive(Debug, Default)]
pub struct Striped {
    slots: [Padded; STRIPES],
}

impl Striped {
    /// Add `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.slots[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// Take the total added since the last take.
    pub fn take(&self) -> u64 {
        self.slots.iter().map(|s| s.0.swap(0, Ordering::Relaxed)).sum()
    }

    /// Add a signed amount (a level that goes up and down, like calls in flight).
    #[inline]
    pub fn add_signed(&self, n: i64) {
        self.slots[stripe()].0.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The current level (the wrapping sum of every signed add), without resetting it.
    pub fn level(&self) -> i64 {
        self.slots.iter().fold(0u64, |acc, s| acc.wrapping_add(s.0.load(Ordering::Relaxed))) as i64
    }
}

/// A gauge: the last value set, and whether it was set since the last take.
#[derive(Debug, Default)]
pub struct Gauge {
    bits: AtomicU64,
    dirty: AtomicBool,
}

impl Gauge {
    /// Set the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
        self.dirty.store(true, Ordering::Release);
    }

    /// Add to the value (for up/down counts like `op.inflight`).
    pub fn add(&self, d: f64) {
        let _ =
            self.bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some((f64::from_bits(b) + d).to_bits()));
        self.dirty.store(true, Ordering::Release);
    }

    /// The value if it was set since the last take.
    pub fn take(&self) -> Option<f64> {
        self.dirty.swap(false, Ordering::Acquire).then(|| f64::from_bits(self.bits.load(Ordering::Relaxed)))
    }
}

/// One recorded value: the distribution series it belongs to, and the value.
pub type Value = (u32, f64);

const RING: usize = 4096;

/// A single-producer, single-consumer ring of values, and its thread's spill for when it is
/// full (a per-thread mutex: uncontended but for the collector's drain).
struct Ring {
    spill: Mutex<Vec<Value>>,
    slots: Box<[UnsafeCell<Value>]>,
    /// Next slot the consumer reads.
    head: AtomicUsize,
    /// Next slot the producer writes.
    tail: AtomicUsize,
}

// SAFETY: a slot is written only by the one producer (the thread whose thread-local holds the
// ring for pushing) before it publishes `tail` with Release, and read only by the one
// consumer (the collector, which drains under `Values::rings`' mutex) after it loads `tail`
// with Acquire and before it publishes `head` with Release; the producer reuses a slot only
// after observing that `head` (Acquire). So no slot is ever accessed by both at once.
unsafe impl Sync for Ring {}
// SAFETY: as above; the ring owns plain data.
unsafe impl Send for Ring {}

impl Ring {
    fn new() -> Self {
        Self {
            spill: Mutex::new(Vec::new()),
            slots: (0..RING).map(|_| UnsafeCell::new((0, 0.0))).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Producer side. False when full.
    #[inline]
    fn push(&self, v: Value) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.head.load(Ordering::Acquire)) >= RING {
            return false;
        }
        // SAFETY: only the producer writes, and this slot is outside head..tail, so the
        // consumer does not read it until `tail` is published below.
        unsafe { *self.slots[tail % RING].get() = v };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side (called with `Values::rings` locked: one consumer at a time).
    fn drain(&self, out: &mut Vec<Value>) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let mut i = head;
        while i != tail {
            // SAFETY: slots in head..tail were published by the producer's Release store of
            // `tail` (loaded with Acquire above) and are not written again until `head`
            // moves past them below.
            out.push(unsafe { *self.slots[i % RING].get() });
            i = i.wrapping_add(1);
        }
        self.head.store(tail, Ordering::Release);
    }
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's rings, one per SDK instance it has recorded into.
    static RINGS: RefCell<Vec<(u64, Arc<Ring>)>> = const { RefCell::new(Vec::new()) };
}

/// Most values waiting in one thread's spill (4 MiB); past it values are dropped and
/// counted.
const SPILL_MAX: usize = 1 << 18;

/// Values from every thread of one SDK instance.
#[derive(Default)]
pub struct Values {
    id: u64,
    rings: Mutex<Vec<Arc<Ring>>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Values {
    /// A new, empty set of rings.
    pub fn new() -> Self {
        Self { id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed), ..Self::default() }
    }

    /// Record a value from this thread.
    #[inline]
    pub fn push(&self, v: Value) {
        RINGS.with(|rings| {
            let mut rings = rings.borrow_mut();
            let i = match rings.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // First value from this thread: one ring, registered once.
                    let ring = Arc::new(Ring::new());
                    if let Ok(mut all) = self.rings.lock() {
                        all.push(ring.clone());
                    }
                    rings.push((self.id, ring));
                    rings.len() - 1
                }
            };
            let ring = &rings[i].1;
            if !ring.push(v) {
                let mut spill = ring.spill.lock().unwrap_or_else(|e| e.into_inner());
                if spill.len() < SPILL_MAX {
                    spill.push(v);
                } else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    /// Values dropped because a thread's spill was full, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Everything recorded since the last drain, from every thread.
    pub fn drain(&self, out: &mut Vec<Value>) {
        if let Ok(mut rings) = self.rings.lock() {
            for r in rings.iter() {
                r.drain(out);
                out.append(&mut r.spill.lock().unwrap_or_else(|e| e.into_inner()));
            }
            // A ring only this list still holds belongs to a thread that has exited. It may
            // have pushed between the drain above and its exit: drain it once more (now
            // complete: nobody can push into it any more), then let it go.
            rings.retain(|r| {
                if Arc::strong_count(r) > 1 {
                    return true;
                }
                // Pairs with the exiting thread's release decrement of the count, so its last
                // pushes are visible.
                std::sync::atomic::fence(Ordering::Acquire);
                r.drain(out);
                out.append(&mut r.spill.lock().unwrap_or_else(|e| e.into_inner()));
                false
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_many_threads_all_arrive_even_past_the_ring() {
        let v = Arc::new(Values::new());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let v = v.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        v.push((t, f64::from(i)));
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in threads {
            v.drain(&mut out); // concurrently with the producers
            t.join().unwrap();
        }
        v.drain(&mut out);
        assert_eq!(out.len(), 40_000);
        for t in 0..4 {
            let sum: f64 = out.iter().filter(|x| x.0 == t).map(|x| x.1).sum();
            assert_eq!(sum, (0..10_000).map(f64::from).sum::<f64>());
        }
    }

    #[test]
    fn striped_counters_and_gauges() {
        let c = Striped::default();
        c.add(3);
        std::thread::scope(|s| {
            s.spawn(|| c.add(4));
        });
        assert_eq!(c.take(), 7);
        assert_eq!(c.take(), 0);
        let level = Striped::default();
        level.add_signed(1);
        std::thread::scope(|s| {
            s.spawn(|| level.add_signed(-3));
        });
        assert_eq!((level.level(), level.level()), (-2, -2));
        let g = Gauge::default();
        assert_eq!(g.take(), None);
        g.set(2.5);
        g.add(1.0);
        assert_eq!(g.take(), Some(3.5));
        assert_eq!(g.take(), None);
    }
}
