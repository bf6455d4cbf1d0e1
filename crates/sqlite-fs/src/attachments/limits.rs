//! Size limits for attachment files.

/// Size caps for attachment files, per file and per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// Largest single file, decoded (inbound) or read (outbox). Default 64 MiB.
    pub max_file_bytes: u64,
    /// Most bytes of all files of one message. Default 256 MiB.
    pub max_message_bytes: u64,
}

impl AttachmentLimits {
    /// 64 MiB per file.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
    /// 256 MiB per message.
    pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 256 * 1024 * 1024;
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}
