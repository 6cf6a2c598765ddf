//! The agent's configuration: built-in defaults < TOML file < `PERFAGENT_*` environment <
//! flags, with the source of every value kept for `perfagent config show`.
//!
//! One file, `$XDG_CONFIG_HOME/perfagent/config.toml` (or `--config FILE`), is shared with
//! `perfctl`: the agent reads `[agent]`, `[statsd]`, `[http]` and `[store]`, ignores the sections other
//! tools use (`[profiler]`, `[targets]`), and refuses unknown keys inside its own
//! sections and unknown sections, naming the file, line and key. Durations are strings
//! (`"10s"`, `"7d"`), sizes may be `"1GiB"`. Environment variables are
//! `PERFAGENT_<SECTION>_<KEY>` (`PERFAGENT_AGENT_FLUSH_INTERVAL`), plus `PERFAGENT_DB` for
//! the store path and `PERFAGENT_SERVICE` for the default service.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::daemon::DaemonConfig;
use crate::statsd::aggregate::AggregatorConfig;

/// Sections of the shared file that other tools read.
const OTHER_SECTIONS: &[&str] = &["profiler", "targets", "capacity"];

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
}

#[derive(Debug, Deserialize, Default)]
struct FileConfig {
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    statsd: StatsdSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
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

/// The default config file path: `$XDG_CONFIG_HOME/perfagent/config.toml`, else
/// `~/.config/perfagent/config.toml`.
pub fn default_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("perfagent").join("config.toml"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Parse a duration like `10s`, `500ms`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|_| "expected a duration like \"10s\", \"500ms\" or \"7d\"".to_string())
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

/// Builds the resolved config key by key.
struct Resolver<'a> {
    file: Option<(&'a Path, &'a str)>,
    env: &'a dyn Fn(&str) -> Option<String>,
    settings: Vec<Setting>,
}

impl Resolver<'_> {
    /// Resolve one key: default < file < env (each name in `env_names`) < flag.
    #[allow(clippy::too_many_arguments)]
    fn get<T, R: fmt::Display>(
        &mut self,
        key: &'static str,
        default: T,
        file: Option<&Spanned<R>>,
        env_names: &[&str],
        flag: Option<(T, &str)>,
        parse: impl Fn(&str) -> Result<T, String>,
        show: impl Fn(&T) -> String,
    ) -> Result<T, String> {
        let mut value = default;
        let mut source = Source::Default;
        if let (Some(v), Some((path, text))) = (file, self.file) {
            let line = line_of(text, v.span().start);
            let raw = v.get_ref().to_string();
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            value = parse(&raw).map_err(|e| {
                format!("{}:{line}: invalid value '{raw}' for '{name}' in [{section}]: {e}", path.display())
            })?;
            source = Source::File(path.to_owned(), line);
        }
        for name in env_names {
            if let Some(raw) = (self.env)(name).filter(|v| !v.is_empty()) {
                value = parse(&raw).map_err(|e| format!("{name}: invalid value '{raw}': {e}"))?;
                source = Source::Env((*name).to_string());
                break;
            }
        }
        if let Some((v, flag_name)) = flag {
            value = v;
            source = Source::Flag(flag_name.to_string());
        }
        self.settings.push(Setting { key, value: show(&value), source });
        Ok(value)
    }
}

fn positive(n: &str) -> Result<usize, String> {
    match n.trim().parse::<i64>() {
        Ok(v) if v > 0 => Ok(v as usize),
        _ => Err("expected a positive whole number".into()),
    }
}

/// Resolve the configuration. `file` is `(path, contents)` when a file was read; `env`
/// looks variables up (injected for tests); `default_db` is the store path when nothing
/// sets it.
pub fn resolve(
    file: Option<(&Path, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &Flags,
    default_db: PathBuf,
) -> Result<Resolved, String> {
    let parsed: FileConfig = match file {
        Some((path, text)) => toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!("{}:{}: {}", path.display(), line_of(text, span.start), e.message()),
            None => format!("{}: {}", path.display(), e.message()),
        })?,
        None => FileConfig::default(),
    };
    if let Some((path, text)) = file {
        for name in parsed.other.keys() {
            if !OTHER_SECTIONS.contains(&name.as_str()) {
                // The header's line (a dotted or inline definition falls back to line 1).
                let line = text
                    .lines()
                    .position(|l| {
                        let l = l.trim();
                        l.strip_prefix('[').is_some_and(|r| r.trim_start().starts_with(name.as_str()))
                            || l.starts_with(&format!("{name}."))
                            || l.starts_with(&format!("{name} "))
                    })
                    .map_or(1, |i| i + 1);
                return Err(format!(
                    "{}:{line}: unknown section [{name}]; expected [agent], [statsd], [store], [http], [profiler], [targets] or [capacity]",
                    path.display()
                ));
            }
        }
    }
    let mut r = Resolver { file, env, settings: Vec::new() };
    let text = |s: &String| format!("{s:?}");
    let dur = |d: &Duration| format!("{:?}", humantime::format_duration(*d).to_string());
    let defaults = perfstore::StoreOptions::default();
    let agg_defaults = AggregatorConfig::default();

    let service = r.get(
        "agent.service",
        agg_defaults.service.clone(),
        parsed.agent.service.as_ref(),
        &["PERFAGENT_AGENT_SERVICE", "PERFAGENT_SERVICE"],
        flags.service.clone().map(|s| (s, "--service")),
        |s| if s.is_empty() { Err("expected a non-empty name".into()) } else { Ok(s.to_string()) },
        text,
    )?;
    let flush_interval = r.get(
        "agent.flush_interval",
        Duration::from_secs(10),
        parsed.agent.flush_interval.as_ref(),
        &["PERFAGENT_AGENT_FLUSH_INTERVAL"],
        flags.flush_interval.map(|d| (d, "--flush-interval")),
        |s| {
            let d = parse_duration(s)?;
            if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                return Err("expected a duration between 100ms and 1h".into());
            }
            Ok(d)
        },
        dur,
    )?;
    let statsd_udp = r.get(
        "statsd.udp",
        SocketAddr::from(([127, 0, 0, 1], 8125)),
        parsed.statsd.udp.as_ref(),
        &["PERFAGENT_STATSD_UDP"],
        flags.statsd_udp.map(|a| (a, "--statsd-udp")),
        |s| s.parse().map_err(|_| "expected an address like \"127.0.0.1:8125\"".to_string()),
        |a| format!("\"{a}\""),
    )?;
    let statsd_unix = r.get(
        "statsd.unix",
        None,
        parsed.statsd.unix.as_ref(),
        &["PERFAGENT_STATSD_UNIX"],
        flags.statsd_unix.clone().map(|p| (Some(p), "--statsd-unix")),
        |s| if s.is_empty() { Ok(None) } else { Ok(Some(PathBuf::from(s))) },
        |p: &Option<PathBuf>| {
            p.as_ref().map_or_else(|| "\"\" (off)".to_string(), |p| format!("{:?}", p.display().to_string()))
        },
    )?;
    let statsd_tcp = r.get(
        "statsd.tcp",
        None,
        parsed.statsd.tcp.as_ref(),
        &["PERFAGENT_STATSD_TCP"],
        flags.statsd_tcp.map(|a| (Some(a), "--statsd-tcp")),
        |s| {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse().map(Some).map_err(|_| "expected an address like \"127.0.0.1:8125\"".to_string())
        },
        |a: &Option<SocketAddr>| a.map_or_else(|| "\"\" (off)".to_string(), |a| format!("\"{a}\"")),
    )?;
    let http = r.get(
        "http.listen",
        Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
        parsed.http.listen.as_ref(),
        &["PERFAGENT_HTTP_LISTEN"],
        flags.http.map(|a| (Some(a), "--http")),
        |s| {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse().map(Some).map_err(|_| "expected an address like \"127.0.0.1:9465\"".to_string())
        },
        |a: &Option<SocketAddr>| a.map_or_else(|| "\"\" (off)".to_string(), |a| format!("\"{a}\"")),
    )?;
    let max_series = r.get(
        "statsd.max_series",
        agg_defaults.max_series,
        parsed.statsd.max_series.as_ref(),
        &["PERFAGENT_STATSD_MAX_SERIES"],
        None,
        positive,
        |v| v.to_string(),
    )?;
    let max_series_per_name = r.get(
        "statsd.max_series_per_name",
        agg_defaults.max_series_per_name,
        parsed.statsd.max_series_per_name.as_ref(),
        &["PERFAGENT_STATSD_MAX_SERIES_PER_NAME"],
        None,
        positive,
        |v| v.to_string(),
    )?;
    let idle_expiry = r.get(
        "statsd.idle_expiry",
        Duration::from_secs(3600),
        parsed.statsd.idle_expiry.as_ref(),
        &["PERFAGENT_STATSD_IDLE_EXPIRY"],
        None,
        parse_duration,
        dur,
    )?;
    let db = r.get(
        "store.path",
        default_db,
        parsed.store.path.as_ref(),
        &["PERFAGENT_STORE_PATH", "PERFAGENT_DB"],
        flags.db.clone().map(|p| (p, "--db")),
        |s| Ok(PathBuf::from(s)),
        |p| format!("{:?}", p.display().to_string()),
    )?;
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let retention = |r: &mut Resolver<'_>, key, default_ms: i64, file, env: &str| {
        r.get(key, Duration::from_millis(default_ms as u64), file, &[env], None, parse_duration, dur)
    };
    let raw = retention(
        &mut r,
        "store.raw_retention",
        defaults.raw_retention_ms,
        parsed.store.raw_retention.as_ref(),
        "PERFAGENT_STORE_RAW_RETENTION",
    )?;
    let minute = retention(
        &mut r,
        "store.minute_retention",
        defaults.minute_retention_ms,
        parsed.store.minute_retention.as_ref(),
        "PERFAGENT_STORE_MINUTE_RETENTION",
    )?;
    let hour = retention(
        &mut r,
        "store.hour_retention",
        defaults.hour_retention_ms,
        parsed.store.hour_retention.as_ref(),
        "PERFAGENT_STORE_HOUR_RETENTION",
    )?;
    let disk_cap = r.get(
        "store.disk_cap",
        defaults.disk_cap_bytes,
        parsed.store.disk_cap.as_ref(),
        &["PERFAGENT_STORE_DISK_CAP"],
        None,
        parse_size,
        |b| format!("\"{b} bytes\""),
    )?;
    let flushes = (idle_expiry.as_millis() / flush_interval.as_millis().max(1)).max(1) as u64;
    Ok(Resolved {
        daemon: DaemonConfig {
            db,
            statsd_udp,
            statsd_unix,
            statsd_tcp,
            http,
            flush_interval,
            aggregator: AggregatorConfig {
                service,
                max_series,
                max_series_per_name,
                idle_flushes: flushes,
                ..AggregatorConfig::default()
            },
            store: perfstore::StoreOptions {
                raw_retention_ms: ms(raw),
                minute_retention_ms: ms(minute),
                hour_retention_ms: ms(hour),
                disk_cap_bytes: disk_cap,
                ..perfstore::StoreOptions::default()
            },
        },
        settings: r.settings,
        file: file.map(|(p, _)| p.to_owned()),
    })
}

/// A commented file with every key at its default (`perfagent config default`).
pub fn default_file_text() -> String {
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
# /metrics, /healthz, /readyz; "" = off
listen = "127.0.0.1:9465"

[store]
# default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db
# path = "/var/lib/perfagent/perf.db"
raw_retention = "7d"
minute_retention = "90d"
hour_retention = "730d"
disk_cap = "1GiB"
"#
    .to_string()
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

    #[test]
    fn precedence_is_default_file_env_flag() {
        let text = "[agent]\nflush_interval = \"5s\"\nservice = \"from-file\"\n\n[statsd]\nudp = \"127.0.0.1:9000\"\n[targets]\np95 = \"200ms\"\n";
        let path = Path::new("/etc/perfagent/config.toml");
        let e = env(&[("PERFAGENT_SERVICE", "from-env"), ("PERFAGENT_STATSD_UDP", "127.0.0.1:9001")]);
        let flags = Flags { statsd_udp: Some("127.0.0.1:9002".parse().unwrap()), ..Flags::default() };
        let r = resolve(Some((path, text)), &e, &flags, PathBuf::from("/d/perf.db")).unwrap();
        assert_eq!(r.daemon.flush_interval, Duration::from_secs(5));
        assert_eq!(find(&r, "agent.flush_interval").source, Source::File(path.into(), 2));
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
        let path = Path::new("c.toml");
        let e = env(&[]);
        let err = resolve(
            Some((path, "[agent]\nservice = \"x\"\nflush_intervl = \"5s\"\n")),
            &e,
            &Flags::default(),
            "x".into(),
        )
        .unwrap_err();
        assert!(err.starts_with("c.toml:3: unknown field `flush_intervl`, expected"), "{err}");
        let err = resolve(Some((path, "\n[statd]\nudp = \"x\"\n")), &e, &Flags::default(), "x".into()).unwrap_err();
        assert!(err.starts_with("c.toml:2: unknown section [statd]; expected [agent], [statsd]"), "{err}");
    }

    #[test]
    fn bad_values_name_file_line_key_and_form() {
        let path = Path::new("c.toml");
        let e = env(&[]);
        let err =
            resolve(Some((path, "[store]\n\ndisk_cap = \"lots\"\n")), &e, &Flags::default(), "x".into()).unwrap_err();
        assert_eq!(
            err,
            "c.toml:3: invalid value 'lots' for 'disk_cap' in [store]: expected a size like \"1GiB\", \"512MiB\" or \"64MB\""
        );
        let err = resolve(None, &env(&[("PERFAGENT_AGENT_FLUSH_INTERVAL", "5x")]), &Flags::default(), "x".into())
            .unwrap_err();
        assert_eq!(
            err,
            "PERFAGENT_AGENT_FLUSH_INTERVAL: invalid value '5x': expected a duration like \"10s\", \"500ms\" or \"7d\""
        );
        let err =
            resolve(Some((path, "[statsd]\nmax_series = \"many\"\n")), &e, &Flags::default(), "x".into()).unwrap_err();
        assert!(err.starts_with("c.toml:2: "), "{err}");
    }

    #[test]
    fn the_default_file_parses_to_the_defaults() {
        let text = default_file_text();
        let r = resolve(Some((Path::new("d.toml"), &text)), &env(&[]), &Flags::default(), "x".into()).unwrap();
        let plain = resolve(None, &env(&[]), &Flags::default(), "x".into()).unwrap();
        let values = |r: &Resolved| r.settings.iter().map(|s| (s.key, s.value.clone())).collect::<Vec<_>>();
        assert_eq!(values(&r), values(&plain));
        assert_eq!(r.daemon.store.disk_cap_bytes, 1 << 30);
        assert_eq!(r.daemon.store.minute_retention_ms, 90 * 86_400_000);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64MB"), Ok(64_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1 parsec").is_err());
    }
}
