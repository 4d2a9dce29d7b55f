//! One mail through the stages: parse -> classify -> thread -> decide -> commit.
//! Settling (moving the mail on the IMAP server) is the source's job, after this returns.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::{Config, Engineer};
use crate::domain::classify::{self, MailKind};
use crate::domain::decide::{self, CaseUpdate, EventOn, Facts, Plan, PlannedEvent, Role, Rules, Settings, Target};
use crate::domain::{CaseNumber, authres, engineer, token};
use crate::mail::Inbound;
use crate::mail::parse::{self, ParseLimits};
use crate::notices::{self, Parent};
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

/// The stages, with the settings they need. Cheap to clone; a reload makes a new one.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    config: Arc<Config>,
    rules: Rules,
    limits: ParseLimits,
    /// Wakes the outbox sender when a commit queued mail.
    outbox_wake: Arc<Notify>,
}

impl Pipeline {
    pub fn new(store: Store, config: Arc<Config>) -> Pipeline {
        let g = &config.gateway;
        Pipeline {
            store,
            rules: Rules {
                support_address: g.support_address.clone(),
                case_tag_word: g.case_tag_word.clone(),
                reopen_window: g.reopen_window,
                free_mail_domains: g.free_mail_domains.clone(),
                auto_reply_limit_per_hour: g.auto_reply_limit_per_hour,
            },
            limits: ParseLimits { max_attachment_bytes: g.max_attachment_bytes },
            config,
            outbox_wake: Arc::new(Notify::new()),
        }
    }

    /// The same pipeline with a reloaded configuration (the store and the outbox
    /// wake-up stay).
    pub fn reconfigured(&self, config: Arc<Config>) -> Pipeline {
        Pipeline { outbox_wake: self.outbox_wake.clone(), ..Pipeline::new(self.store.clone(), config) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    pub fn max_message_bytes(&self) -> u64 {
        self.config.gateway.max_message_bytes
    }

    /// Run one whole mail through; `now` is the processing time.
    pub async fn process(&self, received: &Received<'_>, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let raw = received.bytes;
        let key = parse::dedup_key(raw);
        if let Some(case) = self.store.find_duplicate(&key).await? {
            info!(case = %case, dedup_key = %key, "duplicate mail: already on the case");
            return Ok(Outcome::Duplicate { case });
        }
        if received.size > self.max_message_bytes() {
            let reason = too_large(received.size, self.max_message_bytes());
            return self.quarantine(received, reason, now).await;
        }
        let mail = match parse::parse(raw, &self.limits) {
            Ok(m) => m,
            Err(e) => return self.quarantine(received, format!("unparseable: {e}"), now).await,
        };
        let own = [self.rules.support_address.clone()];
        let outcome = match classify::classify(&mail, raw, &own) {
            MailKind::Bounce { original_message_id } => {
                match self.bounce(&mail, raw, key, received, original_message_id, now).await? {
                    Some(o) => o,
                    None => return self.quarantine(received, "bounce of a mail casegate did not send".into(), now).await,
                }
            }
            kind => match self.staff_proof(&mail) {
                Some((engineer, Some(case))) => {
                    match self.engineer_mail(&mail, &engineer, case, raw, key, received.received_at, now).await? {
                        Some(o) => o,
                        None => return self.quarantine(received, format!("engineer reply for unknown case {case}"), now).await,
                    }
                }
                Some((_, None)) => self.customer_mail(&mail, &kind, raw, key, received.received_at, now, true).await?,
                None => self.customer_mail(&mail, &kind, raw, key, received.received_at, now, false).await?,
            },
        };
        if let Outcome::Stored { case, opened } = &outcome {
            info!(case = %case, opened, from = %mail.from.email, subject = %mail.subject, "mail stored");
        }
        Ok(outcome)
    }

    /// Is this an engineer's reply that proves itself? `Some((engineer, case))` when the
    /// From is a staff address and a signed reply address names the case (or the
    /// receiving MTA authenticated the sender and the mail names the case by tag);
    /// `Some((engineer, None))` for staff mail without such a case. A staff From without
    /// proof is handled as customer mail (see `customer_mail`'s forgery check).
    fn staff_proof(&self, mail: &Inbound) -> Option<(Engineer, Option<CaseNumber>)> {
        let staff = &self.config.staff;
        let engineer = staff.engineer(&mail.from.email)?.clone();
        let recipients: Vec<&str> = mail.to.iter().chain(mail.cc.iter()).map(|a| a.email.as_str()).collect();
        if let Some(key) = &staff.reply_key
            && let Some(n) = token::find_case_token(recipients, &self.rules.support_address, key.expose().as_bytes())
        {
            return Some((engineer, Some(CaseNumber(n))));
        }
        let authenticated = authres::authenticated(&mail.headers.authentication_results, &staff.trusted_authserv_ids, mail.from.domain());
        let tagged = decide::tag_of(mail, &self.rules);
        match (authenticated, tagged) {
            (true, Some(n)) => Some((engineer, Some(n))),
            (true, None) => Some((engineer, None)),
            (false, _) => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn engineer_mail(
        &self,
        mail: &Inbound,
        engineer: &Engineer,
        number: CaseNumber,
        raw: &[u8],
        key: String,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(case) = self.store.case_facts_for(number, &engineer.address).await? else { return Ok(None) };
        let facts = Facts {
            running_clocks: self.store.running_clocks(number).await?,
            last_customer_message: self.store.last_customer_message(number).await?,
            ..Facts::default()
        };
        let plan = engineer::reply(mail, engineer, &case, &facts, self.settings());
        let parent = Parent { message_id: facts.last_customer_message.and_then(|(id, _)| id), ..Parent::default() };
        let outcome = self.commit(&plan, mail, &parent, new_message(mail, raw, key, received_at), now).await?;
        info!(case = %number, engineer = %engineer.address, "engineer reply");
        Ok(Some(outcome))
    }

    fn settings(&self) -> Settings<'_> {
        Settings { rules: &self.rules, routing: &self.config.routing, sla: &self.config.sla, staff: &self.config.staff }
    }

    /// A customer's mail (or staff mail that names no case). `proven_staff` when the
    /// sender is staff whose mail the receiving MTA authenticated.
    #[allow(clippy::too_many_arguments)]
    async fn customer_mail(
        &self,
        mail: &Inbound,
        kind: &MailKind,
        raw: &[u8],
        key: String,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
        proven_staff: bool,
    ) -> Result<Outcome, StoreError> {
        let sender = mail.from.email.to_lowercase();
        let mut refs: Vec<String> = mail.in_reply_to.clone();
        refs.extend(mail.references.iter().rev().cloned());
        let tag = decide::tag_of(mail, &self.rules);
        let facts = Facts {
            thread: self.store.thread_facts(&refs, tag, &sender).await?,
            contracts: self.store.contracts_for_sender(&sender).await?,
            auto_replies_last_hour: self.store.count_auto_replies_since(&sender, now - chrono::Duration::hours(1)).await?,
            recent_refusals: self.store.count_refusals_since(&sender, now - self.config.gateway.refusal_interval).await?,
            ..Facts::default()
        };
        let recipients: Vec<String> = mail.to.iter().chain(mail.cc.iter()).map(|a| a.email.clone()).collect();
        let mut plan = decide::inbound(mail, kind, &recipients, &facts, self.settings(), received_at, now);
        if !proven_staff && self.config.staff.engineer(&sender).is_some() {
            // A staff From address without a signed reply address or a trusted MTA's
            // authentication: possibly forged. No command runs; it is filed as any mail.
            warn!(from = %sender, "staff address without proof: handled as customer mail");
            plan.events.push(PlannedEvent {
                on: EventOn::Target,
                actor: sender.clone(),
                kind: "security",
                detail: serde_json::json!({ "reason": "staff From address without a valid reply token or trusted authentication" }),
            });
        }
        self.commit(&plan, mail, &Parent::of(mail), new_message(mail, raw, key, received_at), now).await
    }

    /// A bounce joins the case of the mail it bounced (as a delivery failure); `None`
    /// when the bounced mail is not one of ours.
    async fn bounce(
        &self,
        mail: &Inbound,
        raw: &[u8],
        key: String,
        received: &Received<'_>,
        original: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(original) = original else { return Ok(None) };
        let facts = self.store.thread_facts(std::slice::from_ref(&original), None, "").await?;
        let Some(case) = facts.by_reference else { return Ok(None) };
        let mut detail = classify::delivery_report(raw);
        if let Some(d) = detail.as_object_mut() {
            d.insert("bounce_from".into(), mail.from.email.clone().into());
        }
        let plan = Plan {
            target: Target::Existing { number: case.number, status: None, details: case.details },
            update: CaseUpdate { bounced: Some((original.clone(), detail)), ..CaseUpdate::default() },
            role: Role::System,
            participants: Vec::new(),
            events: Vec::new(),
            clocks: Vec::new(),
            mails: Vec::new(),
            notification_text: String::new(),
        };
        let outcome = self.commit(&plan, mail, &Parent::of(mail), new_message(mail, raw, key, received.received_at), now).await?;
        if matches!(outcome, Outcome::Stored { .. }) {
            warn!(case = %case.number, message_id = %original, "delivery failed: bounce attached to the case");
        }
        Ok(Some(outcome))
    }

    async fn commit(
        &self,
        plan: &Plan,
        mail: &Inbound,
        parent: &Parent,
        message: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let config = &self.config;
        let render = |case, first_n| notices::compose_all(config, plan, mail, parent, case, first_n, now);
        let committed = self.store.commit(plan, &message, now, render).await?;
        if !plan.mails.is_empty() {
            self.outbox_wake.notify_one();
        }
        Ok(match committed {
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
        let keep_raw = received.is_whole() && received.size <= self.max_message_bytes();
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
