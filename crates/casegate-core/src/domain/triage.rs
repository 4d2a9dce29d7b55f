//! Triage of a new case, PURE: product, language, contract, scope, region, queue,
//! severity and the first-response clock, from the mail, the candidate contracts and
//! the configuration. Every answer is recorded on the case and in its event log.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::entitlement::{self, Contract, Entitlement, Verdict};
use super::event::EventKind;
use super::language::{self, Detection, Language};
use super::routing::{self, MailboxDefaults, Routing};
use super::scope::{self, Scope};
use super::sla::SlaSettings;
use super::sla::{self, SeverityFound};
use crate::mail::Inbound;

/// What triage found for a new case.
#[derive(Debug, Clone, PartialEq)]
pub struct Triage {
    pub product: String,
    pub language: Language,
    pub language_confidence: f64,
    pub entitlement: Entitlement,
    pub contract: Option<Contract>,
    pub scope: Option<Scope>,
    pub region: String,
    pub queue: Option<String>,
    pub severity: u8,
    /// The customer's time zone, for showing due times.
    pub time_zone: Tz,
    /// The first-response clock, for an entitled case with an SLA policy.
    pub first_response: Option<ClockStart>,
    /// True when the case arrived on the weekend crew's watch and it takes the severity.
    pub wakes_weekend_crew: bool,
    /// Audit events: (kind, detail).
    pub events: Vec<(EventKind, serde_json::Value)>,
}

impl Triage {
    pub fn tier(&self) -> Option<&str> {
        self.contract.as_ref().map(|c| c.tier.as_str())
    }

    /// Worked by engineers (as opposed to refused or redirected).
    pub fn is_worked(&self) -> bool {
        self.entitlement == Entitlement::Entitled
    }
}

/// An SLA clock to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStart {
    pub kind: ClockKind,
    pub started_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// Met by the first engineer reply sent to the customer.
    FirstResponse,
    /// Started by a customer update while the case waits on the engineer.
    NextResponse,
}

impl ClockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::FirstResponse => "first_response",
            ClockKind::NextResponse => "next_response",
        }
    }
}

/// Inputs that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    pub routing: &'a Routing,
    pub sla: &'a SlaSettings,
    /// Free-mail domains (lower-case): never a company's domain.
    pub free_mail_domains: &'a [String],
}

/// What a mail's own text says, whatever the store holds: product, language, scope and
/// severity. The pipeline reads it in its pure stage, on another thread than the one
/// that waits for the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub product: String,
    pub detection: Detection,
    pub scope: Option<Scope>,
    pub severity: SeverityFound,
    /// The default queue of the mailbox the mail was read from, if it has one.
    pub queue_default: Option<String>,
}

impl Reading {
    /// `recipients` are To and Cc in order.
    pub fn of(mail: &Inbound, recipients: &[String], routing: &Routing) -> Reading {
        Reading::from_mailbox(mail, recipients, routing, &MailboxDefaults::default())
    }

    /// A mail read from a mailbox with routing defaults: see [`routing::product_or`],
    /// [`language::detect_or`] and [`routing::queue_or`] for where each applies.
    pub fn from_mailbox(
        mail: &Inbound,
        recipients: &[String],
        routing: &Routing,
        defaults: &MailboxDefaults,
    ) -> Reading {
        let text = &mail.text;
        let product = defaults.product.as_deref();
        Reading {
            product: routing::product_or(recipients, &mail.subject, text, product, routing),
            detection: language::detect_or(&mail.subject, text, defaults.language),
            scope: scope::classify(&mail.subject, text, &routing.scope),
            severity: sla::from_mail(&mail.subject, text),
            queue_default: defaults.queue.clone(),
        }
    }
}

/// Triage a mail that opens a case.
pub fn triage(
    mail: &Inbound,
    reading: &Reading,
    contracts: &[Contract],
    cfg: Config<'_>,
    received_at: DateTime<Utc>,
) -> Triage {
    let product = reading.product.clone();
    let detection = reading.detection;
    let is_free_mail = |d: &str| {
        cfg.free_mail_domains
            .iter()
            .any(|f| f.eq_ignore_ascii_case(d))
    };
    // Expiry is judged on the customer's own calendar day (a Tokyo mail at 01:00 JST
    // on the day after the end date is too late, though it is still that day in UTC).
    let customer_tz = contracts
        .first()
        .and_then(|c| cfg.sla.country_time_zones.get(&c.country.to_uppercase()))
        .copied();
    let received_on = customer_tz
        .map(|tz| received_at.with_timezone(&tz).date_naive())
        .unwrap_or(received_at.date_naive());
    let verdict = entitlement::check(
        &mail.from.email,
        &product,
        contracts,
        is_free_mail,
        received_on,
    );
    let scope = reading.scope;
    let country = verdict.contract.as_ref().map(|c| c.country.clone());
    let region = routing::region_for(country.as_deref(), cfg.routing);
    let queue = routing::queue_or(
        &product,
        detection.language,
        &region,
        reading.queue_default.as_deref(),
        cfg.routing,
    );
    let mut events = vec![(
        EventKind::Triaged,
        json!({
            "product": product, "language": detection.language.as_str(), "language_confidence": detection.confidence,
            "entitlement": verdict.entitlement.as_str(), "matched_by": verdict.matched_by.map(|m| m.as_str()),
            "contract": verdict.contract.as_ref().map(|c| c.contract_id.clone()), "region": region, "queue": queue,
        }),
    )];
    if queue.is_none() {
        events.push((EventKind::RoutingDeadEnd, json!({ "product": product, "language": detection.language.as_str(), "region": region })));
    }
    let (severity, severity_event) = severity(&reading.severity, cfg.sla.default_severity);
    events.extend(severity_event);
    let entitlement = if scope.is_some() {
        Entitlement::OutOfScope
    } else {
        verdict.entitlement
    };
    if let Some(s) = scope {
        events.push((EventKind::OutOfScope, json!({ "scope": s.as_str() })));
    }
    let calendar = cfg.sla.calendar(&region, country.as_deref());
    let Verdict { contract, .. } = verdict;
    let mut t = Triage {
        product,
        language: detection.language,
        language_confidence: detection.confidence,
        entitlement,
        contract,
        scope,
        region,
        queue,
        severity,
        time_zone: calendar.tz,
        first_response: None,
        wakes_weekend_crew: false,
        events,
    };
    if t.is_worked() {
        let tier = t.tier().unwrap_or_default().to_string();
        match cfg.sla.policies.get(&tier, severity) {
            Some(policy) => {
                let crew = &cfg.sla.weekend_crew;
                let due_at = sla::due(received_at, &policy.initial, severity, &calendar, crew);
                let warn_at = sla::warn_at(
                    received_at,
                    due_at,
                    cfg.sla.warn_share,
                    &policy.initial,
                    severity,
                    &calendar,
                    crew,
                );
                t.first_response = Some(ClockStart {
                    kind: ClockKind::FirstResponse,
                    started_at: received_at,
                    due_at,
                    warn_at,
                });
                t.wakes_weekend_crew =
                    sla::wakes_weekend_crew(received_at, severity, &calendar, crew);
                if t.wakes_weekend_crew {
                    t.events
                        .push((EventKind::WeekendCrew, json!({ "severity": severity })));
                }
            }
            None => t.events.push((
                EventKind::NoSlaPolicy,
                json!({ "tier": tier, "severity": severity }),
            )),
        }
    }
    t
}

/// The stated severity, else the default; an invalid statement falls back with an event.
fn severity(found: &SeverityFound, default: u8) -> (u8, Option<(EventKind, serde_json::Value)>) {
    match found {
        SeverityFound::Stated(n) => (*n, None),
        SeverityFound::Missing => (default, None),
        SeverityFound::Invalid(raw) => (
            default,
            Some((
                EventKind::SeverityInvalid,
                json!({ "stated": raw, "used": default }),
            )),
        ),
    }
}
