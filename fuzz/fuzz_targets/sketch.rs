//! Quantile sketch blobs: decoding never panics; a decoded sketch answers quantiles and
//! merges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfstore::Sketch;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut s) = Sketch::decode(data) {
        for q in [0.0, 0.5, 0.99, 1.0] {
            let _ = s.quantile(q);
        }
        let copy = s.clone();
        s.merge(&copy);
        let _ = Sketch::decode(&s.encode());
    }
});
