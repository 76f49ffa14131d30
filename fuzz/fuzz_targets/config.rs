//! Configuration files: any text gives a configuration or a clear error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = warden_gateway::config::Config::parse(text, "fuzz.toml") {
            for (name, spec) in &c.servers {
                let _ = spec.validate(name);
                let _ = spec.consent_hash();
                let _ = spec.command_line();
            }
        }
    }
});
