//! The host's record of the published `inbound.db` after its last commit:
//! identity (dev, ino, size, ctime), change counter, generation, and the
//! boot and mount it was written in ([`super::instance`]).
//!
//! Written without a sync: a lost or torn record only makes the next
//! operation rebuild the published file from `host.db`.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::folder::FileId;
use super::instance::{self, Instance};
use crate::error::{Error, Result};
use crate::layout::HostSessionState;

/// What the published file looked like when the host last left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// The `host.db` generation it carries.
    pub(crate) generation: i64,
    /// Its identity.
    pub(crate) id: FileId,
    /// Header bytes 24–27.
    pub(crate) counter: u32,
    /// The boot and mount it was written in (`None`: not known, so its
    /// publishes synced the file).
    pub(crate) instance: Option<Instance>,
}

/// The change counter from an open file's header (`None`: too short / not SQLite).
pub(crate) fn counter_of(file: &std::fs::File) -> Option<u32> {
    let mut buf = [0u8; 28];
    file.read_exact_at(&mut buf, 0).ok()?;
    (&buf[..16] == b"SQLite format 3\0")
        .then(|| u32::from_be_bytes([buf[24], buf[25], buf[26], buf[27]]))
}

/// What the host-state link shows now (the host's own name; trusted path).
pub(crate) fn current(state: &HostSessionState, generation: i64) -> Result<Option<Record>> {
    let path = state.published_db();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let st = rustix::fs::fstat(&file).map_err(|e| Error::io(&path, e.into()))?;
    Ok(counter_of(&file).map(|counter| Record {
        generation,
        id: FileId::of(&st),
        counter,
        instance: instance::of(state.dir()),
    }))
}

/// The stored record; `None` when absent or unreadable.
pub(crate) fn load(state: &HostSessionState) -> Option<Record> {
    let text = read_record(&state.published_record())?;
    let v: Vec<&str> = text.split_whitespace().collect();
    // Records of older versions have no instance.
    let (fields, instance) = match v.as_slice() {
        [fields @ .., last] if fields.len() == 6 => (fields, Instance::parse(last)),
        fields => (fields, None),
    };
    let [g, dev, ino, size, ctime, counter] = fields else {
        return None;
    };
    Some(Record {
        generation: g.parse().ok()?,
        id: FileId {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            size: size.parse().ok()?,
            ctime_ns: ctime.parse().ok()?,
        },
        counter: counter.parse().ok()?,
        instance,
    })
}

/// Stores the record of the link as it is now, tagged `generation`.
pub(crate) fn save(state: &HostSessionState, generation: i64) -> Result<Record> {
    let record = current(state, generation)?.ok_or_else(|| {
        Error::io(
            state.published_db(),
            std::io::Error::other("the published inbound.db has no SQLite header"),
        )
    })?;
    let id = record.id;
    let instance = record
        .instance
        .map_or_else(|| "-".to_owned(), Instance::to_text);
    let text = format!(
        "{} {} {} {} {} {} {instance}\n",
        record.generation, id.dev, id.ino, id.size, id.ctime_ns, record.counter
    );
    write_record(&state.published_record(), &text)?;
    Ok(record)
}

/// Bytes of every stored record: six numbers, the instance and spaces always fit.
const RECORD_BYTES: usize = 192;

/// The record file's text. A current record is exactly `RECORD_BYTES`
/// ending in a newline, read with one `read` (a sweep reads every session's
/// record on every tick); an older, shorter one is read to its end.
fn read_record(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut bytes = [0_u8; RECORD_BYTES];
    let n = file.read(&mut bytes).ok()?;
    let mut text = bytes[..n].to_vec();
    if n < RECORD_BYTES || bytes[RECORD_BYTES - 1] != b'\n' {
        file.read_to_end(&mut text).ok()?;
    }
    String::from_utf8(text).ok()
}

/// Overwrites the record in place, padded to [`RECORD_BYTES`]: truncating
/// and rewriting a file makes ext4 allocate and start writing its blocks
/// on close (its protection for files replaced by truncation), which cost
/// an eighth of a one-message write. A torn record fails to parse or to
/// match, so the next operation rebuilds.
fn write_record(path: &Path, text: &str) -> Result<()> {
    let mut bytes = [b' '; RECORD_BYTES];
    let text = text.as_bytes();
    let len = text.len().min(RECORD_BYTES - 1);
    bytes[..len].copy_from_slice(&text[..len]);
    bytes[RECORD_BYTES - 1] = b'\n';
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // Older versions wrote the same line unpadded, always shorter.
    file.write_all_at(&bytes, 0).map_err(|e| Error::io(path, e))
}

/// Forgets the record (the next operation rebuilds).
pub(crate) fn clear(state: &HostSessionState) {
    let _ = std::fs::remove_file(state.published_record());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bytes: &[u8]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("published.record");
        std::fs::write(&path, bytes).unwrap();
        read_record(&path)
    }

    #[test]
    fn a_current_record_reads_whole_in_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("published.record");
        write_record(&path, "7 1 2 3 4 5").unwrap();
        let text = read_record(&path).unwrap();
        assert_eq!(text.len(), RECORD_BYTES);
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields, ["7", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn a_record_without_an_instance_loads_with_none() {
        let dir = tempfile::tempdir().unwrap();
        let session = airlock_core::SessionRef::new("ag".parse().unwrap(), "s1".parse().unwrap());
        let state = crate::layout::HostStateRoot::new(dir.path()).session(&session);
        std::fs::create_dir_all(state.dir()).unwrap();
        std::fs::write(state.published_record(), "7 1 2 3 4 5\n").unwrap();
        let old = load(&state).unwrap();
        assert_eq!((old.generation, old.counter, old.instance), (7, 5, None));
        std::fs::write(
            state.published_record(),
            "7 1 2 3 4 5 0000000000000000000000000000002a-9\n",
        )
        .unwrap();
        let new = load(&state).unwrap();
        assert_eq!(new.instance, Some(Instance { boot: 42, mount: 9 }));
    }

    #[test]
    fn an_older_shorter_or_unterminated_record_reads_to_its_end() {
        assert_eq!(read_back(b"7 1 2 3 4 5").as_deref(), Some("7 1 2 3 4 5"));
        assert_eq!(
            read_back(b"7 1 2 3 4 5\n").as_deref(),
            Some("7 1 2 3 4 5\n")
        );
        // Longer than a record with no newline where one ends: all of it.
        let long = format!("{} 9", "8 ".repeat(RECORD_BYTES / 2));
        assert_eq!(read_back(long.as_bytes()), Some(long));
        assert_eq!(read_back(b""), Some(String::new()));
    }
}
