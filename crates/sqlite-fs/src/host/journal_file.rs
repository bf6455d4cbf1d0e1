//! Reads SQLite's rollback-journal format just far enough to find the saved
//! copy of page 1 and the change counter it carries.
//!
//! Format: segments, each a header (magic, record count, checksum nonce,
//! original page count, sector size, page size) padded to the sector size,
//! then records of page number (4 bytes), page data, checksum (4 bytes).
//! Only records SQLite would replay (synced segments, valid checksum) are
//! considered, so a misread can only make the answer `None` ("cannot
//! tell"), never a wrong counter.

use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn valid_size(n: u32) -> bool {
    (512..=65536).contains(&n) && n.is_power_of_two()
}

/// The change counter (bytes 24–27) of page 1 as saved in the journal at
/// `path`, if a replayable segment holds a checksummed copy of page 1.
pub(crate) fn page1_counter(path: &Path) -> Option<u32> {
    // No symlink, no blocking on a FIFO: the guest may have planted this file.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = std::fs::File::from(rustix::fs::open(path, flags, Mode::empty()).ok()?);
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let mut header = [0u8; 28];
    file.read_exact_at(&mut header, 0).ok()?;
    let sector = be32(&header[20..24]);
    let page = be32(&header[24..28]);
    if !valid_size(sector) || !valid_size(page) {
        return None;
    }
    let (sector, page) = (u64::from(sector), u64::from(page));
    let record_len = 8 + page;
    let mut data = vec![0u8; page as usize];
    let mut word = [0u8; 4];
    // Segments: a header at a sector boundary, then its records. A segment
    // whose header is not (yet) synced has a zeroed magic and ends the journal.
    let mut hdr_at = 0u64;
    while hdr_at + 28 <= len {
        file.read_exact_at(&mut header, hdr_at).ok()?;
        let records = be32(&header[8..12]);
        if header[..8] != MAGIC || records == 0 || records == u32::MAX {
            return None;
        }
        let nonce = be32(&header[12..16]);
        let mut at = hdr_at + sector;
        for _ in 0..records {
            if at + record_len > len {
                return None;
            }
            file.read_exact_at(&mut word, at).ok()?;
            if be32(&word) == 1 {
                file.read_exact_at(&mut data, at + 4).ok()?;
                file.read_exact_at(&mut word, at + 4 + page).ok()?;
                if checksum(nonce, &data) != be32(&word) {
                    return None;
                }
                return Some(be32(&data[24..28]));
            }
            at += record_len;
        }
        hdr_at = at.div_ceil(sector) * sector;
    }
    None
}

/// SQLite's journal record checksum: the nonce plus every 200th byte from the end.
fn checksum(nonce: u32, data: &[u8]) -> u32 {
    let mut sum = nonce;
    let mut i = data.len() as i64 - 200;
    while i > 0 {
        sum = sum.wrapping_add(u32::from(data[i as usize]));
        i -= 200;
    }
    sum
}
