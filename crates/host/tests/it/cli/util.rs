//! Test harness for the `airlock` binary: a fresh data dir per test, the
//! built binary run with captured output, and redaction filters for snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// Text printed by a panicking Rust program; must never reach a user.
pub const PANIC_MARKERS: [&str; 2] = ["panicked", "RUST_BACKTRACE"];

/// One isolated CLI environment: its own data dir and scratch folder.
pub struct TestDir {
    root: TempDir,
}

impl TestDir {
    /// A fresh temporary environment.
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("airlock-cli-test")
                .tempdir()
                .expect("creating a tempdir"),
        }
    }

    /// The temporary root (data dir and scratch files live below it).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `--data-dir` passed to every command.
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// Writes a scratch file below the root and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join("files").join(name);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("writing a scratch file");
        path
    }

    /// A command on this data dir; `args` follow the global options.
    pub fn cmd(&self, args: &[&str]) -> TestCommand {
        TestCommand::new(self.data_dir()).args(args)
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.cmd(args).run().success()
    }

    /// Runs a `--json` command that must succeed and parses its stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd(args).json().run().success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
    }

    /// Resolves a fresh shared session and returns `(id, dir)`.
    pub fn session(&self, agent_group: &str) -> (String, PathBuf) {
        let v = self.json(&["resolve", "--agent-group", agent_group, "--mode", "shared"]);
        (str_field(&v, "id"), PathBuf::from(str_field(&v, "dir")))
    }

    /// Redaction filters for this environment plus the generic ones.
    pub fn filters(&self) -> Vec<(String, String)> {
        let mut filters = Vec::new();
        // Canonical paths first (macOS /private/var), then as given.
        for root in [
            std::fs::canonicalize(self.root()).ok(),
            Some(self.root().to_path_buf()),
        ]
        .into_iter()
        .flatten()
        {
            filters.push((regex_escape(&root.display().to_string()), "[ROOT]".into()));
        }
        filters.extend(generic_filters());
        filters
    }
}

/// A string field of a JSON object, or a panic naming the missing key.
pub fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string key {key:?} in {v}"))
        .to_owned()
}

/// Asserts that `v` is an object holding every key of `keys`.
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let object = v
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {v}"));
    for key in keys {
        assert!(object.contains_key(*key), "key {key:?} missing in {v}");
    }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Filters for ids, times, durations and pids that change on every run.
pub fn generic_filters() -> Vec<(String, String)> {
    [
        (r"sess-\d+-[0-9a-z]{16}", "[SESSION]"),
        (r"mg-\d+-[0-9a-z]{16}", "[MG]"),
        (r"msg-\d+-[0-9a-z]{16}", "[MSG]"),
        (r"out-\d+-[0-9a-z]{16}", "[OUT]"),
        (r"demo-\d+-[0-9a-z]{16}", "[DEMO]"),
        (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?", "[TIME]"),
        (r"pid \d+", "pid [PID]"),
        (
            r#""(at_ms|hop_ms|heartbeat_age_ms)": ?-?\d+"#,
            r#""$1":[MS]"#,
        ),
        (r"(?m)^  +-?\d+ +[+-]\d+  ", "  [AT] [HOP]  "),
        (r"\d+\.\d s ago", "[AGE] ago"),
        (r"airlock-demo-\d+", "airlock-demo-[PID]"),
        // Ids clipped to a column width in human listings.
        (r"\b(sess|mg|msg|out|demo)-\d[0-9a-z-]*…", "[$1…]"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

/// The `airlock` binary with arguments, ready to run.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// `airlock --data-dir DATA`, with the environment cleared of airlock vars.
    pub fn new(data_dir: PathBuf) -> Self {
        let mut this = Self::without_data_dir();
        this.cmd.arg("--data-dir").arg(data_dir);
        this
    }

    /// Appends arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.cmd.args(args);
        self
    }

    /// Appends one path argument.
    pub fn path(mut self, path: &Path) -> Self {
        self.cmd.arg(path);
        self
    }

    /// Runs the binary without `--data-dir` (to test the environment variable).
    pub fn without_data_dir() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.env_remove("AIRLOCK_DATA_DIR")
            .env_remove("AIRLOCK_REGISTRY")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE");
        Self { cmd }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &Path) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Adds the global `--json`.
    pub fn json(self) -> Self {
        self.args(&["--json"])
    }

    /// Runs and captures stdout, stderr and the exit code.
    pub fn run(mut self) -> Run {
        let output: Output = self.cmd.output().expect("running the airlock binary");
        let run = Run {
            args: format!("{:?}", self.cmd.get_args().collect::<Vec<_>>()),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        };
        for marker in PANIC_MARKERS {
            assert!(
                !run.stderr.contains(marker) && !run.stdout.contains(marker),
                "panic text in output of {}:\n{}{}",
                run.args,
                run.stdout,
                run.stderr
            );
        }
        run
    }
}

/// What one run printed and how it exited.
pub struct Run {
    /// The arguments, for failure messages.
    pub args: String,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

impl Run {
    /// Asserts exit 0 and an empty stderr; returns stdout.
    pub fn success(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed:\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout,
            self.stderr
        );
        assert_eq!(self.stderr, "", "{} wrote to stderr", self.args);
        self.stdout
    }

    /// Asserts exit 0, allowing logged warnings on stderr; returns stdout.
    pub fn success_with_warnings(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed:\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// Asserts a non-zero exit with exactly one stderr line; returns that line.
    pub fn failure(self) -> String {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "{} should fail but exited {:?}:\nstdout: {}\nstderr: {}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{} should print exactly one stderr line, got:\n{}",
            self.args,
            self.stderr
        );
        lines[0].to_owned()
    }
}

/// Runs `airlock --data-dir DATA ARGS` on a pseudo-terminal (util-linux
/// `script`), as a person at a terminal would, with stdout sent to the file
/// `stdout_to` when given (stderr stays the terminal); returns everything
/// the terminal showed. The command must succeed.
pub fn on_a_terminal(data_dir: &Path, args: &[&str], stdout_to: Option<&Path>) -> String {
    let quoted = |s: &str| {
        assert!(!s.contains('\''), "{s:?} cannot be quoted for sh");
        format!("'{s}'")
    };
    let mut line = format!(
        "{} --data-dir {}",
        quoted(env!("CARGO_BIN_EXE_airlock")),
        quoted(&data_dir.display().to_string())
    );
    for arg in args {
        line.push(' ');
        line.push_str(&quoted(arg));
    }
    if let Some(file) = stdout_to {
        line.push_str(&format!(" >{}", quoted(&file.display().to_string())));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("AIRLOCK_DATA_DIR")
        .env_remove("AIRLOCK_REGISTRY")
        // A terminal that draws; `dumb` (or none) would hide any bar.
        .env("TERM", "xterm")
        .output()
        .expect("running script(1) from util-linux");
    assert!(out.status.success(), "{line}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
