//! The agent's burn-rate alerts: every `[alerts] interval` the SLOs are computed from the store
//! (the same `perfanalysis::slo` code `perfctl slo` runs; no second data path), evaluated by
//! `perfanalysis::alerts`, and firing and resolved alerts are POSTed to Alertmanager's v2 API
//! (`/api/v2/alerts`), which routes, groups, silences and notifies. Firing alerts are re-sent
//! at every evaluation with an end a few intervals ahead, as Alertmanager expects; a resolved
//! one is sent once with its end now.
//!
//! ## Failure modes
//! The state (what is pending and firing, since when) is saved beside the store in
//! `<db>.alerts` after every evaluation (temp file + rename), so a restart neither re-fires nor
//! forgets; an unreadable state file is logged and started afresh. A receiver that is down or
//! answers an error is logged and tried again at the next evaluation (firing alerts are re-sent
//! anyway). Plain `http://` only: for TLS, put Alertmanager behind a local proxy.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perfanalysis::alerts::{Notice, State};
use perfanalysis::slo;
use perfanalysis::targets::Targets;

use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::exposition::Exposition;

/// `[alerts]`.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Alertmanager's base URL (`http://host:9093`).
    pub alertmanager: Option<String>,
    /// A plain JSON webhook (`http://host/path`): the same alerts as one JSON document per
    /// evaluation with something to say. Without either receiver alerts are not evaluated.
    pub webhook: Option<String>,
    /// Between evaluations (1 minute).
    pub interval: Duration,
    /// How long a condition must hold before its alert fires (2 minutes).
    pub for_: Duration,
    /// The SLO window (28 days).
    pub window: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            alertmanager: None,
            webhook: None,
            interval: Duration::from_secs(60),
            for_: Duration::from_secs(120),
            window: Duration::from_secs(28 * 86_400),
        }
    }
}

/// `host:port` and path of a plain `http://` URL, or why not.
pub fn parse_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("expected an http:// URL like \"http://127.0.0.1:9093\", got '{url}' (https: use a local proxy)")
    })?;
    let (host, path) = rest.split_once('/').map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
    if host.is_empty() {
        return Err(format!("no host in '{url}'"));
    }
    let host = if host.contains(':') && !host.ends_with(']') { host.to_owned() } else { format!("{host}:80") };
    Ok((host, path.trim_end_matches('/').to_owned()))
}

/// POST `body` (JSON) to `url` + `path`; the status code.
fn post(url: &str, path: &str, body: &str) -> Result<u16, String> {
    let (host, base) = parse_http_url(url)?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{host}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "POST {base}{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("{host}: {e}"))?;
    let mut reply = Vec::new();
    let _ = s.take(64 << 10).read_to_end(&mut reply);
    let line = String::from_utf8_lossy(&reply);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{host}: no HTTP status in the reply"))
}

/// The Alertmanager v2 payload for `notices`.
pub fn payload(notices: &[Notice], service: &str, now_ms: i64, interval: Duration) -> serde_json::Value {
    let iso = |ms: i64| perfanalysis::time::rfc3339(ms);
    let hold = i64::try_from(interval.as_millis()).unwrap_or(60_000).max(1000) * 4;
    let alerts: Vec<serde_json::Value> = notices
        .iter()
        .map(|n| {
            let name = if n.key.slo == "latency" { "OperationLatencyBudgetBurn" } else { "OperationErrorBudgetBurn" };
            let ends = if n.resolved { now_ms } else { now_ms + hold };
            serde_json::json!({
                "labels": {
                    "alertname": name,
                    "op": n.key.op,
                    "service": service,
                    "severity": n.key.severity,
                    "slo": n.key.slo,
                },
                "annotations": {
                    "summary": format!("{}: {} error budget burning {:.1}x", n.key.op, n.key.slo, n.entry.burn),
                    "description": format!(
                        "The {} objective allows {:.2}% bad calls; the long window burns its budget {:.1}x as fast as the \
                         objective allows. Look closer: perfctl slo --op '{}'",
                        n.key.slo,
                        n.entry.allowed * 100.0,
                        n.entry.burn,
                        n.key.op
                    ),
                },
                "startsAt": iso(n.entry.firing_ms.unwrap_or(n.entry.since_ms)),
                "endsAt": iso(ends),
            })
        })
        .collect();
    serde_json::Value::Array(alerts)
}

pub use perfanalysis::alerts::state_path;

/// The alert state kept beside a store (empty when there is none).
pub fn load(path: &Path) -> State {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            log::warn!("{}: {e}; alert state started afresh", path.display());
            State::default()
        }),
        Err(_) => State::default(),
    }
}

fn save(path: &Path, state: &State) {
    let tmp = path.with_extension("alerts.tmp");
    let ok = serde_json::to_vec(state)
        .map_err(|e| e.to_string())
        .and_then(|b| std::fs::write(&tmp, b).map_err(|e| e.to_string()))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = ok {
        log::warn!("saving alert state to {}: {e}", path.display());
    }
}

/// The SLO and alert families for `/metrics`: alerts firing by severity, and per objective its
/// SLI, the share of its budget left and its burn rates.
pub fn exposition(report: &slo::Report, state: &State) -> String {
    use perfstore::convention::prometheus::escape_label_value as esc;
    use std::fmt::Write as _;
    let mut out = String::new();
    out.push_str("# HELP perfagent_alerts_firing Burn-rate alerts firing (perfctl slo's objectives), by severity.\n");
    out.push_str("# TYPE perfagent_alerts_firing gauge\n");
    for severity in ["page", "ticket"] {
        let n = state.firing().filter(|(k, _)| k.severity == severity).count();
        let _ = writeln!(out, "perfagent_alerts_firing{{severity=\"{severity}\"}} {n}");
    }
    let families: [(&str, &str); 3] = [
        ("perfagent_slo_sli", "Good calls / all calls over the SLO window, per operation and objective."),
        (
            "perfagent_slo_budget_remaining_ratio",
            "Share of the error budget left over the SLO window (negative: overspent).",
        ),
        ("perfagent_slo_burn_rate", "Bad share of calls in the span / the share the objective allows."),
    ];
    for (name, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for o in &report.objectives {
            let labels = format!("op=\"{}\",slo=\"{}\"", esc(&o.op), o.kind);
            match name {
                "perfagent_slo_sli" => {
                    if let Some(v) = o.sli {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                }
                "perfagent_slo_budget_remaining_ratio" => {
                    if let Some(v) = o.budget_left {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                }
                _ => {
                    for (span, v) in &o.burn {
                        if let Some(v) = v {
                            let _ = writeln!(out, "{name}{{{labels},window=\"{span}\"}} {v}");
                        }
                    }
                }
            }
        }
    }
    out
}

/// One evaluation: SLOs from a snapshot of the store, the rules, delivery. Returns the notices
/// and the SLO report.
pub fn evaluate_once(
    db: &Path,
    state: &mut State,
    cfg: &AlertsConfig,
    targets: &Targets,
    service: &str,
    now_ms: i64,
) -> Result<(Vec<Notice>, slo::Report), String> {
    let window_ms = i64::try_from(cfg.window.as_millis()).unwrap_or(i64::MAX);
    let o = slo::Options { now_ms, window_ms, op: None };
    let mut reader = perfstore::Reader::open(db).map_err(|e| e.to_string())?;
    let snap = reader.snapshot().map_err(|e| e.to_string())?;
    let input = slo::gather(&snap, db, &o, targets).map_err(|e| e.to_string())?;
    let report = slo::compute(&input, &o);
    let for_ms = i64::try_from(cfg.for_.as_millis()).unwrap_or(i64::MAX);
    let notices = state.evaluate(&report, now_ms, for_ms);
    if let (Some(url), false) = (&cfg.alertmanager, notices.is_empty()) {
        let body = payload(&notices, service, now_ms, cfg.interval).to_string();
        match post(url, "/api/v2/alerts", &body) {
            Ok(c) if (200..300).contains(&c) => {}
            Ok(c) => log::warn!("Alertmanager {url} answered {c} to {} alerts", notices.len()),
            Err(e) => log::warn!("Alertmanager {url}: {e}; will send again at the next evaluation"),
        }
    }
    if let (Some(url), false) = (&cfg.webhook, notices.is_empty()) {
        let body = serde_json::json!({ "status": "perfagent alerts", "at": perfanalysis::time::rfc3339(now_ms), "alerts": payload(&notices, service, now_ms, cfg.interval) })
            .to_string();
        match post(url, "", &body) {
            Ok(c) if (200..300).contains(&c) => {}
            Ok(c) => log::warn!("webhook {url} answered {c}"),
            Err(e) => log::warn!("webhook {url}: {e}; will send again at the next evaluation"),
        }
    }
    Ok((notices, report))
}

/// Evaluate every `cfg.interval` on a thread of its own, until the process ends.
pub fn spawn(
    db: PathBuf,
    cfg: AlertsConfig,
    targets: Targets,
    service: String,
    clock: Clock,
    metrics: Arc<Mutex<Exposition>>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("perfagent-alerts".into()).spawn(move || {
        let path = state_path(&db);
        let mut state = load(&path);
        loop {
            std::thread::sleep(cfg.interval);
            match evaluate_once(&db, &mut state, &cfg, &targets, &service, clock.now_ms()) {
                Ok((_, report)) => {
                    save(&path, &state);
                    if let Ok(mut m) = metrics.lock() {
                        m.set_alerts(exposition(&report, &state));
                    }
                }
                Err(e) => log::warn!("evaluating alerts: {e}"),
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_or_refused() {
        assert_eq!(parse_http_url("http://127.0.0.1:9093"), Ok(("127.0.0.1:9093".into(), String::new())));
        assert_eq!(parse_http_url("http://am/base/"), Ok(("am:80".into(), "/base".into())));
        assert!(parse_http_url("https://am:9093").unwrap_err().contains("local proxy"));
        assert_eq!(state_path(Path::new("/x/perf.db")), Path::new("/x/perf.db.alerts"));
    }
}
