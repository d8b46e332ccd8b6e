//! vcrpy import on arbitrary YAML. Never a panic: every problem is an ImportError.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::cassette::import::import_yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = import_yaml(text, std::path::Path::new("fuzz.yaml"));
});
