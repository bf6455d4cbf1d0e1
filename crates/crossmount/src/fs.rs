//! A passthrough FUSE filesystem whose caching imitates VirtioFS's cache modes.
//!
//! Which setting models which real mount:
//!
//! | [`CacheMode`] | FUSE behaviour here | real mount it stands for |
//! |---|---|---|
//! | `None` | every open is `FOPEN_DIRECT_IO`, attribute and entry TTL 0 | virtiofsd `cache=none` (`-o direct_io`, bindfs/libfuse `direct_io,attr_timeout=0`) |
//! | `Auto` | attributes and entries cached for `attr_timeout`; on open the page cache is kept (`FOPEN_KEEP_CACHE`) unless the real file's mtime or size changed since the previous open, and the kernel drops pages when it sees changed attributes (`FUSE_AUTO_INVAL_DATA`) | virtiofsd `cache=auto` (default 1 s timeout), libfuse `auto_cache,attr_timeout=N,entry_timeout=N`; Docker Desktop / Lima / Colima VirtioFS shares |
//! | `Always` | attributes and entries cached for `attr_timeout` (use a long one), page cache always kept across opens | virtiofsd `cache=always`, libfuse `kernel_cache,attr_timeout=86400` |
//!
//! `writeback` additionally negotiates `FUSE_WRITEBACK_CACHE` (virtiofsd
//! `-o writeback`, libfuse `writeback_cache`): the guest's writes stay in its
//! page cache until fsync, close or the kernel's periodic writeback.
//!
//! POSIX locks are not forwarded (no `FUSE_POSIX_LOCKS`), so a lock taken
//! through the mount is invisible to a process on the real folder, as over
//! VirtioFS.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// How the mount caches file data and attributes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// No page cache, no attribute cache: VirtioFS `cache=none`.
    None,
    /// Timed attribute cache, page cache dropped when a change is seen on open: `cache=auto`.
    Auto,
    /// Page cache kept across opens, attributes cached for the timeout: `cache=always`.
    Always,
}

impl CacheMode {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::Auto => "auto",
            CacheMode::Always => "always",
        }
    }
}

/// Cache settings of one mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Page-cache policy.
    pub mode: CacheMode,
    /// How long the kernel may trust attributes and directory entries (ignored for `None`).
    pub attr_timeout: Duration,
    /// Negotiate the FUSE writeback cache.
    pub writeback: bool,
}

impl CacheConfig {
    /// Attribute and entry TTL actually handed to the kernel.
    pub fn ttl(&self) -> Duration {
        match self.mode {
            CacheMode::None => Duration::ZERO,
            _ => self.attr_timeout,
        }
    }

    /// Short label such as `auto(1s)+wb`.
    pub fn label(&self) -> String {
        let mut s = match self.mode {
            CacheMode::None => "none".to_owned(),
            m => format!("{}({}s)", m.name(), self.attr_timeout.as_secs_f64()),
        };
        if self.writeback {
            s.push_str("+wb");
        }
        s
    }
}

/// One known inode: the path below the root and the real inode it was looked up as.
#[derive(Debug, Clone)]
struct Node {
    rel: PathBuf,
    real_ino: u64,
}

#[derive(Debug, Default)]
struct State {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
    files: HashMap<u64, File>,
    next_fh: u64,
    /// (mtime, size) of the real file at the previous open, for `cache=auto`.
    seen_at_open: HashMap<u64, (SystemTime, u64)>,
}

/// The passthrough filesystem serving `root`.
#[derive(Debug)]
pub struct PassthroughFs {
    root: PathBuf,
    cache: CacheConfig,
    state: Mutex<State>,
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attr(ino: u64, m: &Metadata) -> FileAttr {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: system_time(m.atime(), m.atime_nsec()),
        mtime: system_time(m.mtime(), m.mtime_nsec()),
        ctime: system_time(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

impl PassthroughFs {
    /// A filesystem exposing `root` with the given cache behaviour.
    pub fn new(root: &Path, cache: CacheConfig) -> Self {
        let mut state = State {
            next_ino: 2,
            next_fh: 1,
            ..State::default()
        };
        state.nodes.insert(
            1,
            Node {
                rel: PathBuf::new(),
                real_ino: 0,
            },
        );
        state.by_path.insert(PathBuf::new(), 1);
        PassthroughFs {
            root: root.to_path_buf(),
            cache,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn real(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn rel_of(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.lock()
            .nodes
            .get(&ino.0)
            .map(|n| n.rel.clone())
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        let name_path = Path::new(name);
        if name_path.components().count() != 1 || name == ".." || name == "." {
            return Err(Errno::EINVAL);
        }
        Ok(self.rel_of(parent)?.join(name))
    }

    /// The inode number for `rel`, a fresh one when the real file was replaced.
    fn ino_for(&self, rel: &Path, m: &Metadata) -> u64 {
        let mut st = self.lock();
        if let Some(&ino) = st.by_path.get(rel)
            && (ino == 1 || st.nodes.get(&ino).is_some_and(|n| n.real_ino == m.ino()))
        {
            return ino;
        }
        let ino = st.next_ino;
        st.next_ino += 1;
        st.nodes.insert(
            ino,
            Node {
                rel: rel.to_path_buf(),
                real_ino: m.ino(),
            },
        );
        st.by_path.insert(rel.to_path_buf(), ino);
        ino
    }

    /// Removes the entry `name` of `parent` on the real folder with
    /// `remove_fn` and forgets its inode (unlink and rmdir).
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        remove_fn: fn(&Path) -> io::Result<()>,
    ) -> Result<(), Errno> {
        let rel = self.child(parent, name)?;
        remove_fn(&self.real(&rel)).map_err(|e| errno(&e))?;
        self.forget_path(&rel);
        Ok(())
    }

    fn forget_path(&self, rel: &Path) {
        let mut st = self.lock();
        if let Some(ino) = st.by_path.remove(rel) {
            st.nodes.remove(&ino);
            st.seen_at_open.remove(&ino);
        }
    }

    fn open_flags(&self, ino: u64, m: &Metadata) -> FopenFlags {
        match self.cache.mode {
            CacheMode::None => FopenFlags::FOPEN_DIRECT_IO,
            CacheMode::Always => FopenFlags::FOPEN_KEEP_CACHE,
            CacheMode::Auto => {
                let now = (system_time(m.mtime(), m.mtime_nsec()), m.size());
                let prev = self.lock().seen_at_open.insert(ino, now);
                if prev == Some(now) {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                }
            }
        }
    }

    fn open_options(&self, flags: i32) -> OpenOptions {
        let mut o = OpenOptions::new();
        match flags & libc::O_ACCMODE {
            libc::O_RDONLY => o.read(true),
            // The writeback cache reads pages back to fill partial writes.
            libc::O_WRONLY if !self.cache.writeback => o.write(true),
            _ => o.read(true).write(true),
        };
        o
    }

    fn insert_file(&self, f: File) -> u64 {
        let mut st = self.lock();
        let fh = st.next_fh;
        st.next_fh += 1;
        st.files.insert(fh, f);
        fh
    }

    fn with_file<T>(
        &self,
        fh: FileHandle,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> Result<T, Errno> {
        // Clone the descriptor so slow I/O does not hold the table lock.
        let file = {
            let st = self.lock();
            let file = st.files.get(&fh.0).ok_or(Errno::EBADF)?;
            file.try_clone().map_err(|e| errno(&e))?
        };
        f(&file).map_err(|e| errno(&e))
    }
}

impl Filesystem for PassthroughFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let mut wanted = InitFlags::empty();
        if self.cache.mode == CacheMode::Auto {
            wanted |= InitFlags::FUSE_AUTO_INVAL_DATA;
        }
        if self.cache.writeback {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        config.add_capabilities(wanted).map_err(|missing| {
            io::Error::other(format!("kernel lacks FUSE capabilities {missing:?}"))
        })
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let rel = match self.child(parent, name) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        match std::fs::symlink_metadata(self.real(&rel)) {
            Ok(m) => {
                let ino = self.ino_for(&rel, &m);
                reply.entry(&self.cache.ttl(), &attr(ino, &m), Generation(0));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let m = match fh {
            Some(fh) => self.with_file(fh, |f| f.metadata()),
            None => self
                .rel_of(ino)
                .and_then(|rel| std::fs::symlink_metadata(self.real(&rel)).map_err(|e| errno(&e))),
        };
        match m {
            Ok(m) => reply.attr(&self.cache.ttl(), &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = (|| -> Result<Metadata, Errno> {
            let rel = self.rel_of(ino)?;
            let real = self.real(&rel);
            let io = |e: io::Error| errno(&e);
            if let Some(mode) = mode {
                std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            let file = match fh {
                Some(fh) => self.with_file(fh, |f| f.try_clone())?,
                None if size.is_some() || atime.is_some() || mtime.is_some() => {
                    OpenOptions::new().write(true).open(&real).map_err(io)?
                }
                None => return std::fs::symlink_metadata(&real).map_err(io),
            };
            if let Some(size) = size {
                file.set_len(size).map_err(io)?;
            }
            let pick = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut times = std::fs::FileTimes::new();
            if let Some(a) = atime {
                times = times.set_accessed(pick(a));
            }
            if let Some(m) = mtime {
                times = times.set_modified(pick(m));
            }
            if atime.is_some() || mtime.is_some() {
                file.set_times(times).map_err(io)?;
            }
            file.metadata().map_err(io)
        })();
        match result {
            Ok(m) => reply.attr(&self.cache.ttl(), &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.child(parent, name).and_then(|rel| {
            let real = self.real(&rel);
            std::fs::create_dir(&real).map_err(|e| errno(&e))?;
            let _ = std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode & !umask));
            let m = std::fs::symlink_metadata(&real).map_err(|e| errno(&e))?;
            Ok((self.ino_for(&rel, &m), m))
        });
        match result {
            Ok((ino, m)) => reply.entry(&self.cache.ttl(), &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            reply,
            self.remove(parent, name, |p| std::fs::remove_file(p)),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.remove(parent, name, |p| std::fs::remove_dir(p)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL);
        }
        let result = (|| {
            let from = self.child(parent, name)?;
            let to = self.child(newparent, newname)?;
            std::fs::rename(self.real(&from), self.real(&to)).map_err(|e| errno(&e))?;
            self.forget_path(&from);
            self.forget_path(&to);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let rel = self.rel_of(ino)?;
            let file = self
                .open_options(flags.0)
                .open(self.real(&rel))
                .map_err(|e| errno(&e))?;
            let m = file.metadata().map_err(|e| errno(&e))?;
            let fopen = self.open_flags(ino.0, &m);
            Ok((self.insert_file(file), fopen))
        })();
        match result {
            Ok((fh, fopen)) => reply.opened(FileHandle(fh), fopen),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = (|| {
            let rel = self.child(parent, name)?;
            let mut o = self.open_options(flags);
            o.create(true).mode(mode & !umask & 0o7777);
            if flags & libc::O_EXCL != 0 {
                o.create_new(true);
            }
            if flags & libc::O_ACCMODE == libc::O_RDONLY {
                o.write(true);
            }
            let file = o.open(self.real(&rel)).map_err(|e| errno(&e))?;
            let m = file.metadata().map_err(|e| errno(&e))?;
            let ino = self.ino_for(&rel, &m);
            let fopen = self.open_flags(ino, &m);
            Ok((ino, m, self.insert_file(file), fopen))
        })();
        match result {
            Ok((ino, m, fh, fopen)) => reply.created(
                &self.cache.ttl(),
                &attr(ino, &m),
                Generation(0),
                FileHandle(fh),
                fopen,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.with_file(fh, |f| {
            let mut buf = vec![0u8; size as usize];
            let mut done = 0;
            while done < buf.len() {
                match f.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(done);
            Ok(buf)
        });
        match result {
            Ok(buf) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with_file(fh, |f| f.write_all_at(data, offset)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().files.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.with_file(fh, |f| {
            if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            }
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let rel = match self.rel_of(ino) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        let entries = match std::fs::read_dir(self.real(&rel)) {
            Ok(rd) => rd,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut all = vec![
            (ino.0, FileType::Directory, ".".into()),
            (1, FileType::Directory, "..".into()),
        ];
        for entry in entries.flatten() {
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => FileType::Directory,
                Ok(t) if t.is_symlink() => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            // Inode numbers in readdir are only hints; lookup assigns the real ones.
            all.push((u64::MAX, kind, entry.file_name()));
        }
        for (i, (ino, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_zero_without_cache() {
        let c = CacheConfig {
            mode: CacheMode::None,
            attr_timeout: Duration::from_secs(5),
            writeback: false,
        };
        assert_eq!(c.ttl(), Duration::ZERO);
        assert_eq!(c.label(), "none");
        let a = CacheConfig {
            mode: CacheMode::Auto,
            writeback: true,
            ..c
        };
        assert_eq!(a.ttl(), Duration::from_secs(5));
        assert_eq!(a.label(), "auto(5s)+wb");
    }

    #[test]
    fn child_refuses_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let fs = PassthroughFs::new(
            dir.path(),
            CacheConfig {
                mode: CacheMode::Auto,
                attr_timeout: Duration::from_secs(1),
                writeback: false,
            },
        );
        assert!(fs.child(INodeNo(1), OsStr::new("..")).is_err());
        assert!(fs.child(INodeNo(1), OsStr::new("a/b")).is_err());
        assert_eq!(
            fs.child(INodeNo(1), OsStr::new("a")).unwrap(),
            PathBuf::from("a")
        );
    }
}
