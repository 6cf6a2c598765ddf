//! `perfctl test-connection` against real servers on loopback: plain HTTP, HTTPS with a
//! self-signed certificate the test makes (trusted with --cacert, refused without it, and
//! refused for another name), a closed port and a name that does not resolve; --record
//! sending the results as StatsD; and the agent running `[probes]` on an interval.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use perf_e2e::{bin, skip};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python HTTP server on a free loopback port, TLS with `cert`/`key` when given.
fn server(tls: Option<(&str, &str)>) -> (Server, u16) {
    let script = "import http.server, ssl, sys\n\
                  srv = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
                  if len(sys.argv) > 2:\n    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n    ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
                  print(srv.server_address[1], flush=True)\nsrv.serve_forever()\n";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script);
    if let Some((c, k)) = tls {
        cmd.args([c, k]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().unwrap();
    (Server(child), port)
}

fn connect(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(bin("perfctl"))
        .arg("test-connection")
        .args(args)
        .args(["--format", "json", "--timeout", "3s"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), v, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn each_phase_and_each_failure_is_named() {
    if Command::new("openssl").arg("version").output().is_err() {
        return skip("connect::each_phase", "no openssl to make a test certificate");
    }
    let dir = tempfile::tempdir().unwrap();
    // A test CA and a server certificate for localhost signed by it.
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (ca, ca_key, cert, key, csr, ext) =
        (p("ca.pem"), p("ca.key"), p("cert.pem"), p("key.pem"), p("leaf.csr"), p("ext"));
    std::fs::write(&ext, "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=perfctl test CA",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
        vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", &key, "-out", &csr],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ],
    ] {
        let made = Command::new("openssl").args(&args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
    }
    let (_https, tls_port) = server(Some((&cert, &key)));
    let (_http, http_port) = server(None);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let https = format!("https://localhost:{tls_port}/");
    let cacert = ca.as_str();

    // Trusted: every phase measured, 3 attempts.
    let (code, v, err) = connect(&[&https, "--cacert", cacert, "--count", "3"]);
    assert_eq!(code, Some(0), "{v} {err}");
    let s = &v[0];
    assert_eq!((s["ok"].as_u64(), s["attempts"].as_u64(), s["status"].as_u64()), (Some(3), Some(3), Some(200)), "{s}");
    for phase in ["dns", "connect", "tls", "ttfb", "total"] {
        let (p50, p95) = (s["phases"][phase][0].as_f64().unwrap(), s["phases"][phase][1].as_f64().unwrap());
        assert!(p50 >= 0.0 && p95 >= p50, "{phase}: {s}");
    }
    // Each failure in its own words; the exit status says something failed.
    let (code, v, _) = connect(&[
        &https,
        &format!("https://127.0.0.1:{tls_port}/"),
        &format!("127.0.0.1:{closed}"),
        "no-such-host.invalid:80",
        &format!("http://127.0.0.1:{http_port}/"),
    ]);
    assert_eq!(code, Some(1));
    let error = |i: usize| v[i]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error(0).contains("unknown issuer") && error(0).contains("--cacert"), "{v}");
    let (_, v2, _) = connect(&[&format!("https://127.0.0.1:{tls_port}/"), "--cacert", cacert]);
    assert!(v2[0]["error"].as_str().unwrap().contains("not valid for the name 127.0.0.1"), "{v2}");
    assert!(error(2).contains("connection refused"), "{v}");
    assert!(error(3).starts_with("DNS: no-such-host.invalid does not resolve"), "{v}");
    assert_eq!(v[4]["status"], 200);
    assert!(v[4]["phases"]["ttfb"][0].as_f64().is_some() && v[4]["phases"].get("tls").is_none(), "{v}");

    // --record sends StatsD under the convention.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let to = sink.local_addr().unwrap().to_string();
    let (code, _, err) = connect(&[&format!("http://127.0.0.1:{http_port}/"), "--record", "--statsd", &to]);
    assert_eq!(code, Some(0), "{err}");
    let mut got = String::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sink.recv(&mut buf) {
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        got.push('\n');
        if got.contains("probe.success") {
            break;
        }
    }
    assert!(got.contains("probe.duration:") && got.contains(",phase:ttfb"), "{got}");
    assert!(got.contains(&format!("probe.success:1|g|#target:http://127.0.0.1:{http_port}/")), "{got}");
    assert!(got.contains(&format!("|ms|#op:probe http://127.0.0.1:{http_port}/,outcome:ok")), "{got}");
}

#[test]
fn the_agent_probes_its_targets_on_an_interval_into_stats_and_metrics() {
    let (_http, port) = server(None);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let up = format!("http://127.0.0.1:{port}/");
    let targets = format!("{up},127.0.0.1:1");
    let envs = [("PERFAGENT_PROBES_TARGETS", targets.as_str()), ("PERFAGENT_PROBES_INTERVAL", "1s")];
    let agent = perf_e2e::Agent::start(&db, &[], &envs);
    // Each round is a call of `probe <target>`: the server answers, the closed port refuses.
    let (ok_op, down_op) = (format!("probe {up}"), "probe 127.0.0.1:1".to_owned());
    let report = perf_e2e::wait_for(30, "three rounds of probes in stats", || {
        let out = perf_e2e::perfctl(&db, &["stats", "--last", "5m", "--op", "probe *", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let calls = |op: &str| v["ops"].as_array()?.iter().find(|o| o["op"] == op)?["calls"].as_f64();
        (calls(&ok_op)? >= 3.0 && calls(&down_op)? >= 3.0).then_some(v)
    });
    let op = |name: &str| report["ops"].as_array().unwrap().iter().find(|o| o["op"] == name).unwrap().clone();
    assert_eq!(op(&ok_op)["success_rate"], 1.0, "{report}");
    assert_eq!(op(&down_op)["success_rate"], 0.0, "{report}");
    assert!(op(&ok_op)["latency_ms"]["p95"].as_f64().unwrap() > 0.0, "{report}");
    // /metrics has the convention's probe families.
    let (_, _, metrics) = perf_e2e::http(&agent.addr("http"), "GET /metrics HTTP/1.1", b"Host: localhost\r\n\r\n");
    let success = |target: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("probe_success{") && l.contains(&format!("target=\"{target}\"")))
            .map(str::to_owned)
    };
    assert!(success(&up).is_some_and(|l| l.ends_with(" 1")), "{metrics}");
    assert!(success("127.0.0.1:1").is_some_and(|l| l.ends_with(" 0")), "{metrics}");
    assert!(metrics.contains("probe_duration_seconds_bucket{") && metrics.contains("phase=\"connect\""), "{metrics}");
    agent.stop();
}
