//! Fuzz target: outbox reading and clearing over an adversarial tree built
//! from the input (files, folders, symlinks to secrets, FIFOs, sockets),
//! with guest-chosen ids (`..`, `../../x`) and names. Nothing outside the
//! session may be read or removed, and nothing may block.

#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use airlock_core::MessageId;
use airlock_sqlite_fs::attachments::{
    AttachmentLimits, ConfinedDir, Resolver, clear_outbox, clear_outbox_in, read_outbox_files,
    read_outbox_files_in,
};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"FUZZ-SECRET-BYTES";
const DIRS: &[&str] = &["m1", "m1/a", "a", "m1/m1", "x", "m1/sub/deep"];
const NAMES: &[&str] = &["a", "m1", "b.png", "..", ".", "x", "sub"];
const IDS: &[&str] = &[
    "m1", "../../x", "..", ".", "m1/..", "a", "x", "../x", "", "m1/a", "/",
];

fn snapshot(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            snapshot(&path, skip, out);
            out.insert(path, b"dir".to_vec());
        } else if meta.is_file() {
            out.insert(path.clone(), fs::read(&path).unwrap());
        } else {
            out.insert(path, b"special".to_vec());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("ag").join("sess");
    let outbox = session.join("outbox");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(outbox.join("m1")).unwrap();
    fs::create_dir_all(outside.join("m1")).unwrap();
    fs::write(outside.join("secret"), SECRET).unwrap();
    fs::write(outside.join("m1").join("a"), SECRET).unwrap();
    fs::create_dir_all(tmp.path().join("x")).unwrap();
    fs::write(tmp.path().join("x").join("keep"), SECRET).unwrap();
    fs::create_dir_all(tmp.path().join("ag").join("x")).unwrap();

    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    // Build the tree: (kind, dir, name) triples.
    for _ in 0..24 {
        let (Some(kind), Some(d), Some(n)) = (next(), next(), next()) else {
            break;
        };
        let name = NAMES[n as usize % NAMES.len()];
        if name == "." || name == ".." {
            continue;
        }
        let parent = outbox.join(DIRS[d as usize % DIRS.len()]);
        if fs::create_dir_all(&parent).is_err() {
            continue;
        }
        let at = parent.join(name);
        if fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        let _ = match kind % 8 {
            0 => fs::write(&at, b"guest"),
            1 => fs::create_dir(&at),
            2 => symlink(outside.join("secret"), &at),
            3 => symlink(&outside, &at),
            4 => symlink(outside.join("m1"), &at),
            5 => rustix::fs::mknodat(
                rustix::fs::CWD,
                &at,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .map_err(Into::into),
            6 => std::os::unix::net::UnixListener::bind(&at).map(drop),
            _ => symlink("../../../../x", &at),
        };
    }
    let id = IDS[next().unwrap_or(0) as usize % IDS.len()];
    let names: Vec<String> = (0..next().unwrap_or(0) % 5)
        .map(|_| NAMES[next().unwrap_or(0) as usize % NAMES.len()].to_string())
        .collect();
    let walk_first = next().unwrap_or(0) % 2 == 1;

    let mut before = BTreeMap::new();
    snapshot(tmp.path(), &session, &mut before);

    let limits = AttachmentLimits::default();
    let files = if walk_first {
        let dir = ConfinedDir::open_trusted(&session)
            .unwrap()
            .with_resolver(Resolver::Walk);
        match MessageId::new(id) {
            Ok(mid) => read_outbox_files_in(&dir, &mid, &names, &limits),
            Err(_) => Vec::new(),
        }
    } else {
        match read_outbox_files(&session, id, &names, &limits) {
            Ok(files) => files,
            Err(_) => {
                assert!(MessageId::new(id).is_err(), "only an unsafe id may fail");
                Vec::new()
            }
        }
    };
    for f in &files {
        assert_eq!(
            f.data, b"guest",
            "read something that is not a guest file: {f:?}"
        );
    }
    if walk_first {
        if let Ok(mid) = MessageId::new(id) {
            let dir = ConfinedDir::open_trusted(&session)
                .unwrap()
                .with_resolver(Resolver::Walk);
            let _ = clear_outbox_in(&dir, &mid);
        }
    } else {
        let _ = clear_outbox(&session, id);
    }

    let mut after = BTreeMap::new();
    snapshot(tmp.path(), &session, &mut after);
    assert_eq!(before, after, "something outside the session changed");
});
