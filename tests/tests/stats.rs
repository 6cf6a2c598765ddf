//! `perfctl stats` on a known StatsD capture (`fixtures/statsd/cloud-cli.statsd`) fed through
//! the real agent: the output is compared with blessed files, and every count and percentile
//! with what the capture holds (exact counts, nearest-rank quantiles within the sketch's 1 %).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use perf_e2e::{bin, fixture, golden, load_statsd, nearest_rank};

const NOW: &str = "2026-11-23T00:00:00Z";

/// One store per test process, loaded from the capture once.
fn store() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, db) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        load_statsd(&db, &fixture("statsd/cloud-cli.statsd"));
        (dir, db)
    });
    db
}

fn perfctl(args: &[&str]) -> Output {
    Command::new(bin("perfctl"))
        .arg("--db")
        .arg(store())
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("HOME")
        .env("NO_COLOR", "1")
        .output()
        .expect("run perfctl")
}

/// Standard output with the temporary store path replaced, for golden files.
fn text(out: &Output) -> String {
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 3), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap().replace(&store().display().to_string(), "<db>")
}

#[test]
fn stats_matches_the_blessed_outputs() {
    let day = ["stats", "--now", NOW, "--last", "24h"];
    golden("stats.txt", &text(&perfctl(&day)));
    golden("stats.json", &text(&perfctl(&[&day[..], &["--format", "json"]].concat())));
    golden("stats.csv", &text(&perfctl(&[&day[..], &["--format", "csv"]].concat())));
    golden("stats-by-service.txt", &text(&perfctl(&[&day[..], &["--by", "service", "--op", "*.*"]].concat())));
    let q = ["query", "op.duration{op=\"vm.start\"}", "--agg", "p95", "--step", "2h", "--now", NOW, "--last", "24h"];
    golden("query-vm-start-p95.txt", &text(&perfctl(&q)));
    golden("query-vm-start-p95.json", &text(&perfctl(&[&q[..], &["--format", "json"]].concat())));
}

/// What the capture says about one operation.
#[derive(Default, Debug)]
struct Truth {
    calls: f64,
    errors: f64,
    cached: f64,
    batched: f64,
    retries: f64,
    /// (latency ms, weight)
    latencies: Vec<(f64, f64)>,
}

fn truth() -> BTreeMap<String, Truth> {
    let mut ops: BTreeMap<String, Truth> = BTreeMap::new();
    for line in std::fs::read_to_string(fixture("statsd/cloud-cli.statsd")).unwrap().lines() {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let parts: Vec<&str> = rest.split('|').collect();
        let value: f64 = parts[0].parse().unwrap_or(0.0);
        let rate = parts.iter().find_map(|p| p.strip_prefix('@')).map_or(1.0, |r| r.parse::<f64>().unwrap());
        let tags: BTreeMap<&str, &str> = parts
            .iter()
            .find_map(|p| p.strip_prefix('#'))
            .map(|t| t.split(',').filter_map(|kv| kv.split_once(':')).collect())
            .unwrap_or_default();
        let Some(op) = tags.get("op") else { continue };
        let t = ops.entry((*op).to_owned()).or_default();
        let w = 1.0 / rate;
        match name {
            "op.duration" => {
                t.calls += w;
                t.errors += if tags["outcome"] == "error" { w } else { 0.0 };
                t.cached += if matches!(tags.get("cache"), Some(&"hit" | &"stale")) { w } else { 0.0 };
                t.batched += if tags.get("batched") == Some(&"true") { w } else { 0.0 };
                t.latencies.push((value, w));
            }
            "op.retries" => t.retries += value * w,
            _ => {}
        }
    }
    ops
}

#[test]
fn stats_counts_are_exact_and_percentiles_within_one_percent_of_nearest_rank() {
    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let truth = truth();
    let ops = json["ops"].as_array().unwrap();
    assert_eq!(ops.len(), truth.len(), "{json}");
    let (mut all_calls, mut all_errors) = (0.0, 0.0);
    for o in ops {
        let t = &truth[o["op"].as_str().unwrap()];
        let op = &o["op"];
        assert_eq!(o["calls"].as_f64().unwrap(), t.calls, "{op}: calls (sampled lines weigh 1/rate)");
        assert_eq!(o["errors"].as_f64().unwrap(), t.errors, "{op}: errors");
        assert_eq!(o["retries"].as_f64().unwrap(), t.retries, "{op}: retries");
        let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs().max(1e-9);
        assert!(close(o["success_rate"].as_f64().unwrap(), (t.calls - t.errors) / t.calls, 1e-6), "{op}");
        assert!(close(o["cached_pct"].as_f64().unwrap(), 100.0 * t.cached / t.calls, 1e-6), "{op}");
        assert!(close(o["batched_pct"].as_f64().unwrap(), 100.0 * t.batched / t.calls, 1e-6), "{op}");
        let l = &o["latency_ms"];
        let min = t.latencies.iter().map(|x| x.0).fold(f64::MAX, f64::min);
        let max = t.latencies.iter().map(|x| x.0).fold(f64::MIN, f64::max);
        assert!(close(l["min"].as_f64().unwrap(), min, 1e-6), "{op}: min");
        assert!(close(l["max"].as_f64().unwrap(), max, 1e-6), "{op}: max");
        let sum: f64 = t.latencies.iter().map(|(v, w)| v * w).sum();
        assert!(close(l["avg"].as_f64().unwrap(), sum / t.calls, 1e-6), "{op}: avg");
        assert!(close(o["total_time_s"].as_f64().unwrap(), sum / 1000.0, 1e-6), "{op}: total time");
        for (key, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            let exact = nearest_rank(&t.latencies, q);
            let got = l[key].as_f64().unwrap();
            assert!(close(got, exact, 0.01), "{op} {key}: {got} vs exact nearest-rank {exact}");
        }
        all_calls += t.calls;
        all_errors += t.errors;
    }
    assert_eq!(json["overall"]["calls"].as_f64().unwrap(), all_calls);
    assert_eq!(json["overall"]["errors"].as_f64().unwrap(), all_errors);
    let every: Vec<(f64, f64)> = truth.values().flat_map(|t| t.latencies.iter().copied()).collect();
    let p99 = json["overall"]["latency_ms"]["p99"].as_f64().unwrap();
    let exact = nearest_rank(&every, 0.99);
    assert!((p99 - exact).abs() <= 0.01 * exact, "overall p99 {p99} vs {exact}: sketches merge, never average");
    // Sorted by total time, most first.
    let totals: Vec<f64> = ops.iter().map(|o| o["total_time_s"].as_f64().unwrap()).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    // The error event's text is the operation's last error.
    let ssm = ops.iter().find(|o| o["op"] == "ssm.send_command").unwrap();
    assert!(ssm["last_error"].as_str().unwrap().starts_with("InvocationDoesNotExist: command "), "{ssm}");
    assert!(ops.iter().find(|o| o["op"] == "vm.start").unwrap()["last_error"].is_null());
}

#[test]
fn check_exits_3_on_violated_targets_and_config_moves_them() {
    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v: Vec<(String, String)> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["target"].as_str().unwrap().into(), v["op"].as_str().unwrap_or("").into()))
        .collect();
    assert!(v.contains(&("p95".into(), "vm.start".into())), "{v:?}");
    assert!(v.contains(&("error_rate".into(), "ssm.send_command".into())), "{v:?}");
    assert!(!v.iter().any(|(_, op)| op == "blob.read"), "{v:?}");

    // Relax the targets in a config file: nothing is violated, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[agent]\nservice = \"x\"\n\n[targets]\np95 = \"1s\"\nerror_rate = \"10%\"\n").unwrap();
    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Targets   all met (p95 ≤ 1.00s, error rate ≤ 10%"));

    // A bad key is refused with the file and line.
    std::fs::write(&cfg, "[targets]\np95 = \"1s\"\nlatency = 3\n").unwrap();
    let out = perfctl(&["stats", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("error: {}:3: unknown field `latency`", cfg.display())), "{err}");
}

#[test]
fn op_filter_and_by_tag_split_the_operations() {
    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--op", "vm.*", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<&str> = json["ops"].as_array().unwrap().iter().map(|o| o["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["vm.start", "vm.list"]);
    assert_eq!(json["overall"]["calls"], 720);

    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--by", "service", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let billing: Vec<&serde_json::Value> =
        json["ops"].as_array().unwrap().iter().filter(|o| o["group"]["service"] == "billing").collect();
    assert_eq!(billing.len(), 1);
    assert_eq!(billing[0]["op"], "invoice.render");
    assert_eq!(billing[0]["calls"], 50);
}

#[test]
fn an_empty_window_names_the_store_the_window_and_the_newest_data() {
    let out = perfctl(&["stats", "--now", "2026-11-20T00:00:00Z", "--last", "1h"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: no data between 2026-11-19T23:00:00Z and 2026-11-20T00:00:00Z in {} (its newest data is from ",
            store().display()
        )),
        "{err}"
    );
    // Host data but no calls of the operations asked for: an error naming what the store has,
    // never "targets all met".
    let out = perfctl(&["stats", "--now", NOW, "--last", "24h", "--op", "nothing.*", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: no data for operations matching 'nothing.*' between "), "{err}");
    assert!(err.contains(" matching series; its newest data is from "), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no report, so no \"Targets all met\"");
}

#[test]
fn slo_budgets_match_the_capture() {
    // The day of the capture as the window: availability is ok calls ÷ calls exactly; latency
    // is calls at or under 200 ms, counted from the sketches within their 1 % value error (calls
    // between 198 and 202 ms may fall either side).
    let out = perfctl(&["slo", "--window", "1d", "--now", NOW, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objectives = r["objectives"].as_array().unwrap();
    for (op, t) in truth() {
        let find = |kind: &str| objectives.iter().find(|o| o["op"] == op.as_str() && o["kind"] == kind).unwrap();
        let a = find("availability");
        assert!((a["calls"].as_f64().unwrap() - t.calls).abs() < 1e-6, "{op}: {a}");
        assert!((a["bad"].as_f64().unwrap() - t.errors).abs() < 1e-6, "{op}: {a}");
        assert!((a["budget_total"].as_f64().unwrap() - 0.01 * t.calls).abs() < 1e-6, "{op}");
        let spent = t.errors / (0.01 * t.calls);
        assert!((a["budget_spent"].as_f64().unwrap() - spent).abs() < 1e-9, "{op}");
        let l = find("latency");
        let slow = |bound: f64| t.latencies.iter().filter(|(v, _)| *v > bound).map(|(_, w)| w).sum::<f64>();
        let bad = l["bad"].as_f64().unwrap();
        assert!(bad <= slow(198.0) + 1e-6 && bad >= slow(202.0) - 1e-6, "{op}: {bad} slow, truth {}", slow(200.0));
    }
    // The table names each objective and its state.
    let text = String::from_utf8(perfctl(&["slo", "--window", "1d", "--now", NOW]).stdout).unwrap();
    assert!(text.contains("availability 99% ok") && text.contains("latency 95% ≤ 200ms"), "{text}");
    // No calls in the window: said, with the newest data.
    let out = perfctl(&["slo", "--window", "1h", "--now", "2026-12-23T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no data"), "{out:?}");
}

#[test]
fn slo_rules_pass_promtool_and_compute_the_ratios() {
    if Command::new("promtool").arg("--version").output().is_err() {
        return perf_e2e::skip("stats::slo_rules_pass_promtool", "no promtool (apt-get install prometheus)");
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("slo.rules.yml");
    let out = perfctl(&["slo", "rules", "-o", rules.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&rules).unwrap();
    // The 200 ms target is a bucket bound of /metrics: counted exactly there.
    assert!(
        text.contains("alert: OperationErrorBudgetBurn") && text.contains("alert: OperationLatencyBudgetBurn"),
        "{text}"
    );
    assert!(text.contains("le=~\"0\\\\.2\"") && !text.contains("not a bucket bound"), "{text}");
    let check = Command::new("promtool").args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // Evaluated by promtool over known series: 60 ok and 30 failed calls a minute give an
    // error ratio of 1/3 over the last hour, and the page alert fires (14.4 × 1 % = 0.144).
    let test = dir.path().join("slo.test.yml");
    std::fs::write(
        &test,
        format!(
            "rule_files: [{}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: \
             'op_duration_seconds_count{{op=\"vm.list\",outcome=\"ok\"}}'\n        values: '0+60x120'\n      - series: \
             'op_duration_seconds_count{{op=\"vm.list\",outcome=\"error\"}}'\n        values: '0+30x120'\n    \
             promql_expr_test:\n      - expr: perfagent:op_error_ratio:rate1h\n        eval_time: 70m\n        \
             exp_samples:\n          - labels: 'perfagent:op_error_ratio:rate1h{{op=\"vm.list\"}}'\n            value: \
             0.3333333333333333\n      - expr: count(ALERTS{{alertname=\"OperationErrorBudgetBurn\",severity=\"page\",alertstate=\"firing\"}})\n        eval_time: 70m\n        \
             exp_samples:\n          - labels: '{{}}'\n            value: 1\n",
            rules.display()
        ),
    )
    .unwrap();
    let run = Command::new("promtool").args(["test", "rules"]).arg(&test).output().unwrap();
    assert!(
        run.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
