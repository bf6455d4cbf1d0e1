//! Running the `airlock` binary on a scenario's data dir, and the checks
//! every scenario makes afterwards (integrity, stray temporary files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// One data dir with one session, driven through the CLI.
pub struct Airlock {
    binary: PathBuf,
    /// The data dir.
    pub data: PathBuf,
    /// The session's id.
    pub session: String,
    /// The session's folder.
    pub session_dir: PathBuf,
}

impl Airlock {
    /// A fresh data dir `dir` (removed first) with one session.
    pub fn new(binary: &Path, dir: &Path) -> Result<Airlock, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut me = Airlock {
            binary: binary.to_path_buf(),
            data: dir.join("data"),
            session: String::new(),
            session_dir: PathBuf::new(),
        };
        let out = me.run(&[
            "resolve",
            "--agent-group",
            "faults",
            "--channel",
            "test",
            "--platform-id",
            "chat-1",
            "--mode",
            "shared",
        ])?;
        let v: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("resolve output: {e}"))?;
        me.session = v["id"].as_str().ok_or("resolve printed no id")?.to_owned();
        me.session_dir = PathBuf::from(v["dir"].as_str().ok_or("resolve printed no dir")?);
        Ok(me)
    }

    /// `airlock --json --data-dir DATA args…`, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_via(&[], args)
    }

    /// [`Airlock::command`] run by `wrapper` (e.g. `fiu-run -x -c …`).
    pub fn command_via(&self, wrapper: &[String], args: &[&str]) -> Command {
        let mut c = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        c.arg("--json").arg("--data-dir").arg(&self.data).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `args` to completion; an exit other than 0 is an error.
    pub fn run(&self, args: &[&str]) -> Result<Output, String> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("starting airlock: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "airlock {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The session's inbound rows (the final read).
    pub fn inbound(&self) -> Result<Vec<Value>, String> {
        self.messages("in")
    }

    /// The session's outbound rows: the guest's replies, as the host reads them.
    pub fn outbound(&self) -> Result<Vec<Value>, String> {
        self.messages("out")
    }

    fn messages(&self, direction: &str) -> Result<Vec<Value>, String> {
        let out = self.run(&[
            "messages",
            &self.session,
            "--direction",
            direction,
            "--limit",
            "1000000",
        ])?;
        let v: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("messages output: {e}"))?;
        Ok(v[direction].as_array().cloned().unwrap_or_default())
    }

    /// `PRAGMA integrity_check` of every database under the data dir but
    /// the quarantine; returns the files that failed.
    pub fn integrity_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for db in files_under(&self.data) {
            let name = db.to_string_lossy();
            if !name.ends_with(".db") || name.contains("quarantine") {
                continue;
            }
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
            let verdict = rusqlite::Connection::open_with_flags(&db, flags)
                .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
            match verdict {
                Ok(v) if v == "ok" => {}
                Ok(v) => failures.push(format!("{name}: {v}")),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        failures
    }

    /// Temporary files (`.airlock-tmp-*`) anywhere in the session folder.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        files_under(&self.session_dir)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".airlock-tmp"))
            })
            .collect()
    }

    /// Whether `airlock doctor` finds nothing.
    pub fn doctor_ok(&self) -> Result<(), String> {
        self.run(&["doctor"]).map(drop)
    }
}

/// Every file below `dir`, recursively (not following symlinks).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => out.push(e.path()),
                Err(_) => {}
            }
        }
    }
    out
}

/// The `text` of a message's JSON content: the key the scenarios put there.
pub fn text_of(content: &str) -> Option<String> {
    let v: Value = serde_json::from_str(content).ok()?;
    v["text"].as_str().map(str::to_owned)
}

/// The library's session manager over the CLI's data dir and registry.
pub fn manager(data: &Path) -> Result<airlock_host::SessionManager, String> {
    let store = airlock_sqlite_fs::SqliteSessionStore::open_file(&data.join("airlock.db"))
        .map_err(|e| e.to_string())?;
    Ok(airlock_host::SessionManager::new(
        std::sync::Arc::new(store),
        airlock_host::ManagerConfig::new(data),
    ))
}

/// Runs `f` on a fresh single-threaded runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(f)
}

impl Airlock {
    /// Marks the session's guest stopped, as a host does once the sandbox
    /// is gone: a journal a killed guest left is rolled back then.
    pub fn mark_guest_stopped(&self) -> Result<(), String> {
        let session =
            airlock_core::SessionId::new(self.session.as_str()).map_err(|e| e.to_string())?;
        block_on(async {
            manager(&self.data)?
                .mark_container_stopped(&session)
                .await
                .map(drop)
                .map_err(|e| format!("marking the guest stopped: {e}"))
        })
    }
}
