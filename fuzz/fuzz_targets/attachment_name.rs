//! Fuzz target: attachment name derivation and the safety check on
//! arbitrary bytes and on arbitrary JSON entries. Every name that comes out
//! must pass the check and be one plain path component.

#![no_main]

use std::path::{Component, Path};

use airlock_core::{AttachmentName, MAX_NAME_BYTES, NameDeduper, NameHints, check_name};
use libfuzzer_sys::fuzz_target;

fn assert_safe(name: &str) {
    check_name(name).unwrap_or_else(|p| panic!("derived unsafe name {name:?}: {p}"));
    assert!(name.len() <= MAX_NAME_BYTES);
    let parts: Vec<_> = Path::new(name).components().collect();
    assert!(
        matches!(parts.as_slice(), [Component::Normal(_)]),
        "{name:?}"
    );
    assert!(!name.chars().any(char::is_control), "{name:?}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if check_name(&text).is_ok() {
        assert_safe(&text);
        assert_eq!(AttachmentName::new(text.as_ref()).unwrap().as_str(), text);
    } else {
        assert!(AttachmentName::new(text.as_ref()).is_err());
    }

    // Fields separated by NUL: name, mimeType, type, millis.
    let mut parts = text.split('\0');
    let hints = NameHints {
        name: parts.next(),
        mime_type: parts.next(),
        kind: parts.next(),
    };
    let millis = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let mut dedup = NameDeduper::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let name = dedup.claim(AttachmentName::derive(&hints, millis).name);
        assert_safe(name.as_str());
        assert!(
            seen.insert(name.as_str().to_lowercase()),
            "{name:?} handed out twice"
        );
    }

    // As a JSON entry, the way bridges send them.
    if let Ok(serde_json::Value::Object(entry)) = serde_json::from_slice::<serde_json::Value>(data)
    {
        let field = |k: &str| entry.get(k).and_then(|v| v.as_str());
        let hints = NameHints {
            name: field("name"),
            mime_type: field("mimeType"),
            kind: field("type"),
        };
        assert_safe(AttachmentName::derive(&hints, millis).name.as_str());
    }
});
