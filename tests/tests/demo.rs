//! `perfctl demo`, the README's main command, as a newcomer runs it (shortened to a few
//! seconds): everything in one store it creates, with stats, a flame graph, a capacity
//! projection and the next commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::process::Command;

use perf_e2e::bin;

#[test]
fn the_demo_runs_end_to_end_and_never_touches_the_real_store() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let out = Command::new(bin("perfctl"))
        .args(["demo", "--seconds", "4"])
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let db = data.join("perfagent/demo.db");
    assert!(db.exists(), "the demo store");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("perfagent")), 0o700, "the data folder is private");
    assert_eq!(mode(&db), 0o600, "the store is private");
    assert!(!data.join("perfagent/perf.db").exists(), "the default store of `perfagent start` is never created");
    assert!(stderr.contains("running a simulated cloud CLI (SDK) and a billing worker (StatsD)"), "{stderr}");
    // Stats: the SDK's operations and the StatsD app's, with caches, pools and errors.
    for op in ["vm.list", "vm.start", "ssm.send_command", "blob.read", "invoice.render"] {
        assert!(stdout.contains(&format!("\n{op} ")), "{op} in:\n{stdout}");
    }
    assert!(stdout.contains("Cache     hit rate "), "{stdout}");
    assert!(stdout.contains("Pool      hit rate "), "{stdout}");
    // A flame graph file for vm.list, with its own function in it.
    let svg = std::fs::read_to_string(data.join("perfagent/vm.list.svg")).expect("flame graph written");
    assert!(svg.contains("parse_instance_page"), "vm.list's CPU is in parse_instance_page");
    // Capacity from the simulated 30-day history of request rates.
    assert!(stdout.contains("requests  (40.0 calls/s)"), "{stdout}");
    assert!(stdout.contains("auto (30 days of history)"), "{stdout}");
    assert!(stdout.contains(&format!("Next, try:\n  perfctl --db {} stats", db.display())), "{stdout}");
    // Running it again starts afresh in the same demo store.
    let again = Command::new(bin("perfctl"))
        .args(["demo", "--seconds", "1"])
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
}
