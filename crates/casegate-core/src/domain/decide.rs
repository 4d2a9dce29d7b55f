//! The decision step: PURE. A parsed mail, the facts the store gathered and `now` in;
//! a [`Plan`] (case changes, SLA clocks, audit events, mails to send) out. The store
//! commits a plan in one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::case::{CaseNumber, Status};
use super::classify::MailKind;
use super::entitlement::{Contract, Entitlement};
use super::event::EventKind;
use super::feedback;
use super::known_issue::{KnownIssues, Resolution};
use super::language::Language;
use super::routing::Routing;
use super::scope::Scope;
use super::sla;
use super::sla::SlaSettings;
use super::staff::StaffSettings;
use super::thread::{self, CaseDetails, Link, Thread, ThreadFacts};
use super::triage::{self, ClockKind, ClockStart, Reading, Triage};
use crate::mail::{Inbound, quote};

/// The rules' inputs that come from configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub support_address: String,
    pub case_tag_word: String,
    pub reopen_window: Duration,
    /// Free-mail domains: never treated as a company's own domain.
    pub free_mail_domains: Vec<String>,
    /// Automatic mails to one sender per hour (RFC 3834 §2).
    pub auto_reply_limit_per_hour: u32,
}

impl Rules {
    /// `domain` is a listed free-mail provider or one of its subdomains (ISPs give
    /// users their own: `user.plala.or.jp` under a listed `plala.or.jp`).
    pub fn is_free_mail(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.free_mail_domains
            .iter()
            .any(|d| super::entitlement::is_within(domain, d))
    }
}

/// Configuration the decision consults.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub rules: &'a Rules,
    pub routing: &'a Routing,
    pub sla: &'a SlaSettings,
    pub staff: &'a StaffSettings,
    /// The known-issues file (`#known`, `#bug`).
    pub known_issues: &'a KnownIssues,
}

/// What the store knows that the rules need, gathered before deciding.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub thread: ThreadFacts,
    /// Contracts that could cover the sender.
    pub contracts: Vec<Contract>,
    /// Automatic mails sent to the sender in the last hour.
    pub auto_replies_last_hour: i64,
    /// Refusals sent to the sender within the refusal interval.
    pub recent_refusals: i64,
    /// Running SLA clocks of the target case (engineer replies meet or recompute them).
    pub running_clocks: Vec<RunningClock>,
    /// The target case's latest customer message: (Message-ID, row id), for threading
    /// relayed replies and for `#split`.
    pub last_customer_message: Option<(Option<String>, i64)>,
    /// The sender proved to be staff (a signed reply address or a trusted MTA's
    /// authentication). A staff address without proof is recorded as a security event.
    pub staff_proven: bool,
    /// The case's knowledge-base work, for an engineer's reply (issue 18b).
    pub kb: KbFacts,
}

// --- issue 18b: knowledge-base drafts ---

/// What the store knows about a case's knowledge-base article, for `#kb draft`,
/// `#kb publish` and a reply to a draft mail.
#[derive(Debug, Clone, Default)]
pub struct KbFacts {
    /// The case's story, gathered when the reply asks for a draft.
    pub story: Option<super::kb::CaseStory>,
    /// The case has an article (a draft, or one published before).
    pub has_article: bool,
    /// The reply answers one of our draft mails (its In-Reply-To or References).
    pub answers_draft: bool,
    /// The Markdown file attached to such a reply: the engineer's edited article.
    pub edited: Option<String>,
}

/// A change to a case's article, committed with the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbChange {
    /// A new draft by casegate, asked for by `requested_by`.
    Draft {
        language: Language,
        title: String,
        markdown: String,
        requested_by: String,
    },
    /// The case's latest article is published by `author`; an edited text (and its
    /// title, its first heading) replaces the draft's.
    Publish {
        author: String,
        url: Option<String>,
        title: Option<String>,
        markdown: Option<String>,
    },
}
// --- end issue 18b ---

/// Why a mail from a staff address without proof is filed as any mail.
pub const STAFF_WITHOUT_PROOF: &str =
    "staff From address without a valid reply token or trusted authentication";

/// A running SLA clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningClock {
    pub id: i64,
    pub kind: ClockKind,
    pub started_at: DateTime<Utc>,
}

/// Who wrote a message, from the case's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Engineer,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Engineer => "engineer",
            Role::System => "system",
        }
    }
}

/// A case to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub subject: String,
    pub customer: String,
    pub customer_name: Option<String>,
    pub status: Status,
    pub related: Option<CaseNumber>,
    pub triage: Triage,
}

/// Where the mail goes.
// One per mail and short-lived: boxing the details would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    New(NewCase),
    Existing {
        number: CaseNumber,
        status: Option<Status>,
        details: CaseDetails,
    },
}

/// Which case an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOn {
    /// The case this plan targets (new or existing).
    Target,
    Case(CaseNumber),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub on: EventOn,
    pub actor: String,
    pub kind: EventKind,
    pub detail: serde_json::Value,
}

/// Which mail to send; the shell renders it from the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Acknowledgement,
    Refusal(Entitlement),
    Redirect(Scope),
    /// The customer's mail, forwarded to Sales or Professional Services.
    Forward(Scope),
    /// An engineer's answer, relayed to the customer from the support address.
    EngineerReply {
        text: String,
        engineer: String,
    },
    /// The severity notice; with `reply`, the engineer's answer that changed it, in the
    /// same mail (one mail, not a notice and a reply).
    SeverityChanged {
        old: u8,
        new: u8,
        reason: String,
        engineer: String,
        next_due: Option<DateTime<Utc>>,
        reply: Option<String>,
    },
    /// The closure mail; `ask_feedback` the first time only (feedback is asked once).
    CaseClosed {
        engineer: String,
        ask_feedback: bool,
    },
    /// Staff: a customer rated the case 1 or 2; to the queue's lead (its escalation
    /// address, else `staff.default_escalation`).
    LowRating {
        rating: u8,
        comment: Option<String>,
    },
    // --- issue 18a: known issues ---
    /// A known issue with a fix: the customer is asked to upgrade to `version`; with
    /// `reply`, the engineer's own words in the same mail.
    Upgrade {
        issue: String,
        title: String,
        link: String,
        version: String,
        engineer: String,
        reply: Option<String>,
    },
    /// A known issue without a fix yet: the workaround; the case stays open for the fix.
    Workaround {
        issue: String,
        title: String,
        link: String,
        text: String,
        engineer: String,
    },
    /// Staff: a new case or a customer update (`event`: new_case, customer_update,
    /// reopened, transferred); its Reply-To is the case's signed reply address.
    EngineerNotification {
        event: &'static str,
    },
    /// Staff: the commands in a reply were refused; nothing went to the customer.
    CommandError {
        errors: Vec<String>,
    },
    /// Staff (issue 18b): a knowledge-base draft, attached as Markdown to edit; its
    /// Reply-To is the case's signed reply address.
    KbDraft {
        title: String,
        markdown: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMail {
    pub notice: Notice,
    pub to: String,
    pub language: Language,
}

impl Plan {
    /// True when the plan records a staff From address without proof (possibly forged).
    pub fn flags_unproven_staff(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.kind == EventKind::Security && e.detail["reason"] == STAFF_WITHOUT_PROOF)
    }
}

impl PlannedMail {
    /// Automatic replies to a customer (RFC 3834): `Auto-Submitted`, rate-limited.
    pub fn is_automatic(&self) -> bool {
        matches!(
            self.notice,
            Notice::Acknowledgement | Notice::Refusal(_) | Notice::Redirect(_)
        )
    }

    /// Mail to staff rather than to the customer.
    pub fn is_staff(&self) -> bool {
        matches!(
            self.notice,
            Notice::EngineerNotification { .. }
                | Notice::CommandError { .. }
                | Notice::Forward(_)
                | Notice::LowRating { .. }
                | Notice::KbDraft { .. }
        )
    }
}

/// Changes to an existing case beyond its status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseUpdate {
    pub owner: Option<String>,
    pub severity: Option<u8>,
    pub queue: Option<String>,
    /// An engineer answered the customer: records the first response and meets the
    /// running clocks.
    pub responded: bool,
    /// Running clocks recomputed after a severity or queue change: (id, due, warn).
    pub reclocked: Vec<(i64, DateTime<Utc>, DateTime<Utc>)>,
    /// (kind, target): `bug`/ID, `kb`/URL.
    pub links: Vec<(String, String)>,
    pub feedback: Option<u8>,
    /// The customer's words with the rating.
    pub feedback_comment: Option<String>,
    /// The closure mail asks for feedback (recorded, so that it is asked once).
    pub feedback_asked: bool,
    /// `#split`: the case's latest customer message (row id) opens a new case.
    pub split_message: Option<i64>,
    /// A bounce of our mail with this Message-ID: that mail failed (with the DSN's details).
    pub bounced: Option<(String, serde_json::Value)>,
    /// The case's resolution path, set by `#known`, `#bug` or `#resolution`.
    pub resolution: Option<Resolution>,
    /// Knowledge-base article changes (issue 18b).
    pub kb: Vec<KbChange>,
}

/// Everything the commit step writes for one inbound mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: Target,
    pub update: CaseUpdate,
    pub role: Role,
    /// Addresses that now take part in the case (lower-case).
    pub participants: Vec<String>,
    pub events: Vec<PlannedEvent>,
    pub clocks: Vec<ClockStart>,
    pub mails: Vec<PlannedMail>,
    /// The new text a staff notification quotes (quoted history stripped, shortened).
    pub notification_text: String,
}

/// The case number a mail's subject tag names, if any.
pub fn tag_of(mail: &Inbound, rules: &Rules) -> Option<CaseNumber> {
    thread::find_tag(&mail.subject, &rules.case_tag_word)
}

/// Decide what an inbound customer mail does to the cases. `reading` is what its text
/// says (for a new case's triage); `kind` says whether a person wrote it (automatic mail
/// is filed but never answered).
pub fn inbound(
    mail: &Inbound,
    kind: &MailKind,
    reading: &Reading,
    facts: &Facts,
    cfg: Settings<'_>,
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Plan {
    let rules = cfg.rules;
    let sender = mail.from.email.to_lowercase();
    let verdict = thread::resolve(
        &facts.thread,
        mail.from.domain(),
        |d| rules.is_free_mail(d),
        now,
        rules.reopen_window,
    );
    let mut plan = Plan {
        target: Target::Existing {
            number: CaseNumber(0),
            status: None,
            details: CaseDetails::default(),
        },
        update: CaseUpdate::default(),
        role: Role::Customer,
        participants: participants(mail, rules),
        events: Vec::new(),
        clocks: Vec::new(),
        mails: Vec::new(),
        notification_text: shorten(&quote::strip_reply(&mail.text), 4000),
    };
    let event = |on, kind, detail| PlannedEvent {
        on,
        actor: sender.clone(),
        kind,
        detail,
    };
    match verdict {
        Thread::New { link } => {
            let t = triage::triage(
                mail,
                reading,
                &facts.contracts,
                triage_config(cfg),
                received_at,
            );
            plan.events.push(event(
                EventOn::Target,
                EventKind::CaseOpened,
                json!({ "from": sender }),
            ));
            if let Some((old, why)) = link {
                plan.events.push(event(
                    EventOn::Target,
                    EventKind::Linked,
                    json!({ "case": old.to_string(), "reason": why.as_str() }),
                ));
                plan.events.push(event(
                    EventOn::Case(old),
                    EventKind::LinkedFromNewCase,
                    json!({ "reason": why.as_str() }),
                ));
                let foreign = match why {
                    Link::ForeignTag => Some("subject tag used by a sender outside the case"),
                    Link::ForeignReference => {
                        Some("In-Reply-To/References used by a sender outside the case")
                    }
                    Link::FollowUpOfClosed => None,
                };
                if let Some(reason) = foreign {
                    let detail = json!({ "reason": reason, "from": sender });
                    plan.events
                        .push(event(EventOn::Case(old), EventKind::Security, detail));
                }
            }
            plan.events.extend(
                t.events
                    .iter()
                    .map(|(k, d)| event(EventOn::Target, *k, d.clone())),
            );
            plan.clocks.extend(t.first_response);
            plan.mails = new_case_mails(&t, &sender, cfg.routing);
            if t.is_worked() {
                plan.mails
                    .extend(notify_staff(cfg, t.queue.as_deref(), None, "new_case"));
            }
            let status = if t.is_worked() {
                Status::New
            } else {
                Status::Refused
            };
            plan.target = Target::New(NewCase {
                subject: non_empty_subject(&thread::clean_subject(
                    &mail.subject,
                    &rules.case_tag_word,
                )),
                customer: sender.clone(),
                customer_name: mail.from.name.clone(),
                status,
                related: link.map(|(n, _)| n),
                triage: t,
            });
        }
        Thread::Existing { number, reopen, by } => {
            let case = [&facts.thread.by_reference, &facts.thread.by_tag]
                .into_iter()
                .flatten()
                .find(|c| c.number == number);
            let current = case.map(|c| c.status);
            let details = case.map(|c| c.details.clone()).unwrap_or_default();
            // Ratings count only from the customer's side (threading already requires
            // it; checked again so that no other route to a closed case can rate it).
            let customer_side = case.is_some_and(|c| {
                thread::is_party(c, mail.from.domain(), |d| rules.is_free_mail(d))
            });
            let stripped = quote::strip_reply(&mail.text);
            if current == Some(Status::Closed)
                && customer_side
                && let Some(rating) = feedback::rating(&stripped)
            {
                // A rating in answer to the closure mail: recorded, the case stays closed.
                let comment = feedback::comment(&stripped).map(|c| shorten(&c, 2000));
                plan.update.feedback = Some(rating);
                plan.update.feedback_comment = comment.clone();
                plan.events.push(event(
                    EventOn::Target,
                    EventKind::Feedback,
                    json!({ "rating": rating, "comment": comment }),
                ));
                plan.mails
                    .extend(low_rating(cfg, &details, rating, comment));
                plan.target = Target::Existing {
                    number,
                    status: None,
                    details,
                };
                return plan;
            }
            let next = current
                .map(Status::after_customer_update)
                .filter(|s| Some(*s) != current);
            plan.events.push(event(
                EventOn::Target,
                EventKind::CustomerUpdate,
                json!({ "joined_by": by.as_str() }),
            ));
            if reopen {
                plan.events
                    .push(event(EventOn::Target, EventKind::CaseReopened, json!({})));
            }
            if next == Some(Status::Open) {
                plan.clocks
                    .extend(next_response_clock(&details, cfg.sla, received_at));
            }
            if current == Some(Status::Refused) {
                plan.mails.extend(repeat_refusal(&details, &sender));
            } else {
                let what = if reopen {
                    "reopened"
                } else {
                    "customer_update"
                };
                plan.mails.extend(notify_staff(
                    cfg,
                    details.queue.as_deref(),
                    details.owner.as_deref(),
                    what,
                ));
            }
            plan.target = Target::Existing {
                number,
                status: next,
                details,
            };
        }
    }
    limit_automatic_mail(&mut plan, kind, facts, rules, &sender);
    if !facts.staff_proven && cfg.staff.engineer(&sender).is_some() {
        // A staff From address without a signed reply address or a trusted MTA's
        // authentication: possibly forged. No command runs; it is filed as any mail.
        plan.events.push(PlannedEvent {
            on: EventOn::Target,
            actor: sender.clone(),
            kind: EventKind::Security,
            detail: json!({ "reason": STAFF_WITHOUT_PROOF }),
        });
    }
    plan
}

/// The audit trail of a `#split` once the commit has opened the new case `into` from
/// case `from`: each case names the other. The number of the new case exists only in
/// the commit's transaction, so the store asks for these events there.
pub fn split_events(from: CaseNumber, into: CaseNumber) -> [PlannedEvent; 2] {
    let event = |on, kind, other: CaseNumber| PlannedEvent {
        on: EventOn::Case(on),
        actor: SYSTEM_ACTOR.to_string(),
        kind,
        detail: json!({ "case": other.to_string() }),
    };
    [
        event(into, EventKind::SplitFrom, from),
        event(from, EventKind::SplitInto, into),
    ]
}

/// The event recording that a planned mail could not be composed (a template that
/// fails to render): the mail is still filed, and the case shows why no answer went.
pub fn notice_failed(mail: &PlannedMail, error: &str) -> PlannedEvent {
    PlannedEvent {
        on: EventOn::Target,
        actor: SYSTEM_ACTOR.to_string(),
        kind: EventKind::NoticeFailed,
        detail: json!({ "to": mail.to, "notice": format!("{:?}", mail.notice), "error": error }),
    }
}

/// The actor of events casegate records by itself.
pub const SYSTEM_ACTOR: &str = "casegate";

/// The plan for a bounce that proved it is about `original`, a mail of `case`: the
/// delivery failure (the report, with who sent the bounce) is recorded on the case;
/// nothing is answered, no clock changes.
pub fn bounce(
    case: thread::CaseFacts,
    original: String,
    mut report: serde_json::Value,
    bounce_from: &str,
) -> Plan {
    if let Some(d) = report.as_object_mut() {
        d.insert("bounce_from".into(), bounce_from.into());
    }
    Plan {
        target: Target::Existing {
            number: case.number,
            status: None,
            details: case.details,
        },
        update: CaseUpdate {
            bounced: Some((original, report)),
            ..CaseUpdate::default()
        },
        role: Role::System,
        participants: Vec::new(),
        events: Vec::new(),
        clocks: Vec::new(),
        mails: Vec::new(),
        notification_text: String::new(),
    }
}

/// A rating of 1 or 2 tells the queue's lead (its escalation address, else the
/// default one), in the queue's language; nobody when neither is configured.
fn low_rating(
    cfg: Settings<'_>,
    details: &CaseDetails,
    rating: u8,
    comment: Option<String>,
) -> Option<PlannedMail> {
    if rating > 2 {
        return None;
    }
    let queue = details.queue.as_deref().unwrap_or_default();
    let to = cfg.staff.escalation_for(queue)?.to_string();
    let language = cfg
        .routing
        .queue(queue)
        .map(|q| q.language)
        .unwrap_or(Language::En);
    Some(PlannedMail {
        notice: Notice::LowRating { rating, comment },
        to,
        language,
    })
}

/// Tell the owner, else the queue's members, else the queue's own escalation address
/// (a queue nobody works), about a case event.
pub fn notify_staff(
    cfg: Settings<'_>,
    queue: Option<&str>,
    owner: Option<&str>,
    event: &'static str,
) -> Vec<PlannedMail> {
    let language = queue
        .and_then(|q| cfg.routing.queue(q))
        .map(|q| q.language)
        .unwrap_or(Language::En);
    let to: Vec<String> = match owner {
        Some(o) => vec![o.to_string()],
        None => queue
            .map(|q| {
                let members: Vec<String> = cfg
                    .staff
                    .members(q)
                    .iter()
                    .map(|e| e.address.clone())
                    .collect();
                if members.is_empty() {
                    cfg.staff.escalation.get(q).cloned().into_iter().collect()
                } else {
                    members
                }
            })
            .unwrap_or_default(),
    };
    to.into_iter()
        .map(|to| PlannedMail {
            notice: Notice::EngineerNotification { event },
            to,
            language,
        })
        .collect()
}

fn triage_config<'a>(cfg: Settings<'a>) -> triage::Config<'a> {
    triage::Config {
        routing: cfg.routing,
        sla: cfg.sla,
        free_mail_domains: &cfg.rules.free_mail_domains,
    }
}

/// An acknowledgement for a worked case, a refusal, or a redirect plus a forward.
fn new_case_mails(t: &Triage, sender: &str, routing: &Routing) -> Vec<PlannedMail> {
    let to_customer = |notice| PlannedMail {
        notice,
        to: sender.to_string(),
        language: t.language,
    };
    match (t.entitlement, t.scope) {
        (Entitlement::Entitled, _) => vec![to_customer(Notice::Acknowledgement)],
        (Entitlement::OutOfScope, Some(scope)) => {
            let desk = match scope {
                Scope::Sales => &routing.sales_address,
                Scope::ProfessionalServices => &routing.ps_address,
            };
            let forward = PlannedMail {
                notice: Notice::Forward(scope),
                to: desk.clone(),
                language: t.language,
            };
            vec![to_customer(Notice::Redirect(scope)), forward]
        }
        (refused, _) => vec![to_customer(Notice::Refusal(refused))],
    }
}

/// A refused sender writing again: refused again, subject to the refusal interval.
fn repeat_refusal(details: &CaseDetails, sender: &str) -> Option<PlannedMail> {
    let entitlement = match details.entitlement? {
        e @ (Entitlement::NoContract | Entitlement::Expired | Entitlement::NotCovered) => e,
        Entitlement::Entitled | Entitlement::OutOfScope => return None,
    };
    let language = details.language.unwrap_or(Language::En);
    Some(PlannedMail {
        notice: Notice::Refusal(entitlement),
        to: sender.to_string(),
        language,
    })
}

/// A customer update on a case that now waits on the engineer starts the next-response clock.
fn next_response_clock(
    details: &CaseDetails,
    sla_cfg: &SlaSettings,
    received_at: DateTime<Utc>,
) -> Option<ClockStart> {
    if details.entitlement != Some(Entitlement::Entitled) {
        return None;
    }
    let severity = details.severity?;
    let policy = sla_cfg.policies.get(details.tier.as_deref()?, severity)?;
    let calendar = sla_cfg.calendar(
        details.region.as_deref().unwrap_or_default(),
        details.country.as_deref(),
    );
    let crew = &sla_cfg.weekend_crew;
    let due_at = sla::due(received_at, &policy.next, severity, &calendar, crew);
    let warn_at = sla::warn_at(
        received_at,
        due_at,
        sla_cfg.warn_share,
        &policy.next,
        severity,
        &calendar,
        crew,
    );
    Some(ClockStart {
        kind: ClockKind::NextResponse,
        started_at: received_at,
        due_at,
        warn_at,
    })
}

/// RFC 3834: never answer automatic mail; answer one sender at most N times an hour;
/// refuse a refused sender at most once per refusal interval.
fn limit_automatic_mail(
    plan: &mut Plan,
    kind: &MailKind,
    facts: &Facts,
    rules: &Rules,
    sender: &str,
) {
    let mut budget = i64::from(rules.auto_reply_limit_per_hour) - facts.auto_replies_last_hour;
    let mut dropped = Vec::new();
    plan.mails.retain(|m| {
        if !m.is_automatic() {
            return true;
        }
        let why = if let MailKind::Automatic { reason } = kind {
            Some(format!("automatic mail ({reason})"))
        } else if matches!(m.notice, Notice::Refusal(_)) && facts.recent_refusals > 0 {
            Some("already refused recently".to_string())
        } else if budget <= 0 {
            Some(format!(
                "rate limit of {} automatic mails an hour",
                rules.auto_reply_limit_per_hour
            ))
        } else {
            None
        };
        match why {
            Some(w) => {
                dropped.push(w);
                false
            }
            None => {
                budget -= 1;
                true
            }
        }
    });
    for reason in dropped {
        plan.events.push(PlannedEvent {
            on: EventOn::Target,
            actor: sender.to_string(),
            kind: EventKind::AutoReplySuppressed,
            detail: json!({ "reason": reason }),
        });
    }
}

/// At most `max` characters, cut at a character boundary, marked when cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}\n[...]", &s[..i]),
        None => s.to_string(),
    }
}

fn non_empty_subject(s: &str) -> String {
    if s.is_empty() {
        "(no subject)".to_string()
    } else {
        s.to_string()
    }
}

/// The sender and everyone copied, except our own address.
fn participants(mail: &Inbound, rules: &Rules) -> Vec<String> {
    let mut out: Vec<String> = std::iter::once(&mail.from)
        .chain(mail.cc.iter())
        .map(|a| a.email.to_lowercase())
        .filter(|e| !e.is_empty() && *e != rules.support_address)
        .collect();
    out.sort();
    out.dedup();
    out
}
