//! Helpers for the end-to-end tests in `tests/tests/`, which run the real `perfagent` and
//! `perfctl` binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A workspace binary, built (or brought up to date) once per test process with the same
/// cargo and profile, so `cargo test -p perf-e2e` alone never runs stale binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bins", "-p", "perfctl", "-p", "perfagent"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    dir.join(name)
}
