//! Issue 18b: the store's side of knowledge-base articles, the same on SQLite (a real
//! file) and PostgreSQL (a fresh database): a draft from `#kb draft` committed with its
//! mail, the facts a reply to it gathers, the publication of an edited file and of
//! `#kb publish URL`, the listings and the articles the team report counts per author in a period.

mod support;

use casegate::config::Config;
use casegate::domain::CaseNumber;
use casegate::domain::decide::{Facts, KbFacts, Role, Settings};
use casegate::domain::engineer;
use casegate::domain::kb::{ArticleStatus, CaseStory};
use casegate::domain::language::Language;
use casegate::domain::outbound::TemplateKind;
use casegate::domain::staff::Engineer;
use casegate::mail::{Address, Inbound, MailHeaders};
use casegate::store::{Composed, NewMessage, Outbound, Store};
use chrono::{DateTime, Duration, TimeZone, Utc};
use support::pg::PgDatabase;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn mail(mid: &str, from: &str, text: &str, in_reply_to: Option<&str>) -> Inbound {
    Inbound {
        message_id: Some(mid.into()),
        in_reply_to: in_reply_to.map(|s| vec![s.to_string()]).unwrap_or_default(),
        references: vec![],
        subject: "Re: [Case #00000001] Jobs fail".into(),
        from: Address {
            name: None,
            email: from.into(),
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

fn message(m: &Inbound, at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        direction: "in",
        dedup_key: format!("mid:{}", m.message_id.clone().unwrap()),
        message_id: m.message_id.clone(),
        from: m.from.email.clone(),
        from_name: None,
        to: vec![],
        cc: vec![],
        subject: m.subject.clone(),
        received_at: at,
        text: m.text.clone(),
        html_only: false,
        size: 10,
        raw: Some(b"raw".to_vec()),
        attachments: vec![],
        mailbox_address: None,
    }
}

/// A case opened by a customer mail, written as a bare plan.
async fn open_case(store: &Store, cfg: &Config) -> CaseNumber {
    use casegate::domain::classify::MailKind;
    use casegate::domain::decide;
    use casegate::domain::triage::Reading;
    let rules = support::vendor_rules();
    let m = mail(
        "c1@acme.example",
        "tanaka@acme.example",
        "The job fails:\n\tat org.example.Job.run(Job.java:1)\n\nBest regards,\nTaro Tanaka\nAcme Inc.",
        None,
    );
    let m = Inbound {
        subject: "Jobs fail".into(),
        ..m
    };
    let settings = Settings {
        rules: &rules,
        routing: &cfg.routing,
        sla: &cfg.sla,
        staff: &cfg.staff,
        known_issues: &cfg.known_issues,
    };
    let reading = Reading::of(&m, &[], &cfg.routing);
    let plan = decide::inbound(
        &m,
        &MailKind::Normal,
        &reading,
        &Facts::default(),
        settings,
        t0(),
        t0(),
    );
    let mut work = store.begin_work().await.unwrap();
    let committed = work
        .write_plan(&plan, &message(&m, t0()), t0(), |_, _, _| {
            Composed::default()
        })
        .await
        .unwrap();
    work.commit().await.unwrap();
    match committed {
        casegate::store::Committed::Stored { case, .. } => case,
        other => panic!("{other:?}"),
    }
}

fn sato() -> Engineer {
    Engineer {
        address: "sato@vendor.example".into(),
        name: "Sato Hanako".into(),
        region: "APAC".into(),
        queues: vec![],
    }
}

/// An engineer's reply through facts, decision and commit, as the pipeline does it;
/// a draft mail becomes an outbound row with Message-ID `draft-ID`.
async fn engineer_reply(
    store: &Store,
    cfg: &Config,
    case: CaseNumber,
    m: &Inbound,
    edited: Option<&str>,
    at: DateTime<Utc>,
) -> casegate::domain::decide::Plan {
    let rules = support::vendor_rules();
    let settings = Settings {
        rules: &rules,
        routing: &cfg.routing,
        sla: &cfg.sla,
        staff: &cfg.staff,
        known_issues: &cfg.known_issues,
    };
    let mut work = store.begin_work().await.unwrap();
    let facts_case = work
        .case_facts(case, &sato().address)
        .await
        .unwrap()
        .unwrap();
    let (has_article, draft_ids) = work.kb_state(case).await.unwrap();
    let answers_draft = engineer::answers(m, &draft_ids);
    let story = if engineer::asks_for_draft(m) {
        let (messages, references) = work.kb_story_rows(case).await.unwrap();
        let d = &facts_case.details;
        Some(CaseStory {
            language: d.language.unwrap_or(Language::En),
            subject: d.subject.clone(),
            case_tag_word: "Case".into(),
            product: d.product.clone(),
            customer_email: d.customer.clone(),
            customer_name: d.customer_name.clone(),
            company: d.account.clone(),
            free_mail: false,
            messages,
            references,
        })
    } else {
        None
    };
    let facts = Facts {
        kb: KbFacts {
            story,
            has_article,
            answers_draft,
            edited: edited.map(str::to_string),
        },
        ..Facts::default()
    };
    let plan = engineer::reply(m, &sato(), &facts_case, &facts, settings);
    let mid = m.message_id.clone().unwrap();
    let render = |_case: CaseNumber, _n: i64, _from: Option<String>| Composed {
        mails: plan
            .mails
            .iter()
            .map(|p| Outbound {
                kind: match p.notice {
                    casegate::domain::decide::Notice::KbDraft { .. } => {
                        TemplateKind::KbDraft.into()
                    }
                    _ => TemplateKind::CaseClosed.into(),
                },
                role: Role::System,
                message_id: format!("draft-{mid}-{}", p.to),
                sender: "support@vendor.example".into(),
                recipients: vec![p.to.clone()],
                subject: "s".into(),
                text: "t".into(),
                raw: b"raw".to_vec(),
            })
            .collect(),
        failures: Vec::new(),
    };
    work.write_plan(&plan, &message(m, at), at, render)
        .await
        .unwrap();
    work.commit().await.unwrap();
    plan
}

async fn contract(store: Store) {
    let cfg = support::repo_config();
    let case = open_case(&store, &cfg).await;
    let at = t0() + Duration::hours(2);

    // `#kb publish` before any draft is refused: nothing to publish.
    let early = mail(
        "e0@vendor.example",
        "sato@vendor.example",
        "#kb publish",
        None,
    );
    let plan = engineer_reply(&store, &cfg, case, &early, None, at).await;
    assert!(plan.update.kb.is_empty(), "{plan:?}");
    assert!(store.kb_articles().await.unwrap().is_empty());

    // A draft, committed with its mail to the engineer.
    let ask = mail(
        "e1@vendor.example",
        "sato@vendor.example",
        "#kb draft\n\nThe cause is a stale lock file.",
        None,
    );
    engineer_reply(&store, &cfg, case, &ask, None, at).await;
    let list = store.kb_articles().await.unwrap();
    assert_eq!(list.len(), 1);
    let draft = &list[0];
    assert_eq!(
        (draft.case, draft.status, draft.author.as_str()),
        (case, ArticleStatus::Draft, "sato@vendor.example")
    );
    assert_eq!(draft.title, "Jobs fail");
    assert!(
        draft
            .markdown
            .contains("```text\nat org.example.Job.run(Job.java:1)\n```"),
        "{}",
        draft.markdown
    );
    assert!(
        draft.markdown.contains("The cause is a stale lock file."),
        "{}",
        draft.markdown
    );
    assert!(
        !draft.markdown.contains("Tanaka") && !draft.markdown.contains("Acme"),
        "{}",
        draft.markdown
    );
    assert_eq!(draft.published_at, None);
    assert_eq!(
        articles_written(&store, t0(), t0() + Duration::days(1)).await,
        vec![]
    );

    // The reply to the draft mail with the edited file publishes it.
    let mut work = store.begin_work().await.unwrap();
    let (has_article, ids) = work.kb_state(case).await.unwrap();
    work.abandon().await.unwrap();
    assert!(has_article);
    assert_eq!(
        ids,
        vec!["draft-e1@vendor.example-sato@vendor.example".to_string()]
    );
    let back = mail(
        "e2@vendor.example",
        "sato@vendor.example",
        "Edited.",
        Some(&ids[0]),
    );
    let plan = engineer_reply(
        &store,
        &cfg,
        case,
        &back,
        Some("# Jobs fail on a stale lock\n\nEdited text.\n"),
        at + Duration::hours(1),
    )
    .await;
    assert!(
        plan.mails.is_empty(),
        "nothing about the article goes to the customer: {plan:?}"
    );
    let a = store.kb_article(draft.id).await.unwrap().unwrap();
    assert_eq!(a.status, ArticleStatus::Published);
    assert_eq!(a.title, "Jobs fail on a stale lock");
    assert_eq!(a.markdown, "# Jobs fail on a stale lock\n\nEdited text.\n");
    assert_eq!(a.published_at, Some(at + Duration::hours(1)));
    assert_eq!(a.url, None);

    // `#kb publish URL` keeps the text, adds the URL and links it to the case.
    let url = mail(
        "e3@vendor.example",
        "sato@vendor.example",
        "#kb publish https://kb.example.com/77",
        None,
    );
    engineer_reply(&store, &cfg, case, &url, None, at + Duration::hours(2)).await;
    let a = store.kb_case_articles(case).await.unwrap().remove(0);
    assert_eq!(a.url.as_deref(), Some("https://kb.example.com/77"));
    assert_eq!(a.markdown, "# Jobs fail on a stale lock\n\nEdited text.\n");
    let links = store.show_case(case).await.unwrap().unwrap();
    let json = serde_json::to_string(&links).unwrap();
    assert!(json.contains("kb_published"), "{json}");

    // Published articles per author within the period, and none outside it.
    assert_eq!(
        articles_written(&store, t0(), t0() + Duration::days(1)).await,
        vec![("sato@vendor.example".to_string(), 1)]
    );
    assert_eq!(
        articles_written(&store, t0() + Duration::days(1), t0() + Duration::days(2)).await,
        vec![]
    );
    assert!(store.kb_article(a.id + 100).await.unwrap().is_none());
    store.close().await;
}

/// Articles published in `[from, to)` per author, as the team report counts them.
async fn articles_written(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, i64)> {
    let report = store.period_report(&[], from, to).await.unwrap();
    assert_eq!(
        report.team.articles_written,
        report
            .engineers
            .iter()
            .map(|e| e.measures.articles_written)
            .sum::<i64>()
    );
    report
        .engineers
        .into_iter()
        .filter(|e| e.measures.articles_written > 0)
        .map(|e| (e.engineer, e.measures.articles_written))
        .collect()
}

#[tokio::test]
async fn sqlite_kb_articles() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    contract(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_kb_articles() {
    let db = PgDatabase::create().await;
    contract(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}

/// The decisions about articles, pure (no store): what a reply to a draft mail, a
/// `#kb publish` without a draft and a `#kb draft` without a customer mail do.
mod decisions {
    use super::*;
    use casegate::domain::case::Status;
    use casegate::domain::decide::{KbChange, Notice};
    use casegate::domain::thread::{CaseDetails, CaseFacts};

    fn case() -> CaseFacts {
        CaseFacts {
            number: CaseNumber(9),
            status: Status::Open,
            closed_at: None,
            customer_domain: "acme.example".into(),
            sender_participates: false,
            details: CaseDetails {
                customer: "taro@acme.example".into(),
                language: Some(Language::En),
                ..CaseDetails::default()
            },
        }
    }

    fn decide(
        text: &str,
        in_reply_to: Option<&str>,
        kb: KbFacts,
    ) -> casegate::domain::decide::Plan {
        let cfg = support::repo_config();
        let rules = support::vendor_rules();
        let settings = Settings {
            rules: &rules,
            routing: &cfg.routing,
            sla: &cfg.sla,
            staff: &cfg.staff,
            known_issues: &cfg.known_issues,
        };
        let m = mail("e@vendor.example", "sato@vendor.example", text, in_reply_to);
        engineer::reply(
            &m,
            &sato(),
            &case(),
            &Facts {
                kb,
                ..Facts::default()
            },
            settings,
        )
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
    fn a_reply_to_a_draft_mail_reaches_nobody_and_publishes_the_attached_file() {
        let kb = KbFacts {
            has_article: true,
            answers_draft: true,
            edited: Some("# Better title\n\nText.\n".into()),
            ..KbFacts::default()
        };
        let plan = decide("Here is my edit, looks good to me.", Some("draft-1"), kb);
        assert!(plan.mails.is_empty(), "{:?}", plan.mails);
        assert!(!plan.update.responded, "not an answer to the customer");
        assert_eq!(
            plan.update.kb,
            vec![KbChange::Publish {
                author: "sato@vendor.example".into(),
                url: None,
                title: Some("Better title".into()),
                markdown: Some("# Better title\n\nText.\n".into()),
            }]
        );
        // Without a file and without a command it is a note on the case, nothing more.
        let kb = KbFacts {
            has_article: true,
            answers_draft: true,
            ..KbFacts::default()
        };
        let plan = decide("Will edit tomorrow.", Some("draft-1"), kb);
        assert!(
            plan.mails.is_empty() && plan.update.kb.is_empty(),
            "{plan:?}"
        );
    }

    #[test]
    fn publish_without_a_draft_and_a_draft_without_a_story_are_refused() {
        let plan = decide(
            "#kb publish https://kb.example.com/1",
            None,
            KbFacts::default(),
        );
        assert!(plan.update.kb.is_empty());
        assert!(
            errors(&plan)[0].contains("the case has no draft"),
            "{:?}",
            errors(&plan)
        );
        let plan = decide("#kb draft\n#close", None, KbFacts::default());
        assert!(plan.update.kb.is_empty());
        assert!(
            errors(&plan)[0].contains("no customer mail"),
            "{:?}",
            errors(&plan)
        );
        assert!(
            !plan.mails.iter().any(|m| m.to == "taro@acme.example"),
            "a refused reply closes nothing and tells the customer nothing"
        );
    }

    #[test]
    fn a_draft_with_close_mails_the_engineer_and_closes() {
        let story = CaseStory {
            language: Language::Ja,
            subject: "ジョブが失敗する".into(),
            case_tag_word: "Case".into(),
            product: None,
            customer_email: "taro@acme.example".into(),
            customer_name: Some("田中 太郎".into()),
            company: Some("アクメ株式会社".into()),
            free_mail: false,
            messages: vec![casegate::domain::kb::StoryMessage {
                author: casegate::domain::kb::Author::Customer,
                text: "ジョブが失敗します。\n\n田中".into(),
            }],
            references: vec![],
        };
        let kb = KbFacts {
            story: Some(story),
            ..KbFacts::default()
        };
        let plan = decide(
            "#kb draft\n#close\n#link bug:AAP-1\n\n原因は設定の誤りによるものです。",
            None,
            kb,
        );
        assert!(errors(&plan).is_empty(), "{:?}", errors(&plan));
        let draft = plan
            .mails
            .iter()
            .find(|m| matches!(m.notice, Notice::KbDraft { .. }))
            .unwrap();
        assert_eq!(
            (draft.to.as_str(), draft.language),
            ("sato@vendor.example", Language::Ja)
        );
        let Notice::KbDraft { markdown, .. } = &draft.notice else {
            unreachable!()
        };
        assert!(
            markdown.contains("## 原因\n\n原因は設定の誤りによるものです。"),
            "{markdown}"
        );
        assert!(markdown.contains("- 不具合: AAP-1"), "{markdown}");
        assert!(!markdown.contains("田中"), "{markdown}");
        assert!(
            plan.mails
                .iter()
                .any(|m| matches!(m.notice, Notice::CaseClosed { .. }))
        );
        assert!(matches!(
            plan.update.kb[0],
            KbChange::Draft {
                language: Language::Ja,
                ..
            }
        ));
    }
}
