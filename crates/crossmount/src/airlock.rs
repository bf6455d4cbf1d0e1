//! airlock's access pattern: the real host and guest mailbox APIs of `airlock-sqlite-fs`.
use std::collections::BTreeMap;
use std::path::Path;

use airlock_core::mailbox::{NewInboundMessage, NewOutboundMessage};
use airlock_core::{AgentGroupId, MessageId, SessionId, SessionRef};
use airlock_sqlite_fs::{GuestMailbox, HostMailbox, MailboxRoots, PlainContent};

use crate::pattern::{GuestSide, HostSide, Seen, SideResult, reply_id};

/// Messages one guest poll may return. `pending` returns the *newest* N, so
/// with a small N a burst larger than N (the harness writes 100 messages a
/// second) hides older messages until newer ones are acked: that would
/// measure the reply rate, not what the mount lets the guest see.
pub const POLL_LIMIT: usize = 1000;

/// airlock's host side: [`HostMailbox`] (open, write, close per operation).
#[derive(Debug, Default)]
pub struct AirlockHost {
    mailbox: Option<HostMailbox>,
}

/// The mailbox of the session folder `dir` = `<data>/v2-sessions/<group>/<session>`.
fn host_mailbox(dir: &Path) -> SideResult<(MailboxRoots, SessionRef)> {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "{}: not <data>/v2-sessions/<group>/<session>",
                    dir.display()
                )
            })
    };
    let group = AgentGroupId::new(name(dir.parent())?).map_err(|e| e.to_string())?;
    let session = SessionId::new(name(Some(dir))?).map_err(|e| e.to_string())?;
    let data = dir
        .ancestors()
        .nth(3)
        .ok_or_else(|| format!("{}: too shallow for a session folder", dir.display()))?;
    Ok((
        MailboxRoots::in_data_dir(data),
        SessionRef::new(group, session),
    ))
}

impl AirlockHost {
    fn mailbox(&mut self, dir: &Path) -> SideResult<&HostMailbox> {
        if self.mailbox.is_none() {
            let (roots, session) = host_mailbox(dir)?;
            self.mailbox = Some(roots.host(&session));
        }
        self.mailbox.as_ref().ok_or_else(|| "no mailbox".to_owned())
    }
}

impl HostSide for AirlockHost {
    fn init(&mut self, dir: &Path) -> SideResult<()> {
        let (roots, session) = host_mailbox(dir)?;
        let mailbox = roots.create_session(&session).map_err(|e| e.to_string())?;
        if mailbox.paths().dir() != dir {
            return Err(format!(
                "session folder {} is not {}",
                mailbox.paths().dir().display(),
                dir.display()
            ));
        }
        self.mailbox = Some(mailbox);
        Ok(())
    }

    fn write(&mut self, dir: &Path, id: &str, body: &str) -> SideResult<()> {
        let id = MessageId::new(id).map_err(|e| e.to_string())?;
        let msg = NewInboundMessage::new(id, "chat", body);
        self.mailbox(dir)?
            .write_message(&msg, &PlainContent)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn replies(&mut self, dir: &Path) -> SideResult<Vec<String>> {
        let rows = self
            .mailbox(dir)?
            .list_outbound(usize::MAX)
            .map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|m| m.id).collect())
    }

    fn housekeeping(&mut self, dir: &Path) -> SideResult<()> {
        self.mailbox(dir)?
            .sync_acks()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// airlock's guest side: [`GuestMailbox`] (read-only poll per call, replies per write).
#[derive(Debug, Default)]
pub struct AirlockGuest {
    mailbox: Option<GuestMailbox>,
}

impl AirlockGuest {
    fn mailbox(&mut self, dir: &Path) -> SideResult<&GuestMailbox> {
        if self.mailbox.is_none() {
            self.mailbox = Some(GuestMailbox::open(dir).map_err(|e| e.to_string())?);
        }
        self.mailbox.as_ref().ok_or_else(|| "no mailbox".to_owned())
    }
}

impl GuestSide for AirlockGuest {
    fn poll(&mut self, dir: &Path) -> SideResult<Vec<Seen>> {
        let rows = self
            .mailbox(dir)?
            .pending(POLL_LIMIT)
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|m| Seen {
                id: m.id,
                seq: m.seq,
            })
            .collect())
    }

    fn reply(&mut self, dir: &Path, to: &Seen) -> SideResult<()> {
        let mailbox = self.mailbox(dir)?;
        let id = MessageId::new(reply_id(&to.id)).map_err(|e| e.to_string())?;
        let mut msg = NewOutboundMessage::new(id, "chat", "{}");
        msg.in_reply_to = Some(to.id.clone());
        mailbox.write_message_out(&msg).map_err(|e| e.to_string())?;
        mailbox.mark_completed(&[&to.id]).map_err(|e| e.to_string())
    }

    fn retries(&self) -> BTreeMap<String, u64> {
        let Some(m) = &self.mailbox else {
            return BTreeMap::new();
        };
        let s = m.retry_stats();
        [
            ("busy(5)", s.busy),
            ("rollback(776)", s.readonly_rollback),
            ("malformed(11)", s.malformed),
            ("gave-up", s.gave_up),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_owned(), n))
        .collect()
    }
}
