//! The unit tests of `domain::decide`, `domain::engineer` and `domain::triage` that
//! take their SLA, routing and staff settings from the configuration loader
//! (`casegate::config`), which is not part of the core crate: they run here, against
//! the library's public API, with their assertions as they were.

use std::collections::HashMap;

/// Environment overrides for tests whose config files live in a temporary folder: the
/// repository's routing file and templates.
fn test_env() -> HashMap<String, String> {
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut env = HashMap::new();
    env.insert(
        "CASEGATE__GATEWAY__ROUTING_FILE".into(),
        format!("{repo}/config/routing.toml"),
    );
    env.insert(
        "CASEGATE__GATEWAY__TEMPLATES_DIR".into(),
        format!("{repo}/templates"),
    );
    env
}

mod decide {
    use casegate::domain::case::{CaseNumber, Status};
    use casegate::domain::classify::MailKind;
    use casegate::domain::decide::*;
    use casegate::domain::entitlement::{Contract, Entitlement};
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use std::time::Duration;

    use casegate::domain::language::Language;
    use casegate::domain::routing::Routing;
    use casegate::domain::scope::Scope;

    use casegate::domain::sla::SlaSettings;
    use casegate::domain::staff::StaffSettings;
    use casegate::domain::thread::CaseFacts;
    use casegate::domain::thread::{CaseDetails, ThreadFacts};
    use casegate::domain::triage::{ClockKind, Reading};
    use casegate::mail::Inbound;

    #[test]
    fn a_subdomain_of_a_free_mail_provider_is_free_mail_too() {
        let rules = Env::new().rules;
        assert!(rules.is_free_mail("gmail.com"));
        assert!(rules.is_free_mail("Taro.GMail.com"));
        assert!(!rules.is_free_mail("notgmail.com"));
        assert!(!rules.is_free_mail("acme.example"));
    }
    use casegate::mail::{Address, MailHeaders};
    use chrono::{NaiveDate, TimeZone};

    struct Env {
        rules: Rules,
        routing: Routing,
        sla: SlaSettings,
        staff: StaffSettings,
        known_issues: casegate::domain::known_issue::KnownIssues,
    }

    impl Env {
        fn new() -> Env {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("c.toml");
            std::fs::write(&p, "").unwrap();
            let c = casegate::config::load_with_env(&p, Some(super::test_env())).unwrap();
            Env {
                rules: Rules {
                    support_address: "support@vendor.example".into(),
                    case_tag_word: "Case".into(),
                    reopen_window: Duration::from_secs(14 * 86_400),
                    free_mail_domains: vec!["gmail.com".into()],
                    auto_reply_limit_per_hour: 5,
                },
                routing: (*c.routing).clone(),
                sla: c.sla,
                staff: StaffSettings::default(),
                known_issues: Default::default(),
            }
        }

        fn settings(&self) -> Settings<'_> {
            Settings {
                rules: &self.rules,
                routing: &self.routing,
                sla: &self.sla,
                staff: &self.staff,
                known_issues: &self.known_issues,
            }
        }
    }

    fn mail(from: &str, subject: &str) -> Inbound {
        Inbound {
            message_id: Some("m1@x".into()),
            in_reply_to: vec![],
            references: vec![],
            subject: subject.into(),
            from: Address {
                name: Some("Taro".into()),
                email: from.into(),
            },
            reply_to: vec![],
            to: vec![Address {
                name: None,
                email: "support@vendor.example".into(),
            }],
            cc: vec![
                Address {
                    name: None,
                    email: "Boss@Acme.example".into(),
                },
                Address {
                    name: None,
                    email: "support@vendor.example".into(),
                },
            ],
            date: None,
            text: "hello, the playbook fails".into(),
            html_only: false,
            attachments: vec![],
            headers: MailHeaders::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
    }

    fn contract() -> Contract {
        Contract {
            account: "Acme".into(),
            contract_id: "C-1".into(),
            tier: "standard".into(),
            products: vec!["ansible".into()],
            domains: vec!["acme.example".into()],
            contacts: vec![],
            country: "US".into(),
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        }
    }

    fn decide(env: &Env, m: &Inbound, kind: &MailKind, facts: &Facts) -> Plan {
        let reading = Reading::of(m, &["support@vendor.example".into()], &env.routing);
        inbound(m, kind, &reading, facts, env.settings(), now(), now())
    }

    fn existing(status: Status, entitlement: &str) -> ThreadFacts {
        ThreadFacts {
            by_reference: Some(CaseFacts {
                number: CaseNumber(7),
                status,
                closed_at: None,
                customer_domain: "acme.example".into(),
                sender_participates: true,
                details: CaseDetails {
                    entitlement: Entitlement::parse(entitlement),
                    tier: Some("standard".into()),
                    severity: Some(3),
                    region: Some("NA".into()),
                    country: Some("US".into()),
                    language: Some(Language::En),
                    ..CaseDetails::default()
                },
            }),
            by_tag: None,
        }
    }

    #[test]
    fn entitled_new_mail_opens_a_case_with_a_clock_and_an_acknowledgement() {
        let env = Env::new();
        let facts = Facts {
            contracts: vec![contract()],
            ..Facts::default()
        };
        let p = decide(
            &env,
            &mail("taro@acme.example", "Re: Server down"),
            &MailKind::Normal,
            &facts,
        );
        let Target::New(c) = &p.target else {
            panic!("{p:?}")
        };
        assert_eq!(c.subject, "Server down");
        assert_eq!(c.status, Status::New);
        assert_eq!(
            p.participants,
            vec!["boss@acme.example", "taro@acme.example"]
        );
        assert_eq!(p.clocks.len(), 1);
        assert_eq!(
            p.mails,
            vec![PlannedMail {
                notice: Notice::Acknowledgement,
                to: "taro@acme.example".into(),
                language: Language::En
            }]
        );
    }

    /// Issue 18a: a rating on a closed case keeps its comment; a 1 or 2 tells the
    /// queue's lead (its escalation address, else the default), a 3 does not.
    #[test]
    fn a_low_rating_with_its_comment_reaches_the_queues_lead() {
        let mut env = Env::new();
        env.staff.default_escalation = Some("leads@vendor.example".into());
        env.staff
            .escalation
            .insert("ansible-ja".into(), "ja-lead@vendor.example".into());
        let rate = |env: &Env, text: &str, queue: Option<&str>| {
            let mut thread = existing(Status::Closed, "entitled");
            if let Some(c) = thread.by_reference.as_mut() {
                c.details.queue = queue.map(str::to_string);
            }
            let facts = Facts {
                thread,
                ..Facts::default()
            };
            let mut m = mail("taro@acme.example", "Re: [Case #00000007] x");
            m.text = text.into();
            decide(env, &m, &MailKind::Normal, &facts)
        };
        let p = rate(&env, "2 - it took a week", Some("ansible-na"));
        assert_eq!(p.update.feedback, Some(2));
        assert_eq!(p.update.feedback_comment.as_deref(), Some("it took a week"));
        assert_eq!(
            p.mails,
            vec![PlannedMail {
                notice: Notice::LowRating {
                    rating: 2,
                    comment: Some("it took a week".into())
                },
                to: "leads@vendor.example".into(),
                language: Language::En
            }]
        );
        let p = rate(&env, "１", Some("ansible-ja"));
        assert_eq!(p.mails.len(), 1);
        assert_eq!(p.mails[0].to, "ja-lead@vendor.example");
        assert_eq!(p.mails[0].language, Language::Ja);
        assert!(rate(&env, "3", Some("ansible-ja")).mails.is_empty());
        env.staff.default_escalation = None;
        assert!(
            rate(&env, "1", Some("ansible-na")).mails.is_empty(),
            "no lead configured: nobody to tell"
        );
    }

    #[test]
    fn a_stranger_is_refused_once_per_interval() {
        let env = Env::new();
        let p = decide(
            &env,
            &mail("x@stranger.example", "help"),
            &MailKind::Normal,
            &Facts::default(),
        );
        let Target::New(c) = &p.target else { panic!() };
        assert_eq!(c.status, Status::Refused);
        assert!(p.clocks.is_empty());
        assert_eq!(p.mails[0].notice, Notice::Refusal(Entitlement::NoContract));
        let again = Facts {
            recent_refusals: 1,
            ..Facts::default()
        };
        let p = decide(
            &env,
            &mail("x@stranger.example", "help!!"),
            &MailKind::Normal,
            &again,
        );
        assert!(p.mails.is_empty());
        assert!(p.events.iter().any(|e| e.kind == "auto_reply_suppressed"));
    }

    #[test]
    fn automatic_mail_is_filed_but_never_answered_and_replies_are_rate_limited() {
        let env = Env::new();
        let facts = Facts {
            contracts: vec![contract()],
            ..Facts::default()
        };
        let auto = MailKind::Automatic {
            reason: "Auto-Submitted: auto-replied".into(),
        };
        let p = decide(
            &env,
            &mail("taro@acme.example", "Out of office"),
            &auto,
            &facts,
        );
        assert!(matches!(p.target, Target::New(_)));
        assert!(p.mails.is_empty());
        let busy = Facts {
            contracts: vec![contract()],
            auto_replies_last_hour: 5,
            ..Facts::default()
        };
        assert!(
            decide(
                &env,
                &mail("taro@acme.example", "x"),
                &MailKind::Normal,
                &busy
            )
            .mails
            .is_empty()
        );
    }

    #[test]
    fn out_of_scope_mail_is_redirected_and_forwarded() {
        let env = Env::new();
        let facts = Facts {
            contracts: vec![contract()],
            ..Facts::default()
        };
        let mut m = mail("taro@acme.example", "Quote");
        m.text = "Could you please send us a quote for 50 more nodes?".into();
        let p = decide(&env, &m, &MailKind::Normal, &facts);
        let notices: Vec<Notice> = p.mails.iter().map(|m| m.notice.clone()).collect();
        assert_eq!(
            notices,
            vec![
                Notice::Redirect(Scope::Sales),
                Notice::Forward(Scope::Sales)
            ]
        );
        assert_eq!(p.mails[1].to, env.routing.sales_address);
    }

    #[test]
    fn a_customer_reply_on_a_waiting_case_reopens_it_and_starts_the_next_clock() {
        let env = Env::new();
        let facts = Facts {
            thread: existing(Status::Waiting, "entitled"),
            ..Facts::default()
        };
        let p = decide(
            &env,
            &mail("taro@acme.example", "Re: [Case #00000007] x"),
            &MailKind::Normal,
            &facts,
        );
        let Target::Existing { number, status, .. } = &p.target else {
            panic!()
        };
        assert_eq!((*number, *status), (CaseNumber(7), Some(Status::Open)));
        assert_eq!(p.clocks[0].kind, ClockKind::NextResponse);
        assert!(p.mails.is_empty());
    }

    #[test]
    fn a_refused_sender_writing_again_is_refused_again_unless_recently() {
        let env = Env::new();
        let facts = Facts {
            thread: existing(Status::Refused, "expired"),
            ..Facts::default()
        };
        let p = decide(
            &env,
            &mail("taro@acme.example", "Re: x"),
            &MailKind::Normal,
            &facts,
        );
        assert_eq!(p.mails[0].notice, Notice::Refusal(Entitlement::Expired));
        assert!(p.clocks.is_empty());
    }

    #[test]
    fn foreign_tag_is_logged_on_both_cases() {
        let env = Env::new();
        let mut tagged = existing(Status::Open, "entitled");
        tagged.by_tag = tagged.by_reference.take();
        if let Some(c) = tagged.by_tag.as_mut() {
            c.sender_participates = false;
        }
        let facts = Facts {
            thread: tagged,
            ..Facts::default()
        };
        let p = decide(
            &env,
            &mail("x@other.example", "[Case #00000007] hi"),
            &MailKind::Normal,
            &facts,
        );
        let Target::New(c) = &p.target else { panic!() };
        assert_eq!(c.related, Some(CaseNumber(7)));
        assert_eq!(c.subject, "hi");
        assert!(
            p.events
                .iter()
                .any(|e| e.on == EventOn::Case(CaseNumber(7)) && e.kind == "security")
        );
    }

    #[test]
    fn a_staff_address_without_proof_is_a_security_event_and_with_proof_is_not() {
        let mut env = Env::new();
        env.staff.engineers.push(casegate::domain::staff::Engineer {
            address: "hanako@vendor.example".into(),
            name: "Hanako".into(),
            region: "APAC".into(),
            queues: vec![],
        });
        let m = mail("Hanako@vendor.example", "Server down");
        let unproven = decide(&env, &m, &MailKind::Normal, &Facts::default());
        assert!(unproven.flags_unproven_staff(), "{unproven:?}");
        let event = unproven.events.last().unwrap();
        assert_eq!(
            (event.kind.as_str(), event.actor.as_str(), event.on),
            ("security", "hanako@vendor.example", EventOn::Target)
        );
        let proven = Facts {
            staff_proven: true,
            ..Facts::default()
        };
        let plan = decide(&env, &m, &MailKind::Normal, &proven);
        assert!(!plan.flags_unproven_staff(), "{plan:?}");
        let customer = decide(
            &env,
            &mail("taro@acme.example", "Server down"),
            &MailKind::Normal,
            &Facts::default(),
        );
        assert!(!customer.flags_unproven_staff());
    }

    #[test]
    fn a_proven_bounce_records_the_report_with_its_sender_and_sends_nothing() {
        let case = existing(Status::Open, "entitled").by_reference.unwrap();
        let plan = bounce(
            case,
            "orig@vendor.example".into(),
            json!({ "status": "5.1.1" }),
            "mailer-daemon@acme.example",
        );
        assert!(matches!(
            plan.target,
            Target::Existing {
                number: CaseNumber(7),
                status: None,
                ..
            }
        ));
        assert_eq!(
            plan.update.bounced,
            Some((
                "orig@vendor.example".to_string(),
                json!({ "status": "5.1.1", "bounce_from": "mailer-daemon@acme.example" })
            ))
        );
        assert_eq!(plan.role, Role::System);
        assert!(plan.mails.is_empty() && plan.events.is_empty() && plan.clocks.is_empty());
    }
}

mod engineer {
    use casegate::domain::engineer::*;
    use chrono::Utc;

    use casegate::domain::case::Status;

    use casegate::domain::decide::{CaseUpdate, Facts, Notice, Settings, Target};

    use casegate::domain::language::Language;

    use casegate::config::Config;
    use casegate::domain::CaseNumber;
    use casegate::domain::decide::{Rules, RunningClock};
    use casegate::domain::staff::{Engineer, StaffSettings};
    use casegate::domain::thread::CaseDetails;
    use casegate::domain::thread::CaseFacts;
    use casegate::domain::triage::ClockKind;
    use casegate::mail::Inbound;
    use casegate::mail::{Address, MailHeaders};
    use chrono::TimeZone;

    fn config() -> Config {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, "").unwrap();
        casegate::config::load_with_env(&p, Some(super::test_env())).unwrap()
    }

    fn rules() -> Rules {
        Rules {
            support_address: "support@vendor.example".into(),
            case_tag_word: "Case".into(),
            reopen_window: std::time::Duration::from_secs(86_400),
            free_mail_domains: vec![],
            auto_reply_limit_per_hour: 5,
        }
    }

    fn engineer() -> Engineer {
        Engineer {
            address: "sato@vendor.example".into(),
            name: "Sato".into(),
            region: "APAC".into(),
            queues: vec![],
        }
    }

    fn case() -> CaseFacts {
        CaseFacts {
            number: CaseNumber(9),
            status: Status::Open,
            closed_at: None,
            customer_domain: "acme.example".into(),
            sender_participates: false,
            details: CaseDetails {
                customer: "taro@acme.example".into(),
                entitlement: Some(casegate::domain::entitlement::Entitlement::Entitled),
                tier: Some("premium".into()),
                severity: Some(2),
                region: Some("NA".into()),
                country: Some("US".into()),
                language: Some(Language::Ja),
                ..CaseDetails::default()
            },
        }
    }

    fn mail(text: &str) -> Inbound {
        Inbound {
            message_id: None,
            in_reply_to: vec![],
            references: vec![],
            subject: "Re: x".into(),
            from: Address {
                name: None,
                email: "sato@vendor.example".into(),
            },
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            date: None,
            text: text.into(),
            html_only: false,
            attachments: vec![],
            headers: MailHeaders::default(),
        }
    }

    #[test]
    fn lowering_severity_from_2_to_4_moves_the_due_time_and_tells_the_customer() {
        let c = config();
        let staff = StaffSettings::default();
        let rules = rules();
        let cfg = Settings {
            rules: &rules,
            routing: &c.routing,
            sla: &c.sla,
            staff: &staff,
            known_issues: &Default::default(),
        };
        // Tuesday 2026-11-24 15:00 UTC = 10:00 New York.
        let started = Utc.with_ymd_and_hms(2026, 11, 24, 15, 0, 0).unwrap();
        let facts = Facts {
            running_clocks: vec![RunningClock {
                id: 1,
                kind: ClockKind::FirstResponse,
                started_at: started,
            }],
            ..Facts::default()
        };
        let plan = reply(
            &mail("#severity 4 only a question after all\n#internal\nnote"),
            &engineer(),
            &case(),
            &facts,
            cfg,
        );
        assert_eq!(plan.update.severity, Some(4));
        let (_, due, _) = plan.update.reclocked[0];
        // Premium sev2 was 2 h around the clock (17:00 UTC); sev4 is 8 business hours,
        // 10:00-18:00 in New York with the default 09:00-18:00 hours.
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap());
        let told = plan
            .mails
            .iter()
            .find(|m| matches!(m.notice, Notice::SeverityChanged { .. }))
            .unwrap();
        assert_eq!(told.to, "taro@acme.example");
        assert_eq!(told.language, Language::Ja);
        assert!(!plan.update.responded, "an internal note answers nobody");
    }

    #[test]
    fn a_reply_is_relayed_and_moves_the_case_to_waiting() {
        let c = config();
        let staff = StaffSettings::default();
        let rules = rules();
        let cfg = Settings {
            rules: &rules,
            routing: &c.routing,
            sla: &c.sla,
            staff: &staff,
            known_issues: &Default::default(),
        };
        let plan = reply(
            &mail("Please try 2.14.1.\n\n> quoted"),
            &engineer(),
            &case(),
            &Facts::default(),
            cfg,
        );
        assert!(plan.update.responded);
        assert!(matches!(
            &plan.target,
            Target::Existing {
                status: Some(Status::Waiting),
                ..
            }
        ));
        let Notice::EngineerReply { text, .. } = &plan.mails[0].notice else {
            panic!()
        };
        assert_eq!(text, "Please try 2.14.1.");
    }

    #[test]
    fn a_bad_command_changes_nothing_and_answers_the_engineer_only() {
        let c = config();
        let staff = StaffSettings::default();
        let rules = rules();
        let cfg = Settings {
            rules: &rules,
            routing: &c.routing,
            sla: &c.sla,
            staff: &staff,
            known_issues: &Default::default(),
        };
        let plan = reply(
            &mail("#take\n#queue nowhere\nHello"),
            &engineer(),
            &case(),
            &Facts::default(),
            cfg,
        );
        assert_eq!(plan.update, CaseUpdate::default());
        assert_eq!(plan.mails.len(), 1);
        assert_eq!(plan.mails[0].to, "sato@vendor.example");
        assert!(matches!(plan.mails[0].notice, Notice::CommandError { .. }));
    }

    // --- issue 18a: known issues, with the shipped config/known_issues.toml ---

    fn shipped_known_issues() -> casegate::domain::known_issue::KnownIssues {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/known_issues.toml");
        casegate::config::known_issues::load_known_issues(std::path::Path::new(path)).unwrap()
    }

    fn known_reply(text: &str) -> casegate::domain::decide::Plan {
        let c = config();
        let known = shipped_known_issues();
        let staff = StaffSettings::default();
        let rules = rules();
        let cfg = Settings {
            rules: &rules,
            routing: &c.routing,
            sla: &c.sla,
            staff: &staff,
            known_issues: &known,
        };
        reply(&mail(text), &engineer(), &case(), &Facts::default(), cfg)
    }

    fn errors(plan: &casegate::domain::decide::Plan) -> Vec<String> {
        plan.mails
            .iter()
            .filter_map(|m| match &m.notice {
                Notice::CommandError { errors } => Some(errors.join("\n")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn known_fixed_in_asks_the_customer_to_upgrade_with_the_reply_in_the_same_mail() {
        use casegate::domain::known_issue::Resolution;
        let plan = known_reply("#known aap-1234 fixed-in 2.14.10\nThe log shows the pause.");
        assert_eq!(plan.mails.len(), 1, "{:?}", plan.mails);
        assert_eq!(plan.mails[0].to, "taro@acme.example");
        assert_eq!(plan.mails[0].language, Language::Ja);
        let Notice::Upgrade {
            issue,
            link,
            version,
            reply,
            ..
        } = &plan.mails[0].notice
        else {
            panic!("{:?}", plan.mails[0].notice)
        };
        assert_eq!(issue, "AAP-1234", "the file's spelling");
        assert_eq!(link, "https://access.example.com/issues/AAP-1234");
        assert_eq!(version, "2.14.10", "a later version than the fix is fine");
        assert_eq!(reply.as_deref(), Some("The log shows the pause."));
        assert_eq!(plan.update.resolution, Some(Resolution::Upgrade));
        assert!(plan.update.responded);
        let Target::Existing { status, .. } = &plan.target else {
            panic!()
        };
        assert_eq!(*status, Some(Status::Waiting));
    }

    #[test]
    fn known_workaround_sends_the_files_text_in_the_customers_language_and_stays_open() {
        use casegate::domain::known_issue::Resolution;
        let plan = known_reply("#known AAP-2001 workaround");
        let Notice::Workaround { text, .. } = &plan.mails[0].notice else {
            panic!("{:?}", plan.mails)
        };
        assert!(text.starts_with("証明書の更新後"), "{text}");
        assert_eq!(plan.update.resolution, Some(Resolution::Workaround));
        let Target::Existing { status, .. } = &plan.target else {
            panic!()
        };
        assert_eq!(*status, None, "open already: it stays open");
        // The engineer's own text wins over the file's.
        let plan = known_reply("#known AAP-2001 workaround\nSet the flag to false.");
        let Notice::Workaround { text, .. } = &plan.mails[0].notice else {
            panic!()
        };
        assert_eq!(text, "Set the flag to false.");
        assert_eq!(
            plan.mails.len(),
            1,
            "one mail, not a workaround and a relay"
        );
    }

    #[test]
    fn known_issue_mistakes_are_command_errors_that_change_nothing() {
        for (text, want) in [
            (
                "#known AAP-1243 fixed-in 2.14.2",
                "did you mean \"AAP-1234\"?",
            ),
            (
                "#known XYZ-9 workaround",
                "XYZ-9: not in the known issues file",
            ),
            (
                "#known AAP-1234 fixed-in 2.14.1",
                "AAP-1234 is fixed in 2.14.2, and 2.14.1 is older",
            ),
            (
                "#known AAP-2001 fixed-in 3.0",
                "lists no fix for AAP-2001 yet",
            ),
            (
                "#known AAP-1234 workaround",
                "write the workaround below the command",
            ),
            ("#bug aap-2001", "AAP-2001 is a known issue already"),
        ] {
            let plan = known_reply(text);
            let e = errors(&plan);
            assert!(e.len() == 1 && e[0].contains(want), "{text}: {e:?}");
            assert_eq!(plan.update, CaseUpdate::default(), "{text}");
            assert_eq!(plan.mails.len(), 1, "only the error mail: {text}");
        }
    }

    #[test]
    fn bug_and_resolution_record_the_path() {
        use casegate::domain::known_issue::Resolution;
        let plan = known_reply("#bug AAP-3001\n#internal\nFiled.");
        assert_eq!(plan.update.resolution, Some(Resolution::NewBug));
        assert_eq!(plan.update.links, vec![("bug".into(), "AAP-3001".into())]);
        assert!(plan.mails.is_empty(), "{:?}", plan.mails);
        let plan = known_reply("#resolution no-fault-found\n#close");
        assert_eq!(plan.update.resolution, Some(Resolution::NoFaultFound));
        assert!(plan.update.feedback_asked);
        assert!(matches!(
            plan.mails[0].notice,
            Notice::CaseClosed {
                ask_feedback: true,
                ..
            }
        ));
    }
}

mod triage {
    use casegate::domain::triage::*;
    use chrono::{DateTime, Utc};

    use casegate::domain::entitlement::{Contract, Entitlement};

    use casegate::domain::language::Language;
    use casegate::domain::routing::Routing;
    use casegate::domain::scope::Scope;
    use casegate::domain::sla::SlaSettings;

    use casegate::mail::Inbound;
    use casegate::mail::{Address, MailHeaders};
    use chrono::{NaiveDate, TimeZone};

    fn routing() -> Routing {
        casegate::config::routing::parse_routing(
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
        casegate::config::load_with_env(&p, Some(super::test_env()))
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

/// Needs `mail::compose` (lettre), which is not part of the core crate.
mod classify {
    use casegate::domain::classify::*;
    use casegate::mail::Address;
    use casegate::mail::compose::{Outgoing, compose};
    use casegate::mail::parse::{ParseLimits, parse};

    const OWN: &[&str] = &["support@vendor.example"];

    fn own() -> Vec<String> {
        OWN.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn another_gateways_auto_reply_is_never_answered() {
        let theirs = Outgoing {
            from: Address {
                name: Some("Other Helpdesk".into()),
                email: "helpdesk@other.example".into(),
            },
            to: vec![Address {
                name: None,
                email: "support@vendor.example".into(),
            }],
            cc: vec![],
            reply_to: None,
            subject: "Re: [Ticket #77] Re: [Case #00000001] Agent down".into(),
            body: "We received your request.\n".into(),
            message_id: "t77.1@other.example".into(),
            in_reply_to: Some("case-00000001.m-1@vendor.example".into()),
            references: vec![],
            auto_submitted: true,
            date: chrono::Utc::now(),
        };
        let raw = compose(&theirs).unwrap();
        let m = parse(&raw, &ParseLimits::default()).unwrap();
        assert!(matches!(
            classify(&m, &raw, &own()),
            MailKind::Automatic { .. }
        ));
        // And our own mail coming back (a forwarding loop) is caught by its From.
        let mut ours = theirs;
        ours.from.email = "support@vendor.example".into();
        ours.auto_submitted = false;
        let raw = compose(&ours).unwrap();
        let m = parse(&raw, &ParseLimits::default()).unwrap();
        assert!(
            matches!(classify(&m, &raw, &own()), MailKind::Automatic { reason } if reason.contains("loop"))
        );
    }
}
