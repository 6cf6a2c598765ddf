//! Raw bytes to the agent's real HTTP endpoint (hyper, the guard, the handlers) over a real
//! loopback connection: whatever a client sends, the server answers or closes, and never
//! panics (libFuzzer's panic hook aborts from any thread). Inputs that carry `TOKEN` get the
//! real token in its place, so the upload path past the guard is reached too. The dashboard is
//! served over a small real store, so its API's parameter parsing and queries are reached.
#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use perfagent::clock::Clock;
use perfagent::health::Health;
use perfagent::http::{Endpoint, Uploads, serve};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let health = Arc::new(Health::default());
        health.set_ready();
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
        let db = dir.path().join("fuzz.db");
        let mut w = perfstore::Writer::open(&db, perfstore::StoreOptions::default()).expect("store");
        let key = perfstore::convention::OP_DURATION
            .key("fuzz")
            .label(perfstore::convention::tag::OP, "vm.list")
            .label(perfstore::convention::tag::OUTCOME, "ok");
        if let Ok(perfstore::Registration::Registered(id)) = w.register(&key, 0) {
            let now = perfagent::clock::now_ms();
            let d = perfstore::Distribution::from_values(&[0.1, 0.2, 0.3]);
            let sample = perfstore::Sample::Distribution(Box::new(d));
            let _ = w.write(&[perfstore::Write { series: id, ts_ms: now - 60_000, sample }]);
        }
        w.close().expect("close");
        let e = Endpoint {
            metrics: Arc::new(Mutex::new(Default::default())),
            health,
            uploads: Arc::new(Uploads::new("fuzz".into(), Clock::system(), 30 * 86_400_000, 1000)),
            dashboard: Some(perfdash::Dashboard::new(db, "fuzz")),
        };
        let addr = serve("127.0.0.1:0".parse().expect("address"), e, Some(TOKEN.into()), "fuzz.token")
            .expect("serve");
        // Uploads are never flushed here: take them now and then so the budget frees.
        addr
    })
}

fuzz_target!(|data: &[u8]| {
    let addr = server();
    let text = String::from_utf8_lossy(data).replace("TOKEN", TOKEN);
    let Ok(mut c) = TcpStream::connect(addr) else { return };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = c.write_all(text.as_bytes());
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    if !out.is_empty() {
        assert!(out.starts_with(b"HTTP/1."), "{:?}", String::from_utf8_lossy(&out[..out.len().min(80)]));
    }
});
