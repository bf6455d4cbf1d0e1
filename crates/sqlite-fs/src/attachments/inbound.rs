//! Inbound extraction: decoding `attachments[].data` into
//! `inbox/<message_id>/<name>` and recognising a retried message.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use airlock_core::{
    AttachmentName, AttachmentOutcome, Error, ExtractedContent, MessageId, NameDeduper, Result,
    check_name, extension_for_mime, extension_for_type, split_extension,
};

use super::base64_stream::{Base64, DecodeStop};
use super::confined::{AccessError, ConfinedDir};
use super::json_entries::{
    ArrayEntry, OwnedHints, Rewrite, attachment_entries, rewrite_entry, splice,
};
use super::limits::AttachmentLimits;

/// Milliseconds since the Unix epoch, used for generated names.
pub type Clock = fn() -> u64;

fn system_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Decodes inline attachments of inbound messages into a session's inbox.
#[derive(Debug, Clone)]
pub struct InboundExtractor {
    limits: AttachmentLimits,
    clock: Clock,
}

impl Default for InboundExtractor {
    fn default() -> Self {
        Self::new(AttachmentLimits::default())
    }
}

impl InboundExtractor {
    /// An extractor with `limits` and the system clock.
    pub fn new(limits: AttachmentLimits) -> Self {
        Self {
            limits,
            clock: system_millis,
        }
    }

    /// The same extractor with another clock (for generated names in tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &AttachmentLimits {
        &self.limits
    }

    /// Decodes every entry of `raw`'s `attachments` array that has a string
    /// `data` into `<session_dir>/inbox/<message_id>/<name>` and returns the
    /// rewritten content (see [`InboundExtractor::prepare_in`]).
    pub fn prepare(
        &self,
        session_dir: &Path,
        message_id: &MessageId,
        raw: &str,
    ) -> Result<ExtractedContent> {
        self.extract(&mut Session::At(session_dir, None), message_id, raw)
    }

    /// [`InboundExtractor::prepare`] on an already opened session folder.
    ///
    /// Each extracted entry gets `name` and `localPath` and loses `data`;
    /// every other byte of `raw` is kept (numbers, whitespace, key order).
    /// Content that is not a JSON object, or has no such entry, is returned
    /// byte for byte without touching the file system. An entry with
    /// invalid base64, over [`AttachmentLimits::max_file_bytes`], or past
    /// [`AttachmentLimits::max_message_bytes`] for the whole message, is not
    /// written and gets an `error` field instead. Files appear under their
    /// final names only once complete and synced. I/O failures (disk full, a
    /// symlink planted at `inbox/<message_id>`) fail the whole call, so the
    /// message is not stored half-extracted and the caller can retry.
    pub fn prepare_in(
        &self,
        session: &ConfinedDir,
        message_id: &MessageId,
        raw: &str,
    ) -> Result<ExtractedContent> {
        self.extract(&mut Session::Opened(session), message_id, raw)
    }

    /// [`InboundExtractor::prepare_in`], opening the session folder only
    /// once an entry needs it (so the message's JSON is parsed once).
    fn extract(
        &self,
        session: &mut Session<'_>,
        message_id: &MessageId,
        raw: &str,
    ) -> Result<ExtractedContent> {
        let Some(entries) = attachment_entries(raw) else {
            return Ok(unchanged(raw));
        };
        let millis = (self.clock)();
        let mut dedup = NameDeduper::new();
        let mut budget = Budget::new(&self.limits);
        let mut inbox: Option<ConfinedDir> = None;
        let mut replacements = Vec::new();
        let mut outcomes = Vec::new();
        for entry in entries.iter().filter(|e| e.carries_data()) {
            let data = entry_data(entry);
            let rewrite = match budget.admit(&data) {
                Err(error) => Rewrite::Failed { error },
                Ok(base64) => {
                    let hints = OwnedHints::of(entry);
                    let name = dedup.claim(AttachmentName::derive(&hints.hints(), millis).name);
                    let dir = match &inbox {
                        Some(dir) => dir,
                        None => inbox.insert(open_inbox(session.get()?, message_id)?),
                    };
                    match write_file(dir, &name, &base64) {
                        Ok(()) => Rewrite::Written {
                            local_path: format!("inbox/{message_id}/{name}"),
                            name: name.into_string(),
                        },
                        Err(WriteError::Invalid(error)) => Rewrite::Failed { error },
                        Err(WriteError::Io(e)) => {
                            return Err(Error::io(dir.label_of(name.as_str()), e));
                        }
                    }
                }
            };
            if let Rewrite::Failed { error } = &rewrite {
                tracing::warn!(
                    message_id = %message_id,
                    index = entry.index,
                    error = %error,
                    "inbound attachment not extracted"
                );
            }
            outcomes.push(outcome(entry.index, &rewrite));
            replacements.push(replacement(entry, &rewrite)?);
        }
        Ok(ExtractedContent {
            content: splice(raw, &replacements),
            attachments: outcomes,
        })
    }

    /// Whether `raw` (as a bridge re-sends it, with `data`) is the message
    /// already stored as `stored` under `message_id` (see
    /// [`InboundExtractor::same_message_in`]).
    pub fn same_message(
        &self,
        session_dir: &Path,
        message_id: &MessageId,
        raw: &str,
        stored: &str,
    ) -> Result<bool> {
        self.compare(&mut Session::At(session_dir, None), message_id, raw, stored)
    }

    /// [`InboundExtractor::same_message`] on an opened session folder.
    ///
    /// True when rewriting `raw` with the names recorded in `stored` gives
    /// `stored` byte for byte (so every field but the files is identical and
    /// failed entries failed the same way), each recorded name is one
    /// `prepare` could have chosen for that entry, and each written file
    /// still holds exactly the decoded `data` (compared while decoding, in
    /// chunks). A file that is gone or changed means "not the same": the
    /// caller then stores the message under a new id rather than drop it.
    pub fn same_message_in(
        &self,
        session: &ConfinedDir,
        message_id: &MessageId,
        raw: &str,
        stored: &str,
    ) -> Result<bool> {
        self.compare(&mut Session::Opened(session), message_id, raw, stored)
    }

    /// [`InboundExtractor::same_message_in`], opening the session folder
    /// only when there are files to compare.
    fn compare(
        &self,
        session: &mut Session<'_>,
        message_id: &MessageId,
        raw: &str,
        stored: &str,
    ) -> Result<bool> {
        let Some(entries) = attachment_entries(raw) else {
            return Ok(raw == stored);
        };
        let Some(stored_entries) = attachment_entries(stored) else {
            return Ok(false);
        };
        let mut budget = Budget::new(&self.limits);
        let mut replacements = Vec::new();
        let mut files = Vec::new();
        for entry in entries.iter().filter(|e| e.carries_data()) {
            let Some(stored_entry) = stored_entries.get(entry.index) else {
                return Ok(false);
            };
            let data = entry_data(entry);
            let rewrite = match budget.admit(&data) {
                Err(error) => Rewrite::Failed { error },
                Ok(_) => {
                    let Some(name) = stored_entry.str_field("name") else {
                        return Ok(false);
                    };
                    if check_name(&name).is_err() || !could_derive(&OwnedHints::of(entry), &name) {
                        return Ok(false);
                    }
                    files.push((name.clone(), data));
                    Rewrite::Written {
                        local_path: format!("inbox/{message_id}/{name}"),
                        name,
                    }
                }
            };
            replacements.push(replacement(entry, &rewrite)?);
        }
        if splice(raw, &replacements) != stored {
            return Ok(false);
        }
        if files.is_empty() {
            return Ok(true);
        }
        let session = session.get()?;
        let inbox = match session.open_dir(&["inbox", message_id.as_str()]) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(session.label_of("inbox"), e)),
        };
        for (name, data) in files {
            if !file_matches(&inbox, &name, &data)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// An [`InboundExtractor`] bound to one session folder, shaped like the
/// mailbox's per-session inbound-content hook.
#[derive(Debug, Clone)]
pub struct SessionExtractor {
    session_dir: std::path::PathBuf,
    extractor: InboundExtractor,
}

impl SessionExtractor {
    /// Binds `extractor` to `session_dir` (`<sessions_root>/<agent_group>/<session>`).
    pub fn new(session_dir: impl Into<std::path::PathBuf>, extractor: InboundExtractor) -> Self {
        Self {
            session_dir: session_dir.into(),
            extractor,
        }
    }

    /// [`InboundExtractor::prepare`] for this session.
    pub fn prepare(&self, message_id: &MessageId, raw: &str) -> Result<ExtractedContent> {
        self.extractor.prepare(&self.session_dir, message_id, raw)
    }

    /// Removes the temporary files a killed write left in `inbox/<message_id>/`.
    pub fn clean_temps(&self, message_id: &MessageId) -> Result<()> {
        clean_inbox_temps(&self.session_dir, message_id)
    }

    /// [`InboundExtractor::same_message`] for this session.
    pub fn same_message(&self, message_id: &MessageId, raw: &str, stored: &str) -> Result<bool> {
        self.extractor
            .same_message(&self.session_dir, message_id, raw, stored)
    }
}

fn unchanged(raw: &str) -> ExtractedContent {
    ExtractedContent {
        content: raw.to_owned(),
        attachments: Vec::new(),
    }
}

pub(crate) fn has_data_entries(raw: &str) -> bool {
    attachment_entries(raw).is_some_and(|entries| entries.iter().any(ArrayEntry::carries_data))
}

fn entry_data<'a>(entry: &ArrayEntry<'a>) -> Cow<'a, [u8]> {
    entry.data().unwrap_or(Cow::Borrowed(&[]))
}

/// The session folder: given opened, or opened from its path on first use.
enum Session<'a> {
    Opened(&'a ConfinedDir),
    At(&'a Path, Option<ConfinedDir>),
}

impl Session<'_> {
    fn get(&mut self) -> Result<&ConfinedDir> {
        match self {
            Session::Opened(dir) => Ok(dir),
            Session::At(path, opened) => match opened {
                Some(dir) => Ok(dir),
                None => {
                    let dir = ConfinedDir::open_trusted(path).map_err(|e| Error::io(*path, e))?;
                    Ok(opened.insert(dir))
                }
            },
        }
    }
}

fn remove_stale_temps(dir: &ConfinedDir) -> Result<()> {
    match dir.remove_stale_temps() {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(folder = %dir.path().display(), removed = n, "removed temporary files a killed write left");
            Ok(())
        }
        Err(e) => Err(Error::io(dir.path(), e)),
    }
}

/// Removes the temporary files a killed write left in `inbox/<message_id>/`
/// of the session at `session_dir`, if that folder exists. The caller holds
/// the session's write lock.
fn clean_inbox_temps(session_dir: &Path, message_id: &MessageId) -> Result<()> {
    let session = ConfinedDir::open_trusted(session_dir).map_err(|e| Error::io(session_dir, e))?;
    match session.open_dir(&["inbox", message_id.as_str()]) {
        Ok(dir) => remove_stale_temps(&dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(session.label_of("inbox"), e)),
    }
}

fn open_inbox(session: &ConfinedDir, message_id: &MessageId) -> Result<ConfinedDir> {
    let inbox = session
        .open_or_create_dir("inbox")
        .map_err(|e| Error::io(session.label_of("inbox"), e))?;
    let dir = inbox
        .open_or_create_dir(message_id.as_str())
        .map_err(|e| Error::io(inbox.label_of(message_id.as_str()), e))?;
    inbox.sync().map_err(|e| Error::io(inbox.path(), e))?;
    // A retry of a write that was killed while staging finds its temp files.
    remove_stale_temps(&dir)?;
    Ok(dir)
}

/// The rewritten text of an entry that carried data, and where it goes.
fn replacement(entry: &ArrayEntry<'_>, rewrite: &Rewrite) -> Result<(Range<usize>, String)> {
    // An entry with `data` is an object with a field, so it has a span.
    let span = entry.span.clone().ok_or_else(|| {
        Error::invariant(
            None,
            format!(
                "attachment entry {} carries data but has no span",
                entry.index
            ),
        )
    })?;
    let fields = entry.fields.as_deref().unwrap_or_default();
    Ok((span, rewrite_entry(fields, rewrite)))
}

fn outcome(index: usize, rewrite: &Rewrite) -> AttachmentOutcome {
    match rewrite {
        Rewrite::Written { name, local_path } => AttachmentOutcome {
            index,
            name: Some(name.clone()),
            local_path: Some(local_path.clone()),
            error: None,
        },
        Rewrite::Failed { error } => AttachmentOutcome {
            index,
            name: None,
            local_path: None,
            error: Some(error.clone()),
        },
    }
}

/// The per-file and per-message caps, applied in array order.
struct Budget<'l> {
    limits: &'l AttachmentLimits,
    used: u64,
}

impl<'l> Budget<'l> {
    fn new(limits: &'l AttachmentLimits) -> Self {
        Self { limits, used: 0 }
    }

    /// Validates `data` and charges its decoded size, or says why not.
    fn admit<'d>(&mut self, data: &'d [u8]) -> std::result::Result<Base64<'d>, String> {
        let base64 = Base64::check(data)?;
        let len = base64.decoded_len();
        if len > self.limits.max_file_bytes {
            return Err(format!(
                "attachment is {len} bytes, over the limit of {} bytes",
                self.limits.max_file_bytes
            ));
        }
        if self.used + len > self.limits.max_message_bytes {
            return Err(format!(
                "attachments of this message exceed the limit of {} bytes",
                self.limits.max_message_bytes
            ));
        }
        self.used += len;
        Ok(base64)
    }
}

enum WriteError {
    Invalid(String),
    Io(std::io::Error),
}

/// Decodes `data` into a staged file and renames it to `name` once synced.
/// Blocks are large, so they go to the file unbuffered.
fn write_file(
    dir: &ConfinedDir,
    name: &AttachmentName,
    data: &Base64<'_>,
) -> Result<(), WriteError> {
    let mut staged = dir.stage_file().map_err(WriteError::Io)?;
    let file = staged.file();
    data.decode(|block| file.write_all(block))
        .map_err(|stop| match stop {
            DecodeStop::Invalid(e) => WriteError::Invalid(e),
            DecodeStop::Sink(e) => WriteError::Io(e),
        })?;
    staged.commit(name.as_str()).map_err(WriteError::Io)
}

/// Whether `inbox/<id>/<name>` is a regular file holding exactly the
/// decoded `data`; compared chunk by chunk while decoding.
fn file_matches(dir: &ConfinedDir, name: &str, data: &[u8]) -> Result<bool> {
    let mut file = match dir.open_regular(name) {
        Ok(file) => file,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(AccessError::NotRegular { .. }) => return Ok(false),
        Err(e) => return Err(e.into_core()),
    };
    let Ok(base64) = Base64::check(data) else {
        return Ok(false);
    };
    if file.len() != base64.decoded_len() {
        return Ok(false);
    }
    let mut buf = Vec::new();
    let result = base64.decode(|chunk| {
        buf.resize(chunk.len(), 0);
        file.file().read_exact(&mut buf)?;
        if buf != chunk {
            return Err(std::io::Error::other("content differs"));
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            // The file must end where the data ends (it may have grown).
            let mut probe = [0u8; 1];
            Ok(matches!(file.file().read(&mut probe), Ok(0)))
        }
        Err(_) => Ok(false),
    }
}

/// Whether `prepare` could have named this entry `stored`: its safe
/// explicit name or a de-duplicated form of it (`a (2).png`), else a
/// generated `attachment-<millis>` name with the entry's extension.
fn could_derive(hints: &OwnedHints, stored: &str) -> bool {
    let hints = hints.hints();
    match hints
        .name
        .filter(|n| !n.is_empty() && check_name(n).is_ok())
    {
        Some(name) => {
            let (stem, ext) = split_extension(name);
            stored == name
                || is_dedup_of(stored, ext, |prefix| {
                    stem.starts_with(prefix) || prefix == "attachment"
                })
        }
        None => {
            let ext = hints
                .mime_type
                .and_then(extension_for_mime)
                .or_else(|| hints.kind.and_then(extension_for_type))
                .map(|e| format!(".{e}"))
                .unwrap_or_default();
            let generated = |base: &str| {
                base.strip_prefix("attachment-")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            };
            stored.strip_suffix(ext.as_str()).is_some_and(generated)
                || is_dedup_of(stored, &ext, |prefix| {
                    generated(prefix) || prefix == "attachment"
                })
        }
    }
}

/// Whether `candidate` is `<prefix> (<k>)<ext>` with an accepted prefix.
fn is_dedup_of(candidate: &str, ext: &str, prefix_ok: impl Fn(&str) -> bool) -> bool {
    let Some(rest) = candidate
        .strip_suffix(ext)
        .and_then(|r| r.strip_suffix(')'))
    else {
        return false;
    };
    let Some(open) = rest.rfind(" (") else {
        return false;
    };
    let digits = &rest[open + 2..];
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && prefix_ok(&rest[..open])
}
