//! Fuzz target: inbound extraction of arbitrary message text into a temp
//! session folder. Every file created must lie in `inbox/<message_id>/`,
//! nothing outside the session may change, the stored content must parse
//! whenever the input was a JSON object (and be the input itself when it
//! was not), and the stored form must be recognised as the same message.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use airlock_core::{MessageId, check_name};
use airlock_sqlite_fs::attachments::{AttachmentLimits, InboundExtractor};
use libfuzzer_sys::fuzz_target;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

/// Whether `text` is one JSON object (any number size).
fn is_json_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("ag").join("sess");
    fs::create_dir_all(&session).unwrap();
    fs::write(tmp.path().join("ag").join("secret"), b"secret").unwrap();
    let id = MessageId::new("m1").unwrap();
    let limits = AttachmentLimits {
        max_file_bytes: 4096,
        max_message_bytes: 8192,
    };
    let extractor = InboundExtractor::new(limits).with_clock(|| 1_700_000_000_000);
    let out = extractor.prepare(&session, &id, raw).unwrap();

    // JSON's grammar, not `Value`'s: a number beyond f64 (`1e400`) is
    // valid JSON that `Value` refuses, and the extractor keeps it as text.
    if is_json_object(raw) {
        assert!(
            is_json_object(&out.content),
            "stored content is not a JSON object:\n{}",
            out.content
        );
    } else {
        assert_eq!(out.content, raw);
        assert!(out.attachments.is_empty());
    }

    let mut paths = Vec::new();
    walk(tmp.path(), &mut paths);
    let inbox = session.join("inbox");
    let folder = inbox.join("m1");
    for path in &paths {
        let allowed = path == &tmp.path().join("ag")
            || path == &tmp.path().join("ag").join("secret")
            || path == &session
            || path == &inbox
            || path == &folder
            || path.parent() == Some(folder.as_path());
        assert!(allowed, "unexpected path {path:?}");
        if path.parent() == Some(folder.as_path()) {
            assert!(fs::symlink_metadata(path).unwrap().is_file());
            check_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
        }
    }
    let written = out.attachments.iter().filter(|o| o.error.is_none()).count();
    let files = paths
        .iter()
        .filter(|p| p.parent() == Some(folder.as_path()))
        .count();
    assert_eq!(written, files);
    assert_eq!(
        fs::read(tmp.path().join("ag").join("secret")).unwrap(),
        b"secret"
    );

    assert!(
        extractor
            .same_message(&session, &id, raw, &out.content)
            .unwrap(),
        "a retry of the same message was not recognised"
    );
});
