//! The host sampler: CPU, load, memory, swap, filesystems, disk and network I/O, and the
//! agent's own CPU and memory, once per flush, under OpenTelemetry names and base units
//! (`system.cpu.utilization` is a 0–1 ratio, sizes are bytes, I/O counters are per-interval
//! byte deltas), with `service="host"`.
//!
//! One long-lived sysinfo `System` (creating one per sample is slow and leaks threads on
//! some platforms), refreshed once at start so CPU utilization is right from the first
//! sample. In a cgroup with limits, CPU and memory utilization are relative to the limits,
//! which are recorded too (`container.cpu.limit`, `system.memory.limit`).

pub mod cgroup;
pub mod netdev;
pub mod own;

use std::collections::HashMap;
use std::path::PathBuf;

use perfstore::convention::{self as conv, Direction, Metric, tag};
use perfstore::{Sample, SeriesKey};
use sysinfo::{Disks, System};

pub use perfstore::convention::HOST_SERVICE;

/// Samples the host; owned by the store's writer thread (only the lock holder samples).
#[derive(Debug)]
pub struct Sampler {
    system: System,
    disks: Disks,
    cgroup_dir: Option<PathBuf>,
    last_ms: i64,
    last_cgroup_usec: Option<u64>,
    last_process_cpu_ms: Option<u64>,
    last_disk_io: HashMap<String, (u64, u64)>,
    last_net_io: HashMap<String, (u64, u64)>,
}

fn gauge(m: &Metric, v: f64) -> (SeriesKey, Sample) {
    (m.key(HOST_SERVICE), Sample::Gauge { last: v, min: v, max: v })
}

/// A per-interval delta of a cumulative counter; a counter that went backwards restarted.
fn delta(prev: Option<u64>, now: u64) -> Option<u64> {
    prev.map(|p| if now >= p { now - p } else { now })
}

/// Per-interval byte counters for both directions of one device, from cumulative totals.
fn push_io(
    out: &mut Vec<(SeriesKey, Sample)>,
    m: &Metric,
    device: &str,
    directions: [Direction; 2],
    prev: Option<(u64, u64)>,
    now: (u64, u64),
) {
    let pairs = [(now.0, prev.map(|p| p.0)), (now.1, prev.map(|p| p.1))];
    for (dir, (total, before)) in directions.into_iter().zip(pairs) {
        if let Some(d) = delta(before, total) {
            let k = m.key(HOST_SERVICE).label(tag::DEVICE, device).label(tag::DIRECTION, dir.as_str());
            out.push((k, Sample::Counter(d as f64)));
        }
    }
}

impl Sampler {
    /// Build the sampler and take the warm-up reading. None where sysinfo cannot read this
    /// platform.
    pub fn new(now_ms: i64) -> Option<Self> {
        let mut system = System::new().ok()?;
        system.refresh_cpu_usage();
        system.refresh_memory();
        let mut s = Self {
            system,
            disks: Disks::new_with_refreshed_list().ok()?,
            cgroup_dir: cgroup::own_dir(std::path::Path::new("/sys/fs/cgroup")),
            last_ms: now_ms,
            last_cgroup_usec: None,
            last_process_cpu_ms: None,
            last_disk_io: HashMap::new(),
            last_net_io: HashMap::new(),
        };
        // Prime the counters so the first sample has deltas.
        let _ = s.sample(now_ms);
        Some(s)
    }

    /// Read everything once; `now_ms` is the interval the points belong to.
    pub fn sample(&mut self, now_ms: i64) -> Vec<(SeriesKey, Sample)> {
        let mut out = Vec::with_capacity(32);
        let elapsed_s = ((now_ms - self.last_ms).max(1)) as f64 / 1000.0;
        self.last_ms = now_ms;
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let cg = self.cgroup_dir.as_deref().map(cgroup::read).unwrap_or_default();
        let logical = self.system.cpus().len().max(1) as f64;

        // CPU: relative to the cgroup's limit when there is one.
        let host_util = f64::from(self.system.global_cpu_usage()) / 100.0;
        let util = match (cg.cpu_limit_cores, cg.cpu_usage_usec) {
            (Some(limit), Some(usec)) => {
                let used = delta(self.last_cgroup_usec, usec).map(|d| d as f64 / 1e6 / elapsed_s / limit);
                self.last_cgroup_usec = Some(usec);
                used
            }
            _ => Some(host_util),
        };
        if let Some(u) = util {
            out.push(gauge(&conv::SYSTEM_CPU_UTILIZATION, u.clamp(0.0, 1.0)));
        }
        out.push(gauge(&conv::SYSTEM_CPU_LOGICAL_COUNT, logical));
        if let Some(limit) = cg.cpu_limit_cores {
            out.push(gauge(&conv::CONTAINER_CPU_LIMIT, limit));
        }
        if let Ok(load) = System::load_average() {
            out.push(gauge(&conv::SYSTEM_CPU_LOAD_AVERAGE_1M, load.one));
        }

        // Memory: the cgroup's limit and usage when limited.
        let total = self.system.total_memory();
        let (used, limit) = match (cg.memory_limit, cg.memory_current) {
            (Some(limit), Some(current)) if limit < total => (current, limit),
            _ => (self.system.used_memory(), total),
        };
        out.push(gauge(&conv::SYSTEM_MEMORY_USAGE, used as f64));
        out.push(gauge(&conv::SYSTEM_MEMORY_LIMIT, limit as f64));
        out.push(gauge(&conv::SYSTEM_MEMORY_LINUX_AVAILABLE, self.system.available_memory() as f64));
        if limit > 0 {
            out.push(gauge(&conv::SYSTEM_MEMORY_UTILIZATION, used as f64 / limit as f64));
        }
        out.push(gauge(&conv::SYSTEM_PAGING_USAGE, self.system.used_swap() as f64));

        // Filesystems and disk I/O.
        self.disks.refresh(true);
        for d in self.disks.iter() {
            let mount = d.mount_point().display().to_string();
            let total = d.total_space();
            if total == 0 {
                continue;
            }
            let used = total.saturating_sub(d.available_space());
            let key = |m: &Metric, v: f64| {
                let (k, s) = gauge(m, v);
                (k.label(tag::MOUNTPOINT, &mount), s)
            };
            out.push(key(&conv::SYSTEM_FILESYSTEM_USAGE, used as f64));
            out.push(key(&conv::SYSTEM_FILESYSTEM_UTILIZATION, used as f64 / total as f64));
            let usage = d.usage();
            let device = d.name().to_string_lossy().to_string();
            let now = (usage.total_read_bytes, usage.total_written_bytes);
            let prev = self.last_disk_io.insert(device.clone(), now);
            push_io(&mut out, &conv::SYSTEM_DISK_IO, &device, [Direction::Read, Direction::Write], prev, now);
        }

        // Network I/O per interface (cumulative totals, so a long gap cannot double count).
        for (device, rx, tx) in netdev::read(std::path::Path::new("/proc/net/dev")) {
            let now = (rx, tx);
            let prev = self.last_net_io.insert(device.clone(), now);
            push_io(&mut out, &conv::SYSTEM_NETWORK_IO, &device, [Direction::Receive, Direction::Transmit], prev, now);
        }

        // The agent itself.
        if let Some((cpu_ms, rss)) = own::read(std::path::Path::new("/proc/self/stat")) {
            out.push(gauge(&conv::PROCESS_MEMORY_USAGE, rss as f64));
            if let Some(d) = delta(self.last_process_cpu_ms, cpu_ms) {
                let k = conv::PROCESS_CPU_TIME.key(HOST_SERVICE);
                out.push((k, Sample::Counter(d as f64 / 1000.0)));
            }
            self.last_process_cpu_ms = Some(cpu_ms);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_sane_and_counters_are_deltas() {
        let Some(mut s) = Sampler::new(0) else { return }; // a platform sysinfo cannot read
        // Burn a little CPU so the agent's own CPU time moves.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let points = s.sample(1000);
        let find = |name: &str| points.iter().find(|(k, _)| k.name == name).map(|(_, v)| v.clone());
        let Some(Sample::Gauge { last: util, .. }) = find(conv::SYSTEM_CPU_UTILIZATION.name) else {
            panic!("{points:?}")
        };
        assert!((0.0..=1.0).contains(&util), "{util}");
        let Some(Sample::Gauge { last: used, .. }) = find(conv::SYSTEM_MEMORY_USAGE.name) else { panic!() };
        let Some(Sample::Gauge { last: limit, .. }) = find(conv::SYSTEM_MEMORY_LIMIT.name) else { panic!() };
        assert!(used > 0.0 && used <= limit, "{used} of {limit}");
        let Some(Sample::Gauge { last: rss, .. }) = find(conv::PROCESS_MEMORY_USAGE.name) else { panic!() };
        assert!(rss > 1e6, "the test process uses more than 1 MB: {rss}");
        assert!(points.iter().all(|(k, _)| k.service() == HOST_SERVICE));
        for (k, v) in &points {
            if let Sample::Counter(d) = v {
                assert!(*d >= 0.0, "{k}: {d}");
            }
        }
    }

    #[test]
    fn counter_deltas_survive_restarts() {
        assert_eq!(delta(None, 10), None);
        assert_eq!(delta(Some(10), 25), Some(15));
        assert_eq!(delta(Some(100), 7), Some(7), "a counter that went back restarted");
    }
}
