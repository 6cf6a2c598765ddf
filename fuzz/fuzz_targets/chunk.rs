//! Chunk blobs as a damaged file could hold them: decoding never panics and never allocates
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(points) = perfstore::chunk::decode(data) {
        // What decodes can be written again.
        let _ = perfstore::chunk::encode_agg(&points);
    }
});
