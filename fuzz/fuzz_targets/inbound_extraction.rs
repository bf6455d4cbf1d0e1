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

    let is_object = matches!(
        serde_json::from_str::<serde_json::Value>(raw),
        Ok(serde_json::Value::Object(_))
    );
    if is_object {
        let stored: serde_json::Value = serde_json::from_str(&out.content)
            .unwrap_or_else(|e| panic!("stored content does not parse: {e}\n{}", out.content));
        assert!(stored.is_object());
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
