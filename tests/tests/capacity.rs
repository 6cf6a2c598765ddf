//! `perfctl capacity` on hourly histories whose projections can be computed by hand
//! (`fixtures/capacity/*.csv`, from `gen.py`): 4 cores, 16 GiB, 45 days ending at NOW.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::Path;

use perf_e2e::{fixture, golden, perfctl};

const NOW: &str = "2026-11-23T00:00:00Z";

fn store(dir: &Path, name: &str) -> std::path::PathBuf {
    let db = dir.join(format!("{name}.db"));
    let csv = fixture(&format!("capacity/{name}.csv"));
    let out = perfctl(&db, &["import", csv.to_str().unwrap(), "--now", NOW]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db
}

fn capacity(db: &Path, extra: &[&str]) -> serde_json::Value {
    let out = perfctl(db, &[&["capacity", "--now", NOW, "--format", "json"][..], extra].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cpu(report: &serde_json::Value) -> &serde_json::Value {
    report["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "cpu").unwrap()
}

fn close(v: &serde_json::Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{x} vs {expected}");
}

#[test]
fn projections_match_hand_computations() {
    let dir = tempfile::tempdir().unwrap();
    // peak cores, months to 70 % of 4 cores (2.8), months to 4 cores, over 12 months at +30 %:
    // m = ⌈12·ln(threshold/peak)/ln(1.3)⌉, null past 12; at 12 months the peak is ×1.3, needs
    // ÷0.7, and instances = max(2, ⌈peak₁₂/2.8⌉ + 1).
    let cases: [(&str, f64, serde_json::Value, serde_json::Value, u64); 5] = [
        // flat at 2 cores: 70 % after 15.4 months, full after 31.7: neither within 12.
        ("flat", 2.0, serde_json::Value::Null, serde_json::Value::Null, 2),
        // linear 0.8 → 2.0 cores: the peak is the last hour, as flat from there.
        ("linear", 2.0, serde_json::Value::Null, serde_json::Value::Null, 2),
        // compound at 2.2 cores: 12·ln(2.8/2.2)/ln(1.3) = 11.03 → month 12.
        ("compound", 2.2, 12.into(), serde_json::Value::Null, 3),
        // seasonal: the spike of 2.4 cores ten days ago is the base: 7.05 → month 8; 3.12 cores
        // at 12 months → ⌈1.11⌉ + 1 = 3 instances.
        ("seasonal", 2.4, 8.into(), serde_json::Value::Null, 3),
        // a step up to 2 cores ten days ago: the peak is the new level.
        ("step", 2.0, serde_json::Value::Null, serde_json::Value::Null, 2),
    ];
    for (name, peak, to_target, to_full, instances) in cases {
        let db = store(dir.path(), name);
        let r = capacity(&db, &["--growth", "0.3"]);
        let c = cpu(&r);
        close(&c["capacity"], 4.0);
        close(&c["peak"], peak);
        assert_eq!(c["months_to_target"], to_target, "{name}");
        assert_eq!(c["months_to_full"], to_full, "{name}");
        close(&c["projected_peak_at_horizon"], peak * 1.3);
        close(&c["required_capacity"], peak * 1.3 / 0.7);
        assert_eq!(c["instances"], instances, "{name}");
        let p = c["projection"].as_array().unwrap();
        assert_eq!(p.len(), 12);
        close(&p[5]["peak"], peak * 1.3f64.powf(0.5));
        close(&p[5]["utilization"], peak * 1.3f64.powf(0.5) / 4.0);
        assert_eq!(c["growth"]["source"], "given");
    }
    let seasonal = capacity(&store(dir.path(), "seasonal"), &["--growth", "0.3"]);
    assert_eq!(cpu(&seasonal)["peak_at"], "2026-11-13T14:00:00Z");
    let mem = seasonal["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "memory").unwrap();
    close(&mem["utilization_now"], 0.5);
    // Already past the target: a 50 % target on 2.4 of 4 cores.
    let r = capacity(&store(dir.path(), "step"), &["--growth", "0.3", "--target", "0.4"]);
    assert_eq!(cpu(&r)["months_to_target"], "already crossed");
}

#[test]
fn auto_growth_fits_history_and_never_invents_a_date() {
    let dir = tempfile::tempdir().unwrap();
    let r = capacity(&store(dir.path(), "compound"), &["--growth", "auto"]);
    let c = cpu(&r);
    close(&c["growth"]["rate"], 0.3);
    assert!(c["growth"]["source"].as_str().unwrap().starts_with("auto (45 days of history)"));
    assert!(c["model"].as_str().unwrap().starts_with("trend on daily peaks (45 days"), "{c}");
    assert_eq!(c["months_to_target"], 12);
    let warned = r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("a yearly peak"));
    assert!(warned, "45 days cannot show a yearly peak: {r}");

    let r = capacity(&store(dir.path(), "flat"), &["--growth", "auto"]);
    let c = cpu(&r);
    assert!(c["growth"]["rate"].as_f64().unwrap().abs() < 1e-9);
    assert!(c["months_to_target"].is_null() && c["months_to_full"].is_null());
    assert!(c["note"].as_str().unwrap().contains("no saturation within the horizon"), "{c}");

    // Three days of history: a clear warning and no number.
    let short = dir.path().join("short.csv");
    let mut text = String::from("time,series,value\n");
    for h in 0..72 {
        text.push_str(&format!(
            "{},\"system.cpu.utilization{{service=\"\"host\"\"}}\",0.{}\n",
            1_795_392_000 - (72 - h) * 3600,
            10 + h % 50
        ));
    }
    std::fs::write(&short, text).unwrap();
    let db = dir.path().join("short.db");
    assert!(perfctl(&db, &["import", short.to_str().unwrap(), "--now", NOW]).status.success());
    let r = capacity(&db, &["--growth", "auto"]);
    assert!(cpu(&r)["growth"]["rate"].is_null());
    assert!(cpu(&r)["projected_peak_at_horizon"].is_null());
    let w = r["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|w| w.as_str().unwrap().starts_with("cpu: only 2 days of history; --growth auto needs at least 7")),
        "{w:?}"
    );
}

#[test]
fn capacity_table_json_and_plot_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path(), "seasonal");
    let plot = dir.path().join("plan.svg");
    let out = perfctl(&db, &["capacity", "--growth", "0.3", "--now", NOW, "--plot", plot.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap().replace(&db.display().to_string(), "<db>");
    golden("capacity-seasonal.txt", &text);
    let json = serde_json::to_string_pretty(&capacity(&db, &["--growth", "0.3"]))
        .unwrap()
        .replace(&db.display().to_string(), "<db>");
    golden("capacity-seasonal.json", &(json + "\n"));
    let svg = std::fs::read_to_string(&plot).unwrap();
    // A chart that reads on its own: title, value ticks in the unit, dated month ticks, "now",
    // and a legend naming each line with its value.
    assert!(svg.starts_with("<svg") && svg.contains(">cpu (cores)</text>"), "{svg}");
    assert!(svg.matches(" cores</text>").count() >= 4, "value ticks with units: {svg}");
    let year = &NOW[..4];
    assert!(svg.matches(&format!(">{year}-")).count() + svg.matches(">2027-").count() >= 6, "month ticks: {svg}");
    for words in [">now</text>", ">daily peak</text>", ">projected peak</text>", ">target 70% (", ">capacity ("] {
        assert!(svg.contains(words), "{words} in {svg}");
    }
    // Bad flags name the flag and the expected form.
    let out = perfctl(&db, &["capacity", "--growth", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value 'fast' for '--growth <RATE>': expected an annual growth rate like 0.3")
    );
    // 30 is 3000 % a year: refused with the hint, not projected; 30% is what was meant.
    let out = perfctl(&db, &["capacity", "--growth", "30"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("30 would be 3000% a year (0.3 means 30%"), "{said}");
    assert_eq!(capacity(&db, &["--growth", "30%"])["resources"], capacity(&db, &["--growth", "0.3"])["resources"]);
    // Every usage error exits 2, whether clap or the command found it.
    let out = perfctl(&db, &["capacity", "--growth", "0.3", "--target", "70"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value '70' for '--target': expected a utilization between 0 and 1")
    );
}

#[test]
fn two_years_of_seasonal_history_cross_the_target_in_the_peak_month() {
    // Two years of hourly CPU to NOW (2026-11-23): 2 of 4 cores, with an hour at 3 cores every
    // July day. 70 % of 4 cores is 2.8: only July crosses it, so the target is first crossed in
    // month 8 (2027-07), and the base is last July's peak, a seasonal one.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("two-years.csv");
    let end: i64 = 1_795_392_000; // NOW
    let mut text = String::from("time,series,value\n");
    for h in (0..730 * 24).rev() {
        let t = end - (h + 1) * 3600;
        let july = month_of(t) == 7 && t % 86_400 == 14 * 3600;
        let v = if july { 0.75 } else { 0.5 };
        text.push_str(&format!("{t},\"system.cpu.utilization{{service=\"\"host\"\"}}\",{v}\n"));
    }
    text.push_str(&format!("{},\"system.cpu.logical.count{{service=\"\"host\"\"}}\",4\n", end - 3600));
    std::fs::write(&csv, text).unwrap();
    let db = dir.path().join("two-years.db");
    let out = perfctl(&db, &["import", csv.to_str().unwrap(), "--now", NOW]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for growth in ["auto", "0"] {
        let r = capacity(&db, &["--growth", growth]);
        let c = cpu(&r);
        close(&c["peak"], 3.0);
        assert!(c["peak_at"].as_str().unwrap().starts_with("2026-07-"), "{c}");
        assert_eq!(c["seasonal_peak"], true);
        assert_eq!(c["seasonality"]["peak_month"], "July", "{c}");
        assert_eq!(c["months_to_target"], 8, "growth {growth}: {c}");
        assert_eq!(c["projection"][7]["calendar"], "2027-07");
        close(&c["projection"][7]["peak"], 3.0);
        close(&c["projection"][6]["peak"], 2.0);
    }
    let out = perfctl(&db, &["capacity", "--growth", "auto", "--now", NOW]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  target 70%  month 8 (2027-07, the July peak)"), "{text}");
    assert!(text.contains("  season      peaks in July, "), "{text}");
    assert!(text.contains("  model       year over year ("), "{text}");
    assert!(text.contains("(a seasonal peak"), "{text}");
    // The backtest on the store itself: 24 complete months (the first, from the 23rd, is not),
    // so 11 are held out with 13 to project from; they hold July's 3 cores, and the months
    // before (with the July before them) project it.
    let out = perfctl(&db, &["capacity", "--backtest", "--now", NOW, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = rows.as_array().unwrap().iter().find(|r| r["resource"] == "cpu").unwrap();
    assert_eq!(c["held_out"], 11, "{c}");
    close(&c["actual"], 3.0);
    assert!((c["projected"].as_f64().unwrap() - 3.0).abs() < 0.05, "{c}");
    assert_eq!(c["covered"], true, "{c}");
    let out = perfctl(&db, &["capacity", "--backtest", "--holdout", "6", "--now", NOW]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Backtest: ") && text.lines().any(|l| l.starts_with("cpu") && l.contains("in range")),
        "{text}"
    );
    // The trend target: with calls to report on, `stats --check` flags a resource whose
    // projected peak reaches 70 % within the window it is given (month 8: ≤ 244 days), and
    // not with a shorter one.
    let calls = dir.path().join("calls.statsd");
    std::fs::write(&calls, "op.duration:20|ms|#op:vm.list\nop.duration:30|ms|#op:vm.list\n").unwrap();
    let at = "2026-11-22T23:30:00Z";
    let out = perfctl(&db, &["import", calls.to_str().unwrap(), "--at", at]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats = |within: &str, format: &str| {
        let config = dir.path().join(format!("trend-{within}.toml"));
        std::fs::write(&config, format!("[targets]\ncapacity_within = \"{within}\"\ncpu = \"off\"\n")).unwrap();
        let args = ["stats", "--last", "24h", "--now", NOW, "--check", "--format", format, "--config"];
        perfctl(&db, &[&args[..], &[config.to_str().unwrap()]].concat())
    };
    let out = stats("300d", "json");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = r["violations"].as_array().unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((&v[0]["target"], &v[0]["op"], &v[0]["unit"]), (&"capacity".into(), &"cpu".into(), &"days".into()));
    close(&v[0]["value"], 244.0);
    close(&v[0]["threshold"], 300.0);
    let text = String::from_utf8_lossy(&stats("300d", "table").stdout).into_owned();
    assert!(text.contains("cpu reaches 70% of capacity in ≤ 244 days (target: not within 300 days)"), "{text}");
    let out = stats("180d", "json");
    assert_eq!(out.status.code(), Some(0), "month 8 is past 180 days: {}", String::from_utf8_lossy(&out.stdout));
    // Too little history for a backtest is said, not invented.
    let out = perfctl(&store(dir.path(), "flat"), &["capacity", "--backtest", "--now", NOW]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a backtest needs 13 months"), "{out:?}");
}

/// The calendar month (1–12, UTC) of a Unix time, by the civil-from-days algorithm.
fn month_of(t: i64) -> i64 {
    let z = t.div_euclid(86_400) + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    if mp < 10 { mp + 3 } else { mp - 9 }
}
