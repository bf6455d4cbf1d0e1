//! The stdout channel of `airlock deliver`: each message becomes one JSON
//! line carrying its routing, its content and its files (bytes in base64), so
//! a bridge reading the stream has everything before the outbox is cleared.
//!
//! A message counts as delivered only once its line is fully written and,
//! when stdout is a pipe, read by the other side: a reader that goes away
//! (`| head -n1`) leaves the unread lines due, a failed or short write
//! (`>/dev/full`) is a transient failure, never a delivery.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use rustix::event::{PollFd, PollFlags};
use serde::Serialize;
use serde_json::Value;

use super::adapter::{ChannelAdapter, DeliveryError};
use super::delivery::Delivery;

#[derive(Serialize)]
struct FileLine<'a> {
    name: &'a str,
    size: usize,
    /// The bytes, base64 (standard alphabet, padded).
    data: String,
}

/// The JSON line of one delivery.
#[derive(Serialize)]
struct DeliveryLine<'a> {
    session: &'a str,
    id: &'a str,
    seq: i64,
    kind: &'a str,
    origin: airlock_core::mailbox::Origin,
    in_reply_to: Option<&'a str>,
    channel_type: Option<&'a str>,
    platform_id: Option<&'a str>,
    thread_id: Option<&'a str>,
    content: &'a Value,
    files: Vec<FileLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files_error: Option<&'a str>,
}

/// The JSON line `StdoutAdapter` prints for `delivery` (newline included).
pub fn delivery_line(delivery: &Delivery) -> String {
    let message = delivery.message();
    let routing = delivery.routing();
    let line = DeliveryLine {
        session: delivery.session().id.as_str(),
        id: &message.id,
        seq: message.seq,
        kind: &message.kind,
        origin: message.origin,
        in_reply_to: message.in_reply_to.as_deref(),
        channel_type: routing.channel_type.as_deref(),
        platform_id: routing.platform_id.as_deref(),
        thread_id: routing.thread_id.as_deref(),
        content: delivery.content(),
        files: delivery
            .files()
            .iter()
            .map(|f| FileLine {
                name: &f.name,
                size: f.data.len(),
                data: base64::engine::general_purpose::STANDARD.encode(&f.data),
            })
            .collect(),
        files_error: delivery.files_error(),
    };
    let mut text = serde_json::to_string(&line)
        .unwrap_or_else(|e| format!("{{\"error\":\"could not encode the delivery: {e}\"}}"));
    text.push('\n');
    text
}

/// One line at a time, so lines of parallel sessions never interleave and
/// each one's read-back check sees only its own bytes.
static TURN: Mutex<()> = Mutex::new(());

/// How long a pipe reader may leave a line unread before the write counts
/// as failed (the engine's per-call timeout usually ends the call earlier).
const READ_BACK_LIMIT: Duration = Duration::from_secs(120);

/// Delivers to this process's stdout, one JSON line per message.
#[derive(Debug, Default)]
pub struct StdoutAdapter(());

impl StdoutAdapter {
    /// A new adapter.
    pub fn new() -> Self {
        Self(())
    }
}

#[async_trait]
impl ChannelAdapter for StdoutAdapter {
    async fn deliver(&self, delivery: &Delivery) -> Result<String, DeliveryError> {
        let line = delivery_line(delivery);
        let platform_id = format!(
            "stdout-{}-{}",
            delivery.session().id,
            delivery.message().seq
        );
        let written = tokio::task::spawn_blocking(move || {
            let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
            write_and_confirm(line.as_bytes())
        })
        .await;
        match written {
            Ok(result) => result.map(|()| platform_id),
            Err(e) => Err(DeliveryError::transient(format!(
                "the stdout writer failed: {e}"
            ))),
        }
    }
}

/// Writes all of `bytes` to `fd`, every error (EBADF included) returned.
fn write_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes `bytes` to stdout and, on a pipe, waits until the reader took them.
fn write_and_confirm(bytes: &[u8]) -> Result<(), DeliveryError> {
    let mut out = std::io::stdout().lock();
    // Whatever else was printed goes first; the line itself is written to
    // fd 1 directly, because std's stdout reports a write to a closed fd 1
    // (EBADF) as done, and a line nobody got must not count as delivered.
    out.flush()
        .map_err(|e| DeliveryError::transient(format!("writing to stdout failed: {e}")))?;
    write_line(out.as_fd(), bytes)
}

/// Writes `bytes` to `fd` and, on a pipe, waits until the reader took them.
fn write_line(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), DeliveryError> {
    write_fd(fd, bytes)
        .map_err(|e| DeliveryError::transient(format!("writing to stdout failed: {e}")))?;
    let is_pipe = rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .unwrap_or(false);
    if !is_pipe {
        return Ok(());
    }
    let mut pause = Duration::from_micros(200);
    let started = std::time::Instant::now();
    let now = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // Linux answers FIONREAD on either end of a pipe: bytes not yet read.
        match rustix::io::ioctl_fionread(fd) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A pipe that cannot say: the write itself is all we know.
            Err(_) => return Ok(()),
        }
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        let closed = rustix::event::poll(&mut fds, Some(&now))
            .map(|_| fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP))
            .unwrap_or(false);
        if closed {
            return Err(DeliveryError::transient(
                "the reader of stdout closed the pipe before reading the line",
            ));
        }
        if started.elapsed() > READ_BACK_LIMIT {
            return Err(DeliveryError::transient(
                "the reader of stdout stopped reading",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::write_line;

    #[test]
    fn io_errors_a_write_failing_with_ebadf_is_not_a_delivery() {
        // A read-only descriptor answers a write with EBADF, which std's
        // stdout would report as written (libfiu injects exactly that).
        let read_only = std::fs::File::open("/dev/null").unwrap();
        let err = write_line(read_only.as_fd(), b"{}\n").unwrap_err();
        assert!(
            err.to_string().contains("writing to stdout failed"),
            "{err}"
        );
        let writable = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        write_line(writable.as_fd(), b"{}\n").unwrap();
    }
}
