//! cgroup v2 limits and usage, read from `/sys/fs/cgroup` (sysinfo reports memory limits
//! only). Parsing is kept apart from reading so it can be tested on fixture text.

use std::path::{Path, PathBuf};

/// The cgroup directory of this process (`0::/path` in `/proc/self/cgroup`).
pub fn own_dir(root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(root.join(rel.trim_start_matches('/')))
}

/// `cpu.max` ("quota period" or "max period") as cores; None when unlimited.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next()?.parse().ok()?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    Some(quota.parse::<f64>().ok()? / period)
}

/// `memory.max` in bytes; None when unlimited.
pub fn parse_memory_max(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" { None } else { t.parse().ok() }
}

/// `usage_usec` from `cpu.stat`.
pub fn parse_cpu_usage_usec(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("usage_usec ")).and_then(|v| v.trim().parse().ok())
}

/// What one read of the cgroup found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupSample {
    /// CPU limit in cores.
    pub cpu_limit_cores: Option<f64>,
    /// CPU time used by the cgroup, microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// Memory limit, bytes.
    pub memory_limit: Option<u64>,
    /// Memory in use, bytes.
    pub memory_current: Option<u64>,
}

/// Read the cgroup at `dir`; missing files read as unlimited / unknown.
pub fn read(dir: &Path) -> CgroupSample {
    let file = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    CgroupSample {
        cpu_limit_cores: file("cpu.max").as_deref().and_then(parse_cpu_max),
        cpu_usage_usec: file("cpu.stat").as_deref().and_then(parse_cpu_usage_usec),
        memory_limit: file("memory.max").as_deref().and_then(parse_memory_max),
        memory_current: file("memory.current").and_then(|t| t.trim().parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_usage() {
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2.0));
        assert_eq!(parse_cpu_max("50000 100000"), Some(0.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_memory_max("2147483648\n"), Some(2 << 30));
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_cpu_usage_usec("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"), Some(123_456));
        assert_eq!(parse_cpu_usage_usec("nr_periods 0\n"), None);
    }

    #[test]
    fn reads_a_cgroup_folder_and_tolerates_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cpu.max"), "150000 100000\n").unwrap();
        std::fs::write(dir.path().join("memory.current"), "1048576\n").unwrap();
        let s = read(dir.path());
        assert_eq!(s.cpu_limit_cores, Some(1.5));
        assert_eq!(s.memory_current, Some(1 << 20));
        assert_eq!((s.memory_limit, s.cpu_usage_usec), (None, None));
    }
}
