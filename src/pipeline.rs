//! One mail through the stages: parse -> classify -> thread -> decide -> commit.
//! Settling (moving the mail on the IMAP server) is the source's job, after this returns.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::config::Config;
use crate::domain::CaseNumber;
use crate::domain::decide::{self, Rules};
use crate::mail::Inbound;
use crate::mail::parse::{self, ParseLimits};
use crate::store::{Committed, NewAttachment, NewMessage, QuarantineEntry, QuarantineStatus, Store, StoreError};

/// Where a mail came from (for the quarantine register and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Imap,
    Stdin,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Imap => "imap",
            Origin::Stdin => "stdin",
        }
    }
}

/// What became of one mail. Every variant means the mail is safely accounted for and may
/// leave the inbox; a [`StoreError`] instead means it must stay and be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored { case: CaseNumber, opened: bool },
    Duplicate { case: CaseNumber },
    Quarantined { reason: String },
}

/// A mail as it arrived. For an oversized mail fetched by its header alone, `bytes` is
/// the header block and `size` the full size.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub bytes: &'a [u8],
    pub size: u64,
    /// The server's receipt time (IMAP INTERNALDATE), not the sender's Date header.
    pub received_at: DateTime<Utc>,
    pub origin: Origin,
}

impl<'a> Received<'a> {
    pub fn whole(raw: &'a [u8], received_at: DateTime<Utc>, origin: Origin) -> Self {
        Received { bytes: raw, size: raw.len() as u64, received_at, origin }
    }

    fn is_whole(&self) -> bool {
        self.bytes.len() as u64 == self.size
    }
}

/// The stages, with the settings they need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    rules: Rules,
    limits: ParseLimits,
    max_message_bytes: u64,
}

impl Pipeline {
    pub fn new(store: Store, config: &Config) -> Pipeline {
        let g = &config.gateway;
        Pipeline {
            store,
            rules: Rules {
                support_address: g.support_address.clone(),
                case_tag_word: g.case_tag_word.clone(),
                reopen_window: g.reopen_window,
                free_mail_domains: g.free_mail_domains.clone(),
            },
            limits: ParseLimits { max_attachment_bytes: g.max_attachment_bytes },
            max_message_bytes: g.max_message_bytes,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn max_message_bytes(&self) -> u64 {
        self.max_message_bytes
    }

    /// Run one whole mail through; `now` is the processing time.
    pub async fn process(&self, received: &Received<'_>, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let raw = received.bytes;
        let key = parse::dedup_key(raw);
        if let Some(case) = self.store.find_duplicate(&key).await? {
            info!(case = %case, dedup_key = %key, "duplicate mail: already on the case");
            return Ok(Outcome::Duplicate { case });
        }
        if received.size > self.max_message_bytes {
            let reason = too_large(received.size, self.max_message_bytes);
            return self.quarantine(received, reason, now).await;
        }
        let mail = match parse::parse(raw, &self.limits) {
            Ok(m) => m,
            Err(e) => return self.quarantine(received, format!("unparseable: {e}"), now).await,
        };
        let outcome = self.commit_customer_mail(&mail, raw, key, received.received_at, now).await?;
        if let Outcome::Stored { case, opened } = &outcome {
            info!(case = %case, opened, from = %mail.from.email, subject = %mail.subject, "mail stored");
        }
        Ok(outcome)
    }

    async fn commit_customer_mail(
        &self,
        mail: &Inbound,
        raw: &[u8],
        key: String,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let mut refs: Vec<String> = mail.in_reply_to.clone();
        refs.extend(mail.references.iter().rev().cloned());
        let tag = decide::tag_of(mail, &self.rules);
        let facts = self.store.thread_facts(&refs, tag, &mail.from.email).await?;
        let plan = decide::inbound(mail, &facts, &self.rules, now);
        let message = new_message(mail, raw, key, received_at);
        Ok(match self.store.commit(&plan, &message, now).await? {
            Committed::Stored { case, opened } => Outcome::Stored { case, opened },
            Committed::Duplicate { case } => Outcome::Duplicate { case },
        })
    }

    /// Register a mail that cannot become a case. Quarantine is an outcome, not an
    /// error: the caller moves the mail to the quarantine folder and carries on.
    pub async fn quarantine(&self, received: &Received<'_>, reason: String, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let raw = received.bytes;
        let key = parse::dedup_key(raw);
        let head = parse::sniff_headers(raw);
        // Kept for replay of piped mail; oversized mail stays only in the IMAP folder.
        let keep_raw = received.is_whole() && received.size <= self.max_message_bytes;
        let entry = QuarantineEntry {
            id: 0,
            dedup_key: key.clone(),
            message_id: head.message_id,
            from: head.from,
            subject: head.subject,
            reason: reason.clone(),
            size: received.size,
            received_at: received.received_at,
            quarantined_at: now,
            source: received.origin.as_str().to_string(),
            status: QuarantineStatus::Held,
            released_case: None,
            raw: keep_raw.then(|| raw.to_vec()),
        };
        self.store.quarantine(&entry, now).await?;
        warn!(reason = %reason, dedup_key = %key, "mail quarantined");
        Ok(Outcome::Quarantined { reason })
    }
}

/// The quarantine reason for an oversized mail.
pub fn too_large(size: u64, limit: u64) -> String {
    format!("too large: {size} bytes (limit {limit}, gateway.max_message_bytes)")
}

fn new_message(mail: &Inbound, raw: &[u8], key: String, received_at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        direction: "in",
        dedup_key: key,
        message_id: mail.message_id.clone(),
        from: mail.from.email.clone(),
        from_name: mail.from.name.clone(),
        to: mail.to.iter().map(|a| a.email.clone()).collect(),
        cc: mail.cc.iter().map(|a| a.email.clone()).collect(),
        subject: mail.subject.clone(),
        received_at,
        text: mail.text.clone(),
        html_only: mail.html_only,
        size: raw.len() as u64,
        raw: Some(raw.to_vec()),
        attachments: mail
            .attachments
            .iter()
            .map(|a| NewAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.size as u64,
                content: a.content.clone(),
            })
            .collect(),
    }
}
