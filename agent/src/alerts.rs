//! The agent's alerts: every `[alerts] interval` the SLOs are computed from the store (the
//! same `perfanalysis::slo` code `perfctl slo` runs; no second data path) and evaluated
//! against the burn-rate rules (`page`, `ticket`), and the other targets `stats` checks over
//! the last `targets_window` (p99, retries, cache hit rates, circuits, host CPU and memory, and
//! the capacity trend, projected once an hour) become `TargetViolated` tickets; all through
//! `perfanalysis::alerts` (`for`, hysteresis). Firing and resolved alerts are POSTed to
//! Alertmanager's v2 API (`/api/v2/alerts`), which routes, groups, silences and notifies.
//! Firing alerts are re-sent at every evaluation with an end a few intervals ahead, as
//! Alertmanager expects; a resolved one is sent once with its end now.
//!
//! ## Failure modes
//! The state (what is pending and firing, since when) is kept in the store (`meta`,
//! `state.alerts`), handed to the writer thread after every evaluation, so a restart neither
//! re-fires nor forgets; an unreadable state is logged and started afresh. (Agents before
//! kept it in `<db>.alerts`: read once, removed once the store has it.) A receiver that is
//! down or answers an error is logged and tried again at the next evaluation (firing alerts
//! are re-sent anyway). Plain `http://` only: for TLS, put Alertmanager behind a local proxy.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perfanalysis::alerts::{Notice, STATE_KEY, State, legacy_state_path};
use perfanalysis::capacity::Capacities;
use perfanalysis::slo::{self, BurnRule};
use perfanalysis::stats::{self, TargetKind, Violation};
use perfanalysis::targets::Targets;

use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::exposition::Exposition;
use crate::writer::PendingState;

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
    /// The burn-rate rules (`page`, `ticket`; the SRE workbook's by default).
    pub rules: Vec<BurnRule>,
    /// The other targets are checked over this much of the recent past (1 hour); zero: not
    /// alerted on.
    pub targets_window: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            alertmanager: None,
            webhook: None,
            interval: Duration::from_secs(60),
            for_: Duration::from_secs(120),
            window: Duration::from_secs(28 * 86_400),
            rules: slo::default_burn_rules(),
            targets_window: Duration::from_secs(3600),
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
            let ends = if n.resolved { now_ms } else { now_ms + hold };
            if let Some(target) = n.key.target() {
                let look = match target {
                    "capacity" => "perfctl capacity --growth auto".to_owned(),
                    "cpu" | "memory" => "perfctl stats --last 1h".to_owned(),
                    _ => "perfctl stats --last 1h --check".to_owned(),
                };
                return serde_json::json!({
                    "labels": {
                        "alertname": n.key.alertname(),
                        "op": n.key.op,
                        "service": service,
                        "severity": n.key.severity,
                        "target": target,
                    },
                    "annotations": {
                        "summary": n.entry.text,
                        "description": format!("Target {target} not met: {}. Look closer: {look}", n.entry.text),
                    },
                    "startsAt": iso(n.entry.firing_ms.unwrap_or(n.entry.since_ms)),
                    "endsAt": iso(ends),
                });
            }
            serde_json::json!({
                "labels": {
                    "alertname": n.key.alertname(),
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

/// The alert state kept in the store at `db`, else (an older agent's) beside it, else empty.
pub fn load(db: &Path) -> State {
    let from_store = perfstore::Reader::open(db).and_then(|mut r| r.snapshot()?.state(STATE_KEY));
    match from_store {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_else(|e| {
            log::warn!("{}: the alert state kept in it is unreadable ({e}); started afresh", db.display());
            State::default()
        }),
        Ok(None) => {
            let legacy = legacy_state_path(db);
            std::fs::read(&legacy).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
        }
        Err(e) => {
            log::warn!("reading the alert state from {}: {e}; started afresh", db.display());
            State::default()
        }
    }
}

/// Hand the state to the writer thread, which keeps it in the store; once the store has it, an
/// older agent's file beside the store goes.
fn save(db: &Path, pending: &PendingState, state: &State) {
    match serde_json::to_string(state) {
        Ok(text) => {
            pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(STATE_KEY.to_owned(), text);
        }
        Err(e) => log::warn!("saving the alert state: {e}"),
    }
    let legacy = legacy_state_path(db);
    if legacy.exists()
        && perfstore::Reader::open(db).and_then(|mut r| r.snapshot()?.state(STATE_KEY)).is_ok_and(|s| s.is_some())
    {
        let _ = std::fs::remove_file(legacy);
    }
}

/// The SLO and alert families for `/metrics`: alerts firing by severity, and per objective its
/// SLI, the share of its budget left and its burn rates.
pub fn exposition(report: &slo::Report, state: &State) -> String {
    use perfstore::convention::prometheus::escape_label_value as esc;
    use std::fmt::Write as _;
    let mut out = String::new();
    out.push_str("# HELP perfagent_alerts_firing Alerts firing (burn rates of perfctl slo's objectives, and targets), by severity.\n");
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

/// The target kinds alerted on as `TargetViolated`: all but p95 and the error rate, which the
/// burn-rate alerts over the same objectives cover better.
fn alerted(kind: TargetKind) -> bool {
    !matches!(kind, TargetKind::P95 | TargetKind::ErrorRate)
}

/// What an evaluation reads besides the store: the targets, and the capacity trend's last
/// projection (an hourly one is enough: it works on complete hours).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The targets (`[targets]`).
    pub targets: Targets,
    /// Capacities for the trend target (`[capacity]`).
    pub capacities: Capacities,
    /// The service label of the alerts.
    pub service: String,
    /// The capacity trend's violations, and the hour they were projected in.
    capacity: Option<(i64, Vec<Violation>)>,
}

impl Context {
    /// For `targets`, `capacities` and `service`.
    pub fn new(targets: Targets, capacities: Capacities, service: String) -> Self {
        Self { targets, capacities, service, capacity: None }
    }
}

/// One evaluation: SLOs and targets from a snapshot of the store, the rules, delivery. Returns
/// the notices and the SLO report.
pub fn evaluate_once(
    db: &Path,
    state: &mut State,
    cfg: &AlertsConfig,
    cx: &mut Context,
    now_ms: i64,
) -> Result<(Vec<Notice>, slo::Report), String> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let extra_spans_ms = cfg.rules.iter().flat_map(|r| [r.long_ms, r.short_ms]).collect();
    let o = slo::Options { now_ms, window_ms: ms(cfg.window), op: None, extra_spans_ms };
    let mut reader = perfstore::Reader::open(db).map_err(|e| e.to_string())?;
    let snap = reader.snapshot().map_err(|e| e.to_string())?;
    let input = slo::gather(&snap, db, &o, &cx.targets).map_err(|e| e.to_string())?;
    let report = slo::compute(&input, &o);
    let mut violations = Vec::new();
    if !cfg.targets_window.is_zero() {
        let range = perfstore::TimeRange::new(now_ms - ms(cfg.targets_window), now_ms);
        let opts = stats::Options { range, op: None, by: None };
        let input = stats::gather(&snap, db, range).map_err(|e| e.to_string())?;
        match stats::compute(&input, &opts, &cx.targets) {
            Ok(r) => violations.extend(r.violations.into_iter().filter(|v| alerted(v.target))),
            // A quiet hour violates nothing (and the alerts it held resolve).
            Err(perfanalysis::Error::NoData(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        let hour = now_ms.div_euclid(perfstore::HOUR_MS);
        if cx.capacity.as_ref().is_none_or(|(h, _)| *h != hour) {
            let v =
                stats::capacity_violations(&snap, db, now_ms, &cx.targets, cx.capacities).map_err(|e| e.to_string())?;
            cx.capacity = Some((hour, v));
        }
        violations.extend(cx.capacity.as_ref().map(|(_, v)| v.clone()).unwrap_or_default());
    }
    let for_ms = ms(cfg.for_);
    let notices = state.evaluate(&report, &cfg.rules, &violations, &cx.targets, now_ms, for_ms);
    let service = cx.service.as_str();
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

/// Evaluate every `cfg.interval` on a thread of its own, until the process ends; the state
/// goes to the store through `pending` (the writer thread's).
pub fn spawn(
    db: PathBuf,
    cfg: AlertsConfig,
    mut cx: Context,
    clock: Clock,
    metrics: Arc<Mutex<Exposition>>,
    pending: PendingState,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("perfagent-alerts".into()).spawn(move || {
        let mut state = load(&db);
        loop {
            std::thread::sleep(cfg.interval);
            match evaluate_once(&db, &mut state, &cfg, &mut cx, clock.now_ms()) {
                Ok((_, report)) => {
                    save(&db, &pending, &state);
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
        assert_eq!(legacy_state_path(Path::new("/x/perf.db")), Path::new("/x/perf.db.alerts"));
    }

    #[test]
    fn a_quiet_store_is_evaluated_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        perfstore::Writer::open(&db, perfstore::StoreOptions::default()).unwrap().close().unwrap();
        let mut cx = Context::new(Targets::default(), Capacities::default(), "svc".into());
        let mut state = State::default();
        let (notices, report) =
            evaluate_once(&db, &mut state, &AlertsConfig::default(), &mut cx, 1_800_000_000_000).unwrap();
        assert!(notices.is_empty() && report.objectives.is_empty());
        assert!(exposition(&report, &state).contains("perfagent_alerts_firing{severity=\"page\"} 0"));
    }
}
