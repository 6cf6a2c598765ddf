//! Connectivity probes, as `perfctl test-connection` runs them and the agent runs `[probes]`
//! on an interval (like blackbox_exporter): how long each phase of reaching an endpoint takes
//! (DNS, TCP connect, TLS handshake with rustls and Mozilla's roots, time to the first byte of
//! an HTTP answer, total), and a plain error for each way it can fail (a name that does not
//! resolve, a refused or timed-out connection, a certificate for another name, from an unknown
//! issuer, or expired). Blocking, one attempt at a time, each bounded by a timeout.
//!
//! Results are recorded under the metric convention ([`statsd_lines`]): `probe.duration{target,
//! phase}`, `probe.success{target}`, and each attempt as a call of the operation `probe
//! <target>`, so connectivity shows in stats, SLOs, alerts and the dashboard.

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The TLS library the probes use, for callers that make their own connections with
/// [`tls_config`].
pub use rustls;

/// An endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As given.
    pub text: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `https`, `http` or `tcp`.
    pub scheme: &'static str,
    /// Path for HTTP.
    pub path: String,
}

/// Read `https://host:port/path`, `http://…` or `host:port`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let (scheme, rest) = match s.split_once("://") {
        Some(("https", r)) => ("https", r),
        Some(("http", r)) => ("http", r),
        Some((other, _)) => return Err(format!("'{s}': unknown scheme {other}: (http, https, or host:port for TCP)")),
        None => ("tcp", s),
    };
    let (hostport, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().map_err(|_| format!("'{s}': bad port '{p}'"))?)
        }
        _ if scheme == "https" => (hostport.trim_matches(['[', ']']).to_owned(), 443),
        _ if scheme == "http" => (hostport.trim_matches(['[', ']']).to_owned(), 80),
        _ => return Err(format!("'{s}': expected a URL (https://host/path) or host:port")),
    };
    if host.is_empty() {
        return Err(format!("'{s}': no host"));
    }
    Ok(Target { text: s.to_owned(), host, port, scheme, path })
}

/// One attempt: each phase's duration in ms, or the error that stopped it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attempt {
    /// Name resolution.
    pub dns_ms: Option<f64>,
    /// TCP connect.
    pub connect_ms: Option<f64>,
    /// TLS handshake (https).
    pub tls_ms: Option<f64>,
    /// From the request sent to the first byte of the answer (http, https).
    pub ttfb_ms: Option<f64>,
    /// The whole attempt.
    pub total_ms: Option<f64>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// Time spent on the attempt, whether it succeeded or not.
    pub elapsed_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The TLS error as a person reads it.
fn tls_error(e: &std::io::Error, host: &str) -> String {
    let text = e.to_string();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
        | Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
            format!("TLS: the certificate is not valid for the name {host}")
        }
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            "TLS: certificate from an unknown issuer (a private CA or self-signed: pass --cacert FILE, or cacert in [probes])"
                .into()
        }
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
        | Some(rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })) => {
            "TLS: the certificate has expired".into()
        }
        _ => format!("TLS: {text}"),
    }
}

fn io_error(phase: &str, e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("{phase}: connection refused (nothing listens there)"),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("{phase}: timed out after {}", humantime::format_duration(timeout))
        }
        _ => format!("{phase}: {e}"),
    }
}

/// Probe `t` once; each phase gives up after `timeout`.
pub fn probe(t: &Target, timeout: Duration, tls: &Arc<rustls::ClientConfig>) -> Attempt {
    let start = Instant::now();
    let mut a = attempt(t, timeout, tls, start);
    a.elapsed_ms = ms(start.elapsed());
    a
}

fn attempt(t: &Target, timeout: Duration, tls: &Arc<rustls::ClientConfig>, start: Instant) -> Attempt {
    let mut a = Attempt::default();
    let addrs: Vec<SocketAddr> = match (t.host.as_str(), t.port).to_socket_addrs() {
        Ok(it) => it.collect(),
        Err(e) => {
            a.error = Some(format!("DNS: {} does not resolve ({e})", t.host));
            return a;
        }
    };
    a.dns_ms = Some(ms(start.elapsed()));
    let Some(addr) = addrs.first() else {
        a.error = Some(format!("DNS: {} has no address", t.host));
        return a;
    };
    let t_connect = Instant::now();
    let mut tcp = match TcpStream::connect_timeout(addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            a.error = Some(io_error("connect", &e, timeout));
            return a;
        }
    };
    a.connect_ms = Some(ms(t_connect.elapsed()));
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: perfprobe\r\nConnection: close\r\n\r\n", t.path, t.host);
    let result = match t.scheme {
        "tcp" => Ok(None),
        "http" => exchange(&mut tcp, &request, &mut a),
        _ => {
            let name = match rustls::pki_types::ServerName::try_from(t.host.clone()) {
                Ok(n) => n,
                Err(e) => {
                    a.error = Some(format!("TLS: bad server name {}: {e}", t.host));
                    return a;
                }
            };
            let mut conn = match rustls::ClientConnection::new(tls.clone(), name) {
                Ok(c) => c,
                Err(e) => {
                    a.error = Some(format!("TLS: {e}"));
                    return a;
                }
            };
            let t_tls = Instant::now();
            let mut handshake = Ok(());
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut tcp) {
                    handshake = Err(e);
                    break;
                }
            }
            match handshake {
                Err(e) => {
                    a.error = Some(if e.kind() == std::io::ErrorKind::InvalidData {
                        tls_error(&e, &t.host)
                    } else {
                        io_error("TLS", &e, timeout)
                    });
                    return a;
                }
                Ok(()) => a.tls_ms = Some(ms(t_tls.elapsed())),
            }
            let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
            exchange(&mut stream, &request, &mut a)
        }
    };
    match result {
        Ok(status) => a.status = status,
        Err(e) => {
            a.error = Some(e);
            return a;
        }
    }
    a.total_ms = Some(ms(start.elapsed()));
    a
}

/// A stream to talk HTTP over (plain TCP or TLS).
trait Rw: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Rw for T {}

/// Send the request, time the first byte, read the status and the rest (bounded).
fn exchange(s: &mut dyn Rw, request: &str, a: &mut Attempt) -> Result<Option<u16>, String> {
    let sent = Instant::now();
    s.write_all(request.as_bytes()).map_err(|e| format!("request: {e}"))?;
    let mut first = [0u8; 1];
    match s.read(&mut first) {
        Ok(0) => return Err("the server closed the connection without answering".into()),
        Ok(_) => a.ttfb_ms = Some(ms(sent.elapsed())),
        Err(e) => return Err(format!("answer: {e}")),
    }
    let mut rest = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut rest);
    let mut head = vec![first[0]];
    head.extend_from_slice(&rest[..rest.len().min(64)]);
    let line = String::from_utf8_lossy(&head);
    Ok(line.split_whitespace().nth(1).and_then(|c| c.parse().ok()))
}

/// One endpoint's attempts, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The endpoint as given.
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts that succeeded.
    pub ok: u32,
    /// `(p50, p95)` ms per phase over the successful attempts.
    pub phases: std::collections::BTreeMap<&'static str, (f64, f64)>,
    /// The HTTP status of the last successful attempt.
    pub status: Option<u16>,
    /// The last error.
    pub error: Option<String>,
    /// Every attempt.
    pub each: Vec<Attempt>,
}

/// Reads one phase of an attempt.
type Phase = fn(&Attempt) -> Option<f64>;

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Summarise `target`'s attempts.
pub fn summarise(target: &Target, each: Vec<Attempt>) -> Summary {
    let ok: Vec<&Attempt> = each.iter().filter(|a| a.error.is_none()).collect();
    let mut phases = std::collections::BTreeMap::new();
    let pick: [(&'static str, Phase); 5] = [
        ("dns", |a| a.dns_ms),
        ("connect", |a| a.connect_ms),
        ("tls", |a| a.tls_ms),
        ("ttfb", |a| a.ttfb_ms),
        ("total", |a| a.total_ms),
    ];
    for (name, f) in pick {
        let mut v: Vec<f64> = ok.iter().filter_map(|a| f(a)).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        phases.insert(name, (percentile(&v, 0.5), percentile(&v, 0.95)));
    }
    Summary {
        target: target.text.clone(),
        attempts: each.len() as u32,
        ok: ok.len() as u32,
        phases,
        status: ok.last().and_then(|a| a.status),
        error: each.iter().rev().find_map(|a| a.error.clone()),
        each,
    }
}

/// The TLS configuration: Mozilla's roots, plus the PEM certificates in `cacert` (a private
/// CA or a self-signed server). The error says what is wrong with the file.
pub fn tls_config(cacert: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = cacert {
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A target as a StatsD tag value: the characters that end a tag or a line (`,` `|` `#` and
/// line breaks) become `_`; `:` stays (a tag splits at its first one).
pub fn tag_value(target: &str) -> String {
    target.replace([',', '|', '#', '\n', '\r'], "_")
}

/// The operation a probe of `target` is recorded as (`probe https://api.example.com/`), so it
/// shows in `stats`, SLOs and alerts like any operation.
pub fn op_name(target: &str) -> String {
    format!("probe {}", tag_value(target))
}

/// StatsD lines for one summary: each attempt's phases as `probe.duration{target,phase}` (ms),
/// each attempt as a call of the operation [`op_name`] (`op.duration{op,outcome}`, the total
/// time, or the time until it failed), and `probe.success{target}` for the last attempt.
pub fn statsd_lines(s: &Summary) -> String {
    use std::fmt::Write as _;
    let target = tag_value(&s.target);
    let op = op_name(&s.target);
    let mut out = String::new();
    for a in &s.each {
        for (phase, v) in [
            ("dns", a.dns_ms),
            ("connect", a.connect_ms),
            ("tls", a.tls_ms),
            ("ttfb", a.ttfb_ms),
            ("total", a.total_ms),
        ] {
            if let Some(v) = v {
                let _ = writeln!(out, "probe.duration:{v:.3}|ms|#target:{target},phase:{phase}");
            }
        }
        let outcome = if a.error.is_none() { "ok" } else { "error" };
        let _ = writeln!(out, "op.duration:{:.3}|ms|#op:{op},outcome:{outcome}", a.elapsed_ms);
    }
    let success = u8::from(s.each.last().is_some_and(|a| a.error.is_none()));
    let _ = writeln!(out, "probe.success:{success}|g|#target:{target}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let t = parse_target("https://api.example.com/v1/health").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.scheme, t.path.as_str()),
            ("api.example.com", 443, "https", "/v1/health")
        );
        let t = parse_target("db.internal:5432").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.scheme), ("db.internal", 5432, "tcp"));
        assert_eq!(parse_target("http://[::1]:8080/").unwrap().host, "::1");
        assert!(parse_target("ftp://x").unwrap_err().contains("unknown scheme"));
        assert!(parse_target("justahost").unwrap_err().contains("host:port"));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), 4.0);
    }

    #[test]
    fn results_become_convention_lines() {
        let t = parse_target("https://api.example.com:8443/v1,x").unwrap();
        let ok = Attempt {
            dns_ms: Some(1.0),
            connect_ms: Some(2.0),
            tls_ms: Some(3.0),
            ttfb_ms: Some(4.0),
            total_ms: Some(10.5),
            status: Some(200),
            error: None,
            elapsed_ms: 10.5,
        };
        let failed = Attempt {
            dns_ms: Some(1.0),
            error: Some("connect: refused".into()),
            elapsed_ms: 1.25,
            ..Attempt::default()
        };
        let s = summarise(&t, vec![ok, failed]);
        assert_eq!((s.attempts, s.ok, s.error.as_deref()), (2, 1, Some("connect: refused")));
        let lines = statsd_lines(&s);
        let target = "https://api.example.com:8443/v1_x";
        assert!(lines.contains(&format!("probe.duration:3.000|ms|#target:{target},phase:tls\n")), "{lines}");
        assert!(lines.contains(&format!("op.duration:10.500|ms|#op:probe {target},outcome:ok\n")), "{lines}");
        assert!(lines.contains(&format!("op.duration:1.250|ms|#op:probe {target},outcome:error\n")), "{lines}");
        assert!(lines.ends_with(&format!("probe.success:0|g|#target:{target}\n")), "the last attempt failed: {lines}");
        assert_eq!(lines.lines().count(), 5 + 1 + 1 + 1 + 1);
    }
}
