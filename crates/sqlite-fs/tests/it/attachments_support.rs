//! Shared fixtures of the attachment tests: a session folder beside an
//! "outside" folder full of secrets, snapshots to prove nothing outside
//! changed, and a timeout so a blocking bug fails instead of hanging.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// Bytes that must never appear in anything the host reads or writes.
pub const SECRET: &[u8] = b"TOP-SECRET-0123456789";

/// A temp tree: `sessions/ag/sess/` (the session) and `outside/` (secrets).
pub struct Fixture {
    pub tmp: TempDir,
    pub sessions_root: PathBuf,
    pub session: PathBuf,
    pub outside: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let sessions_root = tmp.path().join("sessions");
        let session = sessions_root.join("ag").join("sess");
        fs::create_dir_all(&session).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("m1")).unwrap();
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("secret.txt"), SECRET).unwrap();
        fs::write(outside.join("a.png"), SECRET).unwrap();
        fs::write(outside.join("m1").join("a.png"), SECRET).unwrap();
        fs::write(outside.join("dir").join("a.png"), SECRET).unwrap();
        // A victim beside the session, where `../x` style ids would land.
        fs::create_dir_all(sessions_root.join("ag").join("x")).unwrap();
        fs::write(sessions_root.join("ag").join("x").join("keep"), SECRET).unwrap();
        fs::create_dir_all(tmp.path().join("x")).unwrap();
        fs::write(tmp.path().join("x").join("keep"), SECRET).unwrap();
        Self {
            tmp,
            sessions_root,
            session,
            outside,
        }
    }

    /// Puts back the secrets a leaking control implementation removed, so
    /// it can go on proving other kinds of leak.
    pub fn restore_outside(&self) {
        for dir in ["m1", "dir"] {
            let _ = fs::create_dir_all(self.outside.join(dir));
            let _ = fs::write(self.outside.join(dir).join("a.png"), SECRET);
        }
        let _ = fs::write(self.outside.join("secret.txt"), SECRET);
        let _ = fs::write(self.outside.join("a.png"), SECRET);
    }

    pub fn secret_file(&self) -> PathBuf {
        self.outside.join("secret.txt")
    }

    /// `outbox/<id>/` created as a real folder.
    pub fn outbox_dir(&self, id: &str) -> PathBuf {
        let dir = self.session.join("outbox").join(id);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Everything outside the session folder, to compare before and after.
    pub fn outside_snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        collect(self.tmp.path(), &self.session, &mut snap.0);
        snap
    }
}

/// Path → what is there (kind and, for files, content).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, String>);

fn collect(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let what = if ft.is_symlink() {
            format!("symlink {}", fs::read_link(&path).unwrap().display())
        } else if ft.is_dir() {
            collect(&path, skip, out);
            "dir".to_string()
        } else if ft.is_file() {
            format!("file {:?}", fs::read(&path).unwrap())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        out.insert(path, what);
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `secs`
/// (a FIFO open that blocks would otherwise hang the suite).
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("operation did not finish within {secs} s (blocked?)"))
}

pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

pub fn link(target: &Path, at: &Path) {
    symlink(target, at).unwrap();
}

/// Whether any byte sequence of `data` contains [`SECRET`].
pub fn leaks(data: &[u8]) -> bool {
    data.windows(SECRET.len()).any(|w| w == SECRET)
}

/// Logs to the test's captured output, so warnings are visible on failure.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
}
