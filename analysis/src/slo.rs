//! Service-level objectives from the targets, with error budgets and burn rates.
//!
//! Each operation gets two objectives from its [targets](crate::targets):
//!
//! * **availability**: calls that succeed (`outcome="ok"`) ≥ `1 − error_rate` (99 % by default);
//! * **latency**: calls at or under the p95 target ≥ 95 % (200 ms by default). "Under" is counted
//!   from the merged sketches at the threshold (`count_at_most`), not read from a percentile, so
//!   it holds within the sketch's 1 % value error at the threshold.
//!
//! Over a rolling window (28 days by default), per objective: the SLI (good ÷ all calls), the
//! error budget (`(1 − objective) × calls` bad calls allowed), how much of it is spent and left,
//! the burn rate over 5 m, 1 h, 6 h and 3 d (the bad share in that span ÷ the share the objective
//! allows: 1 spends the budget exactly over the window, 14.4 spends 2 % of a 30-day budget in an
//! hour), and the time to exhaustion at the last hour's burn: `left × window ÷ burn`.

use std::collections::BTreeMap;
use std::path::Path;

use perfstore::convention::{self as conv, Outcome, tag};
use perfstore::{Selector, Snapshot, TimeRange, glob_match};
use serde::Serialize;

use crate::targets::Targets;
use crate::time::Window;

/// The spans burn rates are given over, with their names.
pub const BURN_SPANS: [(&str, i64); 5] =
    [("5m", 5 * 60_000), ("30m", 30 * 60_000), ("1h", 3_600_000), ("6h", 6 * 3_600_000), ("3d", 3 * 86_400_000)];

/// The latency objective: this share of calls at or under the p95 target.
pub const LATENCY_OBJECTIVE: f64 = 0.95;

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    /// Now, Unix ms (the window and the burn spans end here).
    pub now_ms: i64,
    /// The rolling window, ms (28 days by default).
    pub window_ms: i64,
    /// Only operations matching this glob.
    pub op: Option<String>,
    /// Spans to give burn rates over besides [`BURN_SPANS`] (ms; the alert rules' own).
    pub extra_spans_ms: Vec<i64>,
}

impl Options {
    /// The spans burn rates are given over: [`BURN_SPANS`], then the extra ones not among
    /// them, by name.
    pub fn spans(&self) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = BURN_SPANS.iter().map(|(n, ms)| ((*n).to_owned(), *ms)).collect();
        for ms in &self.extra_spans_ms {
            if !out.iter().any(|(_, m)| m == ms) {
                out.push((span_name(*ms), *ms));
            }
        }
        out
    }
}

/// A span's name as Prometheus writes a range: `5m`, `1h`, `3d`, `90s`.
pub fn span_name(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")];
    for (unit, suffix) in UNITS {
        if ms >= unit && ms % unit == 0 {
            return format!("{}{suffix}", ms / unit);
        }
    }
    format!("{ms}ms")
}

/// One operation's calls over one span.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Calls.
    pub calls: f64,
    /// Calls that failed.
    pub errors: f64,
    /// Calls at or under the operation's latency threshold.
    pub fast: f64,
}

/// What the SLOs are computed from: per operation, its thresholds and its counts over the
/// window and over each burn span (in [`Options::spans`] order).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The store, as shown.
    pub db: String,
    /// The window.
    pub range: Option<TimeRange>,
    /// The burn spans, named, in the order of each [`OpInput::spans`].
    pub spans: Vec<(String, i64)>,
    /// `op → (error-rate target, latency threshold s, window counts, span counts)`.
    pub ops: BTreeMap<String, OpInput>,
}

/// One operation's input.
#[derive(Debug, Clone, Default)]
pub struct OpInput {
    /// Error-rate target (availability objective is 1 − this).
    pub error_rate: Option<f64>,
    /// Latency threshold, seconds (the p95 target).
    pub threshold_s: Option<f64>,
    /// Counts over the window.
    pub window: Counts,
    /// Counts over each burn span ([`Input::spans`]).
    pub spans: Vec<Counts>,
}

/// Read the counts for every operation from a snapshot.
pub fn gather(snap: &Snapshot<'_>, db: &Path, o: &Options, targets: &Targets) -> crate::Result<Input> {
    let series: Vec<_> = snap
        .series(&Selector::name(conv::OP_DURATION.name))?
        .into_iter()
        .filter(|s| o.op.as_deref().is_none_or(|g| s.key.get(tag::OP).is_some_and(|op| glob_match(g, op))))
        .collect();
    let spans = o.spans();
    let mut ops: BTreeMap<String, OpInput> = BTreeMap::new();
    for s in &series {
        let op = s.key.get(tag::OP).unwrap_or_default().to_owned();
        ops.entry(op.clone()).or_insert_with(|| {
            let t = targets.for_op(&op);
            OpInput {
                error_rate: t.error_rate,
                threshold_s: t.p95_ms.map(|ms| ms / 1000.0),
                window: Counts::default(),
                spans: vec![Counts::default(); spans.len()],
            }
        });
    }
    // The window and every span end now, so they nest: read the store once, split at their
    // starts (`aggregate_split`), and add the segments up for each (each point is decoded
    // once, not once per span). Counts add; calls under the threshold are counted per series
    // (a sketch's count at a value is linear in its bins, so this equals counting the merged
    // sketch).
    let window = TimeRange::new(o.now_ms - o.window_ms, o.now_ms);
    let mut starts: Vec<i64> = spans.iter().map(|(_, ms)| o.now_ms - ms).chain([window.start_ms]).collect();
    starts.sort_unstable();
    starts.dedup();
    let segments = snap.aggregate_split(&series, TimeRange::new(starts[0], o.now_ms), &starts[1..])?;
    for (&start, points) in starts.iter().zip(segments) {
        for (s, p) in series.iter().zip(points) {
            let Some(p) = p else { continue };
            let Some(input) = ops.get_mut(s.key.get(tag::OP).unwrap_or_default()) else { continue };
            let error = s.key.get(tag::OUTCOME) == Some(Outcome::Error.as_str());
            let fast = match (&p.sketch, input.threshold_s) {
                (Some(sk), Some(t)) => sk.count_at_most(t),
                _ => 0.0,
            };
            let add = |c: &mut Counts| {
                c.calls += p.count;
                c.errors += if error { p.count } else { 0.0 };
                c.fast += fast;
            };
            if start >= window.start_ms {
                add(&mut input.window);
            }
            for (n, (_, span)) in spans.iter().enumerate() {
                if start >= o.now_ms - span {
                    add(&mut input.spans[n]);
                }
            }
        }
    }
    Ok(Input { db: db.display().to_string(), range: Some(window), spans, ops })
}

/// One objective's state.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    /// The operation.
    pub op: String,
    /// `availability` or `latency`.
    pub kind: &'static str,
    /// What counts as good: `ok` (the call's outcome), `≤ 200ms`.
    pub good_means: String,
    /// The objective, a ratio (0.99).
    pub objective: f64,
    /// Good ÷ all calls over the window (null without calls).
    pub sli: Option<f64>,
    /// Calls over the window.
    pub calls: f64,
    /// Bad calls over the window.
    pub bad: f64,
    /// Bad calls the objective allows over the window.
    pub budget_total: f64,
    /// Share of the budget spent (bad ÷ allowed; over 1 once exhausted).
    pub budget_spent: Option<f64>,
    /// Share left (1 − spent; negative once exhausted).
    pub budget_left: Option<f64>,
    /// Burn rate per span (`5m`, `30m`, `1h`, `6h`, `3d`, and the alert rules' own): the bad
    /// share ÷ the allowed share (null without calls in the span).
    pub burn: BTreeMap<String, Option<f64>>,
    /// Seconds until the budget is gone at the last hour's burn (null: not burning, or already
    /// gone).
    pub exhausted_in_s: Option<f64>,
    /// `met`, `burning` (the last hour burns faster than 1), or `exhausted`.
    pub status: &'static str,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The store.
    pub db: String,
    /// The rolling window.
    pub window: Option<Window>,
    /// Every objective, by operation.
    pub objectives: Vec<Objective>,
}

#[allow(clippy::too_many_arguments)] // one objective's inputs, named at the two call sites
fn objective(
    spans: &[(String, i64)],
    op: &str,
    kind: &'static str,
    good_means: String,
    target: f64,
    window_ms: i64,
    bad: impl Fn(&Counts) -> f64,
    i: &OpInput,
) -> Objective {
    let allowed = 1.0 - target;
    let calls = i.window.calls;
    let bad_w = bad(&i.window);
    let budget_total = allowed * calls;
    let spent = (budget_total > 0.0).then(|| bad_w / budget_total);
    let burn: BTreeMap<String, Option<f64>> = spans
        .iter()
        .zip(&i.spans)
        .map(|((name, _), c)| (name.clone(), (c.calls > 0.0 && allowed > 0.0).then(|| bad(c) / c.calls / allowed)))
        .collect();
    let left = spent.map(|s| 1.0 - s);
    let hour = burn.get("1h").copied().flatten();
    let exhausted_in_s = match (left, hour) {
        (Some(l), Some(b)) if l > 0.0 && b > 0.0 => Some(l * window_ms as f64 / 1000.0 / b),
        _ => None,
    };
    let status = match (left, hour) {
        // An objective of 100 % has no budget: one bad call exhausts it.
        _ if allowed <= 0.0 && bad_w > 0.0 => "exhausted",
        (Some(l), _) if l <= 0.0 => "exhausted",
        (_, Some(b)) if b > 1.0 => "burning",
        _ => "met",
    };
    Objective {
        op: op.to_owned(),
        kind,
        good_means,
        objective: target,
        sli: (calls > 0.0).then(|| 1.0 - bad_w / calls),
        calls,
        bad: bad_w,
        budget_total,
        budget_spent: spent,
        budget_left: left,
        burn,
        exhausted_in_s,
        status,
    }
}

/// Gather and compute; a window without calls is [`crate::Error::NoData`] naming the store, the
/// window and its newest data (what `perfctl slo` and the dashboard's `/api/v1/slo` say).
pub fn report(snap: &Snapshot<'_>, db: &Path, o: &Options, targets: &Targets) -> crate::Result<Report> {
    let input = gather(snap, db, o, targets)?;
    if input.ops.values().all(|i| i.window.calls <= 0.0) {
        let subject = match &o.op {
            Some(op) => format!(" for operations matching '{op}'"),
            None => format!(" for operation calls ({})", conv::OP_DURATION.name),
        };
        return Err(crate::Error::NoData(crate::NoData {
            subject,
            range: TimeRange::new(o.now_ms - o.window_ms, o.now_ms),
            db: db.to_path_buf(),
            matched: Some(input.ops.len()),
            newest_ms: snap.newest_ms()?,
        }));
    }
    Ok(compute(&input, o))
}

/// Every objective of every operation in `input`.
pub fn compute(input: &Input, o: &Options) -> Report {
    let mut objectives = Vec::new();
    for (op, i) in &input.ops {
        if let Some(e) = i.error_rate {
            objectives.push(objective(
                &input.spans,
                op,
                "availability",
                "ok".into(),
                1.0 - e,
                o.window_ms,
                |c| c.errors,
                i,
            ));
        }
        if let Some(t) = i.threshold_s {
            let means = format!("≤ {}", crate::human::ms(t * 1000.0));
            objectives.push(objective(
                &input.spans,
                op,
                "latency",
                means,
                LATENCY_OBJECTIVE,
                o.window_ms,
                |c| c.calls - c.fast,
                i,
            ));
        }
    }
    Report { db: input.db.clone(), window: input.range.map(Into::into), objectives }
}

/// One multi-window, multi-burn-rate alert rule: the objective's budget burns over `factor`
/// both over the long span and over the short one (which makes it resolve soon after the
/// burn stops).
#[derive(Debug, Clone, PartialEq)]
pub struct BurnRule {
    /// `page` or `ticket`.
    pub severity: String,
    /// The burn rate to exceed (14.4).
    pub factor: f64,
    /// The long span, ms (1 hour).
    pub long_ms: i64,
    /// The short span, ms (5 minutes).
    pub short_ms: i64,
}

impl BurnRule {
    /// The long span's name (`1h`).
    pub fn long(&self) -> String {
        span_name(self.long_ms)
    }

    /// The short span's name (`5m`).
    pub fn short(&self) -> String {
        span_name(self.short_ms)
    }

    /// `14.4x over 1h and 5m`.
    pub fn describe(&self) -> String {
        format!("{}x over {} and {}", num(self.factor), self.long(), self.short())
    }
}

/// The SRE workbook's rules, sized for a 30-day budget (14.4× spends 2 % of it in an hour):
/// page when the last hour and the last 5 minutes both burn over 14.4×, ticket when the last
/// 6 hours and 30 minutes burn over 6×.
pub fn default_burn_rules() -> Vec<BurnRule> {
    vec![
        BurnRule { severity: "page".into(), factor: 14.4, long_ms: 3_600_000, short_ms: 300_000 },
        BurnRule { severity: "ticket".into(), factor: 6.0, long_ms: 6 * 3_600_000, short_ms: 1_800_000 },
    ]
}

/// The form [`parse_burn_rule`] takes.
pub const BURN_RULE_FORM: &str = "expected \"<burn>x <long span> <short span>\" like \"14.4x 1h 5m\", or \"off\"";

/// `"14.4x 1h 5m"` → the `severity` rule; `"off"` → None. The short span must be shorter
/// than the long one.
pub fn parse_burn_rule(severity: &str, text: &str) -> Result<Option<BurnRule>, String> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [factor, long, short] = parts[..] else { return Err(BURN_RULE_FORM.into()) };
    let factor: f64 = factor
        .strip_suffix(['x', '×'])
        .unwrap_or(factor)
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f > 0.0)
        .ok_or_else(|| format!("burn '{factor}': {BURN_RULE_FORM}"))?;
    let span = |s: &str| {
        humantime::parse_duration(s)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .filter(|ms| *ms >= 1000)
            .ok_or_else(|| format!("span '{s}': {BURN_RULE_FORM}"))
    };
    let (long_ms, short_ms) = (span(long)?, span(short)?);
    if short_ms >= long_ms {
        return Err(format!("the short span ({short}) must be shorter than the long one ({long}): {BURN_RULE_FORM}"));
    }
    Ok(Some(BurnRule { severity: severity.to_owned(), factor, long_ms, short_ms }))
}

/// The alert rules of `[alerts]` (`page = "14.4x 1h 5m"`, `ticket = "6x 6h 30m"`, `"off"`),
/// environment variables (`PERFAGENT_ALERTS_PAGE`, `…_TICKET`) over the file; the defaults
/// for what neither sets. What the agent alerts on and what `perfctl slo rules` writes.
pub fn burn_rules(
    file: Option<&crate::config::ConfigFile>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<BurnRule>, crate::config::ConfigError> {
    use crate::config::ConfigError;
    /// Only the keys read here: the agent reads (and checks) the rest of the section.
    #[derive(Debug, Default, serde::Deserialize)]
    struct Section {
        page: Option<toml::Spanned<String>>,
        ticket: Option<toml::Spanned<String>>,
    }
    let section = match file {
        Some(f) => f.section::<Section>("alerts")?.map(|s| (f, s)),
        None => None,
    };
    let (page, ticket) = match &section {
        Some((f, s)) => (s.page.as_ref().map(|v| (*f, v)), s.ticket.as_ref().map(|v| (*f, v))),
        None => (None, None),
    };
    let mut out = Vec::new();
    for (rule, from_file) in default_burn_rules().into_iter().zip([page, ticket]) {
        let var = format!("PERFAGENT_ALERTS_{}", rule.severity.to_uppercase());
        let parsed = match (env(&var).filter(|v| !v.is_empty()), from_file) {
            (Some(value), _) => parse_burn_rule(&rule.severity, &value).map_err(|expected| ConfigError::Env {
                var,
                value: value.clone(),
                expected,
            })?,
            (None, Some((f, v))) => parse_burn_rule(&rule.severity, v.get_ref())
                .map_err(|e| f.error_at(v.span().start, format!("alerts.{}: {e}", rule.severity)))?,
            (None, None) => Some(rule),
        };
        out.extend(parsed);
    }
    Ok(out)
}

/// A glob as a fully anchored Prometheus regex (`vm.*` → `vm\\..*`).
pub fn glob_regex(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c if "\\.+()[]{}|^$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A literal text as a fully anchored Prometheus regex (every metacharacter escaped, `*` and
/// `?` included: an operation may be named `GET /users/*`).
pub fn literal_regex(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()[]{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `le` as a regex matching the bound however it is written (`2`, or `2.0` as Prometheus 3
/// normalises it).
fn le_regex(le: f64) -> String {
    let text = format!("{le}");
    if text.contains('.') { literal_regex(&text) } else { format!("{text}(\\.0)?") }
}

/// The largest bucket bound of `/metrics` at or under `threshold_s`, and whether it is exact.
fn bucket_for(threshold_s: f64, buckets: &[f64]) -> (f64, bool) {
    let b = buckets.iter().copied().filter(|b| *b <= threshold_s + 1e-12).fold(buckets[0], f64::max);
    (b, (b - threshold_s).abs() < 1e-12)
}

/// A PromQL string literal.
fn promql_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A number without float noise (0.144, not 0.14400000000000002).
fn num(v: f64) -> String {
    let r = (v * 1e9).round() / 1e9;
    format!("{r}")
}

/// A YAML double-quoted string.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Prometheus recording and alerting rules for the same objectives, over the metric names
/// `/metrics` exposes (`op_duration_seconds` with `op` and `outcome` labels), so a central
/// Prometheus can evaluate them over scraped or remote-written data. `ops` are the operations
/// to give their own thresholds (those of the store); every other operation gets the defaults.
/// `buckets` are the histogram bounds of `/metrics`: a latency threshold that is not one is
/// counted at the largest bound under it (stricter), and the rules say so. `for_` is how long a
/// condition must hold before its alert fires (`2m`).
pub fn rules(
    targets: &Targets,
    ops: &[String],
    window: &str,
    for_: &str,
    buckets: &[f64],
    burn_rules: &[BurnRule],
) -> String {
    let family = perfstore::convention::prometheus::family_name(
        conv::OP_DURATION.name,
        conv::OP_DURATION.kind,
        conv::OP_DURATION.unit,
    );
    // Groups of operations sharing thresholds: each named operation, then everything else.
    let mut groups: Vec<(String, crate::targets::OpTargets)> = ops
        .iter()
        .filter(|op| targets.for_op(op) != targets.ops)
        .map(|op| (format!("op={}", promql_str(op)), targets.for_op(op)))
        .collect();
    let named: Vec<String> =
        ops.iter().filter(|op| targets.for_op(op) != targets.ops).map(|op| glob_regex(op)).collect();
    let rest = if named.is_empty() { String::new() } else { format!("op!~{}", promql_str(&named.join("|"))) };
    groups.push((rest, targets.ops));
    let mut y = String::new();
    y.push_str("# SLO rules for perfagent's /metrics, written by `perfctl slo rules` from the targets.\n");
    y.push_str("# Availability: calls with outcome=\"ok\" >= 1 - error_rate. Latency: 95% of calls at or under the p95 target.\n");
    let described: Vec<String> = burn_rules.iter().map(|r| format!("{}: {}", r.severity, r.describe())).collect();
    y.push_str(&format!(
        "# Alerts: multi-window burn rates ({}; the SRE workbook's 14.4x/6x are\n# sized for a 30-day budget: 14.4x spends 2% of it in an hour); the budget window of perfctl slo was {window}.\n",
        if described.is_empty() { "none".to_owned() } else { described.join("; ") }
    ));
    y.push_str("groups:\n  - name: perfagent-slo-ratios\n    rules:\n");
    let mut span_ms: Vec<i64> = burn_rules.iter().flat_map(|r| [r.short_ms, r.long_ms]).collect();
    span_ms.sort_unstable();
    span_ms.dedup();
    let span_names: Vec<String> = span_ms.iter().map(|ms| span_name(*ms)).collect();
    let mut notes = Vec::new();
    let mut thresholds: Vec<f64> = groups.iter().filter_map(|g| g.1.p95_ms).collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    for (n, span) in span_names.iter().enumerate() {
        y.push_str(&format!(
            "      - record: perfagent:op_error_ratio:rate{span}\n        expr: |-\n          sum by (op) (rate({family}_count{{outcome=\"error\"}}[{span}])) / sum by (op) (rate({family}_count[{span}]))\n"
        ));
        for ms in &thresholds {
            let (le, exact) = bucket_for(ms / 1000.0, buckets);
            if !exact && n == 0 {
                notes.push(format!("# note: the {ms}ms latency target is not a bucket bound of /metrics; calls are counted at le=\"{le}\" (stricter)\n"));
            }
            y.push_str(&format!(
                "      - record: perfagent:op_slow_ratio_{}ms:rate{span}\n        expr: |-\n          1 - sum by (op) (rate({family}_bucket{{le=~{}}}[{span}])) / sum by (op) (rate({family}_count[{span}]))\n",
                *ms as i64,
                promql_str(&le_regex(le))
            ));
        }
    }
    y.push_str("  - name: perfagent-slo-alerts\n    rules:\n");
    for (sel, t) in &groups {
        let sel_braces = if sel.is_empty() { String::new() } else { format!("{{{sel}}}") };
        let mut objectives: Vec<(&str, String, f64, String)> = Vec::new();
        if let Some(e) = t.error_rate {
            objectives.push(("availability", "perfagent:op_error_ratio".into(), e, "ErrorBudgetBurn".into()));
        }
        if let Some(ms) = t.p95_ms {
            objectives.push((
                "latency",
                format!("perfagent:op_slow_ratio_{}ms", ms as i64),
                1.0 - LATENCY_OBJECTIVE,
                "LatencyBudgetBurn".into(),
            ));
        }
        for (kind, record, allowed, alert) in objectives {
            for rule in burn_rules {
                let (severity, burn, long, short) = (&rule.severity, num(rule.factor), rule.long(), rule.short());
                let limit = num(rule.factor * allowed);
                y.push_str(&format!(
                    "      - alert: Operation{alert}\n        expr: |-\n          {record}:rate{long}{sel_braces} > {limit} and {record}:rate{short}{sel_braces} > {limit}\n        for: {for_}\n        labels:\n          severity: {severity}\n          slo: {kind}\n        annotations:\n          summary: {}\n          description: {}\n",
                    q(&format!("{{{{ $labels.op }}}}: {kind} error budget burning {burn}x over {long} and {short}")),
                    q(&format!("The {kind} objective allows {:.2}% bad calls; the last {long} ran at {{{{ $value | humanizePercentage }}}}. Look closer: perfctl slo --op '{{{{ $labels.op }}}}'", allowed * 100.0)),
                ));
            }
        }
    }
    for n in notes {
        y.insert_str(0, &n);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn input(window: Counts, hour: Counts) -> Input {
        let mut ops = BTreeMap::new();
        let mut spans = vec![Counts::default(); 5];
        spans[2] = hour;
        ops.insert("vm.list".to_owned(), OpInput { error_rate: Some(0.01), threshold_s: Some(0.2), window, spans });
        let o = Options { now_ms: 0, window_ms: 0, op: None, extra_spans_ms: Vec::new() };
        Input { db: "/x.db".into(), range: Some(TimeRange::new(0, 28 * DAY)), spans: o.spans(), ops }
    }

    #[test]
    fn budgets_and_burn_rates_by_hand() {
        // 10 000 calls in 28 days, 40 failed: the 99 % objective allows 100, so 40 % of the
        // budget is spent and 60 % left. In the last hour 100 calls, 5 failed: 5 % bad against
        // 1 % allowed burns at 5×; the 60 % left lasts 0.6 × 28 d / 5 = 3.36 days.
        let o = Options { now_ms: 28 * DAY, window_ms: 28 * DAY, op: None, extra_spans_ms: Vec::new() };
        let r = compute(
            &input(
                Counts { calls: 10_000.0, errors: 40.0, fast: 9_600.0 },
                Counts { calls: 100.0, errors: 5.0, fast: 90.0 },
            ),
            &o,
        );
        let a = &r.objectives[0];
        assert_eq!((a.kind, a.objective), ("availability", 0.99));
        assert!((a.sli.unwrap() - 0.996).abs() < 1e-12);
        assert!((a.budget_total - 100.0).abs() < 1e-9 && a.bad == 40.0);
        assert!((a.budget_spent.unwrap() - 0.4).abs() < 1e-12 && (a.budget_left.unwrap() - 0.6).abs() < 1e-12);
        assert!((a.burn["1h"].unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(a.burn["5m"], None, "no calls in that span");
        assert!((a.exhausted_in_s.unwrap() - 0.6 * 28.0 * 86_400.0 / 5.0).abs() < 1e-6);
        assert_eq!(a.status, "burning");
        // Latency: 9 600 of 10 000 at or under 200 ms, 95 % wanted: 500 slow allowed, 400 slow:
        // 80 % spent. Last hour: 10 of 100 slow, 10 % against 5 %: burn 2.
        let l = &r.objectives[1];
        assert_eq!((l.kind, l.good_means.as_str()), ("latency", "≤ 200ms"));
        assert!((l.budget_spent.unwrap() - 0.8).abs() < 1e-12);
        assert!((l.burn["1h"].unwrap() - 2.0).abs() < 1e-9);
        // Over budget: exhausted, no time left to give.
        let r = compute(&input(Counts { calls: 1_000.0, errors: 20.0, fast: 1_000.0 }, Counts::default()), &o);
        assert_eq!(r.objectives[0].status, "exhausted");
        assert!((r.objectives[0].budget_left.unwrap() + 1.0).abs() < 1e-12, "200 % spent is −100 % left");
        assert_eq!(r.objectives[0].exhausted_in_s, None);
        assert_eq!(r.objectives[1].status, "met");
    }

    #[test]
    fn rules_name_each_threshold() {
        assert_eq!(glob_regex("vm.*"), "vm\\..*");
        let mut t = Targets::default();
        t.overrides.push((
            "vm.start".into(),
            crate::targets::OpTargets { p95_ms: Some(2000.0), p99_ms: None, error_rate: None },
        ));
        let buckets = [0.1, 0.25, 0.5, 1.0, 2.5];
        let y = rules(&t, &["vm.start".into(), "vm.list".into()], "28d", "2m", &buckets, &default_burn_rules());
        assert!(y.contains("        for: 2m\n"), "{y}");
        assert!(
            y.contains("perfagent:op_slow_ratio_200ms:rate5m") && y.contains("perfagent:op_slow_ratio_2000ms:rate1h"),
            "{y}"
        );
        assert!(
            y.contains("le=~\"0\\\\.1\"") && y.contains("note: the 200ms latency target is not a bucket bound"),
            "{y}"
        );
        assert!(y.contains("le=~\"1(\\\\.0)?\""), "2000 ms is counted at le 1 or 1.0: {y}");
        assert_eq!(literal_regex("GET /users/*"), "GET /users/\\*");
        assert!(y.contains("{op=\"vm.start\"} > 0.72 and") && y.contains("{op!~\"vm\\\\.start\"} > 0.144 and"), "{y}");
        assert!(y.contains("(page: 14.4x over 1h and 5m; ticket: 6x over 6h and 30m;"), "{y}");
        // Rules of one's own: their spans get recording rules, and the alerts read them.
        let own = [parse_burn_rule("page", "10x 2h 10m").unwrap().unwrap()];
        let y = rules(&t, &["vm.list".into()], "7d", "1m", &buckets, &own);
        assert!(y.contains("record: perfagent:op_error_ratio:rate10m") && y.contains(":rate2h"), "{y}");
        assert!(!y.contains(":rate5m") && !y.contains("severity: ticket"), "{y}");
        assert!(y.contains("perfagent:op_error_ratio:rate2h > 0.1 and perfagent:op_error_ratio:rate10m > 0.1"), "{y}");
    }

    #[test]
    fn burn_rules_are_read_or_refused_with_the_form() {
        assert_eq!(
            parse_burn_rule("page", "14.4x 1h 5m").unwrap(),
            Some(BurnRule { severity: "page".into(), factor: 14.4, long_ms: 3_600_000, short_ms: 300_000 })
        );
        assert_eq!(parse_burn_rule("ticket", "off").unwrap(), None);
        assert_eq!(parse_burn_rule("page", "3 90s 20s").unwrap().unwrap().describe(), "3x over 90s and 20s");
        for bad in ["14.4x 1h", "fast 1h 5m", "0x 1h 5m", "2x 5m 1h", "2x 1h soon"] {
            let e = parse_burn_rule("page", bad).unwrap_err();
            assert!(e.contains("like \"14.4x 1h 5m\""), "{bad}: {e}");
        }
        let f = crate::config::ConfigFile::from_text(
            "c.toml",
            "[alerts]\nalertmanager = \"x\"\nticket = \"off\"\npage = \"2x 1h 1h\"\n",
        );
        let e = burn_rules(Some(&f), &|_| None).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:4: alerts.page: the short span (1h) must be shorter"), "{e}");
        let env = |k: &str| (k == "PERFAGENT_ALERTS_PAGE").then(|| "20x 30m 1m".to_owned());
        let r = burn_rules(Some(&f), &env).unwrap();
        assert_eq!(r.iter().map(BurnRule::describe).collect::<Vec<_>>(), ["20x over 30m and 1m"]);
        assert_eq!(burn_rules(None, &|_| None).unwrap(), default_burn_rules());
        assert_eq!(span_name(90_000), "90s");
        assert_eq!(span_name(3 * 86_400_000), "3d");
    }
}
