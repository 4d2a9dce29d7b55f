//! The transactional outbox and its SMTP sender, against the real SMTP sink of the test
//! environment (`scripts/testenv`) and a real SQLite file (the store contract also on
//! PostgreSQL): delivered once with the right headers, retried after 4xx and outages,
//! failed with an event on 5xx, recovered after a crash mid-send.

#[allow(unused_imports)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::Notify;

use casegate::config::{Secret, SmtpSettings, TlsMode};
use casegate::domain::CaseNumber;
use casegate::domain::outbound::{OutboundKind, SentCounting, TemplateKind};
use casegate::domain::thread::reply_subject;
use casegate::mail::Address;
use casegate::mail::compose::{Outgoing, compose};
use casegate::mail::parse::{ParseLimits, parse};
use casegate::outbox::{DrainReport, RetryPolicy, drain_once, run};
use casegate::runtime::shutdown_channel;
use casegate::store::{NewOutbox, OutboxStatus, Retried, Store};
use support::pg::PgDatabase;
use support::{
    SmtpSink, TestEnv, smtp_clear_rule, smtp_messages, smtp_received, smtp_rule, unique_user,
    wait_for_smtp,
};

const SUPPORT: &str = "support@vendor.example";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(100),
        cap: Duration::from_millis(400),
        max_age: Duration::from_secs(3600),
    }
}

fn plain_smtp(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        ca_file: None,
        username: None,
        password: None,
        oauth2: None,
        timeout: Duration::from_secs(10),
    }
}

fn shared_smtp() -> SmtpSettings {
    plain_smtp(TestEnv::get().smtp_port)
}

/// A SQLite store in a temp dir (kept alive by the returned guard).
async fn sqlite_store() -> (Store, String, tempfile::TempDir) {
    let dir = support::tempdir();
    let url = format!("sqlite://{}", dir.path().join("casegate.db").display());
    let store = Store::open(&url, 4).await.unwrap();
    store.lock_sole_user().unwrap();
    (store, url, dir)
}

/// A case row, written directly so that these tests do not depend on the commit API.
async fn insert_case(url: &str, subject: &str) -> CaseNumber {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let id: i64 = sqlx::query(
        "INSERT INTO cases (subject, status, customer, created_at, updated_at) VALUES ($1, 'new', $2, $3, $3) RETURNING id",
    )
    .bind(subject.to_string())
    .bind("taro@acme.example".to_string())
    .bind(Utc::now().timestamp_millis())
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    pool.close().await;
    CaseNumber(id)
}

/// `(kind, detail)` of a case's events.
async fn events(url: &str, case: CaseNumber) -> Vec<(String, serde_json::Value)> {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows = sqlx::query("SELECT kind, detail FROM events WHERE case_id = $1 ORDER BY id")
        .bind(case.0)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                serde_json::from_str(&r.get::<String, _>(1)).unwrap(),
            )
        })
        .collect()
}

fn recipient(tag: &str) -> String {
    format!("{}@acme.example", unique_user(tag))
}

/// A composed acknowledgement to `to`, as the pipeline would queue it.
fn acknowledgement(case: i64, n: i64, to: &str, subject: &str, body: &str) -> NewOutbox {
    let mail = Outgoing {
        from: Address {
            name: Some("Example サポート".into()),
            email: SUPPORT.into(),
        },
        to: vec![Address {
            name: Some("山田 太郎".into()),
            email: to.into(),
        }],
        cc: vec![],
        reply_to: None,
        subject: reply_subject(&format!("[Case #{case:08}]"), subject),
        body: body.into(),
        message_id: format!("case-{case:08}.m-{n}@vendor.example"),
        in_reply_to: Some("original-1@acme.example".into()),
        references: vec![
            "root-0@acme.example".into(),
            "original-1@acme.example".into(),
        ],
        auto_submitted: true,
        date: Utc::now(),
    };
    NewOutbox {
        case: None,
        kind: TemplateKind::Acknowledgement.into(),
        message_id: mail.message_id.clone(),
        sender: SUPPORT.into(),
        recipients: vec![to.into()],
        raw: compose(&mail).unwrap(),
    }
}

fn simple(to: &str, n: i64) -> NewOutbox {
    acknowledgement(
        9_000_000 + n,
        n,
        to,
        "Agent down",
        "Hello,\n\nWe received your request.\n",
    )
}

/// Runs the daemon worker until `done` resolves, then shuts it down cleanly.
async fn with_worker<F: std::future::Future<Output = ()>>(
    store: &Store,
    smtp: SmtpSettings,
    done: F,
) {
    let (trigger, shutdown) = shutdown_channel();
    let wake = Arc::new(Notify::new());
    let worker = tokio::spawn(run(
        store.clone(),
        smtp,
        fast_policy(),
        shutdown,
        wake.clone(),
    ));
    wake.notify_one();
    done.await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("worker stops on shutdown")
        .unwrap()
        .unwrap();
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn japanese_acknowledgement_is_delivered_once_with_threading_headers() {
    let (store, _url, _dir) = sqlite_store().await;
    let to = recipient("ack-ja");
    let subject = "【至急】本番環境でエージェントが起動しません";
    let row = acknowledgement(
        1234,
        1,
        &to,
        subject,
        "山田様\n\nいつもお世話になっております。\n",
    );
    assert!(
        store
            .enqueue_outbox(&row, Utc::now())
            .await
            .unwrap()
            .is_some()
    );
    // The same Message-ID queued again (the same mail decided twice) is ignored.
    assert_eq!(store.enqueue_outbox(&row, Utc::now()).await.unwrap(), None);

    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    assert_eq!((report.sent, report.retried, report.failed), (1, 0, 0));
    let again = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    assert_eq!(again, DrainReport::default());

    let got = smtp_received(&to);
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert_eq!(got[0].mail_from, SUPPORT);
    let mail = parse(&got[0].raw, &ParseLimits::default()).unwrap();
    assert_eq!(mail.subject, format!("Re: [Case #00001234] {subject}"));
    assert_eq!(
        mail.message_id.as_deref(),
        Some("case-00001234.m-1@vendor.example")
    );
    assert_eq!(
        mail.in_reply_to,
        vec!["original-1@acme.example".to_string()]
    );
    assert_eq!(
        mail.references,
        vec![
            "root-0@acme.example".to_string(),
            "original-1@acme.example".to_string()
        ]
    );
    assert_eq!(mail.headers.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(mail.from.name.as_deref(), Some("Example サポート"));
    assert_eq!(mail.to[0].name.as_deref(), Some("山田 太郎"));
    assert_eq!(mail.text, "山田様\n\nいつもお世話になっております。");

    let stored = store
        .outbox_by_message_id("case-00001234.m-1@vendor.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OutboxStatus::Sent);
    assert_eq!(stored.attempts, 1);
    assert!(stored.sent_at.is_some());
    assert_eq!(store.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn one_connection_carries_many_messages() {
    let (store, _url, _dir) = sqlite_store().await;
    let to: Vec<String> = (0..15).map(|i| recipient(&format!("reuse{i}"))).collect();
    for (i, rcpt) in to.iter().enumerate() {
        store
            .enqueue_outbox(&simple(rcpt, 100 + i as i64), Utc::now())
            .await
            .unwrap();
    }
    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    assert_eq!(report.sent, 15);
    let peers: std::collections::BTreeSet<String> = to
        .iter()
        .map(|rcpt| {
            let msgs = smtp_received(rcpt);
            assert_eq!(msgs.len(), 1, "{rcpt}");
            let meta: serde_json::Value = serde_json::from_slice(
                &std::fs::read(msgs[0].path.with_extension("json")).unwrap(),
            )
            .unwrap();
            meta["peer"].to_string()
        })
        .collect();
    assert_eq!(
        peers.len(),
        1,
        "all messages over one connection: {peers:?}"
    );
}

#[tokio::test]
async fn temporary_failures_retry_until_delivered_once() {
    let (store, _url, _dir) = sqlite_store().await;
    let to = recipient("retry451");
    smtp_rule(&to, "451 2");
    let row = simple(&to, 1);
    store.enqueue_outbox(&row, Utc::now()).await.unwrap();
    with_worker(&store, shared_smtp(), async {
        wait_for_smtp(&to, 1, Duration::from_secs(20)).await;
        settle().await;
    })
    .await;
    smtp_clear_rule(&to);
    assert_eq!(smtp_messages(&to).len(), 1, "delivered exactly once");
    let stored = store
        .outbox_by_message_id(&row.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OutboxStatus::Sent);
    assert_eq!(stored.attempts, 3, "two 451s, then 250");
}

/// A row that gave up on its age, queued again by an admin (`outbox retry`), starts
/// afresh: a 4xx after the retry is retried (it failed again at once, the age and the
/// attempts still counting from the first queueing).
#[tokio::test]
async fn an_admin_retry_resets_the_give_up_age_and_the_attempts() {
    let (store, _url, _dir) = sqlite_store().await;
    let to = recipient("retryage");
    smtp_rule(&to, "451");
    let row = simple(&to, 1);
    // Older than fast_policy's max_age.
    let long_ago = Utc::now() - chrono::Duration::hours(2);
    store.enqueue_outbox(&row, long_ago).await.unwrap();
    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    assert_eq!((report.retried, report.failed), (0, 1), "{report:?}");
    let gave_up = store
        .outbox_by_message_id(&row.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gave_up.status, OutboxStatus::Failed);

    let now = Utc::now();
    assert_eq!(
        store.retry_outbox(gave_up.id, now).await.unwrap(),
        Retried::Queued
    );
    let queued = store.outbox_row(gave_up.id).await.unwrap().unwrap();
    assert_eq!(queued.attempts, 0, "{queued:?}");
    assert_eq!(
        queued.queued_at().timestamp_millis(),
        now.timestamp_millis()
    );
    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    smtp_clear_rule(&to);
    assert_eq!((report.retried, report.failed), (1, 0), "{report:?}");
    let retried = store.outbox_row(gave_up.id).await.unwrap().unwrap();
    assert_eq!(
        (retried.status, retried.attempts),
        (OutboxStatus::Pending, 1)
    );
}

#[tokio::test]
async fn permanent_failure_fails_the_row_with_an_event_on_the_case() {
    let (store, url, _dir) = sqlite_store().await;
    let case = insert_case(&url, "Agent down").await;
    let to = recipient("perm554");
    smtp_rule(&to, "554");
    let mut row = simple(&to, 1);
    row.case = Some(case);
    store.enqueue_outbox(&row, Utc::now()).await.unwrap();
    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    smtp_clear_rule(&to);
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 1));
    assert!(smtp_messages(&to).is_empty());

    let stored = store
        .outbox_by_message_id(&row.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OutboxStatus::Failed);
    assert!(
        stored.last_error.as_deref().unwrap_or("").contains("554"),
        "{stored:?}"
    );
    let events = events(&url, case).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|(k, _)| k == "delivery_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].1["smtp_status"], 554);
    assert_eq!(failed[0].1["message_id"], row.message_id.as_str());
    // Nothing left to do: a failed row is never retried.
    assert_eq!(
        drain_once(&store, &shared_smtp(), &fast_policy())
            .await
            .unwrap(),
        DrainReport::default()
    );
}

#[tokio::test]
async fn server_outage_then_restart_delivers_exactly_once() {
    let (store, _url, _dir) = sqlite_store().await;
    let mut sink = SmtpSink::start();
    let to = recipient("outage");
    sink.stop();
    let row = simple(&to, 1);
    store.enqueue_outbox(&row, Utc::now()).await.unwrap();
    let smtp = plain_smtp(sink.port);

    // While the server is down: queued, retried, never failed.
    let report = drain_once(&store, &smtp, &fast_policy()).await.unwrap();
    assert!(
        report.server_unavailable && report.retried == 1 && report.failed == 0,
        "{report:?}"
    );

    let store2 = store.clone();
    let to2 = to.clone();
    let sink_ref = &mut sink;
    with_worker(&store, smtp, async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let pending = store2
            .outbox_by_message_id(&row.message_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pending.status, OutboxStatus::Pending, "{pending:?}");
        assert!(pending.attempts >= 2, "{pending:?}");
        assert!(pending.last_error.is_some());
        sink_ref.resume();
        sink_ref
            .sink
            .wait_for(&to2, 1, Duration::from_secs(20))
            .await;
        settle().await;
    })
    .await;
    assert_eq!(
        sink.sink.messages(&to).len(),
        1,
        "delivered exactly once after the restart"
    );
}

#[tokio::test]
async fn rows_stuck_in_sending_after_a_crash_are_delivered_once() {
    let (store, _url, _dir) = sqlite_store().await;
    let crashed = recipient("crashed");
    let held = recipient("held");
    let long_ago = Utc::now() - chrono::Duration::minutes(20);
    store
        .enqueue_outbox(&simple(&crashed, 1), long_ago)
        .await
        .unwrap();
    // A worker claimed it ten minutes ago with a one-minute lease, then died.
    let claimed = store
        .claim_due(
            Utc::now() - chrono::Duration::minutes(10),
            10,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, OutboxStatus::Sending);
    // Another row leased just now, its lease far from over: on SQLite the lock proves
    // its worker dead too (a live one on PostgreSQL: on_postgresql_run_once_... in
    // tests/outbox_recovery.rs).
    store
        .enqueue_outbox(&simple(&held, 2), long_ago)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due(Utc::now(), 10, Duration::from_secs(3600))
            .await
            .unwrap()
            .len(),
        1
    );

    let report = drain_once(&store, &shared_smtp(), &fast_policy())
        .await
        .unwrap();
    assert_eq!((report.released, report.sent), (2, 2), "{report:?}");
    assert_eq!(smtp_messages(&crashed).len(), 1);
    assert_eq!(smtp_messages(&held).len(), 1);
    assert_eq!(
        drain_once(&store, &shared_smtp(), &fast_policy())
            .await
            .unwrap()
            .sent,
        0
    );
    assert_eq!(smtp_messages(&crashed).len(), 1, "delivered exactly once");
    assert_eq!(smtp_messages(&held).len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn worker_sleeps_until_woken_and_sends_new_mail() {
    let (store, _url, _dir) = sqlite_store().await;
    let to = recipient("wake");
    let (trigger, shutdown) = shutdown_channel();
    let wake = Arc::new(Notify::new());
    let worker = tokio::spawn(run(
        store.clone(),
        shared_smtp(),
        fast_policy(),
        shutdown,
        wake.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    store
        .enqueue_outbox(&simple(&to, 1), Utc::now())
        .await
        .unwrap();
    wake.notify_one();
    wait_for_smtp(&to, 1, Duration::from_secs(5)).await;
    trigger.trigger();
    worker.await.unwrap().unwrap();
    assert_eq!(smtp_messages(&to).len(), 1);
}

#[tokio::test]
async fn implicit_tls_and_starttls_with_auth() {
    let env = TestEnv::get();
    let (store, _url, _dir) = sqlite_store().await;

    let to_tls = recipient("smtps");
    store
        .enqueue_outbox(&simple(&to_tls, 1), Utc::now())
        .await
        .unwrap();
    let tls = SmtpSettings {
        tls: TlsMode::Tls,
        ca_file: Some(env.ca_file.clone()),
        ..plain_smtp(env.smtps_port)
    };
    assert_eq!(
        drain_once(&store, &tls, &fast_policy()).await.unwrap().sent,
        1
    );
    let got = smtp_received(&to_tls);
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "implicit TLS");

    let to_starttls = recipient("starttls");
    store
        .enqueue_outbox(&simple(&to_starttls, 2), Utc::now())
        .await
        .unwrap();
    let starttls = SmtpSettings {
        host: "localhost".into(),
        tls: TlsMode::StartTls,
        ca_file: Some(env.ca_file.clone()),
        username: Some("casegate".into()),
        password: Some(Secret::new("secret")),
        ..plain_smtp(env.smtp_port)
    };
    assert_eq!(
        drain_once(&store, &starttls, &fast_policy())
            .await
            .unwrap()
            .sent,
        1
    );
    let got = smtp_received(&to_starttls);
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "STARTTLS");
    assert_eq!(got[0].auth_user.as_deref(), Some("casegate"));
}

#[tokio::test]
async fn untrusted_certificate_keeps_the_mail_queued() {
    let env = TestEnv::get();
    let (store, _url, _dir) = sqlite_store().await;
    let to = recipient("untrusted");
    let row = simple(&to, 1);
    store.enqueue_outbox(&row, Utc::now()).await.unwrap();
    // No CA file: the test server's self-signed certificate is not trusted.
    let tls = SmtpSettings {
        tls: TlsMode::Tls,
        ..plain_smtp(env.smtps_port)
    };
    let report = drain_once(&store, &tls, &fast_policy()).await.unwrap();
    assert!(
        report.server_unavailable && report.sent == 0 && report.failed == 0,
        "{report:?}"
    );
    assert!(smtp_messages(&to).is_empty());
    let stored = store
        .outbox_by_message_id(&row.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OutboxStatus::Pending);
}

#[tokio::test]
async fn plaintext_to_a_remote_host_is_refused() {
    let (store, _url, _dir) = sqlite_store().await;
    let smtp = SmtpSettings {
        host: "smtp.example.com".into(),
        ..plain_smtp(25)
    };
    let err = drain_once(&store, &smtp, &fast_policy()).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

// ---- the store contract, on SQLite and PostgreSQL ----

async fn store_contract(store: Store, url: &str) {
    let t0 = Utc::now() - chrono::Duration::minutes(30);
    let case = insert_case(url, "Agent down").await;
    let to = "Taro@Acme.example";
    let mut row = simple(to, 1);
    row.case = Some(case);
    let id = store.enqueue_outbox(&row, t0).await.unwrap().unwrap();
    assert_eq!(store.enqueue_outbox(&row, t0).await.unwrap(), None);
    assert_eq!(store.next_due().await.unwrap().map(ms), Some(ms(t0)));

    // Claim: leased, counted, not claimable twice.
    let lease = Duration::from_secs(60);
    let claimed = store.claim_due(t0, 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].id, claimed[0].status, claimed[0].attempts),
        (id, OutboxStatus::Sending, 1)
    );
    assert_eq!(claimed[0].recipients, vec![to.to_string()]);
    assert_eq!(claimed[0].raw, row.raw);
    assert!(
        store
            .claim_due(t0 + chrono::Duration::seconds(59), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // Retry, then crash recovery of an expired lease.
    let retry_at = t0 + chrono::Duration::minutes(1);
    store
        .mark_retry(id, retry_at, "451 4.3.0 try later")
        .await
        .unwrap();
    assert!(store.claim_due(t0, 10, lease).await.unwrap().is_empty());
    assert_eq!(store.claim_due(retry_at, 10, lease).await.unwrap().len(), 1);
    assert_eq!(store.release_expired_leases(retry_at).await.unwrap(), 0);
    assert_eq!(
        store
            .release_expired_leases(retry_at + chrono::Duration::seconds(60))
            .await
            .unwrap(),
        1
    );
    let again = store.claim_due(Utc::now(), 10, lease).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 3));
    store.mark_sent(id, Utc::now()).await.unwrap();
    let sent = store.outbox_row(id).await.unwrap().unwrap();
    assert_eq!(
        (sent.status, sent.last_error.as_deref()),
        (OutboxStatus::Sent, None)
    );
    assert_eq!(store.next_due().await.unwrap(), None);

    // Rate limit: automatic mail to one address, case-insensitive, since a time.
    assert_eq!(auto_replies(&store, "taro@acme.example", t0).await, 1);
    assert_eq!(
        auto_replies(&store, "taro@acme.example", Utc::now()).await,
        0
    );
    let mut human = simple(to, 2);
    human.kind = OutboundKind::EngineerReply;
    store.enqueue_outbox(&human, t0).await.unwrap();
    assert_eq!(auto_replies(&store, "TARO@acme.example", t0).await, 1);

    // A permanent SMTP failure (bounces arrive as mail: tests/outbound_e2e.rs).
    let mut other = simple(to, 3);
    other.case = Some(case);
    let other_id = store.enqueue_outbox(&other, t0).await.unwrap().unwrap();
    let claimed = store.claim_due(Utc::now(), 10, lease).await.unwrap();
    assert!(claimed.iter().any(|r| r.id == other_id));
    store
        .mark_failed(other_id, Some(554), "554 5.7.1 Rejected", Utc::now())
        .await
        .unwrap();
    let evs = events(url, case).await;
    let failed: Vec<_> = evs.iter().filter(|(k, _)| k == "delivery_failed").collect();
    assert_eq!(failed.len(), 1, "{evs:?}");
    assert_eq!(failed[0].1["smtp_status"], 554);
    assert_eq!(store.outbox_rows(Some(case)).await.unwrap().len(), 2);
    // What /metrics and /readyz read: the engineer reply is still claimed (sending).
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.sending, counts.sent, counts.failed),
        (0, 1, 1, 1)
    );

    // A failure and the alert that tells of it are one transaction: both or neither,
    // and each alert once (its Message-ID), however often the failure is recorded.
    let mut third = simple(to, 4);
    third.case = Some(case);
    let third_id = store.enqueue_outbox(&third, t0).await.unwrap().unwrap();
    let mut alert = simple("leads@vendor.example", 5);
    alert.case = Some(case);
    alert.kind = TemplateKind::NotificationFailed.into();
    let queued = store
        .mark_failed_alerting(third_id, Some(554), "554 gone", Utc::now(), Some(&alert))
        .await
        .unwrap();
    let rows = store.outbox_rows(Some(case)).await.unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let alert_row = rows
        .iter()
        .find(|r| r.kind == "notification_failed")
        .unwrap();
    assert_eq!(queued, Some(alert_row.id));
    assert_eq!(alert_row.status, OutboxStatus::Pending);
    let again = store
        .mark_failed_alerting(third_id, Some(554), "554 gone", Utc::now(), Some(&alert))
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(store.outbox_rows(Some(case)).await.unwrap().len(), 4);
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test]
async fn sqlite_outbox_contract() {
    let (store, url, _dir) = sqlite_store().await;
    store_contract(store, &url).await;
}

#[tokio::test]
async fn postgres_outbox_contract() {
    let db = PgDatabase::create().await;
    let store = Store::open(&db.url, 4).await.unwrap();
    store_contract(store.clone(), &db.url).await;
    store.close().await;
    db.drop().await;
}

/// `outbox retry` racing a worker's claim: the row turned `sending` between the retry's
/// read and its update, which changed nothing; it used to say "queued again" (and record
/// a `delivery_retried` event) all the same.
#[tokio::test]
async fn postgres_retry_racing_a_claim_says_in_flight_not_queued() {
    use sqlx::Connection;
    let db = PgDatabase::create().await;
    let store = Store::open(&db.url, 4).await.unwrap();
    let id = store
        .enqueue_outbox(&simple(&recipient("race"), 1), Utc::now())
        .await
        .unwrap()
        .unwrap();
    // A worker's claim, not yet committed, holds the row.
    let mut worker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut claim = worker.begin().await.unwrap();
    sqlx::query("UPDATE outbox SET status = 'sending' WHERE id = $1")
        .bind(id)
        .execute(&mut *claim)
        .await
        .unwrap();
    // The retry reads `pending` (the claim is not committed), then waits for the row.
    let retry = tokio::spawn({
        let store = store.clone();
        async move { store.retry_outbox(id, Utc::now()).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    claim.commit().await.unwrap();
    assert_eq!(retry.await.unwrap().unwrap(), Retried::InFlight);
    let row = store.outbox_row(id).await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sending);
    store.close().await;
    db.drop().await;
}

/// Two instances claiming at the same time never get the same row (SKIP LOCKED).
#[tokio::test]
async fn postgres_concurrent_claims_never_overlap() {
    let db = PgDatabase::create().await;
    let a = Store::open(&db.url, 4).await.unwrap();
    let b = Store::open(&db.url, 4).await.unwrap();
    let t0 = Utc::now() - chrono::Duration::minutes(1);
    for i in 0..200 {
        a.enqueue_outbox(&simple(&format!("r{i}@acme.example"), i), t0)
            .await
            .unwrap();
    }
    let claim = |s: Store| async move {
        let mut ids = Vec::new();
        loop {
            let rows = s
                .claim_due(Utc::now(), 7, Duration::from_secs(600))
                .await
                .unwrap();
            if rows.is_empty() {
                return ids;
            }
            ids.extend(rows.iter().map(|r| r.id));
        }
    };
    let (x, y, z) = tokio::join!(claim(a.clone()), claim(b.clone()), claim(a.clone()));
    let mut all: Vec<i64> = x.into_iter().chain(y).chain(z).collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (200, 200), "every row claimed exactly once");
    a.close().await;
    b.close().await;
    db.drop().await;
}

/// Automatic mails queued for `to` since `since` (the rate limit's count).
async fn auto_replies(store: &Store, to: &str, since: DateTime<Utc>) -> i64 {
    let mut work = store.begin_work().await.unwrap();
    let n = work
        .sender_facts("", to, &SentCounting::since(since, since))
        .await
        .unwrap()
        .sent
        .auto_replies;
    work.abandon().await.unwrap();
    n
}
