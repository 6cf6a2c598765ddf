//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz`, `/readyz`, and
//! `POST /profile?op=NAME[&service=S][&at=UNIX_SECONDS]` taking folded stacks for an operation
//! (`py-spy record --format raw`, `inferno-collapse-*`; stored with the next flush;
//! malformed input is refused with its line number and nothing is stored). A small
//! blocking server on its own thread: requests are tiny and come from one scraper, so a
//! thread per connection or an async runtime would only add weight.
//!
//! ## Failure modes
//! A client that sends nothing is dropped after a 2 s read timeout; a malformed request
//! gets 400, an unknown path 404, anything but GET/HEAD (and POST to /profile) 405, a body
//! over 16 MiB 413. Errors never reach the
//! collector.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use perfstore::ProfileWindow;

use crate::exposition::Exposition;

/// Largest profile upload.
const MAX_BODY: usize = 16 << 20;

/// Uploaded profiles waiting for the next flush, and the service to file them under when the
/// upload names none.
#[derive(Debug)]
pub struct Uploads {
    pending: Mutex<Vec<ProfileWindow>>,
    service: String,
    clock: crate::clock::Clock,
}

impl Uploads {
    /// No uploads yet; those without a service go under `service`.
    pub fn new(service: String, clock: crate::clock::Clock) -> Self {
        Self { pending: Mutex::new(Vec::new()), service, clock }
    }

    /// Everything uploaded since the last call.
    pub fn take(&self) -> Vec<ProfileWindow> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Bind `addr` and serve on a background thread; returns the bound address.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Mutex<Exposition>>,
    ready: Arc<AtomicBool>,
    uploads: Arc<Uploads>,
) -> io::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("binding HTTP listener {addr}: {e}")))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("perfagent-http".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Err(e) = handle(stream, &metrics, &ready, &uploads)
                && !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::BrokenPipe)
            {
                log::warn!("HTTP request: {e}");
            }
        }
    })?;
    Ok(local)
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str, head: bool) -> io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    if !head {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Decode `%XX` and `+` in a query value.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match v.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(()) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(target: &str, key: &str) -> Option<String> {
    target.split_once('?')?.1.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

/// `POST /profile`: read the body, parse it, queue it for the next flush.
fn upload(stream: &mut TcpStream, head_and_start: &[u8], target: &str, uploads: &Uploads) -> io::Result<()> {
    let text = String::from_utf8_lossy(head_and_start);
    let length = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let Some(length) = length else {
        return respond(stream, "411 Length Required", "text/plain", "send Content-Length\n", false);
    };
    if length > MAX_BODY {
        respond(stream, "413 Payload Too Large", "text/plain", "at most 16 MiB of folded stacks\n", false)?;
        // Read a little of what the client still sends, so it sees the answer rather than a
        // reset connection.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut sink = [0u8; 65536];
        for _ in 0..16 {
            if matches!(stream.read(&mut sink), Ok(0) | Err(_)) {
                break;
            }
        }
        return Ok(());
    }
    let start = head_and_start.windows(4).position(|w| w == b"\r\n\r\n").map_or(head_and_start.len(), |p| p + 4);
    let mut body = head_and_start[start..].to_vec();
    let mut chunk = [0u8; 65536];
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    // Checked after reading the body: answering before it would reset the client's connection.
    let Some(op) = query(target, "op").filter(|o| !o.is_empty()) else {
        return respond(stream, "400 Bad Request", "text/plain", "POST /profile needs ?op=NAME\n", false);
    };
    let Ok(body) = String::from_utf8(body) else {
        return respond(stream, "400 Bad Request", "text/plain", "the body is not UTF-8\n", false);
    };
    let stacks = match perfstore::parse_folded(&body) {
        Ok(s) => s,
        Err(e) => {
            return respond(stream, "400 Bad Request", "text/plain", &format!("{e}; nothing was stored\n"), false);
        }
    };
    let now = uploads.clock.now_ms();
    let at = query(target, "at").and_then(|t| t.parse::<f64>().ok()).map_or(now, |s| (s * 1000.0) as i64);
    let service = query(target, "service").filter(|s| !s.is_empty()).unwrap_or_else(|| uploads.service.clone());
    let (n, samples) = (stacks.len(), stacks.iter().map(|s| s.samples).sum::<u64>());
    if let Ok(mut p) = uploads.pending.lock() {
        p.push(ProfileWindow { service, op: op.clone(), start_ms: at, end_ms: at + 1, stacks });
    }
    respond(
        stream,
        "202 Accepted",
        "text/plain",
        &format!("accepted {n} stacks ({samples} samples) for {op}; stored with the next flush\n"),
        false,
    )
}

fn handle(mut stream: TcpStream, metrics: &Mutex<Exposition>, ready: &AtomicBool, uploads: &Uploads) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let text = String::from_utf8_lossy(&buf[..len]);
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (first.next(), first.next()) else {
        return respond(&mut stream, "400 Bad Request", "text/plain", "bad request\n", false);
    };
    let head = method == "HEAD";
    let path = target.split('?').next().unwrap_or(target);
    if method == "POST" && path == "/profile" {
        return upload(&mut stream, &buf[..len], target, uploads);
    }
    if method != "GET" && !head {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD (POST to /profile)\n",
            false,
        );
    }
    match path {
        "/metrics" => {
            let body = metrics.lock().map(|m| m.render()).unwrap_or_default();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body, head)
        }
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", "ok\n", head),
        "/readyz" if ready.load(Ordering::SeqCst) => respond(&mut stream, "200 OK", "text/plain", "ready\n", head),
        "/readyz" => respond(&mut stream, "503 Service Unavailable", "text/plain", "starting\n", head),
        _ => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz, /readyz or POST /profile?op=NAME\n",
            head,
        ),
    }
}
