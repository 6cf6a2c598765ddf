//! The in-process CPU profiler: pprof (framehop unwinder) sampling the whole process, its
//! samples attributed to operations through their marker frames, folded per operation every
//! flush into the store.
//!
//! pprof allows one profiler per process and only resets its table when stopped, so the
//! guard is rebuilt every window. If another profiler already runs in the process, profiling
//! is off for this SDK instance and a log line says so.

use std::collections::BTreeMap;

use perfstore::ProfileWindow;
use perfstore::convention as conv;

use super::markers;

/// Frames that are the sampling machinery (at the leaf end) or the SDK's own plumbing, not
/// the app's code.
fn machinery(name: &str) -> bool {
    name.starts_with("pprof::")
        || name.starts_with("backtrace::")
        || name.starts_with("framehop::")
        || name.contains("__restore_rt")
        || name.starts_with("perfagent::sdk::")
        || name.starts_with("<perfagent::sdk::")
        || name.starts_with("core::ops::function::")
        || name.starts_with("<core::pin::Pin<")
}

/// Drop a trailing `::h0123456789abcdef` hash from a demangled name.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => head,
        _ => name,
    }
}

/// The operation id of a stack (leaf first) from its innermost complete marker pair, and the
/// index of that pair's inner marker (where the operation's own frames begin).
pub(crate) fn op_of(frames_leaf_first: &[String]) -> Option<(u32, usize)> {
    let mut lo = None;
    for (i, f) in frames_leaf_first.iter().enumerate() {
        match (markers::parse(f), lo) {
            (Some((0, d)), None) => lo = Some((d, i)),
            (Some((1, d)), Some((l, at))) => return Some((d * 64 + l, at)),
            _ => {}
        }
    }
    None
}

/// Samples of one window, folded per operation: `op → (stack root first → samples)`.
pub(crate) fn fold(
    stacks: impl IntoIterator<Item = (Vec<String>, u64)>,
    op_names: &[String],
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (leaf_first, n) in stacks {
        let found = op_of(&leaf_first);
        let op = found.and_then(|(id, _)| op_names.get(id as usize)).map_or(conv::NO_OP, String::as_str);
        // Where the operation begins, root first: its inner marker becomes one boundary frame.
        let boundary = found.filter(|_| op != conv::NO_OP).map(|(_, at)| leaf_first.len() - 1 - at);
        let root_first: Vec<&str> = leaf_first.iter().rev().map(|f| strip_hash(f)).collect();
        let frames: Vec<&str> = root_first
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                if Some(i) == boundary {
                    return Some(conv::OPERATION_FRAME);
                }
                let keep = !machinery(f)
                    && markers::parse(f).is_none()
                    && !(markers::is_enter(f)
                        && root_first.get(i + 1).is_some_and(|n| matches!(markers::parse(n), Some((1, _)))));
                keep.then_some(*f)
            })
            .collect();
        if frames.is_empty() || n == 0 {
            continue;
        }
        *out.entry(op.to_owned()).or_default().entry(frames.join(";")).or_default() += n;
    }
    out
}

/// The profiler of one SDK instance.
pub(crate) struct Profiler {
    hz: i32,
    service: String,
    guard: Option<pprof::ProfilerGuard<'static>>,
    window_start_ms: i64,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler").field("hz", &self.hz).field("running", &self.guard.is_some()).finish()
    }
}

impl Profiler {
    pub(crate) fn new(hz: i32, service: String) -> Self {
        let mut p = Self { hz, service, guard: None, window_start_ms: crate::clock::now_ms() };
        if !p.restart() {
            log::warn!(
                "SDK: the CPU profiler could not start (another profiler runs in this process?); profiling is off"
            );
        }
        p
    }

    fn restart(&mut self) -> bool {
        self.window_start_ms = crate::clock::now_ms();
        match pprof::ProfilerGuardBuilder::default()
            .frequency(self.hz)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(g) => {
                self.guard = Some(g);
                true
            }
            Err(_) => false,
        }
    }

    /// Close the window: fold its samples per operation, and start the next one unless
    /// `last`.
    pub(crate) fn window(&mut self, op_names: &[String], now_ms: i64, last: bool) -> Vec<ProfileWindow> {
        let Some(guard) = self.guard.take() else { return Vec::new() };
        let report = guard.report().build();
        drop(guard); // stops sampling and resets pprof's table
        let start = self.window_start_ms;
        if !last {
            self.restart();
        }
        let Ok(report) = report else { return Vec::new() };
        let stacks = report.data.into_iter().map(|(frames, n)| {
            let names: Vec<String> = frames.frames.iter().flatten().map(pprof::Symbol::name).collect();
            (names, u64::try_from(n).unwrap_or(0))
        });
        fold(stacks, op_names)
            .into_iter()
            .map(|(op, stacks)| ProfileWindow {
                service: self.service.clone(),
                op,
                start_ms: start,
                end_ms: now_ms.max(start + 1),
                stacks: stacks.into_iter().map(|(frames, samples)| perfstore::Stack { frames, samples }).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_fold_per_operation_without_machinery() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let names = vec!["vm.list".to_owned(), "vm.start".to_owned()];
        let stacks = vec![
            (
                s(&[
                    "pprof::profiler::perf_signal_handler::h0123456789abcdef",
                    "app::parse_page::h0123456789abcdef",
                    "perfagent::sdk::markers::m0_00::h0123456789abcdef",
                    "perfagent::sdk::markers::m1_00::h0123456789abcdef",
                    "enter",
                    "app::main",
                ]),
                3,
            ),
            (s(&["app::boot", "m0_01", "{closure#0}", "m1_00", "enter", "app::main"]), 2),
            (s(&["app::idle", "app::main"]), 1),
        ];
        let f = fold(stacks, &names);
        // The operation's inner marker stays as one boundary frame; the rest of the SDK's frames go.
        assert_eq!(f["vm.list"], BTreeMap::from([("app::main;[operation];app::parse_page".to_owned(), 3)]));
        assert_eq!(f["vm.start"], BTreeMap::from([("app::main;{closure#0};[operation];app::boot".to_owned(), 2)]));
        assert_eq!(f["(none)"], BTreeMap::from([("app::main;app::idle".to_owned(), 1)]));
    }
}
