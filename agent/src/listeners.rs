//! Where an agent listens: what the ready line, the status file, the log and `perfagent
//! status` all show, and where an SDK forwards to.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The bound listeners (the real ports when port 0 was asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    /// StatsD over UDP.
    #[serde(default)]
    pub statsd_udp: Option<SocketAddr>,
    /// StatsD over TCP (newline-delimited).
    #[serde(default)]
    pub statsd_tcp: Option<SocketAddr>,
    /// StatsD over a Unix datagram socket.
    #[serde(default)]
    pub statsd_unix: Option<PathBuf>,
    /// HTTP: `/metrics`, `/healthz`, `/readyz`, `POST /profile`.
    #[serde(default)]
    pub http: Option<SocketAddr>,
}

/// Where a process sends StatsD datagrams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTo {
    /// A UDP address.
    Udp(SocketAddr),
    /// A Unix datagram socket.
    Unix(PathBuf),
}

impl fmt::Display for ForwardTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardTo::Udp(a) => write!(f, "udp://{a}"),
            ForwardTo::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl ForwardTo {
    /// Parse `udp://HOST:PORT` or `unix:///path` (also `unix:/path`).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://").or_else(|| s.strip_prefix("unix:")) {
            return Ok(ForwardTo::Unix(PathBuf::from(path)));
        }
        let addr = s.strip_prefix("udp://").unwrap_or(s);
        addr.parse().map(ForwardTo::Udp).map_err(|_| {
            format!("invalid forward address '{s}': expected udp://127.0.0.1:8125 or unix:///path/to/socket")
        })
    }
}

impl Listeners {
    /// Where an SDK should forward: the Unix socket when there is one (no loss to a full
    /// receive buffer: the sender waits), else UDP.
    pub fn forward_to(&self) -> Option<ForwardTo> {
        match (&self.statsd_unix, self.statsd_udp) {
            (Some(p), _) => Some(ForwardTo::Unix(p.clone())),
            (None, Some(a)) => Some(ForwardTo::Udp(a)),
            (None, None) => None,
        }
    }
}

impl fmt::Display for Listeners {
    /// `StatsD on udp://A, tcp://B, unix:C; HTTP on http://D` (what is on).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut statsd = Vec::new();
        statsd.extend(self.statsd_udp.map(|a| format!("udp://{a}")));
        statsd.extend(self.statsd_tcp.map(|a| format!("tcp://{a}")));
        statsd.extend(self.statsd_unix.as_ref().map(|p| format!("unix:{}", p.display())));
        if statsd.is_empty() {
            f.write_str("no StatsD listener")?;
        } else {
            write!(f, "StatsD on {}", statsd.join(", "))?;
        }
        match self.http {
            Some(h) => write!(f, "; HTTP on http://{h}"),
            None => f.write_str("; HTTP off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_print_and_choose_where_to_forward() {
        let l = Listeners {
            statsd_udp: Some("127.0.0.1:8125".parse().unwrap()),
            statsd_tcp: Some("127.0.0.1:8126".parse().unwrap()),
            statsd_unix: None,
            http: None,
        };
        assert_eq!(l.to_string(), "StatsD on udp://127.0.0.1:8125, tcp://127.0.0.1:8126; HTTP off");
        assert_eq!(l.forward_to(), Some(ForwardTo::Udp("127.0.0.1:8125".parse().unwrap())));
        let u = Listeners { statsd_unix: Some("/run/s.sock".into()), ..l };
        assert_eq!(u.forward_to(), Some(ForwardTo::Unix("/run/s.sock".into())));
        assert_eq!(Listeners::default().forward_to(), None, "an embedded SDK takes no StatsD");
        assert_eq!(ForwardTo::parse("unix:///x.sock"), Ok(ForwardTo::Unix("/x.sock".into())));
        assert!(ForwardTo::parse("tcp://x").unwrap_err().starts_with("invalid forward address"));
    }
}
