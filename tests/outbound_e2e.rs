//! Issue 4 acceptance, end to end: customer mail through the real Dovecot (or `casegate
//! ingest`), `casegate run --once` / the daemon, and what reaches the real SMTP server:
//! well-formed, threaded acknowledgements in English and Japanese; exactly-once delivery
//! across an SMTP outage and a crash; 5xx and bounces recorded on the case; automatic
//! mail, our own mail and responder loops never answered beyond the rate limit.

mod support;

use std::time::{Duration, Instant};

use casegate::mail::Inbound;
use casegate::mail::parse::{ParseLimits, parse};
use chrono::{DateTime, Utc};
use serde_json::Value;
use support::cli::{cases, ingest_with_env as ingest, ok, run_once, show};
use support::daemon::Daemon;
use support::mail::{MailBuilder, dsn, iso2022jp_mail};
use support::smtp::{is_our_message_id, is_our_return_path};
use support::{SinkMessage, SmtpSink, TestCtx, append, smtp_clear_rule, smtp_received, smtp_rule};

// ---------------------------------------------------------------------------
// helpers

fn events_of<'a>(case: &'a Value, kind: &str) -> Vec<&'a Value> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn messages_of<'a>(case: &'a Value, direction: &str) -> Vec<&'a Value> {
    case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == direction)
        .collect()
}

/// A plain UTF-8 customer mail; `extra_headers` end in CRLF.
fn mail(mid: &str, from: &str, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    MailBuilder::new()
        .header("From", from)
        .header("To", "support@example.com")
        .header("Subject", subject)
        .header("Date", "Fri, 27 Nov 2026 09:00:00 +0000")
        .message_id(mid)
        .headers(extra_headers)
        .utf8_text()
        .header("Content-Transfer-Encoding", "8bit")
        .body_verbatim(format!("{}\r\n", body.replace('\n', "\r\n")))
}

fn parsed(m: &SinkMessage) -> Inbound {
    parse(&m.raw, &ParseLimits::default())
        .unwrap_or_else(|e| panic!("our own mail does not parse: {e}"))
}

/// The raw value of the first top-level header `name` (unfolded), if any.
fn raw_header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            let mut value = v.trim().to_string();
            while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(lines.next().unwrap().trim());
            }
            return Some(value);
        }
    }
    None
}

fn import(ctx: &TestCtx, csv_rows: &str) {
    let path = ctx.dir.path().join("contracts.csv");
    std::fs::write(
        &path,
        format!("account,contract_id,tier,products,domains,contacts,country,start,end\n{csv_rows}"),
    )
    .unwrap();
    ok(ctx
        .casegate(&["contracts", "import", path.to_str().unwrap()])
        .output()
        .unwrap());
}

/// A context whose customers at rheinwerk.de (DE, English) and acme.co.jp (JP) hold
/// premium contracts.
fn customer_ctx(tag: &str, extra: &str) -> TestCtx {
    let ctx = TestCtx::with_config(tag, extra);
    import(
        &ctx,
        "Rheinwerk Automation GmbH,C-3001,premium,ansible;satellite,rheinwerk.de,,DE,2025-01-01,2030-12-31\n\
         株式会社アクメ,C-1001,premium,ansible;satellite,acme.co.jp,,JP,2025-04-01,2030-03-31\n",
    );
    ctx
}

/// `first_response_due` of a case as the templates show it: `2026-11-30 10:00 JST (Asia/Tokyo)`.
fn due_text(case: &Value, tz: chrono_tz::Tz) -> String {
    let due: DateTime<Utc> = case["sla"]["first_response_due"]
        .as_str()
        .unwrap_or_else(|| panic!("no first_response_due: {case:#}"))
        .parse()
        .unwrap();
    let local = due.with_timezone(&tz);
    format!("{} ({})", local.format("%Y-%m-%d %H:%M %Z"), tz.name())
}

/// The `N` of `outbox: N sent` in a `run --once` summary.
fn sent(summary: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with("outbox:"))
        .unwrap_or_else(|| panic!("no outbox line: {summary}"));
    line.trim_start_matches("outbox:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Checks the headers every automatic reply of ours carries.
fn assert_our_reply(m: &SinkMessage, p: &Inbound, to: &str, case: &str, n: u32, answered: &str) {
    assert_our_reply_as(m, p, "Example Support", to, case, n, answered)
}

fn assert_our_reply_as(
    m: &SinkMessage,
    p: &Inbound,
    name: &str,
    to: &str,
    case: &str,
    n: u32,
    answered: &str,
) {
    assert!(is_our_return_path(&m.mail_from, case, n), "{}", m.mail_from);
    assert_eq!(m.rcpt_to, to);
    assert!(
        m.raw.is_ascii(),
        "7-bit clean on the wire (encoded words, transfer encoding)"
    );
    assert_eq!(p.from.email, "support@example.com");
    assert_eq!(
        p.from.name.as_deref(),
        Some(name),
        "From carries the display name"
    );
    assert_eq!(
        p.to.iter().map(|a| a.email.as_str()).collect::<Vec<_>>(),
        vec![to]
    );
    let id = p.message_id.clone().unwrap_or_default();
    assert!(is_our_message_id(&id, case, n), "{id}");
    assert_eq!(raw_header(&m.raw, "Message-ID"), Some(format!("<{id}>")));
    assert_eq!(
        p.in_reply_to,
        vec![answered.to_string()],
        "In-Reply-To is the customer's Message-ID"
    );
    assert!(
        p.references.iter().any(|r| r == answered),
        "References include the customer's Message-ID: {:?}",
        p.references
    );
    assert_eq!(
        p.references.last().map(String::as_str),
        Some(answered),
        "the answered mail comes last in References"
    );
    assert_eq!(p.headers.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(raw_header(&m.raw, "Date").is_some());
    assert!(
        p.subject.contains(&format!("[Case #{case}]")),
        "{}",
        p.subject
    );
}

// ---------------------------------------------------------------------------
// acknowledgements

#[tokio::test]
async fn english_acknowledgement_has_threading_headers_case_number_and_due_time() {
    let ctx = customer_ctx("ack-en", "");
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    let mid = format!("awx-{u}@rheinwerk.de");
    let earlier = format!("colleague-{u}@rheinwerk.de");
    let refs = format!("References: <{earlier}>\r\nIn-Reply-To: <{earlier}>\r\n");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &mid,
            &format!("Klaus Becker <{customer}>"),
            "AWX jobs time out after the upgrade",
            &refs,
            "Hello,\n\nsince the upgrade our AWX jobs time out.\n\nSeverity: 2\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("1 new case(s)") && summary.contains("outbox: 1 sent"),
        "{summary}"
    );

    let case = show(&ctx, "1");
    assert_eq!(case["entitlement"], "entitled", "{case:#}");
    let got = smtp_received(&customer);
    assert_eq!(got.len(), 1, "exactly one acknowledgement");
    let p = parsed(&got[0]);
    assert_our_reply(&got[0], &p, &customer, "00000001", 1, &mid);
    assert_eq!(
        p.subject,
        "Re: [Case #00000001] AWX jobs time out after the upgrade"
    );
    assert_eq!(
        p.references,
        vec![earlier.clone(), mid.clone()],
        "the customer's thread is kept"
    );
    for phrase in [
        "Hello Klaus Becker,".to_string(),
        "case 00000001".to_string(),
        "Severity:              2 (severely impaired)".to_string(),
        format!(
            "First response due by: {}",
            due_text(&case, chrono_tz::Europe::Berlin)
        ),
        "[Case #00000001]".to_string(),
        "Best regards,".to_string(),
    ] {
        assert!(
            p.text.contains(&phrase),
            "{phrase:?} missing from:\n{}",
            p.text
        );
    }
    // The case shows what the customer was told, under the same Message-ID.
    let out = messages_of(&case, "out");
    assert_eq!(out.len(), 1, "{case:#}");
    assert_eq!(out[0]["message_id"], p.message_id.unwrap().as_str());
    assert_eq!(out[0]["subject"], p.subject.as_str());
}

#[tokio::test]
async fn japanese_acknowledgement_decodes_the_subject_and_greets_properly() {
    let ctx = customer_ctx("ack-ja", "[gateway]\nsupport_name = \"Example サポート\"\n");
    let u = ctx.user.clone();
    let customer = format!("yamada-{u}@acme.co.jp");
    let mid = format!("ja-{u}@acme.co.jp");
    let subject = "【至急】ジョブテンプレート実行時にタイムアウトが発生します";
    let body = "サポートご担当者様\n\nいつもお世話になっております。株式会社アクメの山田です。\n\
                ジョブテンプレートを実行するとタイムアウトが発生します。\n\
                ①再起動は実施済みです。\n重大度：2\n\nよろしくお願いいたします。\n";
    append(
        &ctx.user,
        "INBOX",
        &iso2022jp_mail(&mid, "山田 太郎", &customer, subject, body),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("outbox: 1 sent"), "{summary}");

    let case = show(&ctx, "1");
    assert_eq!(
        (case["language"].as_str(), case["queue"].as_str()),
        (Some("ja"), Some("ansible-ja")),
        "{case:#}"
    );
    assert_eq!(case["subject"], subject);
    let got = smtp_received(&customer);
    assert_eq!(got.len(), 1);
    let p = parsed(&got[0]);
    assert_our_reply_as(
        &got[0],
        &p,
        "Example サポート",
        &customer,
        "00000001",
        1,
        &mid,
    );
    assert!(
        raw_header(&got[0].raw, "From").unwrap().contains("=?"),
        "a Japanese display name goes out as encoded words"
    );
    assert_eq!(
        p.subject,
        format!("Re: [Case #00000001] {subject}"),
        "the customer's Japanese subject survives the round trip"
    );
    let raw_subject = raw_header(&got[0].raw, "Subject").unwrap();
    assert!(
        raw_subject.contains("=?"),
        "a Japanese subject goes out as encoded words: {raw_subject}"
    );
    for phrase in [
        "株式会社アクメ\n山田 太郎 様".to_string(),
        "いつもお世話になっております。".to_string(),
        "Example サポートでございます。".to_string(),
        "ケース番号　：00000001".to_string(),
        "重大度　　　：2（業務への重大な影響）".to_string(),
        format!("初回回答期限：{}", due_text(&case, chrono_tz::Asia::Tokyo)),
        "JST (Asia/Tokyo)".to_string(),
        "「[Case #00000001]」".to_string(),
        "何卒よろしくお願いいたします。".to_string(),
    ] {
        assert!(
            p.text.contains(&phrase),
            "{phrase:?} missing from:\n{}",
            p.text
        );
    }
    assert!(
        !p.text.contains("Hello"),
        "no English in a Japanese acknowledgement:\n{}",
        p.text
    );
}

// ---------------------------------------------------------------------------
// delivery: outage, 5xx, crash

#[tokio::test]
async fn smtp_outage_during_a_reply_then_restart_delivers_exactly_once() {
    let mut sink = SmtpSink::start();
    sink.stop();
    let extra = format!(
        "[smtp]\nport = {}\n[outbox]\nretry_initial_secs = 1\n",
        sink.port
    );
    let ctx = customer_ctx("outage", &extra);
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("o1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "It is down.\n",
        ),
        None,
    )
    .await;

    let summary = run_once(&ctx);
    assert!(
        summary.contains("outbox: 0 sent, 1 to retry, 0 failed"),
        "server down: the reply stays queued: {summary}"
    );
    assert!(sink.sink.messages(&customer).is_empty());
    let case = show(&ctx, "1");
    assert!(
        events_of(&case, "delivery_failed").is_empty(),
        "an outage is not a failure: {case:#}"
    );

    sink.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut total = 0;
    while total == 0 {
        assert!(
            Instant::now() < deadline,
            "the queued reply was never sent after the restart"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        total += sent(&run_once(&ctx));
    }
    assert_eq!(total, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sent(&run_once(&ctx)), 0, "nothing left to send");
    let got = sink.sink.received(&customer);
    assert_eq!(got.len(), 1, "delivered exactly once");
    let id = parsed(&got[0]).message_id.unwrap();
    assert!(is_our_message_id(&id, "00000001", 1), "{id}");
}

#[tokio::test]
async fn a_5xx_answer_becomes_a_delivery_failed_event_on_the_case() {
    let ctx = customer_ctx("smtp554", "");
    let u = ctx.user.clone();
    let customer = format!("gone-{u}@rheinwerk.de");
    smtp_rule(&customer, "554");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("f1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "It is down.\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    let again = run_once(&ctx);
    smtp_clear_rule(&customer);
    assert!(
        summary.contains("outbox: 0 sent, 0 to retry, 1 failed"),
        "{summary}"
    );
    assert!(
        again.contains("outbox: 0 sent, 0 to retry, 0 failed"),
        "a failed mail is not retried: {again}"
    );
    assert!(smtp_received(&customer).is_empty());
    let case = show(&ctx, "1");
    let failed = events_of(&case, "delivery_failed");
    assert_eq!(failed.len(), 1, "{case:#}");
    let d = &failed[0]["detail"];
    assert_eq!(d["smtp_status"], 554, "{d:#}");
    let id = d["message_id"].as_str().unwrap();
    assert!(is_our_message_id(id, "00000001", 1), "{id}");
    assert_eq!(d["source"], "smtp");
    assert_eq!(d["recipients"], serde_json::json!([customer]));
}

#[tokio::test]
async fn a_4xx_answer_is_retried_with_backoff_and_delivered_once() {
    let ctx = customer_ctx("smtp451", "[outbox]\nretry_initial_secs = 2\n");
    let u = ctx.user.clone();
    let customer = format!("busy-{u}@rheinwerk.de");
    smtp_rule(&customer, "451 1");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("r1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("outbox: 0 sent, 1 to retry, 0 failed"),
        "{summary}"
    );
    assert!(smtp_received(&customer).is_empty());
    // Not due again before the backoff (2 s) has passed.
    let failed_at = Instant::now();
    let early = run_once(&ctx);
    if failed_at.elapsed() < Duration::from_secs(1) {
        assert!(
            early.contains("outbox: 0 sent, 0 to retry, 0 failed"),
            "retried before the backoff: {early}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut total = sent(&early);
    while total == 0 {
        assert!(Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(300)).await;
        total += sent(&run_once(&ctx));
    }
    smtp_clear_rule(&customer);
    assert_eq!(smtp_received(&customer).len(), 1, "delivered exactly once");
    let case = show(&ctx, "1");
    assert!(
        events_of(&case, "delivery_failed").is_empty(),
        "a temporary failure is not a failure: {case:#}"
    );
}

/// Temporary failures are retried only up to `outbox.max_age_hours` (default 48):
/// then the mail fails with a `delivery_failed` event, as after a 5xx.
#[tokio::test]
async fn a_mail_undeliverable_for_longer_than_the_max_age_fails_with_an_event() {
    use sqlx::{Connection, Executor};
    let mut sink = SmtpSink::start();
    sink.stop();
    let ctx = customer_ctx("max-age", &format!("[smtp]\nport = {}\n", sink.port));
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("m1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    assert!(run_once(&ctx).contains("outbox: 0 sent, 1 to retry, 0 failed"));
    // Two days pass with the relay down (simulated: the row was queued 49 hours ago
    // and is due now).
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", ctx.db_path.display()))
        .await
        .unwrap();
    let long_ago = (Utc::now() - chrono::Duration::hours(49)).timestamp_millis();
    db.execute(sqlx::AssertSqlSafe(format!(
        "UPDATE outbox SET created_at = {long_ago}, next_attempt_at = 0"
    )))
    .await
    .unwrap();
    db.close().await.unwrap();
    let summary = run_once(&ctx);
    assert!(
        summary.contains("outbox: 0 sent, 0 to retry, 1 failed"),
        "{summary}"
    );
    let case = show(&ctx, "1");
    let failed = events_of(&case, "delivery_failed");
    assert_eq!(failed.len(), 1, "{case:#}");
    assert!(
        failed[0]["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("gave up"),
        "{case:#}"
    );
    sink.resume();
    assert!(
        run_once(&ctx).contains("outbox: 0 sent, 0 to retry, 0 failed"),
        "a failed mail stays failed"
    );
    assert!(sink.sink.messages(&customer).is_empty());
}

#[tokio::test]
async fn mail_pending_in_the_outbox_survives_a_restart_and_goes_out_once() {
    let ctx = customer_ctx("pending", "");
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    // `ingest` (MTA pipe mode) commits the case and queues the reply, and exits: it
    // never talks SMTP. The mail is in the outbox only.
    let out = ok(ingest(
        &ctx,
        &mail(
            &format!("p1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        &[],
    ));
    assert!(out.contains("opened case 00000001"), "{out}");
    assert!(smtp_received(&customer).is_empty());
    assert_eq!(sent(&run_once(&ctx)), 1, "the next process delivers it");
    assert_eq!(sent(&run_once(&ctx)), 0, "and only once");
    assert_eq!(smtp_received(&customer).len(), 1);
}

/// The documented at-most-once-resend window (src/outbox/worker.rs): a crash after the
/// server's 250 but before the row is marked sent leaves the row `sending`. The next
/// `run --once` holds the SQLite database alone, so the row's sender is dead: it is put
/// back and sent again at once (issue 12: it used to wait out its lease, 270 s), with the
/// same Message-ID (so the receiving client can recognise the copy), and never a third time.
#[tokio::test]
async fn a_crash_right_after_the_server_accepted_resends_once_at_the_next_start() {
    use sqlx::{Connection, Executor, Row};
    let ctx = customer_ctx("after-accept", "");
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    ok(ingest(
        &ctx,
        &mail(
            &format!("a1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        &[],
    ));
    let crashed = ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE_FAILPOINT", "outbox_after_accept")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the failpoint kills the process");
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("failpoint outbox_after_accept"));
    assert_eq!(
        smtp_received(&customer).len(),
        1,
        "the server accepted the mail before the crash"
    );
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", ctx.db_path.display()))
        .await
        .unwrap();
    let row = db
        .fetch_one("SELECT status, attempts FROM outbox")
        .await
        .unwrap();
    assert_eq!(
        (row.get::<String, _>(0), row.get::<i64, _>(1)),
        ("sending".to_string(), 1)
    );
    db.close().await.unwrap();

    // Restarted at once: recovered and sent again, without waiting for the lease.
    let summary = run_once(&ctx);
    assert_eq!(sent(&summary), 1, "{summary}");
    assert!(
        summary.contains("1 recovered from an interrupted run"),
        "{summary}"
    );
    assert_eq!(sent(&run_once(&ctx)), 0);
    let got = smtp_received(&customer);
    assert_eq!(got.len(), 2, "the one documented resend, never more");
    let ids: Vec<Option<String>> = got.iter().map(|m| parsed(m).message_id).collect();
    assert_eq!(ids[0], ids[1], "the resent copy has the same Message-ID");
}

#[tokio::test]
async fn killing_the_daemon_with_mail_pending_then_restarting_delivers_it_once() {
    let mut sink = SmtpSink::start();
    sink.stop();
    let extra = format!(
        "[smtp]\nport = {}\n[outbox]\nretry_initial_secs = 1\n[imap]\npoll_interval_secs = 2\n",
        sink.port
    );
    let ctx = customer_ctx("kill9", &extra);
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon::start(&ctx, "daemon1.log");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("k1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    support::wait_for_count(&ctx.user, "Processed", 1, Duration::from_secs(15)).await;
    daemon.wait_log("will retry", 1).await; // the sender tried, the server is down
    // kill -9: no chance to clean up.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    drop(daemon);
    assert!(sink.sink.messages(&customer).is_empty());

    sink.resume();
    let daemon = Daemon::start(&ctx, "daemon2.log");
    sink.sink
        .wait_for(&customer, 1, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = daemon.stop().await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        sink.sink.messages(&customer).len(),
        1,
        "delivered once after the restart"
    );
    assert_eq!(cases(&ctx).len(), 1);
}

// ---------------------------------------------------------------------------
// etiquette: automatic mail, loops, our own address, bounces

#[tokio::test]
async fn auto_replies_are_filed_but_never_answered() {
    let ctx = customer_ctx("auto-reply", "");
    let u = ctx.user.clone();
    let customer = format!("klaus-{u}@rheinwerk.de");
    let mid = format!("c1-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(&mid, &customer, "Agent down", "", "It is down.\n"),
        None,
    )
    .await;
    run_once(&ctx);
    let ack = &parsed(&smtp_received(&customer)[0]).message_id.unwrap();

    // The customer's out-of-office answers our acknowledgement; their ticket system
    // answers it with a new ticket (another gateway: Auto-Submitted, own subject tag);
    // and a few other automatic mails open new threads.
    let ooo = format!(
        "In-Reply-To: <{ack}>\r\nReferences: <{mid}> <{ack}>\r\nAuto-Submitted: auto-replied\r\n"
    );
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("ooo-{u}@rheinwerk.de"),
            &customer,
            "Automatic reply: Re: [Case #00000001] Agent down",
            &ooo,
            "I am out of the office until Monday.\n",
        ),
        None,
    )
    .await;
    let gateway = format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ack}>\r\n");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("t77-{u}@rheinwerk.de"),
            &format!("helpdesk-{u}@rheinwerk.de"),
            "[Ticket #77] Re: [Case #00000001] Agent down",
            &gateway,
            "We received your request (ticket 77).\n",
        ),
        None,
    )
    .await;
    let noreply = format!("noreply-{u}@rheinwerk.de");
    let fresh = [
        (
            customer.as_str(),
            "Auto-Submitted: auto-generated\r\n",
            "Nightly report",
        ),
        (customer.as_str(), "Precedence: bulk\r\n", "Newsletter"),
        (
            customer.as_str(),
            "List-Id: <users.lists.rheinwerk.de>\r\n",
            "[users] Agent down",
        ),
        (customer.as_str(), "Return-Path: <>\r\n", "Delivery notice"),
        (noreply.as_str(), "", "Your password expires soon"),
        ("postmaster@rheinwerk.de", "", "Mailbox quota"),
    ];
    for (i, (from, h, s)) in fresh.iter().enumerate() {
        append(
            &ctx.user,
            "INBOX",
            &mail(
                &format!("auto{i}-{u}@rheinwerk.de"),
                from,
                s,
                h,
                "automatic\n",
            ),
            None,
        )
        .await;
    }
    let summary = run_once(&ctx);
    assert!(
        summary.contains("outbox: 0 sent"),
        "nothing answers automatic mail: {summary}"
    );
    assert_eq!(smtp_received(&customer).len(), 1);
    assert!(
        smtp_received(&format!("helpdesk-{u}@rheinwerk.de")).is_empty(),
        "the other gateway gets nothing: no loop"
    );
    assert!(smtp_received(&noreply).is_empty());

    let first = show(&ctx, "1");
    assert_eq!(
        messages_of(&first, "in").len(),
        3,
        "both replies are filed on the case: {first:#}"
    );
    let list = cases(&ctx);
    assert_eq!(list.len(), 1 + fresh.len(), "{list:#?}");
    for c in &list[1..] {
        let c = show(&ctx, c["number"].as_str().unwrap());
        assert!(messages_of(&c, "out").is_empty(), "{c:#}");
        let why = events_of(&c, "auto_reply_suppressed");
        assert_eq!(
            why.len(),
            1,
            "the suppressed acknowledgement is on record: {c:#}"
        );
        assert!(
            why[0]["detail"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("automatic mail"),
            "{c:#}"
        );
    }
}

/// Two auto-responders: the customer's ticket system does not mark its mail as
/// automatic and answers every acknowledgement with a new ticket mail. The loop stops
/// at gateway.auto_reply_limit_per_hour (default 5) acknowledgements.
#[tokio::test]
async fn a_responder_loop_stops_within_the_rate_limit() {
    let ctx = customer_ctx("loop", "");
    let u = ctx.user.clone();
    let helpdesk = format!("helpdesk-{u}@rheinwerk.de");
    let rounds = 8;
    for i in 0..rounds {
        let subject = format!("Ticket #{} received: your request", 1000 + i);
        append(
            &ctx.user,
            "INBOX",
            &mail(
                &format!("tk{i}-{u}@rheinwerk.de"),
                &helpdesk,
                &subject,
                "",
                "Thank you, we have received your mail.\n",
            ),
            None,
        )
        .await;
        run_once(&ctx);
    }
    assert_eq!(
        smtp_received(&helpdesk).len(),
        5,
        "at most 5 automatic mails an hour to one sender"
    );
    let list = cases(&ctx);
    assert_eq!(list.len(), rounds as usize, "every mail is still filed");
    for c in &list[5..] {
        let c = show(&ctx, c["number"].as_str().unwrap());
        let why = events_of(&c, "auto_reply_suppressed");
        assert!(
            why.iter().any(|e| e["detail"]["reason"]
                .as_str()
                .unwrap()
                .contains("rate limit of 5")),
            "{c:#}"
        );
    }
}

#[tokio::test]
async fn mail_from_our_own_address_is_never_answered() {
    let ctx = customer_ctx("own-address", "");
    // Even with a contract that would cover example.com.
    import(
        &ctx,
        "Example,C-OWN,premium,ansible,example.com,,US,2025-01-01,2030-12-31\n",
    );
    let u = ctx.user.clone();
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("own1-{u}@example.com"),
            "Example Support <support@example.com>",
            "Re: [Case #00000099] Agent down",
            "",
            "our own mail came back\n",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("own2-{u}@example.com"),
            "SUPPORT@Example.COM",
            "Forwarded loop",
            "",
            "again\n",
        ),
        None,
    )
    .await;
    // Our plus addresses (support+ansible@) are ours too.
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("own3-{u}@example.com"),
            "support+ansible@example.com",
            "Via the product alias",
            "",
            "again\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("3 new case(s)")
            && summary.contains("outbox: 0 sent, 0 to retry, 0 failed"),
        "{summary}"
    );
    for c in cases(&ctx) {
        let c = show(&ctx, c["number"].as_str().unwrap());
        assert!(messages_of(&c, "out").is_empty(), "{c:#}");
        let why = events_of(&c, "auto_reply_suppressed");
        assert!(
            why.iter()
                .any(|e| e["detail"]["reason"].as_str().unwrap().contains("loop")),
            "{c:#}"
        );
    }
}

#[tokio::test]
async fn a_bounce_is_attached_to_its_case_and_never_opens_one() {
    let ctx = customer_ctx("bounce", "");
    let u = ctx.user.clone();
    let customer = format!("gone-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("b1-{u}@rheinwerk.de"),
            &customer,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let ours = smtp_received(&customer);
    assert_eq!(ours.len(), 1);

    // The customer's server bounces our acknowledgement: the DSN carries it whole.
    append(
        &ctx.user,
        "INBOX",
        &dsn(
            "mx.rheinwerk.de",
            &u,
            &ours[0].mail_from,
            &ours[0].raw,
            "message/rfc822",
        ),
        None,
    )
    .await;
    // A DSN about a mail we never sent is held, and opens no case either.
    let stranger = &MailBuilder::new()
        .header("From", "Someone <someone@else.example>")
        .header("To", "x@else.example")
        .header("Subject", "hi")
        .message_id("never-ours@else.example")
        .body("hello\n");
    append(
        &ctx.user,
        "INBOX",
        &dsn(
            "mx.rheinwerk.de",
            &format!("{u}-x"),
            "support@example.com",
            stranger,
            "message/rfc822",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("0 new case(s), 1 added to existing cases")
            && summary.contains("1 quarantined"),
        "{summary}"
    );
    assert!(
        summary.contains("outbox: 0 sent"),
        "a bounce is never answered: {summary}"
    );
    assert_eq!(cases(&ctx).len(), 1, "a bounce never opens a case");
    let case = show(&ctx, "1");
    let failed = events_of(&case, "delivery_failed");
    assert_eq!(failed.len(), 1, "{case:#}");
    assert_eq!(failed[0]["detail"]["source"], "bounce");
    assert_eq!(
        failed[0]["detail"]["message_id"],
        parsed(&ours[0]).message_id.unwrap()
    );
    let inbound = messages_of(&case, "in");
    assert_eq!(inbound.len(), 2, "the bounce is kept on the case: {case:#}");
    assert_eq!(inbound[1]["role"], "system");
    assert!(smtp_received("mailer-daemon@mx.rheinwerk.de").is_empty());
    let held: Value = serde_json::from_str(&ok(ctx
        .casegate(&["quarantine", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert!(
        held.as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"].as_str().unwrap().contains("bounce")),
        "{held:#}"
    );
}

/// A SIGHUP after an `[smtp]` edit: either the new relay is used, or the reload log
/// says that SMTP changes need a restart (the outbox worker keeps its connection
/// settings for its lifetime).
#[tokio::test]
async fn a_reload_applies_or_flags_a_changed_smtp_relay() {
    let old = SmtpSink::start();
    let new = SmtpSink::start();
    let base = "[imap]\npoll_interval_secs = 2\n";
    let ctx = customer_ctx(
        "smtp-reload",
        &format!("{base}[smtp]\nport = {}\n", old.port),
    );
    let u = ctx.user.clone();
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    let first = format!("first-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("sr1-{u}@rheinwerk.de"),
            &first,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    old.sink.wait_for(&first, 1, Duration::from_secs(15)).await;

    support::write_config_with(
        ctx.dir.path(),
        &ctx.user,
        &ctx.db_path,
        &format!("{base}[smtp]\nport = {}\n", new.port),
    );
    daemon.signal("HUP");
    daemon.wait_log("reload:", 1).await;
    let second = format!("second-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("sr2-{u}@rheinwerk.de"),
            &second,
            "Agent down again",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.sink.messages(&second).is_empty() && new.sink.messages(&second).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the second acknowledgement was not sent at all"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = daemon.log();
    let flagged = log.lines().any(|l| {
        l.contains("reload") && l.to_lowercase().contains("smtp") && l.contains("restart")
    });
    assert!(
        !new.sink.messages(&second).is_empty() || flagged,
        "after the reload the mail went to the old relay, and the log said nothing about it:\n{log}"
    );
    assert_eq!(daemon.stop().await.code(), Some(0));
}

/// Message-IDs in the wild are not always `left@right` (old JavaMail/Lotus ids, quoted
/// local parts, ids with two `@`). A customer's odd Message-ID or References entry must
/// not cost them their acknowledgement.
#[tokio::test]
async fn an_odd_message_id_from_the_customer_does_not_lose_the_acknowledgement() {
    let ctx = customer_ctx("odd-mid", "");
    let u = ctx.user.clone();
    let no_at = format!("alice-{u}@rheinwerk.de");
    let odd_ref = format!("bob-{u}@rheinwerk.de");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("20261127.{u}.JavaMail.app"),
            &no_at,
            "Agent down",
            "",
            "x\n",
        ),
        None,
    )
    .await;
    let refs = format!(
        "References: <legacy.{u}.lotus> <r2-{u}@rheinwerk.de>\r\nIn-Reply-To: <r2-{u}@rheinwerk.de>\r\n"
    );
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("r3-{u}@rheinwerk.de"),
            &odd_ref,
            "Agent down too",
            &refs,
            "x\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("2 new case(s)"), "{summary}");
    assert_eq!(
        smtp_received(&no_at).len(),
        1,
        "acknowledged despite a Message-ID without '@'"
    );
    assert_eq!(
        smtp_received(&odd_ref).len(),
        1,
        "acknowledged despite an odd References entry"
    );
    let p = parsed(&smtp_received(&odd_ref)[0]);
    assert_eq!(p.in_reply_to, vec![format!("r3-{u}@rheinwerk.de")]);
}

/// Japanese mobile carriers handed out addresses that break RFC 5322's dot-atom
/// (`taro..yamada@docomo.ne.jp`, `hanako.@ezweb.ne.jp`); they still receive mail, and a
/// customer registered with one as a contract contact must still get the reply.
#[tokio::test]
async fn a_legacy_japanese_carrier_address_still_gets_its_acknowledgement() {
    let ctx = TestCtx::new("carrier-address");
    let u = ctx.user.clone();
    let double_dot = format!("taro..yamada-{u}@docomo.ne.jp");
    let trailing_dot = format!("hanako-{u}.@ezweb.ne.jp");
    import(
        &ctx,
        &format!(
            "ACME,C-1,premium,ansible,acme.co.jp,{double_dot};{trailing_dot},JP,2025-01-01,2030-12-31\n"
        ),
    );
    append(
        &ctx.user,
        "INBOX",
        &iso2022jp_mail(
            &format!("d1-{u}@docomo.ne.jp"),
            "山田 太郎",
            &double_dot,
            "エラーについて",
            "お世話になっております。ジョブが失敗します。\n",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &iso2022jp_mail(
            &format!("d2-{u}@ezweb.ne.jp"),
            "佐藤 花子",
            &trailing_dot,
            "エラーについて",
            "お世話になっております。ジョブが失敗します。\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("2 new case(s)"), "{summary}");
    for addr in [&double_dot, &trailing_dot] {
        let c = cases(&ctx)
            .into_iter()
            .find(|c| c["customer"] == addr.as_str())
            .unwrap_or_else(|| panic!("no case for {addr}"));
        assert_eq!(c["entitlement"], "entitled", "{c:#}");
        assert_eq!(
            smtp_received(addr).len(),
            1,
            "no acknowledgement for {addr}: {summary}"
        );
    }
}
