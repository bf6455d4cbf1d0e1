//! Outbox reading and clearing against a hostile guest: symlinks, FIFOs,
//! sockets, sparse files, traversal ids and unsafe names.

use std::fs;
use std::os::unix::net::UnixListener;

use airlock_core::{Error, MessageId};
use airlock_sqlite_fs::attachments::{
    AttachmentLimits, ConfinedDir, MAX_REMOVE_DEPTH, Resolver, clear_outbox, read_outbox_files,
    read_outbox_files_in,
};

use crate::attachments_support::{Fixture, init_logs, leaks, link, mkfifo, within};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Reads with both resolution strategies (openat2 and the O_NOFOLLOW walk)
/// and checks they agree.
fn read_both(
    fx: &Fixture,
    id: &str,
    list: &[&str],
    limits: AttachmentLimits,
) -> Vec<(String, Vec<u8>)> {
    let session = fx.session.clone();
    let id = id.to_string();
    let list = names(list);
    within(30, move || {
        let auto = read_outbox_files(&session, &id, &list, &limits).unwrap();
        let walk_dir = ConfinedDir::open_trusted(&session)
            .unwrap()
            .with_resolver(Resolver::Walk);
        let walk = read_outbox_files_in(&walk_dir, &MessageId::new(id).unwrap(), &list, &limits);
        assert_eq!(auto, walk, "openat2 and the walk disagree");
        auto.into_iter().map(|f| (f.name, f.data)).collect()
    })
}

#[test]
fn regular_files_are_read() {
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    fs::write(dir.join("a.png"), b"png").unwrap();
    fs::write(dir.join("b.txt"), b"").unwrap();
    let got = read_both(&fx, "m1", &["a.png", "b.txt"], AttachmentLimits::default());
    assert_eq!(
        got,
        vec![("a.png".into(), b"png".to_vec()), ("b.txt".into(), vec![])]
    );
}

#[test]
fn symlinked_file_is_refused_and_clear_removes_only_the_link() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    link(&fx.secret_file(), &dir.join("x"));
    link(&fx.outside.join("dir"), &dir.join("d"));
    fs::write(dir.join("ok.txt"), b"fine").unwrap();
    let before = fx.outside_snapshot();
    let got = read_both(
        &fx,
        "m1",
        &["x", "d", "ok.txt"],
        AttachmentLimits::default(),
    );
    assert_eq!(got, vec![("ok.txt".into(), b"fine".to_vec())]);
    assert!(!got.iter().any(|(_, d)| leaks(d)));

    let session = fx.session.clone();
    let report = within(30, move || clear_outbox(&session, "m1"));
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.removed, 4, "x, d, ok.txt and m1");
    assert!(!dir.exists());
    assert_eq!(fx.outside_snapshot(), before, "something outside changed");
}

#[test]
fn fifo_socket_and_folder_are_refused_without_blocking() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    mkfifo(&dir.join("p"));
    let _listener = UnixListener::bind(dir.join("s")).unwrap();
    fs::create_dir(dir.join("sub")).unwrap();
    fs::write(dir.join("sub").join("inner"), b"x").unwrap();
    let got = read_both(&fx, "m1", &["p", "s", "sub"], AttachmentLimits::default());
    assert!(got.is_empty(), "{got:?}");

    // The message folder itself being a FIFO must not block either.
    mkfifo(&fx.session.join("outbox").join("m2"));
    assert!(read_both(&fx, "m2", &["a"], AttachmentLimits::default()).is_empty());

    let before = fx.outside_snapshot();
    let session = fx.session.clone();
    let report = within(30, move || {
        let a = clear_outbox(&session, "m1");
        let b = clear_outbox(&session, "m2");
        (a, b)
    });
    assert!(
        report.0.failures.is_empty() && report.1.failures.is_empty(),
        "{report:?}"
    );
    assert!(!dir.exists() && !fx.session.join("outbox").join("m2").exists());
    assert_eq!(fx.outside_snapshot(), before);
}

#[test]
fn traversal_ids_are_refused_and_remove_nothing() {
    init_logs();
    let fx = Fixture::new();
    fx.outbox_dir("m1");
    let before = fx.outside_snapshot();
    for id in ["../../x", "..", ".", "", "../x", "a/b", "/tmp", "x\0y"] {
        let err = read_outbox_files(
            &fx.session,
            id,
            &names(&["keep"]),
            &AttachmentLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err}");
        let report = clear_outbox(&fx.session, id);
        assert_eq!(report.removed, 0, "{id:?}");
        assert_eq!(report.failures.len(), 1, "{id:?}: {report:?}");
    }
    assert_eq!(fx.outside_snapshot(), before);
    assert!(fx.session.join("outbox").join("m1").is_dir());
}

#[test]
fn sparse_huge_file_is_skipped_without_reading() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    let big = fs::File::create(dir.join("big.bin")).unwrap();
    big.set_len(10 * 1024 * 1024 * 1024).unwrap();
    fs::write(dir.join("small.txt"), b"ok").unwrap();
    let got = read_both(
        &fx,
        "m1",
        &["big.bin", "small.txt"],
        AttachmentLimits::default(),
    );
    assert_eq!(got, vec![("small.txt".into(), b"ok".to_vec())]);
}

#[test]
fn unsafe_names_are_skipped_even_when_the_file_exists() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    let rlo = "invoice\u{202E}fdp.exe";
    let long = "n".repeat(300);
    fs::write(dir.join(rlo), b"rlo").unwrap();
    fs::write(dir.join("ok.txt"), b"ok").unwrap();
    let got = read_both(
        &fx,
        "m1",
        &[rlo, &long, "../secret.txt", "-rf", "ok.txt"],
        AttachmentLimits::default(),
    );
    assert_eq!(got, vec![("ok.txt".into(), b"ok".to_vec())]);
}

#[test]
fn missing_files_and_folders_give_an_empty_list() {
    let fx = Fixture::new();
    assert!(read_both(&fx, "nope", &["a.png"], AttachmentLimits::default()).is_empty());
    fx.outbox_dir("m1");
    assert!(read_both(&fx, "m1", &["a.png"], AttachmentLimits::default()).is_empty());
    assert!(read_both(&fx, "m1", &[], AttachmentLimits::default()).is_empty());
    let report = clear_outbox(&fx.session, "nope");
    assert_eq!((report.removed, report.failures.len()), (0, 0));
}

#[test]
fn per_file_and_per_message_caps_skip_files() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    fs::write(dir.join("a"), vec![b'a'; 10]).unwrap();
    fs::write(dir.join("big"), vec![b'b'; 11]).unwrap();
    fs::write(dir.join("c"), vec![b'c'; 8]).unwrap();
    fs::write(dir.join("d"), vec![b'd'; 5]).unwrap();
    let limits = AttachmentLimits {
        max_file_bytes: 10,
        max_message_bytes: 16,
    };
    // a (10) fits; big is over the per-file cap; c (8) would make 18 > 16;
    // d (5) still fits: 15.
    let got = read_both(&fx, "m1", &["a", "big", "c", "d", "a"], limits);
    let got: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, ["a", "d"]);
}

#[test]
fn symlinked_message_or_outbox_folder_is_not_followed() {
    init_logs();
    let fx = Fixture::new();
    fs::create_dir_all(fx.session.join("outbox")).unwrap();
    link(
        &fx.outside.join("m1"),
        &fx.session.join("outbox").join("m1"),
    );
    let before = fx.outside_snapshot();
    assert!(read_both(&fx, "m1", &["a.png"], AttachmentLimits::default()).is_empty());
    let report = clear_outbox(&fx.session, "m1");
    assert_eq!(report.removed, 1, "only the symlink itself: {report:?}");
    assert_eq!(fx.outside_snapshot(), before);

    // Now `outbox` itself is the link.
    fs::remove_dir(fx.session.join("outbox")).unwrap();
    link(&fx.outside, &fx.session.join("outbox"));
    assert!(read_both(&fx, "m1", &["a.png"], AttachmentLimits::default()).is_empty());
    let report = clear_outbox(&fx.session, "m1");
    assert_eq!(report.removed, 0);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(fx.outside_snapshot(), before);
}

#[test]
fn clear_removes_nested_trees_and_stops_at_the_depth_limit() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    let mut deep = dir.clone();
    for i in 0..5 {
        deep = deep.join(format!("d{i}"));
        fs::create_dir(&deep).unwrap();
        fs::write(deep.join("f"), b"x").unwrap();
        link(&fx.outside, &deep.join("l"));
    }
    let before = fx.outside_snapshot();
    let report = clear_outbox(&fx.session, "m1");
    assert!(report.failures.is_empty(), "{report:?}");
    assert!(!dir.exists());
    assert_eq!(fx.outside_snapshot(), before);

    let dir = fx.outbox_dir("m2");
    let mut deep = dir.clone();
    for _ in 0..MAX_REMOVE_DEPTH + 3 {
        deep = deep.join("d");
        fs::create_dir(&deep).unwrap();
    }
    let session = fx.session.clone();
    let report = within(30, move || clear_outbox(&session, "m2"));
    assert!(!report.failures.is_empty(), "too deep must be reported");
    assert_eq!(fx.outside_snapshot(), before);
}

#[test]
fn clear_stops_after_the_entry_budget() {
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    for i in 0..20 {
        fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    let outbox = ConfinedDir::open_trusted(&fx.session.join("outbox")).unwrap();
    let report = outbox.remove_tree_bounded("m1", 10);
    assert_eq!(report.removed, 10);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(
        report.failures[0].ends_with("stopped after 10 entries"),
        "{report:?}"
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 10);
    let report = outbox.remove_tree("m1");
    assert_eq!((report.removed, report.failures.len()), (11, 0));
    assert!(!dir.exists());
}

#[test]
fn hard_linked_file_is_skipped() {
    init_logs();
    let fx = Fixture::new();
    let dir = fx.outbox_dir("m1");
    fs::hard_link(fx.secret_file(), dir.join("linked.txt")).unwrap();
    fs::write(dir.join("ok.txt"), b"fine").unwrap();
    let got = read_both(
        &fx,
        "m1",
        &["linked.txt", "ok.txt"],
        AttachmentLimits::default(),
    );
    assert_eq!(got, vec![("ok.txt".into(), b"fine".to_vec())]);
    assert!(!got.iter().any(|(_, d)| leaks(d)));
}
