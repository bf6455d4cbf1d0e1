//! Disk full: the data dir (registry, host state, session folders) on a
//! small tmpfs kept full by a filler file, with 0, 8, 16 … KiB left free
//! before each round of `send`, `send --attach`, `guest reply` and
//! `resolve`, so the space runs out at every point of each write. Every
//! failure must say "disk full" (never another error, never a panic);
//! nothing acknowledged may be lost, no attachment may exist half-written
//! under its final name; once the tmpfs grows, every kind of write succeeds
//! again and leaves no temporary file, every failed resolve retried
//! completes its session (no listed session lacks either mailbox) and
//! `doctor` finds nothing. Skipped, and said so, where no tmpfs
//! can be mounted (it needs root).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use airlock_core::testing::history::WriteHistory;

use crate::airlock::Airlock;
use crate::support::{Tmpfs, error_line, inbound_texts, integrity_figure, outbound_texts};
use crate::{Campaign, Outcome};

/// Free space added per round.
const STEP: u64 = 8 * 1024;
/// The attachment of every `send --attach`.
const ATTACHMENT: usize = 96 * 1024;

/// How the faulted runs ended.
#[derive(Default)]
struct Exits {
    ok: usize,
    disk_full: usize,
    other: Vec<String>,
    panics: usize,
}

impl Exits {
    /// Records a run; whether it succeeded.
    fn record(&mut self, what: &str, out: &Output) -> bool {
        if out.status.success() {
            self.ok += 1;
            return true;
        }
        let line = error_line(out);
        if out.status.code().is_none_or(|c| c == 101) {
            self.panics += 1;
            self.other.push(format!("{what}: {line}"));
        } else if line.contains("disk full") {
            self.disk_full += 1;
        } else {
            self.other.push(format!("{what}: {line}"));
        }
        false
    }
}

/// A file that takes every free block of its file system.
struct Filler {
    path: PathBuf,
    file: std::fs::File,
}

impl Filler {
    fn new(path: PathBuf) -> Result<Filler, String> {
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Filler { path, file })
    }

    /// Grows the filler until the disk is full, then frees `free` bytes.
    fn leave_free(&mut self, free: u64) -> Result<(), String> {
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| e.to_string())?;
        for chunk in [64 * 1024, 4096] {
            while self.file.write_all(&vec![0u8; chunk]).is_ok() {}
        }
        let len = self.file.metadata().map_err(|e| e.to_string())?.len();
        self.file
            .set_len(len.saturating_sub(free))
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    let mnt = match Tmpfs::mount(&c.dir.join("disk-full-mnt"), "6m") {
        Ok(m) => m,
        Err(e) => {
            return Ok(vec![Outcome {
                name: "disk-full",
                trials: 0,
                figures: format!("SKIPPED: cannot mount a tmpfs here (needs root): {e}"),
                ok: true,
            }]);
        }
    };
    let real = real(c, &mnt)?;
    drop(mnt);
    let control = control(c)?;
    Ok(vec![real, control])
}

fn real(c: &Campaign, mnt: &Tmpfs) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &mnt.path().join("run"))?;
    a.run(&[
        "send",
        "--session",
        &a.session,
        "--id",
        "in-1",
        "--text",
        "in-1",
    ])?;
    // The attachment's source lives off the full disk.
    let outside = c.dir.join("disk-full-files");
    std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
    let attachment = outside.join("photo.bin");
    std::fs::write(&attachment, vec![5u8; ATTACHMENT]).map_err(|e| e.to_string())?;
    let attachment = attachment.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let session_dir = a.session_dir.to_str().ok_or("non-UTF-8 path")?.to_owned();

    let mut filler = Filler::new(mnt.path().join("filler"))?;
    let (mut inbound, mut outbound) = (WriteHistory::new(), WriteHistory::new());
    inbound.attempt("in-1");
    inbound.ack("in-1");
    let mut sizes = BTreeMap::new();
    let mut resolved = Vec::new();
    let mut failed_resolves = Vec::new();
    let mut exits = Exits::default();
    let rounds = (c.trials / 4).clamp(4, 64);
    let quiet = |args: &[&str]| {
        a.command(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .map_err(|e| format!("starting airlock: {e}"))
    };
    for round in 0..rounds {
        let free = STEP * round as u64;
        let text = format!("t{round}");
        filler.leave_free(free)?;
        inbound.attempt(&text);
        let args = [
            "send",
            "--session",
            &a.session,
            "--id",
            &text,
            "--text",
            &text,
        ];
        if exits.record("send", &quiet(&args)?) {
            inbound.ack(&text);
        }

        let key = format!("a{round}");
        filler.leave_free(free)?;
        inbound.attempt(&key);
        sizes.insert(key.clone(), ATTACHMENT as u64);
        let args = [
            "send",
            "--session",
            &a.session,
            "--id",
            &key,
            "--text",
            &key,
            "--attach",
            &attachment,
        ];
        if exits.record("send --attach", &quiet(&args)?) {
            inbound.ack(&key);
        }

        let reply = format!("r{round}");
        filler.leave_free(free)?;
        outbound.attempt(&reply);
        let args = [
            "guest",
            "reply",
            "--session-dir",
            &session_dir,
            "--in-reply-to",
            "in-1",
            "--text",
            &reply,
        ];
        if exits.record("guest reply", &quiet(&args)?) {
            outbound.ack(&reply);
        }

        filler.leave_free(free)?;
        let chat = format!("chat-r{round}");
        let out = quiet(&resolve_args(&chat))?;
        if exits.record("resolve", &out) {
            resolved.push(chat);
        } else {
            failed_resolves.push(chat);
        }
    }

    // The disk grows: every kind of write works again.
    filler.leave_free(0)?;
    mnt.remount("size=64m")?;
    a.mark_guest_stopped()?;
    let mut after = Vec::new();
    for (what, args) in [
        (
            "send",
            vec![
                "send",
                "--session",
                &a.session,
                "--id",
                "final",
                "--text",
                "final",
            ],
        ),
        (
            "guest reply",
            vec![
                "guest",
                "reply",
                "--session-dir",
                &session_dir,
                "--in-reply-to",
                "in-1",
                "--text",
                "final-r",
            ],
        ),
        ("resolve", resolve_args("chat-final").to_vec()),
    ] {
        if let Err(e) = a.run(&args) {
            after.push(format!("{what}: {e}"));
        }
    }
    // A caller retries the resolves that failed: each must now complete
    // its session, whatever the failure left half made.
    let retried = failed_resolves.len();
    for chat in failed_resolves {
        match a.run(&resolve_args(&chat)) {
            Ok(_) => resolved.push(chat),
            Err(e) => after.push(format!("resolve {chat} again: {e}")),
        }
    }
    inbound.attempt("final");
    outbound.attempt("final-r");
    if after.is_empty() {
        inbound.ack("final");
        outbound.ack("final-r");
        resolved.push("chat-final".into());
    }

    let rin = inbound.check(inbound_texts(&a)?);
    let rout = outbound.check(outbound_texts(&a)?.into_iter().map(|(_, t)| t));
    let partial = crate::send_kill::partial_files(&a.session_dir.join("inbox"), &sizes);
    let temps = a.temp_files();
    let (homeless, unlisted) = sessions_check(&a, &resolved)?;
    let integrity = a.integrity_failures();
    let doctor = a
        .command(&["doctor"])
        .output()
        .map_err(|e| e.to_string())
        .and_then(|out| {
            if out.status.success() {
                return Ok(());
            }
            // One line: each finding's check and file.
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let findings: Vec<String> = report
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["findings"].as_array().cloned().unwrap_or_default())
                .map(|f| {
                    format!(
                        "{} {}",
                        f["check"].as_str().unwrap_or("?"),
                        f["path"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            Err(findings.join(", "))
        });
    let ok = rin.is_ok()
        && rout.is_ok()
        && exits.other.is_empty()
        && exits.panics == 0
        && exits.disk_full > 0
        && after.is_empty()
        && partial.is_empty()
        && temps.is_empty()
        && homeless.is_empty()
        && unlisted.is_empty()
        && integrity.is_empty()
        && doctor.is_ok();
    let mut figures = format!(
        "exits ok {} disk-full {} other {} panic {}; inbound {rin}; outbound {rout}; \
         partial files {} temp files {} sessions without a complete folder {} resolved but \
         unlisted {} failed resolves retried {retried} writes failing after growth {} \
         {}",
        exits.ok,
        exits.disk_full,
        exits.other.len(),
        exits.panics,
        partial.len(),
        temps.len(),
        homeless.len(),
        unlisted.len(),
        after.len(),
        integrity_figure(&integrity)
    );
    if let Err(e) = doctor {
        figures.push_str(&format!("; doctor: {e}"));
    }
    let firsts = [&exits.other, &after, &partial, &homeless, &integrity];
    if let Some(first) = firsts.iter().find_map(|v| v.first()) {
        figures.push_str(&format!("; first: {first}"));
    }
    Ok(Outcome {
        name: "disk-full",
        trials: rounds,
        figures,
        ok,
    })
}

/// Sessions listed without a complete folder (both mailboxes), and
/// resolved chats not listed.
fn sessions_check(a: &Airlock, resolved: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let out = a.run(&["sessions"])?;
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("sessions output: {e}"))?;
    let mut homeless = Vec::new();
    let mut chats = Vec::new();
    for s in listed.as_array().into_iter().flatten() {
        let id = s["id"].as_str().ok_or("a session without id")?;
        // A listed session `show` cannot show has lost its folder too.
        let shown: serde_json::Value = match a.run(&["show", id]) {
            Ok(out) => serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?,
            Err(e) => {
                homeless.push(format!("{id}: {e}"));
                continue;
            }
        };
        let dir = Path::new(shown["dir"].as_str().ok_or("show printed no dir")?);
        if !dir.join("inbound.db").is_file() || !dir.join("outbound.db").is_file() {
            homeless.push(format!("{id} ({})", dir.display()));
        }
        if let Some(chat) = shown["platform_id"].as_str().or(s["platform_id"].as_str()) {
            chats.push(chat.to_owned());
        }
    }
    let unlisted = if chats.is_empty() {
        // No platform id in the listing: count sessions instead (one per chat).
        let n = listed.as_array().map_or(0, Vec::len);
        if n < resolved.len() + 1 {
            vec![format!(
                "{n} sessions listed, {} resolved",
                resolved.len() + 1
            )]
        } else {
            Vec::new()
        }
    } else {
        resolved
            .iter()
            .filter(|c| !chats.contains(c))
            .cloned()
            .collect()
    };
    Ok((homeless, unlisted))
}

/// Negative control: the in-place attachment writer on a full tmpfs leaves
/// a partial file under its final name, which the same check must see.
fn control(c: &Campaign) -> Result<Outcome, String> {
    let mnt = Tmpfs::mount(&c.dir.join("disk-full-control"), "1m")?;
    let inbox = mnt.path().join("inbox");
    let target = inbox.join("m1").join("a.bin");
    let status = std::process::Command::new(&c.driver)
        .args([
            crate::send_kill::UNSAFE_ROLE,
            target.to_str().ok_or("non-UTF-8 path")?,
        ])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("starting the unsafe writer: {e}"))?;
    let sizes = BTreeMap::from([("m1".to_owned(), crate::send_kill::UNSAFE_SIZE as u64)]);
    let partial = crate::send_kill::partial_files(&inbox, &sizes);
    Ok(Outcome {
        name: "disk-full/control in-place",
        trials: 1,
        figures: format!(
            "writer exit {:?}; partial files {} (must be > 0)",
            status.code(),
            partial.len()
        ),
        ok: !partial.is_empty(),
    })
}

/// `airlock resolve` of the shared session of `chat` in the test channel.
fn resolve_args(chat: &str) -> [&str; 9] {
    [
        "resolve",
        "--agent-group",
        "faults",
        "--channel",
        "test",
        "--platform-id",
        chat,
        "--mode",
        "shared",
    ]
}
