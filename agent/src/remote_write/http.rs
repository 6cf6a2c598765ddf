//! One HTTP/1.1 POST at a time over a fresh connection (plain or TLS with rustls), with
//! timeouts on every step: all a remote-write sender needs, where a connection is made at
//! most once per batch.

use std::io::Read as _;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::Duration;

use perfprobe::Target;
use perfprobe::rustls;

/// Where to POST, and how.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL's parts.
    pub target: Target,
    /// TLS settings (https).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Extra headers (authorization, tenant).
    pub headers: Vec<(String, String)>,
    /// Connect, write and read timeout.
    pub timeout: Duration,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<Duration>,
    /// The start of the body, for the log.
    pub body: String,
}

/// POST `body` with `headers`; an error is a connection or protocol failure (the caller
/// retries those like a 5xx).
pub fn post(e: &Endpoint, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, String> {
    let t = &e.target;
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|err| format!("{}: {err}", t.host))?
        .next()
        .ok_or_else(|| format!("{}: no address", t.host))?;
    let mut tcp = TcpStream::connect_timeout(&addr, e.timeout).map_err(|err| format!("connect {addr}: {err}"))?;
    let _ = tcp.set_read_timeout(Some(e.timeout));
    let _ = tcp.set_write_timeout(Some(e.timeout));
    let _ = tcp.set_nodelay(true);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: perfagent/{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        t.path,
        t.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers.iter().copied().chain(e.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut reply = Vec::new();
    match &e.tls {
        Some(tls) if t.scheme == "https" => {
            let name = rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|err| format!("TLS: {err}"))?;
            let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(|err| format!("TLS: {err}"))?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            exchange(&mut s, head.as_bytes(), body, &mut reply)?;
        }
        _ => exchange(&mut tcp, head.as_bytes(), body, &mut reply)?,
    }
    parse(&reply)
}

fn exchange(s: &mut dyn ReadWrite, head: &[u8], body: &[u8], reply: &mut Vec<u8>) -> Result<(), String> {
    s.write_all(head)
        .and_then(|()| s.write_all(body))
        .and_then(|()| s.flush())
        .map_err(|err| format!("send: {err}"))?;
    // Bounded: the status, headers and the start of an error message are all that matter.
    match s.take(64 << 10).read_to_end(reply) {
        Ok(_) => Ok(()),
        // TLS peers that close without close_notify: what was read is the answer.
        Err(_) if !reply.is_empty() => Ok(()),
        Err(err) => Err(format!("answer: {err}")),
    }
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn parse(reply: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "no HTTP status in the answer".to_string())?;
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Ok(Reply { status, retry_after, body: body.chars().take(300).collect::<String>().trim().to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        let r = parse(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow").unwrap();
        assert_eq!((r.status, r.retry_after, r.body.as_str()), (429, Some(Duration::from_secs(7)), "slow"));
        assert_eq!(parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap().status, 204);
        assert!(parse(b"garbage").is_err());
    }
}
