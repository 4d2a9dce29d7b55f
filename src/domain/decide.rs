//! The decision step: PURE. A parsed mail, its threading facts and `now` in; a [`Plan`]
//! (case changes and audit events) out. The store commits a plan in one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::case::{CaseNumber, Status};
use super::thread::{self, Link, Thread, ThreadFacts};
use crate::mail::Inbound;

/// The rules' inputs that come from configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub support_address: String,
    pub case_tag_word: String,
    pub reopen_window: Duration,
    /// Free-mail domains: never treated as a company's own domain.
    pub free_mail_domains: Vec<String>,
}

impl Rules {
    pub fn is_free_mail(&self, domain: &str) -> bool {
        self.free_mail_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
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
}

/// Where the mail goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    New(NewCase),
    Existing { number: CaseNumber, status: Option<Status> },
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
    pub kind: &'static str,
    pub detail: serde_json::Value,
}

/// Everything the commit step writes for one inbound mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: Target,
    pub role: Role,
    /// Addresses that now take part in the case (lower-case).
    pub participants: Vec<String>,
    pub events: Vec<PlannedEvent>,
}

/// The facts about the case a mail's subject tag names, and whether the tag exists.
pub fn tag_of(mail: &Inbound, rules: &Rules) -> Option<CaseNumber> {
    thread::find_tag(&mail.subject, &rules.case_tag_word)
}

/// Decide what an inbound customer mail does to the cases.
pub fn inbound(mail: &Inbound, facts: &ThreadFacts, rules: &Rules, now: DateTime<Utc>) -> Plan {
    let sender = mail.from.email.to_lowercase();
    let verdict = thread::resolve(facts, mail.from.domain(), |d| rules.is_free_mail(d), now, rules.reopen_window);
    let actor = sender.clone();
    let mut events = Vec::new();
    let target = match verdict {
        Thread::New { link } => {
            let related = link.map(|(n, _)| n);
            events.push(event(EventOn::Target, &actor, "case_opened", json!({ "from": sender })));
            if let Some((old, why)) = link {
                events.push(event(EventOn::Target, &actor, "linked", json!({ "case": old.to_string(), "reason": why.as_str() })));
                events.push(event(EventOn::Case(old), &actor, "linked_from_new_case", json!({ "reason": why.as_str() })));
                if why == Link::ForeignTag {
                    events.push(event(EventOn::Case(old), &actor, "security", json!({
                        "reason": "subject tag used by a sender outside the case",
                        "from": sender,
                    })));
                }
            }
            Target::New(NewCase {
                subject: non_empty_subject(&thread::clean_subject(&mail.subject, &rules.case_tag_word)),
                customer: sender.clone(),
                customer_name: mail.from.name.clone(),
                status: Status::New,
                related,
            })
        }
        Thread::Existing { number, reopen, by } => {
            let current = facts_status(facts, number);
            let next = current.map(Status::after_customer_update).filter(|s| Some(*s) != current);
            events.push(event(EventOn::Target, &actor, "customer_update", json!({ "joined_by": by.as_str() })));
            if reopen {
                events.push(event(EventOn::Target, &actor, "case_reopened", json!({})));
            }
            Target::Existing { number, status: next }
        }
    };
    Plan { target, role: Role::Customer, participants: participants(mail, rules), events }
}

fn facts_status(facts: &ThreadFacts, number: CaseNumber) -> Option<Status> {
    [&facts.by_reference, &facts.by_tag]
        .into_iter()
        .flatten()
        .find(|c| c.number == number)
        .map(|c| c.status)
}

fn event(on: EventOn, actor: &str, kind: &'static str, detail: serde_json::Value) -> PlannedEvent {
    PlannedEvent { on, actor: actor.to_string(), kind, detail }
}

fn non_empty_subject(s: &str) -> String {
    if s.is_empty() { "(no subject)".to_string() } else { s.to_string() }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::thread::CaseFacts;
    use crate::mail::{Address, MailHeaders};
    use chrono::TimeZone;

    fn rules() -> Rules {
        Rules {
            support_address: "support@vendor.example".into(),
            case_tag_word: "Case".into(),
            reopen_window: Duration::from_secs(14 * 86_400),
            free_mail_domains: vec!["gmail.com".into()],
        }
    }

    fn mail(from: &str, subject: &str) -> Inbound {
        Inbound {
            message_id: Some("m1@x".into()),
            in_reply_to: vec![],
            references: vec![],
            subject: subject.into(),
            from: Address { name: Some("Taro".into()), email: from.into() },
            reply_to: vec![],
            to: vec![Address { name: None, email: "support@vendor.example".into() }],
            cc: vec![
                Address { name: None, email: "Boss@Acme.example".into() },
                Address { name: None, email: "support@vendor.example".into() },
            ],
            date: None,
            text: "hello".into(),
            html_only: false,
            attachments: vec![],
            headers: MailHeaders::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn new_mail_opens_a_case_titled_without_prefixes() {
        let p = inbound(&mail("taro@acme.example", "Re: Server down"), &ThreadFacts::default(), &rules(), now());
        let Target::New(c) = &p.target else { panic!("{p:?}") };
        assert_eq!(c.subject, "Server down");
        assert_eq!(c.status, Status::New);
        assert_eq!(p.participants, vec!["boss@acme.example", "taro@acme.example"]);
        assert_eq!(p.events[0].kind, "case_opened");
    }

    #[test]
    fn customer_reply_moves_waiting_case_back_to_open() {
        let facts = ThreadFacts {
            by_reference: Some(CaseFacts {
                number: CaseNumber(7),
                status: Status::Waiting,
                closed_at: None,
                customer_domain: "acme.example".into(),
                sender_participates: true,
            }),
            by_tag: None,
        };
        let p = inbound(&mail("taro@acme.example", "Re: [Case #00000007] x"), &facts, &rules(), now());
        assert_eq!(p.target, Target::Existing { number: CaseNumber(7), status: Some(Status::Open) });
    }

    #[test]
    fn foreign_tag_is_logged_on_both_cases() {
        let facts = ThreadFacts {
            by_reference: None,
            by_tag: Some(CaseFacts {
                number: CaseNumber(7),
                status: Status::Open,
                closed_at: None,
                customer_domain: "acme.example".into(),
                sender_participates: false,
            }),
        };
        let p = inbound(&mail("x@other.example", "[Case #00000007] hi"), &facts, &rules(), now());
        let Target::New(c) = &p.target else { panic!() };
        assert_eq!(c.related, Some(CaseNumber(7)));
        assert_eq!(c.subject, "hi");
        assert!(p.events.iter().any(|e| e.on == EventOn::Case(CaseNumber(7)) && e.kind == "security"));
    }

    #[test]
    fn empty_subject_gets_a_placeholder_title() {
        let p = inbound(&mail("a@b.example", ""), &ThreadFacts::default(), &rules(), now());
        let Target::New(c) = &p.target else { panic!() };
        assert_eq!(c.subject, "(no subject)");
    }
}
