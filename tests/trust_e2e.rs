//! Issue 22, end to end through the real Dovecot and SMTP sink: nobody outside a case
//! can write into it. Each test is named after what broke: predictable Message-IDs and
//! References joins, forged bounces, engineers' out-of-office replies relayed, a long
//! subject killing the acknowledgement, log injection, forged Authentication-Results,
//! giant headers, and a mailbox changed under casegate's feet.

mod support;

use std::process::Stdio;
use std::time::Duration;

use casegate::mail::parse::sniff_message_id;
use futures::StreamExt;
use serde_json::Value;
use sqlx::Connection;
use support::cli::{ok, run_once, show};
use support::mail::{MailBuilder, b64, dsn, mail_to_support};
use support::pg::PgDatabase;
use support::staff::{
    ENGINEER, ctx, ctx_with, customer_mail, decoded_text, engineer_mail, header, open_case,
    wait_for,
};
use support::{SinkMessage, TestCtx, append, smtp_received};

fn events<'a>(case: &'a Value, kind: &str) -> Vec<&'a Value> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// `case-00000001.m-1.<16 hex>@example.com`: ours, and not to be guessed.
fn assert_unguessable(id: &str, case: u32, n: u32) {
    let prefix = format!("case-{case:08}.m-{n}.");
    let tag = id
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix("@example.com"))
        .unwrap_or_else(|| panic!("not one of our Message-IDs: {id}"));
    assert!(
        tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

fn mail_with(from: &str, mid: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    mail_to_support(from, subject, mid)
        .headers(extra)
        .utf8_text()
        .body_verbatim(format!("{body}\r\n"))
}

/// The single mail the sink holds for `rcpt` (waits a little for the outbox).
async fn only_mail(rcpt: &str) -> SinkMessage {
    let got = support::wait_for_smtp(rcpt, 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "mails to {rcpt}");
    smtp_received(rcpt).remove(0)
}

// 1 -------------------------------------------------------------------------

#[tokio::test]
async fn a_stranger_naming_our_message_id_in_references_gets_a_new_linked_case() {
    let ctx = ctx("trust-refs");
    let (customer, reply_addr) = open_case(&ctx, "refs").await;
    let ack = only_mail(&customer).await;
    let ack_id = sniff_message_id(&ack.raw).unwrap();
    assert_unguessable(&ack_id, 1, 1);
    // A colleague from the customer's own domain joins by References; the engineer's
    // notification names who wrote, not only the case's customer.
    let colleague = format!("boss-{}@acme.example", ctx.user);
    let refs = format!("In-Reply-To: <{ack_id}>\r\nReferences: <{ack_id}>\r\n");
    append(
        &ctx.user,
        "INBOX",
        &mail_with(
            &format!("Boss <{colleague}>"),
            &format!("boss1-{}@acme.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            &refs,
            "Any news?",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let note = wait_for(ENGINEER, |m| {
        decoded_text(m).contains(&format!("Boss <{colleague}>"))
    })
    .await;
    assert!(decoded_text(&note).contains(&customer));
    // The engineer closes the case; the customer is asked for a rating.
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("close-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "#close\n\nFixed in 2.16.3.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["status"], "closed");

    // A stranger who learned our ids answers the closure mail with a rating of 1 and
    // the acknowledgement's id (the old predictable form: the test after this one).
    let stranger = format!("mallory-{}@evil.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &mail_with(
            &stranger,
            &format!("m1-{}@evil.example", ctx.user),
            "Re: your case",
            &refs,
            "1",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 new case(s)"), "{summary}");
    let old = show(&ctx, "1");
    assert_eq!(old["status"], "closed", "a stranger never reopens a case");
    assert!(events(&old, "feedback").is_empty(), "{old:#}");
    assert!(events(&old, "case_reopened").is_empty(), "{old:#}");
    let security = events(&old, "security");
    assert!(
        security
            .iter()
            .any(|e| e["detail"]["from"] == stranger.as_str()),
        "{old:#}"
    );
    let new = show(&ctx, "2");
    assert_eq!(new["customer"], stranger.as_str());
    assert_eq!(new["related_case"], "00000001", "{new:#}");
    let linked = events(&new, "linked");
    assert_eq!(
        linked[0]["detail"]["reason"], "foreign_reference",
        "{new:#}"
    );
}

#[tokio::test]
async fn a_stranger_naming_an_old_predictable_message_id_gets_a_new_linked_case() {
    let ctx = ctx("trust-old-id");
    let (customer, _) = open_case(&ctx, "old").await;
    // A database from before the site key: our acknowledgement has the old id.
    let old_id = "case-00000001.m-1@example.com";
    let url = format!("sqlite://{}", ctx.db_path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let changed = sqlx::query(
        "UPDATE messages SET message_id = $1 WHERE direction = 'out' AND message_id LIKE 'case-00000001.m-1.%'",
    )
    .bind(old_id)
    .execute(&mut db)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    db.close().await.unwrap();
    let refs = format!("In-Reply-To: <{old_id}>\r\nReferences: <{old_id}>\r\n");
    let stranger = format!("mallory-{}@evil.example", ctx.user);
    let colleague = format!("boss-{}@acme.example", ctx.user);
    for (from, mid) in [
        (&stranger, format!("o1-{}@evil.example", ctx.user)),
        (&colleague, format!("o2-{}@acme.example", ctx.user)),
    ] {
        let mail = mail_with(from, &mid, "Re: your case", &refs, "More.");
        append(&ctx.user, "INBOX", &mail, None).await;
    }
    let summary = run_once(&ctx);
    assert!(summary.contains("1 new case(s), 1 added"), "{summary}");
    let new = show(&ctx, "2");
    assert_eq!(new["customer"], stranger.as_str(), "{new:#}");
    assert_eq!(new["related_case"], "00000001", "{new:#}");
    let old = show(&ctx, "1");
    assert_eq!(old["customer"], customer.as_str());
    assert!(
        old["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == colleague.as_str()),
        "{old:#}"
    );
}

// 2 -------------------------------------------------------------------------

const MX: &str = "mx.acme.example";
const RFC822: &str = "message/rfc822";

#[tokio::test]
async fn a_forged_bounce_quoting_our_message_id_is_not_attached_to_the_case() {
    let ctx = ctx("trust-bounce");
    let customer = format!("{}-b@acme.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("b1-{}@acme.example", ctx.user),
            "Agent down",
            "x",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let ack = only_mail(&customer).await;
    // Every mail goes out from its own signed return path.
    assert!(
        ack.mail_from.starts_with("support+b00000001.1.")
            && ack.mail_from.ends_with("@example.com"),
        "{}",
        ack.mail_from
    );

    // Anyone can quote our mail in a report sent to the plain support address.
    append(
        &ctx.user,
        "INBOX",
        &dsn(
            MX,
            &format!("f-{}", ctx.user),
            "support@example.com",
            &ack.raw,
            RFC822,
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 quarantined"), "{summary}");
    let case = show(&ctx, "1");
    assert!(events(&case, "delivery_failed").is_empty(), "{case:#}");
    assert!(
        case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"] != "system" || m["direction"] == "out"),
        "{case:#}"
    );

    // The real bounce comes back to the return path of that mail, and counts.
    append(
        &ctx.user,
        "INBOX",
        &dsn(
            MX,
            &format!("r-{}", ctx.user),
            &ack.mail_from,
            &ack.raw,
            RFC822,
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 added to existing cases"), "{summary}");
    let case = show(&ctx, "1");
    let failed = events(&case, "delivery_failed");
    assert_eq!(failed.len(), 1, "{case:#}");
    assert_eq!(failed[0]["detail"]["message_id"], ack_id_of(&ack));
}

/// Case 1, opened by a customer mail; returns the customer and our acknowledgement.
async fn acknowledged_case(ctx: &TestCtx) -> (String, SinkMessage) {
    let customer = format!("{}-b@acme.example", ctx.user);
    let mid = format!("b1-{}@acme.example", ctx.user);
    let mail = customer_mail(&customer, &mid, "Agent down", "x");
    append(&ctx.user, "INBOX", &mail, None).await;
    run_once(ctx);
    let ack = only_mail(&customer).await;
    (customer, ack)
}

#[tokio::test]
async fn a_bounce_whose_sender_wrote_our_return_path_as_recipient_is_not_attached() {
    let ctx = ctx("trust-bounce-rcpt");
    let (customer, ack) = acknowledged_case(&ctx).await;
    // A customer knows the return path of the mail we sent them, and writes it as To
    // and as a Delivered-To of their own; our MTA's Delivered-To on top says the
    // report came to the plain support address.
    let mut forged = b"Delivered-To: support@example.com\r\n".to_vec();
    forged.extend(dsn(
        MX,
        &format!("g-{}", ctx.user),
        &ack.mail_from,
        &ack.raw,
        RFC822,
    ));
    append(&ctx.user, "INBOX", &forged, None).await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 quarantined"), "{summary}");
    // Piped by the MTA with the envelope recipient: that wins over the header.
    let mut cmd = ctx.casegate(&["ingest", "--recipient", "support@example.com"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        &dsn(
            MX,
            &format!("p-{}", ctx.user),
            &ack.mail_from,
            &ack.raw,
            RFC822,
        ),
    )
    .unwrap();
    let out = ok(child.wait_with_output().unwrap());
    assert!(out.starts_with("quarantined:"), "{out}");
    // A report to the right return path that quotes another Message-ID is not about
    // that mail.
    let other = MailBuilder::new()
        .header("From", "support@example.com")
        .header("To", &customer)
        .header("Subject", "x")
        .message_id("case-00000001.m-2.0123456789abcdef@example.com")
        .body("x\n");
    append(
        &ctx.user,
        "INBOX",
        &dsn(
            MX,
            &format!("q-{}", ctx.user),
            &ack.mail_from,
            &other,
            RFC822,
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 quarantined"), "{summary}");
    let case = show(&ctx, "1");
    assert!(events(&case, "delivery_failed").is_empty(), "{case:#}");
}

#[tokio::test]
async fn an_out_of_office_sent_to_our_return_path_is_noted_not_a_new_case() {
    let ctx = ctx("trust-ooo-rp");
    let (customer, ack) = acknowledged_case(&ctx).await;
    // RFC 3834 §4 and Sieve vacation answer the envelope sender: our return path.
    // The MTA delivers it there and says so on top.
    let vacation = MailBuilder::new()
        .header("Delivered-To", &ack.mail_from)
        .header("From", format!("Jane <{customer}>"))
        .header("To", &ack.mail_from)
        .header("Subject", "Out of office: [Case #00000001] Agent down")
        .message_id(format!("v1-{}@acme.example", ctx.user))
        .header("Auto-Submitted", "auto-replied")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("I am away until Monday.\n");
    // And a responder that marks nothing.
    let plain = MailBuilder::new()
        .header("Delivered-To", &ack.mail_from)
        .header("From", &customer)
        .header("To", &ack.mail_from)
        .header("Subject", "Thank you for your mail")
        .message_id(format!("v2-{}@acme.example", ctx.user))
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("We will answer within two days.\n");
    append(&ctx.user, "INBOX", &vacation, None).await;
    append(&ctx.user, "INBOX", &plain, None).await;
    let summary = run_once(&ctx);
    assert!(summary.contains("0 new case(s), 2 added"), "{summary}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp_received(&customer).len(),
        1,
        "only the acknowledgement"
    );
    assert_eq!(support::cli::cases(&ctx).len(), 1);
    let case = show(&ctx, "1");
    assert_eq!(case["status"], "new", "{case:#}");
    assert!(case["sla"]["first_response_at"].is_null(), "{case:#}");
    assert_eq!(events(&case, "automatic_reply_noted").len(), 2, "{case:#}");
    assert!(events(&case, "security").is_empty(), "{case:#}");
}

fn ack_id_of(m: &SinkMessage) -> String {
    sniff_message_id(&m.raw).unwrap()
}

// 3 -------------------------------------------------------------------------

#[tokio::test]
async fn an_engineers_out_of_office_is_noted_never_relayed_and_meets_no_clock() {
    let ctx = ctx("trust-ooo");
    let (customer, reply_addr) = open_case(&ctx, "ooo").await;
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(&customer)).await;
    assert_eq!(
        header(&note, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(&note, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );

    // Exchange's automatic reply (no Auto-Submitted), and an RFC 3834 one.
    let exchange = MailBuilder::new()
        .header("From", format!("Sato Hanako <{ENGINEER}>"))
        .header("To", &reply_addr)
        .header(
            "Subject",
            "Automatic reply: [Case #00000001] Playbook fails",
        )
        .message_id(format!("ooo1-{}@vendor.example", ctx.user))
        .header("X-Auto-Response-Suppress", "All")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("I am out of the office until Monday.\n");
    let rfc3834 = MailBuilder::new()
        .header("From", format!("Sato Hanako <{ENGINEER}>"))
        .header("To", &reply_addr)
        .header("Subject", "Re: [Case #00000001] Playbook fails")
        .message_id(format!("ooo2-{}@vendor.example", ctx.user))
        .header("Auto-Submitted", "auto-replied")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("不在にしております。\n");
    append(&ctx.user, "INBOX", &exchange, None).await;
    append(&ctx.user, "INBOX", &rfc3834, None).await;
    run_once(&ctx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp_received(&customer).len(),
        1,
        "only the acknowledgement"
    );
    let case = show(&ctx, "1");
    assert_eq!(case["status"], "new", "{case:#}");
    assert!(case["sla"]["first_response_at"].is_null(), "{case:#}");
    assert_eq!(events(&case, "automatic_reply_noted").len(), 2, "{case:#}");
}

// 4 -------------------------------------------------------------------------

#[tokio::test]
async fn a_subject_with_a_1200_character_word_still_gets_its_acknowledgement() {
    let ctx = ctx("trust-long");
    let customer = format!("{}-long@acme.example", ctx.user);
    let word = "E".repeat(1200);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("l1-{}@acme.example", ctx.user),
            &format!("Error {word}"),
            "x",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let ack = only_mail(&customer).await;
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(&customer)).await;
    for raw in [&ack.raw, &note] {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
        assert!(decoded_text(raw).contains(&word));
    }
}

#[tokio::test]
async fn a_notification_refused_for_good_alerts_the_queues_escalation_address() {
    let tag = support::unique_user("alert");
    let (engineer, engineer_ja, leads) = (
        format!("{tag}-gone@vendor.example"),
        format!("{tag}-gone-ja@vendor.example"),
        format!("{tag}-leads@vendor.example"),
    );
    let ctx = ctx_with(
        "trust-alert",
        &format!(
            "[staff]\nreply_key = \"test-reply-key-0123456789\"\ndefault_escalation = \"{leads}\"\n\n\
             [[staff.engineers]]\naddress = \"{engineer}\"\nname = \"Gone\"\nregion = \"NA\"\nqueues = [\"ansible-na\"]\n\n\
             [[staff.engineers]]\naddress = \"{engineer_ja}\"\nname = \"Gone JA\"\nregion = \"APAC\"\nqueues = [\"ansible-ja\"]\n"
        ),
    );
    support::smtp_rule(&engineer, "554");
    support::smtp_rule(&engineer_ja, "554");
    let customer = format!("{}-alert@acme.example", ctx.user);
    let customer_ja = format!("{}-alert@acme.co.jp", ctx.user);
    let yamada = format!("=?utf-8?b?{}?=", b64("山田 太郎".as_bytes()));
    for (from, mid, subject, body) in [
        (
            format!("Jane Doe <{customer}>"),
            format!("a1-{}@acme.example", ctx.user),
            "Agent down",
            "x",
        ),
        (
            format!("{yamada} <{customer_ja}>"),
            format!("a2-{}@acme.co.jp", ctx.user),
            "ジョブが失敗します",
            "お世話になっております。ジョブテンプレートの実行が失敗します。",
        ),
    ] {
        append(
            &ctx.user,
            "INBOX",
            &customer_mail(&from, &mid, subject, body),
            None,
        )
        .await;
    }
    let summary = run_once(&ctx);
    support::smtp_clear_rule(&engineer);
    support::smtp_clear_rule(&engineer_ja);
    assert!(
        summary.contains("outbox: 4 sent, 0 to retry, 2 failed"),
        "{summary}"
    );
    let got = support::wait_for_smtp(&leads, 2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2, "alerts to {leads}");
    let texts: Vec<String> = smtp_received(&leads)
        .iter()
        .map(|m| decoded_text(&m.raw))
        .collect();
    let en = texts.iter().find(|t| t.contains(&engineer)).unwrap();
    assert!(en.contains("[Case #00000001]"), "{en}");
    assert!(en.contains("554"), "{en}");
    // Who the customer is, with the account, as the SLA alerts say it.
    assert!(
        en.contains(&format!("Customer: Jane Doe <{customer}> (Acme)")),
        "{en}"
    );
    let ja = texts.iter().find(|t| t.contains(&engineer_ja)).unwrap();
    assert!(
        ja.contains(&format!(
            "お客様　：アクメ株式会社 山田 太郎 様 <{customer_ja}>"
        )),
        "{ja}"
    );
    // Exactly once: another run finds nothing new to tell.
    run_once(&ctx);
    assert_eq!(smtp_received(&leads).len(), 2);
}

#[tokio::test]
async fn a_reloaded_escalation_address_gets_the_alert_not_the_one_of_the_start() {
    let tag = support::unique_user("alert-reload");
    let (engineer, old_leads, new_leads) = (
        format!("{tag}-gone@vendor.example"),
        format!("{tag}-old@vendor.example"),
        format!("{tag}-new@vendor.example"),
    );
    let staff = |leads: &str| {
        format!(
            "[staff]\nreply_key = \"test-reply-key-0123456789\"\ndefault_escalation = \"{leads}\"\n\n\
             [[staff.engineers]]\naddress = \"{engineer}\"\nname = \"Gone\"\nregion = \"NA\"\nqueues = [\"ansible-na\"]\n"
        )
    };
    let ctx = ctx_with("trust-alert-reload", &staff(&old_leads));
    let mut daemon = support::daemon::Daemon::start(&ctx, "daemon.log");
    daemon.wait_log("casegate starting", 1).await;
    support::write_config_with(ctx.dir.path(), &ctx.user, &ctx.db_path, &staff(&new_leads));
    daemon.signal("HUP");
    daemon.wait_log("reload:", 1).await;
    support::smtp_rule(&engineer, "554");
    let customer = format!("{}-reload@acme.example", ctx.user);
    let mid = format!("ar1-{}@acme.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(&customer, &mid, "Agent down", "x"),
        None,
    )
    .await;
    let alert = only_mail(&new_leads).await;
    support::smtp_clear_rule(&engineer);
    assert!(decoded_text(&alert.raw).contains(&engineer));
    assert!(smtp_received(&old_leads).is_empty());
    daemon.stop().await;
}

// 5 -------------------------------------------------------------------------

#[tokio::test]
async fn a_subject_with_crlf_cannot_forge_a_log_line() {
    let forged =
        "2026-12-01T00:00:00.000000Z  WARN casegate::pipeline: staff address without proof";
    let ctx = ctx("trust-log");
    let customer = format!("{}-log@acme.example", ctx.user);
    let subject = format!(
        "=?utf-8?b?{}?=",
        b64(format!("Agent down\r\n{forged}").as_bytes())
    );
    let name = format!("=?utf-8?b?{}?=", b64(format!("Taro\n{forged}").as_bytes()));
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &format!("{name} <{customer}>"),
            &format!("g1-{}@acme.example", ctx.user),
            &subject,
            "x",
        ),
        None,
    )
    .await;
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Agent down\\r\\n2026-12-01"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with(forged)), "{log}");

    // JSON logs stay one valid object per line.
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("g2-{}@acme.example", ctx.user),
            &subject,
            "y",
        ),
        None,
    )
    .await;
    let out = ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE__LOG__FORMAT", "json")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Agent down"), "{log}");
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

// 6 -------------------------------------------------------------------------

#[tokio::test]
async fn a_forged_authentication_result_below_our_mtas_does_not_prove_an_engineer() {
    let ctx = ctx_with(
        "trust-authres",
        &format!(
            "{}\n",
            support::staff::staff_config().replace(
                "[staff]\n",
                "[staff]\ntrusted_authserv_ids = [\"mx.vendor.example\"]\n"
            )
        ),
    );
    let (customer, _) = open_case(&ctx, "ar").await;
    // Our MTA's own result on top says the signature failed; the sender's forged one,
    // under our authserv-id, stands lower in the header block.
    let forged = MailBuilder::new()
        .header(
            "Authentication-Results",
            "mx.vendor.example; dkim=fail header.d=vendor.example",
        )
        .header(
            "Received",
            "from evil.example by mx.vendor.example; Tue, 1 Dec 2026 09:00:00 +0000",
        )
        .header(
            "Authentication-Results",
            "mx.vendor.example; dkim=pass header.d=vendor.example",
        )
        .header("From", format!("Sato Hanako <{ENGINEER}>"))
        .header("To", "support@example.com")
        .header("Subject", "Re: [Case #00000001] Playbook fails")
        .message_id(format!("ar-{}@evil.example", ctx.user))
        .header("Content-Type", "text/plain; charset=utf-8")
        .body_verbatim("#close\n\nPlease send us your password.\r\n");
    append(&ctx.user, "INBOX", &forged, None).await;
    run_once(&ctx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let case = show(&ctx, "1");
    assert_ne!(case["status"], "closed", "{case:#}");
    assert!(!events(&case, "security").is_empty(), "{case:#}");
    assert_eq!(
        smtp_received(&customer).len(),
        1,
        "nothing relayed to the customer"
    );
}

// 7 -------------------------------------------------------------------------

/// Runs `casegate run --once` and returns its peak RSS in KiB (wait4's rusage of that
/// one child: other tests' processes do not count).
fn run_once_peak_rss_kib(ctx: &TestCtx) -> i64 {
    let child = ctx
        .casegate(&["run", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our own child,
    // reaped here (the Child handle is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
    std::mem::forget(child);
    usage.ru_maxrss
}

#[tokio::test]
async fn a_20_mib_subject_is_cut_at_64_kib_and_costs_no_more_than_its_size() {
    let ctx = ctx("trust-giant");
    let customer = format!("{}-giant@acme.example", ctx.user);
    let subject = "x".repeat(20 * 1024 * 1024);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("h1-{}@acme.example", ctx.user),
            &subject,
            "x",
        ),
        None,
    )
    .await;
    let rss = run_once_peak_rss_kib(&ctx);
    eprintln!("peak RSS of run --once with a 20 MiB Subject: {rss} KiB");
    let case = show(&ctx, "1");
    let stored = case["subject"].as_str().unwrap();
    assert!(
        stored.ends_with("[truncated]"),
        "{}",
        &stored[stored.len() - 40..]
    );
    assert!(stored.len() <= 64 * 1024 + 16, "{}", stored.len());
    // The raw mail (20 MiB) is held once or twice on its way to the store; before the
    // cut, the parse alone cost about 30 times the subject.
    assert!(rss < 160 * 1024, "peak RSS {rss} KiB");
}

// 8 -------------------------------------------------------------------------

#[tokio::test]
async fn a_mail_expunged_by_another_client_before_the_move_does_not_stop_casegate() {
    let pg = PgDatabase::create().await;
    let ctx = TestCtx::with_config(
        "trust-expunge",
        &format!(
            "{}\n[database]\nurl = \"{}\"\n",
            support::staff::staff_config(),
            pg.url
        ),
    );
    ok(ctx.casegate(&["cases", "list"]).output().unwrap()); // creates the tables
    for i in 0..3 {
        append(
            &ctx.user,
            "INBOX",
            &customer_mail(
                &format!("{}-{i}@acme.example", ctx.user),
                &format!("e{i}-{}@acme.example", ctx.user),
                "Agent down",
                "x",
            ),
            None,
        )
        .await;
    }
    // Hold casegate's commit until the batch is fetched, then expunge one of its mails
    // from another session: the mail vanishes between fetch and MOVE.
    let mut lock = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE cases IN EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let child = ctx
        .casegate(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE NOT l.granted AND d.datname = current_database()",
        )
        .fetch_one(&mut lock)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "casegate never reached its commit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut other = support::imap::connect(&ctx.user).await;
    other.select("INBOX").await.unwrap();
    let uids = support::uids(&ctx.user, "INBOX").await;
    {
        let s = other
            .uid_store(format!("{}", uids[1]), "+FLAGS.SILENT (\\Deleted)")
            .await
            .unwrap();
        let _: Vec<_> = s.collect().await;
    }
    let _: Vec<_> = other.expunge().await.unwrap().collect().await;
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(support::count(&ctx.user, "INBOX").await, 0, "{log}");
    assert_eq!(support::count(&ctx.user, "Processed").await, 2, "{log}");
    // The vanished mail's case is committed all the same.
    for n in ["1", "2", "3"] {
        assert_eq!(show(&ctx, n)["number"], format!("0000000{n}"));
    }
    drop(lock);
    pg.drop().await;
}
