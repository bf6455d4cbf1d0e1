//! Attachment file names: derivation from message metadata and the safety check.
//!
//! Chat platforms send attacker-chosen file names, and the guest chooses the
//! names of its outbox files. An [`AttachmentName`] can only be built from a
//! string that passes [`check_name`], so holding one means the name is a single
//! harmless path component on every file system a session may live on
//! (including case-insensitive, Windows-like and NFD-normalising ones) and
//! cannot spoof its extension or forge log lines.

use std::collections::HashSet;
use std::fmt;

use unicode_normalization::is_nfc;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::ids::escape_for_log;

/// Longest name accepted, in bytes (`NAME_MAX` on Linux and macOS).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a string was refused as an attachment name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`.
    DotName,
    /// The name contains `/`.
    Slash,
    /// The name contains `\`.
    Backslash,
    /// The name contains a NUL byte.
    Nul,
    /// The name is not equal to its own basename.
    NotBasename,
    /// The name is longer than [`MAX_NAME_BYTES`].
    TooLong,
    /// A control character (Unicode `Cc`), e.g. a newline or ESC.
    Control(char),
    /// A format character (`Cf`): bidi overrides, zero-width joiners, …
    Format(char),
    /// A surrogate code point (`Cs`).
    Surrogate(char),
    /// A private-use character (`Co`).
    PrivateUse(char),
    /// An unassigned code point or noncharacter (`Cn`).
    Unassigned(char),
    /// A line or paragraph separator (`Zl`, `Zp`), which breaks log lines.
    LineSeparator(char),
    /// The name is not in Unicode normalisation form C.
    NotNfc,
    /// The name starts with `-`, which tools read as an option.
    LeadingDash,
    /// The name starts with `~`, which shells expand to a home folder.
    LeadingTilde,
    /// The name starts with whitespace.
    LeadingWhitespace,
    /// The name ends with `.`, which Windows strips.
    TrailingDot,
    /// The name ends with whitespace, which Windows strips.
    TrailingWhitespace,
    /// The name contains one of `<>:"|?*`.
    Reserved(char),
    /// The name is a Windows device name (`CON`, `nul.txt`, `COM¹`, …).
    WindowsDevice,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::DotName => f.write_str("`.` and `..` are not allowed"),
            NameProblem::Slash => f.write_str("it contains `/`"),
            NameProblem::Backslash => f.write_str("it contains `\\`"),
            NameProblem::Nul => f.write_str("it contains a NUL byte"),
            NameProblem::NotBasename => f.write_str("it is not its own basename"),
            NameProblem::TooLong => write!(f, "it is longer than {MAX_NAME_BYTES} bytes"),
            NameProblem::Control(c) => write!(f, "it contains control character {}", code(*c)),
            NameProblem::Format(c) => write!(f, "it contains format character {}", code(*c)),
            NameProblem::Surrogate(c) => write!(f, "it contains surrogate {}", code(*c)),
            NameProblem::PrivateUse(c) => {
                write!(f, "it contains private-use character {}", code(*c))
            }
            NameProblem::Unassigned(c) => {
                write!(f, "it contains unassigned code point {}", code(*c))
            }
            NameProblem::LineSeparator(c) => {
                write!(f, "it contains line separator {}", code(*c))
            }
            NameProblem::NotNfc => f.write_str("it is not in Unicode NFC"),
            NameProblem::LeadingDash => f.write_str("it starts with `-`"),
            NameProblem::LeadingTilde => f.write_str("it starts with `~`"),
            NameProblem::LeadingWhitespace => f.write_str("it starts with whitespace"),
            NameProblem::TrailingDot => f.write_str("it ends with `.`"),
            NameProblem::TrailingWhitespace => f.write_str("it ends with whitespace"),
            NameProblem::Reserved(c) => write!(f, "it contains reserved character `{c}`"),
            NameProblem::WindowsDevice => f.write_str("it is a Windows device name"),
        }
    }
}

fn code(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// A string refused as an attachment name: the value (escaped) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid attachment name {value}: {problem}")]
pub struct NameError {
    /// The refused input, escaped and shortened so it is safe to log.
    pub value: String,
    /// Why it was refused.
    pub problem: NameProblem,
}

/// Characters Windows (and SMB shares) refuse in names.
const RESERVED: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Checks that `name` is a safe attachment file name (see [`NameProblem`]).
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameProblem::DotName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameProblem::TooLong);
    }
    for c in name.chars() {
        match c {
            '/' => return Err(NameProblem::Slash),
            '\\' => return Err(NameProblem::Backslash),
            '\0' => return Err(NameProblem::Nul),
            c if RESERVED.contains(&c) => return Err(NameProblem::Reserved(c)),
            _ => {}
        }
        match c.general_category() {
            GeneralCategory::Control => return Err(NameProblem::Control(c)),
            GeneralCategory::Format => return Err(NameProblem::Format(c)),
            GeneralCategory::Surrogate => return Err(NameProblem::Surrogate(c)),
            GeneralCategory::PrivateUse => return Err(NameProblem::PrivateUse(c)),
            GeneralCategory::Unassigned => return Err(NameProblem::Unassigned(c)),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
                return Err(NameProblem::LineSeparator(c));
            }
            _ => {}
        }
    }
    // Unreachable after the `/` check on Unix, kept so the documented rule
    // ("equal to its own basename") holds on its own.
    if std::path::Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        != Some(name)
    {
        return Err(NameProblem::NotBasename);
    }
    if !is_nfc(name) {
        return Err(NameProblem::NotNfc);
    }
    let first = name.chars().next().unwrap_or(' ');
    let last = name.chars().next_back().unwrap_or(' ');
    if first == '-' {
        return Err(NameProblem::LeadingDash);
    }
    if first == '~' {
        return Err(NameProblem::LeadingTilde);
    }
    if first.is_whitespace() {
        return Err(NameProblem::LeadingWhitespace);
    }
    if last == '.' {
        return Err(NameProblem::TrailingDot);
    }
    if last.is_whitespace() {
        return Err(NameProblem::TrailingWhitespace);
    }
    if is_windows_device(name) {
        return Err(NameProblem::WindowsDevice);
    }
    Ok(())
}

/// Whether Windows would open a device for `name`: the part before the first
/// `.` (trailing spaces ignored, as Windows does) is a reserved device name.
fn is_windows_device(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = base.to_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => ["COM", "LPT"].iter().any(|prefix| {
            upper.strip_prefix(prefix).is_some_and(|rest| {
                let mut chars = rest.chars();
                matches!(
                    (chars.next(), chars.next()),
                    (Some('0'..='9' | '¹' | '²' | '³'), None)
                )
            })
        }),
    }
}

/// A file name that passed [`check_name`]: one safe path component.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttachmentName(String);

impl AttachmentName {
    /// Accepts `name` only if it passes [`check_name`].
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        match check_name(&name) {
            Ok(()) => Ok(Self(name)),
            Err(problem) => Err(NameError {
                value: escape_for_log(&name),
                problem,
            }),
        }
    }

    /// `attachment-<millis>` plus `.ext` when an extension is given.
    pub fn generated(millis: u64, extension: Option<&str>) -> Self {
        let name = match extension {
            Some(ext) => format!("attachment-{millis}.{ext}"),
            None => format!("attachment-{millis}"),
        };
        // Extensions come from the fixed tables below; the result is always safe.
        debug_assert!(check_name(&name).is_ok(), "{name}");
        Self(name)
    }

    /// Derives the name of an inbound attachment as SPEC.md says: the
    /// explicit `name` if it is non-empty, else `attachment-<millis>` with an
    /// extension from `mimeType`, else from `type`. An unsafe explicit name is
    /// replaced by the generated one and a warning is logged.
    pub fn derive(hints: &NameHints<'_>, millis: u64) -> Derived {
        let extension = hints
            .mime_type
            .and_then(extension_for_mime)
            .or_else(|| hints.kind.and_then(extension_for_type));
        let generated = || Self::generated(millis, extension);
        match hints.name {
            Some(raw) if !raw.is_empty() => match Self::new(raw) {
                Ok(name) => Derived {
                    name,
                    replaced: None,
                },
                Err(err) => {
                    let name = generated();
                    tracing::warn!(
                        raw = %err.value,
                        problem = %err.problem,
                        replacement = %name,
                        "unsafe attachment name replaced"
                    );
                    Derived {
                        name,
                        replaced: Some(err),
                    }
                }
            },
            _ => Derived {
                name: generated(),
                replaced: None,
            },
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Gives back the owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for AttachmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AttachmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttachmentName({:?})", self.0)
    }
}

impl AsRef<str> for AttachmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for AttachmentName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

/// The fields of an attachment entry that decide its name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameHints<'a> {
    /// The entry's `name`, when it is a string.
    pub name: Option<&'a str>,
    /// The entry's `mimeType`, when it is a string.
    pub mime_type: Option<&'a str>,
    /// The entry's `type` (platform kind: `photo`, `voice`, …), when a string.
    pub kind: Option<&'a str>,
}

/// The outcome of [`AttachmentName::derive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The name to use.
    pub name: AttachmentName,
    /// Why the explicit name was refused, when it was.
    pub replaced: Option<NameError>,
}

/// The extension for a MIME type (parameters and case ignored), per SPEC.md.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/heic" => "heic",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/wav" => "wav",
        "audio/mp4" => "m4a",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/json" => "json",
        "application/zip" => "zip",
        _ => return None,
    })
}

/// The extension for a platform attachment kind (case-insensitive), per SPEC.md.
pub fn extension_for_type(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "image" | "photo" => "jpg",
        "sticker" => "webp",
        "voice" => "ogg",
        "audio" => "mp3",
        "video" | "animation" => "mp4",
        _ => return None,
    })
}

/// Hands out distinct names within one message: `a.png`, `a (1).png`, …
///
/// Names are compared case-insensitively, because a session folder may live
/// on a case-insensitive file system (macOS hosts), where `A.png` and `a.png`
/// are one file.
#[derive(Debug, Default, Clone)]
pub struct NameDeduper {
    taken: HashSet<String>,
}

impl NameDeduper {
    /// An empty set of taken names.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `name` if it is still free, else the first free `stem (k).ext`
    /// (shortened to fit [`MAX_NAME_BYTES`]), and marks it taken.
    pub fn claim(&mut self, name: AttachmentName) -> AttachmentName {
        if self.taken.insert(fold(name.as_str())) {
            return name;
        }
        let (stem, ext) = split_extension(name.as_str());
        for k in 1u64.. {
            let suffix = format!(" ({k}){ext}");
            let stem = truncate_to(stem, MAX_NAME_BYTES.saturating_sub(suffix.len()));
            let candidate = format!("{stem}{suffix}");
            let Ok(candidate) = AttachmentName::new(candidate) else {
                // The shortened stem broke a rule (e.g. NFC); fall back to a
                // plain counter, which is always safe.
                let fallback = AttachmentName(format!("attachment ({k}){}", safe_ext(ext)));
                if self.taken.insert(fold(fallback.as_str())) {
                    return fallback;
                }
                continue;
            };
            if self.taken.insert(fold(candidate.as_str())) {
                return candidate;
            }
        }
        unreachable!("u64 counter exhausted")
    }
}

fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Splits `a.tar.png` into (`a.tar`, `.png`) the way [`NameDeduper`] does: a
/// leading dot is not an extension, nor is a "suffix" longer than 32 bytes.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 32 => name.split_at(i),
        _ => (name, ""),
    }
}

fn safe_ext(ext: &str) -> &str {
    if AttachmentName::new(format!("a{ext}")).is_ok() {
        ext
    } else {
        ""
    }
}

fn truncate_to(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused_with_the_right_reason() {
        let long = "a".repeat(256);
        let nfd = "e\u{301}.txt";
        let cases: Vec<(&str, NameProblem)> = vec![
            ("", NameProblem::Empty),
            (".", NameProblem::DotName),
            ("..", NameProblem::DotName),
            ("a/b", NameProblem::Slash),
            ("../etc", NameProblem::Slash),
            ("a\\b", NameProblem::Backslash),
            ("a\0b", NameProblem::Nul),
            ("-rf", NameProblem::LeadingDash),
            ("~root", NameProblem::LeadingTilde),
            (" a.txt", NameProblem::LeadingWhitespace),
            ("\u{3000}a.txt", NameProblem::LeadingWhitespace),
            ("CON", NameProblem::WindowsDevice),
            ("con.txt", NameProblem::WindowsDevice),
            ("Nul.tar.gz", NameProblem::WindowsDevice),
            ("COM¹", NameProblem::WindowsDevice),
            ("lpt³.log", NameProblem::WindowsDevice),
            ("COM0", NameProblem::WindowsDevice),
            ("LPT9.txt", NameProblem::WindowsDevice),
            ("conin$", NameProblem::WindowsDevice),
            ("CONOUT$.x", NameProblem::WindowsDevice),
            ("aux .txt", NameProblem::WindowsDevice),
            ("invoice\u{202E}fdp.exe", NameProblem::Format('\u{202E}')),
            ("a\u{200D}b.png", NameProblem::Format('\u{200D}')),
            ("a\u{200B}b.png", NameProblem::Format('\u{200B}')),
            ("a\nb.txt", NameProblem::Control('\n')),
            ("\u{1b}[31mred.txt", NameProblem::Control('\u{1b}')),
            ("a\u{85}b", NameProblem::Control('\u{85}')),
            ("a\u{2028}b", NameProblem::LineSeparator('\u{2028}')),
            ("a\u{E000}b", NameProblem::PrivateUse('\u{E000}')),
            ("a\u{10FFFD}b", NameProblem::PrivateUse('\u{10FFFD}')),
            ("a\u{FFFF}b", NameProblem::Unassigned('\u{FFFF}')),
            ("a\u{0378}b", NameProblem::Unassigned('\u{0378}')),
            (nfd, NameProblem::NotNfc),
            (&long, NameProblem::TooLong),
            ("trailing.", NameProblem::TrailingDot),
            ("trailing ", NameProblem::TrailingWhitespace),
            ("a:b", NameProblem::Reserved(':')),
            ("a<b", NameProblem::Reserved('<')),
            ("a>b", NameProblem::Reserved('>')),
            ("a\"b", NameProblem::Reserved('"')),
            ("a|b", NameProblem::Reserved('|')),
            ("a?b", NameProblem::Reserved('?')),
            ("a*b", NameProblem::Reserved('*')),
        ];
        for (input, expected) in cases {
            assert_eq!(check_name(input), Err(expected), "{input:?}");
            let err = AttachmentName::new(input).unwrap_err();
            assert_eq!(err.problem, expected);
            // The message names the problem and never carries raw controls.
            let text = err.to_string();
            assert!(text.contains(&expected.to_string()), "{text}");
            assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        let max = format!("{}.txt", "a".repeat(251));
        for ok in [
            "a.png",
            "Invoice 2024 (final).pdf",
            ".profile",
            "é.txt",
            "日本語のファイル.docx",
            "emoji 👍🏽.jpg",
            "console.log",
            "COM10",
            "COMA",
            "LPT",
            "com1x.txt",
            "a..b",
            "x.CON",
            &max,
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok:?}");
            assert_eq!(AttachmentName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(max.len(), 255);
    }

    #[test]
    fn derivation_follows_the_spec_tables() {
        let hints = |name, mime_type, kind| NameHints {
            name,
            mime_type,
            kind,
        };
        let cases = [
            (hints(Some("x.bin"), Some("image/png"), None), "x.bin"),
            (
                hints(Some(""), Some("image/png"), None),
                "attachment-42.png",
            ),
            (
                hints(None, Some("IMAGE/JPEG; q=1"), Some("voice")),
                "attachment-42.jpg",
            ),
            (hints(None, Some("audio/mpeg"), None), "attachment-42.mp3"),
            (hints(None, Some("audio/mp4"), None), "attachment-42.m4a"),
            (
                hints(None, Some("video/quicktime"), None),
                "attachment-42.mov",
            ),
            (
                hints(None, Some("application/x-unknown"), Some("Voice")),
                "attachment-42.ogg",
            ),
            (hints(None, None, Some("PHOTO")), "attachment-42.jpg"),
            (hints(None, None, Some("sticker")), "attachment-42.webp"),
            (hints(None, None, Some("animation")), "attachment-42.mp4"),
            (hints(None, None, Some("document")), "attachment-42"),
            (hints(None, None, None), "attachment-42"),
        ];
        for (hint, expected) in cases {
            let derived = AttachmentName::derive(&hint, 42);
            assert_eq!(derived.name.as_str(), expected, "{hint:?}");
            assert_eq!(derived.replaced, None);
        }
        let derived = AttachmentName::derive(&hints(Some("../x"), Some("text/plain"), None), 7);
        assert_eq!(derived.name.as_str(), "attachment-7.txt");
        assert_eq!(derived.replaced.unwrap().problem, NameProblem::Slash);
    }

    #[test]
    fn every_mime_and_type_extension_makes_a_safe_name() {
        for mime in [
            "image/heic",
            "audio/wav",
            "video/webm",
            "application/zip",
            "text/plain",
        ] {
            let ext = extension_for_mime(mime).unwrap();
            check_name(AttachmentName::generated(1, Some(ext)).as_str()).unwrap();
        }
        assert_eq!(extension_for_mime("text/plain;charset=utf-8"), Some("txt"));
        assert_eq!(extension_for_mime(" Application/JSON "), Some("json"));
        assert_eq!(extension_for_mime("image/svg+xml"), None);
        assert_eq!(extension_for_type("IMAGE"), Some("jpg"));
    }

    #[test]
    fn deduper_gives_distinct_names() {
        let mut d = NameDeduper::new();
        let names: Vec<String> = ["a.png", "a.png", "A.PNG", "a (1).png", ".env", ".env", "b"]
            .into_iter()
            .map(|n| d.claim(AttachmentName::new(n).unwrap()).into_string())
            .collect();
        assert_eq!(
            names,
            [
                "a.png",
                "a (1).png",
                "A (2).PNG",
                "a (1) (1).png",
                ".env",
                ".env (1)",
                "b"
            ]
        );
    }

    #[test]
    fn deduped_names_stay_within_the_byte_limit() {
        let long = format!("{}.png", "é".repeat(125)); // 254 bytes
        let mut d = NameDeduper::new();
        let first = d.claim(AttachmentName::new(long.clone()).unwrap());
        assert_eq!(first.as_str(), long);
        for k in 1..=12 {
            let next = d.claim(AttachmentName::new(long.clone()).unwrap());
            assert!(next.as_str().len() <= MAX_NAME_BYTES, "{next}");
            assert!(next.as_str().ends_with(&format!(" ({k}).png")), "{next}");
            check_name(next.as_str()).unwrap();
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn hint_text() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                any::<String>().prop_map(Some),
                "[-~. a-zA-Z0-9/\\:<>|?*\u{202E}\u{200D}\u{301}\n\u{1b}]{0,12}".prop_map(Some),
                proptest::collection::vec(any::<u8>(), 0..300)
                    .prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
            ]
        }

        proptest! {
            #[test]
            fn derived_and_deduped_names_are_always_safe(
                names in proptest::collection::vec((hint_text(), hint_text(), hint_text()), 1..6),
                millis in any::<u64>(),
            ) {
                let mut dedup = NameDeduper::new();
                let mut seen = HashSet::new();
                for (name, mime, kind) in &names {
                    let hints = NameHints {
                        name: name.as_deref(),
                        mime_type: mime.as_deref(),
                        kind: kind.as_deref(),
                    };
                    let derived = AttachmentName::derive(&hints, millis);
                    prop_assert!(check_name(derived.name.as_str()).is_ok());
                    let unique = dedup.claim(derived.name);
                    prop_assert!(check_name(unique.as_str()).is_ok(), "{unique:?}");
                    prop_assert!(seen.insert(unique.as_str().to_lowercase()), "{unique:?} twice");
                }
            }

            #[test]
            fn accepted_names_are_single_plain_components(s in any::<String>()) {
                if check_name(&s).is_ok() {
                    let path = std::path::Path::new(&s);
                    let parts: Vec<_> = path.components().collect();
                    prop_assert_eq!(parts.len(), 1);
                    let is_normal = matches!(parts[0], std::path::Component::Normal(_));
                    prop_assert!(is_normal);
                    prop_assert!(s.len() <= MAX_NAME_BYTES);
                }
            }
        }
    }
}
