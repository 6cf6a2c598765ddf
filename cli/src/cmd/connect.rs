//! `perfctl test-connection [URL|HOST:PORT …]`: how long each phase of reaching an endpoint
//! takes (DNS, TCP connect, TLS handshake, time to first byte, total), `--count N` times with
//! p50/p95, and a plain error for each way it can fail (a name that does not resolve, a refused
//! or timed-out connection, a certificate for another name or from an unknown issuer).
//! Endpoints come from the arguments, else `[probes] targets` in the config file. `--record`
//! sends the results to the running agent as StatsD under the convention
//! (`probe.duration{target,phase}`, `probe.success{target}`), so connectivity shows in stats,
//! SLOs and the dashboard.

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Global, with_stdout};
use crate::window::parse_duration;

/// `test-connection` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `https://host[:port]/path`, `http://…`, or `host:port` (TCP only) [default: `[probes]
    /// targets` in the config file]
    targets: Vec<String>,
    /// Attempts per endpoint (p50/p95 from 2 on).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    count: u32,
    /// Give up on an attempt after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Also trust this CA certificate (PEM), e.g. an internal CA or a self-signed server.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Send the results to the agent as StatsD (probe.duration, probe.success).
    #[arg(long)]
    record: bool,
    /// The agent's StatsD address for --record.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8125", requires = "record")]
    statsd: SocketAddr,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per endpoint.
    Table,
    /// One JSON document.
    Json,
}

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
            "TLS: certificate from an unknown issuer (a private CA or self-signed: pass --cacert FILE)".into()
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

/// Probe `t` once.
pub fn probe(t: &Target, timeout: Duration, tls: &Arc<rustls::ClientConfig>) -> Attempt {
    let mut a = Attempt::default();
    let start = Instant::now();
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
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: perfctl-test-connection\r\nConnection: close\r\n\r\n",
        t.path, t.host
    );
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

fn summarise(target: &Target, each: Vec<Attempt>) -> Summary {
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

/// The TLS configuration: Mozilla's roots, plus `cacert`.
fn tls_config(cacert: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = cacert {
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| crate::usage_err!("invalid value '{}' for '--cacert': {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| crate::usage_err!("invalid value '{}' for '--cacert': {e}", path.display()))?;
        if certs.is_empty() {
            crate::usage!("invalid value '{}' for '--cacert': no PEM certificate in it", path.display());
        }
        for c in certs {
            roots.add(c).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `[probes] targets = [...]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbesSection {
    targets: Vec<String>,
}

/// StatsD lines for one summary (`--record`).
fn statsd_lines(s: &Summary) -> String {
    let target = s.target.replace([',', '|', '#', ':', '\n'], "_");
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
                out.push_str(&format!("probe.duration:{v:.3}|ms|#target:{target},phase:{phase}\n"));
            }
        }
    }
    let success = u8::from(s.each.last().is_some_and(|a| a.error.is_none()));
    out.push_str(&format!("probe.success:{success}|g|#target:{target}\n"));
    out
}

/// Run `test-connection`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let texts = if a.targets.is_empty() {
        let file = g.config_file()?;
        let probes: ProbesSection = match &file {
            Some(f) => f.section("probes")?.unwrap_or_default(),
            None => ProbesSection::default(),
        };
        if probes.targets.is_empty() {
            crate::usage!(
                "no endpoint: name one (perfctl test-connection https://api.example.com db:5432) or list them in \
                 [probes] targets of the config file"
            );
        }
        probes.targets
    } else {
        a.targets.clone()
    };
    let targets: Vec<Target> = texts
        .iter()
        .map(|t| parse_target(t).map_err(|e| crate::usage_err!("invalid endpoint {e}")))
        .collect::<Result<_, _>>()?;
    let tls = tls_config(a.cacert.as_deref())?;
    let mut summaries = Vec::new();
    for t in &targets {
        let each: Vec<Attempt> = (0..a.count).map(|_| probe(t, a.timeout, &tls)).collect();
        summaries.push(summarise(t, each));
    }
    if a.record {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
        for s in &summaries {
            for line in statsd_lines(s).lines() {
                sock.send_to(line.as_bytes(), a.statsd)?;
            }
        }
        eprintln!("recorded to the agent at {} (probe.duration, probe.success)", a.statsd);
    }
    let failed = summaries.iter().any(|s| s.ok < s.attempts);
    with_stdout(|out| {
        if a.format == Format::Json {
            return Ok(crate::render::json(&summaries, out)?);
        }
        render(&summaries, out)
    })?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn render(summaries: &[Summary], out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    use crate::render::{Column, Paint, Table};
    let many = summaries.iter().any(|s| s.attempts > 1);
    let mut t = Table::new(vec![
        Column::text("ENDPOINT").max_chars(50),
        Column::number("OK"),
        Column::number(if many { "DNS p50/p95" } else { "DNS" }),
        Column::number("CONNECT"),
        Column::number("TLS"),
        Column::number("FIRST BYTE"),
        Column::number("TOTAL"),
        Column::number("STATUS"),
        Column::text("ERROR").max_chars(90),
    ]);
    for s in summaries {
        let cell = |p: &str| {
            s.phases.get(p).map_or_else(
                || "-".to_string(),
                |(p50, p95)| if many { format!("{p50:.1}/{p95:.1}ms") } else { format!("{p50:.1}ms") },
            )
        };
        t.row(vec![
            crate::render::cell(&s.target, 50),
            format!("{}/{}", s.ok, s.attempts),
            cell("dns"),
            cell("connect"),
            cell("tls"),
            cell("ttfb"),
            cell("total"),
            s.status.map_or("-".into(), |c| c.to_string()),
            s.error.as_deref().map_or(String::new(), |e| crate::render::cell(e, 90)),
        ]);
    }
    t.render(Paint(false), out)?;
    Ok(())
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
}
