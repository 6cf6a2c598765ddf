//! Folded stacks (`frame;frame;… COUNT`), as uploads and imports bring them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(stacks) = perfstore::parse_folded(text) {
            for s in stacks {
                assert!(!s.frames.chars().any(char::is_control), "{s:?}");
            }
        }
    }
});
