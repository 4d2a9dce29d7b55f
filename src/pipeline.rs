//! One mail through the stages: parse -> classify -> thread -> decide -> commit.
//! [`Pipeline::prepare`] runs the stages that need no I/O (parse, classify, the staff
//! proof) and may run on another thread; [`Pipeline::write_plan`] gathers the facts,
//! decides and writes inside a unit of work ([`Work`]) that may hold several mails.
//! Settling (moving the mail on the IMAP server) is the source's job, after the unit of
//! work is finished.

mod admin;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::{Config, Engineer};
use crate::domain::classify::{self, MailKind};
use crate::domain::decide::KbFacts;
use crate::domain::decide::{
    self, CaseUpdate, EventOn, Facts, Plan, PlannedEvent, Role, Rules, Settings, Target,
};
use crate::domain::entitlement::Entitlement;
use crate::domain::event::EventKind;
use crate::domain::language::Language;
use crate::domain::outbound::SentCounting;
use crate::domain::routing::MailboxDefaults;
use crate::domain::thread::CaseFacts;
use crate::domain::triage::Reading;
use crate::domain::{CaseNumber, authres, engineer, kb, signed, token};
use crate::mail::Inbound;
use crate::mail::parse::{self, ParseLimits};
use crate::notices::{self, Parent};
use crate::store::{
    Committed, NewAttachment, NewMessage, QuarantineEntry, QuarantineStatus, Store, StoreError,
    Work,
};

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
    Stored {
        case: CaseNumber,
        opened: bool,
        filed: Filed,
    },
    Duplicate {
        case: CaseNumber,
    },
    Quarantined {
        reason: String,
    },
}

/// What a stored mail was (counted by the metrics): a case it opened, with the new
/// case's entitlement, language and queue, or what it added to an existing case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    /// A new case: entitled, refused (`no_contract`, `expired`, `not_covered`) or
    /// redirected (`out_of_scope`).
    Opened {
        entitlement: Entitlement,
        language: Language,
        queue: Option<String>,
    },
    /// A customer's or engineer's mail on an existing case.
    Reply,
    /// A proven bounce of our mail, attached to its case.
    Bounce,
    /// Machine-written mail (an out-of-office, an auto-reply to a return path, a
    /// customer's automatic mail): filed, never answered.
    Automatic,
}

/// A mail as it arrived. For an oversized mail fetched by its header alone, `bytes` is
/// the header block and `size` the full size.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub size: u64,
    /// The server's receipt time (IMAP INTERNALDATE), not the sender's Date header.
    pub received_at: DateTime<Utc>,
    pub origin: Origin,
    /// The envelope recipient the MTA passed along (`casegate ingest --recipient`);
    /// when `None`, the topmost `Delivered-To`/`X-Original-To` field of the mail.
    pub recipient: Option<String>,
    /// The support address of the mailbox it was read from (`[[mailboxes]]`): routing
    /// counts it as a recipient after To and Cc.
    pub mailbox_address: Option<String>,
    /// That mailbox's routing defaults (product, queue, language).
    pub mailbox_defaults: MailboxDefaults,
}

impl Received {
    pub fn whole(raw: Vec<u8>, received_at: DateTime<Utc>, origin: Origin) -> Self {
        Received {
            size: raw.len() as u64,
            bytes: raw,
            received_at,
            origin,
            recipient: None,
            mailbox_address: None,
            mailbox_defaults: MailboxDefaults::default(),
        }
    }

    /// A mail read from `mailbox` by IMAP: routing sees its support address and defaults.
    pub fn from_mailbox(
        raw: Vec<u8>,
        received_at: DateTime<Utc>,
        mailbox: &crate::config::MailboxSettings,
    ) -> Self {
        Received {
            mailbox_address: Some(mailbox.support_address.clone()),
            mailbox_defaults: mailbox.defaults.clone(),
            ..Received::whole(raw, received_at, Origin::Imap)
        }
    }

    /// The envelope recipient: the one the MTA passed, or the one it wrote on top.
    fn envelope_recipient(&self) -> Option<String> {
        self.recipient
            .clone()
            .or_else(|| classify::envelope_recipient(&self.bytes))
    }

    fn is_whole(&self) -> bool {
        self.bytes.len() as u64 == self.size
    }
}

/// A mail after the stages that need no I/O, ready for [`Pipeline::write_plan`].
#[derive(Debug)]
pub struct Prepared {
    received: Received,
    key: String,
    stage: Stage,
}

/// What the pure stages made of a mail.
#[derive(Debug)]
enum Stage {
    /// Cannot become a case (too large, unparseable), unless it is a duplicate.
    Quarantine(String),
    Bounce {
        mail: Box<Inbound>,
        original: Option<String>,
    },
    /// A staff reply proven by a signed reply address or a trusted MTA, naming a case.
    Engineer {
        mail: Box<Inbound>,
        engineer: Engineer,
        case: CaseNumber,
    },
    /// Automatic mail (an out-of-office ...) from a proven engineer about a case: noted
    /// on the case, never relayed, never meets a clock.
    EngineerAutomatic {
        mail: Box<Inbound>,
        engineer: Engineer,
        case: CaseNumber,
        reason: String,
    },
    /// Mail (not a DSN) delivered to the signed return path of our message `n` on
    /// `case`: an automatic reply (RFC 3834 §4 answers the envelope sender), noted on
    /// the case like an engineer's, never a case, never relayed, no clock.
    ReturnPathReply {
        mail: Box<Inbound>,
        case: CaseNumber,
        n: i64,
    },
    /// Customer mail, or staff mail naming no case (`proven_staff` when authenticated).
    Customer {
        mail: Box<Inbound>,
        kind: MailKind,
        reading: Reading,
        proven_staff: bool,
    },
}

pub use admin::AdminOutcome;

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
            limits: ParseLimits {
                max_attachment_bytes: g.max_attachment_bytes,
                max_header_bytes: usize::try_from(g.max_header_bytes).unwrap_or(usize::MAX),
            },
            config,
            outbox_wake: Arc::new(Notify::new()),
        }
    }

    /// The same pipeline with a reloaded configuration (the store and the outbox
    /// wake-up stay).
    pub fn reconfigured(&self, config: Arc<Config>) -> Pipeline {
        Pipeline {
            outbox_wake: self.outbox_wake.clone(),
            ..Pipeline::new(self.store.clone(), config)
        }
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

    /// Run one mail through in its own unit of work; `now` is the processing time.
    pub async fn process(
        &self,
        received: Received,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let prepared = self.prepare(received);
        let mut work = self.store.begin_work().await?;
        let outcome = self.write_plan(&mut work, prepared, now).await?;
        self.commit(work).await?;
        Ok(outcome)
    }

    /// The stages without I/O: dedup key, size limit, parse, classify, staff proof.
    /// A bug that panics here quarantines the one mail instead of losing it.
    pub fn prepare(&self, received: Received) -> Prepared {
        let key = parse::dedup_key(&received.bytes);
        let stage =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stage(&received)))
                .unwrap_or_else(|_| {
                    Stage::Quarantine("internal error while reading the mail (see the log)".into())
                });
        Prepared {
            received,
            key,
            stage,
        }
    }

    fn stage(&self, received: &Received) -> Stage {
        let raw = &received.bytes;
        if received.size > self.max_message_bytes() {
            Stage::Quarantine(too_large(received.size, self.max_message_bytes()))
        } else {
            match parse::parse(raw, &self.limits) {
                Err(e) => Stage::Quarantine(format!("unparseable: {e}")),
                Ok(mail) => {
                    // Every mailbox's address is ours: never answered, never a loop.
                    let own: Vec<String> = std::iter::once(&self.rules.support_address)
                        .chain(self.config.mailboxes.iter().map(|m| &m.support_address))
                        .cloned()
                        .collect();
                    let mail = Box::new(mail);
                    match classify::classify(&mail, raw, &own) {
                        MailKind::Bounce {
                            original_message_id,
                        } => match self.bounce_proof(received, original_message_id.as_deref()) {
                            Some(original) => Stage::Bounce {
                                mail,
                                original: Some(original),
                            },
                            None => Stage::Quarantine(unproven_bounce(original_message_id)),
                        },
                        _ if let Some((case, n)) = self.return_path_of(received) => {
                            Stage::ReturnPathReply {
                                mail,
                                case: CaseNumber(case),
                                n,
                            }
                        }
                        kind => match self.staff_proof(&mail) {
                            Some((engineer, Some(case))) => {
                                match classify::engineer_automatic_reason(&mail, raw) {
                                    Some(reason) => Stage::EngineerAutomatic {
                                        mail,
                                        engineer,
                                        case,
                                        reason,
                                    },
                                    None => Stage::Engineer {
                                        mail,
                                        engineer,
                                        case,
                                    },
                                }
                            }
                            proof => {
                                let recipients: Vec<String> = mail
                                    .to
                                    .iter()
                                    .chain(&mail.cc)
                                    .map(|a| a.email.clone())
                                    .chain(received.mailbox_address.clone())
                                    .collect();
                                let reading = Reading::from_mailbox(
                                    &mail,
                                    &recipients,
                                    &self.config.routing,
                                    &received.mailbox_defaults,
                                );
                                Stage::Customer {
                                    mail,
                                    kind,
                                    reading,
                                    proven_staff: proof.is_some(),
                                }
                            }
                        },
                    }
                }
            }
        }
    }

    /// The stages with I/O, inside `work`: dedup, facts, decide, write. Visible to
    /// others only once [`Pipeline::commit`] commits the unit of work.
    pub async fn write_plan(
        &self,
        work: &mut Work,
        prepared: Prepared,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Prepared {
            received,
            key,
            stage,
        } = prepared;
        // Customer mail (most mail) learns this with the rest of its facts.
        if !matches!(stage, Stage::Customer { .. })
            && let Some(case) = work.find_duplicate(&key).await?
        {
            return Ok(duplicate(case, &key));
        }
        // What the mail was, when it adds to a case rather than opening one.
        let added_as = match &stage {
            Stage::Bounce { .. } => Filed::Bounce,
            Stage::EngineerAutomatic { .. } | Stage::ReturnPathReply { .. } => Filed::Automatic,
            Stage::Customer {
                kind: MailKind::Automatic { .. },
                ..
            } => Filed::Automatic,
            _ => Filed::Reply,
        };
        let (mut outcome, mail) = match stage {
            Stage::Quarantine(reason) => {
                return self.quarantine(work, &received, reason, now).await;
            }
            Stage::Bounce { mail, original } => match self
                .bounce(work, &mail, key, &received, original, now)
                .await?
            {
                Some(o) => (o, mail),
                None => {
                    return self
                        .quarantine(
                            work,
                            &received,
                            "bounce of a mail casegate did not send".into(),
                            now,
                        )
                        .await;
                }
            },
            Stage::Engineer {
                mail,
                engineer,
                case,
            } => {
                match self
                    .engineer_mail(
                        work,
                        &mail,
                        &engineer,
                        case,
                        &received.bytes,
                        key,
                        received.received_at,
                        now,
                    )
                    .await?
                {
                    Some(o) => (o, mail),
                    None => {
                        return self
                            .quarantine(
                                work,
                                &received,
                                format!("engineer reply for unknown case {case}"),
                                now,
                            )
                            .await;
                    }
                }
            }
            Stage::EngineerAutomatic {
                mail,
                engineer,
                case,
                reason,
            } => {
                match self
                    .automatic_noted(
                        work,
                        &mail,
                        &engineer.address,
                        case,
                        &received,
                        key,
                        reason,
                        now,
                    )
                    .await?
                {
                    Some(o) => (o, mail),
                    None => {
                        return self
                            .quarantine(
                                work,
                                &received,
                                format!("automatic mail from an engineer for unknown case {case}"),
                                now,
                            )
                            .await;
                    }
                }
            }
            Stage::ReturnPathReply { mail, case, n } => {
                let reason = match classify::engineer_automatic_reason(&mail, &received.bytes) {
                    Some(why) => format!("sent to the return path of message {n} ({why})"),
                    None => format!("sent to the return path of message {n}"),
                };
                let actor = mail.from.email.clone();
                match self
                    .automatic_noted(work, &mail, &actor, case, &received, key, reason, now)
                    .await?
                {
                    Some(o) => (o, mail),
                    None => {
                        return self
                            .quarantine(
                                work,
                                &received,
                                format!("automatic reply to a return path of unknown case {case}"),
                                now,
                            )
                            .await;
                    }
                }
            }
            Stage::Customer {
                mail,
                kind,
                reading,
                proven_staff,
            } => {
                // The raw mail moves into the store: no copy of what may be megabytes.
                let Received {
                    bytes,
                    received_at,
                    mailbox_address,
                    ..
                } = received;
                let o = self
                    .customer_mail(
                        work,
                        &mail,
                        &kind,
                        &reading,
                        bytes,
                        key,
                        (received_at, mailbox_address),
                        now,
                        proven_staff,
                    )
                    .await?;
                (o, mail)
            }
        };
        if let Outcome::Stored {
            filed: filed @ Filed::Reply,
            ..
        } = &mut outcome
        {
            *filed = added_as;
        }
        if let Outcome::Stored { case, opened, .. } = &outcome {
            info!(case = %case, opened, from = %mail.from.email, subject = %mail.subject, "mail stored");
        }
        Ok(outcome)
    }

    /// Commit the unit of work and wake the outbox sender if it queued mail.
    pub async fn commit(&self, work: Work) -> Result<(), StoreError> {
        if work.commit().await? {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// Is this an engineer's reply that proves itself? `Some((engineer, case))` when the
    /// From is a staff address and a signed reply address names the case (or the
    /// receiving MTA authenticated the sender and the mail names the case by tag);
    /// `Some((engineer, None))` for staff mail without such a case. A staff From without
    /// proof is handled as customer mail (see `customer_mail`'s forgery check).
    fn staff_proof(&self, mail: &Inbound) -> Option<(Engineer, Option<CaseNumber>)> {
        let staff = &self.config.staff;
        let engineer = staff.engineer(&mail.from.email)?.clone();
        let recipients: Vec<&str> = mail
            .to
            .iter()
            .chain(mail.cc.iter())
            .map(|a| a.email.as_str())
            .collect();
        if let Some(key) = &staff.reply_key
            && let Some(n) = token::find_case_token(
                recipients,
                &self.rules.support_address,
                key.expose().as_bytes(),
            )
        {
            return Some((engineer, Some(CaseNumber(n))));
        }
        // Only the topmost fields can be our MTA's own (RFC 8601 §5): a sender can put
        // any number of forged ones below them.
        let results = &mail.headers.authentication_results;
        let topmost = &results[..results.len().min(staff.trusted_authres_topmost)];
        let authenticated =
            authres::authenticated(topmost, &staff.trusted_authserv_ids, mail.from.domain());
        let tagged = decide::tag_of(mail, &self.rules);
        match (authenticated, tagged) {
            (true, Some(n)) => Some((engineer, Some(n))),
            (true, None) => Some((engineer, None)),
            (false, _) => None,
        }
    }

    /// The original Message-ID a bounce proves it is about: its envelope recipient
    /// (not To or Cc, which the sender writes) is the signed return path of that very
    /// mail (`signed::bounce_address`), and the Message-ID it quotes, if any, is that
    /// mail's.
    fn bounce_proof(&self, received: &Received, quoted: Option<&str>) -> Option<String> {
        let key = self.store.site_key();
        let (case, n) = signed::verify_bounce(
            key,
            &received.envelope_recipient()?,
            &self.rules.support_address,
        )?;
        let id = signed::message_id(key, case, n, notices::support_domain(&self.config.gateway));
        match quoted {
            Some(q) if !q.trim().trim_matches(['<', '>']).eq_ignore_ascii_case(&id) => None,
            _ => Some(id),
        }
    }

    /// `(case, n)` when the mail was delivered to the signed return path of our `n`th
    /// message on `case` (its envelope recipient, as for bounces).
    fn return_path_of(&self, received: &Received) -> Option<(i64, i64)> {
        let rcpt = received.envelope_recipient()?;
        signed::verify_bounce(self.store.site_key(), &rcpt, &self.rules.support_address)
    }

    /// Automatic mail about a case (an engineer's out-of-office, or a reply to one of our
    /// return paths): filed on the case with a note,
    /// nothing relayed, no clock touched, no status change.
    #[allow(clippy::too_many_arguments)]
    async fn automatic_noted(
        &self,
        work: &mut Work,
        mail: &Inbound,
        actor: &str,
        number: CaseNumber,
        received: &Received,
        key: String,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(case) = work.case_facts(number, actor).await? else {
            return Ok(None);
        };
        let plan = Plan {
            target: Target::Existing {
                number,
                status: None,
                details: case.details,
            },
            update: CaseUpdate::default(),
            role: Role::System,
            participants: Vec::new(),
            events: vec![PlannedEvent {
                on: EventOn::Target,
                actor: actor.to_string(),
                kind: EventKind::AutomaticReplyNoted,
                detail: serde_json::json!({ "reason": reason, "relayed": false }),
            }],
            clocks: Vec::new(),
            mails: Vec::new(),
            notification_text: String::new(),
        };
        let message = new_message(mail, received.bytes.clone(), key, received.received_at);
        let outcome = self
            .write(work, &plan, mail, &Parent::of(mail), message, now)
            .await?;
        info!(case = %number, from = %actor, reason = %reason, "automatic mail: noted on the case, not relayed");
        Ok(Some(outcome))
    }

    #[allow(clippy::too_many_arguments)]
    async fn engineer_mail(
        &self,
        work: &mut Work,
        mail: &Inbound,
        engineer: &Engineer,
        number: CaseNumber,
        raw: &[u8],
        key: String,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(case) = work.case_facts(number, &engineer.address).await? else {
            return Ok(None);
        };
        let facts = Facts {
            running_clocks: work.running_clocks(number).await?,
            last_customer_message: work.last_customer_message(number).await?,
            kb: self.kb_facts(work, mail, raw, &case).await?,
            ..Facts::default()
        };
        let plan = engineer::reply(mail, engineer, &case, &facts, self.settings());
        let parent = Parent {
            message_id: facts.last_customer_message.and_then(|(id, _)| id),
            ..Parent::default()
        };
        let outcome = self
            .write(
                work,
                &plan,
                mail,
                &parent,
                new_message(mail, raw.to_vec(), key, received_at),
                now,
            )
            .await?;
        info!(case = %number, engineer = %engineer.address, "engineer reply");
        Ok(Some(outcome))
    }

    // --- issue 18b: knowledge-base drafts ---

    /// What an engineer's reply needs to know about the case's article: the case's story
    /// when it asks for a draft, and the edited file when it answers a draft mail.
    async fn kb_facts(
        &self,
        work: &mut Work,
        mail: &Inbound,
        raw: &[u8],
        case: &CaseFacts,
    ) -> Result<KbFacts, StoreError> {
        let (has_article, draft_ids) = work.kb_state(case.number).await?;
        let answers_draft = engineer::answers(mail, &draft_ids);
        let edited = answers_draft.then(|| edited_article(mail, raw)).flatten();
        let story = if engineer::asks_for_draft(mail) {
            let (messages, references) = work.kb_story_rows(case.number).await?;
            let d = &case.details;
            Some(kb::CaseStory {
                language: d.language.unwrap_or(Language::En),
                subject: d.subject.clone(),
                case_tag_word: self.rules.case_tag_word.clone(),
                product: d.product.clone(),
                customer_email: d.customer.clone(),
                customer_name: d.customer_name.clone(),
                company: d.account.clone(),
                free_mail: self.rules.is_free_mail(&case.customer_domain),
                messages,
                references,
            })
        } else {
            None
        };
        Ok(KbFacts {
            story,
            has_article,
            answers_draft,
            edited,
        })
    }

    // --- end issue 18b ---

    fn settings(&self) -> Settings<'_> {
        Settings {
            rules: &self.rules,
            routing: &self.config.routing,
            sla: &self.config.sla,
            staff: &self.config.staff,
            known_issues: &self.config.known_issues,
        }
    }

    /// A customer's mail (or staff mail that names no case). `proven_staff` when the
    /// sender is staff whose mail the receiving MTA authenticated.
    #[allow(clippy::too_many_arguments)]
    async fn customer_mail(
        &self,
        work: &mut Work,
        mail: &Inbound,
        kind: &MailKind,
        reading: &Reading,
        raw: Vec<u8>,
        key: String,
        (received_at, mailbox_address): (DateTime<Utc>, Option<String>),
        now: DateTime<Utc>,
        proven_staff: bool,
    ) -> Result<Outcome, StoreError> {
        let sender = mail.from.email.to_lowercase();
        let mut refs: Vec<String> = mail.in_reply_to.clone();
        refs.extend(mail.references.iter().rev().cloned());
        let tag = decide::tag_of(mail, &self.rules);
        let known = work
            .sender_facts(
                &key,
                &sender,
                &SentCounting::since(
                    now - chrono::Duration::hours(1),
                    now - self.config.gateway.refusal_interval,
                ),
            )
            .await?;
        if let Some(case) = known.duplicate {
            return Ok(duplicate(case, &key));
        }
        let facts = Facts {
            thread: work.thread_facts(&refs, tag, &sender).await?,
            contracts: known.contracts,
            auto_replies_last_hour: known.sent.auto_replies,
            recent_refusals: known.sent.refusals,
            staff_proven: proven_staff,
            ..Facts::default()
        };
        let plan = decide::inbound(
            mail,
            kind,
            reading,
            &facts,
            self.settings(),
            received_at,
            now,
        );
        if plan.flags_unproven_staff() {
            warn!(from = %sender, "staff address without proof: handled as customer mail");
        }
        self.write(
            work,
            &plan,
            mail,
            &Parent::of(mail),
            NewMessage {
                mailbox_address,
                ..new_message(mail, raw, key, received_at)
            },
            now,
        )
        .await
    }

    /// A bounce joins the case of the mail it bounced (as a delivery failure); `None`
    /// when the bounced mail is not one of ours.
    #[allow(clippy::too_many_arguments)]
    async fn bounce(
        &self,
        work: &mut Work,
        mail: &Inbound,
        key: String,
        received: &Received,
        original: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(original) = original else {
            return Ok(None);
        };
        let facts = work
            .thread_facts(std::slice::from_ref(&original), None, "")
            .await?;
        let Some(case) = facts.by_reference else {
            return Ok(None);
        };
        let number = case.number;
        let plan = decide::bounce(
            case,
            original.clone(),
            classify::delivery_report(&received.bytes),
            &mail.from.email,
        );
        let outcome = self
            .write(
                work,
                &plan,
                mail,
                &Parent::of(mail),
                new_message(mail, received.bytes.clone(), key, received.received_at),
                now,
            )
            .await?;
        if matches!(outcome, Outcome::Stored { .. }) {
            warn!(case = %number, message_id = %original, "delivery failed: bounce attached to the case");
        }
        Ok(Some(outcome))
    }

    async fn write(
        &self,
        work: &mut Work,
        plan: &Plan,
        mail: &Inbound,
        parent: &Parent,
        message: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let config = &self.config;
        let raw = message.raw.as_deref().unwrap_or_default();
        let key = self.store.site_key().to_vec();
        let render = |case, first_n, address: Option<String>| {
            let from = address.as_deref();
            notices::compose_all(
                config, &key, plan, mail, raw, parent, case, first_n, from, now,
            )
        };
        let filed = match &plan.target {
            Target::New(new) => Filed::Opened {
                entitlement: new.triage.entitlement,
                language: new.triage.language,
                queue: new.triage.queue.clone(),
            },
            Target::Existing { .. } => Filed::Reply,
        };
        Ok(match work.write_plan(plan, &message, now, render).await? {
            Committed::Stored { case, opened } => Outcome::Stored {
                case,
                opened,
                filed,
            },
            Committed::Duplicate { case } => Outcome::Duplicate { case },
        })
    }

    /// Register a mail that cannot become a case. Quarantine is an outcome, not an
    /// error: the caller moves the mail to the quarantine folder and carries on.
    pub async fn quarantine(
        &self,
        work: &mut Work,
        received: &Received,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let raw = &received.bytes;
        let key = parse::dedup_key(raw);
        let head = parse::sniff_headers(raw);
        // A whole mail is kept for the replay of piped mail, unless it is oversized. Of an
        // oversized IMAP mail only its header block was read: kept for `quarantine
        // show` (never replayed from here: the mail itself stays in the IMAP folder).
        let keep_raw = !received.is_whole() || received.size <= self.max_message_bytes();
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
        work.quarantine(&entry, now).await?;
        warn!(reason = %reason, dedup_key = %key, "mail quarantined");
        Ok(Outcome::Quarantined { reason })
    }
}

/// The Markdown file attached to a reply (issue 18b), as text.
fn edited_article(mail: &Inbound, raw: &[u8]) -> Option<String> {
    mail.attachments
        .iter()
        .find(|a| a.kept && kb::is_article_file(a.filename.as_deref(), &a.content_type))
        .and_then(|a| parse::attachment_content(raw, a.span))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
}

fn duplicate(case: CaseNumber, key: &str) -> Outcome {
    info!(case = %case, dedup_key = %key, "duplicate mail: already on the case");
    Outcome::Duplicate { case }
}

/// The quarantine reason for a bounce that does not prove itself.
fn unproven_bounce(names: Option<String>) -> String {
    let names = names
        .map(|id| format!(" (it names <{id}>)"))
        .unwrap_or_default();
    format!(
        "bounce of a mail casegate did not send, or not sent to the signed return path of one{names}"
    )
}

/// The quarantine reason for an oversized mail.
pub fn too_large(size: u64, limit: u64) -> String {
    format!("too large: {size} bytes (limit {limit}, gateway.max_message_bytes)")
}

fn new_message(
    mail: &Inbound,
    raw: Vec<u8>,
    key: String,
    received_at: DateTime<Utc>,
) -> NewMessage {
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
        raw: Some(raw),
        mailbox_address: None,
        attachments: mail
            .attachments
            .iter()
            .map(|a| NewAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.size as u64,
                raw_span: a.kept.then_some((a.span.0 as u64, a.span.1 as u64)),
            })
            .collect(),
    }
}
