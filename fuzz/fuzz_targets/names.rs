//! The tool-name codec: any server and tool name gives a valid, stable name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden_gateway::names;

fuzz_target!(|data: (&str, &str)| {
    let (server, tool) = data;
    // Server names are checked when an admin adds them.
    if warden_gateway::config::validate_server_name(server).is_err() {
        return;
    }
    let exposed = names::expose(server, tool);
    assert!(names::is_valid(&exposed), "{exposed:?} is not a valid tool name");
    assert_eq!(exposed, names::expose(server, tool), "the codec is stable");
});
