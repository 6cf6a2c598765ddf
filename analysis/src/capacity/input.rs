//! What capacity projects: each resource's hourly history and its capacity, read from a store.

use std::collections::BTreeMap;
use std::path::Path;

use perfstore::convention::{self as conv, Direction, tag};
use perfstore::{Point, Selector, SeriesInfo, Snapshot, TimeRange};
use serde::Deserialize;

use super::{HOUR_MS, Input, Options};
use crate::config::{ConfigError, ConfigFile};

/// Capacities of resources with no natural 100 %.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacities {
    /// Calls per second.
    pub rps: Option<f64>,
    /// Network bytes per second.
    pub net_bytes_per_s: Option<f64>,
}

fn parse_rate(v: &str) -> Option<f64> {
    let v = v.trim();
    let units: [(&str, f64); 8] = [
        ("Gbit", 1e9 / 8.0),
        ("Mbit", 1e6 / 8.0),
        ("Kbit", 1e3 / 8.0),
        ("bit", 1.0 / 8.0),
        ("GB", 1e9),
        ("MB", 1e6),
        ("KB", 1e3),
        ("B", 1.0),
    ];
    units.iter().find_map(|(u, f)| {
        v.strip_suffix(u).map(|n| n.trim().parse::<f64>().ok().filter(|x| *x > 0.0).map(|x| x * f))
    })?
}

fn parse_rps(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| *x > 0.0 && x.is_finite())
}

const CAPACITY_FORM: &str = "expected rps=500 or net=1Gbit (bit, Kbit, Mbit, Gbit, or B, KB, MB, GB per second)";

/// Parse `--capacity rps=500,net=1Gbit`.
pub fn parse_capacities(s: &str) -> Result<Capacities, String> {
    let mut c = Capacities::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid '{part}': {CAPACITY_FORM}");
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        match k.trim() {
            "rps" => c.rps = Some(parse_rps(v).ok_or_else(bad)?),
            "net" => c.net_bytes_per_s = Some(parse_rate(v).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(c)
}

/// A capacity as written in `[capacity]`: a number or a string (`"1Gbit"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Amount {
    Number(f64),
    Text(String),
}

impl Amount {
    fn text(&self) -> String {
        match self {
            Amount::Number(n) => n.to_string(),
            Amount::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    rps: Option<toml::Spanned<Amount>>,
    net: Option<toml::Spanned<Amount>>,
}

impl Capacities {
    /// `[capacity]` of the config file: `rps = 500`, `net = "1Gbit"`.
    pub fn from_config(file: Option<&ConfigFile>) -> Result<Self, ConfigError> {
        let mut c = Capacities::default();
        let Some(f) = file else { return Ok(c) };
        let Some(s) = f.section::<Section>("capacity")? else { return Ok(c) };
        let bad = |key: &str, v: &toml::Spanned<Amount>| {
            f.error_at(v.span().start, format!("capacity.{key}: invalid '{}': {CAPACITY_FORM}", v.get_ref().text()))
        };
        if let Some(v) = &s.rps {
            c.rps = Some(parse_rps(&v.get_ref().text()).ok_or_else(|| bad("rps", v))?);
        }
        if let Some(v) = &s.net {
            c.net_bytes_per_s = Some(parse_rate(&v.get_ref().text()).ok_or_else(|| bad("net", v))?);
        }
        Ok(c)
    }
}

/// One resource before projection.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInput {
    /// `cpu`, `memory`, `disk:/`, `network`, `requests`.
    pub name: String,
    /// `cores`, `bytes`, `bytes/s`, `calls/s`.
    pub unit: String,
    /// 100 %, when known.
    pub capacity: Option<f64>,
    /// Hourly means `(hour start ms, value)`, oldest first.
    pub history: Vec<(i64, f64)>,
    /// Anything to know about it.
    pub note: Option<String>,
}

/// Hourly values of several series added together (e.g. one gauge; or the interfaces of a
/// counter, per second), complete hours only.
fn hourly(
    snap: &Snapshot<'_>,
    series: &[&SeriesInfo],
    range: TimeRange,
    f: impl Fn(&Point) -> Option<f64>,
) -> crate::Result<Vec<(i64, f64)>> {
    let mut by_hour: BTreeMap<i64, f64> = BTreeMap::new();
    for s in series {
        for (t, p) in snap.range(s, range, HOUR_MS)?.steps {
            if let Some(v) = f(&p) {
                *by_hour.entry(t).or_default() += v;
            }
        }
    }
    Ok(by_hour.into_iter().collect())
}

/// Read each resource's hourly history for `o` from a snapshot of the store at `db`.
pub fn gather(snap: &Snapshot<'_>, db: &Path, o: &Options) -> crate::Result<Input> {
    let range = o.range();
    let all = snap.series(&Selector::default())?;
    let named = |m: &conv::Metric| all.iter().filter(|s| s.key.name == m.name).collect::<Vec<_>>();
    let last_of = |m: &conv::Metric| -> crate::Result<Option<f64>> {
        let mut best: Option<Point> = None;
        for s in named(m) {
            if let Some(p) = snap.aggregate(s, range)?
                && best.as_ref().is_none_or(|b| p.last_ts_ms > b.last_ts_ms)
            {
                best = Some(p);
            }
        }
        Ok(best.map(|p| p.last))
    };
    let avg = |p: &Point| p.avg();
    let mut out = Vec::new();
    let cores = last_of(&conv::CONTAINER_CPU_LIMIT)?.or(last_of(&conv::SYSTEM_CPU_LOGICAL_COUNT)?);
    let cpu = hourly(snap, &named(&conv::SYSTEM_CPU_UTILIZATION), range, avg)?;
    if !cpu.is_empty() {
        let c = cores.unwrap_or(1.0);
        out.push(ResourceInput {
            name: "cpu".into(),
            unit: "cores".into(),
            capacity: Some(c),
            history: cpu.into_iter().map(|(t, u)| (t, u * c)).collect(),
            note: cores.is_none().then(|| "core count not recorded: utilization of one core".to_string()),
        });
    }
    let mem = hourly(snap, &named(&conv::SYSTEM_MEMORY_USAGE), range, avg)?;
    if !mem.is_empty() {
        let limit = last_of(&conv::SYSTEM_MEMORY_LIMIT)?;
        out.push(ResourceInput {
            name: "memory".into(),
            unit: "bytes".into(),
            capacity: limit,
            history: mem,
            note: None,
        });
    }
    out.extend(disks(snap, &all, range)?);
    out.extend(network(snap, &named(&conv::SYSTEM_NETWORK_IO), range, o)?);
    let calls = hourly(snap, &named(&conv::OP_DURATION), range, |p| Some(p.count / 3600.0))?;
    if !calls.is_empty() {
        let note = o.capacities.rps.is_none().then(|| "no capacity: pass --capacity rps=N".to_string());
        out.push(ResourceInput {
            name: "requests".into(),
            unit: "calls/s".into(),
            capacity: o.capacities.rps,
            history: calls,
            note,
        });
    }
    Ok(Input { db: db.display().to_string(), newest_ms: snap.newest_ms()?, resources: out })
}

fn disks(snap: &Snapshot<'_>, all: &[SeriesInfo], range: TimeRange) -> crate::Result<Vec<ResourceInput>> {
    let mut mounts: Vec<&str> = all
        .iter()
        .filter(|s| s.key.name == conv::SYSTEM_FILESYSTEM_USAGE.name)
        .filter_map(|s| s.key.get(tag::MOUNTPOINT))
        .collect();
    mounts.sort_unstable();
    mounts.dedup();
    let mut out = Vec::new();
    for m in mounts {
        let pick = |metric: &conv::Metric| {
            all.iter()
                .filter(|s| s.key.name == metric.name && s.key.get(tag::MOUNTPOINT) == Some(m))
                .collect::<Vec<_>>()
        };
        let used = hourly(snap, &pick(&conv::SYSTEM_FILESYSTEM_USAGE), range, Point::avg)?;
        let util = hourly(snap, &pick(&conv::SYSTEM_FILESYSTEM_UTILIZATION), range, Point::avg)?;
        let size = used.last().zip(util.last()).filter(|(_, u)| u.1 > 0.0).map(|(b, u)| b.1 / u.1);
        if !used.is_empty() {
            out.push(ResourceInput {
                name: format!("disk:{m}"),
                unit: "bytes".into(),
                capacity: size,
                history: used,
                note: None,
            });
        }
    }
    Ok(out)
}

fn network(
    snap: &Snapshot<'_>,
    series: &[&SeriesInfo],
    range: TimeRange,
    o: &Options,
) -> crate::Result<Option<ResourceInput>> {
    let series: Vec<&SeriesInfo> = series.iter().copied().filter(|s| s.key.get(tag::DEVICE) != Some("lo")).collect();
    if series.is_empty() {
        return Ok(None);
    }
    let dir = |d: Direction| {
        series.iter().copied().filter(|s| s.key.get(tag::DIRECTION) == Some(d.as_str())).collect::<Vec<_>>()
    };
    let rx = hourly(snap, &dir(Direction::Receive), range, |p| Some(p.sum / 3600.0))?;
    let tx = hourly(snap, &dir(Direction::Transmit), range, |p| Some(p.sum / 3600.0))?;
    let mut busier: BTreeMap<i64, f64> = rx.into_iter().collect();
    for (t, v) in tx {
        let e = busier.entry(t).or_default();
        *e = e.max(v);
    }
    Ok(Some(ResourceInput {
        name: "network".into(),
        unit: "bytes/s".into(),
        capacity: o.capacities.net_bytes_per_s,
        history: busier.into_iter().collect(),
        note: o.capacities.net_bytes_per_s.is_none().then(|| "no capacity: pass --capacity net=1Gbit".to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_flags_and_config_parse() {
        let c = parse_capacities("rps=500, net=1Gbit").unwrap();
        assert_eq!(c, Capacities { rps: Some(500.0), net_bytes_per_s: Some(125_000_000.0) });
        assert_eq!(parse_capacities("net=100MB").unwrap().net_bytes_per_s, Some(1e8));
        assert!(parse_capacities("cpu=4").unwrap_err().starts_with("invalid 'cpu=4': expected rps=500 or net=1Gbit"));
        let f = ConfigFile::from_text("c.toml", "[capacity]\nrps = 40\nnet = \"10Mbit\"\n");
        assert_eq!(
            Capacities::from_config(Some(&f)).unwrap(),
            Capacities { rps: Some(40.0), net_bytes_per_s: Some(1.25e6) }
        );
        let f = ConfigFile::from_text("c.toml", "[capacity]\n\nnet = \"fast\"\n");
        let e = Capacities::from_config(Some(&f)).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3: capacity.net: invalid 'fast': expected"), "{e}");
    }
}
