//! Measures peak memory while extracting a message with one 64 MiB
//! attachment, as a multiple of the message's size (the bound is 2.5x).
//!
//! `cargo run --release -p airlock-sqlite-fs --example attachment_peak_rss [MiB]`
//! prints the ratio and exits non-zero above the bound. Linux only: it reads
//! `VmHWM` from `/proc/self/status` and resets it via `/proc/self/clear_refs`.

use std::fs;
use std::io::Write;

use airlock_core::MessageId;
use airlock_sqlite_fs::attachments::InboundExtractor;
use base64::Engine;

const BOUND: f64 = 2.5;

fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect(field)
}

/// `{"text":…,"attachments":[{…,"data":"<base64 of mib MiB>"}]}`, built
/// chunk by chunk into a string of exactly the right capacity.
fn message(mib: usize) -> String {
    let bytes = mib * 1024 * 1024;
    let head = r#"{"text":"peak rss probe","attachments":[{"name":"big.bin","mimeType":"application/zip","data":""#;
    let tail = r#""}]}"#;
    let mut out = String::with_capacity(head.len() + bytes.div_ceil(3) * 4 + tail.len());
    out.push_str(head);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 3 * 1024 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        base64::engine::general_purpose::STANDARD.encode_string(&chunk[..n], &mut out);
        left -= n;
    }
    out.push_str(tail);
    out
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let tmp = tempfile::tempdir().expect("temp dir");
    let raw = message(mib);
    // Forget the peak reached while building the message.
    fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .expect("reset VmHWM");
    let before = status_kib("VmRSS:");
    let out = InboundExtractor::default()
        .prepare(tmp.path(), &MessageId::new("m1").unwrap(), &raw)
        .expect("prepare");
    let peak = status_kib("VmHWM:");
    assert!(out.attachments[0].error.is_none(), "{:?}", out.attachments);
    let written = fs::metadata(tmp.path().join("inbox/m1/big.bin"))
        .expect("file")
        .len();
    assert_eq!(written, (mib * 1024 * 1024) as u64);

    let content = raw.len() as f64;
    let ratio = (peak * 1024) as f64 / content;
    let extra = (peak.saturating_sub(before) * 1024) as f64 / content;
    println!(
        "attachment {mib} MiB, message {:.1} MiB: RSS before {:.1} MiB, peak {:.1} MiB; \
         peak/message = {ratio:.2}x (bound {BOUND}x), extra during prepare = {extra:.3}x",
        content / 1048576.0,
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    if ratio > BOUND {
        eprintln!("FAIL: peak memory {ratio:.2}x the message size exceeds {BOUND}x");
        std::process::exit(1);
    }
}
