//! Forward mode: StatsD datagrams to a running daemon (its Unix socket, else UDP) and CPU
//! profiles to its `POST /profile`. Every failed send is counted ([`ForwardStats`]) and logged,
//! at most once a minute, with the count.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perfstore::ProfileWindow;

use super::error::SdkError;
use crate::listeners::ForwardTo;

/// How often a run of failures is logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What forward mode sent and failed to send, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Datagrams sent to the daemon.
    pub datagrams_sent: u64,
    /// Datagrams that could not be sent (their lines are lost).
    pub datagrams_failed: u64,
    /// Profile windows the daemon took.
    pub profiles_sent: u64,
    /// Profile windows that could not be sent or were refused.
    pub profiles_failed: u64,
}

/// The counters behind [`ForwardStats`], shared with the app's handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    datagrams_sent: AtomicU64,
    datagrams_failed: AtomicU64,
    profiles_sent: AtomicU64,
    profiles_failed: AtomicU64,
    last_logged: Mutex<Option<Instant>>,
}

impl Counters {
    pub(crate) fn stats(&self) -> ForwardStats {
        ForwardStats {
            datagrams_sent: self.datagrams_sent.load(Ordering::Relaxed),
            datagrams_failed: self.datagrams_failed.load(Ordering::Relaxed),
            profiles_sent: self.profiles_sent.load(Ordering::Relaxed),
            profiles_failed: self.profiles_failed.load(Ordering::Relaxed),
        }
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            let s = self.stats();
            log::warn!(
                "perfagent SDK: {what}: {error} ({} datagrams and {} profiles not delivered so far)",
                s.datagrams_failed,
                s.profiles_failed
            );
        }
    }
}

/// A connected socket to the daemon.
#[derive(Debug)]
pub(crate) enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Socket {
    /// Connect to `to`.
    pub(crate) fn connect(to: &ForwardTo) -> Result<Self, SdkError> {
        match to {
            ForwardTo::Unix(path) => {
                let s = UnixDatagram::unbound().map_err(SdkError::io("creating a Unix datagram socket"))?;
                s.connect(path)
                    .map_err(SdkError::io(format!("connecting to the agent's socket {}", path.display())))?;
                Ok(Socket::Unix(s))
            }
            ForwardTo::Udp(addr) => {
                let s = UdpSocket::bind("127.0.0.1:0")
                    .or_else(|_| UdpSocket::bind("[::1]:0"))
                    .map_err(SdkError::io("binding a UDP socket"))?;
                s.connect(addr).map_err(SdkError::io(format!("connecting to udp://{addr}")))?;
                Ok(Socket::Udp(s))
            }
        }
    }

    /// Send each datagram; a full Unix socket is waited on briefly rather than lose the flush.
    pub(crate) fn send_all(&self, datagrams: &[Vec<u8>], counters: &Counters) {
        for d in datagrams {
            let sent = match self {
                Socket::Udp(s) => s.send(d).map(drop),
                Socket::Unix(s) => {
                    let mut tries = 0;
                    loop {
                        match s.send(d) {
                            Ok(_) => break Ok(()),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 50 => {
                                tries += 1;
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Err(e) => break Err(e),
                        }
                    }
                }
            };
            match sent {
                Ok(()) => {
                    counters.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.datagrams_failed.fetch_add(1, Ordering::Relaxed);
                    counters.failed("sending to the agent", &e);
                }
            }
        }
    }
}

fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Send each operation's folded stacks to the daemon's `POST /profile`.
pub(crate) fn upload_profiles(
    http: Option<&str>,
    token: Option<&str>,
    profiles: &[ProfileWindow],
    counters: &Counters,
) {
    use std::io::{Read as _, Write as _};
    let Some(addr) = http else { return };
    for p in profiles {
        let body: String = p.stacks.iter().map(|s| format!("{} {}\n", s.frames, s.samples)).collect();
        let target = format!(
            "/profile?op={}&service={}&at={}",
            url_encode(&p.op),
            url_encode(&p.service),
            p.start_ms as f64 / 1000.0
        );
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let sent = std::net::TcpStream::connect(addr).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(
                c,
                "POST {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            let mut reply = String::new();
            c.read_to_string(&mut reply)?;
            Ok(reply)
        });
        match sent {
            Ok(r) if r.starts_with("HTTP/1.1 202") => {
                counters.profiles_sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                counters.profiles_failed.fetch_add(1, Ordering::Relaxed);
                let why = r.lines().last().unwrap_or("").to_owned();
                counters.failed(&format!("the agent refused the profile of {}", p.op), &why);
            }
            Err(e) => {
                counters.profiles_failed.fetch_add(1, Ordering::Relaxed);
                counters.failed(&format!("sending the profile of {} to http://{addr}", p.op), &e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_sends_are_counted() {
        let c = Counters::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let s = Socket::connect(&ForwardTo::Unix(path.clone())).unwrap();
        s.send_all(&[b"a:1|c".to_vec()], &c);
        drop(server); // the daemon is gone
        std::fs::remove_file(&path).unwrap();
        s.send_all(&[b"a:1|c".to_vec(), b"b:1|c".to_vec()], &c);
        assert_eq!(c.stats(), ForwardStats { datagrams_sent: 1, datagrams_failed: 2, ..ForwardStats::default() });
        upload_profiles(
            Some("127.0.0.1:1"),
            None,
            &[ProfileWindow {
                service: "s".into(),
                op: "o".into(),
                start_ms: 0,
                end_ms: 1,
                stacks: vec![perfstore::Stack::new("a;b", 1)],
            }],
            &c,
        );
        assert_eq!(c.stats().profiles_failed, 1);
    }
}
