//! Targets (`[targets]` in the shared config file): the thresholds `perfctl stats` checks.
//!
//! ```toml
//! [targets]
//! p95 = "200ms"        # latency p95 per operation (default 200ms)
//! p99 = "1s"           # latency p99 per operation (default: not checked)
//! error_rate = 0.01    # errors / calls per operation, a ratio (default 0.01); "1%" also works
//! cpu = 0.8            # mean host CPU utilization over the window (default 0.8)
//! memory = 0.9         # peak host memory utilization (default 0.9)
//!
//! [targets.ops."vm.start*"]   # per-operation overrides; a glob, the longest match wins
//! p95 = "2s"
//! ```
//!
//! Environment variables override the file: `PERFAGENT_TARGETS_P95`, `…_P99`,
//! `…_ERROR_RATE`, `…_CPU`, `…_MEMORY`. Other sections of the file belong to `perfagent`
//! and are ignored here; unknown keys inside `[targets]` are refused with file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perfstore::glob_match;
use serde::Deserialize;

/// Latency and error thresholds of one operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpTargets {
    /// p95 latency ceiling, ms.
    pub p95_ms: Option<f64>,
    /// p99 latency ceiling, ms.
    pub p99_ms: Option<f64>,
    /// Error-rate ceiling, a ratio.
    pub error_rate: Option<f64>,
}

/// Every threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// For operations without an override.
    pub ops: OpTargets,
    /// Overrides by operation glob.
    pub overrides: Vec<(String, OpTargets)>,
    /// Mean CPU utilization ceiling, percent.
    pub cpu_pct: Option<f64>,
    /// Peak memory utilization ceiling, percent.
    pub memory_pct: Option<f64>,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            ops: OpTargets { p95_ms: Some(200.0), p99_ms: None, error_rate: Some(0.01) },
            overrides: Vec::new(),
            cpu_pct: Some(80.0),
            memory_pct: Some(90.0),
        }
    }
}

impl Targets {
    /// The thresholds for `op`: the longest matching override's keys, else the defaults.
    pub fn for_op(&self, op: &str) -> OpTargets {
        let best = self
            .overrides
            .iter()
            .filter(|(glob, _)| glob_match(glob, op))
            .max_by_key(|(glob, _)| (glob == op, glob.len()));
        match best {
            Some((_, o)) => OpTargets {
                p95_ms: o.p95_ms.or(self.ops.p95_ms),
                p99_ms: o.p99_ms.or(self.ops.p99_ms),
                error_rate: o.error_rate.or(self.ops.error_rate),
            },
            None => self.ops,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    targets: Option<Section>,
    #[serde(flatten)]
    _other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    p95: Option<Value>,
    p99: Option<Value>,
    error_rate: Option<Value>,
    cpu: Option<Value>,
    memory: Option<Value>,
    #[serde(default)]
    ops: BTreeMap<String, OpSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpSection {
    p95: Option<Value>,
    p99: Option<Value>,
    error_rate: Option<Value>,
}

/// A threshold as written: a string (`"200ms"`, `"1%"`, `"off"`) or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Value {
    Number(f64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Number(n) => n.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

/// `"200ms"` → 200.0 (ms); `"off"` → None.
fn latency(v: &str) -> Result<Option<f64>, String> {
    if v.trim() == "off" {
        return Ok(None);
    }
    humantime::parse_duration(v.trim())
        .map(|d| Some(d.as_secs_f64() * 1000.0))
        .map_err(|_| "expected a duration like \"200ms\" or \"1s\", or \"off\"".into())
}

/// `0.01` or `"1%"` → 0.01 (ratio); `"off"` → None.
fn ratio(v: &str) -> Result<Option<f64>, String> {
    let v = v.trim();
    if v == "off" {
        return Ok(None);
    }
    let r = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => v.parse::<f64>(),
    };
    match r {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(Some(r)),
        _ => Err("expected a ratio between 0 and 1 like 0.01, a percentage like \"1%\", or \"off\"".into()),
    }
}

fn is_latency(v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Number(_) => Err("expected a duration string like \"200ms\" (a bare number has no unit)".into()),
        Value::Text(s) => latency(s),
    }
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.trim_start().starts_with(key)).map_or(1, |i| i + 1)
}

/// The config file perfctl reads when `--config` is not given.
pub fn default_file() -> Option<PathBuf> {
    perfagent::config::default_file(&|k| std::env::var(k).ok())
}

/// Load targets: defaults < file (`explicit`, else the default file if it exists) < env.
pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Targets> {
    let path = match explicit {
        Some(p) => Some(p.to_owned()),
        None => default_file().filter(|p| p.exists()),
    };
    let mut t = Targets::default();
    if let Some(path) = path {
        let text =
            std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let file: File = toml::from_str(&text).map_err(|e| match e.span() {
            Some(span) => anyhow::anyhow!(
                "{}:{}: {}",
                path.display(),
                text[..span.start.min(text.len())].matches('\n').count() + 1,
                e.message()
            ),
            None => anyhow::anyhow!("{}: {}", path.display(), e.message()),
        })?;
        if let Some(s) = file.targets {
            let at = |key: &str, e: String| {
                anyhow::anyhow!("{}:{}: targets.{key}: {e}", path.display(), line_of(&text, key))
            };
            let lat = |key: &str, v: &Option<Value>, d: Option<f64>| -> anyhow::Result<Option<f64>> {
                v.as_ref().map_or(Ok(d), |v| is_latency(v).map_err(|e| at(key, e)))
            };
            let rat = |key: &str, v: &Option<Value>, d: Option<f64>| -> anyhow::Result<Option<f64>> {
                v.as_ref().map_or(Ok(d), |v| ratio(&v.text()).map_err(|e| at(key, e)))
            };
            t.ops.p95_ms = lat("p95", &s.p95, t.ops.p95_ms)?;
            t.ops.p99_ms = lat("p99", &s.p99, t.ops.p99_ms)?;
            t.ops.error_rate = rat("error_rate", &s.error_rate, t.ops.error_rate)?;
            t.cpu_pct = rat("cpu", &s.cpu, t.cpu_pct.map(|p| p / 100.0))?.map(|r| r * 100.0);
            t.memory_pct = rat("memory", &s.memory, t.memory_pct.map(|p| p / 100.0))?.map(|r| r * 100.0);
            for (glob, o) in &s.ops {
                t.overrides.push((
                    glob.clone(),
                    OpTargets {
                        p95_ms: lat("p95", &o.p95, None)?,
                        p99_ms: lat("p99", &o.p99, None)?,
                        error_rate: rat("error_rate", &o.error_rate, None)?,
                    },
                ));
            }
        }
    }
    let var = |key: &str| env(&format!("PERFAGENT_TARGETS_{key}")).filter(|v| !v.is_empty());
    let bad = |key: &str, v: &str, e: String| anyhow::anyhow!("invalid value '{v}' for PERFAGENT_TARGETS_{key}: {e}");
    if let Some(v) = var("P95") {
        t.ops.p95_ms = latency(&v).map_err(|e| bad("P95", &v, e))?;
    }
    if let Some(v) = var("P99") {
        t.ops.p99_ms = latency(&v).map_err(|e| bad("P99", &v, e))?;
    }
    if let Some(v) = var("ERROR_RATE") {
        t.ops.error_rate = ratio(&v).map_err(|e| bad("ERROR_RATE", &v, e))?;
    }
    if let Some(v) = var("CPU") {
        t.cpu_pct = ratio(&v).map_err(|e| bad("CPU", &v, e))?.map(|r| r * 100.0);
    }
    if let Some(v) = var("MEMORY") {
        t.memory_pct = ratio(&v).map_err(|e| bad("MEMORY", &v, e))?.map(|r| r * 100.0);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> anyhow::Result<Targets> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text)?;
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        load(Some(&p), &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).map_err(|e| {
            // Keep only the part after the temporary path.
            anyhow::anyhow!("{}", e.to_string().replace(&p.display().to_string(), "config.toml"))
        })
    }

    #[test]
    fn file_env_and_overrides() {
        let t = load_text(
            "[agent]\nflush_interval = \"1s\"\n\n[targets]\np95 = \"300ms\"\nerror_rate = \"2%\"\ncpu = 0.5\n\
             [targets.ops.\"vm.*\"]\np95 = \"2s\"\n[targets.ops.\"vm.start\"]\nerror_rate = 0.1\n",
            &[("PERFAGENT_TARGETS_MEMORY", "off")],
        )
        .unwrap();
        assert_eq!(t.ops, OpTargets { p95_ms: Some(300.0), p99_ms: None, error_rate: Some(0.02) });
        assert_eq!(t.cpu_pct, Some(50.0));
        assert_eq!(t.memory_pct, None);
        assert_eq!(t.for_op("vm.list").p95_ms, Some(2000.0));
        // The exact name wins over the glob, and falls back to the defaults for the rest.
        assert_eq!(t.for_op("vm.start"), OpTargets { p95_ms: Some(300.0), p99_ms: None, error_rate: Some(0.1) });
        assert_eq!(t.for_op("blob.read").p95_ms, Some(300.0));
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let e = load_text("[targets]\n\np95 = 200\n", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.toml:3: targets.p95: expected a duration string like \"200ms\" (a bare number has no unit)"
        );
        let e = load_text("[targets]\nerror_rate = 5\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config.toml:2: targets.error_rate: expected a ratio between 0 and 1"), "{e}");
        let e = load_text("[targets]\np59 = \"1s\"\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config.toml:2: unknown field `p59`"), "{e}");
        let e = load_text("", &[("PERFAGENT_TARGETS_CPU", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("invalid value 'lots' for PERFAGENT_TARGETS_CPU: expected a ratio"), "{e}");
    }
}
