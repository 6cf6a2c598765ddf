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

mod metrics;

pub use metrics::*;

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
    /// A probed endpoint (`https://api.example.com`, `db:5432`).
    pub const TARGET: &str = "target";
}

/// The `service` of the host sampler's series.
pub const HOST_SERVICE: &str = "host";
/// The operation of calls sent without an `op` tag, and of profile samples outside any
/// operation.
pub const NO_OP: &str = "(none)";
/// The frame a profiled stack holds where its operation began (the SDK's marker frames, as one
/// frame): flame graphs start there by default, runtime frames below it hidden.
pub const OPERATION_FRAME: &str = "[operation]";
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
pub mod prometheus;

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
        assert_eq!(label_names(["a.b", "a-b", "a_b", "le"]), ["a_b", "a_b_2", "a_b_3", "lle"]);
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("says \"hi\"\\\n"), "says \"hi\"\\\\\\n");
    }

    proptest::proptest! {
        /// A key taken as a label name as it is (the renderer's shortcut) is exactly one
        /// that `label_name` leaves alone.
        #[test]
        fn a_key_is_its_own_label_name_exactly_when_label_name_keeps_it(k in "[a-z_A-Z0-9.:é-]{0,6}|le|quantile|__x") {
            proptest::prop_assert_eq!(is_label_name(&k), label_name(&k) == k, "{}", k);
        }
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
