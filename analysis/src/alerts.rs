//! Burn-rate alerts over the SLOs ([`crate::slo`]), as the agent evaluates them: multi-window
//! rules ([`crate::slo::BurnRule`]; by default the SRE workbook's: page when the last hour and
//! the last 5 minutes both burn over 14.4×, ticket when the last 6 hours and 30 minutes burn
//! over 6×), a `for` duration before an alert fires, and hysteresis before it resolves (its
//! condition must stay false for two evaluations in a row), so a rate hovering at the
//! threshold does not flap. The same machinery alerts on every other target `stats` checks
//! (cache hit rate, retries, circuits open, host, the capacity trend) as `TargetViolated`
//! tickets. The state is plain data, kept in the store by the agent between runs
//! ([`STATE_KEY`]), so an agent restart neither re-fires nor forgets what fires.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::slo::{BurnRule, Report};
use crate::stats::Violation;
use crate::targets::Targets;

/// One alert's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// The operation; for a target alert, what the target is about (an operation, a cache, a
    /// circuit, a resource, or `host`).
    pub op: String,
    /// `availability` or `latency` (burn-rate alerts), or `target:<name>` (`target:cache_hit_rate`).
    pub slo: String,
    /// `page` or `ticket` (target alerts are tickets).
    pub severity: String,
}

impl Key {
    /// The target's name, for a target alert (`cache_hit_rate`).
    pub fn target(&self) -> Option<&str> {
        self.slo.strip_prefix("target:")
    }

    /// Alertmanager's `alertname`: `OperationErrorBudgetBurn`, `OperationLatencyBudgetBurn`,
    /// or `TargetViolated`.
    pub fn alertname(&self) -> &'static str {
        match self.slo.as_str() {
            "latency" => "OperationLatencyBudgetBurn",
            "availability" => "OperationErrorBudgetBurn",
            _ => "TargetViolated",
        }
    }
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
    /// The long window's burn rate at the last evaluation (burn-rate alerts), or the value
    /// measured against the target.
    pub burn: f64,
    /// The allowed bad share, 1 − objective (burn-rate alerts), or the target's threshold.
    pub allowed: f64,
    /// What a person reads: the violation in words (target alerts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
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

/// The `meta` key a store keeps the agent's alert state under.
pub const STATE_KEY: &str = "alerts";

/// Where agents before the state moved into the store kept it: `<db>.alerts` (read once, then
/// removed, by the agent).
pub fn legacy_state_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".alerts");
    db.with_file_name(name)
}

/// The alert state kept in a store (empty when there is none or it cannot be read).
pub fn read_state(snap: &perfstore::Snapshot<'_>) -> State {
    snap.state(STATE_KEY).ok().flatten().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn id(k: &Key) -> String {
    format!("{}\u{1f}{}\u{1f}{}", k.op, k.slo, k.severity)
}

/// One condition at one evaluation.
struct Condition {
    key: Key,
    holds: bool,
    value: f64,
    limit: f64,
    text: String,
}

impl State {
    /// Alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &(Key, Entry)> {
        self.alerts.values().filter(|(_, e)| e.firing_ms.is_some())
    }

    /// Evaluate at `now_ms`: every objective of `report` against each burn rule, and each
    /// target violated (`violations`, what `stats` finds over the alert window; `targets` for
    /// their words). Alerts fire once their condition has held `for_ms`. Returns the firing
    /// alerts and those resolved by this evaluation.
    pub fn evaluate(
        &mut self,
        report: &Report,
        rules: &[BurnRule],
        violations: &[Violation],
        targets: &Targets,
        now_ms: i64,
        for_ms: i64,
    ) -> Vec<Notice> {
        let mut conditions = Vec::new();
        for o in &report.objectives {
            let allowed = 1.0 - o.objective;
            for rule in rules {
                let key = Key { op: o.op.clone(), slo: o.kind.to_owned(), severity: rule.severity.clone() };
                let (l, s) =
                    (o.burn.get(&rule.long()).copied().flatten(), o.burn.get(&rule.short()).copied().flatten());
                let holds = matches!((l, s), (Some(l), Some(s)) if l > rule.factor && s > rule.factor);
                conditions.push(Condition { key, holds, value: l.unwrap_or(0.0), limit: allowed, text: String::new() });
            }
        }
        for v in violations {
            let key = Key {
                op: v.op.clone().unwrap_or_else(|| "host".into()),
                slo: format!("target:{}", v.name()),
                severity: "ticket".into(),
            };
            conditions.push(Condition {
                key,
                holds: true,
                value: v.value,
                limit: v.threshold,
                text: v.describe(targets),
            });
        }
        // A target alert whose violation is gone is a false condition (hysteresis applies),
        // not a vanished one.
        for (key, e) in self.alerts.values() {
            if key.target().is_some() && !conditions.iter().any(|c| c.key == *key) {
                let c =
                    Condition { key: key.clone(), holds: false, value: e.burn, limit: e.allowed, text: e.text.clone() };
                conditions.push(c);
            }
        }
        self.step(conditions, now_ms, for_ms)
    }

    fn step(&mut self, conditions: Vec<Condition>, now_ms: i64, for_ms: i64) -> Vec<Notice> {
        let mut seen = Vec::new();
        for c in conditions {
            let k = id(&c.key);
            seen.push(k.clone());
            match (c.holds, self.alerts.get_mut(&k)) {
                (true, Some((_, e))) => {
                    e.clear_runs = 0;
                    (e.burn, e.allowed, e.text) = (c.value, c.limit, c.text);
                    if e.firing_ms.is_none() && now_ms - e.since_ms >= for_ms {
                        e.firing_ms = Some(now_ms);
                    }
                }
                (true, None) => {
                    let firing_ms = (for_ms <= 0).then_some(now_ms);
                    let e = Entry {
                        since_ms: now_ms,
                        firing_ms,
                        clear_runs: 0,
                        burn: c.value,
                        allowed: c.limit,
                        text: c.text,
                    };
                    self.alerts.insert(k, (c.key, e));
                }
                (false, Some((_, e))) => {
                    e.clear_runs += 1;
                    e.burn = c.value;
                }
                (false, None) => {}
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
        let burn: [(&str, Option<f64>); 5] =
            [("5m", Some(s5m)), ("30m", Some(0.0)), ("1h", Some(l1h)), ("6h", Some(0.0)), ("3d", Some(0.0))];
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
            burn: burn.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            exhausted_in_s: None,
            status: "exhausted",
        };
        Report { db: String::new(), window: None, objectives: vec![o] }
    }

    #[test]
    fn fires_after_for_and_resolves_with_hysteresis() {
        let (rules, t) = (crate::slo::default_burn_rules(), Targets::default());
        let mut s = State::default();
        let m = 60_000;
        // Over 14.4× in both windows: pending, then firing after 2 minutes.
        assert!(s.evaluate(&report(20.0, 20.0), &rules, &[], &t, 0, 2 * m).is_empty());
        assert!(s.evaluate(&report(20.0, 20.0), &rules, &[], &t, m, 2 * m).is_empty());
        let n = s.evaluate(&report(20.0, 20.0), &rules, &[], &t, 2 * m, 2 * m);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].key.severity.as_str(), n[0].resolved, n[0].entry.firing_ms), ("page", false, Some(2 * m)));
        // Only the long window over: the condition is false once; still firing (hysteresis).
        let n = s.evaluate(&report(20.0, 1.0), &rules, &[], &t, 3 * m, 2 * m);
        assert_eq!((n.len(), n[0].resolved), (1, false));
        // Back over: the clear count restarts; then two clear runs resolve it.
        assert!(!s.evaluate(&report(20.0, 20.0), &rules, &[], &t, 4 * m, 2 * m)[0].resolved);
        assert!(!s.evaluate(&report(1.0, 1.0), &rules, &[], &t, 5 * m, 2 * m)[0].resolved);
        let n = s.evaluate(&report(1.0, 1.0), &rules, &[], &t, 6 * m, 2 * m);
        assert_eq!((n.len(), n[0].resolved), (1, true));
        assert!(s.alerts.is_empty());
        // A blip shorter than `for` never fires.
        assert!(s.evaluate(&report(20.0, 20.0), &rules, &[], &t, 7 * m, 2 * m).is_empty());
        assert!(s.evaluate(&report(1.0, 1.0), &rules, &[], &t, 8 * m, 2 * m).is_empty());
        assert!(s.alerts.is_empty());
        // The state survives a round trip (the agent saves it between runs).
        s.evaluate(&report(20.0, 20.0), &rules, &[], &t, 9 * m, 0);
        let back: State = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.alerts.keys().collect::<Vec<_>>(), s.alerts.keys().collect::<Vec<_>>());
        assert_eq!(
            back.firing().map(|(k, e)| (k.clone(), e.firing_ms)).collect::<Vec<_>>(),
            vec![(Key { op: "vm.list".into(), slo: "availability".into(), severity: "page".into() }, Some(9 * m))]
        );
    }

    #[test]
    fn targets_alert_as_tickets_with_their_words_and_resolve_with_hysteresis() {
        use crate::stats::{TargetKind, Violation};
        let (t, m) = (Targets::default(), 60_000);
        let quiet = Report { db: String::new(), window: None, objectives: Vec::new() };
        let cold = [Violation::new(TargetKind::CacheHitRate, Some("vm-cache".into()), 0.32, 0.5)];
        let mut s = State::default();
        assert!(s.evaluate(&quiet, &[], &cold, &t, 0, m).is_empty(), "pending for a minute");
        let n = s.evaluate(&quiet, &[], &cold, &t, m, m);
        assert_eq!(n.len(), 1);
        let k = &n[0].key;
        assert_eq!(
            (k.op.as_str(), k.slo.as_str(), k.severity.as_str()),
            ("vm-cache", "target:cache_hit_rate", "ticket")
        );
        assert_eq!((k.target(), k.alertname()), (Some("cache_hit_rate"), "TargetViolated"));
        assert_eq!(n[0].entry.text, "vm-cache cache hit rate 32% < 50%");
        // Met again: still firing after one clear evaluation, resolved after the second.
        assert!(!s.evaluate(&quiet, &[], &[], &t, 2 * m, m)[0].resolved);
        let n = s.evaluate(&quiet, &[], &[], &t, 3 * m, m);
        assert_eq!((n.len(), n[0].resolved), (1, true));
        assert!(s.alerts.is_empty());
        // A host target names the host.
        let hot = [Violation::new(TargetKind::Cpu, None, 93.0, 80.0)];
        let n = s.evaluate(&quiet, &[], &hot, &t, 4 * m, 0);
        assert_eq!((n[0].key.op.as_str(), n[0].entry.text.as_str()), ("host", "mean CPU 93% > 80%"));
    }
}
