//! A minimal `newc` cpio writer: the VM's initramfs, uncompressed (the kernel reads it as is).

use std::path::Path;

/// An initramfs being assembled in memory.
#[derive(Default)]
pub struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn header(&mut self, name: &str, mode: u32, size: usize) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    /// A directory (parents must come first).
    pub fn dir(&mut self, name: &str) {
        self.header(name, 0o040755, 0);
    }

    /// A regular file with `content`.
    pub fn file(&mut self, name: &str, mode: u32, content: &[u8]) {
        self.header(name, 0o100000 | mode, content.len());
        self.data.extend_from_slice(content);
        self.pad();
    }

    /// A regular file copied from the host.
    pub fn copy(&mut self, name: &str, from: &Path) -> Result<(), String> {
        let content = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        self.file(name, 0o755, &content);
        Ok(())
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, 0);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_end_with_the_trailer() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("bin/x", 0o755, b"abc");
        let data = c.finish();
        assert_eq!(data.len() % 4, 0);
        assert_eq!(&data[..6], b"070701");
        // The file's size field (7th) says 3, and its bytes follow its name.
        let second = data
            .windows(6)
            .skip(1)
            .position(|w| w == b"070701")
            .unwrap()
            + 1;
        assert_eq!(&data[second + 6 + 6 * 8..second + 6 + 7 * 8], b"00000003");
        let trailer = b"TRAILER!!!\0";
        assert!(data.windows(trailer.len()).any(|w| w == trailer));
    }
}
