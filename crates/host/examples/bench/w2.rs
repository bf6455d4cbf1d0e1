//! W2 (messages with one 1 MiB base64 attachment each: throughput, every
//! file fsynced) and W2b (one large attachment: peak memory, read by the
//! parent from this process's `ru_maxrss`).

use std::path::Path;
use std::time::Instant;

use airlock_core::mailbox::NewInboundMessage;
use airlock_sqlite_fs::attachments::InboundExtractor;
use base64::Engine;

use crate::report::{Latencies, fail, figure, timed};
use crate::setup::{Host, ids};

const MIB: usize = 1024 * 1024;

/// W2: throughput of whole messages, and the extraction alone.
pub async fn throughput(dir: &Path, quick: bool) -> Result<(), String> {
    let count = if quick { 5 } else { 100 };
    let content = attachment_message(MIB, 1);
    let host = Host::open(dir)?;
    let session = host.new_session("bench").await?.id;
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for n in 0..count {
        let message = NewInboundMessage::new(ids::message(&format!("a{n}"))?, "chat", &*content);
        let start = Instant::now();
        let written = host
            .manager
            .write_message(&session, message)
            .await
            .map_err(fail("write_message"))?;
        samples.push(start.elapsed());
        if written.attachments.iter().any(|a| a.error.is_some()) {
            return Err(format!("attachment refused: {:?}", written.attachments));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    figure("w2.mib_per_s", count as f64 / elapsed);
    figure("w2.p50_us", Latencies::new(samples)?.p50_us());
    figure("w2.extract_p50_us", extract_only(dir, &content, count)?);
    Ok(())
}

/// The attachment part alone (decode, write, fsync, rename), no SQLite.
fn extract_only(dir: &Path, content: &str, count: usize) -> Result<f64, String> {
    let folder = dir.join("extract-only");
    std::fs::create_dir_all(&folder).map_err(fail("creating extract-only"))?;
    let extractor = InboundExtractor::default();
    let mut samples = Vec::with_capacity(count);
    for n in 0..count {
        let id = ids::message(&format!("x{n}"))?;
        let (out, took) = timed(|| extractor.prepare(&folder, &id, content));
        out.map_err(fail("extracting"))?;
        samples.push(took);
    }
    Ok(Latencies::new(samples)?.p50_us())
}

/// W2b: one message with an attachment of `mib` MiB, written when `write`
/// (otherwise only built, so the parent can tell the input's own share).
pub async fn peak(dir: &Path, mib: usize, write: bool) -> Result<(), String> {
    let content = attachment_message(mib * MIB, 0x2545_f491);
    if !write {
        std::hint::black_box(&content);
        return Ok(());
    }
    let host = Host::open(dir)?;
    let session = host.new_session("bench").await?.id;
    let message = NewInboundMessage::new(ids::message("big")?, "chat", content);
    let written = host
        .manager
        .write_message(&session, message)
        .await
        .map_err(fail("write_message"))?;
    match written.attachments.as_slice() {
        [one] if one.error.is_none() => Ok(()),
        other => Err(format!("expected one stored attachment, got {other:?}")),
    }
}

/// `{"text":…,"attachments":[{"name":…,"data":"<base64 of bytes>"}]}`,
/// encoded piecewise into a string allocated once at its final size.
fn attachment_message(bytes: usize, seed: u64) -> String {
    let head = r#"{"text":"bench","attachments":[{"name":"blob.bin","mimeType":"application/zip","data":""#;
    let tail = r#""}]}"#;
    let mut out = String::with_capacity(head.len() + bytes.div_ceil(3) * 4 + tail.len());
    out.push_str(head);
    // A multiple of 3, so the pieces encode without inner padding.
    let mut piece = vec![0u8; 3 * 64 * 1024];
    let mut x = seed | 1;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(piece.len());
        for b in &mut piece[..n] {
            // An LCG: incompressible enough that no layer can shortcut it.
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *b = (x >> 56) as u8;
        }
        base64::engine::general_purpose::STANDARD.encode_string(&piece[..n], &mut out);
        left -= n;
    }
    out.push_str(tail);
    out
}
