//! The metric convention: every series the product defines, spelled once.
//!
//! The SDK, the StatsD path, the host sampler, `/metrics`, import and export, and every
//! analysis refer to these [`Metric`]s, their [`tag`] keys and typed tag values instead of
//! string literals. Host and process metrics take the OpenTelemetry semantic-convention names
//! and base units (`s`, `By`, `1` for ratios); [`prometheus`] maps names to Prometheus and back.
//!
//! | metric | kind | tags |
//! |---|---|---|
//! | `op.duration` | distribution (s) | `op`, `outcome`, `cache`, `batched`, `pool` |
//! | `op.retries` | counter | `op` |
//! | `op.batch.size` | distribution | `op` |
//! | `op.inflight` | gauge | `op` |
//! | `op.phase.duration` | distribution (s) | `op`, `phase` |
//! | `pool.acquire`, `pool.size`, `pool.evictions` | counter, gauge, counter | `pool`, (`result`) |
//! | `cache.requests`, `cache.refresh`, `cache.size` | counter, counter, gauge | `cache`, (`result`) |
//! | `circuit.state`, `circuit.transitions` | gauge, counter | `circuit`, (`to`) |

use crate::model::{Kind, SERVICE_LABEL, SeriesKey};

/// One metric of the convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Name, e.g. `op.duration`.
    pub name: &'static str,
    /// How its points aggregate.
    pub kind: Kind,
    /// Base unit (UCUM): `s`, `By`, `1`, `{cpu}`, or empty.
    pub unit: &'static str,
    /// Tag keys it carries besides `service`.
    pub tags: &'static [&'static str],
    /// One line for people (Prometheus HELP, docs).
    pub help: &'static str,
    /// Names older stores and exports used for it (migrated in stores, accepted on import).
    pub formerly: &'static [&'static str],
}

impl Metric {
    /// A series key of this metric in `service`, with its kind and unit.
    pub fn key(&self, service: &str) -> SeriesKey {
        SeriesKey::new(service, self.name, self.kind).unit(self.unit)
    }

    /// Its Prometheus name (`op_duration_seconds`, `op_retries_total`).
    pub fn prometheus_name(&self) -> String {
        prometheus::metric_name(self.name, self.kind, self.unit)
    }
}

/// Tag keys.
pub mod tag {
    /// The service a series belongs to (every series carries it).
    pub const SERVICE: &str = super::SERVICE_LABEL;
    /// The operation of a call.
    pub const OP: &str = "op";
    /// `ok` or `error` ([`super::Outcome`]).
    pub const OUTCOME: &str = "outcome";
    /// Where a call's answer came from ([`super::CacheResult`]).
    pub const CACHE: &str = "cache";
    /// `true` when a call carried several requests.
    pub const BATCHED: &str = "batched";
    /// A call's connection: `hit` reused from a pool, `miss` newly opened ([`super::PoolResult`]).
    pub const POOL: &str = "pool";
    /// A cache lookup's or pool checkout's result.
    pub const RESULT: &str = "result";
    /// A phase of an operation.
    pub const PHASE: &str = "phase";
    /// A circuit breaker.
    pub const CIRCUIT: &str = "circuit";
    /// The state a circuit breaker moved to ([`super::CircuitState`]).
    pub const TO: &str = "to";
    /// A filesystem's mount point.
    pub const MOUNTPOINT: &str = "mountpoint";
    /// A disk or network device.
    pub const DEVICE: &str = "device";
    /// `read`/`write` (disks), `receive`/`transmit` (networks) ([`super::Direction`]).
    pub const DIRECTION: &str = "direction";
}

/// The `service` of the host sampler's series.
pub const HOST_SERVICE: &str = "host";
/// The operation of calls sent without an `op` tag, and of profile samples outside any
/// operation.
pub const NO_OP: &str = "(none)";
/// The phase of a call's time spent in no named phase.
pub const OTHER_PHASE: &str = "other";
/// The value of `batched` on batched calls.
pub const BATCHED_TRUE: &str = "true";
/// The value of `batched` on calls that were not batched.
pub const BATCHED_FALSE: &str = "false";

macro_rules! tag_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The tag value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value a tag holds, if it is one of these.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

tag_enum!(
    /// `outcome` of a call.
    Outcome {
        /// It succeeded.
        Ok => "ok",
        /// It failed.
        Error => "error",
    }
);

tag_enum!(
    /// Where a call's answer came from (`cache` tag), and a cache lookup's `result`.
    CacheResult {
        /// Served fresh from a cache.
        Hit => "hit",
        /// Not in the cache: the call went to the API.
        Miss => "miss",
        /// Served stale from the cache while it refreshes in the background.
        Stale => "stale",
    }
);

impl CacheResult {
    /// Whether the answer came from the cache (fresh or stale).
    pub fn is_hit(self) -> bool {
        matches!(self, CacheResult::Hit | CacheResult::Stale)
    }
}

tag_enum!(
    /// A pool checkout's `result`, and a call's `pool` tag.
    PoolResult {
        /// An idle connection was reused.
        Hit => "hit",
        /// A new connection had to be opened.
        Miss => "miss",
    }
);

tag_enum!(
    /// A circuit breaker's state (`to` of `circuit.transitions`; `circuit.state` holds its
    /// [`CircuitState::code`]).
    CircuitState {
        /// Calls go through.
        Closed => "closed",
        /// Trial calls go through.
        HalfOpen => "half_open",
        /// Calls are refused.
        Open => "open",
    }
);

impl CircuitState {
    /// The value of `circuit.state`: 0 closed, 1 half-open, 2 open.
    pub fn code(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

tag_enum!(
    /// `direction` of disk and network I/O.
    Direction {
        /// Bytes read from a disk.
        Read => "read",
        /// Bytes written to a disk.
        Write => "write",
        /// Bytes received on an interface.
        Receive => "receive",
        /// Bytes sent on an interface.
        Transmit => "transmit",
    }
);

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

/// Every metric of the convention.
pub const ALL: &[Metric] = &[
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

/// The convention's metric called `name` (or formerly called so).
pub fn find(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name || m.formerly.contains(&name))
}

/// Whether a StatsD value of this type and name is a duration in milliseconds (stored in
/// seconds): every timer (`ms`), and histograms and distributions whose name ends in
/// `duration` (`op.duration`, `op.phase.duration`).
pub fn statsd_is_milliseconds(timer: bool, name: &str) -> bool {
    timer || name.ends_with("duration")
}

/// The Prometheus / OpenMetrics mapping (the OpenTelemetry → Prometheus rule), both ways.
pub mod prometheus {
    use super::{ALL, Kind, Metric};

    /// Label names a series' tags must never take: they belong to the exposition format.
    pub const RESERVED_LABELS: &[&str] = &["le", "quantile"];

    /// The Prometheus name of a series: characters outside `[a-zA-Z0-9_:]` become `_`, a
    /// leading digit gets `_`, the base unit is appended unless already there (`s` →
    /// `_seconds`, `By` → `_bytes`, `1` → `_ratio` except on counters), counters end in
    /// `_total`.
    pub fn metric_name(name: &str, kind: Kind, unit: &str) -> String {
        let mut n: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
        if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
            n.insert(0, '_');
        }
        let suffix = match unit {
            "s" => "_seconds",
            "By" => "_bytes",
            "1" if kind != Kind::Counter => "_ratio",
            _ => "",
        };
        if !suffix.is_empty() && !n.ends_with(suffix) {
            n.push_str(suffix);
        }
        if kind == Kind::Counter && !n.ends_with("_total") {
            n.push_str("_total");
        }
        n
    }

    /// The family name of a series in an OpenMetrics exposition: [`metric_name`] without a
    /// counter's `_total` (OpenMetrics puts `_total` on the sample, not the family).
    pub fn family_name(name: &str, kind: Kind, unit: &str) -> String {
        let n = metric_name(name, kind, unit);
        match (kind, n.strip_suffix("_total")) {
            (Kind::Counter, Some(family)) => family.to_owned(),
            _ => n,
        }
    }

    /// A Prometheus label name for a tag key: characters outside `[a-zA-Z0-9_]` become `_`; a
    /// leading digit, a leading `__` (reserved) and the names of [`RESERVED_LABELS`] get an
    /// `l` in front.
    pub fn label_name(key: &str) -> String {
        let mut n: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        if n.is_empty()
            || n.starts_with(|c: char| c.is_ascii_digit())
            || n.starts_with("__")
            || RESERVED_LABELS.contains(&n.as_str())
        {
            n.insert(0, 'l');
        }
        n
    }

    /// A label value escaped for the text formats: `\`, `"` and line feeds.
    pub fn escape_label_value(v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out
    }

    /// HELP text escaped for the text formats: `\` and line feeds (quotes stay as they are).
    pub fn escape_help(v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if c.is_control() => out.push(' '),
                c => out.push(c),
            }
        }
        out
    }

    /// The convention's metric a Prometheus family of `kind` stands for: its name with the
    /// unit suffix as the agent writes it, or without one (a StatsD client's gauge has no
    /// unit, so `system.cpu.utilization` sent over StatsD exports as
    /// `system_cpu_utilization`), or one of its former names. A counter family may be
    /// given with or without `_total`.
    pub fn from_family(family: &str, kind: Kind) -> Option<&'static Metric> {
        let prom = if kind == Kind::Counter && !family.ends_with("_total") {
            format!("{family}_total")
        } else {
            family.into()
        };
        ALL.iter().filter(|m| m.kind == kind).find(|m| {
            std::iter::once(m.name)
                .chain(m.formerly.iter().copied())
                .any(|name| metric_name(name, m.kind, m.unit) == prom || metric_name(name, m.kind, "") == prom)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::prometheus::*;
    use super::*;

    #[test]
    fn names_follow_the_otel_to_prometheus_rule() {
        assert_eq!(OP_DURATION.prometheus_name(), "op_duration_seconds");
        assert_eq!(OP_RETRIES.prometheus_name(), "op_retries_total");
        assert_eq!(SYSTEM_CPU_UTILIZATION.prometheus_name(), "system_cpu_utilization_ratio");
        assert_eq!(SYSTEM_NETWORK_IO.prometheus_name(), "system_network_io_bytes_total");
        assert_eq!(metric_name("cache-size", Kind::Gauge, ""), "cache_size");
        assert_eq!(metric_name("9lives", Kind::Gauge, ""), "_9lives");
        assert_eq!(metric_name("requests_total", Kind::Counter, ""), "requests_total");
        assert_eq!(family_name("op.retries", Kind::Counter, ""), "op_retries");
    }

    #[test]
    fn prometheus_names_map_back_with_or_without_units_and_from_former_names() {
        assert_eq!(from_family("op_duration_seconds", Kind::Distribution), Some(&OP_DURATION));
        assert_eq!(from_family("op_retries", Kind::Counter), Some(&OP_RETRIES));
        assert_eq!(from_family("op_retries_total", Kind::Counter), Some(&OP_RETRIES));
        assert_eq!(from_family("system_cpu_utilization_ratio", Kind::Gauge), Some(&SYSTEM_CPU_UTILIZATION));
        assert_eq!(from_family("system_cpu_utilization", Kind::Gauge), Some(&SYSTEM_CPU_UTILIZATION));
        assert_eq!(from_family("system_cpu_logical_cpus", Kind::Gauge), Some(&SYSTEM_CPU_LOGICAL_COUNT));
        assert_eq!(from_family("op_retries_total", Kind::Gauge), None, "kinds must agree");
        assert_eq!(from_family("http_requests_total", Kind::Counter), None);
    }

    #[test]
    fn every_metric_round_trips_and_names_are_unique() {
        for m in ALL {
            assert_eq!(from_family(&m.prometheus_name(), m.kind), Some(m), "{}", m.name);
            assert_eq!(find(m.name), Some(m));
            assert_eq!(ALL.iter().filter(|o| o.name == m.name).count(), 1, "{}", m.name);
        }
        assert_eq!(find("system.memory.available"), Some(&SYSTEM_MEMORY_LINUX_AVAILABLE));
    }

    #[test]
    fn labels_never_take_reserved_names_and_text_is_escaped_by_its_own_rule() {
        assert_eq!(label_name("le"), "lle");
        assert_eq!(label_name("quantile"), "lquantile");
        assert_eq!(label_name("__name__"), "l__name__");
        assert_eq!(label_name("a.b"), "a_b");
        assert_eq!(label_name("9x"), "l9x");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("says \"hi\"\\\n"), "says \"hi\"\\\\\\n");
    }

    #[test]
    fn tag_values_parse_back() {
        for c in CacheResult::ALL {
            assert_eq!(CacheResult::parse(c.as_str()), Some(*c));
        }
        assert_eq!(CircuitState::Open.code(), 2);
        assert_eq!(CircuitState::parse("half_open"), Some(CircuitState::HalfOpen));
        assert!(CacheResult::Stale.is_hit() && !CacheResult::Miss.is_hit());
        assert_eq!(Outcome::parse("maybe"), None);
    }
}
