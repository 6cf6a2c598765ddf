//! The agent's HTTP endpoint under a browser's and an attacker's requests: foreign Host
//! headers (DNS rebinding), cross-origin form posts, preflights, missing or wrong tokens, bad
//! parameters, truncated and oversized requests, slow clients and a flood of uploads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use perf_e2e::{Agent, http, token};
use perfstore::{Reader, TimeRange};

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn profiled_ops(db: &Path) -> usize {
    let mut r = Reader::open(db).unwrap();
    r.snapshot().unwrap().profiled_ops(TimeRange::new(0, i64::MAX / 2)).unwrap().len()
}

/// A POST /profile request's headers and body (after the request line).
fn upload(addr: &str, extra: &str, body: &str) -> Vec<u8> {
    format!("Host: {addr}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[test]
fn browsers_and_rebinding_pages_are_refused_and_only_the_token_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    let addr = agent.addr("http");
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let get = |host: &str| http(&addr, "GET /metrics HTTP/1.1", format!("Host: {host}\r\n\r\n").as_bytes());

    // DNS rebinding: the page's own name in Host.
    let (code, _, body) = get(&format!("evil.example:{port}"));
    assert_eq!(code, 421, "{body}");
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "localhost".to_owned()] {
        let (code, headers, body) = get(&host);
        assert_eq!(code, 200, "{host}: {body}");
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert!(body.contains("perfagent_name_collisions_total"), "{body}");
    }

    // A page's cross-origin form POST: text/plain needs no preflight, so the token decides.
    let stacks = "main;evil 1000\n";
    let form = upload(&addr, "Origin: http://evil.example\r\nContent-Type: text/plain\r\n", stacks);
    let (code, _, body) = http(&addr, "POST /profile?op=injected HTTP/1.1", &form);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("token"), "the refusal says what is missing: {body}");
    // The preflight a page would need for the token header is refused.
    let pre = format!(
        "Host: {addr}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\r\n"
    );
    let (code, headers, _) = http(&addr, "OPTIONS /profile HTTP/1.1", pre.as_bytes());
    assert_eq!(code, 405);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    let (code, _, _) =
        http(&addr, "POST /profile?op=injected HTTP/1.1", &upload(&addr, "Authorization: Bearer 0000\r\n", stacks));
    assert_eq!(code, 401, "a wrong token");

    // With the token (from the 0600 file only a local user can read), in either header.
    let t = token(&db);
    for auth in [format!("Authorization: Bearer {t}\r\n"), format!("X-Perfagent-Token: {t}\r\n")] {
        let (code, _, body) =
            http(&addr, "POST /profile?op=vm.list&service=app HTTP/1.1", &upload(&addr, &auth, "main;list 3\n"));
        assert_eq!(code, 202, "{body}");
    }
    let auth = format!("Authorization: Bearer {t}\r\n");
    for (target, why) in [
        ("/profile?op=vm.list&at=1e300", "at"),
        ("/profile?op=vm.list&at=NaN", "at"),
        ("/profile?op=vm.list&at=-5", "at"),
        ("/profile?op=vm%1Blist", "op"),
        ("/profile", "op"),
    ] {
        let (code, _, body) = http(&addr, &format!("POST {target} HTTP/1.1"), &upload(&addr, &auth, "main;x 1\n"));
        assert_eq!(code, 400, "{target}: {body}");
        assert!(body.contains(why), "{target}: the reply names the parameter: {body}");
    }
    // A body that ends before its Content-Length: nothing of it is stored.
    let cut = format!("Host: {addr}\r\n{auth}Content-Length: 1000\r\n\r\nmain;cut 5\n");
    let (code, _, body) = http(&addr, "POST /profile?op=cut HTTP/1.1", cut.as_bytes());
    assert_eq!(code, 400, "{body}");
    // A header block over 16 KiB.
    let huge = format!("Host: {addr}\r\nX-Junk: {}\r\n\r\n", "j".repeat(20_000));
    let (code, _, _) = http(&addr, "GET /metrics HTTP/1.1", huge.as_bytes());
    assert_eq!(code, 431);
    std::thread::sleep(Duration::from_millis(600));
    agent.stop();
    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let ops: Vec<String> =
        snap.profiled_ops(TimeRange::new(0, i64::MAX / 2)).unwrap().into_iter().map(|o| o.op).collect();
    assert_eq!(ops, ["vm.list"], "only the token's uploads are stored");
    assert_eq!(snap.profile("vm.list", None, TimeRange::new(0, i64::MAX / 2)).unwrap()[0].samples, 6);
}

#[test]
fn slow_clients_do_not_block_metrics_or_health() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let addr = agent.addr("http");
    // 200 clients each sending one header byte at a time, slower than any read timeout.
    let mut slow: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for s in &mut slow {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ").unwrap();
    }
    let mut worst = Duration::ZERO;
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        for s in &mut slow {
            let _ = s.write_all(b"l");
        }
        for path in ["/metrics", "/healthz", "/readyz"] {
            let t = Instant::now();
            let (code, _, _) = http(&addr, &format!("GET {path} HTTP/1.1"), format!("Host: {addr}\r\n\r\n").as_bytes());
            worst = worst.max(t.elapsed());
            assert_eq!(code, 200, "round {round} {path}");
        }
    }
    // Measured side by side in the closing note; here only that it answers at all, promptly
    // enough that a scraper would not give up.
    assert!(worst < Duration::from_secs(5), "the slowest answer took {worst:?}");
    // The slow clients are cut off by the header deadline, not served forever.
    let mut cut = 0;
    std::thread::sleep(Duration::from_secs(5));
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut b = [0u8; 512];
        if s.read(&mut b).is_ok() {
            cut += 1;
        }
    }
    assert!(cut >= 190, "{cut} of 200 trickling clients were closed by the header deadline");
    agent.stop();
}

/// VmHWM (peak RSS) and VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn a_flood_of_uploads_is_bounded_in_memory_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "1s"], &[]);
    let addr = agent.addr("http");
    let t = token(&db);
    std::thread::sleep(Duration::from_millis(1500));
    let (idle_peak, _) = rss_kib(agent.pid());
    // 400 uploads of 1 MiB of distinct stacks, 8 at a time.
    let body: String =
        (0..25_000).map(|i| format!("main;serve;handler_{i};parse_{i};alloc_{i} {}\n", i % 9 + 1)).collect();
    assert!(body.len() > 1 << 20, "{}", body.len());
    let results: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|w| {
                let (addr, t, body) = (&addr, &t, &body);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..50 {
                        let req = upload(addr, &format!("Authorization: Bearer {t}\r\n"), body);
                        let (code, headers, _) = http(addr, &format!("POST /profile?op=flood.{w}.{i} HTTP/1.1"), &req);
                        out.push((code, header(&headers, "retry-after").map(str::to_owned)));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let accepted = results.iter().filter(|r| r.0 == 202).count();
    let deferred: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(accepted + deferred.len(), 400, "every upload is accepted or told to retry: {results:?}");
    assert!(accepted > 0);
    assert!(deferred.iter().all(|r| r.1.is_some()), "429s carry Retry-After");
    std::thread::sleep(Duration::from_secs(2));
    let (peak, _) = rss_kib(agent.pid());
    let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
    let pid = agent.pid();
    agent.stop();
    eprintln!(
        "flood: {accepted} accepted, {} deferred; peak RSS {idle_peak} → {peak} KiB; WAL {wal} bytes",
        deferred.len()
    );
    assert!(peak < idle_peak + 64 * 1024, "peak RSS {peak} KiB vs {idle_peak} KiB idle (pid {pid})");
    assert!(wal <= 64 << 20, "WAL {wal} bytes over its 64 MiB limit");
    assert_eq!(profiled_ops(&db), accepted, "every accepted upload is stored");
}
