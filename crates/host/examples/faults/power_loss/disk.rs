//! A disk image served through FUSE that records every write and every
//! flush, as device-mapper's `dm-log-writes` does, so that a power cut can
//! be replayed at any point of the run afterwards.
//!
//! A loop device is attached to the one file of this filesystem and a real
//! ext4 is mounted on it: the kernel's block layer sends each write as a
//! FUSE `write` and each cache flush (`REQ_PREFLUSH`, and the flush the
//! loop device emulates FUA with) as a FUSE `fsync`. What a flush covers is
//! durable; what was written after the last flush is in the disk's
//! volatile cache, and a cut keeps any subset of it, block by block.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};

/// The unit a cut keeps or loses: ext4's block, which disks write atomically.
pub const BLOCK: usize = 4096;

/// The name of the disk file in the FUSE mount.
const DISK_NAME: &str = "disk";
const ROOT: u64 = 1;
const DISK: u64 = 2;

#[derive(Debug, Clone)]
enum Entry {
    Write { offset: u64, data: Vec<u8> },
    Flush,
}

/// What the FUSE server and the harness share while a run records.
#[derive(Debug)]
struct Shared {
    image: Vec<u8>,
    log: Vec<Entry>,
}

/// The write log of one run: the image it started from and every write
/// and flush the disk received since, in the order received.
#[derive(Debug)]
pub struct WriteLog {
    base: Vec<u8>,
    entries: Vec<Entry>,
}

impl WriteLog {
    /// Entries (writes and flushes) in the log.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Flushes in the log.
    pub fn flushes(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Flush))
            .count()
    }

    /// Bytes written.
    pub fn written(&self) -> usize {
        self.entries
            .iter()
            .map(|e| match e {
                Entry::Write { data, .. } => data.len(),
                Entry::Flush => 0,
            })
            .sum()
    }

    /// The disk after a power cut once its first `cut` entries had arrived:
    /// every write before the last flush among them, and of the writes
    /// after that flush each `BLOCK` for which `keep` says true (in the
    /// order written, so a later write of a block kept wins).
    pub fn image_at(&self, cut: usize, keep: &mut dyn FnMut() -> bool) -> Vec<u8> {
        let issued = &self.entries[..cut.min(self.entries.len())];
        let durable = issued
            .iter()
            .rposition(|e| matches!(e, Entry::Flush))
            .map_or(0, |i| i + 1);
        let mut image = self.base.clone();
        for (i, entry) in issued.iter().enumerate() {
            let Entry::Write { offset, data } = entry else {
                continue;
            };
            let offset = *offset as usize;
            if i < durable {
                image[offset..offset + data.len()].copy_from_slice(data);
                continue;
            }
            // Pieces aligned to the disk's blocks, so a torn write tears
            // between blocks as on a real disk.
            let mut at = offset;
            while at < offset + data.len() {
                let end = ((at / BLOCK + 1) * BLOCK).min(offset + data.len());
                if keep() {
                    image[at..end].copy_from_slice(&data[at - offset..end - offset]);
                }
                at = end;
            }
        }
        image
    }
}

/// The FUSE filesystem: a root folder holding the disk file.
#[derive(Debug)]
struct LoggedDisk {
    shared: Arc<Mutex<Shared>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic in a FUSE callback leaves the log usable: it is only appended to.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn attr(ino: u64, size: u64) -> FileAttr {
    let (kind, perm) = if ino == ROOT {
        (FileType::Directory, 0o755)
    } else {
        (FileType::RegularFile, 0o600)
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink: if ino == ROOT { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK as u32,
        flags: 0,
    }
}

impl LoggedDisk {
    fn size(&self) -> u64 {
        lock(&self.shared).image.len() as u64
    }
}

const TTL: Duration = Duration::from_secs(3600);

impl Filesystem for LoggedDisk {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == ROOT && name == DISK_NAME {
            reply.entry(&TTL, &attr(DISK, self.size()), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
            ROOT => reply.attr(&TTL, &attr(ROOT, 0)),
            DISK => reply.attr(&TTL, &attr(DISK, self.size())),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == DISK {
            // No page cache for the disk file: every block I/O reaches the log.
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let shared = lock(&self.shared);
        let start = (offset as usize).min(shared.image.len());
        let end = (start + size as usize).min(shared.image.len());
        reply.data(&shared.image[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut shared = lock(&self.shared);
        let start = offset as usize;
        let Some(end) = start
            .checked_add(data.len())
            .filter(|end| *end <= shared.image.len())
        else {
            return reply.error(Errno::ENOSPC);
        };
        shared.image[start..end].copy_from_slice(data);
        shared.log.push(Entry::Write {
            offset,
            data: data.to_vec(),
        });
        reply.written(data.len() as u32);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut shared = lock(&self.shared);
        // Back-to-back flushes make no difference to what is durable.
        if !matches!(shared.log.last(), Some(Entry::Flush)) {
            shared.log.push(Entry::Flush);
        }
        reply.ok();
    }
}

/// A mounted [`LoggedDisk`]; dropping it unmounts.
pub struct Recording {
    session: Option<BackgroundSession>,
    shared: Arc<Mutex<Shared>>,
    mountpoint: PathBuf,
}

impl Recording {
    /// Serves `image` as `<mountpoint>/disk`, logging from now on.
    pub fn start(image: Vec<u8>, mountpoint: &Path) -> Result<Recording, String> {
        std::fs::create_dir_all(mountpoint)
            .map_err(|e| format!("{}: {e}", mountpoint.display()))?;
        let shared = Arc::new(Mutex::new(Shared {
            image,
            log: Vec::new(),
        }));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("airlock-power-loss".into()),
            MountOption::NoAtime,
        ];
        let fs = LoggedDisk {
            shared: Arc::clone(&shared),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config)
            .map_err(|e| format!("mounting the logged disk at {}: {e}", mountpoint.display()))?;
        Ok(Recording {
            session: Some(session),
            shared,
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    /// The disk file, for `losetup`.
    pub fn disk(&self) -> PathBuf {
        self.mountpoint.join(DISK_NAME)
    }

    /// Entries logged so far: a point in the run a cut can be placed at.
    pub fn position(&self) -> usize {
        lock(&self.shared).log.len()
    }

    /// Unmounts and returns the log, `base` being the image it started from.
    pub fn finish(mut self, base: Vec<u8>) -> WriteLog {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
        let entries = std::mem::take(&mut lock(&self.shared).log);
        WriteLog { base, entries }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> WriteLog {
        let write = |offset: usize, byte: u8, len: usize| Entry::Write {
            offset: offset as u64,
            data: vec![byte; len],
        };
        WriteLog {
            base: vec![0; 4 * BLOCK],
            entries: vec![
                write(0, 1, BLOCK),
                Entry::Flush,
                write(BLOCK, 2, 2 * BLOCK),
                write(3 * BLOCK, 3, BLOCK),
            ],
        }
    }

    #[test]
    fn a_cut_keeps_what_was_flushed_and_chosen_blocks_after() {
        let l = log();
        let none = l.image_at(4, &mut || false);
        assert_eq!((none[0], none[BLOCK], none[3 * BLOCK]), (1, 0, 0));
        let all = l.image_at(4, &mut || true);
        assert_eq!((all[BLOCK], all[2 * BLOCK], all[3 * BLOCK]), (2, 2, 3));
        // Alternate blocks: the two-block write is torn between its blocks.
        let mut flip = false;
        let torn = l.image_at(4, &mut || {
            flip = !flip;
            flip
        });
        assert_eq!((torn[BLOCK], torn[2 * BLOCK], torn[3 * BLOCK]), (2, 0, 3));
        // Before the flush even the first write may be lost.
        assert_eq!(l.image_at(1, &mut || false)[0], 0);
        assert_eq!(l.image_at(2, &mut || false)[0], 1);
    }
}
