//! The config's resolution: precedence, errors with their line, and every section.

use perfanalysis::slo::BurnRule;

use super::outbound::base64;
use super::*;

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
}

fn find<'a>(r: &'a Resolved, key: &str) -> &'a Setting {
    r.settings.iter().find(|s| s.key == key).unwrap()
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::from_text("c.toml", text)
}

#[test]
fn precedence_is_default_file_env_flag() {
    let text = "[agent]\nflush_interval = \"5s\"\nservice = \"from-file\"\n\n[statsd]\nudp = \"127.0.0.1:9000\"\n[targets]\np95 = \"200ms\"\n";
    let f = ConfigFile::from_text("/etc/perfagent/config.toml", text);
    let e = env(&[("PERFAGENT_SERVICE", "from-env"), ("PERFAGENT_STATSD_UDP", "127.0.0.1:9001")]);
    let flags = Flags { statsd_udp: Some("127.0.0.1:9002".parse().unwrap()), ..Flags::default() };
    let r = resolve(Some(&f), &e, &flags, PathBuf::from("/d/perf.db")).unwrap();
    assert_eq!(r.daemon.flush_interval, Duration::from_secs(5));
    assert_eq!(find(&r, "agent.flush_interval").source, Source::File("/etc/perfagent/config.toml".into(), 2));
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
    let e = env(&[]);
    let err =
        resolve(Some(&file("[agent]\nservice = \"x\"\nflush_intervl = \"5s\"\n")), &e, &Flags::default(), "x".into())
            .unwrap_err()
            .to_string();
    assert!(err.starts_with("c.toml:3: unknown field `flush_intervl`, expected"), "{err}");
    let err =
        resolve(Some(&file("\n[statd]\nudp = \"x\"\n")), &e, &Flags::default(), "x".into()).unwrap_err().to_string();
    assert!(err.starts_with("c.toml:2: unknown section [statd]; expected one of [agent], [statsd]"), "{err}");
}

#[test]
fn bad_values_name_file_line_key_and_form() {
    let e = env(&[]);
    let err = resolve(Some(&file("[store]\n\ndisk_cap = \"lots\"\n")), &e, &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "c.toml:3: invalid value 'lots' for 'disk_cap' in [store]: expected a size like \"1GiB\", \"512MiB\" or \"64MB\""
    );
    let err = resolve(None, &env(&[("PERFAGENT_AGENT_FLUSH_INTERVAL", "5x")]), &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "PERFAGENT_AGENT_FLUSH_INTERVAL: invalid value '5x': expected a duration like 10s or 500ms, between 100ms and 1h"
    );
    let err = resolve(Some(&file("[statsd]\nmax_series = \"many\"\n")), &e, &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.toml:2: "), "{err}");
    // The receive thread numbers its series in 31 bits: a limit past a billion is refused.
    let err = resolve(None, &env(&[("PERFAGENT_STATSD_MAX_SERIES", "3000000000")]), &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "PERFAGENT_STATSD_MAX_SERIES: invalid value '3000000000': expected a whole number from 1 to 1000000000"
    );
    let ok = resolve(None, &env(&[("PERFAGENT_STATSD_MAX_SERIES", "1000000000")]), &Flags::default(), "x".into());
    assert!(ok.is_ok(), "the largest limit is taken");
}

#[test]
fn the_default_file_parses_to_the_defaults() {
    let r = resolve(Some(&file(default_file_text())), &env(&[]), &Flags::default(), "x".into()).unwrap();
    let plain = resolve(None, &env(&[]), &Flags::default(), "x".into()).unwrap();
    let values = |r: &Resolved| r.settings.iter().map(|s| (s.key, s.value.clone())).collect::<Vec<_>>();
    assert_eq!(values(&r), values(&plain));
    assert_eq!(r.daemon.store.disk_cap_bytes, 1 << 30);
    assert_eq!(r.daemon.store.minute_retention_ms, 90 * 86_400_000);
}

#[test]
fn sizes_and_intervals() {
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("64MB"), Ok(64_000_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert!(parse_size("1 parsec").is_err());
    assert_eq!(parse_flush_interval("1s"), Ok(Duration::from_secs(1)));
    assert_eq!(
        parse_flush_interval("50ms").unwrap_err(),
        "expected a duration like 10s or 500ms, between 100ms and 1h"
    );
}

#[test]
fn probes_and_alert_rules_are_read_or_refused_with_their_line() {
    let e = env(&[]);
    let text = "[probes]\ntargets = [\"https://api.example.com/health\", \"db:5432\"]\ninterval = \"30s\"\n\n[alerts]\npage = \"10x 2h 10m\"\nticket = \"off\"\n";
    let r = resolve(Some(&file(text)), &e, &Flags::default(), "x".into()).unwrap();
    let p = &r.daemon.probes;
    assert_eq!(
        p.targets.iter().map(|t| (t.host.as_str(), t.port)).collect::<Vec<_>>(),
        [("api.example.com", 443), ("db", 5432)]
    );
    assert_eq!((p.interval, p.timeout, &p.cacert), (Some(Duration::from_secs(30)), Duration::from_secs(5), &None));
    let rules = &r.daemon.alerts.rules;
    assert_eq!(rules.iter().map(BurnRule::describe).collect::<Vec<_>>(), ["10x over 2h and 10m"]);
    assert_eq!(find(&r, "probes.interval").value, "\"30s\"");
    let err = resolve(Some(&file("[probes]\n\ntargets = [\"ftp://x\"]\n")), &e, &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("c.toml:3: invalid value for 'targets' in [probes]: endpoint 'ftp://x': unknown scheme"),
        "{err}"
    );
    let err =
        resolve(Some(&file("[alerts]\npage = \"fast\"\n")), &e, &Flags::default(), "x".into()).unwrap_err().to_string();
    assert!(err.starts_with("c.toml:2: invalid value 'fast' for 'page' in [alerts]: expected \"<burn>x"), "{err}");
    let err = resolve(None, &env(&[("PERFAGENT_PROBES_INTERVAL", "often")]), &Flags::default(), "x".into())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "PERFAGENT_PROBES_INTERVAL: invalid value 'often': expected a duration like \"30s\"");
}

#[test]
fn remote_write_endpoints_are_read_or_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let text = format!(
        "[[remote_write]]\nurl = \"http://vm:8428/api/v1/write\"\nbearer_token_file = \"{}\"\nexternal_labels = {{ host = \"a\", dc = \"eu\" }}\nselect = \"op.*\"\nmax_lag = \"6h\"\n\n[[remote_write]]\nname = \"grafana\"\nurl = \"https://example.com/push\"\nbasic_auth = {{ username = \"u\", password_file = \"{}\" }}\nstep = \"30s\"\n",
        token.display(),
        token.display()
    );
    let e = env(&[]);
    let r = resolve(Some(&file(&text)), &e, &Flags::default(), "x".into()).unwrap();
    let rw = &r.daemon.remote_write;
    assert_eq!(rw.len(), 2);
    assert_eq!(
        (rw[0].name.as_str(), rw[0].step, rw[0].max_lag),
        ("http://vm:8428/api/v1/write", Duration::from_secs(10), Duration::from_secs(6 * 3600))
    );
    assert_eq!(rw[0].external_labels, [("dc".to_owned(), "eu".to_owned()), ("host".to_owned(), "a".to_owned())]);
    assert_eq!(rw[0].endpoint.headers, [("Authorization".to_owned(), "Bearer s3cret".to_owned())]);
    assert_eq!(rw[1].endpoint.headers, [("Authorization".to_owned(), format!("Basic {}", base64("u:s3cret")))]);
    assert!(rw[1].endpoint.tls.is_some() && rw[1].step == Duration::from_secs(30));
    assert_eq!(base64("u:s3cret"), "dTpzM2NyZXQ=");
    let bad = |text: &str| resolve(Some(&file(text)), &e, &Flags::default(), "x".into()).unwrap_err().to_string();
    let err = bad("[[remote_write]]\nurl = \"vm:8428\"\n");
    assert!(err.starts_with("c.toml:2: invalid value for 'url' in [[remote_write]]: expected http(s)://"), "{err}");
    let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\n\nbearer_token_file = \"/nonexistent/t\"\n");
    assert!(
        err.starts_with("c.toml:4: invalid value for 'bearer_token_file' in [[remote_write]]: reading /nonexistent/t"),
        "{err}"
    );
    let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\nstep = \"1500ms\"\n");
    assert!(err.starts_with("c.toml:3: invalid value for 'step' in [[remote_write]]: expected whole seconds"), "{err}");
    let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\nbuckets = [1, 0.5]\n");
    assert!(err.contains("'buckets' in [[remote_write]]: expected increasing"), "{err}");
    let err =
        bad("[[remote_write]]\nurl = \"http://vm/w\"\n[[remote_write]]\nurl = \"http://vm/w\"\nselect = \"op.*\"\n");
    assert!(
        err.starts_with("c.toml:4: invalid value for 'name' in [[remote_write]]: 'http://vm/w' names another"),
        "{err}"
    );
    let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\nexternal_labels = { \"k8s.pod\" = \"x\" }\n");
    assert!(err.contains("'k8s.pod' is not a label name a receiver takes"), "{err}");
    let err = bad("[[remote_write]]\nurl = \"http://vm/w\"\npassword = \"x\"\n");
    assert!(err.contains("unknown field `password`"), "{err}");
}

#[test]
fn the_store_holds_every_series_statsd_admits_and_the_agents_own() {
    let own = OWN_SERIES_ROOM;
    let r = resolve(None, &env(&[]), &Flags::default(), PathBuf::from("/d/perf.db")).unwrap();
    let (agg, store) = (&r.daemon.aggregator, &r.daemon.store);
    assert!(store.max_series >= agg.max_series + own, "{} against {}", store.max_series, agg.max_series);
    assert!(store.max_series_per_name >= agg.max_series_per_name);
    // Raising StatsD's limits raises the store's with them.
    let f = file("[statsd]\nmax_series = 250000\nmax_series_per_name = 50000\n");
    let r = resolve(Some(&f), &env(&[]), &Flags::default(), PathBuf::from("/d/perf.db")).unwrap();
    let (agg, store) = (&r.daemon.aggregator, &r.daemon.store);
    assert_eq!((agg.max_series, agg.max_series_per_name), (250_000, 50_000));
    assert_eq!(store.max_series, 250_000 + own);
    assert_eq!(store.max_series_per_name, 50_000);
}
