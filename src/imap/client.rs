//! The mailbox operations the IMAP source needs, over one authenticated session.

use std::collections::BTreeMap;
use std::time::Duration;

use async_imap::imap_proto::{Capability, MailboxDatum, Response, ResponseCode, Status};
use tracing::{debug, warn};

use super::command::{self, ignore};
use super::connect::{Session, open_session};
use super::error::ImapError;
use super::protocol::{FetchCollector, MessageParts, quote_mailbox, uid_set};
use super::{FetchedMail, MailMeta, Selected};
use crate::config::ImapSettings;

/// One IMAP connection, logged in.
///
/// After a timeout or a connection error the session is dropped and every later call
/// fails with [`ImapError::Closed`] (transient): the daemon reconnects.
#[derive(Debug)]
pub struct ImapClient {
    /// `None` while IDLE owns the session (async-imap's `idle()` takes it by value) and
    /// after an error broke the connection.
    pub(super) session: Option<Session>,
    pub(super) caps: Capabilities,
    /// Bounds each wait for the server (connect, each response, IDLE start and end).
    pub(super) timeout: Duration,
    /// The server announced new messages (EXISTS) while answering some other command.
    /// IDLE does not repeat old news, so `idle_wait` returns at once when this is set.
    pub(super) pending_change: bool,
}

/// The extensions we use when the server has them.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Capabilities {
    pub idle: bool,
    /// RFC 6851 MOVE.
    pub mv: bool,
    /// RFC 4315 UIDPLUS (for `UID EXPUNGE`).
    pub uidplus: bool,
}

impl Capabilities {
    fn note(&mut self, cap: &Capability<'_>) {
        let Capability::Atom(atom) = cap else { return };
        match atom.to_ascii_uppercase().as_str() {
            "IDLE" => self.idle = true,
            "MOVE" => self.mv = true,
            "UIDPLUS" => self.uidplus = true,
            _ => {}
        }
    }
}

impl ImapClient {
    /// Connects and logs in as `settings` say, then learns the server's capabilities.
    pub async fn connect(settings: &ImapSettings) -> Result<Self, ImapError> {
        let session = open_session(settings).await?;
        let mut client = ImapClient {
            session: Some(session),
            caps: Capabilities::default(),
            timeout: settings.timeout,
            pending_change: false,
        };
        client.load_capabilities().await?;
        Ok(client)
    }

    /// The server supports IDLE (RFC 2177); without it the daemon polls.
    pub fn has_idle(&self) -> bool {
        self.caps.idle
    }

    /// The server supports MOVE (RFC 6851); without it `move_to` copies and expunges.
    pub fn has_move(&self) -> bool {
        self.caps.mv
    }

    /// Pretends the server lacks MOVE (and optionally UIDPLUS), to test the fallback path
    /// against a server that has both.
    #[doc(hidden)]
    pub fn disable_move_for_tests(&mut self, also_uidplus: bool) {
        self.caps.mv = false;
        self.caps.uidplus &= !also_uidplus;
    }

    /// Creates mailbox `name` unless it already exists.
    pub async fn ensure_mailbox(&mut self, name: &str) -> Result<(), ImapError> {
        let command = format!("CREATE {}", quote_mailbox(name)?);
        let err = match self.run(&command, ignore).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        // Servers disagree on how to say "already exists" (RFC 5530 ALREADYEXISTS is
        // optional), so ask rather than read the message text.
        if err.is_refusal() && self.exists(name).await? {
            debug!(mailbox = name, "mailbox already exists");
            return Ok(());
        }
        Err(mailbox_error(name, err))
    }

    /// Selects mailbox `name` read-write.
    pub async fn select(&mut self, name: &str) -> Result<Selected, ImapError> {
        let command = format!("SELECT {}", quote_mailbox(name)?);
        let (mut uid_validity, mut uid_next, mut exists) = (None, None, 0);
        let on_data = |r: &Response<'_>| {
            match r {
                Response::MailboxData(MailboxDatum::Exists(n)) => exists = *n,
                Response::Data {
                    status: Status::Ok,
                    outcome,
                } => match outcome.code {
                    Some(ResponseCode::UidValidity(v)) => uid_validity = Some(v),
                    Some(ResponseCode::UidNext(n)) => uid_next = Some(n),
                    _ => {}
                },
                _ => {}
            }
            Ok(())
        };
        self.run(&command, on_data)
            .await
            .map_err(|e| mailbox_error(name, e))?;
        // SELECT reports the current state; the caller lists from its checkpoint next.
        self.pending_change = false;
        let uid_validity = uid_validity.ok_or_else(|| ImapError::Protocol {
            command,
            detail: "no UIDVALIDITY: UIDs cannot be trusted".into(),
        })?;
        Ok(Selected {
            uid_validity,
            uid_next,
            exists,
        })
    }

    /// Size and INTERNALDATE of the messages with UID > `after_uid`, ascending by UID.
    pub async fn list_after(&mut self, after_uid: u32) -> Result<Vec<MailMeta>, ImapError> {
        self.pending_change = false;
        let from = after_uid.saturating_add(1);
        let command = format!("UID FETCH {from}:* (UID RFC822.SIZE INTERNALDATE)");
        // "n:*" always includes the highest message, even when its UID is below n
        // (RFC 3501 §6.4.8): hence the filter.
        let parts = self.fetch_parts(&command, |uid| uid > after_uid).await?;
        parts
            .into_iter()
            .map(|(uid, p)| {
                Ok(MailMeta {
                    uid,
                    size: p
                        .size
                        .ok_or_else(|| missing(&command, uid, "RFC822.SIZE"))?,
                    internal_date: p
                        .internal_date
                        .ok_or_else(|| missing(&command, uid, "INTERNALDATE"))?,
                })
            })
            .collect()
    }

    /// The raw bytes and INTERNALDATE of these messages, ascending by UID, in one
    /// `UID FETCH`. `BODY.PEEK[]` leaves `\Seen` alone. UIDs no longer in the mailbox
    /// are simply absent from the result.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<FetchedMail>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let command = format!("UID FETCH {} (UID INTERNALDATE BODY.PEEK[])", uid_set(uids));
        let parts = self
            .fetch_parts(&command, |uid| uids.contains(&uid))
            .await?;
        parts
            .into_iter()
            .map(|(uid, p)| {
                Ok(FetchedMail {
                    uid,
                    internal_date: p
                        .internal_date
                        .ok_or_else(|| missing(&command, uid, "INTERNALDATE"))?,
                    raw: p.body.ok_or_else(|| missing(&command, uid, "BODY[]"))?,
                })
            })
            .collect()
    }

    /// The header section of one message (`BODY.PEEK[HEADER]`), for a mail too large
    /// to load whole.
    pub async fn fetch_header(&mut self, uid: u32) -> Result<Vec<u8>, ImapError> {
        let command = format!("UID FETCH {uid} (UID BODY.PEEK[HEADER])");
        let mut parts = self.fetch_parts(&command, |u| u == uid).await?;
        parts
            .remove(&uid)
            .and_then(|p| p.header)
            .ok_or(ImapError::NoSuchMessage { uid })
    }

    /// Every message in `folder` (e.g. the quarantine, for a replay). Leaves `folder`
    /// selected: select the inbox again before working on it.
    pub async fn fetch_all(&mut self, folder: &str) -> Result<Vec<FetchedMail>, ImapError> {
        self.select(folder).await?;
        let uids: Vec<u32> = self.list_after(0).await?.iter().map(|m| m.uid).collect();
        self.fetch(&uids).await
    }

    /// Moves messages of the selected mailbox to `folder`.
    ///
    /// Without MOVE: `UID COPY`, flag `\Deleted`, then `UID EXPUNGE` (UIDPLUS). A server
    /// with neither gets a plain `EXPUNGE`, which also removes any other message someone
    /// flagged `\Deleted`; IMAP4rev1 has nothing narrower.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let target = quote_mailbox(folder)?;
        if self.caps.mv {
            let command = format!("UID MOVE {set} {target}");
            return match self.run(&command, ignore).await {
                Err(e) if e.is_expunge_issued() => self.move_around_expunged(uids, &target).await,
                other => other,
            };
        }
        let copy = format!("UID COPY {set} {target}");
        if let Err(e) = self.run(&copy, ignore).await {
            if !e.is_expunge_issued() {
                return Err(e);
            }
            // As for MOVE: catch up with the other session's expunges, copy the rest.
            self.run("NOOP", ignore).await?;
            self.run(&copy, ignore).await?;
        }
        self.run(
            &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            ignore,
        )
        .await?;
        let expunge = match self.caps.uidplus {
            true => format!("UID EXPUNGE {set}"),
            false => "EXPUNGE".to_owned(),
        };
        self.run(&expunge, ignore).await
    }

    /// After a `NO [EXPUNGEISSUED]`: someone else expunged some of `uids` since we
    /// fetched them, and the server moved none of them. A mail already gone needs no
    /// moving (its case is committed); the others still must leave the inbox. A NOOP
    /// brings the session up to date (the server then forgets the expunged UIDs and a
    /// UID set skips them), then the MOVE is repeated; if others keep expunging, each
    /// mail is moved on its own and the ones that vanished are skipped.
    async fn move_around_expunged(&mut self, uids: &[u32], target: &str) -> Result<(), ImapError> {
        warn!(
            count = uids.len(),
            "some fetched mail was expunged by another client before it was moved; moving the rest"
        );
        self.run("NOOP", ignore).await?;
        match self
            .run(&format!("UID MOVE {} {target}", uid_set(uids)), ignore)
            .await
        {
            Err(e) if e.is_expunge_issued() => {}
            other => return other,
        }
        for uid in uids {
            self.run("NOOP", ignore).await?;
            match self.run(&format!("UID MOVE {uid} {target}"), ignore).await {
                Err(e) if e.is_expunge_issued() => {
                    debug!(uid, "already expunged by another client; nothing to move")
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Says goodbye politely; errors do not matter any more at this point.
    pub async fn logout(mut self) {
        if self.session.is_none() {
            return;
        }
        if let Err(err) = self.run("LOGOUT", ignore).await {
            debug!(error = %err, "LOGOUT failed; dropping the connection");
        }
    }

    async fn load_capabilities(&mut self) -> Result<(), ImapError> {
        let mut caps = Capabilities::default();
        self.run("CAPABILITY", |r| {
            if let Response::Capabilities(list) = r {
                list.iter().for_each(|c| caps.note(c));
            }
            Ok(())
        })
        .await?;
        debug!(?caps, "imap capabilities");
        self.caps = caps;
        Ok(())
    }

    async fn exists(&mut self, name: &str) -> Result<bool, ImapError> {
        let command = format!("LIST \"\" {}", quote_mailbox(name)?);
        let mut found = false;
        self.run(&command, |r| {
            if let Response::MailboxData(MailboxDatum::List(entry)) = r {
                // imap-proto spells INBOX in capitals whatever the server sent.
                found |= entry.name == name
                    || (entry.name == "INBOX" && name.eq_ignore_ascii_case("INBOX"));
            }
            Ok(())
        })
        .await?;
        Ok(found)
    }

    async fn fetch_parts(
        &mut self,
        command: &str,
        wanted: impl Fn(u32) -> bool + Send + Sync,
    ) -> Result<BTreeMap<u32, MessageParts>, ImapError> {
        let mut collector = FetchCollector::default();
        self.run(command, |r| collector.absorb(r, &wanted)).await?;
        Ok(collector.parts)
    }

    /// Runs one command on the session; drops the session when the error leaves it out
    /// of step with the server, and remembers EXISTS news for `idle_wait`.
    pub(super) async fn run(
        &mut self,
        command: &str,
        mut on_data: impl FnMut(&Response<'_>) -> Result<(), String> + Send,
    ) -> Result<(), ImapError> {
        let timeout = self.timeout;
        let session = self.session.as_mut().ok_or(ImapError::Closed)?;
        let mut changed = false;
        let mut observe = |r: &Response<'_>| {
            changed |= matches!(r, Response::MailboxData(MailboxDatum::Exists(_)));
            on_data(r)
        };
        let result = command::run(session, command, timeout, &mut observe).await;
        self.pending_change |= changed;
        if result.as_ref().is_err_and(ImapError::breaks_connection) {
            self.session = None;
        }
        result
    }
}

/// A refusal about a mailbox is a [`ImapError::Mailbox`]; anything else stays as it is.
fn mailbox_error(name: &str, err: ImapError) -> ImapError {
    match err {
        ImapError::Command {
            detail,
            temporary: false,
            ..
        } => ImapError::Mailbox {
            name: name.to_owned(),
            detail,
        },
        other => other,
    }
}

fn missing(command: &str, uid: u32, item: &str) -> ImapError {
    ImapError::Protocol {
        command: command.to_owned(),
        detail: format!("no {item} for UID {uid}"),
    }
}
