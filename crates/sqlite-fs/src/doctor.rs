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

use crate::layout::SessionPaths;
use crate::schema::{INBOUND_VERSION, OUTBOUND_VERSION};
use crate::sqlite_util::{
    JournalKind, OpenMode, UNTRUSTED_TIME_BUDGET, apply_untrusted_limits, open_file, read_header,
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
pub fn check_session(paths: &SessionPaths) -> Vec<Finding> {
    let mut report = Report {
        paths,
        findings: Vec::new(),
    };
    check_files(&mut report);
    let inbound = read_db(&mut report, &paths.inbound_db(), false);
    let outbound = read_db(&mut report, &paths.outbound_db(), true);
    if let Some(conn) = &inbound {
        check_version(&mut report, conn, &paths.inbound_db(), INBOUND_VERSION);
    }
    if let Some(conn) = &outbound {
        check_version(&mut report, conn, &paths.outbound_db(), OUTBOUND_VERSION);
    }
    let in_seqs = inbound
        .as_ref()
        .map(|c| seqs(&mut report, c, "messages_in", &paths.inbound_db()));
    let out_seqs = outbound
        .as_ref()
        .map(|c| seqs(&mut report, c, "messages_out", &paths.outbound_db()));
    check_parity(&mut report, in_seqs.as_deref(), out_seqs.as_deref());
    if let Some(conn) = &inbound {
        check_attachments(&mut report, conn);
        check_delivered_outboxes(&mut report, conn);
    }
    check_temp_files(&mut report);
    report.findings
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

fn read_db(report: &mut Report<'_>, path: &Path, untrusted: bool) -> Option<Connection> {
    if !path.exists() {
        return None;
    }
    let opened = open_file(path, OpenMode::ReadOnly, Duration::from_millis(500)).and_then(|conn| {
        if untrusted {
            apply_untrusted_limits(&conn, UNTRUSTED_TIME_BUDGET)?;
        }
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(conn)
    });
    match opened {
        Ok(conn) => Some(conn),
        Err(e) => {
            report.add(
                Severity::Error,
                "unreadable",
                path.to_path_buf(),
                format!("cannot read: {e}"),
            );
            None
        }
    }
}

fn check_version(report: &mut Report<'_>, conn: &Connection, path: &Path, expected: i64) {
    match conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)) {
        // 0: never stamped, as every file the reference writes (or an
        // adopted folder before airlock's first write); the owner migrates
        // it on its next open, so it is not a finding.
        Ok(v) if v == expected || v == 0 => {}
        Ok(v) => report.add(
            Severity::Warning,
            "schema_version",
            path.to_path_buf(),
            format!("schema version {v}, expected {expected} (migrated on the owner's next open)"),
        ),
        Err(e) => report.add(
            Severity::Error,
            "unreadable",
            path.to_path_buf(),
            e.to_string(),
        ),
    }
}

fn seqs(report: &mut Report<'_>, conn: &Connection, table: &str, path: &Path) -> Vec<i64> {
    let sql = format!("SELECT seq FROM {table} WHERE seq IS NOT NULL");
    let result = conn.prepare(&sql).and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()
    });
    result.unwrap_or_else(|e| {
        report.add(
            Severity::Error,
            "unreadable",
            path.to_path_buf(),
            format!("reading {table}: {e}"),
        );
        Vec::new()
    })
}

fn check_parity(report: &mut Report<'_>, inbound: Option<&[i64]>, outbound: Option<&[i64]>) {
    let (in_path, out_path) = (report.paths.inbound_db(), report.paths.outbound_db());
    let bad_in: Vec<i64> = inbound
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|s| s % 2 != 0)
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
        .filter(|s| s % 2 == 0)
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

fn check_attachments(report: &mut Report<'_>, conn: &Connection) {
    let rows = conn
        .prepare("SELECT id, content FROM messages_in")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
    let Ok(rows) = rows else { return };
    let dir = report.paths.dir().to_path_buf();
    for (id, content) in rows {
        let Ok(serde_json::Value::Object(obj)) =
            serde_json::from_str::<serde_json::Value>(&content)
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
                            format!("message {id} refers to an attachment that is not on disk"),
                        );
                    }
                }
                None => report.add(
                    Severity::Error,
                    "bad_attachment_path",
                    report.paths.inbound_db(),
                    format!("message {id} has localPath {local:?} outside inbox/<id>/<name>"),
                ),
            }
        }
    }
}

fn check_delivered_outboxes(report: &mut Report<'_>, conn: &Connection) {
    let outbox = report.paths.outbox();
    let Ok(entries) = std::fs::read_dir(&outbox) else {
        return;
    };
    let delivered = conn.prepare("SELECT 1 FROM delivered WHERE message_out_id = ?1");
    let Ok(mut delivered) = delivered else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if delivered.exists([&name]).unwrap_or(false) {
            report.add(
                Severity::Warning,
                "delivered_outbox",
                entry.path(),
                format!("outbox folder of delivered message {name} was not cleared"),
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
