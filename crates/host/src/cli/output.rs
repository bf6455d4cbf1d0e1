//! Printing results: text for people by default, JSON with `--json`.

use std::io::Write;

use serde::Serialize;

use super::settings::OutputFormat;

/// Prints one result in the chosen format.
pub fn emit<T: Serialize>(format: OutputFormat, value: &T, human: impl FnOnce(&T) -> String) {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"could not encode output: {e}\"}}")),
        OutputFormat::Human => human(value),
    };
    print_line(&text);
}

/// Prints one JSON value on one line (streams such as `deliver`).
pub fn emit_line<T: Serialize>(value: &T) {
    let text = serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"could not encode output: {e}\"}}"));
    print_line(&text);
}

/// Writes a line to stdout and flushes, ignoring a closed pipe (`| head`).
pub fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Formats an optional value for people (`-` when absent).
pub fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Text safe to show on a terminal: control characters (ESC, BEL, CR, LF,
/// …) and invisible format characters (bidi overrides, zero-width) become
/// spaces, so a guest-written string can neither move the cursor, retitle
/// the window, nor reorder what is shown. Every guest-controlled string
/// printed for people goes through this.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Shortens `text` to `max` characters for one-line listings ([`clean`] first).
pub fn clip(text: &str, max: usize) -> String {
    let flat = clean(text);
    if flat.chars().count() <= max {
        flat
    } else {
        let mut clipped: String = flat.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_bidi_overrides_are_neutralised() {
        let hostile = "a\u{1b}]0;title\u{7}b\u{1b}[2Jc\u{202e}d\u{9b}e";
        assert_eq!(clean(hostile), "a ]0;title b [2Jc d e");
        assert_eq!(clip(hostile, 4), "a ]…");
        assert_eq!(clean("plain é 漢字"), "plain é 漢字");
    }
}
