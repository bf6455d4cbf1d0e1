//! A host writer killed (SIGKILL) while it stages an attachment leaves a
//! temporary file in `inbox/<id>/`; the session's next write removes it,
//! whether that write is the retry or another message.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use airlock_sqlite_fs::attachments::{InboundExtractor, SessionExtractor, TEMP_PREFIX};
use airlock_sqlite_fs::{HostMailbox, MailboxRoots};
use base64::Engine;

use crate::mailbox_common::*;

/// Decoded size of the attachment: big enough that staging it takes a
/// while, so the parent sees the temporary file before the write ends.
const BIG: usize = 24 << 20;

const ROLE: &str = "stage_big_attachment";
const ID_ENV: &str = "AIRLOCK_TEST_STAGED_ID";

fn big_message(id: &str) -> airlock_core::mailbox::NewInboundMessage {
    let data = base64::engine::general_purpose::STANDARD.encode(vec![7u8; BIG]);
    msg(
        id,
        &format!(r#"{{"text":"big","attachments":[{{"name":"big.bin","data":"{data}"}}]}}"#),
    )
}

fn small_message(id: &str) -> airlock_core::mailbox::NewInboundMessage {
    msg(
        id,
        r#"{"text":"small","attachments":[{"name":"s.txt","data":"aGk="}]}"#,
    )
}

fn extractor(host: &HostMailbox) -> SessionExtractor {
    SessionExtractor::new(host.paths().dir(), InboundExtractor::default())
}

fn temps_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect()
}

/// Child role: writes the big message and exits.
fn stage_big_attachment() {
    let data = std::env::var(DATA_ENV).unwrap();
    let host = MailboxRoots::in_data_dir(Path::new(&data)).host(&fixture_session());
    let id = std::env::var(ID_ENV).unwrap();
    host.write_message(&big_message(&id), &extractor(&host))
        .unwrap();
}

/// Kills a child writing message `id` once its temporary file shows; returns
/// whether the kill landed while staging (the temporary file stayed).
fn kill_while_staging(fx: &Fixture, test: &str, id: &str) -> bool {
    let inbox = fx.session_dir().join("inbox").join(id);
    let mut child = child_command(
        test,
        ROLE,
        &[
            (DATA_ENV, fx.dir.path().display().to_string()),
            (ID_ENV, id.to_owned()),
        ],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while temps_in(&inbox).is_empty() {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    !temps_in(&inbox).is_empty()
}

/// Leaves a killed staging of message `id` behind (a few tries: the child
/// may finish before the parent sees its temporary file).
fn killed_staging(fx: &Fixture, test: &str, id: &str) {
    for _ in 0..5 {
        if kill_while_staging(fx, test, id) {
            return;
        }
    }
    panic!("no kill landed while {id}'s attachment was staged");
}

#[test]
fn a_retry_removes_the_temp_file_of_a_killed_send() {
    if child_role().as_deref() == Some(ROLE) {
        return stage_big_attachment();
    }
    let fx = Fixture::new();
    killed_staging(
        &fx,
        &crate::libtest_name(
            module_path!(),
            "a_retry_removes_the_temp_file_of_a_killed_send",
        ),
        "big",
    );
    let written = fx
        .host
        .write_message(&big_message("big"), &extractor(&fx.host))
        .unwrap();
    assert_eq!(written.id.as_str(), "big");
    let inbox = fx.session_dir().join("inbox/big");
    assert_eq!(temps_in(&inbox), Vec::<String>::new());
    assert_eq!(
        std::fs::metadata(inbox.join("big.bin")).unwrap().len(),
        BIG as u64
    );
}

#[test]
fn the_next_write_removes_the_temp_file_of_a_killed_send() {
    if child_role().as_deref() == Some(ROLE) {
        return stage_big_attachment();
    }
    let fx = Fixture::new();
    killed_staging(
        &fx,
        &crate::libtest_name(
            module_path!(),
            "the_next_write_removes_the_temp_file_of_a_killed_send",
        ),
        "big",
    );
    fx.host
        .write_message(&small_message("other"), &extractor(&fx.host))
        .unwrap();
    assert_eq!(
        temps_in(&fx.session_dir().join("inbox/big")),
        Vec::<String>::new()
    );
    assert!(fx.session_dir().join("inbox/other/s.txt").is_file());
}
