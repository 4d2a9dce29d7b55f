//! The store's contract, run the same way on SQLite (a real file) and on PostgreSQL
//! (a fresh database per test on 127.0.0.1:5432, dropped afterwards).

mod support;

use std::time::Duration;

use casegate::domain::classify::MailKind;
use casegate::domain::decide::{self, Facts, Role, Settings};
use casegate::domain::entitlement::Contract;
use casegate::domain::outbound::{SentCounting, TemplateKind};
use casegate::domain::triage::Reading;
use casegate::domain::{CaseNumber, Status};
use casegate::mail::{Address, Inbound, MailHeaders};
use casegate::store::{
    AttachmentSource, Checkpoint, ClockAction, Committed, NewAttachment, NewMessage, Outbound,
    QuarantineEntry, QuarantineStatus, SenderFacts, SentCounts, Store, Work,
};
use chrono::{DateTime, TimeZone, Utc};
use support::pg::PgDatabase;

fn acme_contract() -> Contract {
    Contract {
        account: "Acme".into(),
        contract_id: "C-ACME".into(),
        tier: "premium".into(),
        products: vec!["ansible".into()],
        domains: vec!["acme.example".into()],
        contacts: vec!["boss@partner.example".into()],
        country: "JP".into(),
        start: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn mail(mid: &str, from: &str, subject: &str) -> Inbound {
    Inbound {
        message_id: Some(mid.into()),
        in_reply_to: vec![],
        references: vec![],
        subject: subject.into(),
        from: Address {
            name: Some("Customer".into()),
            email: from.into(),
        },
        reply_to: vec![],
        to: vec![Address {
            name: None,
            email: "support@vendor.example".into(),
        }],
        cc: vec![],
        date: None,
        text: "本文です".into(),
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
        from_name: m.from.name.clone(),
        to: m.to.iter().map(|a| a.email.clone()).collect(),
        cc: vec![],
        subject: m.subject.clone(),
        received_at: at,
        text: m.text.clone(),
        html_only: false,
        size: 10,
        raw: Some(b"raw bytes".to_vec()),
        mailbox_address: None,
        attachments: vec![NewAttachment {
            filename: Some("ログ.txt".into()),
            content_type: "text/plain".into(),
            size: 3,
            raw_span: Some((0, 9)),
        }],
    }
}

/// The composer `write_plan` calls: one `kind` mail from `role` per planned mail, with
/// subject `[Case #N] WORD` and text `WORD`.
fn composed<'a>(
    plan: &'a decide::Plan,
    kind: TemplateKind,
    role: Role,
    word: &'a str,
) -> impl FnOnce(CaseNumber, i64, Option<String>) -> casegate::store::Composed + 'a {
    move |case, n, _from| casegate::store::Composed {
        mails: plan
            .mails
            .iter()
            .enumerate()
            .map(|(i, p)| Outbound {
                kind: kind.into(),
                role,
                message_id: format!("case-{case}.m-{}@vendor.example", n + i as i64),
                sender: "support@vendor.example".into(),
                recipients: vec![p.to.clone()],
                subject: format!("[Case #{case}] {word}"),
                text: word.into(),
                raw: b"raw".to_vec(),
            })
            .collect(),
        failures: Vec::new(),
    }
}

/// File one mail in its own unit of work.
async fn file(store: &Store, m: &Inbound, at: DateTime<Utc>) -> Committed {
    let mut work = store.begin_work().await.unwrap();
    let committed = file_in(&mut work, m, at).await;
    work.commit().await.unwrap();
    committed
}

/// File one mail the way the pipeline does: facts, decision, commit; each planned mail
/// becomes a (fake-composed) outbound row.
async fn file_in(work: &mut Work, m: &Inbound, at: DateTime<Utc>) -> Committed {
    file_message(work, m, &message(m, at), at).await
}

/// A mail with its raw bytes and one attachment spanning all of them.
fn message_with_raw(m: &Inbound, raw: &[u8]) -> NewMessage {
    let mut msg = message(m, t0());
    msg.size = raw.len() as u64;
    msg.raw = Some(raw.to_vec());
    msg.attachments[0].raw_span = Some((0, raw.len() as u64));
    msg
}

/// A raw mail of 100 KiB: above the size from which SQLite keeps it as a file.
fn large_raw() -> Vec<u8> {
    (0..100 * 1024).map(|i| b"abcdefghij\r\n"[i % 12]).collect()
}

async fn file_message(
    work: &mut Work,
    m: &Inbound,
    msg: &NewMessage,
    at: DateTime<Utc>,
) -> Committed {
    let cfg = support::repo_config();
    let refs: Vec<String> = m
        .in_reply_to
        .iter()
        .chain(m.references.iter().rev())
        .cloned()
        .collect();
    let facts = Facts {
        thread: work
            .thread_facts(
                &refs,
                decide::tag_of(m, &support::vendor_rules()),
                &m.from.email,
            )
            .await
            .unwrap(),
        contracts: work
            .sender_facts("", &m.from.email, &SentCounting::since(at, at))
            .await
            .unwrap()
            .contracts,
        ..Facts::default()
    };
    let rules = support::vendor_rules();
    let settings = Settings {
        rules: &rules,
        routing: &cfg.routing,
        sla: &cfg.sla,
        staff: &cfg.staff,
        known_issues: &cfg.known_issues,
    };
    let reading = Reading::of(m, &[], &cfg.routing);
    let plan = decide::inbound(m, &MailKind::Normal, &reading, &facts, settings, at, at);
    let render = composed(&plan, TemplateKind::Acknowledgement, Role::System, "ack");
    work.write_plan(&plan, msg, at, render).await.unwrap()
}

/// What the store knows of a mail (by dedup key) and its sender.
async fn sender_facts(store: &Store, key: &str, sender: &str) -> SenderFacts {
    let mut work = store.begin_work().await.unwrap();
    let facts = work
        .sender_facts(key, sender, &SentCounting::since(t0(), t0()))
        .await
        .unwrap();
    work.abandon().await.unwrap();
    facts
}

async fn contracts_for(store: &Store, sender: &str) -> usize {
    sender_facts(store, "", sender).await.contracts.len()
}

async fn contract(store: Store) {
    // Contracts: import is idempotent; lookup by contact and by (parent) domain.
    let stats = store
        .import_contracts(&[acme_contract()], t0())
        .await
        .unwrap();
    assert_eq!(stats.inserted, 1);
    let again = store
        .import_contracts(&[acme_contract()], t0())
        .await
        .unwrap();
    assert_eq!((again.inserted, again.unchanged), (0, 1));
    assert_eq!(contracts_for(&store, "ops@tokyo.acme.example").await, 1);
    assert_eq!(contracts_for(&store, "BOSS@partner.example").await, 1);
    assert_eq!(contracts_for(&store, "x@example").await, 0);
    assert_eq!(store.list_contracts().await.unwrap(), vec![acme_contract()]);

    // A new mail opens case 1, with its message, attachment, triage, SLA clock, the
    // acknowledgement queued and kept on the case, and its audit trail.
    let first = mail(
        "a1@acme.example",
        "taro@acme.example",
        "サーバーが停止しました",
    );
    let Committed::Stored { case, opened: true } = file(&store, &first, t0()).await else {
        panic!()
    };
    let view = store.show_case(case).await.unwrap().unwrap();
    assert_eq!(view.summary.status, Status::New);
    assert_eq!(view.summary.entitlement.as_deref(), Some("entitled"));
    assert_eq!(view.summary.account.as_deref(), Some("Acme"));
    assert_eq!(view.summary.queue.as_deref(), Some("ansible-ja"));
    assert!(view.summary.sla.first_response_due.is_some());
    assert_eq!(
        view.messages
            .iter()
            .filter(|m| m.direction == "out")
            .count(),
        1
    );
    assert_eq!(store.outbox_rows(Some(case)).await.unwrap().len(), 1);
    let known = sender_facts(&store, "mid:a1@acme.example", "Taro@acme.example").await;
    assert_eq!(
        (known.duplicate, known.sent),
        (
            Some(case),
            SentCounts {
                auto_replies: 1,
                refusals: 0
            }
        )
    );
    assert_eq!(known.contracts, vec![acme_contract()]);

    // The SLA clock: warned once, breached once, never again.
    let due = view.summary.sla.first_response_due.unwrap();
    assert!(store.due_clocks(t0(), 10).await.unwrap().is_empty());
    let clocks = store
        .due_clocks(due - chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(clocks.len(), 1);
    let detail = serde_json::json!({});
    let settle = |action, at| {
        let (store, clock, detail) = (&store, clocks[0].clone(), &detail);
        async move {
            let mut work = store.begin_work().await.unwrap();
            let settled = work
                .settle_clock(&clock, action, at, detail, |_| vec![])
                .await
                .unwrap();
            work.commit().await.unwrap();
            settled
        }
    };
    // Not due yet (as when a mail moved the clock after the timer read it): nothing.
    assert!(!settle(ClockAction::Warn, t0()).await);
    assert!(!settle(ClockAction::Breach, due - chrono::Duration::minutes(1)).await);
    assert!(settle(ClockAction::Warn, due).await);
    assert!(!settle(ClockAction::Warn, due).await);
    let breaching = store.due_clocks(due, 10).await.unwrap();
    assert_eq!(
        (breaching.len(), breaching[0].id, breaching[0].warned),
        (1, clocks[0].id, true)
    );
    assert!(settle(ClockAction::Breach, due).await);
    assert!(!settle(ClockAction::Breach, due).await);
    assert!(
        store
            .due_clocks(due + chrono::Duration::days(9), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .case_summary(case)
            .await
            .unwrap()
            .unwrap()
            .sla
            .breached
    );
    let report = store
        .sla_report(due + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(report.attainment.len(), 1);
    assert_eq!(
        (report.attainment[0].met, report.attainment[0].missed),
        (0, 1)
    );
    assert_eq!(report.breached.len(), 1);
    assert_eq!(report.first_response_median_minutes, None);
    let view = store.show_case(case).await.unwrap().unwrap();
    assert_eq!(view.summary.subject, "サーバーが停止しました");
    assert_eq!(view.messages.len(), 2);
    assert_eq!(view.messages[0].received_at, t0());
    assert_eq!(view.messages[0].text, "本文です");
    assert_eq!(
        view.messages[0].attachments[0].filename.as_deref(),
        Some("ログ.txt")
    );
    assert!(view.messages[0].attachments[0].content_kept);
    assert_eq!(view.events[0].kind, "case_opened");

    // The same mail again: a duplicate, nothing written.
    let mut work = store.begin_work().await.unwrap();
    assert_eq!(
        work.find_duplicate("mid:a1@acme.example").await.unwrap(),
        Some(case)
    );
    assert_eq!(
        work.find_duplicate("mid:other@acme.example").await.unwrap(),
        None
    );
    work.abandon().await.unwrap();
    assert_eq!(
        file(&store, &first, t0()).await,
        Committed::Duplicate { case }
    );
    assert_eq!(store.case_count().await.unwrap(), 1);

    // Several mails in one unit of work: a later one sees what an earlier one wrote (the
    // follow-up threads onto the case opened a moment before, the copy is a duplicate),
    // and nothing is visible or kept until the unit is finished.
    let question = mail("b1@acme.example", "taro@acme.example", "ライセンスについて");
    let mut follow_up = mail(
        "b2@acme.example",
        "taro@acme.example",
        "Re: ライセンスについて",
    );
    follow_up.in_reply_to = vec!["b1@acme.example".into()];
    let mut work = store.begin_work().await.unwrap();
    let Committed::Stored {
        case: opened,
        opened: true,
    } = file_in(&mut work, &question, t0()).await
    else {
        panic!()
    };
    assert_eq!(
        file_in(&mut work, &follow_up, t0()).await,
        Committed::Stored {
            case: opened,
            opened: false
        }
    );
    assert_eq!(
        file_in(&mut work, &question, t0()).await,
        Committed::Duplicate { case: opened }
    );
    assert_eq!(work.len(), 2);
    work.abandon().await.unwrap();
    assert_eq!(store.case_count().await.unwrap(), 1);

    // A reply by References joins the case.
    let mut reply = mail(
        "a2@acme.example",
        "hanako@acme.example",
        "Re: サーバーが停止しました",
    );
    reply.references = vec!["a1@acme.example".into()];
    assert_eq!(
        file(&store, &reply, t0()).await,
        Committed::Stored {
            case,
            opened: false
        }
    );

    // A stranger with the case tag gets a new case linked to the old one.
    let stranger = mail(
        "x1@other.example",
        "eve@other.example",
        &format!("[Case #{case}] please add me"),
    );
    let Committed::Stored {
        case: other,
        opened: true,
    } = file(&store, &stranger, t0()).await
    else {
        panic!()
    };
    assert_ne!(other, case);
    let linked = store.show_case(other).await.unwrap().unwrap();
    assert_eq!(linked.summary.related_case, Some(case));
    let old = store.show_case(case).await.unwrap().unwrap();
    assert!(
        old.events.iter().any(|e| e.kind == "security"),
        "{:?}",
        old.events
    );

    // A participant using only the tag joins.
    let tagged = mail(
        "a3@acme.example",
        "taro@acme.example",
        &format!("Re: [Case #{case}] more logs"),
    );
    assert_eq!(
        file(&store, &tagged, t0()).await,
        Committed::Stored {
            case,
            opened: false
        }
    );

    // Lists, newest first, filtered by status.
    let all = store.list_cases(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.number).collect::<Vec<_>>(),
        vec![other, case]
    );
    assert_eq!(all[1].message_count, 4);
    assert_eq!(
        store
            .list_cases(Some(Status::Closed), 10)
            .await
            .unwrap()
            .len(),
        0
    );

    // A large raw mail (a file beside a SQLite database, inline on PostgreSQL) gives its
    // attachment back from the raw bytes.
    let mut logs = mail("a4@acme.example", "taro@acme.example", "Re: logs");
    logs.in_reply_to = vec!["a1@acme.example".into()];
    let raw = large_raw();
    let mut work = store.begin_work().await.unwrap();
    assert_eq!(
        file_message(&mut work, &logs, &message_with_raw(&logs, &raw), t0()).await,
        Committed::Stored {
            case,
            opened: false
        }
    );
    work.commit().await.unwrap();
    let view = store.show_case(case).await.unwrap().unwrap();
    let attachment = view
        .messages
        .iter()
        .rev()
        .find(|m| m.direction == "in")
        .unwrap()
        .attachments[0]
        .id;
    match store.attachment_source(attachment).await.unwrap() {
        Some(AttachmentSource::InRaw { raw: stored, span }) => {
            assert!(stored == raw && span == (0, raw.len()))
        }
        other => panic!("{other:?}"),
    }

    // Checkpoints.
    assert_eq!(store.checkpoint("INBOX").await.unwrap(), None);
    let cp = Checkpoint {
        uid_validity: 7,
        last_uid: 42,
    };
    store.save_checkpoint("INBOX", cp, t0()).await.unwrap();
    store
        .save_checkpoint("INBOX", Checkpoint { last_uid: 43, ..cp }, t0())
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("INBOX").await.unwrap(),
        Some(Checkpoint {
            uid_validity: 7,
            last_uid: 43
        })
    );

    // Quarantine: held, listed with the reason, re-quarantine updates, release.
    let entry = QuarantineEntry {
        id: 0,
        dedup_key: "sha256:abc".into(),
        message_id: None,
        from: Some("x@y.example".into()),
        subject: None,
        reason: "unparseable: no From".into(),
        size: 5,
        received_at: t0(),
        quarantined_at: t0(),
        source: "stdin".into(),
        status: QuarantineStatus::Held,
        released_case: None,
        raw: Some(b"junk!".to_vec()),
    };
    let mut work = store.begin_work().await.unwrap();
    work.quarantine(&entry, t0()).await.unwrap();
    work.quarantine(
        &QuarantineEntry {
            reason: "again".into(),
            ..entry.clone()
        },
        t0(),
    )
    .await
    .unwrap();
    work.commit().await.unwrap();
    let held = store.quarantine_list(true).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].reason, "again");
    assert_eq!(held[0].raw.as_deref(), Some(&b"junk!"[..]));
    store
        .quarantine_release("sha256:abc", case, t0())
        .await
        .unwrap();
    let after = store.quarantine_list(false).await.unwrap();
    assert_eq!(after[0].status, QuarantineStatus::Released);
    assert_eq!(after[0].released_case, Some(case));

    assert_eq!(
        store
            .show_case(CaseNumber(999_999))
            .await
            .unwrap()
            .map(|v| v.summary.number),
        None
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    // A new database goes in an existing folder (a missing one is a typo, never made).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let url = format!("sqlite://{}", dir.path().join("sub/casegate.db").display());
    contract(Store::open(&url, 4).await.unwrap()).await;
    // Reopening applies no migration twice and keeps the data.
    let store = Store::open(&url, 1).await.unwrap();
    assert_eq!(store.case_count().await.unwrap(), 2);
    // The one large raw mail is a file beside the database, whole.
    let files: Vec<_> = std::fs::read_dir(dir.path().join("sub/casegate.db-mail"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), large_raw());
}

#[tokio::test]
async fn sqlite_raw_mail_file_that_cannot_be_written_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The folder for raw mail files is taken by a plain file.
    std::fs::write(dir.path().join("casegate.db-mail"), "in the way").unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("casegate.db").display()),
        2,
    )
    .await
    .unwrap();
    let m = mail("big@acme.example", "taro@acme.example", "logs");
    let mut work = store.begin_work().await.unwrap();
    assert!(matches!(
        file_message(&mut work, &m, &message_with_raw(&m, &large_raw()), t0()).await,
        Committed::Stored { .. }
    ));
    let err = work.commit().await.unwrap_err();
    assert!(err.to_string().contains("casegate.db-mail"), "{err}");
    assert_eq!(store.case_count().await.unwrap(), 0);
    // A small raw mail stays in the database and commits.
    assert!(matches!(
        file(&store, &m, t0()).await,
        Committed::Stored { .. }
    ));
    assert_eq!(store.case_count().await.unwrap(), 1);
}

#[tokio::test]
async fn postgres_store_contract() {
    let db = PgDatabase::create().await;
    contract(Store::open(&db.url, 4).await.unwrap()).await;
    let store = Store::open(&db.url, 1).await.unwrap();
    assert_eq!(store.case_count().await.unwrap(), 2);
    store.close().await;
    db.drop().await;
}

/// The admin's writes (issue 20): contracts replaced and ended, a quarantined mail
/// discarded, every configured engineer in the team report.
async fn admin_contract(store: Store) {
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let other = Contract {
        contract_id: "C-OTHER".into(),
        account: "Other".into(),
        domains: vec!["other.example".into()],
        contacts: vec![],
        ..acme_contract()
    };
    store
        .import_contracts(&[acme_contract(), other.clone()], t0())
        .await
        .unwrap();
    // The file is the whole list: C-OTHER is missing, so it ends; C-ACME is kept.
    let (stats, ended) = store
        .replace_contracts(&[acme_contract()], day(2026, 6, 30), t0())
        .await
        .unwrap();
    assert_eq!((stats.inserted, stats.updated, stats.unchanged), (0, 0, 1));
    assert_eq!(ended, ["C-OTHER"]);
    let end_of = |list: &[Contract], id: &str| {
        list.iter()
            .find(|c| c.contract_id == id)
            .map(|c| c.end)
            .unwrap()
    };
    let list = store.list_contracts().await.unwrap();
    assert_eq!(end_of(&list, "C-OTHER"), day(2026, 6, 30));
    assert_eq!(end_of(&list, "C-ACME"), acme_contract().end);
    // Ending again, or later than it already ends, changes nothing.
    let (_, ended) = store
        .replace_contracts(&[acme_contract()], day(2026, 6, 30), t0())
        .await
        .unwrap();
    assert!(ended.is_empty());
    let before = store
        .end_contract("C-ACME", day(2026, 7, 1), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.end, acme_contract().end);
    store
        .end_contract("C-ACME", day(2026, 8, 1), t0())
        .await
        .unwrap();
    let list = store.list_contracts().await.unwrap();
    assert_eq!(end_of(&list, "C-ACME"), day(2026, 7, 1));
    assert!(
        store
            .end_contract("C-NONE", day(2026, 7, 1), t0())
            .await
            .unwrap()
            .is_none()
    );

    // A held quarantine entry is discarded once; it keeps no bytes.
    let entry = QuarantineEntry {
        id: 0,
        dedup_key: "sha256:discard".into(),
        message_id: None,
        from: None,
        subject: None,
        reason: "unparseable".into(),
        size: 3,
        received_at: t0(),
        quarantined_at: t0(),
        source: "stdin".into(),
        status: QuarantineStatus::Held,
        released_case: None,
        raw: Some(b"bad".to_vec()),
    };
    let mut work = store.begin_work().await.unwrap();
    work.quarantine(&entry, t0()).await.unwrap();
    work.commit().await.unwrap();
    let id = store.quarantine_list(false).await.unwrap()[0].id;
    let shown = store.quarantine_entry(id).await.unwrap().unwrap();
    assert_eq!(shown.raw.as_deref(), Some(&b"bad"[..]));
    let was = store
        .quarantine_discard(id, "admin", t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(was.status, QuarantineStatus::Held);
    let now = store.quarantine_entry(id).await.unwrap().unwrap();
    assert_eq!(now.status, QuarantineStatus::Discarded);
    assert_eq!(now.raw, None);
    assert!(store.quarantine_entry(id + 1000).await.unwrap().is_none());

    store.close().await;
}

#[tokio::test]
async fn sqlite_admin_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    admin_contract(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_admin_writes() {
    let db = PgDatabase::create().await;
    admin_contract(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}

/// Leases and fencing (issue 15): one holder per mailbox, takeover after expiry with a
/// new token, and a former holder's commit refused.
async fn lease_contract(store: Store) {
    use casegate::store::StoreError;
    let t = |s: i64| t0() + chrono::Duration::seconds(s);
    let a = store
        .acquire_lease("jp", "a", t(0), t(15))
        .await
        .unwrap()
        .expect("a free mailbox is taken");
    assert_eq!(a.token, 1);
    assert_eq!(
        store.acquire_lease("jp", "b", t(5), t(20)).await.unwrap(),
        None
    );
    assert!(store.renew_lease(&a, t(25)).await.unwrap());
    // Not before the renewed expiry…
    assert_eq!(
        store.acquire_lease("jp", "b", t(20), t(35)).await.unwrap(),
        None
    );
    // …but after it, with a new fencing token.
    let b = store
        .acquire_lease("jp", "b", t(25), t(40))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(b.token, 2);
    assert!(!store.renew_lease(&a, t(45)).await.unwrap());
    // The former holder's unit of work is refused whole; the new holder's commits.
    let m = mail("late@acme.example", "taro@acme.example", "late");
    let mut work = store.begin_work().await.unwrap();
    file_in(&mut work, &m, t(26)).await;
    match work.fence(&a, t(26)).await {
        Err(StoreError::LeaseLost { mailbox, token }) => {
            assert_eq!((mailbox.as_str(), token), ("jp", 1))
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    drop(work);
    assert_eq!(store.case_count().await.unwrap(), 0);
    let mut work = store.begin_work().await.unwrap();
    file_in(&mut work, &m, t(27)).await;
    work.fence(&b, t(27)).await.unwrap();
    work.commit().await.unwrap();
    assert_eq!(store.case_count().await.unwrap(), 1);
    // Released: taken at once, before its expiry.
    store.release_lease(&b).await.unwrap();
    let c = store
        .acquire_lease("jp", "c", t(28), t(43))
        .await
        .unwrap()
        .expect("a released lease is free");
    assert_eq!(c.token, 3);
    // Instances: alive by heartbeat, gone when removed.
    store.heartbeat_instance("a", "h1", 10, t(0)).await.unwrap();
    store
        .heartbeat_instance("c", "h2", 11, t(20))
        .await
        .unwrap();
    assert_eq!(store.alive_instances(t(10)).await.unwrap(), 1);
    store
        .heartbeat_instance("a", "h1", 10, t(30))
        .await
        .unwrap();
    assert_eq!(store.alive_instances(t(10)).await.unwrap(), 2);
    let (instances, leases) = store.cluster_state().await.unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[0].started_at, t(0));
    assert_eq!(instances[0].heartbeat_at, t(30));
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].holder.as_deref(), Some("c"));
    assert_eq!(leases[0].last_commit_at, Some(t(27)));
    store.remove_instance("a").await.unwrap();
    assert_eq!(store.alive_instances(t(10)).await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_leases_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    lease_contract(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_leases_and_fencing() {
    let db = PgDatabase::create().await;
    lease_contract(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}

/// Two SLA timers on PostgreSQL (issue 15): a due clock claimed by one unit of work is
/// skipped by another at once (`SKIP LOCKED`), not waited for; once the first commits,
/// the clock can be claimed again.
#[tokio::test]
async fn postgres_sla_timers_skip_a_clock_another_holds() {
    let db = PgDatabase::create().await;
    let store = Store::open(&db.url, 4).await.unwrap();
    store
        .import_contracts(&[acme_contract()], t0())
        .await
        .unwrap();
    let m = mail(
        "c1@acme.example",
        "taro@acme.example",
        "サーバーが停止しました",
    );
    file(&store, &m, t0()).await;
    let clocks = store
        .due_clocks(t0() + chrono::Duration::days(30), 10)
        .await
        .unwrap();
    assert_eq!(clocks.len(), 1);
    let mut first = store.begin_work().await.unwrap();
    assert!(first.claim_clock(&clocks[0]).await.unwrap());
    let mut second = store.begin_work().await.unwrap();
    let started = std::time::Instant::now();
    assert!(!second.claim_clock(&clocks[0]).await.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "skipped, not waited for"
    );
    drop(second);
    first.commit().await.unwrap();
    let mut third = store.begin_work().await.unwrap();
    assert!(third.claim_clock(&clocks[0]).await.unwrap());
    drop(third);
    db.drop().await;
}

/// The status pages' read models (issue 17): open cases per queue, today's intake, the
/// clocks by due time, weekly attainment, the daily backlog and the team's measures.
async fn status_page_views(store: Store) {
    store
        .import_contracts(&[acme_contract()], t0())
        .await
        .unwrap();
    let a = mail(
        "v1@acme.example",
        "taro@acme.example",
        "サーバーが停止しました",
    );
    let b = mail(
        "v2@acme.example",
        "hanako@acme.example",
        "ログの確認をお願いします",
    );
    let (Committed::Stored { case: ca, .. }, Committed::Stored { .. }) = (
        file(&store, &a, t0()).await,
        file(&store, &b, t0() + chrono::Duration::minutes(5)).await,
    ) else {
        panic!("both mails open a case")
    };
    let loads = store.queue_loads().await.unwrap();
    assert_eq!(loads.iter().map(|l| l.open).sum::<i64>(), 2, "{loads:?}");
    for l in &loads {
        assert_eq!(l.by_status.values().sum::<i64>(), l.open);
        assert_eq!(l.by_severity.values().sum::<i64>(), l.open);
    }
    let queue = store
        .case_summary(ca)
        .await
        .unwrap()
        .unwrap()
        .queue
        .unwrap();
    let hour = chrono::Duration::hours(1);
    let intake = store.intake(t0() - hour, t0() + hour).await.unwrap();
    assert_eq!(intake.iter().map(|i| i.cases).sum::<i64>(), 2);
    assert!(
        intake
            .iter()
            .all(|i| i.language == "ja" && i.queue == queue),
        "{intake:?}"
    );
    assert!(
        store
            .intake(t0() + hour, t0() + hour * 2)
            .await
            .unwrap()
            .is_empty()
    );

    let clocks = store.open_clocks(None).await.unwrap();
    assert_eq!(
        clocks.len(),
        2,
        "one first-response clock per case: {clocks:?}"
    );
    assert!(clocks.windows(2).all(|w| w[0].due <= w[1].due));
    assert_eq!(clocks[0].case, ca);
    assert!(
        store
            .open_clocks(Some("no-such-queue"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.case_clocks(ca).await.unwrap().len(), 1);
    assert_eq!(store.queue_cases(&queue).await.unwrap().len(), 2);

    // A month on, both clocks came due unmet: two missed, none met, in some week.
    let later = t0() + chrono::Duration::days(30);
    let weeks = store.weekly_attainment(later, 8).await.unwrap();
    assert_eq!(weeks.len(), 8);
    assert!(weeks.windows(2).all(|w| w[0].week_start < w[1].week_start));
    assert_eq!(
        weeks
            .iter()
            .map(|w| (w.met, w.missed))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        (0, 2)
    );
    let days = store
        .daily_backlog(t0() + chrono::Duration::days(2), 4)
        .await
        .unwrap();
    assert_eq!(
        days.iter().map(|d| d.open).collect::<Vec<_>>(),
        vec![0, 2, 2, 2]
    );

    let team = store
        .team_measures(&["Idle@Vendor.example".into()], t0() - hour, t0() + hour)
        .await
        .unwrap();
    let idle = team
        .engineers
        .iter()
        .find(|e| e.engineer == "idle@vendor.example")
        .unwrap();
    assert_eq!((idle.comments, idle.owned, idle.kb_articles), (0, 0, 0));
    let q = team.queues.iter().find(|q| q.queue == queue).unwrap();
    assert_eq!(q.opened, 2);
    store.close().await;
}

#[tokio::test]
async fn sqlite_status_page_views() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    status_page_views(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_status_page_views() {
    let db = PgDatabase::create().await;
    status_page_views(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}

// --- issue 18a: resolution paths, feedback and the period report ---

/// An engineer's mail on `case`, decided by `engineer::reply` and written as the
/// pipeline does.
async fn engineer_writes(
    store: &Store,
    case: CaseNumber,
    mid: &str,
    text: &str,
    at: DateTime<Utc>,
) {
    let mut work = store.begin_work().await.unwrap();
    engineer_writes_in(&mut work, case, mid, text, at).await;
    work.commit().await.unwrap();
}

/// [`engineer_writes`] in the caller's unit of work.
async fn engineer_writes_in(
    work: &mut Work,
    case: CaseNumber,
    mid: &str,
    text: &str,
    at: DateTime<Utc>,
) {
    use casegate::domain::known_issue::{KnownIssue, KnownIssues, Version};
    let cfg = support::repo_config();
    let known = KnownIssues {
        issues: vec![KnownIssue {
            id: "AAP-1".into(),
            title: "Jobs hang".into(),
            affected: vec!["2.0.0".into()],
            fixed_in: Version::parse("2.0.1"),
            link: "https://kb.example/AAP-1".into(),
            workaround: None,
        }],
    };
    let engineer = casegate::config::Engineer {
        address: "sato@vendor.example".into(),
        name: "Sato".into(),
        region: "APAC".into(),
        queues: vec!["ansible-ja".into()],
    };
    let mut m = mail(mid, &engineer.address, "Re: x");
    m.text = text.into();
    let facts_of_case = work
        .case_facts(case, &engineer.address)
        .await
        .unwrap()
        .unwrap();
    let facts = Facts {
        running_clocks: work.running_clocks(case).await.unwrap(),
        last_customer_message: work.last_customer_message(case).await.unwrap(),
        ..Facts::default()
    };
    let rules = support::vendor_rules();
    let settings = Settings {
        rules: &rules,
        routing: &cfg.routing,
        sla: &cfg.sla,
        staff: &cfg.staff,
        known_issues: &known,
    };
    let plan = casegate::domain::engineer::reply(&m, &engineer, &facts_of_case, &facts, settings);
    assert!(
        !plan
            .mails
            .iter()
            .any(|p| matches!(p.notice, decide::Notice::CommandError { .. })),
        "{plan:?}"
    );
    let mut msg = message(&m, at);
    msg.attachments.clear();
    let render = composed(
        &plan,
        TemplateKind::KnownIssueUpgrade,
        Role::Engineer,
        "answer",
    );
    work.write_plan(&plan, &msg, at, render).await.unwrap();
}

/// Cases opened in one unit of work are numbered in order, whatever else opens one in
/// it (`#split`), and each has all of its rows (SQLite numbers them before it writes).
async fn numbering_contract(store: Store) {
    let customer = |n: u32| {
        mail(
            &format!("n{n}@acme.example"),
            "taro@acme.example",
            "Jobs hang",
        )
    };
    let mut work = store.begin_work().await.unwrap();
    let mut opened = Vec::new();
    for n in 0..2 {
        let Committed::Stored { case, opened: true } = file_in(&mut work, &customer(n), t0()).await
        else {
            panic!("mail {n} opened no case")
        };
        opened.push(case);
    }
    engineer_writes_in(&mut work, opened[0], "split@vendor.example", "#split", t0()).await;
    let Committed::Stored {
        case: after,
        opened: true,
    } = file_in(&mut work, &customer(2), t0()).await
    else {
        panic!("the mail after #split opened no case")
    };
    work.commit().await.unwrap();
    assert_eq!(opened[1].0, opened[0].0 + 1);
    // The split's case comes between: the next mail's case follows it.
    assert_eq!(after.0, opened[1].0 + 2, "{opened:?} {after}");
    assert_eq!(store.case_count().await.unwrap(), 4);
    for case in opened.iter().chain([&after]) {
        let view = store.show_case(*case).await.unwrap().unwrap();
        let count = |d: &str| view.messages.iter().filter(|m| m.direction == d).count();
        let customer = view
            .messages
            .iter()
            .filter(|m| m.role == "customer")
            .count();
        assert_eq!(customer, 1, "{case}");
        // Each outbound mail is both a message of the case and an outbox row.
        let queued = store.outbox_rows(Some(*case)).await.unwrap().len();
        assert!(queued > 0, "{case}: nothing queued");
        assert_eq!(count("out"), queued, "{case}");
        assert!(!view.events.is_empty(), "{case}: no events");
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    numbering_contract(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_numbering() {
    let db = PgDatabase::create().await;
    numbering_contract(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}

async fn period_report_contract(store: Store) {
    use casegate::domain::known_issue::Resolution;
    store
        .import_contracts(&[acme_contract()], t0())
        .await
        .unwrap();
    let first = mail("p1@acme.example", "taro@acme.example", "ジョブが止まります");
    let Committed::Stored { case, .. } = file(&store, &first, t0()).await else {
        panic!()
    };
    let t = |minutes: i64| t0() + chrono::Duration::minutes(minutes);
    engineer_writes(
        &store,
        case,
        "e1@vendor.example",
        "#take\n#known AAP-1 fixed-in 2.0.1\nバージョンアップをお願いいたします。",
        t(30),
    )
    .await;
    engineer_writes(&store, case, "e2@vendor.example", "#internal\nメモ", t(40)).await;
    engineer_writes(&store, case, "e3@vendor.example", "#close", t(50)).await;
    let summary = store.case_summary(case).await.unwrap().unwrap();
    assert_eq!(summary.resolution, Some(Resolution::Upgrade));
    assert_eq!(summary.status, Status::Closed);
    let mut rating = mail(
        "p2@acme.example",
        "taro@acme.example",
        "Re: [Case #00000001] x",
    );
    rating.in_reply_to = vec!["p1@acme.example".into()];
    rating.text = "2 - 対応が遅かったです".into();
    file(&store, &rating, t(60)).await;
    let summary = store.case_summary(case).await.unwrap().unwrap();
    let feedback = summary.feedback.expect("feedback stored");
    assert_eq!(feedback.rating, 2);
    assert_eq!(feedback.comment.as_deref(), Some("対応が遅かったです"));
    assert_eq!(summary.status, Status::Closed);

    let engineers = [
        "sato@vendor.example".to_string(),
        "idle@vendor.example".to_string(),
    ];
    let r = store
        .period_report(
            &engineers,
            t0() - chrono::Duration::days(1),
            t0() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let sato = r
        .engineers
        .iter()
        .find(|e| e.engineer == "sato@vendor.example")
        .unwrap();
    let m = &sato.measures;
    assert_eq!(
        (m.cases_commented, m.comments, m.cases_owned, m.ratings),
        (1, 2, 1, 1),
        "{m:?}"
    );
    assert_eq!(m.average_rating, Some(2.0));
    assert_eq!(m.median_round_trips, Some(1.0));
    assert_eq!(m.resolutions.get("upgrade"), Some(&1));
    assert_eq!((m.sla_met, m.sla_missed), (1, 0), "{m:?}");
    assert_eq!(m.sla_attainment_percent, Some(100.0));
    let idle = r
        .engineers
        .iter()
        .find(|e| e.engineer == "idle@vendor.example")
        .unwrap();
    assert_eq!(idle.measures, casegate::store::Measures::default());
    let queue = r.queues.iter().find(|q| q.queue == "ansible-ja").unwrap();
    assert_eq!((queue.measures.comments, queue.measures.ratings), (2, 1));
    assert_eq!(r.team.cases_commented, 1);
    // Another period: none of it.
    let before = store
        .period_report(
            &engineers,
            t0() - chrono::Duration::days(10),
            t0() - chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(before.team, casegate::store::Measures::default());
    // A case reopened and closed again does not ask for feedback a second time.
    let mut again = mail(
        "p3@acme.example",
        "taro@acme.example",
        "Re: [Case #00000001] x",
    );
    again.in_reply_to = vec!["p1@acme.example".into()];
    again.text = "再発しました".into();
    file(&store, &again, t(70)).await;
    let mut work = store.begin_work().await.unwrap();
    let facts = work
        .case_facts(case, "sato@vendor.example")
        .await
        .unwrap()
        .unwrap();
    work.abandon().await.unwrap();
    assert_ne!(facts.status, Status::Closed);
    assert!(facts.details.feedback_asked, "asked with the first closure");
    store.close().await;
}

#[tokio::test]
async fn sqlite_period_report() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    period_report_contract(Store::open(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_period_report() {
    let db = PgDatabase::create().await;
    period_report_contract(Store::open(&db.url, 2).await.unwrap()).await;
    db.drop().await;
}
