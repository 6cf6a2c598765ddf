//! `perfctl test-connection [URL|HOST:PORT …]`: how long each phase of reaching an endpoint
//! takes (DNS, TCP connect, TLS handshake, time to first byte, total), `--count N` times with
//! p50/p95, and a plain error for each way it can fail (a name that does not resolve, a refused
//! or timed-out connection, a certificate for another name or from an unknown issuer).
//! Endpoints come from the arguments, else `[probes] targets` in the config file. `--record`
//! sends the results to the running agent as StatsD under the convention
//! (`probe.duration{target,phase}`, `probe.success{target}`, and each attempt as a call of the
//! operation `probe <target>`), so connectivity shows in stats, SLOs, alerts and the dashboard.
//! The probing itself is `perfprobe`'s, which the agent runs on an interval for `[probes]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use perfprobe::{Attempt, Summary, Target, parse_target, probe, statsd_lines, summarise};

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

/// `[probes]`: `targets` and `cacert` are read here; `interval` and `timeout` are the agent's.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `interval` and `timeout` are only checked for form here
struct ProbesSection {
    #[serde(default)]
    targets: Vec<String>,
    cacert: Option<PathBuf>,
    interval: Option<String>,
    timeout: Option<String>,
}

/// Run `test-connection`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let file = g.config_file()?;
    let probes: ProbesSection = match &file {
        Some(f) => f.section("probes")?.unwrap_or_default(),
        None => ProbesSection::default(),
    };
    let texts = if a.targets.is_empty() {
        if probes.targets.is_empty() {
            crate::usage!(
                "no endpoint: name one (perfctl test-connection https://api.example.com db:5432) or list them in \
                 [probes] targets of the config file"
            );
        }
        probes.targets.clone()
    } else {
        a.targets.clone()
    };
    let targets: Vec<Target> = texts
        .iter()
        .map(|t| parse_target(t).map_err(|e| crate::usage_err!("invalid endpoint {e}")))
        .collect::<Result<_, _>>()?;
    let tls = match (&a.cacert, &probes.cacert) {
        (Some(flag), _) => {
            perfprobe::tls_config(Some(flag)).map_err(|e| crate::usage_err!("invalid value for '--cacert': {e}"))?
        }
        (None, from_file) => {
            let from_file = from_file.as_deref().filter(|p| !p.as_os_str().is_empty());
            perfprobe::tls_config(from_file).map_err(|e| anyhow::anyhow!("[probes] cacert: {e}"))?
        }
    };
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
