//! libFuzzer target: the incremental chunked-body decoder. The checks live in
//! `maitred_fuzz::check_chunked` so the stable `replay` driver runs exactly the same ones.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maitred_fuzz::check_chunked(data);
});
