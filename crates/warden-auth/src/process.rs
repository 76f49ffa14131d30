//! Keeping this process's memory from the other processes of its own OS
//! user.
//!
//! While it runs, Warden holds what decides who is a person: session
//! tokens, passwords while they are checked, secrets read from the keychain.
//! On Linux any process of the same user may attach to another with ptrace
//! or read its `/proc/PID/mem`, `environ` and open files, unless the target
//! is not "dumpable" (or the machine's Yama `ptrace_scope` forbids it, which
//! Warden cannot count on). [`harden`] clears the dumpable flag, so the
//! kernel refuses those to every process but root's; it also means no core
//! dump is written. The flag is not inherited across `exec`, so the servers
//! Warden starts are unaffected.
//!
//! macOS and Windows have no switch of this kind that a same-user debugger
//! respects (`PT_DENY_ATTACH` is advisory to the attaching tool), so there
//! this does nothing; the README's threat model says so.

/// Makes this process refuse same-user tracing and memory reads, where the
/// platform offers that. Call first thing in `main`.
pub fn harden() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_dumpable(false).map_err(|e| {
            format!("could not keep this process's memory from other processes ({e})")
        })?;
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_is_not_dumpable_after_harden() {
        assert!(
            nix::sys::prctl::get_dumpable().expect("get"),
            "a test starts dumpable"
        );
        super::harden().expect("harden");
        assert!(!nix::sys::prctl::get_dumpable().expect("get"));
    }
}
