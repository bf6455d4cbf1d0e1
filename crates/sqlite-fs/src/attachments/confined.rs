//! `ConfinedDir`: a held directory handle that is the only way to touch files
//! under a session's `inbox/` and `outbox/`.
//!
//! The guest can rename, replace and symlink anything below the session
//! folder at any moment, so no check on a path string can be trusted between
//! check and use. Every operation here is relative to an open directory fd
//! and refuses to resolve any symlink: `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` where the kernel has it, else
//! a component-by-component `openat(O_NOFOLLOW | O_DIRECTORY)` walk, which is
//! equally strict. Names are single components (no `/`, `.` or `..`), so even
//! the walk never leaves the held directory.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use airlock_core::{AgentGroupId, SessionId};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

pub use super::regular_file::RegularFile;

/// Deepest folder nesting [`ConfinedDir::remove_tree`] descends into; the
/// guest can build arbitrarily deep trees, and each level holds one fd.
pub const MAX_REMOVE_DEPTH: usize = 64;

/// Most entries one [`ConfinedDir::remove_tree`] call visits, so a guest that
/// fills its outbox with millions of files cannot stall the host's clean-up.
pub const MAX_REMOVE_ENTRIES: usize = 100_000;

/// Prefix of the temporary names [`ConfinedDir::stage_file`] writes.
pub const TEMP_PREFIX: &str = ".airlock-tmp-";

/// How a [`ConfinedDir`] resolves names below itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    /// RESOLVE_NO_MAGICLINKS`, falling back to [`Resolver::Walk`] when the
    /// kernel (or a seccomp filter) refuses the syscall.
    Auto,
    /// `openat(O_NOFOLLOW | O_DIRECTORY)` one component at a time.
    Walk,
}

/// Set once `openat2` returned `ENOSYS`, so later calls go straight to the walk.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Why a file below a [`ConfinedDir`] could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The entry exists but is not a regular file (or, for folders, not a folder).
    #[error("{path}: is a {kind}, not a regular file", path = path.display())]
    NotRegular {
        /// The entry, for messages only.
        path: PathBuf,
        /// What it is instead (`"symlink"`, `"fifo"`, …).
        kind: &'static str,
    },
    /// The file is larger than allowed.
    #[error("{path}: {size} bytes is over the limit of {limit} bytes", path = path.display())]
    TooLarge {
        /// The file, for messages only.
        path: PathBuf,
        /// Its size (or the bytes read before the limit was hit).
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The regular file has other names (hard links), which the guest may
    /// have made to a file it must not hand to the host.
    #[error("{path}: has {links} hard links; only a file with a single name is read", path = path.display())]
    HardLinked {
        /// The file, for messages only.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The system call failed (`ELOOP` for a symlink, `ENOENT`, …).
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The entry, for messages only.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl AccessError {
    /// Whether the entry does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AccessError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// Converts into the crate-wide error, keeping the path.
    pub fn into_core(self) -> airlock_core::Error {
        match self {
            AccessError::Io { path, source } => airlock_core::Error::io(path, source),
            other => airlock_core::Error::InvalidInput(other.to_string()),
        }
    }
}

/// A held directory fd; everything below it is reached without following
/// symlinks. The path is kept for messages only and is never opened again.
#[derive(Debug)]
pub struct ConfinedDir {
    fd: OwnedFd,
    label: PathBuf,
    resolver: Resolver,
}

impl ConfinedDir {
    /// Opens a folder the host chose (the sessions root, or a session folder
    /// the host built from validated ids). The path is trusted and resolved
    /// normally, so a sessions root that is itself a symlink (a data dir on
    /// another disk) works; confinement starts below this handle.
    pub fn open_trusted(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Self {
            fd,
            label: path.to_path_buf(),
            resolver: Resolver::Auto,
        })
    }

    /// Opens `<sessions_root>/<agent_group>/<session>`: the root by path, the
    /// two ids beneath it through the handle.
    pub fn open_session(
        sessions_root: &Path,
        agent_group: &AgentGroupId,
        session: &SessionId,
    ) -> io::Result<Self> {
        Self::open_trusted(sessions_root)?.open_dir(&[agent_group.as_str(), session.as_str()])
    }

    /// The same handle with another resolution strategy (tests use
    /// [`Resolver::Walk`] to exercise the fallback on any kernel).
    pub fn with_resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// The folder's path as it was opened, for messages only.
    pub fn path(&self) -> &Path {
        &self.label
    }

    /// The path of `name` below this folder, for messages only.
    pub fn label_of(&self, name: &str) -> PathBuf {
        self.label.join(name)
    }

    /// Opens the folder `components` below this one, refusing symlinks,
    /// `.`/`..` and anything that is not a folder at every step.
    pub fn open_dir(&self, components: &[&str]) -> io::Result<ConfinedDir> {
        let fd = self.open_beneath(components, dir_flags(), Mode::empty())?;
        let mut label = self.label.clone();
        label.extend(components);
        Ok(ConfinedDir {
            fd,
            label,
            resolver: self.resolver,
        })
    }

    /// Opens folder `name`, creating it (mode 0755 before umask) if missing.
    pub fn open_or_create_dir(&self, name: &str) -> io::Result<ConfinedDir> {
        let c_name = component(name)?;
        match rustix::fs::mkdirat(&self.fd, c_name.as_c_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        self.open_dir(&[name])
    }

    /// Opens `name` for reading if it is a regular file. The open never
    /// blocks (`O_NONBLOCK`: a FIFO opens at once and is then refused by
    /// `fstat`) and never follows a symlink.
    pub fn open_regular(&self, name: &str) -> Result<RegularFile, AccessError> {
        let path = self.label_of(name);
        let io_err = |source: io::Error| AccessError::Io {
            path: path.clone(),
            source,
        };
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match self.open_beneath(&[name], flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                return Err(AccessError::NotRegular {
                    path,
                    kind: "symlink",
                });
            }
            // Opening a socket fails with ENXIO; report it as what it is.
            Err(e) if e.raw_os_error() == Some(Errno::NXIO.raw_os_error()) => {
                return Err(AccessError::NotRegular {
                    path,
                    kind: "socket or device",
                });
            }
            Err(e) => return Err(io_err(e)),
        };
        RegularFile::from_fd(fd, path)
    }

    /// What `name` is, without opening or following it (`fstatat` with
    /// `AT_SYMLINK_NOFOLLOW`): `None` when absent. Side files such as
    /// journals are only ever looked at this way, so a FIFO there cannot
    /// block the host.
    pub fn entry(&self, name: &str) -> io::Result<Option<Entry>> {
        let c_name = component(name)?;
        match rustix::fs::statat(&self.fd, c_name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Entry {
                kind: kind_name(FileType::from_raw_mode(stat.st_mode)),
                len: u64::try_from(stat.st_size).unwrap_or(0),
                identity: identity_of(&stat),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the file `name` (never a folder; a symlink itself).
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        let c_name = component(name)?;
        rustix::fs::unlinkat(&self.fd, c_name.as_c_str(), AtFlags::empty()).map_err(Into::into)
    }

    /// Creates a new temporary file in this folder (`O_EXCL`, so a planted
    /// symlink or file under that name is never reused), to be renamed into
    /// place by [`StagedFile::commit`] once complete.
    pub fn stage_file(&self) -> io::Result<StagedFile<'_>> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let mut last_err = None;
        for _ in 0..8 {
            let temp_name = format!(
                "{TEMP_PREFIX}{}-{}-{:x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                random_u64()
            );
            match self.open_beneath(&[&temp_name], flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => {
                    return Ok(StagedFile {
                        dir: self,
                        temp_name,
                        file: Some(File::from(fd)),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("could not create a temporary file")))
    }

    /// Removes the temporary files ([`TEMP_PREFIX`]) a killed writer left in
    /// this folder, returning how many. Only for a caller that holds the
    /// session's write lock: then no staged file of a live writer is here.
    pub fn remove_stale_temps(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                    Ok(()) => removed += 1,
                    // A folder under that name is the guest's business, not a temp file.
                    Err(Errno::ISDIR | Errno::PERM | Errno::NOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(removed)
    }

    /// Flushes the folder itself, so renames into it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd).map_err(Into::into)
    }

    /// Removes `name` and everything below it by walking from held handles:
    /// every unlink is relative to an fd opened with `O_NOFOLLOW |
    /// O_DIRECTORY`, so a symlink is removed itself, never followed, and a
    /// folder swapped for a symlink mid-walk only fails the walk. Best effort:
    /// it goes on past failures and reports them.
    pub fn remove_tree(&self, name: &str) -> RemoveReport {
        self.remove_tree_bounded(name, MAX_REMOVE_ENTRIES)
    }

    /// [`ConfinedDir::remove_tree`] visiting at most `max_entries` entries.
    pub fn remove_tree_bounded(&self, name: &str, max_entries: usize) -> RemoveReport {
        let mut walk = RemoveWalk {
            report: RemoveReport::default(),
            max_entries,
            exhausted: false,
        };
        match component(name) {
            Ok(c_name) => walk.entry(self.fd.as_fd(), &c_name, &self.label_of(name), 0),
            Err(e) => walk
                .report
                .failures
                .push(format!("{}: {e}", self.label_of(name).display())),
        }
        walk.report
    }

    fn open_beneath(&self, components: &[&str], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let c_components = components
            .iter()
            .map(|c| component(c))
            .collect::<io::Result<Vec<_>>>()?;
        if c_components.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        }
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        #[cfg(target_os = "linux")]
        if self.resolver == Resolver::Auto && !OPENAT2_MISSING.load(Ordering::Relaxed) {
            let joined = components.join("/");
            match openat2_beneath(self.fd.as_fd(), &joined, flags, mode) {
                Err(Errno::NOSYS) => OPENAT2_MISSING.store(true, Ordering::Relaxed),
                // Old seccomp profiles answer EPERM for syscalls they do not
                // know; the walk below is just as strict, so use it.
                Err(Errno::PERM) => {}
                other => return other.map_err(Into::into),
            }
        }
        walk(self.fd.as_fd(), &c_components, flags, mode)
    }
}

impl AsFd for ConfinedDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(target_os = "linux")]
fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    use rustix::fs::ResolveFlags;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN means a concurrent rename disturbed the lookup; it is safe to retry.
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// Opens `components` one at a time, each intermediate step as a folder that
/// is not a symlink; the last with the caller's flags plus `O_NOFOLLOW`.
fn walk(
    dir: BorrowedFd<'_>,
    components: &[CString],
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let (last, parents) = components.split_last().expect("checked non-empty");
    let mut held: Option<OwnedFd> = None;
    for part in parents {
        let base = held.as_ref().map_or(dir, |fd| fd.as_fd());
        held = Some(rustix::fs::openat(
            base,
            part.as_c_str(),
            dir_flags(),
            Mode::empty(),
        )?);
    }
    let base = held.as_ref().map_or(dir, |fd| fd.as_fd());
    Ok(rustix::fs::openat(base, last.as_c_str(), flags, mode)?)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
}

/// Accepts exactly one plain path component.
fn component(name: &str) -> io::Result<CString> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains('/');
    match CString::new(name) {
        Ok(c) if !bad => Ok(c),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a single path component: {}",
                airlock_core::escape_for_log(name)
            ),
        )),
    }
}

// The field types differ between platforms, so the conversions are not
// useless everywhere.
#[allow(clippy::useless_conversion)]
pub(super) fn links_of(stat: &rustix::fs::Stat) -> u64 {
    u64::from(stat.st_nlink)
}

/// Device and inode number.
#[allow(clippy::useless_conversion)]
pub(super) fn identity_of(stat: &rustix::fs::Stat) -> (u64, u64) {
    (u64::from(stat.st_dev), u64::from(stat.st_ino))
}

pub(super) fn kind_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// What [`ConfinedDir::entry`] found under a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// `"regular file"`, `"fifo"`, `"symlink"`, …
    pub kind: &'static str,
    /// Its size.
    pub len: u64,
    /// Device and inode number.
    pub identity: (u64, u64),
}

impl Entry {
    /// Whether it is a regular file.
    pub fn is_regular(&self) -> bool {
        self.kind == kind_name(FileType::RegularFile)
    }
}

/// A temporary file being written; removed on drop unless committed.
#[derive(Debug)]
pub struct StagedFile<'d> {
    dir: &'d ConfinedDir,
    temp_name: String,
    file: Option<File>,
}

impl StagedFile<'_> {
    /// The file to write into.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("present until commit")
    }

    /// Syncs the data, renames the file to `name` (replacing a file, or a
    /// planted symlink itself, of that name) and syncs the folder.
    pub fn commit(mut self, name: &str) -> io::Result<()> {
        let c_name = component(name)?;
        let file = self.file.take().expect("present until commit");
        file.sync_all()?;
        drop(file);
        let temp = component(&self.temp_name)?;
        rustix::fs::renameat(
            &self.dir.fd,
            temp.as_c_str(),
            &self.dir.fd,
            c_name.as_c_str(),
        )?;
        self.temp_name.clear();
        self.dir.sync()
    }
}

impl Drop for StagedFile<'_> {
    fn drop(&mut self) {
        if self.temp_name.is_empty() {
            return;
        }
        if let Ok(temp) = component(&self.temp_name) {
            let _ = rustix::fs::unlinkat(&self.dir.fd, temp.as_c_str(), AtFlags::empty());
        }
    }
}

/// What [`ConfinedDir::remove_tree`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// Entries removed (files, symlinks, folders).
    pub removed: usize,
    /// What could not be removed, and why.
    pub failures: Vec<String>,
}

struct RemoveWalk {
    report: RemoveReport,
    max_entries: usize,
    exhausted: bool,
}

impl RemoveWalk {
    fn fail(&mut self, label: &Path, what: &dyn std::fmt::Display) {
        self.report
            .failures
            .push(format!("{}: {what}", label.display()));
    }

    fn entry(&mut self, parent: BorrowedFd<'_>, name: &CStr, label: &Path, depth: usize) {
        if self.exhausted {
            return;
        }
        if self.report.removed + self.report.failures.len() >= self.max_entries {
            self.exhausted = true;
            let limit = self.max_entries;
            self.fail(label, &format!("stopped after {limit} entries"));
            return;
        }
        match rustix::fs::openat(parent, name, dir_flags(), Mode::empty()) {
            Ok(dir) => {
                if depth >= MAX_REMOVE_DEPTH {
                    self.fail(
                        label,
                        &format!("nested deeper than {MAX_REMOVE_DEPTH} folders"),
                    );
                    return;
                }
                self.contents(dir.as_fd(), label, depth);
                drop(dir);
                if self.exhausted {
                    return;
                }
                match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
                    Ok(()) => self.report.removed += 1,
                    Err(Errno::NOENT) => {}
                    Err(e) => self.fail(label, &e),
                }
            }
            // Not a folder (file, FIFO, socket) or a symlink: unlink the entry
            // itself. If it became a folder meanwhile, unlink fails with EISDIR.
            Err(Errno::NOTDIR | Errno::LOOP) => {
                match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                    Ok(()) => self.report.removed += 1,
                    Err(Errno::NOENT) => {}
                    Err(e) => self.fail(label, &e),
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => self.fail(label, &e),
        }
    }

    fn contents(&mut self, dir: BorrowedFd<'_>, label: &Path, depth: usize) {
        // The guest may keep adding entries; a few passes, then give up.
        for _ in 0..4 {
            let names = match list(dir) {
                Ok(names) => names,
                Err(e) => {
                    self.fail(label, &format!("listing failed: {e}"));
                    return;
                }
            };
            if names.is_empty() {
                return;
            }
            let failures_before = self.report.failures.len();
            for name in names {
                let child = label.join(OsStr::from_bytes(name.as_bytes()));
                self.entry(dir, &name, &child, depth + 1);
            }
            // Another pass only helps with entries added meanwhile; after a
            // failure it would just repeat it (exponentially, in deep trees).
            if self.report.failures.len() > failures_before {
                return;
            }
        }
    }
}

fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_single_and_plain() {
        for bad in ["", ".", "..", "a/b", "/abs", "a\0b"] {
            assert!(component(bad).is_err(), "{bad:?}");
        }
        for ok in ["a", "...", ".x", "a b", "é"] {
            assert!(component(ok).is_ok(), "{ok:?}");
        }
    }
}
