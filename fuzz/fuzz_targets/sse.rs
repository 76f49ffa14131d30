//! Server-sent events from remote servers, fed in arbitrary chunks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden_gateway::sse::Parser;

fuzz_target!(|data: &[u8]| {
    let mut whole = Parser::new(64 * 1024);
    let _ = whole.feed(data);
    // The same bytes in small pieces must not panic either.
    let mut pieces = Parser::new(64 * 1024);
    for chunk in data.chunks(7) {
        if pieces.feed(chunk).is_err() {
            break;
        }
    }
});
