//! One harness run: mount a session folder, start a guest process, write, watch, verify.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::fs::CacheConfig;
use crate::medium::{Folders, VmShare};
use crate::pattern::{Pattern, message_id, reply_id};
use crate::protocol::{Event, now_ms};
use crate::report::RunReport;
use crate::sql;

/// Time a poll may spend retrying transient conditions before it returns:
/// the guest library backs off 2, 4, 8, … 250 ms after each
/// `SQLITE_READONLY_ROLLBACK` (776), and about eight in a row (≈ 0.5 s) were
/// seen on a loaded machine. Without it a poll that met the host's journal
/// several times would count as a visibility failure.
pub const RETRY_ALLOWANCE: Duration = Duration::from_millis(500);

/// The longest attribute timeout airlock accepts: VirtioFS's default (`cache=auto`).
pub const MAX_ACCEPTED_ATTR_TIMEOUT: Duration = Duration::from_secs(1);

/// Which way messages flow in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The host writes messages, the guest polls them and replies to each.
    Both,
    /// The guest writes replies on its own (no inbound traffic); the host watches `outbound.db`.
    GuestToHost,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Mount behaviour.
    pub cache: CacheConfig,
    /// Access pattern of both sides.
    pub pattern: Pattern,
    /// Messages the host writes.
    pub messages: usize,
    /// Messages the host writes at most: past `messages` it goes on until a
    /// violation shows during the run (a negative control on a loaded
    /// machine may need more chances to collide), then stops.
    pub max_messages: usize,
    /// Which way messages flow.
    pub direction: Direction,
    /// Pause between two host writes (or guest replies in [`Direction::GuestToHost`]).
    pub write_interval: Duration,
    /// Pause between two guest polls.
    pub poll_interval: Duration,
    /// How long to wait after the last write before declaring messages lost.
    pub settle: Duration,
    /// The `airlock-crossmount` binary, run as `<exe> guest …`.
    pub guest_exe: PathBuf,
    /// A VM's virtio-fs share to run on instead of the FUSE mount.
    pub vm: Option<VmShare>,
}

impl RunConfig {
    /// The stated visibility bound: attribute timeout (at most
    /// [`MAX_ACCEPTED_ATTR_TIMEOUT`]: a mount that hides changes longer is
    /// not acceptable, however it is configured), plus two poll intervals,
    /// plus [`RETRY_ALLOWANCE`] for the guest library's backoff.
    pub fn bound(&self) -> Duration {
        self.cache.ttl().min(MAX_ACCEPTED_ATTR_TIMEOUT) + 2 * self.poll_interval + RETRY_ALLOWANCE
    }
}

/// What the harness hears while a run is going.
enum Msg {
    Guest(Event),
    GuestGone,
    Written(String, Result<u64, String>),
    WriterDone,
}

/// Kills and reaps the guest if the run ends early (also on panic).
struct GuestProcess(Child);

impl Drop for GuestProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts `cmd args` with piped stdin and stdout, the mount nonce (if any)
/// in its environment the way a host hands it to a sandbox.
pub(crate) fn start_piped(
    mut cmd: Command,
    args: &[impl AsRef<std::ffi::OsStr>],
    nonce: Option<&str>,
) -> std::io::Result<Child> {
    cmd.env_remove(airlock_sqlite_fs::host::MOUNT_NONCE_ENV);
    if let Some(nonce) = nonce {
        cmd.env(airlock_sqlite_fs::host::MOUNT_NONCE_ENV, nonce);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

fn spawn_guest(
    cmd: Command,
    args: &[String],
    nonce: Option<&str>,
    tx: Sender<Msg>,
) -> Result<GuestProcess, String> {
    let exe = cmd.get_program().to_owned();
    let mut child = start_piped(cmd, args, nonce)
        .map_err(|e| format!("starting guest {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("guest has no stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let event =
                Event::parse(&line).unwrap_or(Event::Error(format!("bad guest line {line:?}")));
            if tx.send(Msg::Guest(event)).is_err() {
                return;
            }
        }
        let _ = tx.send(Msg::GuestGone);
    });
    Ok(GuestProcess(child))
}

fn stop_guest(guest: &mut GuestProcess) {
    if let Some(stdin) = guest.0.stdin.as_mut() {
        let _ = writeln!(stdin, "stop");
    }
    guest.0.stdin = None;
}

/// Runs one configuration end to end and reports what happened.
pub fn run(cfg: &RunConfig) -> Result<RunReport, String> {
    let mut f = Folders::new(cfg.vm.as_ref())?;
    let mut report = RunReport::new(cfg);
    let mut writer = cfg.pattern.host();
    let mut reader = cfg.pattern.host();
    writer.init(&f.real)?;
    let guest_dir = f.attach(cfg.cache)?;

    let (tx, rx) = mpsc::channel();
    let args = vec![
        "--dir".into(),
        guest_dir.display().to_string(),
        "--pattern".into(),
        cfg.pattern.name().into(),
        "--poll-ms".into(),
        cfg.poll_interval.as_millis().to_string(),
        "--deadline-s".into(),
        (cfg.settle.as_secs()
            + 60
            + cfg.max_messages as u64
                * (cfg.write_interval + cfg.pattern.write_hold()).as_millis() as u64
                / 1000
            + cfg.max_messages as u64 * 50 / 1000)
            .to_string(),
    ];
    let mut args = args;
    if cfg.direction == Direction::GuestToHost {
        args.extend([
            "--replies".into(),
            cfg.messages.to_string(),
            "--write-ms".into(),
            cfg.write_interval.as_millis().to_string(),
        ]);
    }
    let mut guest = spawn_guest(f.guest_command(&cfg.guest_exe), &args, None, tx.clone())?;
    wait_ready(&rx, &mut report)?;

    let real = f.real.clone();
    let (messages, max_messages) = match cfg.direction {
        Direction::Both => (cfg.messages, cfg.max_messages.max(cfg.messages)),
        Direction::GuestToHost => (0, 0),
    };
    let interval = cfg.write_interval;
    let violated = Arc::new(AtomicBool::new(false));
    let writer_violated = violated.clone();
    let writer_thread = std::thread::spawn(move || {
        for n in 0..max_messages {
            if n >= messages && writer_violated.load(Ordering::SeqCst) {
                break;
            }
            let id = message_id(n);
            let r = writer
                .write(&real, &id, &format!("{{\"n\":{n}}}"))
                .map(|()| now_ms());
            if tx.send(Msg::Written(id, r)).is_err() {
                break;
            }
            std::thread::sleep(interval);
        }
        writer.close();
        let _ = tx.send(Msg::WriterDone);
        writer.note()
    });

    watch(cfg, &rx, &mut *reader, &f.real, &mut report, &violated);
    stop_guest(&mut guest);
    drain(&rx, &mut report, Duration::from_secs(10));
    drop(guest);
    report.host_note = writer_thread.join().ok().flatten();
    reader.close();
    f.detach();
    verify(&f.real, &mut report);
    Ok(report)
}

fn wait_ready(rx: &Receiver<Msg>, report: &mut RunReport) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Guest(Event::Ready(_))) => return Ok(()),
            Ok(Msg::Guest(Event::Error(e))) => report.guest_errors.push(e),
            Ok(Msg::GuestGone) => return Err("guest exited before its first poll".into()),
            Ok(_) => {}
            Err(_) => return Err("guest did not finish its first poll within 30 s".into()),
        }
    }
}

/// Follows the run until everything arrived or `settle` passed after the last write.
fn watch(
    cfg: &RunConfig,
    rx: &Receiver<Msg>,
    reader: &mut dyn crate::pattern::HostSide,
    real: &Path,
    report: &mut RunReport,
    violated: &AtomicBool,
) {
    let mut committed_at: HashMap<String, u64> = HashMap::new();
    let mut unseen: HashSet<String> = HashSet::new();
    let mut reply_committed: HashMap<String, u64> = HashMap::new();
    let mut waiting_replies: HashSet<String> = HashSet::new();
    let mut writer_done = false;
    // The settle clock restarts with every sign of progress.
    let mut last_progress = Instant::now();
    let mut last_reply_poll = Instant::now();
    let mut last_housekeeping = Instant::now();
    let check_replies = |reader: &mut dyn crate::pattern::HostSide,
                         report: &mut RunReport,
                         waiting: &mut HashSet<String>,
                         reply_committed: &HashMap<String, u64>| {
        match reader.replies(real) {
            Ok(ids) => {
                let now = now_ms();
                let ids: HashSet<String> = ids.into_iter().collect();
                waiting.retain(|to| {
                    if ids.contains(&reply_id(to)) {
                        let c = reply_committed.get(to).copied().unwrap_or(now);
                        report.reply_delays_ms.push(now.saturating_sub(c));
                        false
                    } else {
                        true
                    }
                });
            }
            Err(e) => report.host_errors.push(format!("reading replies: {e}")),
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Msg::Written(id, Ok(t))) => {
                report.sent += 1;
                unseen.insert(id.clone());
                committed_at.insert(id, t);
            }
            Ok(Msg::Written(id, Err(e))) => report.host_errors.push(format!("writing {id}: {e}")),
            Ok(Msg::WriterDone) => {
                writer_done = true;
                last_progress = Instant::now();
            }
            Ok(Msg::Guest(event)) => match event {
                Event::Seen(id, t) => {
                    last_progress = Instant::now();
                    // Seen before the host's write call returned: zero delay.
                    let d = committed_at.get(&id).map_or(0, |&c| t.saturating_sub(c));
                    report.delays_ms.push(d);
                    unseen.remove(&id);
                    report.delays_by_id.push((id, d));
                    report.seen += 1;
                }
                Event::Replied(id, t) => {
                    last_progress = Instant::now();
                    report.replies_committed += 1;
                    reply_committed.insert(id.clone(), t);
                    waiting_replies.insert(id.clone());
                    // The guest's write returned: the reply must be on the host's disk now.
                    check_replies(&mut *reader, report, &mut waiting_replies, &reply_committed);
                    if waiting_replies.contains(&id) {
                        report.not_visible_at_commit += 1;
                    }
                }
                other => report.absorb(other),
            },
            Ok(Msg::GuestGone) => {
                report.guest_errors.push("guest exited early".into());
                break;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_housekeeping.elapsed() >= Duration::from_millis(250) {
            last_housekeeping = Instant::now();
            if let Err(e) = reader.housekeeping(real) {
                report.host_errors.push(format!("housekeeping: {e}"));
            }
        }
        if !violated.load(Ordering::SeqCst) && violation_shows(cfg, report, &unseen, &committed_at)
        {
            violated.store(true, Ordering::SeqCst);
        }
        if !waiting_replies.is_empty() && last_reply_poll.elapsed() >= Duration::from_millis(20) {
            last_reply_poll = Instant::now();
            check_replies(&mut *reader, report, &mut waiting_replies, &reply_committed);
        }
        if writer_done {
            let complete = report.seen >= report.sent
                && report.replies_committed >= report.expected_replies()
                && waiting_replies.is_empty();
            if complete || last_progress.elapsed() >= cfg.settle {
                break;
            }
        }
    }
    report.replies_unseen = waiting_replies.len();
}

/// Whether the run already broke an invariant in a way visible while it goes:
/// an error, a duplicate, a reply missing at commit, or a message unseen for
/// longer than the bound. Only decides when a control may stop writing; the
/// verdict is [`RunReport::failures`] at the end.
fn violation_shows(
    cfg: &RunConfig,
    report: &RunReport,
    unseen: &HashSet<String>,
    committed_at: &HashMap<String, u64>,
) -> bool {
    if report.errors() > 0 || report.dups > 0 || report.not_visible_at_commit > 0 {
        return true;
    }
    let now = now_ms();
    let bound = cfg.bound().as_millis() as u64;
    unseen
        .iter()
        .filter_map(|id| committed_at.get(id))
        .any(|&t| now.saturating_sub(t) > bound)
}

fn drain(rx: &Receiver<Msg>, report: &mut RunReport, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Guest(Event::Done)) | Ok(Msg::GuestGone) => return,
            Ok(Msg::Guest(Event::Seen(_, _))) => report.seen_late += 1,
            Ok(Msg::Guest(e)) => report.absorb(e),
            Ok(_) => {}
            Err(_) => {
                report
                    .guest_errors
                    .push("guest did not stop within 10 s".into());
                return;
            }
        }
    }
}

fn verify(real: &Path, report: &mut RunReport) {
    let inbound = real.join("inbound.db");
    match sql::inbound_ids(&inbound) {
        Ok(ids) => {
            report.host_rows = ids.len();
        }
        Err(e) => report.integrity_errors.push(e),
    }
    for name in ["inbound.db", "outbound.db"] {
        let path = real.join(name);
        if path.exists()
            && let Err(e) = sql::integrity(&path)
        {
            report.integrity_errors.push(e);
        }
    }
}

/// Retry counts merged over several sources.
pub fn merge_retries(into: &mut BTreeMap<String, u64>, code: String, n: u64) {
    *into.entry(code).or_default() += n;
}

/// How the mount self-test is run on one mount.
#[derive(Debug, Clone, Copy)]
pub struct MountCheckPlan {
    /// First let an earlier guest read a previous nonce through the mount (so
    /// the mount caches it, as a VM's page cache outlives one container).
    pub earlier_reader: bool,
    /// Nonces the host hands the guest ([`airlock_sqlite_fs::host::start_mount_check`]).
    pub rounds: usize,
    /// How long the guest waits for each.
    pub timeout: Duration,
}

/// The mount self-test on one mount: `Ok(None)` when the guest saw every nonce.
pub fn mount_check(
    exe: &Path,
    vm: Option<&VmShare>,
    cache: CacheConfig,
    plan: MountCheckPlan,
) -> Result<Option<String>, String> {
    let mut f = Folders::new(vm)?;
    let guest_dir = f.attach(cache)?;
    let args = vec![
        "--dir".into(),
        guest_dir.display().to_string(),
        "--deadline-s".into(),
        "0".into(),
        "--mount-check-ms".into(),
        plan.timeout.as_millis().to_string(),
    ];
    let check = |nonce: &str| -> Result<Option<String>, String> {
        let (tx, rx) = mpsc::channel();
        let guest = spawn_guest(f.guest_command(exe), &args, Some(nonce), tx)?;
        let rounds = nonce.split(',').count() as u32;
        let until = Instant::now() + plan.timeout * rounds + Duration::from_secs(30);
        let mut seen = None;
        while seen.is_none() {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Msg::Guest(Event::MountCheck(r))) => seen = Some(r),
                Ok(Msg::GuestGone) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(guest);
        seen.ok_or_else(|| "guest reported no mount check".to_owned())
    };
    let start = |rounds| {
        airlock_sqlite_fs::host::start_mount_check(&f.real, rounds).map_err(|e| e.to_string())
    };
    // Open handles through a local mount, as another process in the guest
    // VM would hold: they keep the kernel's inodes (and their caches) alive
    // between the two guests, whatever the entry timeout.
    let mut pinned = Vec::new();
    if plan.earlier_reader {
        // A freshly written file, read once: this passes on any mount.
        if let Some(e) = check(&start(1)?)? {
            return Err(format!("first mount check failed: {e}"));
        }
        if let Some(mnt) = f.local_mount() {
            for name in [crate::nonce::NONCE_FILE, crate::nonce::SIZED_NONCE_FILE] {
                let path = mnt.join(name);
                pinned.push(
                    std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                );
            }
        }
    }
    let result = check(&start(plan.rounds)?)?;
    drop(pinned);
    f.detach();
    Ok(result)
}
