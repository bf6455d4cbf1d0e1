//! Losing PostgreSQL makes calls fail with a clear error instead of
//! hanging, and the same store works again once the server is back.
//!
//! Stopping the shared test server would break every other test running in
//! parallel, so this test starts a private throwaway cluster (initdb +
//! pg_ctl on a temp dir and a free port) and stops that one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use airlock_core::testing::{agent, request};
use airlock_core::{Error, SessionMode, SessionStore};
use airlock_postgres::{PgSessionStore, PgStoreOptions};

/// Where Debian/Ubuntu install the server binaries.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// A PostgreSQL cluster of this test alone; stopped and deleted on drop.
struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `runuser -u postgres --` when running as root (initdb refuses root).
    run_as: Option<&'static str>,
}

impl PrivateCluster {
    /// Creates and starts the cluster, or says why it cannot and returns `None`.
    fn start(test: &str) -> Option<Self> {
        let skip = |why: String| {
            eprintln!("SKIPPED {test}: {why}");
            None
        };
        let Some(bin) = find_bin_dir() else {
            return skip(format!(
                "no PostgreSQL server binaries (initdb, pg_ctl) under {DEBIAN_PG_ROOT}/*/bin"
            ));
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let run_as = if is_root {
            let Some((uid, gid)) = user_ids("postgres") else {
                return skip(
                    "running as root and there is no `postgres` user to run initdb".into(),
                );
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the temp dir to the postgres user");
            Some("postgres")
        } else {
            None
        };
        let cluster = Self {
            bin,
            port: free_port(),
            dir,
            run_as,
        };
        let data = cluster.data_dir();
        let initdb = cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        if !initdb.status.success() {
            return skip(format!("initdb failed here: {}", describe(&initdb)));
        }
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        // The postgres user may not be allowed into our working directory.
        command.args(args).current_dir(self.dir.path());
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn pg_ctl_start(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let server_options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB",
            self.port,
            path_str(self.dir.path())
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &server_options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\nserver log:\n{server_log}",
            describe(&out)
        );
    }

    fn pg_ctl_stop_immediately(&self) -> Output {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Already stopped is fine; the temp dir goes with `self.dir`.
        let _ = self.pg_ctl_stop_immediately();
    }
}

/// The newest `<root>/<version>/bin` holding both initdb and pg_ctl.
fn find_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_ROOT)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        out.status.success().then_some(())?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn describe(out: &Output) -> String {
    format!(
        "{}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn assert_clear_outage_error(err: &Error, doing: &str, target: &str) {
    let text = err.to_string();
    eprintln!("while the server was down: {text}");
    match err {
        Error::Backend { backend, .. } => assert_eq!(*backend, "postgres", "{text}"),
        other => panic!("expected a backend error while {doing}, got {other:?}"),
    }
    assert!(
        text.contains(doing),
        "the error should say what was being done: {text}"
    );
    assert!(
        text.contains(target),
        "the error should name the server: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_works_again_after_the_server_restarts() {
    let test = "connection loss";
    let Some(cluster) = tokio::task::spawn_blocking(move || PrivateCluster::start(test))
        .await
        .unwrap()
    else {
        return;
    };
    let target = format!("127.0.0.1:{}", cluster.port);
    let store = PgSessionStore::connect_with(
        PgStoreOptions::new(cluster.url())
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connect to the private cluster");
    let req = request(&agent("restart"), None, None, SessionMode::AgentShared);
    let before = store.resolve_session(req.clone()).await.unwrap().session;

    let stopped = tokio::task::block_in_place(|| cluster.pg_ctl_stop_immediately());
    assert!(
        stopped.status.success(),
        "pg_ctl stop: {}",
        describe(&stopped)
    );

    let bound = Duration::from_secs(60);
    let failed = tokio::time::timeout(bound, store.resolve_session(req.clone()))
        .await
        .expect("a call while the server is down must fail, not hang");
    assert_clear_outage_error(&failed.unwrap_err(), "resolving a session", &target);
    let failed = tokio::time::timeout(bound, store.session(&before.id))
        .await
        .expect("a call while the server is down must fail, not hang");
    assert_clear_outage_error(&failed.unwrap_err(), "fetching session", &target);

    tokio::task::block_in_place(|| cluster.pg_ctl_start());
    let after = store
        .resolve_session(req)
        .await
        .expect("the same store works again");
    assert!(
        !after.created,
        "the registry kept the session across the restart"
    );
    assert_eq!(after.session.id, before.id);
    assert_eq!(store.session(&before.id).await.unwrap(), before);
    store.close().await;
}
