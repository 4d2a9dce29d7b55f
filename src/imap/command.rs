//! Running one tagged command to completion.
//!
//! async-imap's FETCH/STORE/LIST streams end quietly on a NO/BAD or when the connection
//! drops, which would look like "no messages". This runner reads every response itself
//! and turns both into errors, so a short answer is never mistaken for a complete one.

use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use tracing::debug;

use super::connect::Session;
use super::error::{ImapError, is_temporary};
use super::protocol::outcome_detail;

/// `fut`, or a [`ImapError::Timeout`] naming `step` once `after` has passed.
pub(crate) async fn timed<T>(
    after: Duration,
    step: &str,
    fut: impl Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| ImapError::Timeout {
            step: step.to_owned(),
            after,
        })
}

/// Sends `command` and reads up to its tagged completion, passing each untagged response
/// to `on_data`.
///
/// `timeout` bounds each wait for a response, not the whole command, so a large FETCH
/// that keeps delivering is not cut short. An `on_data` error does not stop the reading:
/// the rest of the answer is still drained so the session stays in step with the server.
pub(crate) async fn run(
    session: &mut Session,
    command: &str,
    timeout: Duration,
    on_data: &mut (dyn FnMut(&Response<'_>) -> Result<(), String> + Send),
) -> Result<(), ImapError> {
    debug!(command, "imap >");
    let tag = timed(timeout, command, session.run_command(command))
        .await?
        .map_err(|e| ImapError::from_imap(command, e))?;
    let mut data_error = None;
    loop {
        let response = timed(timeout, command, session.read_response())
            .await?
            .map_err(|source| ImapError::Io {
                command: command.to_owned(),
                cause: source,
            })?
            .ok_or_else(|| ImapError::ConnectionLost {
                command: command.to_owned(),
            })?;
        match response.parsed() {
            Response::Done {
                tag: done,
                status,
                outcome,
            } if *done == tag => {
                check_status(command, status, &outcome_detail(outcome))?;
                return match data_error {
                    None => Ok(()),
                    Some(detail) => Err(ImapError::Protocol {
                        command: command.to_owned(),
                        detail,
                    }),
                };
            }
            other => {
                if let Err(detail) = on_data(other) {
                    data_error.get_or_insert(detail);
                }
            }
        }
    }
}

fn check_status(command: &str, status: &Status, detail: &str) -> Result<(), ImapError> {
    match status {
        Status::Ok => {
            debug!(command, "imap < OK");
            Ok(())
        }
        _ => Err(ImapError::Command {
            command: command.to_owned(),
            detail: format!("{} {detail}", format!("{status:?}").to_uppercase()),
            temporary: is_temporary(detail),
        }),
    }
}

/// An `on_data` for commands whose untagged responses we do not need.
pub(crate) fn ignore(_: &Response<'_>) -> Result<(), String> {
    Ok(())
}
