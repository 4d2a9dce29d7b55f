//! Issue 12: after `kill -9` during delivery the outbox finishes its work. The daemon is
//! killed again and again while it sends acknowledgements to the real SMTP sink; then
//! one `casegate run --once` must leave every case acknowledged and the outbox empty,
//! and the mails sent twice (counted at the sink by Message-ID) must stay within the
//! documented window: at most one per kill, the one whose 250 came before its commit.
//! Also: a second casegate on the same SQLite database is refused, naming the file; and
//! admins see and retry outbox rows (`casegate outbox list|retry`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use casegate::domain::outbound::OutboundKind;
use casegate::store::{NewOutbox, OutboxRow, OutboxStatus, Store, StoreError};
use serde_json::Value;
use support::cli::{cases, ok, run_once};
use support::daemon::Daemon;
use support::pg::PgDatabase;
use support::routing::{import, mail};
use support::{TestCtx, TestEnv, append, smtp_clear_rule, smtp_received, smtp_rule};

const CUSTOMERS: usize = 40;
const KILLS: usize = 8;

fn customer(ctx: &TestCtx, i: usize) -> String {
    format!("c{i}-{}@rheinwerk.de", ctx.user)
}

fn customer_ctx(tag: &str) -> TestCtx {
    customer_ctx_with(tag, "")
}

fn customer_ctx_with(tag: &str, extra: &str) -> TestCtx {
    let ctx = TestCtx::with_config(tag, extra);
    ok(import(
        &ctx,
        "contracts.csv",
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Rheinwerk Automation GmbH,C-3001,premium,ansible;satellite,rheinwerk.de,,DE,2025-01-01,2030-12-31\n",
    ));
    ctx
}

async fn store(ctx: &TestCtx) -> Store {
    Store::open(&format!("sqlite://{}", ctx.db_path.display()), 1)
        .await
        .expect("open the test database")
}

/// Mails received by all customers, counted per (recipient, Message-ID).
fn received(ctx: &TestCtx) -> BTreeMap<(String, String), usize> {
    let sink = TestEnv::get().sink();
    let mut seen = BTreeMap::new();
    for i in 0..CUSTOMERS {
        let to = customer(ctx, i);
        for raw in sink.messages(&to) {
            let id = casegate::mail::parse::sniff_message_id(&raw).expect("a Message-ID");
            *seen.entry((to.clone(), id)).or_insert(0) += 1;
        }
    }
    seen
}

/// How many mails reached the customers: a cheap count of the sink's files, so that a
/// kill follows an arrival closely.
fn arrived(ctx: &TestCtx) -> usize {
    let sink = TestEnv::get().sink();
    (0..CUSTOMERS)
        .filter_map(|i| std::fs::read_dir(sink.rcpt_dir(&customer(ctx, i))).ok())
        .flat_map(|dir| dir.flatten())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".eml")
        })
        .count()
}

/// Every mail of this test at the sink, all recipients (engineer notifications too),
/// counted per (recipient, Message-ID): only the Message-IDs of this database's outbox,
/// so other tests' mail to shared addresses is left out.
fn received_all(rows: &[OutboxRow]) -> BTreeMap<(String, String), usize> {
    let sink = TestEnv::get().sink();
    let ours: BTreeSet<&str> = rows.iter().map(|r| r.message_id.as_str()).collect();
    let recipients: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.recipients.iter().map(|a| a.to_lowercase()))
        .collect();
    let mut seen = BTreeMap::new();
    for to in recipients {
        for raw in sink.messages(&to) {
            let id = casegate::mail::parse::sniff_message_id(&raw).expect("a Message-ID");
            if ours.contains(id.as_str()) {
                *seen.entry((to.clone(), id)).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// The whole double-send window of each sent mail, in microseconds: from the sink's
/// acceptance (its own clock, when the DATA was complete, before its 250 went out) to
/// the log line written right after the row's `sent` commit, so the 250's trip back is
/// in it. For a doubled mail, the last copy accepted before that commit.
fn accept_to_commit_us(rows: &[OutboxRow], log: &str) -> Vec<i64> {
    let sink = TestEnv::get().sink();
    let committed: BTreeMap<i64, i64> = log
        .lines()
        .filter(|l| l.contains("sent mail recorded"))
        .filter_map(|l| {
            let at = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            let id = l
                .split(" id=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((id, at.timestamp_nanos_opt()?))
        })
        .collect();
    let mut v: Vec<i64> = rows
        .iter()
        .filter_map(|r| {
            let done = *committed.get(&r.id)?;
            let accepted = sink
                .received(r.recipients.first()?)
                .into_iter()
                .filter(|m| {
                    casegate::mail::parse::sniff_message_id(&m.raw).as_deref()
                        == Some(r.message_id.as_str())
                })
                .filter_map(|m| m.accepted_at_ns)
                .filter(|&a| a <= done)
                .max()?;
            Some((done - accepted) / 1000)
        })
        .collect();
    v.sort_unstable();
    v
}

/// Percentile of the `commit_us` values (from the 250 to the row's commit) in a log.
fn commit_window_us(log: &str) -> Vec<u64> {
    let mut v: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("commit_us=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_then_run_once_sends_everything_once_within_the_window() {
    // Debug logs carry each sent mail's 250-to-commit time (`commit_us`).
    let ctx = customer_ctx_with("outbox-kill9", "[log]\nlevel = \"info,casegate=debug\"\n");
    for i in 0..CUSTOMERS {
        let raw = mail(
            &format!("k{i}-{}@rheinwerk.de", ctx.user),
            Some("Kai Berger"),
            &customer(&ctx, i),
            &format!("Agent stops after upgrade ({i})"),
            "",
            "The agent stops every night after the upgrade.\nSeverity: 3\n",
        );
        append(&ctx.user, "INBOX", &raw, None).await;
    }

    // Kill the daemon each time a new mail reaches the sink: deliveries are in flight.
    let db = store(&ctx).await;
    let mut stuck_after_kills = 0;
    let mut kills = 0;
    while kills < KILLS && arrived(&ctx) < CUSTOMERS {
        let before = arrived(&ctx);
        let mut daemon = Daemon::start(&ctx, &format!("daemon-{kills}.log"));
        let deadline = Instant::now() + Duration::from_secs(30);
        // Killed right after a new arrival, once its start-up recovery is logged (a copy
        // the previous process had on the wire may land before this one sends).
        while arrived(&ctx) == before || !daemon.log().contains("casegate starting") {
            daemon.assert_running();
            assert!(Instant::now() < deadline, "nothing sent:\n{}", daemon.log());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        daemon.child.kill().expect("kill -9");
        daemon.child.wait().expect("reap the daemon");
        kills += 1;
        let rows = db.outbox_rows(None).await.expect("outbox rows");
        stuck_after_kills += rows
            .iter()
            .filter(|r| r.status == OutboxStatus::Sending)
            .count();
    }
    assert!(
        kills >= 2,
        "the daemon sent everything before a second kill"
    );
    assert!(
        stuck_after_kills > 0,
        "no kill left a row `sending`: the test did not hit a delivery in flight"
    );

    // One run --once finishes the work at once (no lease to wait for).
    let started = Instant::now();
    let out = ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE_LOG", "casegate=debug")
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{summary}\n{log}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "run --once waited for leases"
    );
    assert!(
        summary.contains("recovered from an interrupted run"),
        "{summary}"
    );
    let recovered: usize = summary
        .lines()
        .find(|l| l.starts_with("outbox:"))
        .and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with("recovered from an interrupted run"))
        })
        .and_then(|p| p.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no recovered count: {summary}"));
    // Every row a kill left `sending` was put back by the next start, at once.
    let by_daemons: usize = (0..kills)
        .map(|k| std::fs::read_to_string(ctx.dir.path().join(format!("daemon-{k}.log"))).unwrap())
        .filter_map(|log| {
            let rest = log.split("outbox_recovered=").nth(1)?;
            rest.split_whitespace().next()?.parse::<usize>().ok()
        })
        .sum();
    assert_eq!(
        by_daemons + recovered,
        stuck_after_kills,
        "recovered at start-up: {by_daemons} by the daemons, {recovered} by run --once"
    );

    // Every case has its acknowledgement, sent; nothing is left in the outbox.
    let list = cases(&ctx);
    assert_eq!(list.len(), CUSTOMERS, "{list:#?}");
    let rows = db.outbox_rows(None).await.expect("outbox rows");
    let unsent: Vec<_> = rows
        .iter()
        .filter(|r| r.status != OutboxStatus::Sent)
        .collect();
    assert!(unsent.is_empty(), "outbox not empty: {unsent:#?}");
    for c in &list {
        let number = c["number"].as_str().unwrap();
        let acks = rows
            .iter()
            .filter(|r| r.kind == "acknowledgement")
            .filter(|r| r.case.map(|n| format!("{:08}", n.0)).as_deref() == Some(number))
            .count();
        assert_eq!(acks, 1, "case {number}: {acks} acknowledgements");
    }

    // At the sink: every acknowledgement arrived; doubles at most one per kill.
    let seen = received(&ctx);
    assert_eq!(seen.len(), CUSTOMERS, "{seen:#?}");
    // Doubles over every recipient: engineer notifications count too.
    let all = received_all(&rows);
    let doubled: Vec<_> = all.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        all.values().all(|&n| n <= 2),
        "a mail arrived three times or more: {doubled:?}"
    );
    let logs: String = (0..kills)
        .map(|k| std::fs::read_to_string(ctx.dir.path().join(format!("daemon-{k}.log"))).unwrap())
        .chain(std::iter::once(log.clone()))
        .collect();
    let window = commit_window_us(&logs);
    let whole: Vec<u64> = accept_to_commit_us(&rows, &logs)
        .into_iter()
        .map(|us| u64::try_from(us).unwrap_or(0))
        .collect();
    let pct = |v: &[u64], p: usize| {
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "kill -9 x{kills}: {stuck_after_kills} row(s) left sending, {recovered} recovered, \
         {} mail(s) doubled of {} sent to {} recipient(s); double-send window from the \
         sink's acceptance to the commit over {} mails: p50 {} us, p99 {} us, max {} us \
         (of which from the 250 at the client to the commit, `commit_us`, over {} mails: \
         p50 {} us, p99 {} us, max {} us)",
        doubled.len(),
        rows.len(),
        all.keys().map(|(to, _)| to).collect::<BTreeSet<_>>().len(),
        whole.len(),
        pct(&whole, 50),
        pct(&whole, 99),
        whole.last().copied().unwrap_or(0),
        window.len(),
        pct(&window, 50),
        pct(&window, 99),
        window.last().copied().unwrap_or(0)
    );
    assert!(
        doubled.len() <= kills,
        "{} doubled mails after {kills} kills: {doubled:?}",
        doubled.len()
    );
    assert!(!window.is_empty(), "no commit_us in the logs:\n{log}");
    assert!(
        !whole.is_empty(),
        "no sink acceptance times matched the logs"
    );
    db.close().await;
}

/// The server accepted a mail but recording it failed (`mark_sent` failed all its tries,
/// as on a busy SQLite database): the daemon lives on, records it in its next round and
/// never sends it again (it used to put the row back to `pending` and resend it).
#[tokio::test]
async fn a_failed_mark_sent_without_a_crash_does_not_send_the_mail_twice() {
    let ctx = customer_ctx_with("outbox-unrecorded", "[outbox]\nretry_initial_secs = 1\n");
    let to = customer(&ctx, 0);
    let raw = mail(
        &format!("unrec-{}@rheinwerk.de", ctx.user),
        None,
        &to,
        "Agent down",
        "",
        "x\n",
    );
    append(&ctx.user, "INBOX", &raw, None).await;
    // The first round's four tries fail; the next round's first succeeds.
    let mut daemon = Daemon::start_with_env(
        &ctx,
        "daemon.log",
        &[("CASEGATE_FAILPOINT", "outbox_mark_sent:4")],
    );
    let sink = TestEnv::get().sink();
    assert_eq!(
        sink.wait_for_blocking(&to, 1, Duration::from_secs(15))
            .len(),
        1
    );
    // The first round's tries take 2.6 s, its back-off 1 s: room for a resend (the defect).
    tokio::time::sleep(Duration::from_secs(6)).await;
    daemon.assert_running();
    let log = daemon.log();
    assert!(daemon.stop().await.success());
    assert_eq!(smtp_received(&to).len(), 1, "{log}");
    assert!(log.contains("sent mail recorded late"), "{log}");
    let db = store(&ctx).await;
    let rows = db.outbox_rows(None).await.expect("outbox rows");
    assert!(
        rows.iter().all(|r| r.status == OutboxStatus::Sent),
        "{rows:#?}"
    );
    db.close().await;
}

#[tokio::test]
async fn a_second_casegate_on_the_same_sqlite_database_is_refused() {
    let ctx = customer_ctx("outbox-lock");
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    daemon.wait_log("casegate starting", 1).await;
    let out = ctx
        .casegate(&["run", "--once"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second process ran: {err}");
    assert!(
        err.contains(&ctx.db_path.display().to_string())
            && err.contains("in use by another casegate process"),
        "{err}"
    );
    daemon.assert_running();
    assert!(daemon.stop().await.success());
    // Once the first has stopped, the database is free again.
    run_once(&ctx);
}

/// A symlink to the database names the same database: it takes the same lock (it took
/// `<link>.lock`, a second lock, so two senders ran on one outbox). And the outbox is
/// claimed only with the lock: the premise of the start-up recovery is enforced.
#[tokio::test]
async fn a_symlink_to_the_sqlite_database_takes_the_same_lock_and_claims_need_the_lock() {
    let ctx = customer_ctx("outbox-symlink");
    let link = ctx.dir.path().join("link.db");
    std::os::unix::fs::symlink(&ctx.db_path, &link).expect("symlink");
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    daemon.wait_log("casegate starting", 1).await;
    let by_link = Store::open(&format!("sqlite://{}", link.display()), 1)
        .await
        .expect("open through the symlink");
    match by_link.lock_sole_user() {
        Err(StoreError::InUse { .. }) => {}
        other => panic!("a second lock through a symlink: {other:?}"),
    }
    match by_link
        .claim_due(chrono::Utc::now(), 1, Duration::from_secs(60))
        .await
    {
        Err(StoreError::Unlocked { database }) => assert!(database.ends_with("link.db")),
        other => panic!("claimed without the lock: {other:?}"),
    }
    by_link.close().await;
    daemon.assert_running();
    assert!(daemon.stop().await.success());
}

#[tokio::test]
async fn outbox_list_shows_the_last_error_and_retry_sends_failed_mail_again() {
    let ctx = customer_ctx("outbox-admin");
    let to = customer(&ctx, 0);
    let raw = mail(
        &format!("adm-{}@rheinwerk.de", ctx.user),
        None,
        &to,
        "Agent down",
        "",
        "x\n",
    );
    append(&ctx.user, "INBOX", &raw, None).await;
    smtp_rule(&to, "554");
    let summary = run_once(&ctx);
    assert!(summary.contains("1 failed"), "{summary}");
    smtp_clear_rule(&to);

    let listed = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["outbox", "list", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(ctx.casegate(&all).output().unwrap())).unwrap()
    };
    let failed = listed(&["--status", "failed"]);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["kind"], "acknowledgement");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("554")),
        "{failed:#?}"
    );
    let table = ok(ctx.casegate(&["outbox", "list"]).output().unwrap());
    assert!(table.contains("failed") && table.contains("554"), "{table}");
    let id = failed[0]["id"].as_i64().unwrap().to_string();

    let out = ok(ctx
        .casegate(&["outbox", "retry", "--failed"])
        .output()
        .unwrap());
    assert!(out.contains("1 failed mail(s) queued again"), "{out}");
    assert!(listed(&["--status", "failed"]).is_empty());
    let summary = run_once(&ctx);
    assert!(summary.contains("outbox: 1 sent"), "{summary}");
    assert_eq!(smtp_received(&to).len(), 1);
    assert_eq!(listed(&["--status", "sent"]).len(), 1);

    // A sent row is never sent twice; an unknown id is an error.
    let again = ctx.casegate(&["outbox", "retry", &id]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("sent already"));
    let none = ctx
        .casegate(&["outbox", "retry", "999999"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no outbox row 999999"));
    let bad = ctx
        .casegate(&["outbox", "list", "--status", "lost"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // The retry is in the case's audit trail.
    let case = support::cli::show(&ctx, "1");
    let retried: Vec<_> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "delivery_retried")
        .collect();
    assert_eq!(retried.len(), 1, "{case:#}");
    assert_eq!(retried[0]["actor"], "admin");
}

/// PostgreSQL is shared by several instances: a `sending` row may be another live
/// instance's delivery, so `run --once` neither touches it nor waits for it; it says so
/// and exits. Once that lease has run out (its instance died), the next round sends it.
#[tokio::test]
async fn on_postgresql_run_once_finishes_without_waiting_for_another_instances_lease() {
    let pg = PgDatabase::create().await;
    let ctx = TestCtx::with_config("outbox-pg", &format!("[database]\nurl = \"{}\"\n", pg.url));
    let db = Store::open(&pg.url, 2).await.expect("open PostgreSQL");
    let to = customer(&ctx, 0);
    let id = format!("pg-lease-{}@example.com", ctx.user);
    let raw = format!(
        "From: support@example.com\r\nTo: {to}\r\nSubject: leased\r\nMessage-ID: <{id}>\r\n\r\nx\r\n"
    );
    let row = NewOutbox {
        case: None,
        kind: OutboundKind::EngineerReply,
        message_id: id.clone(),
        sender: "support@example.com".into(),
        recipients: vec![to.clone()],
        raw: raw.into_bytes(),
    };
    let now = chrono::Utc::now();
    db.enqueue_outbox(&row, now).await.unwrap();
    // Another instance claims it with a ten-minute lease.
    let claimed = db
        .claim_due(now, 10, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let started = Instant::now();
    let summary = run_once(&ctx);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "run --once waited"
    );
    assert!(summary.contains("outbox: 0 sent"), "{summary}");
    assert!(
        summary.contains("1 being sent by another instance"),
        "{summary}"
    );
    assert!(smtp_received(&to).is_empty());
    assert!(
        !ctx.db_path.with_extension("db.lock").exists(),
        "no SQLite lock file for a PostgreSQL database"
    );

    // That instance died: its lease runs out (moved into the past here), then it goes out.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET next_attempt_at = 0 WHERE status = 'sending'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let summary = run_once(&ctx);
    assert!(
        summary.contains("outbox: 1 sent")
            && summary.contains("1 recovered from an interrupted run"),
        "{summary}"
    );
    assert_eq!(smtp_received(&to).len(), 1);
    db.close().await;
    pg.drop().await;
}
