//! JSON-RPC framing and parsing as every transport receives it: one message
//! (HTTP body, stdio line), then its params as the gateway reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden_gateway::jsonrpc::{Envelope, Params};

fuzz_target!(|data: &[u8]| {
    // Every HTTP body is checked for duplicate keys and depth first.
    let _ = warden_gateway::jsonrpc::check_unique_keys(data);
    // stdio frames are lines; HTTP bodies are whole. Both end up here.
    for frame in std::iter::once(data).chain(data.split(|b| *b == b'\n')) {
        if let Ok(env) = Envelope::parse(frame) {
            let _ = env.kind();
            if let Ok(p) = env.params_map() {
                let _ = p.str("name");
                let meta = p.meta();
                let _ = meta.str("progressToken");
                let _ = p.to_raw();
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Params::parse(s);
    }
});
