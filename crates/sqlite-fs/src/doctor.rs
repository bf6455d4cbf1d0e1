//! Checks of a session folder's on-disk invariants, for `airlock doctor`.
//!
//! Everything here only reads: files are opened read-only (a read-only
//! connection cannot roll back a journal), and a check that cannot read a
//! file reports that instead of changing anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use airlock_core::{Seq, escape_for_log};

use crate::error::Error;
use crate::layout::{HostSessionState, SessionPaths};
use crate::schema::{INBOUND_VERSION, OUTBOUND_VERSION};
use crate::sqlite_util::{
    GuestDb, JournalKind, OpenMode, RetryPolicy, RetryStats, is_read_only, open_file, read_header,
    retry,
};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Left-overs that cost space or may deliver twice; nothing is lost.
    Warning,
    /// An invariant is broken: messages may be invisible, lost or corrupt.
    Error,
}

/// One problem found in a session folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// A stable short name, e.g. `wal_mode`, `seq_parity`.
    pub check: &'static str,
    /// The file or folder concerned.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub detail: String,
}

/// Temporary names the host uses while staging files (never final names).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(".airlock-tmp") || name.starts_with(".tmp") || name.ends_with(".tmp")
}

struct Report<'a> {
    paths: &'a SessionPaths,
    findings: Vec<Finding>,
}

impl Report<'_> {
    fn add(
        &mut self,
        severity: Severity,
        check: &'static str,
        path: PathBuf,
        detail: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            check,
            path,
            detail: detail.into(),
        });
    }
}

/// Checks the session folder `paths`: journal modes, hot journals, schema
/// versions, seq parity and uniqueness, missing inbound attachments, stray
/// temporary files and outbox folders of delivered messages.
///
/// Both files are read as [`GuestDb`] snapshots (the guest can write both):
/// nothing is opened by a name the guest can swap, no journal is replayed,
/// and a FIFO anywhere makes a finding, never a hang. `state` is the
/// session's host-only folder, where the snapshot link is made.
pub fn check_session(paths: &SessionPaths, state: &HostSessionState) -> Vec<Finding> {
    let mut report = Report {
        paths,
        findings: Vec::new(),
    };
    check_files(&mut report);
    let inbound = read_db(&mut report, state, "inbound.db", "messages_in", false);
    let outbound = read_db(&mut report, state, "outbound.db", "messages_out", true);
    for (facts, path, expected) in [
        (&inbound, paths.inbound_db(), INBOUND_VERSION),
        (&outbound, paths.outbound_db(), OUTBOUND_VERSION),
    ] {
        if let Some(facts) = facts {
            check_version(&mut report, &facts.version, &path, expected);
        }
    }
    let in_seqs = inbound
        .as_ref()
        .map(|f| seqs(&mut report, &f.seqs, "messages_in", &paths.inbound_db()));
    let out_seqs = outbound
        .as_ref()
        .map(|f| seqs(&mut report, &f.seqs, "messages_out", &paths.outbound_db()));
    check_parity(&mut report, in_seqs.as_deref(), out_seqs.as_deref());
    if let Some(facts) = &inbound {
        check_attachments(&mut report, &facts.attachments);
        check_delivered_outboxes(&mut report, &facts.ids);
    }
    if let Some(facts) = &outbound {
        check_orphan_outboxes(&mut report, &facts.ids);
    }
    check_temp_files(&mut report);
    report.findings
}

/// What the checks need from one mailbox file, read in one snapshot.
struct DbFacts {
    version: rusqlite::Result<i64>,
    seqs: rusqlite::Result<Vec<i64>>,
    /// `messages_out` ids, or `delivered` ids for `inbound.db`.
    ids: HashSet<String>,
    /// `(id, content)` of rows that may name inbox files (inbound only).
    attachments: Vec<(String, String)>,
}

fn check_files(report: &mut Report<'_>) {
    let paths = report.paths;
    for db in [paths.inbound_db(), paths.outbound_db()] {
        match read_header(&db) {
            Ok(None) if !db.exists() => report.add(
                Severity::Error,
                "missing_file",
                db.clone(),
                "mailbox file is missing",
            ),
            Ok(Some(header)) if header.journal == JournalKind::Wal => report.add(
                Severity::Error,
                "wal_mode",
                db.clone(),
                "file is in WAL mode; across the mount the guest's view freezes (must be DELETE)",
            ),
            Ok(Some(header)) if header.journal != JournalKind::Rollback => report.add(
                Severity::Error,
                "not_a_database",
                db.clone(),
                format!(
                    "unexpected journal bytes {:?} in the header",
                    header.journal
                ),
            ),
            Ok(_) => {}
            Err(e) => report.add(Severity::Error, "unreadable", db.clone(), e.to_string()),
        }
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", db.display()));
            if side.exists() {
                report.add(Severity::Error, "wal_mode", side, "WAL side file present");
            }
        }
        let journal = PathBuf::from(format!("{}-journal", db.display()));
        if journal.exists() {
            report.add(
                Severity::Warning,
                "hot_journal",
                journal,
                "a rollback journal is present (a write in progress, or interrupted)",
            );
        }
    }
}

fn read_db(
    report: &mut Report<'_>,
    state: &HostSessionState,
    name: &str,
    table: &str,
    guest_owned: bool,
) -> Option<DbFacts> {
    let db = GuestDb {
        folder: report.paths.dir(),
        name,
        scratch: state.dir(),
        single_name: guest_owned,
    };
    // The published inbound.db is read by the host's own link: a new hard
    // link of that inode would move its ctime, which the host's check of
    // the folder takes for a guest's edit.
    let published = state.published_db();
    let own_copy = !guest_owned && published.is_file() && !is_read_only(state.dir());
    // A host write or guest commit in flight is not a finding: retried.
    static STATS: std::sync::OnceLock<RetryStats> = std::sync::OnceLock::new();
    let stats = STATS.get_or_init(RetryStats::default);
    let result = retry(RetryPolicy::HOST_READ, stats, || {
        let read = |f: &dyn Fn(&Connection) -> rusqlite::Result<DbFacts>| {
            if own_copy {
                let conn = open_file(&published, OpenMode::ReadOnly, Duration::from_secs(2))
                    .map_err(|e| {
                        Error::sqlite(&published, "opening the published inbound.db", e)
                    })?;
                f(&conn)
                    .map(Some)
                    .map_err(|e| Error::sqlite(&published, "checking the file", e))
            } else {
                db.read("checking the file", f)
            }
        };
        read(&|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0));
            let seqs = conn
                .prepare(&format!("SELECT seq FROM {table} WHERE seq IS NOT NULL"))
                .and_then(|mut stmt| {
                    stmt.query_map([], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<i64>>>()
                });
            let id_sql = if guest_owned {
                "SELECT id FROM messages_out"
            } else {
                "SELECT message_out_id FROM delivered"
            };
            let ids = strings(conn, id_sql)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let attachments = if guest_owned {
                Vec::new()
            } else {
                pairs(conn, "SELECT id, content FROM messages_in").unwrap_or_default()
            };
            Ok(DbFacts {
                version,
                seqs,
                ids,
                attachments,
            })
        })
    });
    match result {
        Ok(facts) => facts,
        Err(e) => {
            report.add(
                Severity::Error,
                "unreadable",
                report.paths.dir().join(name),
                format!("cannot read: {e}"),
            );
            None
        }
    }
}

fn strings(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    stmt.query_map([], |r| r.get::<_, String>(0))?.collect()
}

fn pairs(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(sql)?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

fn check_version(
    report: &mut Report<'_>,
    version: &rusqlite::Result<i64>,
    path: &Path,
    expected: i64,
) {
    match version {
        // 0: never stamped, as every file the reference writes (or an
        // adopted folder before airlock's first write); the owner migrates
        // it on its next open, so it is not a finding.
        // Older versions are brought up to date by the owner's next write.
        Ok(v) if (0..=expected).contains(v) => {}
        Ok(v) => report.add(
            Severity::Warning,
            "schema_version",
            path.to_path_buf(),
            format!("schema version {v}, newer than the {expected} this airlock knows"),
        ),
        Err(e) => report.add(
            Severity::Error,
            "unreadable",
            path.to_path_buf(),
            e.to_string(),
        ),
    }
}

fn seqs(
    report: &mut Report<'_>,
    result: &rusqlite::Result<Vec<i64>>,
    table: &str,
    path: &Path,
) -> Vec<i64> {
    match result {
        Ok(seqs) => seqs.clone(),
        Err(e) => {
            report.add(
                Severity::Error,
                "unreadable",
                path.to_path_buf(),
                format!("reading {table}: {e}"),
            );
            Vec::new()
        }
    }
}

fn check_parity(report: &mut Report<'_>, inbound: Option<&[i64]>, outbound: Option<&[i64]>) {
    let (in_path, out_path) = (report.paths.inbound_db(), report.paths.outbound_db());
    let bad_in: Vec<i64> = inbound
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|s| !Seq::new(*s).is_host())
        .collect();
    if !bad_in.is_empty() {
        report.add(
            Severity::Error,
            "seq_parity",
            in_path.clone(),
            format!("odd seq in messages_in: {}", list(&bad_in)),
        );
    }
    let bad_out: Vec<i64> = outbound
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|s| !Seq::new(*s).is_guest())
        .collect();
    if !bad_out.is_empty() {
        report.add(
            Severity::Error,
            "seq_parity",
            out_path,
            format!("even seq in messages_out: {}", list(&bad_out)),
        );
    }
    let ins: HashSet<i64> = inbound.unwrap_or_default().iter().copied().collect();
    let shared: Vec<i64> = outbound
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|s| ins.contains(s))
        .collect();
    if !shared.is_empty() {
        report.add(
            Severity::Error,
            "seq_unique",
            in_path,
            format!("seq used in both tables: {}", list(&shared)),
        );
    }
}

fn list(seqs: &[i64]) -> String {
    let shown: Vec<String> = seqs.iter().take(10).map(i64::to_string).collect();
    let more = if seqs.len() > 10 {
        format!(" and {} more", seqs.len() - 10)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// `inbox/<id>/<name>` split into validated components, or `None`.
fn inbox_path(local: &str) -> Option<(String, String)> {
    let mut parts = local.split('/');
    let (Some("inbox"), Some(id), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    airlock_core::validate_component("message id", id).ok()?;
    airlock_core::validate_component("attachment name", name).ok()?;
    Some((id.to_owned(), name.to_owned()))
}

fn check_attachments(report: &mut Report<'_>, rows: &[(String, String)]) {
    let dir = report.paths.dir().to_path_buf();
    for (id, content) in rows {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(content)
        else {
            continue;
        };
        let Some(serde_json::Value::Array(entries)) = obj.get("attachments") else {
            continue;
        };
        for entry in entries {
            let Some(local) = entry.get("localPath").and_then(|v| v.as_str()) else {
                continue;
            };
            match inbox_path(local) {
                Some((folder, name)) => {
                    let file = dir.join("inbox").join(folder).join(name);
                    if !file.is_file() {
                        report.add(
                            Severity::Error,
                            "missing_attachment",
                            file,
                            format!(
                                "message {} refers to an attachment that is not on disk",
                                escape_for_log(id)
                            ),
                        );
                    }
                }
                None => report.add(
                    Severity::Error,
                    "bad_attachment_path",
                    report.paths.inbound_db(),
                    format!(
                        "message {} has localPath {} outside inbox/<id>/<name>",
                        escape_for_log(id),
                        escape_for_log(local)
                    ),
                ),
            }
        }
    }
}

/// Names of the folders in `outbox/` (listing only; nothing is opened).
fn outbox_folders(report: &Report<'_>) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(report.paths.outbox()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect()
}

fn check_delivered_outboxes(report: &mut Report<'_>, delivered: &HashSet<String>) {
    for (name, path) in outbox_folders(report) {
        if delivered.contains(&name) {
            report.add(
                Severity::Warning,
                "delivered_outbox",
                path,
                format!(
                    "outbox folder of delivered message {} was not cleared",
                    escape_for_log(&name)
                ),
            );
        }
    }
}

/// Outbox folders no guest message names: left by a reply killed between
/// copying its files and storing its row (its files will never be sent).
fn check_orphan_outboxes(report: &mut Report<'_>, messages: &HashSet<String>) {
    for (name, path) in outbox_folders(report) {
        if !messages.contains(&name) && !is_temp_name(&name) {
            report.add(
                Severity::Warning,
                "orphan_outbox",
                path,
                format!(
                    "outbox folder {} belongs to no message in outbound.db (an interrupted reply?)",
                    escape_for_log(&name)
                ),
            );
        }
    }
}

fn check_temp_files(report: &mut Report<'_>) {
    for root in [report.paths.inbox(), report.paths.outbox()] {
        let Ok(folders) = std::fs::read_dir(&root) else {
            continue;
        };
        for folder in folders.flatten() {
            let Ok(kind) = folder.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let Ok(files) = std::fs::read_dir(folder.path()) else {
                continue;
            };
            for file in files.flatten() {
                if is_temp_name(&file.file_name().to_string_lossy()) {
                    report.add(
                        Severity::Warning,
                        "stray_temp_file",
                        file.path(),
                        "temporary file left by an interrupted write",
                    );
                }
            }
        }
    }
}
