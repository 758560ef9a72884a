//! Any line as a control-socket request: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tollgate_control::ctl::proto::parse_request(s);
    }
});
