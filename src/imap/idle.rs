//! Waiting for new mail with IDLE (RFC 2177).
//!
//! async-imap's `Session::idle()` consumes the session and `Handle::done()` hands it back,
//! so [`ImapClient`] keeps its session in an `Option`: taken for the wait, put back after
//! DONE. If the wait fails, the session is gone and the client reports `Closed` until the
//! daemon reconnects, which is what a broken IDLE connection needs anyway.

use std::time::Duration;

use async_imap::extensions::idle::{Handle, IdleResponse};
use async_imap::imap_proto::{Response, Status};
use async_imap::types::UnsolicitedResponse;
use tracing::debug;

use super::IdleEnd;
use super::client::ImapClient;
use super::command::timed;
use super::connect::Stream;
use super::error::ImapError;
use super::protocol::outcome_detail;
use crate::runtime::Shutdown;

/// Servers may log out a client idle for 30 minutes (RFC 2177 §3): re-issue before that.
const MAX_IDLE: Duration = Duration::from_secs(29 * 60);

impl ImapClient {
    /// Waits in IDLE on the selected mailbox until the server reports a change
    /// (`NewMail`: new, expunged or re-flagged messages; re-list to see what), `timeout`
    /// passes (capped at 29 minutes), or `shutdown` fires. Either way the caller should
    /// list from its checkpoint afterwards: a change arriving as the wait ends may be
    /// reported as `Timeout`.
    pub async fn idle_wait(
        &mut self,
        timeout: Duration,
        shutdown: &mut Shutdown,
    ) -> Result<IdleEnd, ImapError> {
        if shutdown.is_shutdown() {
            return Ok(IdleEnd::Shutdown);
        }
        if std::mem::take(&mut self.pending_change) {
            return Ok(IdleEnd::NewMail);
        }
        if !self.caps.idle {
            return Err(ImapError::Command {
                command: "IDLE".into(),
                detail: "the server does not advertise IDLE".into(),
                temporary: false,
            });
        }
        let session = self.session.take().ok_or(ImapError::Closed)?;
        // Notices async-imap set aside while starting and ending IDLE land in this channel.
        let notices = session.unsolicited_responses.clone();
        // Empties the channel; true if a notice announced new messages.
        let new_mail_noticed = || {
            let mut seen = false;
            while let Ok(notice) = notices.try_recv() {
                seen |= matches!(
                    notice,
                    UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
                );
            }
            seen
        };
        new_mail_noticed(); // stale news from earlier commands
        let mut handle = session.idle();
        debug!("imap > IDLE");
        timed(self.timeout, "IDLE", handle.init())
            .await?
            .map_err(|e| ImapError::from_imap("IDLE", e))?;
        let end = match new_mail_noticed() {
            true => IdleEnd::NewMail,
            false => wait(&mut handle, timeout.min(MAX_IDLE), shutdown).await?,
        };
        debug!(?end, "imap > DONE");
        let session = timed(self.timeout, "DONE", handle.done())
            .await?
            .map_err(|e| ImapError::from_imap("DONE", e))?;
        self.session = Some(session);
        match end {
            IdleEnd::Timeout if new_mail_noticed() => Ok(IdleEnd::NewMail),
            end => Ok(end),
        }
    }
}

async fn wait(
    handle: &mut Handle<Stream>,
    timeout: Duration,
    shutdown: &mut Shutdown,
) -> Result<IdleEnd, ImapError> {
    // Keep the StopSource alive: dropping it ends the wait at once as ManualInterrupt.
    let (response, _stop) = handle.wait_with_timeout(timeout);
    tokio::select! {
        response = response => idle_outcome(response),
        // async-imap restarts its timeout on every keepalive ("* OK Still here"): this is
        // the real deadline.
        () = tokio::time::sleep(timeout) => Ok(IdleEnd::Timeout),
        () = shutdown.recv() => Ok(IdleEnd::Shutdown),
    }
}

fn idle_outcome(response: async_imap::error::Result<IdleResponse>) -> Result<IdleEnd, ImapError> {
    match response.map_err(|e| ImapError::from_imap("IDLE", e))? {
        IdleResponse::NewData(data) => match data.parsed() {
            Response::Data {
                status: Status::Bye,
                outcome,
            } => Err(ImapError::Unavailable {
                detail: outcome_detail(outcome),
            }),
            other => {
                debug!(response = ?other, "imap < change during IDLE");
                Ok(IdleEnd::NewMail)
            }
        },
        IdleResponse::Timeout => Ok(IdleEnd::Timeout),
        // With the StopSource alive this only means the stream ended: the server hung up.
        IdleResponse::ManualInterrupt => Err(ImapError::ConnectionLost {
            command: "IDLE".into(),
        }),
    }
}
