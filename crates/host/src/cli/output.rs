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

/// Shortens `text` to `max` characters for one-line listings.
pub fn clip(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut clipped: String = flat.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}
