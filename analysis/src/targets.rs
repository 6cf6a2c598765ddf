//! Targets (`[targets]` in the shared config file): the thresholds `stats` checks.
//!
//! ```toml
//! [targets]
//! p95 = "200ms"        # latency p95 per operation (default 200ms)
//! p99 = "1s"           # latency p99 per operation (default: not checked)
//! error_rate = 0.01    # errors / calls per operation, a ratio (default 0.01); "1%" also works
//! cpu = 0.8            # mean host CPU utilization over the window (default 0.8)
//! memory = 0.9         # peak host memory utilization (default 0.9)
//! retry_rate = 0.05    # retries per call, per operation (default: not checked)
//! cache_hit_rate = 0.5 # minimum hit rate of each cache (default: not checked)
//! circuit_open = "5m"  # longest a circuit breaker may be open in the window (default: not checked)
//! capacity_within = "90d" # a resource's projected peak reaches capacity_target within this
//!                         # (perfctl capacity --growth auto; default: not checked)
//! capacity_target = 0.7   # the utilization that counts as "reached" (default 0.7)
//!
//! [targets.ops."vm.start*"]   # per-operation overrides; a glob, the longest match wins
//! p95 = "2s"
//! ```
//!
//! Environment variables override the file: `PERFAGENT_TARGETS_P95`, `…_P99`,
//! `…_ERROR_RATE`, `…_CPU`, `…_MEMORY`, `…_RETRY_RATE`, `…_CACHE_HIT_RATE`, `…_CIRCUIT_OPEN`,
//! `…_CAPACITY_WITHIN`, `…_CAPACITY_TARGET`. Unknown keys inside `[targets]` are refused with the
//! file and line.

use std::collections::BTreeMap;

use perfstore::glob_match;
use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, ConfigFile};

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
    /// Retries per call ceiling, per operation (a ratio; off by default).
    pub retry_rate: Option<f64>,
    /// Cache hit-rate floor, per cache (a ratio; off by default).
    pub cache_hit_rate: Option<f64>,
    /// Longest a circuit breaker may stay open in the window, seconds (off by default).
    pub circuit_open_s: Option<f64>,
    /// The trend target: no resource's projected peak may reach [`Targets::capacity_target`]
    /// within this many days (off by default).
    pub capacity_within_days: Option<f64>,
    /// The utilization the trend target watches (0.7, `perfctl capacity`'s default target).
    pub capacity_target: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            ops: OpTargets { p95_ms: Some(200.0), p99_ms: None, error_rate: Some(0.01) },
            overrides: Vec::new(),
            cpu_pct: Some(80.0),
            memory_pct: Some(90.0),
            retry_rate: None,
            cache_hit_rate: None,
            circuit_open_s: None,
            capacity_within_days: None,
            capacity_target: 0.7,
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

    /// Load targets: defaults < `[targets]` of `file` < environment.
    pub fn load(file: Option<&ConfigFile>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut t = Targets::default();
        if let Some(f) = file
            && let Some(s) = f.section::<Section>("targets")?
        {
            t.apply(f, &s)?;
        }
        t.apply_env(env)?;
        Ok(t)
    }

    fn apply(&mut self, f: &ConfigFile, s: &Section) -> Result<(), ConfigError> {
        let at = |key: &str, v: &Spanned<Value>, e: String| f.error_at(v.span().start, format!("targets.{key}: {e}"));
        let lat = |key: &str, v: &Option<Spanned<Value>>, d: Option<f64>| {
            v.as_ref().map_or(Ok(d), |v| v.get_ref().latency().map_err(|e| at(key, v, e)))
        };
        let rat = |key: &str, v: &Option<Spanned<Value>>, d: Option<f64>| {
            v.as_ref().map_or(Ok(d), |v| ratio(&v.get_ref().text()).map_err(|e| at(key, v, e)))
        };
        self.ops.p95_ms = lat("p95", &s.p95, self.ops.p95_ms)?;
        self.ops.p99_ms = lat("p99", &s.p99, self.ops.p99_ms)?;
        self.ops.error_rate = rat("error_rate", &s.error_rate, self.ops.error_rate)?;
        self.cpu_pct = rat("cpu", &s.cpu, self.cpu_pct.map(|p| p / 100.0))?.map(|r| r * 100.0);
        self.memory_pct = rat("memory", &s.memory, self.memory_pct.map(|p| p / 100.0))?.map(|r| r * 100.0);
        self.retry_rate = rat("retry_rate", &s.retry_rate, self.retry_rate)?;
        self.cache_hit_rate = rat("cache_hit_rate", &s.cache_hit_rate, self.cache_hit_rate)?;
        self.circuit_open_s =
            lat("circuit_open", &s.circuit_open, self.circuit_open_s.map(|v| v * 1000.0))?.map(|ms| ms / 1000.0);
        if let Some(v) = &s.capacity_within {
            self.capacity_within_days = days(&v.get_ref().text()).map_err(|e| at("capacity_within", v, e))?;
        }
        if let Some(v) = &s.capacity_target {
            self.capacity_target = utilization(&v.get_ref().text()).map_err(|e| at("capacity_target", v, e))?;
        }
        for (glob, o) in &s.ops {
            self.overrides.push((
                glob.clone(),
                OpTargets {
                    p95_ms: lat("p95", &o.p95, None)?,
                    p99_ms: lat("p99", &o.p99, None)?,
                    error_rate: rat("error_rate", &o.error_rate, None)?,
                },
            ));
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |key: &str| {
            let name = format!("PERFAGENT_TARGETS_{key}");
            env(&name).filter(|v| !v.is_empty()).map(|v| (name, v))
        };
        let bad = |(var, value): (String, String), expected: String| ConfigError::Env { var, value, expected };
        if let Some(v) = var("P95") {
            self.ops.p95_ms = latency(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("P99") {
            self.ops.p99_ms = latency(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("ERROR_RATE") {
            self.ops.error_rate = ratio(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("CPU") {
            self.cpu_pct = ratio(&v.1).map_err(|e| bad(v, e))?.map(|r| r * 100.0);
        }
        if let Some(v) = var("MEMORY") {
            self.memory_pct = ratio(&v.1).map_err(|e| bad(v, e))?.map(|r| r * 100.0);
        }
        if let Some(v) = var("RETRY_RATE") {
            self.retry_rate = ratio(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("CACHE_HIT_RATE") {
            self.cache_hit_rate = ratio(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("CIRCUIT_OPEN") {
            self.circuit_open_s = latency(&v.1).map_err(|e| bad(v, e))?.map(|ms| ms / 1000.0);
        }
        if let Some(v) = var("CAPACITY_WITHIN") {
            self.capacity_within_days = days(&v.1).map_err(|e| bad(v, e))?;
        }
        if let Some(v) = var("CAPACITY_TARGET") {
            self.capacity_target = utilization(&v.1).map_err(|e| bad(v, e))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    p95: Option<Spanned<Value>>,
    p99: Option<Spanned<Value>>,
    error_rate: Option<Spanned<Value>>,
    cpu: Option<Spanned<Value>>,
    memory: Option<Spanned<Value>>,
    retry_rate: Option<Spanned<Value>>,
    cache_hit_rate: Option<Spanned<Value>>,
    circuit_open: Option<Spanned<Value>>,
    capacity_within: Option<Spanned<Value>>,
    capacity_target: Option<Spanned<Value>>,
    #[serde(default)]
    ops: BTreeMap<String, OpSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpSection {
    p95: Option<Spanned<Value>>,
    p99: Option<Spanned<Value>>,
    error_rate: Option<Spanned<Value>>,
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

    fn latency(&self) -> Result<Option<f64>, String> {
        match self {
            Value::Number(_) => Err("expected a duration string like \"200ms\" (a bare number has no unit)".into()),
            Value::Text(s) => latency(s),
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

/// Milliseconds in a day.
const DAY_MS: f64 = 86_400_000.0;

/// `"90d"` → 90.0 (days); `"off"` → None.
fn days(v: &str) -> Result<Option<f64>, String> {
    match v.trim() {
        "off" => Ok(None),
        t => match humantime::parse_duration(t) {
            Ok(d) if !d.is_zero() => Ok(Some(d.as_secs_f64() * 1000.0 / DAY_MS)),
            _ => Err("expected a duration like \"90d\" or \"12w\", or \"off\"".into()),
        },
    }
}

/// A utilization above 0 and at most 1 (`0.7`, `"70%"`).
fn utilization(v: &str) -> Result<f64, String> {
    match ratio(v) {
        Ok(Some(r)) if r > 0.0 => Ok(r),
        _ => Err("expected a utilization above 0 and at most 1 like 0.7, or a percentage like \"70%\"".into()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Targets, ConfigError> {
        let f = ConfigFile::from_text("config.toml", text);
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Targets::load(Some(&f), &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
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
        let e = load_text("[targets.ops.\"vm.*\"]\n\np95 = 2\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config.toml:3: targets.p95: expected a duration string"), "{e}");
        let e = load_text("[targets]\ncapacity_within = 90\n", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.toml:2: targets.capacity_within: expected a duration like \"90d\" or \"12w\", or \"off\""
        );
        let e = load_text("[targets]\ncapacity_target = 0\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config.toml:2: targets.capacity_target: expected a utilization above 0"), "{e}");
        let t = load_text("[targets]\ncapacity_within = \"12w\"\n", &[("PERFAGENT_TARGETS_CAPACITY_TARGET", "80%")])
            .unwrap();
        assert_eq!((t.capacity_within_days, t.capacity_target), (Some(84.0), 0.8));
        let e = load_text("", &[("PERFAGENT_TARGETS_CPU", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("PERFAGENT_TARGETS_CPU: invalid value 'lots': expected a ratio"), "{e}");
    }
}
