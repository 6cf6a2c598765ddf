//! `[probes]` run by the agent, like blackbox_exporter: every `interval` each target is probed
//! once (`perfprobe`: DNS, connect, TLS, first byte, total; each phase bounded by `timeout`),
//! and the results enter the aggregator as StatsD lines under the convention
//! (`probe.duration{target,phase}`, `probe.success{target}`, and each attempt as a call of the
//! operation `probe <target>`), so connectivity shows in `stats`, SLOs, alerts, `/metrics` and
//! the dashboard with no second path.
//!
//! ## Failure modes
//! A probe that fails is a result (`outcome=error`, `probe.success 0`), not an error of the
//! agent. Probes run one after another on their own thread: a slow target delays the next
//! round (never the ingest); a round longer than the interval starts the next one at once.
//! What a round produced waits in a small buffer the receive loop empties at every flush; it is
//! bounded (a round's lines are a few hundred bytes per target).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perfprobe::{Target, probe, statsd_lines, summarise};

/// `[probes]`.
#[derive(Debug, Clone)]
pub struct ProbesConfig {
    /// The endpoints (also what `perfctl test-connection` probes without arguments).
    pub targets: Vec<Target>,
    /// Between rounds; None: the agent does not probe (the default).
    pub interval: Option<Duration>,
    /// Each phase of an attempt gives up after this long (5 s).
    pub timeout: Duration,
    /// Also trust the CA certificates (PEM) in this file.
    pub cacert: Option<PathBuf>,
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self { targets: Vec::new(), interval: None, timeout: Duration::from_secs(5), cacert: None }
    }
}

/// StatsD lines from inside the agent waiting for the receive loop, which ingests them at the
/// next flush as if they had arrived over a socket.
pub type LocalLines = Arc<Mutex<Vec<u8>>>;

/// At most this many bytes wait (rounds are dropped, and logged, past it: the receive loop
/// empties it every flush, so this only fills if the loop is stuck).
const MAX_WAITING: usize = 1 << 20;

/// Start probing on a thread of its own, when `cfg` has targets and an interval; the lines go
/// to `out`. The TLS roots are read once, here, so a bad `cacert` is refused at start.
pub fn spawn(cfg: ProbesConfig, out: LocalLines) -> anyhow::Result<bool> {
    let Some(interval) = cfg.interval.filter(|_| !cfg.targets.is_empty()) else { return Ok(false) };
    let tls = perfprobe::tls_config(cfg.cacert.as_deref()).map_err(|e| anyhow::anyhow!("[probes] cacert: {e}"))?;
    std::thread::Builder::new().name("perfagent-probes".into()).spawn(move || {
        loop {
            let round = Instant::now();
            let mut lines = String::new();
            for t in &cfg.targets {
                let a = probe(t, cfg.timeout, &tls);
                if let Some(e) = &a.error {
                    log::debug!("probe {}: {e}", t.text);
                }
                lines.push_str(&statsd_lines(&summarise(t, vec![a])));
            }
            {
                let mut q = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if q.len() + lines.len() <= MAX_WAITING {
                    q.extend_from_slice(lines.as_bytes());
                } else {
                    log::warn!("probe results are not being taken in; this round's are dropped");
                }
            }
            std::thread::sleep(interval.saturating_sub(round.elapsed()));
        }
    })?;
    Ok(true)
}

/// Everything waiting in `q`.
pub fn take(q: &LocalLines) -> Vec<u8> {
    std::mem::take(&mut *q.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}
