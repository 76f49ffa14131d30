//! Grant patterns against tool names: no panic, no runaway time, and the
//! rules hold (an exact name matches itself, `*` matches everything).
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden_policy::{Access, Effect, Grant, Target, glob, validate_pattern};

fuzz_target!(|data: (&str, &str)| {
    let (pattern, name) = data;
    let _ = validate_pattern(pattern);
    let m = glob(pattern, name);
    if pattern == name {
        assert!(m || pattern.contains(['*', '?']), "an exact name matches itself");
    }
    assert!(glob("*", name), "* must match {name:?}");
    let a = Access::new(vec![Grant { server: "s".into(), pattern: pattern.into(), effect: Effect::Allow, explicit: false }]);
    let _ = a.decide("s", Target::Tool(name));
    let _ = a.decide("s", Target::Resource(name));
});
