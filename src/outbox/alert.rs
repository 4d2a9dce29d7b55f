//! A notification that cannot reach its engineer must not leave a case unseen: when the
//! relay refuses an engineer notification for good (a 5xx, or undeliverable past
//! `outbox.max_age_hours`), the queue's escalation address gets a `notification_failed`
//! mail (en/ja templates). Its Message-ID derives from the failed mail's, and the outbox
//! keys on Message-IDs, so each failure alerts exactly once, whichever instance saw it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::config::Config;
use crate::domain::language::Language;
use crate::mail::Address;
use crate::mail::compose::{self, Outgoing};
use crate::notices;
use crate::store::{NewOutbox, OutboxRow, Store, StoreError};
use crate::templates::TemplateKind;
use crate::templates::context::NotificationFailed;

/// What the sender worker needs to raise these alerts: the configuration (templates,
/// escalation addresses) it was started with.
#[derive(Debug, Clone)]
pub struct FailureAlerts {
    pub config: Arc<Config>,
}

impl FailureAlerts {
    /// Queue the alert for `row`, which just failed for good with `error`. True when
    /// a mail was queued. Rows other than engineer notifications need none.
    pub async fn on_failed(
        &self,
        store: &Store,
        row: &OutboxRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if row.kind != TemplateKind::EngineerNotification.name() {
            return Ok(false);
        }
        let Some(number) = row.case else {
            return Ok(false);
        };
        let Some(case) = store.case_summary(number).await? else {
            return Ok(false);
        };
        let config = &self.config;
        let queue = case.queue.clone().unwrap_or_default();
        let Some(to) = config.staff.escalation_for(&queue).map(str::to_string) else {
            warn!(case = %number, queue = %queue, "a notification failed and the queue has no escalation address (staff.escalation, staff.default_escalation)");
            return Ok(false);
        };
        if row.recipients.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
            return Ok(false); // the escalation address itself is what fails
        }
        let g = &config.gateway;
        let lang = config
            .routing
            .queue(&queue)
            .map(|q| q.language)
            .unwrap_or(Language::En);
        let ctx = NotificationFailed {
            common: notices::case_common(g, &case),
            queue,
            engineer: row.recipients.join(", "),
            error: error.to_string(),
        };
        let rendered = match config.templates.render_typed(lang.as_str(), &ctx) {
            Ok(r) => r,
            Err(e) => {
                warn!(case = %number, error = %e, "cannot render the notification_failed alert");
                return Ok(false);
            }
        };
        let message_id = format!("alert.{}", row.message_id);
        let outgoing = Outgoing {
            from: Address {
                name: Some(g.support_name.clone()),
                email: g.support_address.clone(),
            },
            to: vec![Address {
                name: None,
                email: to.clone(),
            }],
            cc: Vec::new(),
            reply_to: None,
            subject: rendered.subject,
            body: rendered.body,
            message_id: message_id.clone(),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: true,
            date: now,
        };
        let raw = match compose::compose(&outgoing) {
            Ok(raw) => raw,
            Err(e) => {
                warn!(case = %number, error = %e, "cannot compose the notification_failed alert");
                return Ok(false);
            }
        };
        let queued = store
            .enqueue_outbox(
                &NewOutbox {
                    case: Some(number),
                    kind: TemplateKind::NotificationFailed.name().into(),
                    message_id,
                    sender: g.support_address.clone(),
                    recipients: vec![to.clone()],
                    raw,
                },
                now,
            )
            .await?;
        if queued.is_some() {
            warn!(case = %number, to = %to, "an engineer notification failed; the escalation address is told");
        }
        Ok(queued.is_some())
    }
}
