//! The scenario loader on arbitrary text. Never a panic: every problem is a ScenarioError.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::scenario::{parse_str, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_str(text, std::path::Path::new("fuzz.toml"), &LoadOptions::default());
});
