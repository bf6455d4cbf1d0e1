//! Power loss, simulated: a run of `airlock send` (with and without
//! attachments) and guest replies (`airlock guest reply`, and a library
//! guest's single commit, [`ONE_REPLY_ROLE`]) on a real ext4 whose disk logs
//! every write and cache flush ([`disk`], the `dm-log-writes` method on a
//! loop device over FUSE, since this kernel has no device-mapper), then
//! power cuts replayed at random points of that log. A cut keeps every
//! write a flush covered and, of the writes after the last flush, none,
//! all, or a random half of their 4 KiB blocks (a torn cache). After each
//! cut the image is mounted (ext4 replays its journal, as a boot does), the
//! host marks the dead guest stopped and reads both directions, and:
//! every message acknowledged before the cut is present, nothing appears
//! that had not started, nothing twice; every database passes
//! `integrity_check` (the published `inbound.db` only after the host's next
//! write, which rebuilds a publish the cut tore); no attachment under its
//! final name is partial and no stored message lacks its attachment;
//! `e2fsck -fn` finds nothing.
//!
//! Negative control: the same run with every writer under `eatmydata`
//! (fsync and fdatasync made no-ops): the checker must report a loss, a
//! damaged attachment or a corrupt file.

mod block;
mod disk;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock_core::testing::history::{WriteHistory, WriteReport};

use crate::airlock::{Airlock, files_under, text_of};
use crate::send_kill::attachment;
use crate::{Campaign, Outcome, Rng};
use block::{Loop, Mounted};
use disk::{Recording, WriteLog};

/// Cuts checked against one recorded run; more cuts record more runs.
const CUTS_PER_RUN: usize = 50;
/// Host messages per run (each followed by a guest reply).
const MESSAGES: usize = 24;
/// Host messages per run of the negative control.
const CONTROL_MESSAGES: usize = 8;

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    if let Some(why) = block::unavailable() {
        return Err(why);
    }
    Ok(vec![real(c)?, control(c)?])
}

fn real(c: &Campaign) -> Result<Outcome, String> {
    let cuts = c.trials.max(1);
    let t = campaign(c, "power-loss", &[], cuts, MESSAGES)?;
    let ok = t.is_clean() && t.acked_at_cuts > 0 && t.failed_writes == 0;
    Ok(Outcome {
        name: "power-loss",
        trials: cuts,
        figures: t.to_string(),
        ok,
    })
}

fn control(c: &Campaign) -> Result<Outcome, String> {
    if std::process::Command::new("sh")
        .args(["-c", "command -v eatmydata"])
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        return Err("the control needs eatmydata (apt-get install eatmydata)".into());
    }
    let cuts = c.trials.clamp(1, 20);
    let wrapper = ["eatmydata".to_owned()];
    let t = campaign(c, "power-loss-control", &wrapper, cuts, CONTROL_MESSAGES)?;
    let caught = t.lost + t.damaged + t.integrity + t.unreadable;
    Ok(Outcome {
        name: "power-loss/control no fsync",
        trials: cuts,
        figures: format!("{t} (lost+damaged+corrupt must be > 0)"),
        ok: caught > 0,
    })
}

/// Where one campaign keeps its files.
struct Paths {
    root: PathBuf,
    /// The FUSE mount serving the logged disk.
    fuse: PathBuf,
    /// Where ext4 is mounted, live and after each cut (the registry holds
    /// absolute session folders, so both are the same path).
    mnt: PathBuf,
    /// Attachments to send, outside the simulated disk.
    files: PathBuf,
    /// Scratch image: mkfs's, then each cut's.
    image: PathBuf,
}

impl Paths {
    fn new(c: &Campaign, name: &str) -> Result<Paths, String> {
        let root = c.dir.join(name);
        let _ = std::fs::remove_dir_all(&root);
        let files = root.join("files");
        std::fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
        Ok(Paths {
            fuse: root.join("fuse"),
            mnt: root.join("mnt"),
            image: root.join("disk.img"),
            files,
            root,
        })
    }
}

/// One write the run attempted.
struct Write {
    key: String,
    outbound: bool,
    /// Its start among the run's events: none of its disk writes come before.
    started: usize,
    /// Its exit among the run's events: all of its disk writes come before.
    ended: usize,
    /// Whether it exited 0.
    acked: bool,
}

/// What one run did, placed in its disk's log.
struct Workload {
    airlock: Airlock,
    /// Log entries once the session existed and was synced.
    start: usize,
    /// Log entries when the last writer exited.
    end: usize,
    /// Log entries at each writer's start and exit, in order: a cut falls
    /// between two of these events as well as between two log entries.
    events: Vec<usize>,
    writes: Vec<Write>,
    /// Attachment content by message key.
    attachments: BTreeMap<String, Vec<u8>>,
}

/// One recorded run.
struct Run {
    log: WriteLog,
    work: Workload,
}

/// Runs one writer, recording its start and exit as events.
fn write(
    rec: &Recording,
    events: &mut Vec<usize>,
    mut command: Command,
    key: &str,
    outbound: bool,
) -> Result<Write, String> {
    let started = events.len();
    events.push(rec.position());
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("starting a writer: {e}"))?;
    events.push(rec.position());
    Ok(Write {
        key: key.to_owned(),
        outbound,
        started,
        ended: started + 1,
        acked: status.success(),
    })
}

/// The role of this driver that writes one guest reply, `out-KEY` with
/// text KEY, as a library guest does: one transaction
/// (`GuestMailbox::write_message_out`), then exit. `airlock guest reply`
/// also commits its `completed` ack, whose new journal makes SQLite sync
/// the folder and with it the reply's journal unlink; a lone commit
/// depends on `synchronous=EXTRA` for that.
pub const ONE_REPLY_ROLE: &str = "--guest-one-reply";

/// Runs [`ONE_REPLY_ROLE`] when `args` name it.
pub fn one_reply_role(args: &[String]) -> Option<std::process::ExitCode> {
    let [role, dir, key] = args else { return None };
    if role != ONE_REPLY_ROLE {
        return None;
    }
    let write = || -> Result<(), String> {
        let guest = airlock_sqlite_fs::GuestMailbox::open(dir).map_err(|e| e.to_string())?;
        let id = airlock_core::MessageId::new(format!("out-{key}")).map_err(|e| e.to_string())?;
        let msg = airlock_core::mailbox::NewOutboundMessage::new(
            id,
            "chat",
            format!(r#"{{"text":"{key}"}}"#),
        );
        guest
            .write_message_out(&msg)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    Some(match write() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), e.as_bytes());
            std::process::ExitCode::FAILURE
        }
    })
}

/// Records a run on a fresh ext4 over a logged disk.
fn record(
    c: &Campaign,
    p: &Paths,
    wrapper: &[String],
    messages: usize,
    rng: &mut Rng,
) -> Result<Run, String> {
    let base = block::ext4_image(&p.image)?;
    let recording = Recording::start(base.clone(), &p.fuse)?;
    let work = drive(c, p, &recording, wrapper, messages, rng);
    let log = recording.finish(base);
    Ok(Run { log, work: work? })
}

/// The run itself: `messages` sends (every other one with an attachment
/// of 16 KiB to 528 KiB), each followed by a guest reply; then unmounts.
fn drive(
    c: &Campaign,
    p: &Paths,
    recording: &Recording,
    wrapper: &[String],
    messages: usize,
    rng: &mut Rng,
) -> Result<Workload, String> {
    let dev = Loop::attach(&recording.disk())?;
    let mounted = Mounted::new(&dev, &p.mnt)?;
    let a = Airlock::new(&c.airlock, &p.mnt.join("airlock"))?;
    mounted.sync()?;
    let start = recording.position();
    let session_dir = a.session_dir.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let (mut writes, mut events, mut attachments) = (Vec::new(), Vec::new(), BTreeMap::new());
    for i in 0..messages {
        let key = format!("s{i}");
        let mut args = vec!["send", "--session", &a.session, "--id", &key];
        args.extend(["--text", &key]);
        let path;
        if i % 2 == 1 {
            let size = (16 << 10) + rng.below(512 << 10) as usize;
            path = attachment(&p.files, &key, size)?;
            let data = std::fs::read(&path).map_err(|e| e.to_string())?;
            attachments.insert(key.clone(), data);
            args.extend(["--attach", path.to_str().ok_or("non-UTF-8 path")?]);
        }
        writes.push(write(
            recording,
            &mut events,
            a.command_via(wrapper, &args),
            &key,
            false,
        )?);
        let reply = format!("r{i}");
        let args = [
            "guest",
            "reply",
            "--session-dir",
            &session_dir,
            "--in-reply-to",
            &key,
            "--text",
            &reply,
        ];
        // Every other reply is a library guest's single commit.
        let command = if i % 2 == 0 {
            a.command_via(wrapper, &args)
        } else {
            let mut one = match wrapper.split_first() {
                Some((program, rest)) => {
                    let mut one = Command::new(program);
                    one.args(rest).arg(&c.driver);
                    one
                }
                None => Command::new(&c.driver),
            };
            one.args([ONE_REPLY_ROLE, session_dir.as_str(), reply.as_str()]);
            one
        };
        writes.push(write(recording, &mut events, command, &reply, true)?);
    }
    let end = recording.position();
    drop(mounted);
    drop(dev);
    Ok(Workload {
        airlock: a,
        start,
        end,
        events,
        writes,
        attachments,
    })
}

/// What a cut keeps of the writes after its last flush.
#[derive(Clone, Copy)]
enum Tail {
    Lost,
    Torn,
    Kept,
}

/// A power cut: when the disk had received its first `entries` log
/// entries and the driver had seen its first `events` events.
struct Cut {
    entries: usize,
    events: usize,
    tail: Tail,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = match self.tail {
            Tail::Lost => "unflushed writes lost",
            Tail::Torn => "unflushed blocks half kept",
            Tail::Kept => "unflushed writes kept",
        };
        write!(
            f,
            "cut after log entry {} and event {} ({tail})",
            self.entries, self.events
        )
    }
}

impl Cut {
    /// A random cut: a point of the log, then one of the gaps between
    /// events during which the log had that length (several when the
    /// writers wrote nothing to the disk, as under eatmydata).
    fn random(w: &Workload, tail: Tail, rng: &mut Rng) -> Cut {
        let entries = w.start + rng.below((w.end - w.start) as u64 + 1) as usize;
        let before = |g: usize| g.checked_sub(1).map_or(w.start, |i| w.events[i]);
        let after = |g: usize| w.events.get(g).copied().unwrap_or(w.end);
        let gaps: Vec<usize> = (0..=w.events.len())
            .filter(|&g| before(g) <= entries && entries <= after(g))
            .collect();
        // Never empty: the events' positions climb from `start` to `end`.
        let events = gaps[rng.below(gaps.len() as u64) as usize];
        Cut {
            entries,
            events,
            tail,
        }
    }
}

/// What all cuts of a campaign found.
#[derive(Default)]
struct Tally {
    runs: usize,
    cuts: usize,
    log_entries: usize,
    flushes: usize,
    written: usize,
    failed_writes: usize,
    /// Acknowledged-before-the-cut messages, summed over cuts.
    acked_at_cuts: usize,
    lost: usize,
    duplicated: usize,
    unexpected: usize,
    unknown_present: usize,
    unknown_absent: usize,
    damaged: usize,
    integrity: usize,
    unreadable: usize,
    fsck: usize,
    /// Cuts after which the published `inbound.db` was corrupt at boot.
    inbound_torn_at_boot: usize,
    first: Option<String>,
}

impl Tally {
    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(what());
        }
    }

    fn add(&mut self, cut: &Cut, report: &WriteReport) {
        self.acked_at_cuts += report.acked;
        self.lost += report.lost.len();
        self.duplicated += report.duplicated.len();
        self.unexpected += report.unexpected.len();
        self.unknown_present += report.unknown_present;
        self.unknown_absent += report.unknown_absent;
        if !report.is_ok() {
            self.note(|| format!("{cut}: {report}"));
        }
    }

    fn is_clean(&self) -> bool {
        self.lost + self.duplicated + self.unexpected + self.damaged == 0
            && self.integrity + self.unreadable + self.fsck == 0
            && self.cuts > 0
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runs {} log {} entries ({} flushes, {} MiB), failed writes {}; over all cuts: acked {} lost {} duplicated {} unexpected {} unknown {}+{} (present+absent); damaged attachments {} integrity failures {} unreadable {} fsck failures {}; inbound.db torn at boot (rebuilt by the next write) {}",
            self.runs,
            self.log_entries,
            self.flushes,
            self.written >> 20,
            self.failed_writes,
            self.acked_at_cuts,
            self.lost,
            self.duplicated,
            self.unexpected,
            self.unknown_present,
            self.unknown_absent,
            self.damaged,
            self.integrity,
            self.unreadable,
            self.fsck,
            self.inbound_torn_at_boot
        )?;
        if let Some(first) = &self.first {
            write!(f, "; first: {first}")?;
        }
        Ok(())
    }
}

/// Records runs and checks `cuts` cuts at random points of them.
fn campaign(
    c: &Campaign,
    name: &str,
    wrapper: &[String],
    cuts: usize,
    messages: usize,
) -> Result<Tally, String> {
    let p = Paths::new(c, name)?;
    let mut rng = Rng::from_time();
    let mut t = Tally::default();
    while t.cuts < cuts {
        let run = record(c, &p, wrapper, messages, &mut rng)?;
        t.runs += 1;
        t.log_entries += run.log.len();
        t.flushes += run.log.flushes();
        t.written += run.log.written();
        let w = &run.work;
        t.failed_writes += w.writes.iter().filter(|w| !w.acked).count();
        for _ in 0..(cuts - t.cuts).min(CUTS_PER_RUN) {
            let tail = [Tail::Lost, Tail::Torn, Tail::Kept][t.cuts % 3];
            let cut = Cut::random(w, tail, &mut rng);
            check_cut(&run, &p, &cut, &mut rng, &mut t)?;
            t.cuts += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&p.root);
    Ok(t)
}

/// Replays one cut, boots it and checks it. An `Err` is a broken harness
/// (no loop device, …); what the cut did to airlock's files goes in `t`.
fn check_cut(run: &Run, p: &Paths, cut: &Cut, rng: &mut Rng, t: &mut Tally) -> Result<(), String> {
    let at = cut.entries;
    let image = match cut.tail {
        Tail::Lost => run.log.image_at(at, &mut || false),
        Tail::Kept => run.log.image_at(at, &mut || true),
        Tail::Torn => run.log.image_at(at, &mut || rng.below(2) == 0),
    };
    std::fs::write(&p.image, &image).map_err(|e| format!("{}: {e}", p.image.display()))?;
    drop(image);
    let dev = Loop::attach(&p.image)?;
    match Mounted::new(&dev, &p.mnt) {
        Ok(mounted) => {
            inspect(run, cut, t);
            drop(mounted);
        }
        Err(e) => {
            t.unreadable += 1;
            t.note(|| format!("{cut}: {e}"));
        }
    }
    if let Err(e) = dev.fsck() {
        t.fsck += 1;
        t.note(|| format!("{cut}: {e}"));
    }
    Ok(())
}

/// The host's restart on a cut image: the guest died with the machine, so
/// it is marked stopped (its journal is rolled back), then both directions
/// are read and every file checked.
fn inspect(run: &Run, cut: &Cut, t: &mut Tally) {
    let w = &run.work;
    let (mut inbound, mut outbound) = (WriteHistory::new(), WriteHistory::new());
    for w in w.writes.iter().filter(|w| w.started < cut.events) {
        let history = if w.outbound {
            &mut outbound
        } else {
            &mut inbound
        };
        history.attempt(&w.key);
        if w.acked && w.ended < cut.events {
            history.ack(&w.key);
        }
    }
    match read_back(&w.airlock) {
        Ok((seen_in, seen_out)) => {
            let damaged = damaged_attachments(&w.airlock, &w.attachments, &seen_in);
            t.damaged += damaged.len();
            if let Some(d) = damaged.first() {
                t.note(|| format!("{cut}: damaged attachment {d}"));
            }
            t.add(cut, &inbound.check(seen_in));
            t.add(cut, &outbound.check(seen_out));
        }
        Err(e) => {
            t.unreadable += 1;
            t.note(|| format!("{cut}: reading after the cut: {e}"));
        }
    }
    // A publish torn by the cut may leave the guest's `inbound.db` corrupt
    // until the host's next operation rebuilds it from `host.db` (the
    // design's repair, see sqlite-fs's docs): counted at boot, judged after
    // that next write. Every other file must be sound at boot.
    let (published, other): (Vec<String>, Vec<String>) = w
        .airlock
        .integrity_failures()
        .into_iter()
        .partition(|f| f.contains("/inbound.db:"));
    t.inbound_torn_at_boot += usize::from(!published.is_empty());
    t.integrity += other.len();
    if let Some(i) = other.first() {
        t.note(|| format!("{cut}: at boot: {i}"));
    }
    if let Err(e) = w.airlock.run(&[
        "send",
        "--session",
        &w.airlock.session,
        "--id",
        "after-cut",
        "--text",
        "after-cut",
    ]) {
        t.unreadable += 1;
        t.note(|| format!("{cut}: the host's next write: {e}"));
    }
    let integrity = w.airlock.integrity_failures();
    t.integrity += integrity.len();
    if let Some(i) = integrity.first() {
        t.note(|| format!("{cut}: after the next write: {i}"));
    }
}

/// Marks the guest stopped, then the keys of both directions.
fn read_back(a: &Airlock) -> Result<(Vec<String>, Vec<String>), String> {
    a.mark_guest_stopped()?;
    let keys = |rows: Vec<serde_json::Value>| -> Vec<String> {
        rows.iter()
            .filter_map(|r| r["content"].as_str().and_then(text_of))
            .collect()
    };
    Ok((keys(a.inbound()?), keys(a.outbound()?)))
}

/// Attachments under a final name whose content is not what was sent, and
/// stored messages (`seen`) whose attachment is not there in full.
fn damaged_attachments(
    a: &Airlock,
    sent: &BTreeMap<String, Vec<u8>>,
    seen: &[String],
) -> Vec<String> {
    let inbox = a.session_dir.join("inbox");
    let mut damaged = Vec::new();
    let mut complete = BTreeSet::new();
    for file in files_under(&inbox) {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if name(&file).starts_with(".airlock-tmp") {
            continue;
        }
        let key = file.parent().map(name).unwrap_or_default();
        let content = std::fs::read(&file).unwrap_or_default();
        if sent.get(&key) == Some(&content) {
            complete.insert(key);
        } else {
            damaged.push(format!("{} ({} bytes)", file.display(), content.len()));
        }
    }
    for key in seen {
        if sent.contains_key(key) && !complete.contains(key) {
            damaged.push(format!("message {key} stored without its attachment"));
        }
    }
    damaged
}
