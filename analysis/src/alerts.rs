//! Burn-rate alerts over the SLOs ([`crate::slo`]), as the agent evaluates them: the SRE
//! workbook's multi-window rules ([`crate::slo::ALERT_WINDOWS`]: page when the last hour and
//! the last 5 minutes both burn over 14.4×, ticket when the last 6 hours and 30 minutes burn
//! over 6×), a `for` duration before an alert fires, and hysteresis before it resolves (its
//! condition must stay false for two evaluations in a row), so a rate hovering at the
//! threshold does not flap. The state is plain data, saved by the caller between runs, so an
//! agent restart neither re-fires nor forgets what fires.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::slo::{ALERT_WINDOWS, Report};

/// One alert's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// The operation.
    pub op: String,
    /// `availability` or `latency`.
    pub slo: String,
    /// `page` or `ticket`.
    pub severity: String,
}

/// Where one alert stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The condition has held since (Unix ms).
    pub since_ms: i64,
    /// Firing since (Unix ms), once it has held for the `for` duration.
    pub firing_ms: Option<i64>,
    /// Evaluations in a row the condition has been false while firing.
    pub clear_runs: u32,
    /// The long window's burn rate at the last evaluation.
    pub burn: f64,
    /// The allowed bad share (1 − objective), for the message.
    pub allowed: f64,
}

/// Every alert that is pending or firing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// By key.
    pub alerts: BTreeMap<String, (Key, Entry)>,
}

/// What to tell the receiver after an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Which alert.
    pub key: Key,
    /// Its entry.
    pub entry: Entry,
    /// Resolved now (else firing; firing alerts are re-sent at every evaluation, as
    /// Alertmanager expects).
    pub resolved: bool,
}

/// Where an agent keeps the alert state of the store at `db`: `<db>.alerts`.
pub fn state_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".alerts");
    db.with_file_name(name)
}

/// The alert state kept beside a store; empty when there is none or it cannot be read.
pub fn read_state(db: &std::path::Path) -> State {
    std::fs::read(state_path(db)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn id(k: &Key) -> String {
    format!("{}\u{1f}{}\u{1f}{}", k.op, k.slo, k.severity)
}

impl State {
    /// Alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &(Key, Entry)> {
        self.alerts.values().filter(|(_, e)| e.firing_ms.is_some())
    }

    /// Evaluate every objective of `report` at `now_ms`; alerts fire once their condition has
    /// held `for_ms`. Returns the firing alerts and those resolved by this evaluation.
    pub fn evaluate(&mut self, report: &Report, now_ms: i64, for_ms: i64) -> Vec<Notice> {
        let mut seen = Vec::new();
        for o in &report.objectives {
            let allowed = 1.0 - o.objective;
            for (severity, factor, long, short) in ALERT_WINDOWS {
                let key = Key { op: o.op.clone(), slo: o.kind.to_owned(), severity: severity.to_owned() };
                let (l, s) = (o.burn.get(long).copied().flatten(), o.burn.get(short).copied().flatten());
                let holds = matches!((l, s), (Some(l), Some(s)) if l > factor && s > factor);
                let k = id(&key);
                seen.push(k.clone());
                match (holds, self.alerts.get_mut(&k)) {
                    (true, Some((_, e))) => {
                        e.clear_runs = 0;
                        e.burn = l.unwrap_or(0.0);
                        if e.firing_ms.is_none() && now_ms - e.since_ms >= for_ms {
                            e.firing_ms = Some(now_ms);
                        }
                    }
                    (true, None) => {
                        let firing_ms = (for_ms <= 0).then_some(now_ms);
                        let e = Entry { since_ms: now_ms, firing_ms, clear_runs: 0, burn: l.unwrap_or(0.0), allowed };
                        self.alerts.insert(k, (key, e));
                    }
                    (false, Some((_, e))) => {
                        e.clear_runs += 1;
                        e.burn = l.unwrap_or(0.0);
                    }
                    (false, None) => {}
                }
            }
        }
        let mut notices = Vec::new();
        let keys: Vec<String> = self.alerts.keys().cloned().collect();
        for k in keys {
            let Some((key, e)) = self.alerts.get(&k).cloned() else { continue };
            let gone = !seen.contains(&k);
            // Pending alerts whose condition lapsed simply go; firing ones after two clear runs
            // (or when their operation has left the report).
            if e.firing_ms.is_none() && (gone || e.clear_runs > 0) {
                self.alerts.remove(&k);
            } else if e.firing_ms.is_some() && (gone || e.clear_runs >= 2) {
                self.alerts.remove(&k);
                notices.push(Notice { key, entry: e, resolved: true });
            } else if e.firing_ms.is_some() {
                notices.push(Notice { key, entry: e, resolved: false });
            }
        }
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::Objective;

    fn report(l1h: f64, s5m: f64) -> Report {
        let burn = [("5m", Some(s5m)), ("30m", Some(0.0)), ("1h", Some(l1h)), ("6h", Some(0.0)), ("3d", Some(0.0))]
            .into_iter()
            .collect();
        let o = Objective {
            op: "vm.list".into(),
            kind: "availability",
            good_means: "ok".into(),
            objective: 0.99,
            sli: Some(0.9),
            calls: 100.0,
            bad: 10.0,
            budget_total: 1.0,
            budget_spent: Some(10.0),
            budget_left: Some(-9.0),
            burn,
            exhausted_in_s: None,
            status: "exhausted",
        };
        Report { db: String::new(), window: None, objectives: vec![o] }
    }

    #[test]
    fn fires_after_for_and_resolves_with_hysteresis() {
        let mut s = State::default();
        let m = 60_000;
        // Over 14.4× in both windows: pending, then firing after 2 minutes.
        assert!(s.evaluate(&report(20.0, 20.0), 0, 2 * m).is_empty());
        assert!(s.evaluate(&report(20.0, 20.0), m, 2 * m).is_empty());
        let n = s.evaluate(&report(20.0, 20.0), 2 * m, 2 * m);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].key.severity.as_str(), n[0].resolved, n[0].entry.firing_ms), ("page", false, Some(2 * m)));
        // Only the long window over: the condition is false once; still firing (hysteresis).
        let n = s.evaluate(&report(20.0, 1.0), 3 * m, 2 * m);
        assert_eq!((n.len(), n[0].resolved), (1, false));
        // Back over: the clear count restarts; then two clear runs resolve it.
        assert!(!s.evaluate(&report(20.0, 20.0), 4 * m, 2 * m)[0].resolved);
        assert!(!s.evaluate(&report(1.0, 1.0), 5 * m, 2 * m)[0].resolved);
        let n = s.evaluate(&report(1.0, 1.0), 6 * m, 2 * m);
        assert_eq!((n.len(), n[0].resolved), (1, true));
        assert!(s.alerts.is_empty());
        // A blip shorter than `for` never fires.
        assert!(s.evaluate(&report(20.0, 20.0), 7 * m, 2 * m).is_empty());
        assert!(s.evaluate(&report(1.0, 1.0), 8 * m, 2 * m).is_empty());
        assert!(s.alerts.is_empty());
        // The state survives a round trip (the agent saves it between runs).
        s.evaluate(&report(20.0, 20.0), 9 * m, 0);
        let back: State = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.alerts.keys().collect::<Vec<_>>(), s.alerts.keys().collect::<Vec<_>>());
        assert_eq!(
            back.firing().map(|(k, e)| (k.clone(), e.firing_ms)).collect::<Vec<_>>(),
            vec![(Key { op: "vm.list".into(), slo: "availability".into(), severity: "page".into() }, Some(9 * m))]
        );
    }
}
