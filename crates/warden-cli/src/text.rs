//! Text from servers and agents, made safe for a terminal.
//!
//! Tool names, descriptions, arguments and log fields come from servers and
//! agents, which may be hostile. A terminal obeys control characters: ESC
//! sequences can hide the lines after them, move the cursor or retitle the
//! window, and bidi overrides show text in another order than it is. Every
//! such character is shown as a visible escape instead (`\x1b`, `\u{202e}`),
//! so what a person reads is what the server sent.

use std::borrow::Cow;
use std::fmt::Write;

/// Bidirectional formatting characters (Unicode's Bidi_Control property).
fn bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no room: zero-width spaces and joiners, the word
/// joiner and invisible operators, the byte-order mark, and the tag block
/// (which can spell out hidden text).
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{e0000}'..='\u{e007f}')
}

fn unsafe_char(c: char, keep_newlines: bool) -> bool {
    (c.is_control() && !(keep_newlines && c == '\n'))
        || bidi(c)
        || invisible(c)
        || matches!(c, '\u{2028}' | '\u{2029}')
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c, keep_newlines) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// One field on one line: every control character escaped, newlines too.
pub fn safe(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Text of several lines (a diff, pretty JSON): newlines kept, every other
/// control character escaped.
pub fn safe_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(safe("delete_all\x1b[8m"), "delete_all\\x1b[8m");
        assert_eq!(safe("a\nb\rc\u{7}"), "a\\x0ab\\x0dc\\x07");
        assert_eq!(safe("harmless\u{202e}txt.exe"), "harmless\\u{202e}txt.exe");
        assert_eq!(safe("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(
            safe_lines("+ one\n+ two\x1b]0;owned\x07"),
            "+ one\n+ two\\x1b]0;owned\\x07"
        );
        assert!(matches!(safe("read_file"), Cow::Borrowed(_)));
        assert_eq!(safe("naïve 日本"), "naïve 日本");
        assert_eq!(safe("ok\u{200b}\u{e0041}"), "ok\\u{200b}\\u{e0041}");
    }
}
