//! The guest process: polls the mailbox through the mount and replies, reporting on stdout.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::pattern::{GuestSide, Pattern, Seen};
use crate::protocol::{Event, now_ms};

/// What one guest process does.
#[derive(Debug, Clone)]
pub struct GuestArgs {
    /// The session folder as the guest sees it (through the mount).
    pub dir: PathBuf,
    /// The access pattern.
    pub pattern: Pattern,
    /// Pause between polls.
    pub poll: Duration,
    /// Exit after this long even if never told to stop.
    pub deadline: Duration,
    /// Run the mount self-test first (nonce from the environment), waiting at most this long.
    pub mount_check: Option<Duration>,
    /// Replies to write on its own after the first poll (guest→host-only runs).
    pub replies: usize,
    /// Pause between those replies.
    pub write_interval: Duration,
}

/// Parses `--dir D --pattern P --poll-ms N --deadline-s N [--mount-check-ms N]
/// [--replies N --write-ms N]`.
pub fn parse_args(args: &[String]) -> Result<GuestArgs, String> {
    let mut dir = None;
    let mut pattern = Pattern::Airlock;
    let mut poll = Duration::from_millis(100);
    let mut deadline = Duration::from_secs(120);
    let mut mount_check = None;
    let mut replies = 0;
    let mut write_interval = Duration::from_millis(10);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let ms = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value)),
            "--pattern" => {
                pattern = Pattern::parse(value).ok_or_else(|| format!("unknown pattern {value}"))?
            }
            "--poll-ms" => poll = Duration::from_millis(ms()?),
            "--deadline-s" => deadline = Duration::from_secs(ms()?),
            "--mount-check-ms" => mount_check = Some(Duration::from_millis(ms()?)),
            "--replies" => replies = ms()? as usize,
            "--write-ms" => write_interval = Duration::from_millis(ms()?),
            _ => return Err(format!("unknown guest flag {flag}")),
        }
    }
    Ok(GuestArgs {
        dir: dir.ok_or("--dir is required")?,
        pattern,
        poll,
        deadline,
        mount_check,
        replies,
        write_interval,
    })
}

fn emit(e: &Event) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the harness is gone; nothing useful is left to do.
    let _ = writeln!(out, "{}", e.line());
    let _ = out.flush();
}

/// Writes `args.replies` replies unprompted, reporting each commit.
fn self_replies(args: &GuestArgs, side: &mut dyn GuestSide, stop: &AtomicBool) {
    for n in 0..args.replies {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let to = Seen {
            id: crate::pattern::message_id(n),
            seq: crate::pattern::message_seq(n),
        };
        match side.reply(&args.dir, &to) {
            Ok(()) => emit(&Event::Replied(to.id, now_ms())),
            Err(e) => emit(&Event::Error(format!("reply: {e}"))),
        }
        std::thread::sleep(args.write_interval);
    }
}

/// When each reply+ack returned: a poll that began later must not return it again.
type Acked = Arc<Mutex<HashMap<String, Instant>>>;

/// The replying half of the guest: its own mailbox handle on its own thread,
/// so reply work never delays the next poll.
fn replier(
    dir: PathBuf,
    mut side: Box<dyn GuestSide + Send>,
    queue: mpsc::Receiver<Seen>,
    acked: Acked,
) -> BTreeMap<String, u64> {
    for row in queue {
        match side.reply(&dir, &row) {
            Ok(()) => {
                let done = Instant::now();
                acked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(row.id.clone(), done);
                emit(&Event::Replied(row.id, now_ms()));
            }
            Err(e) => emit(&Event::Error(format!("reply: {e}"))),
        }
    }
    let retries = side.retries();
    side.close();
    retries
}

/// Runs the guest until stdin says `stop` (or closes) or the deadline passes.
pub fn run(args: &GuestArgs) {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() != "stop" => continue,
                    _ => break,
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    if let Some(timeout) = args.mount_check {
        let r = match airlock_sqlite_fs::guest::check_mount_from_env(&args.dir, timeout) {
            Ok(true) => None,
            Ok(false) => Some("no nonce in the environment".to_owned()),
            Err(e) => Some(e.to_string()),
        };
        emit(&Event::MountCheck(r));
    }
    let mut side = args.pattern.guest();
    let acked: Acked = Arc::default();
    let (queue, queued) = mpsc::channel();
    let replier = {
        let (dir, side, acked) = (args.dir.clone(), args.pattern.guest(), acked.clone());
        std::thread::spawn(move || replier(dir, side, queued, acked))
    };
    let start = Instant::now();
    let poll_every = args.pattern.guest_poll(args.poll);
    let mut seen = HashSet::new();
    let mut first = true;
    while !stop.load(Ordering::SeqCst) && start.elapsed() < args.deadline {
        let poll_start = Instant::now();
        match side.poll(&args.dir) {
            Ok(rows) => {
                let t = now_ms();
                let acked = acked.lock().unwrap_or_else(|p| p.into_inner());
                for row in rows {
                    if let Some(done) = acked.get(&row.id) {
                        if *done < poll_start {
                            emit(&Event::Dup(row.id, t));
                        }
                    } else if seen.insert(row.id.clone()) {
                        emit(&Event::Seen(row.id.clone(), t));
                        let _ = queue.send(row);
                    }
                    // Otherwise: seen, reply still queued; it is rightly still pending.
                }
            }
            Err(e) => emit(&Event::Error(format!("poll: {e}"))),
        }
        if first {
            emit(&Event::Ready(now_ms()));
            first = false;
            self_replies(args, &mut *side, &stop);
        }
        std::thread::sleep((poll_start + poll_every).saturating_duration_since(Instant::now()));
    }
    drop(queue);
    let mut retries = side.retries();
    side.close();
    if let Ok(more) = replier.join() {
        for (code, n) in more {
            *retries.entry(code).or_default() += n;
        }
    }
    for (code, n) in retries {
        emit(&Event::Retry(code, n));
    }
    emit(&Event::Done);
}
