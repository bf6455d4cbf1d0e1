//! Repository rules enforced as a test ("tidy", as in rust-analyzer): every
//! Rust file says what it is for, no source file outgrows review, and no
//! conformance check is left out of the macro that runs it.
//!
//! Rules, for every `.rs` file under `crates/`, `xtask/`, `tests/`, `fuzz/`
//! (build output and fuzz corpora skipped):
//! - the first line is a `//!` doc comment;
//! - at most [`MAX_LINES`] lines, except in `tests/` folders;
//! - in a `testing/` folder of a crate's `src/`, every `pub async fn` outside
//!   its `mod.rs` files (which hold helpers and the macros) is a conformance
//!   check, and must be listed (`name,` on its own line) in one of that
//!   folder's macro lists;
//! - a crate's `tests/` folder builds one test binary (`tests/<name>.rs`
//!   or `tests/<dir>/main.rs`, the rest modules of it; ripgrep's and
//!   rust-analyzer's shape), so the integration tests link once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The longest a source file may be outside `tests/` folders.
const MAX_LINES: usize = 700;

/// The folders whose Rust files the rules cover.
const ROOTS: &[&str] = &["crates", "xtask", "tests", "fuzz"];

/// Folders never walked: build output and fuzz inputs.
const SKIPPED_DIRS: &[&str] = &["target", "corpus", "artifacts", ".git"];

/// One broken rule: the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    path: PathBuf,
    rule: &'static str,
    detail: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if kind.is_dir() && !SKIPPED_DIRS.iter().any(|s| name == *s) {
            rust_files(&path, out);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn in_tests_folder(relative: &Path) -> bool {
    relative.components().any(|c| c.as_os_str() == "tests")
}

/// The `tests/` folder whose test binary `relative` is the root of
/// (`tests/<name>.rs` or `tests/<dir>/main.rs`; `tests/lib.rs` is the
/// integration-test package's library), if it is one.
fn test_binary_folder(relative: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = relative
        .components()
        .map(|c| c.as_os_str().to_str().unwrap_or(""))
        .collect();
    let at = parts.iter().rposition(|p| *p == "tests")?;
    let root = || Some(parts[..=at].iter().collect());
    match &parts[at + 1..] {
        [file] if file.ends_with(".rs") && *file != "lib.rs" => root(),
        [_, "main.rs"] => root(),
        _ => None,
    }
}

/// The `testing/` folder under a crate's `src/` that holds `relative`, if any.
fn testing_folder(relative: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = relative.components().collect();
    let at = parts
        .windows(2)
        .position(|w| w[0].as_os_str() == "src" && w[1].as_os_str() == "testing")?;
    Some(parts[..at + 2].iter().collect())
}

/// `name` of every `pub async fn name` in `text`.
fn pub_async_fns(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub async fn "))
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Identifiers listed one per line (`name,`), the shape of the macro lists.
fn listed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_suffix(','))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// Every broken rule under `root`, sorted.
fn check(root: &Path) -> Vec<Problem> {
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root.join(dir), &mut files);
    }
    let mut problems = Vec::new();
    let mut checks: Vec<(PathBuf, PathBuf, String)> = Vec::new();
    let mut lists: std::collections::BTreeMap<PathBuf, BTreeSet<String>> = Default::default();
    let mut binaries: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    for path in &files {
        let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        let Ok(text) = std::fs::read_to_string(path) else {
            problems.push(Problem {
                path: relative,
                rule: "readable",
                detail: "not UTF-8 text".into(),
            });
            continue;
        };
        if !text.lines().next().is_some_and(|l| l.starts_with("//!")) {
            problems.push(Problem {
                path: relative.clone(),
                rule: "starts with //!",
                detail: "the first line must say what the file is for".into(),
            });
        }
        let lines = text.lines().count();
        if lines > MAX_LINES && !in_tests_folder(&relative) {
            problems.push(Problem {
                path: relative.clone(),
                rule: "at most 700 lines",
                detail: format!("{lines} lines"),
            });
        }
        if let Some(folder) = test_binary_folder(&relative) {
            binaries.entry(folder).or_default().push(relative.clone());
        }
        if let Some(folder) = testing_folder(&relative) {
            lists
                .entry(folder.clone())
                .or_default()
                .extend(listed_names(&text));
            if relative.file_name().is_some_and(|n| n != "mod.rs") {
                for name in pub_async_fns(&text) {
                    checks.push((folder.clone(), relative.clone(), name));
                }
            }
        }
    }
    for (folder, roots) in binaries.into_iter().filter(|(_, r)| r.len() > 1) {
        for path in &roots {
            problems.push(Problem {
                path: path.clone(),
                rule: "one test binary per crate",
                detail: format!(
                    "{} builds {} test binaries; make each a module of one",
                    folder.display(),
                    roots.len()
                ),
            });
        }
    }
    for (folder, path, name) in checks {
        if !lists.get(&folder).is_some_and(|l| l.contains(&name)) {
            problems.push(Problem {
                path,
                rule: "conformance check in its macro",
                detail: format!(
                    "`{name}` is not listed in any macro of {}",
                    folder.display()
                ),
            });
        }
    }
    problems.sort();
    problems
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

#[test]
fn the_repository_is_tidy() {
    let root = repo_root();
    assert!(
        root.join("crates/core/src/lib.rs").is_file(),
        "{}",
        root.display()
    );
    let problems = check(&root);
    assert!(
        problems.is_empty(),
        "tidy found {} problem(s):\n{}",
        problems.len(),
        problems
            .iter()
            .map(|p| format!("  {}: {} ({})", p.path.display(), p.rule, p.detail))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_tidy_check_reports_each_broken_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let long = format!("//! Long.\n{}", "fn f() {}\n".repeat(MAX_LINES));
    write("crates/a/src/lib.rs", "//! Fine.\nfn x() {}\n");
    write("crates/a/src/undocumented.rs", "fn x() {}\n");
    write("xtask/src/blank_first.rs", "\n//! Too late.\n");
    write("crates/a/src/long.rs", &long);
    write(
        "crates/a/tests/it/main.rs",
        "//! The one binary.\nmod long_but_a_test;\n",
    );
    write("crates/a/tests/it/long_but_a_test.rs", &long);
    write("crates/b/tests/cli/main.rs", "//! One binary.\n");
    write("crates/b/tests/second.rs", "//! Another.\n");
    write(
        "crates/c/tests/only.rs",
        "//! A crate's single binary may be a file.\n",
    );
    write(
        "tests/lib.rs",
        "//! The package's library, not a test binary.\n",
    );
    write("tests/it/main.rs", "//! Its one binary.\n");
    write("crates/a/target/debug/build/gen.rs", "generated\n");
    write("fuzz/corpus/x/seed.rs", "not a source file\n");
    write(
        "crates/a/src/testing/mod.rs",
        "//! Suite.\npub async fn helper() {}\nmacro_rules! m { () => { x!(\n    listed_check,\n); } }\n",
    );
    write(
        "crates/a/src/testing/checks.rs",
        "//! Checks.\npub async fn listed_check() {}\npub async fn forgotten_check() {}\n",
    );

    let found: Vec<(String, &str)> = check(root)
        .into_iter()
        .map(|p| (p.path.display().to_string(), p.rule))
        .collect();
    assert_eq!(
        found,
        [
            ("crates/a/src/long.rs".to_owned(), "at most 700 lines"),
            (
                "crates/a/src/testing/checks.rs".to_owned(),
                "conformance check in its macro"
            ),
            ("crates/a/src/undocumented.rs".to_owned(), "starts with //!"),
            (
                "crates/b/tests/cli/main.rs".to_owned(),
                "one test binary per crate"
            ),
            (
                "crates/b/tests/second.rs".to_owned(),
                "one test binary per crate"
            ),
            ("xtask/src/blank_first.rs".to_owned(), "starts with //!"),
        ]
    );
    // The 700th line is still allowed.
    write("crates/a/src/long.rs", &long.replacen("fn f() {}\n", "", 1));
    assert!(!check(root).iter().any(|p| p.rule == "at most 700 lines"));
}
