//! The cassette reader on arbitrary bytes: every record and error, then each interaction
//! decoded the way `run` and `check` decode it. Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::cassette::{CassetteReader, Record};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CassetteReader::new(data, "fuzz.jsonl") else {
        return;
    };
    let api = reader.header().api;
    for item in reader.by_ref() {
        if let Ok(Record::Interaction(i)) = item {
            let _ = i.check_decodable(api);
            let _ = i.decode(api);
        }
    }
    let _ = reader.truncation();
});
