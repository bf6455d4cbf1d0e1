//! Inbound extraction: files written under final names only, JSON kept as
//! it was except for the rewritten entries, bad entries kept with `error`,
//! retries recognised by content.

use std::fs;

use airlock_core::{MessageId, check_name};
use airlock_sqlite_fs::attachments::{AttachmentLimits, InboundExtractor, SessionExtractor};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::attachments_support::{Fixture, SECRET, init_logs, link};

fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

fn id(s: &str) -> MessageId {
    MessageId::new(s).unwrap()
}

fn extractor(max_file_bytes: u64) -> InboundExtractor {
    InboundExtractor::new(AttachmentLimits {
        max_file_bytes,
        max_message_bytes: 1024,
    })
    .with_clock(|| 1_700_000_000_123)
}

/// Every path under the session folder, relative, sorted.
fn tree(fx: &Fixture) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fx.session, &fx.session, &mut out);
    out.sort();
    out
}

#[test]
fn two_same_names_one_invalid_one_too_big() {
    init_logs();
    let fx = Fixture::new();
    let raw = format!(
        r#"{{"text":"hi","attachments":[{{"name":"a.png","data":"{}"}},{{"name":"a.png","mimeType":"image/png","data":"{}"}},{{"name":"bad.png","data":"!!notbase64"}},{{"name":"big.bin","size":17,"data":"{}"}}]}}"#,
        b64(b"first"),
        b64(b"second"),
        b64(&[7u8; 17]),
    );
    let out = extractor(16).prepare(&fx.session, &id("m1"), &raw).unwrap();

    let inbox = fx.session.join("inbox").join("m1");
    assert_eq!(fs::read(inbox.join("a.png")).unwrap(), b"first");
    assert_eq!(fs::read(inbox.join("a (1).png")).unwrap(), b"second");
    assert_eq!(
        tree(&fx),
        ["inbox", "inbox/m1", "inbox/m1/a (1).png", "inbox/m1/a.png"]
    );

    let failed: Vec<usize> = out
        .attachments
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.index)
        .collect();
    assert_eq!(failed, [2, 3]);
    assert_eq!(out.attachments[1].name.as_deref(), Some("a (1).png"));
    assert_eq!(
        out.attachments[1].local_path.as_deref(),
        Some("inbox/m1/a (1).png")
    );

    let stored: Value = serde_json::from_str(&out.content).unwrap();
    let entries = stored["attachments"].as_array().unwrap();
    assert_eq!(entries[0]["localPath"], "inbox/m1/a.png");
    assert_eq!(entries[1]["name"], "a (1).png");
    assert_eq!(entries[1]["mimeType"], "image/png");
    assert!(
        entries[2]["error"]
            .as_str()
            .unwrap()
            .contains("invalid base64")
    );
    assert!(
        entries[3]["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 16")
    );
    assert_eq!(entries[3]["size"], 17);
    assert_eq!(entries[2]["name"], "bad.png");
    for entry in entries {
        assert!(entry.get("data").is_none(), "{entry}");
    }
    for entry in &entries[2..] {
        assert!(entry.get("localPath").is_none(), "{entry}");
    }
}

#[test]
fn everything_but_the_entries_is_kept_byte_for_byte() {
    let fx = Fixture::new();
    let raw = format!(
        "{{ \"n\" : 1.0, \"e\":1e3,\"big\":123456789012345678901234567890,\n \"s\":\"\\u00e9\\n\",\"attachments\" : [ 12.50 , {{\"z\":1.0,\"data\":\"{}\",\"a\":-0}} ,{{\"x\":1E+2}} ], \"last\":[1.10] }}",
        b64(b"x")
    );
    let out = extractor(16).prepare(&fx.session, &id("m1"), &raw).unwrap();
    let expected = raw.replace(
        &format!("{{\"z\":1.0,\"data\":\"{}\",\"a\":-0}}", b64(b"x")),
        r#"{"z":1.0,"a":-0,"name":"attachment-1700000000123","localPath":"inbox/m1/attachment-1700000000123"}"#,
    );
    assert_eq!(out.content, expected);
}

#[test]
fn non_json_and_plain_messages_are_returned_unchanged_without_io() {
    let fx = Fixture::new();
    for raw in [
        "hello",
        "",
        "{\"text\":\"hi\"}",
        "[{\"attachments\":[{\"data\":\"QQ==\"}]}]",
        "{\"attachments\":[{\"data\":5},{\"url\":\"x\"}]}",
        "{\"attachments\":[{\"data\":\"QQ==\"}]} trailing",
        "{\"attachments\":\"QQ==\"}",
    ] {
        let out = extractor(16).prepare(&fx.session, &id("m1"), raw).unwrap();
        assert_eq!(out.content, raw);
        assert!(out.attachments.is_empty());
    }
    assert!(tree(&fx).is_empty(), "{:?}", tree(&fx));
    // A missing session folder is fine when there is nothing to extract.
    let out = extractor(16)
        .prepare(&fx.tmp.path().join("missing"), &id("m1"), "{\"a\":1}")
        .unwrap();
    assert_eq!(out.content, "{\"a\":1}");
}

#[test]
fn unsafe_names_are_replaced() {
    init_logs();
    let fx = Fixture::new();
    let long = "n".repeat(300);
    let raw = format!(
        r#"{{"attachments":[{{"name":"invoice\u202Efdp.exe","mimeType":"application/pdf","data":"{d}"}},{{"name":"{long}","type":"photo","data":"{d}"}},{{"name":"../../secret.txt","data":"{d}"}},{{"name":"","type":"voice","data":"{d}"}}]}}"#,
        d = b64(b"x")
    );
    let out = extractor(16).prepare(&fx.session, &id("m1"), &raw).unwrap();
    let got: Vec<String> = out
        .attachments
        .iter()
        .map(|o| o.name.clone().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "attachment-1700000000123.pdf",
            "attachment-1700000000123.jpg",
            "attachment-1700000000123",
            "attachment-1700000000123.ogg",
        ]
    );
    for name in &got {
        check_name(name).unwrap();
        assert!(fx.session.join("inbox/m1").join(name).is_file());
    }
    assert_eq!(fs::read(fx.outside.join("secret.txt")).unwrap(), SECRET);
}

#[test]
fn planted_symlinks_in_the_inbox_are_never_followed() {
    init_logs();
    let fx = Fixture::new();
    let before = fx.outside_snapshot();
    // inbox/m1 -> outside/dir: extraction must fail rather than write there.
    fs::create_dir_all(fx.session.join("inbox")).unwrap();
    link(
        &fx.outside.join("dir"),
        &fx.session.join("inbox").join("m1"),
    );
    let raw = format!(
        r#"{{"attachments":[{{"name":"a.png","data":"{}"}}]}}"#,
        b64(b"pwned")
    );
    let err = extractor(16)
        .prepare(&fx.session, &id("m1"), &raw)
        .unwrap_err();
    assert!(err.to_string().contains("inbox"), "{err}");
    assert_eq!(fx.outside_snapshot(), before);

    // inbox/m2/a.png -> outside/a.png: the link is replaced, not written through.
    fs::create_dir_all(fx.session.join("inbox").join("m2")).unwrap();
    link(
        &fx.outside.join("a.png"),
        &fx.session.join("inbox/m2/a.png"),
    );
    let out = extractor(16).prepare(&fx.session, &id("m2"), &raw).unwrap();
    assert_eq!(out.attachments[0].name.as_deref(), Some("a.png"));
    let meta = fs::symlink_metadata(fx.session.join("inbox/m2/a.png")).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        fs::read(fx.session.join("inbox/m2/a.png")).unwrap(),
        b"pwned"
    );
    assert_eq!(fx.outside_snapshot(), before);

    // inbox itself -> outside.
    fs::remove_dir_all(fx.session.join("inbox")).unwrap();
    link(&fx.outside, &fx.session.join("inbox"));
    assert!(extractor(16).prepare(&fx.session, &id("m3"), &raw).is_err());
    assert_eq!(fx.outside_snapshot(), before);
}

#[test]
fn no_temporary_files_are_left_behind() {
    let fx = Fixture::new();
    let raw = format!(
        r#"{{"attachments":[{{"name":"a","data":"{}"}},{{"name":"b","data":"QQ=QQ"}}]}}"#,
        b64(&[1u8; 10])
    );
    extractor(16).prepare(&fx.session, &id("m1"), &raw).unwrap();
    assert_eq!(tree(&fx), ["inbox", "inbox/m1", "inbox/m1/a"]);
}

#[test]
fn a_retry_is_the_same_message_and_reuses_the_files() {
    let fx = Fixture::new();
    let raw = format!(
        r#"{{"text":"hi","attachments":[{{"name":"a.png","data":"{a}"}},{{"name":"a.png","data":"{b}"}},{{"type":"photo","data":"{a}"}},{{"name":"x","data":"@@"}}]}}"#,
        a = b64(b"alpha"),
        b = b64(b"beta"),
    );
    let session = SessionExtractor::new(&fx.session, extractor(16));
    let stored = session.prepare(&id("m1"), &raw).unwrap().content;
    let files_before = tree(&fx);
    // A bridge re-sending later: generated names used another clock value.
    let later = SessionExtractor::new(&fx.session, extractor(16).with_clock(|| 5));
    assert!(later.same_message(&id("m1"), &raw, &stored).unwrap());
    assert_eq!(tree(&fx), files_before, "same_message never writes");

    // Any difference makes it another message.
    let other_text = raw.replace("\"hi\"", "\"ho\"");
    assert!(!later.same_message(&id("m1"), &other_text, &stored).unwrap());
    let other_data = raw.replacen(&b64(b"beta"), &b64(b"bet4"), 1);
    assert!(!later.same_message(&id("m1"), &other_data, &stored).unwrap());
    let other_name = raw.replacen("\"name\":\"a.png\"", "\"name\":\"b.png\"", 1);
    assert!(!later.same_message(&id("m1"), &other_name, &stored).unwrap());
    let now_valid = raw.replace("\"@@\"", &format!("\"{}\"", b64(b"ok")));
    assert!(!later.same_message(&id("m1"), &now_valid, &stored).unwrap());
    assert!(!later.same_message(&id("m2"), &raw, &stored).unwrap());
    assert!(!later.same_message(&id("m1"), "plain", &stored).unwrap());

    // A file changed (or removed) by the guest: not provably the same.
    fs::write(fx.session.join("inbox/m1/a (1).png"), b"betA").unwrap();
    assert!(!later.same_message(&id("m1"), &raw, &stored).unwrap());
    fs::write(fx.session.join("inbox/m1/a (1).png"), b"beta!").unwrap();
    assert!(!later.same_message(&id("m1"), &raw, &stored).unwrap());
    fs::remove_file(fx.session.join("inbox/m1/a (1).png")).unwrap();
    assert!(!later.same_message(&id("m1"), &raw, &stored).unwrap());

    // Plain messages compare byte for byte.
    assert!(
        later
            .same_message(&id("m9"), "{\"a\":1}", "{\"a\":1}")
            .unwrap()
    );
    assert!(
        !later
            .same_message(&id("m9"), "{\"a\":1}", "{\"a\": 1}")
            .unwrap()
    );
}

#[test]
fn escaped_and_wrapped_base64_is_decoded() {
    let fx = Fixture::new();
    let raw =
        r#"{"attachments":[{"name":"a","data":"aGVs\nbG8\u003d"},{"name":"b","data":"_-8"}]}"#;
    let out = extractor(16).prepare(&fx.session, &id("m1"), raw).unwrap();
    assert!(out.attachments.iter().all(|o| o.error.is_none()), "{out:?}");
    assert_eq!(fs::read(fx.session.join("inbox/m1/a")).unwrap(), b"hello");
    assert_eq!(
        fs::read(fx.session.join("inbox/m1/b")).unwrap(),
        [0xff, 0xef]
    );
    assert!(
        SessionExtractor::new(&fx.session, extractor(16))
            .same_message(&id("m1"), raw, &out.content)
            .unwrap()
    );
}

#[test]
fn the_per_message_cap_fails_later_entries() {
    let fx = Fixture::new();
    let ex = InboundExtractor::new(AttachmentLimits {
        max_file_bytes: 10,
        max_message_bytes: 15,
    });
    let raw = format!(
        r#"{{"attachments":[{{"name":"a","data":"{t}"}},{{"name":"b","data":"{t}"}},{{"name":"c","data":"{f}"}}]}}"#,
        t = b64(&[1; 10]),
        f = b64(&[2; 5]),
    );
    let out = ex.prepare(&fx.session, &id("m1"), &raw).unwrap();
    let errors: Vec<bool> = out.attachments.iter().map(|o| o.error.is_some()).collect();
    assert_eq!(errors, [false, true, false]);
    assert!(
        out.attachments[1]
            .error
            .as_deref()
            .unwrap()
            .contains("this message")
    );
}

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_replaced_name_is_logged_escaped() {
    let fx = Fixture::new();
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let raw = r#"{"attachments":[{"name":"invoice\u202Efdp\u001b[2J.exe","data":"aGk="}]}"#;
    tracing::subscriber::with_default(subscriber, || {
        extractor(16).prepare(&fx.session, &id("m1"), raw).unwrap();
    });
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("unsafe attachment name replaced"), "{log}");
    assert!(log.contains(r"invoice\u{202e}fdp\u{1b}[2J.exe"), "{log}");
    assert!(log.contains("attachment-1700000000123"), "{log}");
    assert!(
        !log.contains('\u{202E}') && !log.contains('\u{1b}'),
        "raw controls in the log: {log:?}"
    );
}

#[test]
fn the_openat2_fallback_walk_is_just_as_strict() {
    use airlock_sqlite_fs::attachments::{ConfinedDir, Resolver};
    let fx = Fixture::new();
    let before = fx.outside_snapshot();
    let walk = ConfinedDir::open_trusted(&fx.session)
        .unwrap()
        .with_resolver(Resolver::Walk);
    let raw = format!(
        r#"{{"attachments":[{{"name":"a.png","data":"{}"}}]}}"#,
        b64(b"ok")
    );
    let out = extractor(16).prepare_in(&walk, &id("m1"), &raw).unwrap();
    assert_eq!(out.attachments[0].name.as_deref(), Some("a.png"));
    assert!(
        extractor(16)
            .same_message_in(&walk, &id("m1"), &raw, &out.content)
            .unwrap()
    );
    link(
        &fx.outside.join("dir"),
        &fx.session.join("inbox").join("m2"),
    );
    assert!(extractor(16).prepare_in(&walk, &id("m2"), &raw).is_err());
    assert_eq!(fx.outside_snapshot(), before);
}
