//! Every metric of the convention, with its kind, unit, tags and help.

use super::{Metric, tag};
use crate::model::Kind;

const OP_TAGS: &[&str] = &[tag::OP];

/// One event per call of an operation; its duration includes the call's retries.
pub const OP_DURATION: Metric = Metric {
    name: "op.duration",
    kind: Kind::Distribution,
    unit: "s",
    tags: &[tag::OP, tag::OUTCOME, tag::CACHE, tag::BATCHED, tag::POOL],
    help: "Duration of each call of an operation (one event per call, retries included).",
    formerly: &[],
};
/// Retries made by an operation's calls (not counted as calls).
pub const OP_RETRIES: Metric = Metric {
    name: "op.retries",
    kind: Kind::Counter,
    unit: "",
    tags: OP_TAGS,
    help: "Retries made by an operation's calls (not counted as calls).",
    formerly: &[],
};
/// Requests carried per batched call.
pub const OP_BATCH_SIZE: Metric = Metric {
    name: "op.batch.size",
    kind: Kind::Distribution,
    unit: "",
    tags: OP_TAGS,
    help: "Requests carried by each batched call of an operation.",
    formerly: &[],
};
/// Calls in flight.
pub const OP_INFLIGHT: Metric = Metric {
    name: "op.inflight",
    kind: Kind::Gauge,
    unit: "",
    tags: OP_TAGS,
    help: "Calls of an operation in flight.",
    formerly: &[],
};
/// Time spent in one phase of a call.
pub const OP_PHASE_DURATION: Metric = Metric {
    name: "op.phase.duration",
    kind: Kind::Distribution,
    unit: "s",
    tags: &[tag::OP, tag::PHASE],
    help: "Time each call of an operation spent in one phase.",
    formerly: &[],
};
/// Connection-pool checkouts.
pub const POOL_ACQUIRE: Metric = Metric {
    name: "pool.acquire",
    kind: Kind::Counter,
    unit: "",
    tags: &[tag::POOL, tag::RESULT],
    help: "Connection-pool checkouts, by whether an idle connection was reused.",
    formerly: &[],
};
/// Connections in a pool.
pub const POOL_SIZE: Metric = Metric {
    name: "pool.size",
    kind: Kind::Gauge,
    unit: "",
    tags: &[tag::POOL],
    help: "Connections in a pool.",
    formerly: &[],
};
/// Connections evicted from a pool.
pub const POOL_EVICTIONS: Metric = Metric {
    name: "pool.evictions",
    kind: Kind::Counter,
    unit: "",
    tags: &[tag::POOL],
    help: "Connections evicted from a pool.",
    formerly: &[],
};
/// Cache lookups.
pub const CACHE_REQUESTS: Metric = Metric {
    name: "cache.requests",
    kind: Kind::Counter,
    unit: "",
    tags: &[tag::CACHE, tag::RESULT],
    help: "Cache lookups, by result (hit, miss, stale).",
    formerly: &[],
};
/// Background refreshes of a cache.
pub const CACHE_REFRESH: Metric = Metric {
    name: "cache.refresh",
    kind: Kind::Counter,
    unit: "",
    tags: &[tag::CACHE],
    help: "Background refreshes of a cache.",
    formerly: &[],
};
/// Entries in a cache.
pub const CACHE_SIZE: Metric = Metric {
    name: "cache.size",
    kind: Kind::Gauge,
    unit: "",
    tags: &[tag::CACHE],
    help: "Entries in a cache.",
    formerly: &[],
};
/// A circuit breaker's state (0 closed, 1 half-open, 2 open).
pub const CIRCUIT_STATE: Metric = Metric {
    name: "circuit.state",
    kind: Kind::Gauge,
    unit: "",
    tags: &[tag::CIRCUIT],
    help: "A circuit breaker's state: 0 closed, 1 half-open, 2 open.",
    formerly: &[],
};
/// A circuit breaker's state changes.
pub const CIRCUIT_TRANSITIONS: Metric = Metric {
    name: "circuit.transitions",
    kind: Kind::Counter,
    unit: "",
    tags: &[tag::CIRCUIT, tag::TO],
    help: "A circuit breaker's state changes, by the state it moved to.",
    formerly: &[],
};

/// Host CPU utilization, 0–1 of the cores (or of the cgroup's limit).
pub const SYSTEM_CPU_UTILIZATION: Metric = Metric {
    name: "system.cpu.utilization",
    kind: Kind::Gauge,
    unit: "1",
    tags: &[],
    help: "Host CPU utilization, 0-1 of the logical CPUs (or of the cgroup's CPU limit).",
    formerly: &[],
};
/// Logical CPUs.
pub const SYSTEM_CPU_LOGICAL_COUNT: Metric = Metric {
    name: "system.cpu.logical.count",
    kind: Kind::Gauge,
    unit: "{cpu}",
    tags: &[],
    help: "Logical CPUs of the host.",
    formerly: &["system.cpu.logical_cpus"],
};
/// The cgroup's CPU limit in cores (no OpenTelemetry name covers a cgroup's limit).
pub const CONTAINER_CPU_LIMIT: Metric = Metric {
    name: "container.cpu.limit",
    kind: Kind::Gauge,
    unit: "{cpu}",
    tags: &[],
    help: "CPU limit of the agent's cgroup, in cores.",
    formerly: &[],
};
/// One-minute load average (the OpenTelemetry collector's host-metrics name).
pub const SYSTEM_CPU_LOAD_AVERAGE_1M: Metric = Metric {
    name: "system.cpu.load_average.1m",
    kind: Kind::Gauge,
    unit: "1",
    tags: &[],
    help: "One-minute load average of the host.",
    formerly: &[],
};
/// Memory in use (the cgroup's when limited).
pub const SYSTEM_MEMORY_USAGE: Metric = Metric {
    name: "system.memory.usage",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[],
    help: "Memory in use (the cgroup's when it has a limit), bytes.",
    formerly: &[],
};
/// Memory available in all (the cgroup's limit when lower).
pub const SYSTEM_MEMORY_LIMIT: Metric = Metric {
    name: "system.memory.limit",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[],
    help: "Total memory (the cgroup's limit when lower), bytes.",
    formerly: &[],
};
/// Linux's estimate of memory available for new applications.
pub const SYSTEM_MEMORY_LINUX_AVAILABLE: Metric = Metric {
    name: "system.memory.linux.available",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[],
    help: "Memory available for starting new applications without swapping (MemAvailable), bytes.",
    formerly: &["system.memory.available"],
};
/// Memory in use / limit.
pub const SYSTEM_MEMORY_UTILIZATION: Metric = Metric {
    name: "system.memory.utilization",
    kind: Kind::Gauge,
    unit: "1",
    tags: &[],
    help: "Memory utilization, 0-1 of the limit.",
    formerly: &[],
};
/// Swap in use.
pub const SYSTEM_PAGING_USAGE: Metric = Metric {
    name: "system.paging.usage",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[],
    help: "Swap in use, bytes.",
    formerly: &[],
};
/// Bytes used on a filesystem.
pub const SYSTEM_FILESYSTEM_USAGE: Metric = Metric {
    name: "system.filesystem.usage",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[tag::MOUNTPOINT],
    help: "Bytes used on a filesystem.",
    formerly: &[],
};
/// Used / size of a filesystem.
pub const SYSTEM_FILESYSTEM_UTILIZATION: Metric = Metric {
    name: "system.filesystem.utilization",
    kind: Kind::Gauge,
    unit: "1",
    tags: &[tag::MOUNTPOINT],
    help: "Filesystem utilization, 0-1 of its size.",
    formerly: &[],
};
/// Bytes read from and written to a disk.
pub const SYSTEM_DISK_IO: Metric = Metric {
    name: "system.disk.io",
    kind: Kind::Counter,
    unit: "By",
    tags: &[tag::DEVICE, tag::DIRECTION],
    help: "Bytes read from and written to a disk.",
    formerly: &[],
};
/// Bytes received and sent on a network interface.
pub const SYSTEM_NETWORK_IO: Metric = Metric {
    name: "system.network.io",
    kind: Kind::Counter,
    unit: "By",
    tags: &[tag::DEVICE, tag::DIRECTION],
    help: "Bytes received and sent on a network interface.",
    formerly: &[],
};
/// Resident memory of the recording process.
pub const PROCESS_MEMORY_USAGE: Metric = Metric {
    name: "process.memory.usage",
    kind: Kind::Gauge,
    unit: "By",
    tags: &[],
    help: "Resident memory of the recording process (the agent, or the app embedding the SDK), bytes.",
    formerly: &[],
};
/// CPU time of the recording process.
pub const PROCESS_CPU_TIME: Metric = Metric {
    name: "process.cpu.time",
    kind: Kind::Counter,
    unit: "s",
    tags: &[],
    help: "CPU time used by the recording process, seconds.",
    formerly: &[],
};

/// A connectivity probe's phases (`perfctl test-connection --record`, like blackbox_exporter).
pub const PROBE_DURATION: Metric = Metric {
    name: "probe.duration",
    kind: Kind::Distribution,
    unit: "s",
    tags: &[tag::TARGET, tag::PHASE],
    help: "Duration of each phase of a connectivity probe (dns, connect, tls, ttfb, total).",
    formerly: &[],
};
/// Whether a connectivity probe succeeded (1) or not (0).
pub const PROBE_SUCCESS: Metric = Metric {
    name: "probe.success",
    kind: Kind::Gauge,
    unit: "",
    tags: &[tag::TARGET],
    help: "Whether the last connectivity probe of the target succeeded (1) or failed (0).",
    formerly: &[],
};

/// Every metric of the convention.
pub const ALL: &[Metric] = &[
    PROBE_DURATION,
    PROBE_SUCCESS,
    OP_DURATION,
    OP_RETRIES,
    OP_BATCH_SIZE,
    OP_INFLIGHT,
    OP_PHASE_DURATION,
    POOL_ACQUIRE,
    POOL_SIZE,
    POOL_EVICTIONS,
    CACHE_REQUESTS,
    CACHE_REFRESH,
    CACHE_SIZE,
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS,
    SYSTEM_CPU_UTILIZATION,
    SYSTEM_CPU_LOGICAL_COUNT,
    CONTAINER_CPU_LIMIT,
    SYSTEM_CPU_LOAD_AVERAGE_1M,
    SYSTEM_MEMORY_USAGE,
    SYSTEM_MEMORY_LIMIT,
    SYSTEM_MEMORY_LINUX_AVAILABLE,
    SYSTEM_MEMORY_UTILIZATION,
    SYSTEM_PAGING_USAGE,
    SYSTEM_FILESYSTEM_USAGE,
    SYSTEM_FILESYSTEM_UTILIZATION,
    SYSTEM_DISK_IO,
    SYSTEM_NETWORK_IO,
    PROCESS_MEMORY_USAGE,
    PROCESS_CPU_TIME,
];
