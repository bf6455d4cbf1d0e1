//! Property tests of the confinement guarantees, run by plain `cargo test`:
//! extraction never writes outside `inbox/<message_id>/`, and outbox reads
//! and clears never read or remove anything outside the session's outbox,
//! whatever tree, ids and names the guest made up.

use std::fs;
use std::path::{Path, PathBuf};

use airlock_core::{MessageId, check_name};
use airlock_sqlite_fs::attachments::{
    AttachmentLimits, InboundExtractor, clear_outbox, read_outbox_files,
};
use base64::Engine;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::attachments_support::{Fixture, leaks, link, mkfifo};

/// Names a hostile sender or guest would try.
fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a.png".to_string()),
        Just("..".to_string()),
        Just("../../x".to_string()),
        Just("/etc/passwd".to_string()),
        Just("CON.txt".to_string()),
        Just("a\u{202E}gnp.exe".to_string()),
        Just("".to_string()),
        "[a-z./\\\\~ -]{1,8}",
        any::<String>(),
    ]
}

fn entry() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
        "[A-Za-z0-9+/=!_ -]{0,24}",
    ];
    (
        proptest::option::of(hostile_name()),
        proptest::option::of(prop_oneof![
            Just("image/png"),
            Just("text/plain; x=1"),
            Just("a/b")
        ]),
        data,
        any::<bool>(),
    )
        .prop_map(|(name, mime, data, extra)| {
            let mut e = serde_json::Map::new();
            if let Some(name) = name {
                e.insert("name".into(), json!(name));
            }
            if let Some(mime) = mime {
                e.insert("mimeType".into(), json!(mime));
            }
            e.insert("data".into(), json!(data));
            if extra {
                e.insert("localPath".into(), json!("../../../etc/passwd"));
            }
            Value::Object(e)
        })
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn plan_dir() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("m1".to_string()),
        Just("m1/a".to_string()),
        Just("a".to_string()),
        "[am1.]{1,3}"
    ]
}

fn plan_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("m1".to_string()), "[am1.]{1,3}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn extraction_never_writes_outside_its_inbox_folder(
        entries in proptest::collection::vec(entry(), 0..5),
        id in prop_oneof![Just("m1".to_string()), "[a-z0-9#.-]{1,12}"],
    ) {
        prop_assume!(MessageId::new(id.as_str()).is_ok());
        let fx = Fixture::new();
        let before = fx.outside_snapshot();
        let message_id = MessageId::new(id.as_str()).unwrap();
        let raw = json!({"text": 1.0, "attachments": entries}).to_string();
        let limits = AttachmentLimits { max_file_bytes: 40, max_message_bytes: 100 };
        let extractor = InboundExtractor::new(limits);
        let out = extractor.prepare(&fx.session, &message_id, &raw).unwrap();
        // A retry of the same message is recognised (and writes nothing).
        prop_assert!(extractor.same_message(&fx.session, &message_id, &raw, &out.content).unwrap());

        let stored: Value = serde_json::from_str(&out.content).unwrap();
        prop_assert_eq!(&stored["text"], &json!(1.0));
        let mut files = Vec::new();
        files_under(&fx.session, &mut files);
        let inbox = fx.session.join("inbox").join(id.as_str());
        for file in &files {
            prop_assert_eq!(file.parent().unwrap(), inbox.as_path(), "{:?}", file);
            let name = file.file_name().unwrap().to_str().unwrap();
            prop_assert!(check_name(name).is_ok(), "{:?}", name);
            prop_assert!(fs::symlink_metadata(file).unwrap().is_file());
        }
        let written = out.attachments.iter().filter(|o| o.error.is_none()).count();
        prop_assert_eq!(files.len(), written);
        prop_assert_eq!(fx.outside_snapshot(), before);
    }

    #[test]
    fn outbox_operations_never_touch_outside(
        plan in proptest::collection::vec((0u8..6, plan_dir(), plan_name()), 0..12),
        id in prop_oneof![4 => Just("m1".to_string()), 1 => Just("../../x".to_string()), 1 => Just("..".to_string()), 1 => "[am1./]{1,5}"],
        names in proptest::collection::vec(prop_oneof![Just("a".to_string()), Just("m1".to_string()), hostile_name()], 0..4),
    ) {
        let fx = Fixture::new();
        let outbox = fx.session.join("outbox");
        fs::create_dir_all(outbox.join("m1")).unwrap();
        for (kind, dir, name) in &plan {
            // Only plain components, so the plan itself stays inside.
            if dir.contains("..") || name.contains("..") || name == "." || dir == "." {
                continue;
            }
            let parent = outbox.join(dir);
            if fs::create_dir_all(&parent).is_err() {
                continue;
            }
            let at = parent.join(name);
            if fs::symlink_metadata(&at).is_ok() {
                continue;
            }
            match kind {
                0 => fs::write(&at, b"guest").unwrap(),
                1 => fs::create_dir(&at).unwrap(),
                2 => link(&fx.secret_file(), &at),
                3 => link(&fx.outside, &at),
                4 => mkfifo(&at),
                _ => link(Path::new("../../../x"), &at),
            }
        }
        let before = fx.outside_snapshot();
        let limits = AttachmentLimits::default();
        let session = fx.session.clone();
        let (read, _report) = crate::attachments_support::within(30, move || {
            let read = read_outbox_files(&session, &id, &names, &limits);
            let report = clear_outbox(&session, &id);
            (read, report)
        });
        if let Ok(files) = read {
            for f in files {
                prop_assert!(!leaks(&f.data));
                prop_assert_eq!(f.data, b"guest".to_vec());
            }
        }
        prop_assert_eq!(fx.outside_snapshot(), before);
    }
}
