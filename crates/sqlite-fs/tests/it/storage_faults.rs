//! The fault campaign's disk-full and read-only scenarios at the library:
//! a full or read-only file system is its own error kind, on the mailbox's
//! API and once converted to airlock-core's error. Needs root (a tmpfs);
//! says SKIPPED otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_core::{AgentGroupId, SessionId, SessionRef, StorageFault};
use airlock_sqlite_fs::{GuestMailbox, MailboxRoots, PlainContent};

use crate::mailbox_common::{msg, reply};

/// A tmpfs at a fresh folder, unmounted on drop.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("mnt");
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Tmpfs(at, dir))
    }

    /// The same files through a read-only bind mount (a remount of the
    /// tmpfs itself is refused while this process keeps host.db open).
    fn read_only_view(&self) -> Tmpfs {
        let at = self.1.path().join("ro");
        std::fs::create_dir_all(&at).unwrap();
        for args in [
            vec!["--bind".as_ref(), self.0.as_os_str(), at.as_os_str()],
            vec!["-o".as_ref(), "remount,bind,ro".as_ref(), at.as_os_str()],
        ] {
            let out = Command::new("mount").args(args).output().unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        Tmpfs(at, tempfile::tempdir().unwrap())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

fn session() -> SessionRef {
    SessionRef::new(
        AgentGroupId::new("ag-1").unwrap(),
        SessionId::new("sess-1").unwrap(),
    )
}

/// Takes every free block of the file system under `dir`.
fn fill(dir: &Path) -> std::fs::File {
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    for chunk in [64 * 1024, 4096, 512] {
        while filler.write_all(&vec![1u8; chunk]).is_ok() {}
    }
    filler
}

#[test]
fn disk_full_writes_fail_as_disk_full_and_work_again_after_growth() {
    let Some(mnt) = Tmpfs::mount("2m") else {
        eprintln!(
            "SKIPPED disk_full_writes_fail_as_disk_full_and_work_again_after_growth: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let host = MailboxRoots::in_data_dir(&mnt.0)
        .create_session(&session())
        .unwrap();
    host.write_message(&msg("m1", r#"{"text":"kept"}"#), &PlainContent)
        .unwrap();
    let guest = GuestMailbox::open(host.paths().dir()).unwrap();
    let _filler = fill(&mnt.0);

    // Many messages, so one of them needs a page the disk no longer has.
    let failed = (0..200)
        .map(|i| {
            let text = format!(r#"{{"text":"{}"}}"#, "x".repeat(900 + i));
            host.write_message(&msg(&format!("n{i}"), &text), &PlainContent)
        })
        .find_map(Result::err)
        .expect("a write on a full disk failed");
    assert_eq!(
        failed.storage_fault(),
        Some(StorageFault::Full),
        "{failed:?}"
    );
    let core = airlock_core::Error::from(failed);
    assert!(
        matches!(core, airlock_core::Error::DiskFull { .. }),
        "{core:?}"
    );
    assert!(core.to_string().starts_with("disk full"), "{core}");

    let failed = (0..200)
        .map(|i| guest.write_message_out(&reply(&format!("r{i}"), &"y".repeat(900 + i))))
        .find_map(Result::err)
        .expect("a guest write on a full disk failed");
    assert_eq!(
        failed.storage_fault(),
        Some(StorageFault::Full),
        "{failed:?}"
    );

    mnt.remount("size=64m");
    host.write_message(&msg("after", r#"{"text":"after"}"#), &PlainContent)
        .unwrap();
    let ids: Vec<String> = host
        .list_inbound(1000)
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect();
    assert!(
        ids.contains(&"m1".to_owned()) && ids.contains(&"after".to_owned()),
        "{ids:?}"
    );
}

#[test]
fn read_only_writes_fail_as_read_only_and_reads_keep_working() {
    let Some(mnt) = Tmpfs::mount("16m") else {
        eprintln!(
            "SKIPPED read_only_writes_fail_as_read_only_and_reads_keep_working: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let roots = MailboxRoots::in_data_dir(&mnt.0);
    let host = roots.create_session(&session()).unwrap();
    host.write_message(&msg("m1", r#"{"text":"kept"}"#), &PlainContent)
        .unwrap();
    drop(host);
    let view = mnt.read_only_view();
    let roots = MailboxRoots::in_data_dir(&view.0);
    let host = roots.host(&session());
    let dir = host.paths().dir().to_path_buf();
    let err = host
        .write_message(&msg("m2", r#"{"text":"refused"}"#), &PlainContent)
        .unwrap_err();
    assert_eq!(err.storage_fault(), Some(StorageFault::ReadOnly), "{err:?}");
    let core = airlock_core::Error::from(err);
    assert!(
        matches!(core, airlock_core::Error::ReadOnly { .. }),
        "{core:?}"
    );
    assert!(core.to_string().contains("read-only"), "{core}");
    let rows = host.list_inbound(10).unwrap();
    assert_eq!(rows.len(), 1);

    // A guest's open already writes (it clears stale claims): refused alike.
    let err = GuestMailbox::open(&dir).unwrap_err();
    assert_eq!(err.storage_fault(), Some(StorageFault::ReadOnly), "{err:?}");
}
