#![no_main]
use libfuzzer_sys::fuzz_target;

// Playback control bodies (INFO, Application/MANSRTSP): no panic, and what parses is built back
// into a body that parses to the same command.
fuzz_target!(|data: &[u8]| {
    if let Ok(c) = gb::mansrtsp::parse(data) {
        let again = gb::mansrtsp::parse(&gb::mansrtsp::build(&c));
        assert_eq!(again, Ok(c), "what we write we must read back");
    }
});
