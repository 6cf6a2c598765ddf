//! The sections of what the agent watches and sends out: `[alerts]`, `[probes]` and
//! `[[remote_write]]`, resolved like every other key (default < file < environment) with
//! errors that name the file and line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use perfanalysis::config::ConfigError;
use perfanalysis::slo::{self, BurnRule};
use serde::Deserialize;
use toml::Spanned;

use super::{Key, Resolver, Setting, Source, dur, optional};

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

/// `[alerts]`: the receiver and the evaluation's timing.
pub(super) fn alerts(r: &mut Resolver<'_>) -> Result<crate::alerts::AlertsConfig, ConfigError> {
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
pub(super) fn probes(r: &mut Resolver<'_>) -> Result<crate::probes::ProbesConfig, ConfigError> {
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
pub(super) fn remote_write(
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
                *into = bounds(v.get_ref()).map_err(|e| at(v.span(), key, e))?;
            }
        }
        let host = sysinfo::System::host_name().ok().unwrap_or_else(|| "unknown".into());
        let external_labels: Vec<(String, String)> =
            s.external_labels.unwrap_or_else(|| BTreeMap::from([("host".to_owned(), host)])).into_iter().collect();
        if let Some((k, _)) = external_labels.iter().find(|(k, _)| !label_name_ok(k)) {
            let why = format!("'{k}' is not a label name a receiver takes ([a-zA-Z_][a-zA-Z0-9_]*, not __… or le)");
            return Err(at(s.url.span(), "external_labels", why));
        }
        let name = s.name.unwrap_or_else(|| url.clone());
        if out.iter().any(|o: &RemoteWriteConfig| o.name == name) {
            return Err(at(
                s.url.span(),
                "name",
                format!(
                    "'{name}' names another [[remote_write]] too: each keeps its own cursor, give them different names"
                ),
            ));
        }
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

/// Histogram bounds as configured: increasing and finite.
fn bounds(b: &[f64]) -> Result<Vec<f64>, String> {
    if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|x| !x.is_finite()) {
        return Err("expected increasing finite bounds like [0.1, 0.5, 1]".into());
    }
    Ok(b.to_vec())
}

/// A label name receivers take: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved (`__…`, `le`).
fn label_name_ok(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with("__")
        && k != "le"
}

/// Standard base64 (RFC 4648, padded), for a basic-auth header.
pub(super) fn base64(text: &str) -> String {
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
