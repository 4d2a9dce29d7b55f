//! A notification that cannot reach its engineer must not leave a case unseen: when the
//! relay refuses an engineer notification for good (a 5xx, or undeliverable past
//! `outbox.max_age_hours`), the queue's escalation address gets a `notification_failed`
//! mail (en/ja templates). Its Message-ID derives from the failed mail's, and the outbox
//! keys on Message-IDs, so each failure alerts exactly once, whichever instance saw it.
//! The alert is queued in the transaction that marks the notification failed, so a
//! crash cannot record the failure and lose its alert.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tracing::warn;

use crate::config::Config;
use crate::domain::language::Language;
use crate::domain::outbound::OutboundKind;
use crate::mail::Address;
use crate::mail::compose::{self, Outgoing};
use crate::notices;
use crate::pipeline::Pipeline;
use crate::store::{NewOutbox, OutboxRow, Store, StoreError};
use crate::templates::TemplateKind;
use crate::templates::context::NotificationFailed;

/// What the sender worker needs to raise these alerts: the configuration (templates,
/// escalation addresses), the one given or the daemon's current one after reloads.
#[derive(Debug, Clone)]
pub struct FailureAlerts {
    config: ConfigSource,
}

#[derive(Debug, Clone)]
enum ConfigSource {
    Fixed(Arc<Config>),
    /// The pipeline the daemon reconfigures on SIGHUP and file changes.
    Current(watch::Receiver<Pipeline>),
}

impl FailureAlerts {
    /// Alerts under `config` (`run --once`: one configuration for the whole run).
    pub fn new(config: Arc<Config>) -> Self {
        FailureAlerts {
            config: ConfigSource::Fixed(config),
        }
    }

    /// Alerts under the configuration of the newest pipeline `rx` holds.
    pub fn following(rx: watch::Receiver<Pipeline>) -> Self {
        FailureAlerts {
            config: ConfigSource::Current(rx),
        }
    }

    fn config(&self) -> Arc<Config> {
        match &self.config {
            ConfigSource::Fixed(c) => c.clone(),
            ConfigSource::Current(rx) => rx.borrow().config().clone(),
        }
    }

    /// The alert for `row`, which is failing for good with `error`, to be queued with
    /// its failure ([`Store::mark_failed_alerting`]). Rows other than engineer
    /// notifications need none.
    pub async fn alert_for(
        &self,
        store: &Store,
        row: &OutboxRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<NewOutbox>, StoreError> {
        if row.kind != OutboundKind::Template(TemplateKind::EngineerNotification) {
            return Ok(None);
        }
        let Some(number) = row.case else {
            return Ok(None);
        };
        let Some(case) = store.case_summary(number).await? else {
            return Ok(None);
        };
        let config = &self.config();
        let queue = case.queue.clone().unwrap_or_default();
        let Some(to) = config.staff.escalation_for(&queue).map(str::to_string) else {
            warn!(case = %number, queue = %queue, "a notification failed and the queue has no escalation address (staff.escalation, staff.default_escalation)");
            return Ok(None);
        };
        if row.recipients.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
            return Ok(None); // the escalation address itself is what fails
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
                return Ok(None);
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
                return Ok(None);
            }
        };
        Ok(Some(NewOutbox {
            case: Some(number),
            kind: TemplateKind::NotificationFailed.into(),
            message_id,
            sender: g.support_address.clone(),
            recipients: vec![to],
            raw,
        }))
    }
}
