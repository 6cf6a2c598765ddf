//! The agent's configuration: built-in defaults < TOML file < `PERFAGENT_*` environment <
//! flags, with the source of every value kept for `perfagent config show`.
//!
//! One file, `$XDG_CONFIG_HOME/perfagent/config.toml` (or `--config FILE`), is shared with
//! `perfctl` and read through [`perfanalysis::config::ConfigFile`]: the agent reads `[agent]`,
//! `[statsd]`, `[http]` and `[store]`, refuses unknown keys inside them and unknown sections,
//! naming the file, line and key. Durations are strings (`"10s"`, `"7d"`), sizes may be
//! `"1GiB"`. Environment variables are `PERFAGENT_<SECTION>_<KEY>`
//! (`PERFAGENT_AGENT_FLUSH_INTERVAL`), plus `PERFAGENT_DB` for the store path and
//! `PERFAGENT_SERVICE` for the default service.

mod outbound;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use perfanalysis::config::{ConfigError, ConfigFile};
use serde::Deserialize;
use toml::Spanned;

use crate::clock::Clock;
use crate::daemon::DaemonConfig;
use crate::statsd::aggregate::AggregatorConfig;

/// Shortest and longest flush interval.
pub const FLUSH_INTERVAL_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built in.
    Default,
    /// The config file, at a line.
    File(PathBuf, usize),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p, line) => write!(f, "file {}:{line}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(v) => write!(f, "flag {v}"),
        }
    }
}

/// What the flags set (None when not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--db`.
    pub db: Option<PathBuf>,
    /// `--statsd-udp`.
    pub statsd_udp: Option<SocketAddr>,
    /// `--statsd-unix`.
    pub statsd_unix: Option<PathBuf>,
    /// `--statsd-tcp`.
    pub statsd_tcp: Option<SocketAddr>,
    /// `--http`.
    pub http: Option<SocketAddr>,
    /// `--flush-interval`.
    pub flush_interval: Option<Duration>,
    /// `--service`.
    pub service: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AgentSection {
    service: Option<Spanned<String>>,
    flush_interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatsdSection {
    udp: Option<Spanned<String>>,
    unix: Option<Spanned<String>>,
    tcp: Option<Spanned<String>>,
    max_series: Option<Spanned<i64>>,
    max_series_per_name: Option<Spanned<i64>>,
    idle_expiry: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: Option<Spanned<String>>,
    raw_retention: Option<Spanned<String>>,
    minute_retention: Option<Spanned<String>>,
    hour_retention: Option<Spanned<String>>,
    disk_cap: Option<Spanned<String>>,
    profile_budget: Option<Spanned<String>>,
}

/// One resolved setting, for `config show`.
#[derive(Debug, Clone)]
pub struct Setting {
    /// `section.key`.
    pub key: &'static str,
    /// Value as text.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What the daemon runs with.
    pub daemon: DaemonConfig,
    /// Every setting with its source, in display order.
    pub settings: Vec<Setting>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// Parse a duration like `10s`, `500ms`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|_| "expected a duration like \"10s\", \"500ms\" or \"7d\"".to_string())
}

/// Parse a flush interval: a duration between 100 ms and 1 h.
pub fn parse_flush_interval(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration like 10s or 500ms, between 100ms and 1h";
    let d = humantime::parse_duration(s.trim()).map_err(|_| EXPECTED.to_string())?;
    let (lo, hi) = FLUSH_INTERVAL_RANGE;
    if d < lo || d > hi {
        return Err(EXPECTED.into());
    }
    Ok(d)
}

/// Parse a size like `1GiB`, `512MiB`, `64MB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024f64.powi(4),
        _ => return Err("expected a size like \"1GiB\", \"512MiB\" or \"64MB\"".into()),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 => Ok((n * mult) as u64),
        _ => Err("expected a size like \"1GiB\", \"512MiB\" or \"64MB\"".into()),
    }
}

/// A series limit: positive, and at most [`MAX_SERIES_LIMIT`] (the receive thread numbers
/// its series in 31 bits).
fn series_limit(n: &str) -> Result<usize, String> {
    match n.trim().parse::<i64>() {
        Ok(v) if v > 0 && v as u64 <= MAX_SERIES_LIMIT as u64 => Ok(v as usize),
        _ => Err(format!("expected a whole number from 1 to {MAX_SERIES_LIMIT}")),
    }
}

/// The largest series limit taken: far past what memory holds (some 0.5 KiB a series), and
/// under the 2^31 positions the receive thread's index and distribution log can name.
pub const MAX_SERIES_LIMIT: usize = 1_000_000_000;

fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| "expected an address like \"127.0.0.1:8125\"".to_string())
}

fn optional<T>(parse: impl Fn(&str) -> Result<T, String>) -> impl Fn(&str) -> Result<Option<T>, String> {
    move |s| if s.is_empty() { Ok(None) } else { parse(s).map(Some) }
}

/// One key's sources.
struct Key<'a, T, R> {
    key: &'static str,
    default: T,
    file: Option<&'a Spanned<R>>,
    env: &'a [&'a str],
    flag: Option<(T, &'a str)>,
}

/// Builds the resolved config key by key.
struct Resolver<'a> {
    file: Option<&'a ConfigFile>,
    env: &'a dyn Fn(&str) -> Option<String>,
    settings: Vec<Setting>,
}

impl Resolver<'_> {
    /// Resolve one key: default < file < env (the first of its names set) < flag.
    fn get<T, R: fmt::Display>(
        &mut self,
        k: Key<'_, T, R>,
        parse: impl Fn(&str) -> Result<T, String>,
        show: impl Fn(&T) -> String,
    ) -> Result<T, ConfigError> {
        let mut value = k.default;
        let mut source = Source::Default;
        if let (Some(v), Some(f)) = (k.file, self.file) {
            let raw = v.get_ref().to_string();
            let (section, name) = k.key.split_once('.').unwrap_or(("", k.key));
            value = parse(&raw).map_err(|e| {
                f.error_at(v.span().start, format!("invalid value '{raw}' for '{name}' in [{section}]: {e}"))
            })?;
            source = Source::File(f.path().to_owned(), f.line_of(v.span().start));
        }
        if let Some((name, raw)) = k.env.iter().find_map(|n| (self.env)(n).filter(|v| !v.is_empty()).map(|v| (*n, v))) {
            value = parse(&raw).map_err(|expected| ConfigError::Env { var: name.to_owned(), value: raw, expected })?;
            source = Source::Env(name.to_owned());
        }
        if let Some((v, flag)) = k.flag {
            value = v;
            source = Source::Flag(flag.to_owned());
        }
        self.settings.push(Setting { key: k.key, value: show(&value), source });
        Ok(value)
    }

    fn section<T: Default + serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        Ok(match self.file {
            Some(f) => f.section(name)?.unwrap_or_default(),
            None => T::default(),
        })
    }
}

fn text(s: &String) -> String {
    format!("{s:?}")
}

fn dur(d: &Duration) -> String {
    format!("{:?}", humantime::format_duration(*d).to_string())
}

fn opt_addr(a: &Option<SocketAddr>) -> String {
    a.map_or_else(|| "\"\" (off)".to_string(), |a| format!("\"{a}\""))
}

/// `[agent]` and `[statsd]`: the aggregator's settings and the flush interval.
fn aggregation(r: &mut Resolver<'_>, flags: &Flags) -> Result<(AggregatorConfig, Duration), ConfigError> {
    let s: AgentSection = r.section("agent")?;
    let d = AggregatorConfig::default();
    let service = r.get(
        Key {
            key: "agent.service",
            default: d.service.clone(),
            file: s.service.as_ref(),
            env: &["PERFAGENT_AGENT_SERVICE", "PERFAGENT_SERVICE"],
            flag: flags.service.clone().map(|s| (s, "--service")),
        },
        |s| if s.is_empty() { Err("expected a non-empty name".into()) } else { Ok(s.to_string()) },
        text,
    )?;
    let flush_interval = r.get(
        Key {
            key: "agent.flush_interval",
            default: Duration::from_secs(10),
            file: s.flush_interval.as_ref(),
            env: &["PERFAGENT_AGENT_FLUSH_INTERVAL"],
            flag: flags.flush_interval.map(|d| (d, "--flush-interval")),
        },
        parse_flush_interval,
        dur,
    )?;
    let st: StatsdSection = r.section("statsd")?;
    let limit = |r: &mut Resolver<'_>, key, default, file, env| {
        r.get(Key { key, default, file, env, flag: None }, series_limit, |v: &usize| v.to_string())
    };
    let max_series =
        limit(r, "statsd.max_series", d.max_series, st.max_series.as_ref(), &["PERFAGENT_STATSD_MAX_SERIES"])?;
    let max_series_per_name = limit(
        r,
        "statsd.max_series_per_name",
        d.max_series_per_name,
        st.max_series_per_name.as_ref(),
        &["PERFAGENT_STATSD_MAX_SERIES_PER_NAME"],
    )?;
    let idle_expiry = r.get(
        Key {
            key: "statsd.idle_expiry",
            default: Duration::from_secs(3600),
            file: st.idle_expiry.as_ref(),
            env: &["PERFAGENT_STATSD_IDLE_EXPIRY"],
            flag: None,
        },
        parse_duration,
        dur,
    )?;
    let idle_flushes = (idle_expiry.as_millis() / flush_interval.as_millis().max(1)).max(1) as u64;
    Ok((AggregatorConfig { service, max_series, max_series_per_name, idle_flushes, ..d }, flush_interval))
}

/// The listeners: `[statsd]` udp, unix and tcp, and `[http]` listen.
type Addresses = (SocketAddr, Option<PathBuf>, Option<SocketAddr>, Option<SocketAddr>);

fn listeners(r: &mut Resolver<'_>, flags: &Flags) -> Result<Addresses, ConfigError> {
    let st: StatsdSection = r.section("statsd")?;
    let udp = r.get(
        Key {
            key: "statsd.udp",
            default: SocketAddr::from(([127, 0, 0, 1], 8125)),
            file: st.udp.as_ref(),
            env: &["PERFAGENT_STATSD_UDP"],
            flag: flags.statsd_udp.map(|a| (a, "--statsd-udp")),
        },
        addr,
        |a| format!("\"{a}\""),
    )?;
    let unix = r.get(
        Key {
            key: "statsd.unix",
            default: None,
            file: st.unix.as_ref(),
            env: &["PERFAGENT_STATSD_UNIX"],
            flag: flags.statsd_unix.clone().map(|p| (Some(p), "--statsd-unix")),
        },
        optional(|s| Ok(PathBuf::from(s))),
        |p: &Option<PathBuf>| {
            p.as_ref().map_or_else(|| "\"\" (off)".to_string(), |p| format!("{:?}", p.display().to_string()))
        },
    )?;
    let tcp = r.get(
        Key {
            key: "statsd.tcp",
            default: None,
            file: st.tcp.as_ref(),
            env: &["PERFAGENT_STATSD_TCP"],
            flag: flags.statsd_tcp.map(|a| (Some(a), "--statsd-tcp")),
        },
        optional(addr),
        opt_addr,
    )?;
    let h: HttpSection = r.section("http")?;
    let http = r.get(
        Key {
            key: "http.listen",
            default: Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
            file: h.listen.as_ref(),
            env: &["PERFAGENT_HTTP_LISTEN"],
            flag: flags.http.map(|a| (Some(a), "--http")),
        },
        optional(|s| s.parse().map_err(|_| "expected an address like \"127.0.0.1:9465\"".to_string())),
        opt_addr,
    )?;
    Ok((udp, unix, tcp, http))
}

/// `[store]`: the path, retention per tier and the disk cap.
fn store(
    r: &mut Resolver<'_>,
    flags: &Flags,
    default_db: PathBuf,
) -> Result<(PathBuf, perfstore::StoreOptions), ConfigError> {
    let s: StoreSection = r.section("store")?;
    let db = r.get(
        Key {
            key: "store.path",
            default: default_db,
            file: s.path.as_ref(),
            env: &["PERFAGENT_STORE_PATH", "PERFAGENT_DB"],
            flag: flags.db.clone().map(|p| (p, "--db")),
        },
        |s| Ok(PathBuf::from(s)),
        |p| format!("{:?}", p.display().to_string()),
    )?;
    let d = perfstore::StoreOptions::default();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut retention = |key, default_ms: i64, file, env| {
        r.get(
            Key { key, default: Duration::from_millis(default_ms as u64), file, env, flag: None },
            parse_duration,
            dur,
        )
    };
    let raw = retention(
        "store.raw_retention",
        d.raw_retention_ms,
        s.raw_retention.as_ref(),
        &["PERFAGENT_STORE_RAW_RETENTION"],
    )?;
    let minute = retention(
        "store.minute_retention",
        d.minute_retention_ms,
        s.minute_retention.as_ref(),
        &["PERFAGENT_STORE_MINUTE_RETENTION"],
    )?;
    let hour = retention(
        "store.hour_retention",
        d.hour_retention_ms,
        s.hour_retention.as_ref(),
        &["PERFAGENT_STORE_HOUR_RETENTION"],
    )?;
    let disk_cap = r.get(
        Key {
            key: "store.disk_cap",
            default: d.disk_cap_bytes,
            file: s.disk_cap.as_ref(),
            env: &["PERFAGENT_STORE_DISK_CAP"],
            flag: None,
        },
        parse_size,
        |b| format!("\"{b} bytes\""),
    )?;
    let profile_budget = r.get(
        Key {
            key: "store.profile_budget",
            default: disk_cap / 4,
            file: s.profile_budget.as_ref(),
            env: &["PERFAGENT_STORE_PROFILE_BUDGET"],
            flag: None,
        },
        parse_size,
        |b| format!("\"{b} bytes\""),
    )?;
    if profile_budget > disk_cap {
        return Err(ConfigError::Env {
            var: "store.profile_budget".into(),
            value: format!("{profile_budget} bytes"),
            expected: format!("at most store.disk_cap ({disk_cap} bytes): profiles and events live inside the cap"),
        });
    }
    let opts = perfstore::StoreOptions {
        raw_retention_ms: ms(raw),
        minute_retention_ms: ms(minute),
        hour_retention_ms: ms(hour),
        disk_cap_bytes: disk_cap,
        profile_budget_bytes: Some(profile_budget),
        ..d
    };
    Ok((db, opts))
}

/// Series the store holds beyond `statsd.max_series`, for the agent's own (host, probes,
/// SDK): a few dozen in practice.
pub const OWN_SERIES_ROOM: usize = 10_000;

/// Resolve the configuration from `file` (if any), the environment (injected for tests) and
/// the flags; `default_db` is the store path when nothing sets it.
pub fn resolve(
    file: Option<&ConfigFile>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &Flags,
    default_db: PathBuf,
) -> Result<Resolved, ConfigError> {
    if let Some(f) = file {
        f.check_sections()?;
    }
    let mut r = Resolver { file, env, settings: Vec::new() };
    let (mut aggregator, flush_interval) = aggregation(&mut r, flags)?;
    let (statsd_udp, statsd_unix, statsd_tcp, http) = listeners(&mut r, flags)?;
    let (db, mut store) = store(&mut r, flags, default_db)?;
    let alerts = outbound::alerts(&mut r)?;
    let probes = outbound::probes(&mut r)?;
    let remote_write = outbound::remote_write(&mut r, flush_interval)?;
    // `|T` data older than the longest retention would expire at once.
    aggregator.max_backfill_age_ms = store.raw_retention_ms.max(store.minute_retention_ms).max(store.hour_retention_ms);
    // The store counts every series it holds, StatsD's and the agent's own (the host's, the
    // probes'), so its limits follow StatsD's with room for the others: the limit a line
    // meets is then StatsD's, refused before any work. With both at 100 000, the host's 18
    // series left 18 of 100 000 StatsD series refused by the store every interval, their
    // points aggregated and thrown away; and raising `statsd.max_series` raised nothing.
    store.max_series = store.max_series.max(aggregator.max_series.saturating_add(OWN_SERIES_ROOM));
    store.max_series_per_name = store.max_series_per_name.max(aggregator.max_series_per_name);
    Ok(Resolved {
        daemon: DaemonConfig {
            db,
            statsd_udp,
            statsd_unix,
            statsd_tcp,
            http,
            flush_interval,
            aggregator,
            store,
            clock: Clock::system(),
            dashboard: crate::daemon::DashboardSettings {
                targets: perfanalysis::targets::Targets::load(file, env)?,
                capacities: perfanalysis::capacity::Capacities::from_config(file)?,
            },
            alerts,
            probes,
            remote_write,
        },
        settings: r.settings,
        file: file.map(|f| f.path().to_owned()),
    })
}

/// A commented file with every key at its default (`perfagent config default`).
pub fn default_file_text() -> &'static str {
    r#"# perfagent configuration (shared with perfctl). Precedence: defaults < this file <
# PERFAGENT_<SECTION>_<KEY> environment variables < command-line flags.

[agent]
# service label for StatsD lines without a `service:` tag (env PERFAGENT_SERVICE too)
service = "unknown"
# aggregation interval
flush_interval = "10s"

[statsd]
udp = "127.0.0.1:8125"
# optional Unix datagram socket (mode 0660) and TCP listener (newline-delimited); "" = off
unix = ""
tcp = ""
# cardinality limits; series past them are dropped and counted (the store holds
# max_series + 10000, room for the agent's own host and probe series)
max_series = 100000
max_series_per_name = 10000
# a series unseen this long leaves memory (a gauge stops being written)
idle_expiry = "1h"

[http]
# the dashboard (/), its API (/api/v1/), /metrics, /healthz, /readyz; "" = off
listen = "127.0.0.1:9465"

[store]
# default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db
# path = "/var/lib/perfagent/perf.db"
raw_retention = "7d"
minute_retention = "90d"
hour_retention = "730d"
disk_cap = "1GiB"
# profiles and events, inside disk_cap; the oldest go first (default: a quarter of disk_cap)
profile_budget = "256MiB"

[alerts]
# burn-rate alerts over perfctl slo's objectives, POSTed to Alertmanager's v2 API
# (http:// only); "" = off
alertmanager = ""
# or/and a plain JSON webhook (http://host/path), one document per evaluation with news
webhook = ""
# between evaluations; how long a condition must hold before it fires; the SLO window
interval = "1m"
for = "2m"
window = "28d"
# multi-window burn-rate rules: "<burn>x <long span> <short span>", or "off" (the SRE
# workbook's, sized for a 30-day budget; perfctl slo rules writes the same for Prometheus)
page = "14.4x 1h 5m"
ticket = "6x 6h 30m"
# the other targets (p99, retry_rate, cache_hit_rate, circuit_open, cpu, memory,
# capacity_within) are checked over this much of the recent past and raise TargetViolated
# tickets; "off" = burn-rate alerts only
targets_window = "1h"

[probes]
# endpoints this host depends on: https://host/path, http://…, or host:port (TCP connect);
# perfctl test-connection probes them when given none
targets = []
# the agent probes each this often, like blackbox_exporter; each attempt is recorded as
# probe.duration{target,phase}, probe.success{target} and a call of the operation
# "probe <target>" (so stats, SLOs and alerts cover connectivity); "off" = only on demand
interval = "off"
# each phase gives up after this long; a PEM file of extra CA certificates ("" = none)
timeout = "5s"
cacert = ""

# Remote write of the store to Prometheus-compatible receivers, one section per endpoint
# (see the README's "Fleets"); secrets come from files.
# [[remote_write]]
# url = "http://prometheus:9090/api/v1/write"
# bearer_token_file = "/etc/perfagent/token"
# external_labels = { host = "web-1" }
# step = "10s"
"#
}

#[cfg(test)]
mod tests;
