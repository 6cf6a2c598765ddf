//! `perfctl import` of OpenMetrics, CSV and folded files into a real store: every input is
//! imported or refused with an error, never a panic. The first byte picks the format.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use perfctl::import::{Format, Options, run};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let format = match pick % 3 {
        0 => Format::Openmetrics,
        1 => Format::Csv,
        _ => Format::Folded,
    };
    let file = dir().path().join("input");
    std::fs::write(&file, body).expect("write input");
    let db = dir().path().join("fuzz.db");
    let opts = Options {
        file,
        format: Some(format),
        op: Some("fuzz.op".into()),
        service: "fuzz".into(),
        at_ms: 1_795_428_000_000,
        now_ms: 1_795_428_000_000,
    };
    let _ = run(&db, &opts);
    // Keep the store small: a fresh one now and then.
    if std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) > 32 << 20 {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
});
