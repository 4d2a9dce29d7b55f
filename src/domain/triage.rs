//! Triage of a new case, PURE: product, language, contract, scope, region, queue,
//! severity and the first-response clock, from the mail, the candidate contracts and
//! the configuration. Every answer is recorded on the case and in its event log.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::entitlement::{self, Contract, Entitlement, Verdict};
use super::event::EventKind;
use super::language::{self, Detection, Language};
use super::routing::{self, Routing};
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
}

impl Reading {
    /// `recipients` are To and Cc in order.
    pub fn of(mail: &Inbound, recipients: &[String], routing: &Routing) -> Reading {
        let text = &mail.text;
        Reading {
            product: routing::product_for(recipients, &mail.subject, text, routing),
            detection: language::detect(&mail.subject, text),
            scope: scope::classify(&mail.subject, text, &routing.scope),
            severity: sla::from_mail(&mail.subject, text),
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
    let queue = routing::queue_for(&product, detection.language, &region, cfg.routing);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{Address, MailHeaders};
    use chrono::{NaiveDate, TimeZone};

    fn routing() -> Routing {
        crate::config::routing::parse_routing(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.toml"))
                .unwrap(),
            "routing.toml",
        )
        .unwrap()
    }

    fn sla() -> SlaSettings {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, "").unwrap();
        crate::config::load_with_env(&p, Some(crate::config::test_env()))
            .unwrap()
            .sla
    }

    fn contract(domain: &str, country: &str, tier: &str, end: NaiveDate) -> Contract {
        Contract {
            account: "Acme".into(),
            contract_id: format!("C-{domain}"),
            tier: tier.into(),
            products: vec!["ansible".into()],
            domains: vec![domain.into()],
            contacts: vec![],
            country: country.into(),
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            end,
        }
    }

    fn mail(from: &str, subject: &str, text: &str) -> Inbound {
        Inbound {
            message_id: None,
            in_reply_to: vec![],
            references: vec![],
            subject: subject.into(),
            from: Address {
                name: None,
                email: from.into(),
            },
            reply_to: vec![],
            to: vec![Address {
                name: None,
                email: "support+ansible@example.com".into(),
            }],
            cc: vec![],
            date: None,
            text: text.into(),
            html_only: false,
            attachments: vec![],
            headers: MailHeaders::default(),
        }
    }

    fn run(m: &Inbound, contracts: &[Contract], at: DateTime<Utc>) -> Triage {
        let routing = routing();
        let sla = sla();
        let free = vec!["gmail.com".to_string()];
        let cfg = Config {
            routing: &routing,
            sla: &sla,
            free_mail_domains: &free,
        };
        triage(
            m,
            &Reading::of(m, &["support+ansible@example.com".to_string()], &routing),
            contracts,
            cfg,
            at,
        )
    }

    fn end() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()
    }

    #[test]
    fn japanese_premium_customer_gets_the_japanese_queue_and_a_clock() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap(); // Tuesday 10:00 JST
        let m = mail(
            "yamada@acme.co.jp",
            "ジョブが失敗します",
            "お世話になっております。ジョブが失敗します。\nSeverity: 2\n",
        );
        let t = run(&m, &[contract("acme.co.jp", "JP", "premium", end())], at);
        assert_eq!(t.language, Language::Ja);
        assert_eq!(t.entitlement, Entitlement::Entitled);
        assert_eq!(t.severity, 2);
        assert_eq!(t.time_zone, chrono_tz::Asia::Tokyo);
        assert!(t.queue.as_deref().unwrap().contains("ja"), "{:?}", t.queue);
        let clock = t.first_response.unwrap();
        assert_eq!(clock.due_at, at + chrono::Duration::hours(2));
    }

    #[test]
    fn expiry_is_judged_on_the_customers_calendar_day() {
        let last_day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let c = contract("acme.co.jp", "JP", "standard", last_day);
        // 2026-11-30 16:00 UTC is already 2026-12-01 01:00 in Tokyo: the day after.
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap();
        assert_eq!(
            run(
                &mail("a@acme.co.jp", "help", "it fails"),
                std::slice::from_ref(&c),
                at
            )
            .entitlement,
            Entitlement::Expired
        );
        let earlier = Utc.with_ymd_and_hms(2026, 11, 30, 14, 0, 0).unwrap();
        assert_eq!(
            run(&mail("a@acme.co.jp", "help", "it fails"), &[c], earlier).entitlement,
            Entitlement::Entitled
        );
    }

    #[test]
    fn strangers_and_expired_contracts_are_not_worked_and_run_no_clock() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap();
        let t = run(&mail("x@nowhere.example", "help", "it fails"), &[], at);
        assert_eq!(t.entitlement, Entitlement::NoContract);
        assert!(t.first_response.is_none());
        let old = contract(
            "acme.co.jp",
            "JP",
            "standard",
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        );
        let t = run(&mail("a@acme.co.jp", "help", "it fails"), &[old], at);
        assert_eq!(t.entitlement, Entitlement::Expired);
    }

    #[test]
    fn renewal_questions_are_out_of_scope_and_invalid_severity_falls_back() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap();
        let m = mail(
            "a@acme.co.jp",
            "Renewal",
            "We would like to renew our subscription for next year.\nSeverity: 9",
        );
        let t = run(&m, &[contract("acme.co.jp", "JP", "standard", end())], at);
        assert_eq!(t.entitlement, Entitlement::OutOfScope);
        assert_eq!(t.scope, Some(Scope::Sales));
        assert_eq!(t.severity, 3);
        assert!(t.events.iter().any(|(k, _)| *k == "severity_invalid"));
        assert!(t.first_response.is_none());
    }

    #[test]
    fn premium_sev1_on_saturday_is_due_in_an_hour_and_wakes_the_crew() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap(); // Saturday 12:00 JST
        let m = mail(
            "yamada@acme.co.jp",
            "[SEV 1] 本番停止",
            "本番環境が停止しています。至急ご対応をお願いします。",
        );
        let t = run(&m, &[contract("acme.co.jp", "JP", "premium", end())], at);
        assert_eq!(t.severity, 1);
        assert_eq!(
            t.first_response.unwrap().due_at,
            at + chrono::Duration::hours(1)
        );
        assert!(t.wakes_weekend_crew);
    }
}
