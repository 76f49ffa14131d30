//! Codes (from the authenticator app, or recovery codes) are read from the
//! terminal, or from standard input when that is not a terminal; never from
//! the command line, which every process on the computer can read in the
//! process list, and a process of yours could spend before you do.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};

/// `--totp` and `--recovery` take no value: given alone they say which kind
/// of code to ask for. A value is refused before anything is sent.
pub fn refuse_on_command_line(flag: &str, given: Option<&str>) -> Result<()> {
    if given.is_some_and(|v| !v.is_empty()) {
        bail!(
            "{flag} takes no code on the command line: every program on this computer can read a command line (the process list shows it) and use the code before you, so other programs may have seen this one: wait for the next code. Give {flag} alone and type the code when asked, or send it on standard input"
        );
    }
    Ok(())
}

/// Reads a code: without echo from the terminal, or the next line of
/// standard input.
pub fn read_code(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let code = rpassword::prompt_password(prompt).context("could not read the code")?;
        return Ok(code.trim().to_string());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the code from standard input")?;
    Ok(line.trim().to_string())
}
