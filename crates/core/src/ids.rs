//! Typed ids that are safe to use as a single path component.
//!
//! Ids arrive from chat platforms and from the untrusted guest, and every one
//! of them ends up in a path (`<root>/<agent_group>/<session>/inbox/<message>`).
//! The only way to get an id value is through [`validate_component`], so a
//! value of these types can never walk out of its folder.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest id accepted, in bytes: the usual file-name limit (`NAME_MAX`).
pub const MAX_ID_BYTES: usize = 255;

/// Why a string was refused as an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdProblem {
    /// The string is empty.
    Empty,
    /// The string is `.` or `..`, which name a folder rather than an entry.
    DotName,
    /// The string contains `/`, which separates path components.
    Slash,
    /// The string contains `\`, a path separator on Windows.
    Backslash,
    /// The string contains a NUL byte, which ends a C path early.
    Nul,
    /// The string contains a control character (C0, DEL or C1).
    Control,
    /// The string is longer than [`MAX_ID_BYTES`].
    TooLong,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdProblem::Empty => "it is empty",
            IdProblem::DotName => "`.` and `..` are not allowed",
            IdProblem::Slash => "it contains `/`",
            IdProblem::Backslash => "it contains `\\`",
            IdProblem::Nul => "it contains a NUL byte",
            IdProblem::Control => "it contains a control character",
            IdProblem::TooLong => "it is longer than 255 bytes",
        })
    }
}

/// A string refused as an id: which kind of id, the value (escaped) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value}: {problem}")]
pub struct IdError {
    /// Which id was being parsed, e.g. `"session id"`.
    pub kind: &'static str,
    /// The refused input, escaped and shortened so it is safe to log.
    pub value: String,
    /// Why it was refused.
    pub problem: IdProblem,
}

/// Checks that `value` is usable as exactly one path component.
pub fn validate_component(kind: &'static str, value: &str) -> Result<(), IdError> {
    let problem = if value.is_empty() {
        Some(IdProblem::Empty)
    } else if value == "." || value == ".." {
        Some(IdProblem::DotName)
    } else if value.len() > MAX_ID_BYTES {
        Some(IdProblem::TooLong)
    } else {
        value.chars().find_map(|c| match c {
            '/' => Some(IdProblem::Slash),
            '\\' => Some(IdProblem::Backslash),
            '\0' => Some(IdProblem::Nul),
            c if c.is_control() => Some(IdProblem::Control),
            _ => None,
        })
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(IdError {
            kind,
            value: escape_for_log(value),
            problem,
        }),
    }
}

/// Quotes and escapes untrusted text (at most 64 characters) for error
/// messages and logs, so control characters cannot forge log lines.
pub fn escape_for_log(value: &str) -> String {
    const SHOWN: usize = 64;
    let mut out: String = value
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > SHOWN {
        out.push('…');
    }
    format!("\"{out}\" ({} bytes)", value.len())
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses `value`, refusing anything that is not one safe path component.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_component($kind, &value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives back the owned text.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $name {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// One agent's workspace; names a folder under the sessions root.
    AgentGroupId,
    "agent group id"
);
typed_id!(
    /// One chat on one platform, as registered in the session registry.
    MessagingGroupId,
    "messaging group id"
);
typed_id!(
    /// One session: one folder, one sandbox when running.
    SessionId,
    "session id"
);
typed_id!(
    /// One message in a mailbox; names its `inbox/` or `outbox/` folder.
    MessageId,
    "message id"
);
typed_id!(
    /// A thread inside a chat, as the platform names it.
    ThreadId,
    "thread id"
);

impl SessionId {
    /// A new, unique session id (`sess-<millis>-<16 base32>`), sortable by creation time.
    pub fn generate() -> Self {
        Self(crate::idgen::generate("sess"))
    }
}

impl MessagingGroupId {
    /// A new, unique messaging group id (`mg-<millis>-<16 base32>`).
    pub fn generate() -> Self {
        Self(crate::idgen::generate("mg"))
    }
}

impl MessageId {
    /// A new, unique message id (`<prefix>-<millis>-<16 base32>`).
    pub fn generate(prefix: &str) -> Result<Self, IdError> {
        Self::new(crate::idgen::generate(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_refuses_unsafe_components() {
        let long = "x".repeat(256);
        let cases: [(&str, IdProblem, &str); 7] = [
            ("..", IdProblem::DotName, "`.` and `..`"),
            (".", IdProblem::DotName, "`.` and `..`"),
            ("a/b", IdProblem::Slash, "contains `/`"),
            ("a\\b", IdProblem::Backslash, "contains `\\`"),
            ("a\0b", IdProblem::Nul, "NUL"),
            ("", IdProblem::Empty, "empty"),
            (&long, IdProblem::TooLong, "longer than 255"),
        ];
        for (input, problem, words) in cases {
            let errors = [
                AgentGroupId::new(input).unwrap_err(),
                MessagingGroupId::new(input).unwrap_err(),
                SessionId::new(input).unwrap_err(),
                MessageId::new(input).unwrap_err(),
                ThreadId::new(input).unwrap_err(),
            ];
            for err in errors {
                assert_eq!(err.problem, problem, "{input:?}");
                let text = err.to_string();
                assert!(text.contains(words), "{text} should say {words}");
                assert!(text.contains(err.kind), "{text} should name the id kind");
            }
        }
    }

    #[test]
    fn control_characters_are_refused_and_escaped() {
        let err = SessionId::new("a\nb\u{1b}[31m").unwrap_err();
        assert_eq!(err.problem, IdProblem::Control);
        assert!(err.to_string().contains("a\\nb\\u{1b}[31m"), "{err}");
        assert_eq!(
            MessageId::new("x\u{85}").unwrap_err().problem,
            IdProblem::Control
        );
    }

    #[test]
    fn ordinary_ids_are_accepted_and_round_trip() {
        for ok in [
            "sess-1-abc",
            "C0123",
            "1700000000.123456",
            "é…",
            &"x".repeat(255),
        ] {
            let id: SessionId = ok.parse().unwrap();
            assert_eq!(id.as_str(), ok);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
        }
        assert!(serde_json::from_str::<SessionId>("\"../x\"").is_err());
    }

    #[test]
    fn generated_ids_are_valid_unique_and_sorted() {
        let ids: Vec<SessionId> = (0..2000).map(|_| SessionId::generate()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
        assert!(ids[0].as_str().starts_with("sess-"));
        SessionId::new(ids[0].as_str()).unwrap();
    }
}
