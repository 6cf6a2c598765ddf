//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz`, `/readyz`. A small
//! blocking server on its own thread: requests are tiny and come from one scraper, so a
//! thread per connection or an async runtime would only add weight.
//!
//! ## Failure modes
//! A client that sends nothing is dropped after a 2 s read timeout; a malformed request
//! gets 400, an unknown path 404, anything but GET/HEAD 405. Errors never reach the
//! collector.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::exposition::Exposition;

/// Bind `addr` and serve on a background thread; returns the bound address.
pub fn serve(addr: SocketAddr, metrics: Arc<Mutex<Exposition>>, ready: Arc<AtomicBool>) -> io::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("binding HTTP listener {addr}: {e}")))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("perfagent-http".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Err(e) = handle(stream, &metrics, &ready)
                && !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::BrokenPipe)
            {
                crate::log!("HTTP request: {e}");
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

fn handle(mut stream: TcpStream, metrics: &Mutex<Exposition>, ready: &AtomicBool) -> io::Result<()> {
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
    if method != "GET" && !head {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "only GET and HEAD\n", false);
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => {
            let body = metrics.lock().map(|m| m.render()).unwrap_or_default();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body, head)
        }
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", "ok\n", head),
        "/readyz" if ready.load(Ordering::SeqCst) => respond(&mut stream, "200 OK", "text/plain", "ready\n", head),
        "/readyz" => respond(&mut stream, "503 Service Unavailable", "text/plain", "starting\n", head),
        _ => respond(&mut stream, "404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n", head),
    }
}
