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

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use perfanalysis::config::{ConfigError, ConfigFile};
use perfanalysis::slo::{self, BurnRule};
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
struct AlertsSection {
    alertmanager: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    page: Option<Spanned<String>>,
    ticket: Option<Spanned<String>>,
    targets_window: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteWriteSection {
    url: Spanned<String>,
    name: Option<String>,
    bearer_token_file: Option<Spanned<String>>,
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    cacert: Option<Spanned<String>>,
    external_labels: Option<BTreeMap<String, String>>,
    select: Option<Spanned<String>>,
    step: Option<Spanned<String>>,
    max_lag: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    buckets: Option<Spanned<Vec<f64>>>,
    value_buckets: Option<Spanned<Vec<f64>>>,
    batch_wait: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password_file: Spanned<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProbesSection {
    targets: Option<Spanned<Vec<String>>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    cacert: Option<Spanned<String>>,
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

fn positive(n: &str) -> Result<usize, String> {
    match n.trim().parse::<i64>() {
        Ok(v) if v > 0 => Ok(v as usize),
        _ => Err("expected a positive whole number".into()),
    }
}

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
        r.get(Key { key, default, file, env, flag: None }, positive, |v: &usize| v.to_string())
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

/// `[alerts]`: the receiver and the evaluation's timing.
fn alerts(r: &mut Resolver<'_>) -> Result<crate::alerts::AlertsConfig, ConfigError> {
    let a: AlertsSection = r.section("alerts")?;
    let d = crate::alerts::AlertsConfig::default();
    let alertmanager = r.get(
        Key {
            key: "alerts.alertmanager",
            default: None,
            file: a.alertmanager.as_ref(),
            env: &["PERFAGENT_ALERTS_ALERTMANAGER"],
            flag: None,
        },
        optional(|s| crate::alerts::parse_http_url(s).map(|_| s.trim_end_matches('/').to_owned())),
        |u: &Option<String>| u.as_ref().map_or_else(|| "\"\" (off)".to_string(), |u| format!("{u:?}")),
    )?;
    let webhook = r.get(
        Key {
            key: "alerts.webhook",
            default: None,
            file: a.webhook.as_ref(),
            env: &["PERFAGENT_ALERTS_WEBHOOK"],
            flag: None,
        },
        optional(|s| crate::alerts::parse_http_url(s).map(|_| s.to_owned())),
        |u: &Option<String>| u.as_ref().map_or_else(|| "\"\" (off)".to_string(), |u| format!("{u:?}")),
    )?;
    let duration = |s: &str| humantime::parse_duration(s).map_err(|_| "expected a duration like \"1m\"".to_string());
    let interval = r.get(
        Key {
            key: "alerts.interval",
            default: d.interval,
            file: a.interval.as_ref(),
            env: &["PERFAGENT_ALERTS_INTERVAL"],
            flag: None,
        },
        |s| {
            duration(s).and_then(|v| if v.is_zero() { Err("expected a duration of at least 1s".into()) } else { Ok(v) })
        },
        dur,
    )?;
    let for_ = r.get(
        Key { key: "alerts.for", default: d.for_, file: a.for_.as_ref(), env: &["PERFAGENT_ALERTS_FOR"], flag: None },
        duration,
        dur,
    )?;
    let window = r.get(
        Key {
            key: "alerts.window",
            default: d.window,
            file: a.window.as_ref(),
            env: &["PERFAGENT_ALERTS_WINDOW"],
            flag: None,
        },
        duration,
        dur,
    )?;
    let targets_window = r.get(
        Key {
            key: "alerts.targets_window",
            default: d.targets_window,
            file: a.targets_window.as_ref(),
            env: &["PERFAGENT_ALERTS_TARGETS_WINDOW"],
            flag: None,
        },
        |s| if s.trim() == "off" { Ok(Duration::ZERO) } else { duration(s) },
        |d: &Duration| if d.is_zero() { "\"off\"".to_owned() } else { dur(d) },
    )?;
    let mut rules = Vec::new();
    for (rule, file) in slo::default_burn_rules().into_iter().zip([&a.page, &a.ticket]) {
        let severity = rule.severity.clone();
        let key = if severity == "page" { "alerts.page" } else { "alerts.ticket" };
        let env: &[&str] = if severity == "page" { &["PERFAGENT_ALERTS_PAGE"] } else { &["PERFAGENT_ALERTS_TICKET"] };
        let got = r.get(
            Key { key, default: Some(rule), file: file.as_ref(), env, flag: None },
            |s| slo::parse_burn_rule(&severity, s),
            |r: &Option<BurnRule>| {
                r.as_ref()
                    .map_or_else(|| "\"off\"".to_owned(), |r| format!("\"{}x {} {}\"", r.factor, r.long(), r.short()))
            },
        )?;
        rules.extend(got);
    }
    Ok(crate::alerts::AlertsConfig { alertmanager, webhook, interval, for_, window, rules, targets_window })
}

/// `[probes]`: the endpoints, and how often the agent probes them (off by default).
fn probes(r: &mut Resolver<'_>) -> Result<crate::probes::ProbesConfig, ConfigError> {
    let p: ProbesSection = r.section("probes")?;
    let d = crate::probes::ProbesConfig::default();
    let parse_all = |texts: &[String]| -> Result<Vec<perfprobe::Target>, String> {
        texts.iter().map(|t| perfprobe::parse_target(t.trim())).collect()
    };
    let mut targets = Vec::new();
    let mut source = Source::Default;
    if let (Some(v), Some(f)) = (&p.targets, r.file) {
        targets = parse_all(v.get_ref()).map_err(|e| {
            f.error_at(v.span().start, format!("invalid value for 'targets' in [probes]: endpoint {e}"))
        })?;
        source = Source::File(f.path().to_owned(), f.line_of(v.span().start));
    }
    let var = "PERFAGENT_PROBES_TARGETS";
    if let Some(raw) = (r.env)(var).filter(|v| !v.is_empty()) {
        let texts: Vec<String> = raw.split(',').map(str::to_owned).collect();
        targets = parse_all(&texts).map_err(|e| ConfigError::Env {
            var: var.into(),
            value: raw.clone(),
            expected: format!("endpoints separated by commas (https://host/path, http://…, host:port): {e}"),
        })?;
        source = Source::Env(var.into());
    }
    let shown: Vec<String> = targets.iter().map(|t| format!("{:?}", t.text)).collect();
    r.settings.push(Setting { key: "probes.targets", value: format!("[{}]", shown.join(", ")), source });
    let duration = |s: &str| {
        humantime::parse_duration(s.trim())
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "expected a duration like \"30s\"".to_string())
    };
    let interval = r.get(
        Key {
            key: "probes.interval",
            default: d.interval,
            file: p.interval.as_ref(),
            env: &["PERFAGENT_PROBES_INTERVAL"],
            flag: None,
        },
        |s| if matches!(s.trim(), "" | "off") { Ok(None) } else { duration(s).map(Some) },
        |v: &Option<Duration>| v.as_ref().map_or_else(|| "\"off\"".to_owned(), dur),
    )?;
    let timeout = r.get(
        Key {
            key: "probes.timeout",
            default: d.timeout,
            file: p.timeout.as_ref(),
            env: &["PERFAGENT_PROBES_TIMEOUT"],
            flag: None,
        },
        duration,
        dur,
    )?;
    let cacert = r.get(
        Key {
            key: "probes.cacert",
            default: None,
            file: p.cacert.as_ref(),
            env: &["PERFAGENT_PROBES_CACERT"],
            flag: None,
        },
        optional(|s| Ok(PathBuf::from(s))),
        |v: &Option<PathBuf>| {
            v.as_ref().map_or_else(|| "\"\" (none)".to_owned(), |p| format!("{:?}", p.display().to_string()))
        },
    )?;
    Ok(crate::probes::ProbesConfig { targets, interval, timeout, cacert })
}

/// `[[remote_write]]`: each endpoint, its credentials read from files (never the command
/// line), what to send and how often. The config file only: there is one of them per
/// endpoint.
fn remote_write(
    r: &mut Resolver<'_>,
    flush_interval: Duration,
) -> Result<Vec<crate::remote_write::RemoteWriteConfig>, ConfigError> {
    use crate::remote_write::{RemoteWriteConfig, http::Endpoint};
    let Some(f) = r.file else { return Ok(Vec::new()) };
    let sections: Vec<RemoteWriteSection> = f.section("remote_write")?.unwrap_or_default();
    let mut out = Vec::new();
    for s in sections {
        let at = |span: std::ops::Range<usize>, key: &str, e: String| {
            f.error_at(span.start, format!("invalid value for '{key}' in [[remote_write]]: {e}"))
        };
        let url = s.url.get_ref().trim_end_matches('/').to_owned();
        let target = perfprobe::parse_target(&url).ok().filter(|t| t.scheme != "tcp").ok_or_else(|| {
            at(
                s.url.span(),
                "url",
                format!("expected http(s)://host[:port]/path like \"http://127.0.0.1:9090/api/v1/write\", got '{url}'"),
            )
        })?;
        let read_secret = |v: &Spanned<String>, key: &str| {
            std::fs::read_to_string(v.get_ref())
                .map(|t| t.trim().to_owned())
                .map_err(|e| at(v.span(), key, format!("reading {}: {e}", v.get_ref())))
        };
        let mut headers: Vec<(String, String)> = s.headers.into_iter().collect();
        if let Some(t) = &s.bearer_token_file {
            headers.push(("Authorization".into(), format!("Bearer {}", read_secret(t, "bearer_token_file")?)));
        }
        if let Some(b) = &s.basic_auth {
            let password = read_secret(&b.password_file, "basic_auth.password_file")?;
            headers.push(("Authorization".into(), format!("Basic {}", base64(&format!("{}:{password}", b.username)))));
        }
        let tls = if target.scheme == "https" {
            let ca = s.cacert.as_ref();
            Some(perfprobe::tls_config(ca.map(|c| std::path::Path::new(c.get_ref()))).map_err(|e| {
                ca.map_or_else(|| f.error_at(s.url.span().start, e.clone()), |c| at(c.span(), "cacert", e.clone()))
            })?)
        } else {
            None
        };
        let duration = |v: &Option<Spanned<String>>, key: &str, d: Duration| -> Result<Duration, ConfigError> {
            v.as_ref().map_or(Ok(d), |v| {
                humantime::parse_duration(v.get_ref()).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                    at(v.span(), key, format!("expected a duration like \"10s\", got '{}'", v.get_ref()))
                })
            })
        };
        let step = duration(&s.step, "step", flush_interval.max(Duration::from_secs(1)))?;
        if step < Duration::from_secs(1) || step.as_millis() % 1000 != 0 {
            let v = s.step.as_ref().map_or(0..0, Spanned::span);
            return Err(at(v, "step", "expected whole seconds, at least 1s".into()));
        }
        let select = match &s.select {
            Some(v) => perfstore::Selector::parse(v.get_ref()).map_err(|e| at(v.span(), "select", e))?,
            None => perfstore::Selector::default(),
        };
        let (mut secs, mut values) = RemoteWriteConfig::default_buckets();
        for (v, into, key) in [(&s.buckets, &mut secs, "buckets"), (&s.value_buckets, &mut values, "value_buckets")] {
            if let Some(v) = v {
                let b = v.get_ref();
                if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|x| !x.is_finite()) {
                    return Err(at(v.span(), key, "expected increasing finite bounds like [0.1, 0.5, 1]".into()));
                }
                *into = b.clone();
            }
        }
        let host = sysinfo::System::host_name().ok().unwrap_or_else(|| "unknown".into());
        let external_labels: Vec<(String, String)> =
            s.external_labels.unwrap_or_else(|| BTreeMap::from([("host".to_owned(), host)])).into_iter().collect();
        let name = s.name.unwrap_or_else(|| url.clone());
        r.settings.push(Setting {
            key: "remote_write",
            value: format!("{name:?} every {}", humantime::format_duration(step)),
            source: Source::File(f.path().to_owned(), f.line_of(s.url.span().start)),
        });
        out.push(RemoteWriteConfig {
            name,
            endpoint: Endpoint {
                target,
                tls,
                headers,
                timeout: duration(&s.timeout, "timeout", Duration::from_secs(30))?,
            },
            select,
            step,
            max_lag: duration(&s.max_lag, "max_lag", Duration::from_secs(86_400))?,
            external_labels,
            buckets: (secs, values),
            batch_wait: duration(&s.batch_wait, "batch_wait", Duration::from_secs(5))?,
        });
    }
    Ok(out)
}

/// Standard base64 (RFC 4648, padded), for a basic-auth header.
fn base64(text: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = text.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    let (db, store) = store(&mut r, flags, default_db)?;
    let alerts = alerts(&mut r)?;
    let probes = probes(&mut r)?;
    let remote_write = remote_write(&mut r, flush_interval)?;
    // `|T` data older than the longest retention would expire at once.
    aggregator.max_backfill_age_ms = store.raw_retention_ms.max(store.minute_retention_ms).max(store.hour_retention_ms);
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
# cardinality limits; series past them are dropped and counted
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
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn find<'a>(r: &'a Resolved, key: &str) -> &'a Setting {
        r.settings.iter().find(|s| s.key == key).unwrap()
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::from_text("c.toml", text)
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let text = "[agent]\nflush_interval = \"5s\"\nservice = \"from-file\"\n\n[statsd]\nudp = \"127.0.0.1:9000\"\n[targets]\np95 = \"200ms\"\n";
        let f = ConfigFile::from_text("/etc/perfagent/config.toml", text);
        let e = env(&[("PERFAGENT_SERVICE", "from-env"), ("PERFAGENT_STATSD_UDP", "127.0.0.1:9001")]);
        let flags = Flags { statsd_udp: Some("127.0.0.1:9002".parse().unwrap()), ..Flags::default() };
        let r = resolve(Some(&f), &e, &flags, PathBuf::from("/d/perf.db")).unwrap();
        assert_eq!(r.daemon.flush_interval, Duration::from_secs(5));
        assert_eq!(find(&r, "agent.flush_interval").source, Source::File("/etc/perfagent/config.toml".into(), 2));
        assert_eq!(r.daemon.aggregator.service, "from-env");
        assert_eq!(find(&r, "agent.service").source, Source::Env("PERFAGENT_SERVICE".into()));
        assert_eq!(r.daemon.statsd_udp.port(), 9002);
        assert_eq!(find(&r, "statsd.udp").source, Source::Flag("--statsd-udp".into()));
        assert_eq!(r.daemon.db, PathBuf::from("/d/perf.db"));
        assert_eq!(find(&r, "store.path").source, Source::Default);
        assert_eq!(r.daemon.aggregator.idle_flushes, 720, "1 h of 5 s flushes");
    }

    #[test]
    fn unknown_keys_and_sections_name_file_line_and_key() {
        let e = env(&[]);
        let err = resolve(
            Some(&file("[agent]\nservice = \"x\"\nflush_intervl = \"5s\"\n")),
            &e,
            &Flags::default(),
            "x".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml:3: unknown field `flush_intervl`, expected"), "{err}");
        let err = resolve(Some(&file("\n[statd]\nudp = \"x\"\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2: unknown section [statd]; expected one of [agent], [statsd]"), "{err}");
    }

    #[test]
    fn bad_values_name_file_line_key_and_form() {
        let e = env(&[]);
        let err = resolve(Some(&file("[store]\n\ndisk_cap = \"lots\"\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "c.toml:3: invalid value 'lots' for 'disk_cap' in [store]: expected a size like \"1GiB\", \"512MiB\" or \"64MB\""
        );
        let err = resolve(None, &env(&[("PERFAGENT_AGENT_FLUSH_INTERVAL", "5x")]), &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "PERFAGENT_AGENT_FLUSH_INTERVAL: invalid value '5x': expected a duration like 10s or 500ms, between 100ms and 1h"
        );
        let err = resolve(Some(&file("[statsd]\nmax_series = \"many\"\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2: "), "{err}");
    }

    #[test]
    fn the_default_file_parses_to_the_defaults() {
        let r = resolve(Some(&file(default_file_text())), &env(&[]), &Flags::default(), "x".into()).unwrap();
        let plain = resolve(None, &env(&[]), &Flags::default(), "x".into()).unwrap();
        let values = |r: &Resolved| r.settings.iter().map(|s| (s.key, s.value.clone())).collect::<Vec<_>>();
        assert_eq!(values(&r), values(&plain));
        assert_eq!(r.daemon.store.disk_cap_bytes, 1 << 30);
        assert_eq!(r.daemon.store.minute_retention_ms, 90 * 86_400_000);
    }

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64MB"), Ok(64_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1 parsec").is_err());
        assert_eq!(parse_flush_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse_flush_interval("50ms").unwrap_err(),
            "expected a duration like 10s or 500ms, between 100ms and 1h"
        );
    }

    #[test]
    fn probes_and_alert_rules_are_read_or_refused_with_their_line() {
        let e = env(&[]);
        let text = "[probes]\ntargets = [\"https://api.example.com/health\", \"db:5432\"]\ninterval = \"30s\"\n\n[alerts]\npage = \"10x 2h 10m\"\nticket = \"off\"\n";
        let r = resolve(Some(&file(text)), &e, &Flags::default(), "x".into()).unwrap();
        let p = &r.daemon.probes;
        assert_eq!(
            p.targets.iter().map(|t| (t.host.as_str(), t.port)).collect::<Vec<_>>(),
            [("api.example.com", 443), ("db", 5432)]
        );
        assert_eq!((p.interval, p.timeout, &p.cacert), (Some(Duration::from_secs(30)), Duration::from_secs(5), &None));
        let rules = &r.daemon.alerts.rules;
        assert_eq!(rules.iter().map(BurnRule::describe).collect::<Vec<_>>(), ["10x over 2h and 10m"]);
        assert_eq!(find(&r, "probes.interval").value, "\"30s\"");
        let err = resolve(Some(&file("[probes]\n\ntargets = [\"ftp://x\"]\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:3: invalid value for 'targets' in [probes]: endpoint 'ftp://x': unknown scheme"),
            "{err}"
        );
        let err = resolve(Some(&file("[alerts]\npage = \"fast\"\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2: invalid value 'fast' for 'page' in [alerts]: expected \"<burn>x"), "{err}");
        let err = resolve(None, &env(&[("PERFAGENT_PROBES_INTERVAL", "often")]), &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "PERFAGENT_PROBES_INTERVAL: invalid value 'often': expected a duration like \"30s\"");
    }

    #[test]
    fn remote_write_endpoints_are_read_or_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let text = format!(
            "[[remote_write]]\nurl = \"http://vm:8428/api/v1/write\"\nbearer_token_file = \"{}\"\nexternal_labels = {{ host = \"a\", dc = \"eu\" }}\nselect = \"op.*\"\nmax_lag = \"6h\"\n\n[[remote_write]]\nname = \"grafana\"\nurl = \"https://example.com/push\"\nbasic_auth = {{ username = \"u\", password_file = \"{}\" }}\nstep = \"30s\"\n",
            token.display(),
            token.display()
        );
        let e = env(&[]);
        let r = resolve(Some(&file(&text)), &e, &Flags::default(), "x".into()).unwrap();
        let rw = &r.daemon.remote_write;
        assert_eq!(rw.len(), 2);
        assert_eq!(
            (rw[0].name.as_str(), rw[0].step, rw[0].max_lag),
            ("http://vm:8428/api/v1/write", Duration::from_secs(10), Duration::from_secs(6 * 3600))
        );
        assert_eq!(rw[0].external_labels, [("dc".to_owned(), "eu".to_owned()), ("host".to_owned(), "a".to_owned())]);
        assert_eq!(rw[0].endpoint.headers, [("Authorization".to_owned(), "Bearer s3cret".to_owned())]);
        assert_eq!(rw[1].endpoint.headers, [("Authorization".to_owned(), format!("Basic {}", base64("u:s3cret")))]);
        assert!(rw[1].endpoint.tls.is_some() && rw[1].step == Duration::from_secs(30));
        assert_eq!(base64("u:s3cret"), "dTpzM2NyZXQ=");
        let bad = |text: &str| resolve(Some(&file(text)), &e, &Flags::default(), "x".into()).unwrap_err().to_string();
        let err = bad("[[remote_write]]\nurl = \"vm:8428\"\n");
        assert!(err.starts_with("c.toml:2: invalid value for 'url' in [[remote_write]]: expected http(s)://"), "{err}");
        let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\n\nbearer_token_file = \"/nonexistent/t\"\n");
        assert!(
            err.starts_with(
                "c.toml:4: invalid value for 'bearer_token_file' in [[remote_write]]: reading /nonexistent/t"
            ),
            "{err}"
        );
        let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\nstep = \"1500ms\"\n");
        assert!(
            err.starts_with("c.toml:3: invalid value for 'step' in [[remote_write]]: expected whole seconds"),
            "{err}"
        );
        let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\nbuckets = [1, 0.5]\n");
        assert!(err.contains("'buckets' in [[remote_write]]: expected increasing"), "{err}");
        let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\npassword = \"x\"\n");
        assert!(err.contains("unknown field `password`"), "{err}");
    }
}
