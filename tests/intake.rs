//! The daemon end to end against the real Dovecot: mail in the inbox becomes cases,
//! threaded, decoded, never lost and never doubled.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{cases, ok, run_once, show};
use support::mail::{MailBuilder, mail_to_support};
use support::{TestCtx, append, count, fetch_all};

fn mail(mid: Option<&str>, from: &str, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    let mail = MailBuilder::new()
        .header("From", from)
        .header("To", "support@example.com")
        .header("Subject", subject)
        .header("Date", "Mon, 23 Nov 2026 09:00:00 +0000");
    let mail = match mid {
        Some(m) => mail.message_id(m),
        None => mail,
    };
    mail.headers(extra_headers)
        .utf8_text()
        .body_verbatim(format!("{body}\r\n"))
}

/// A test context whose customers at acme.example hold a premium contract.
fn customer_ctx(tag: &str) -> TestCtx {
    entitle(TestCtx::new(tag))
}

fn entitle(ctx: TestCtx) -> TestCtx {
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(
        &csv,
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Acme,C-ACME,premium,ansible;satellite,acme.example;acme.co.jp,,US,2025-01-01,2030-12-31\n",
    )
    .unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    ctx
}

/// Inbound messages on a case (outbound acknowledgements are on the case too).
fn inbound_count(ctx: &TestCtx, number: &str) -> usize {
    show(ctx, number)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count()
}

#[tokio::test]
async fn new_mail_becomes_a_case_and_leaves_the_inbox() {
    let ctx = customer_ctx("newcase");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("n1@acme.example"),
            "Taro <taro@acme.example>",
            "Server down",
            "",
            "It is down.",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 new case"), "{summary}");
    let list = cases(&ctx);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["number"], "00000001");
    let case = show(&ctx, "1");
    assert_eq!(case["subject"], "Server down");
    assert_eq!(case["status"], "new");
    assert_eq!(case["customer"], "taro@acme.example");
    let m = &case["messages"][0];
    assert_eq!(m["direction"], "in");
    assert_eq!(m["role"], "customer");
    assert_eq!(m["message_id"], "n1@acme.example");
    assert!(m["text"].as_str().unwrap().contains("It is down."));
    for key in [
        "queue",
        "product",
        "language",
        "region",
        "severity",
        "owner",
        "account",
        "entitlement",
        "sla",
    ] {
        assert!(case.get(key).is_some(), "missing {key} in {case}");
    }
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    assert_eq!(count(&ctx.user, "Processed").await, 1);
}

#[tokio::test]
async fn replies_thread_by_references_and_by_tag_but_strangers_get_their_own_case() {
    let ctx = customer_ctx("threading");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("t1@acme.example"),
            "taro@acme.example",
            "Install fails",
            "",
            "first",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let refs = "In-Reply-To: <t1@acme.example>\r\nReferences: <t1@acme.example>\r\n";
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("t2@acme.example"),
            "taro@acme.example",
            "Re: Install fails",
            refs,
            "second",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("t3@acme.example"),
            "hanako@acme.example",
            "RE: [Case #00000001] Install fails",
            "",
            "colleague, same company",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("t4@evil.example"),
            "eve@evil.example",
            "Re: [Case #00000001] Install fails",
            "",
            "stranger",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("t5@acme.example"),
            "taro@acme.example",
            "Re: Install fails",
            "",
            "prefix only, no tag or refs",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let list = cases(&ctx);
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(inbound_count(&ctx, "1"), 3);
    let first = show(&ctx, "1");
    let froms: Vec<&str> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| m["from"].as_str().unwrap())
        .collect();
    assert_eq!(
        froms,
        vec![
            "taro@acme.example",
            "taro@acme.example",
            "hanako@acme.example"
        ]
    );
    assert!(
        first["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "security")
    );
    let stranger = list
        .iter()
        .find(|c| c["customer"] == "eve@evil.example")
        .unwrap();
    assert_eq!(stranger["related_case"], "00000001");
    let prefix_only = list
        .iter()
        .find(|c| c["customer"] == "taro@acme.example" && c["number"] != "00000001")
        .unwrap();
    assert_eq!(prefix_only["related_case"], Value::Null);
}

#[tokio::test]
async fn a_drain_in_several_batches_threads_within_and_across_batches() {
    let ctx = customer_ctx("batches");
    let reply_to = |mid: &str| format!("In-Reply-To: <{mid}>\r\nReferences: <{mid}>\r\n");
    // The second case's mail carries a log file: stored once, inside the raw mail, which
    // is large enough (over 64 KiB) to be kept as a file beside the SQLite database.
    let log: Vec<u8> = (0..6000u32)
        .flat_map(|i| format!("line {i}: ok\n").into_bytes())
        .collect();
    let with_log = mail_to_support("hanako@acme.example", "Login page", "b3@acme.example")
        .header("MIME-Version", "1.0")
        .header("Content-Type", "multipart/mixed; boundary=\"b\"")
        .body_verbatim(format!(
            "--b\r\nContent-Type: text/plain\r\n\r\n\
             second case\r\n--b\r\nContent-Type: text/plain; name=\"app.log\"\r\nContent-Disposition: attachment; filename=\"app.log\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            base64_lines(&log)
        ));
    let mails = [
        mail(
            Some("b1@acme.example"),
            "taro@acme.example",
            "Sync stalls",
            "",
            "first",
        ),
        mail(
            Some("b2@acme.example"),
            "taro@acme.example",
            "Re: Sync stalls",
            &reply_to("b1@acme.example"),
            "same batch",
        ),
        with_log,
        mail(
            Some("b4@acme.example"),
            "taro@acme.example",
            "Re: Sync stalls",
            &reply_to("b2@acme.example"),
            "next batch",
        ),
        mail(
            Some("b5@acme.example"),
            "jiro@acme.example",
            "Licence",
            "",
            "third case",
        ),
    ];
    for raw in &mails {
        append(&ctx.user, "INBOX", raw, None).await;
    }
    // Two mails per batch: three units of work, each moved while the next commits.
    let summary = ok(ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE__IMAP__BATCH_SIZE", "2")
        .output()
        .unwrap());
    assert!(
        summary.contains("3 new case(s), 2 added to existing cases"),
        "{summary}"
    );
    assert_eq!(inbound_count(&ctx, "1"), 3);
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    assert_eq!(count(&ctx.user, "Processed").await, 5);
    assert_eq!(
        last_uid(&ctx).await,
        5,
        "the checkpoint is past every batch"
    );
    let case2 = show(&ctx, "2");
    let attachment = &case2["messages"][0]["attachments"][0];
    assert_eq!(
        (
            attachment["filename"].as_str(),
            attachment["content_kept"].as_bool()
        ),
        (Some("app.log"), Some(true))
    );
    let id = attachment["id"].as_i64().unwrap().to_string();
    let out = ctx
        .casegate(&["cases", "attachment", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout, log,
        "the attachment decodes from the raw mail as sent"
    );
    let mut files = ctx.db_path.as_os_str().to_owned();
    files.push("-mail");
    let kept: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .collect();
    assert_eq!(kept.len(), 1, "only the large mail is a file: {kept:?}");
    // Nothing is read twice: the next run reads only the new mail.
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("b6@acme.example"),
            "taro@acme.example",
            "Re: Sync stalls",
            &reply_to("b4@acme.example"),
            "later",
        ),
        None,
    )
    .await;
    let summary = ok(ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE__IMAP__BATCH_SIZE", "2")
        .output()
        .unwrap());
    assert!(
        summary.contains("processed 1 mail(s)") && summary.contains("1 added"),
        "{summary}"
    );
    assert_eq!(inbound_count(&ctx, "1"), 4);
    assert_eq!(last_uid(&ctx).await, 6);
}

/// The highest INBOX UID the store's checkpoint says is settled.
async fn last_uid(ctx: &TestCtx) -> i64 {
    let url = format!("sqlite://{}", ctx.db_path.display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .unwrap();
    let uid = sqlx::query_scalar("SELECT last_uid FROM mailbox_state WHERE mailbox = 'INBOX'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    uid
}

/// Base64 in 76-character lines (RFC 2045).
fn base64_lines(data: &[u8]) -> String {
    let flat = support::mail::b64(data);
    flat.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn japanese_charsets_and_html_are_decoded() {
    let ctx = customer_ctx("charsets");
    let iso = include_bytes!("../scripts/demo-mail/02-ja-new.eml");
    let sjis_unlabelled = include_bytes!("../scripts/demo-mail/05-ja-shift-jis-no-charset.eml");
    let sjis = MailBuilder::new()
        .header("From", "ito@acme.co.jp")
        .header("To", "support@example.com")
        .message_id("sjis@acme.co.jp")
        .header("Subject", "=?Shift_JIS?B?g0ODk4NYg2eBW4OL?=")
        .header("MIME-Version", "1.0")
        .header("Content-Type", "text/plain; charset=Shift_JIS")
        .header("Content-Transfer-Encoding", "8bit")
        // ① ～ あ in CP932
        .body_verbatim([0x87, 0x40, 0x81, 0x60, 0x82, 0xa0, b'\r', b'\n']);
    let html = MailBuilder::new()
        .header("From", "ops@globex.example")
        .header("To", "support@example.com")
        .message_id("html@globex.example")
        .header("Subject", "=?UTF-8?Q?Caf=C3=A9_outage?=")
        .header("MIME-Version", "1.0")
        .header("Content-Type", "text/html; charset=utf-8")
        .body_verbatim("<html><head><style>p{color:red}</style></head><body><p>First&nbsp;line &amp; more</p><ul><li>one</li><li>two</li></ul></body></html>\r\n");
    for raw in [&iso[..], &sjis_unlabelled[..], &sjis[..], &html[..]] {
        append(&ctx.user, "INBOX", raw, None).await;
    }
    run_once(&ctx);
    let list = cases(&ctx);
    assert_eq!(list.len(), 4);
    let text = |n: &str| {
        show(&ctx, n)["messages"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        list[0]["subject"],
        "ジョブテンプレート実行時にタイムアウトが発生します"
    );
    assert!(
        text("1").contains("①再起動は実施済みです。"),
        "{}",
        text("1")
    );
    assert!(text("1").contains("株式会社アクメの山田です"));
    assert_eq!(list[1]["subject"], "インストールについての質問");
    assert!(
        text("2").contains("オフライン環境へのインストール手順"),
        "{}",
        text("2")
    );
    assert_eq!(list[2]["subject"], "インストール");
    assert!(text("3").contains("①～あ"), "{}", text("3"));
    assert_eq!(list[3]["subject"], "Café outage");
    let html_text = text("4");
    assert!(html_text.contains("First line & more"), "{html_text}");
    assert!(
        html_text.contains("one") && html_text.contains("two") && !html_text.contains("color"),
        "{html_text}"
    );
}

#[tokio::test]
async fn the_same_mail_twice_gives_one_case_and_one_message() {
    let ctx = customer_ctx("twice");
    let raw = mail(
        Some("dup@acme.example"),
        "taro@acme.example",
        "Twice",
        "",
        "body",
    );
    let no_id = mail(None, "taro@acme.example", "No id", "", "same bytes");
    for r in [&raw, &raw, &no_id, &no_id] {
        append(&ctx.user, "INBOX", r, None).await;
    }
    let summary = run_once(&ctx);
    assert!(
        summary.contains("2 new case(s)") && summary.contains("2 duplicate(s)"),
        "{summary}"
    );
    append(&ctx.user, "INBOX", &raw, None).await;
    run_once(&ctx);
    let list = cases(&ctx);
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|c| inbound_count(&ctx, c["number"].as_str().unwrap()) == 1),
        "{list:?}"
    );
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    assert_eq!(count(&ctx.user, "Processed").await, 5);
}

#[tokio::test]
async fn a_mail_already_read_in_another_client_is_still_processed() {
    let ctx = customer_ctx("seen");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("seen@acme.example"),
            "taro@acme.example",
            "Read already",
            "",
            "x",
        ),
        None,
    )
    .await;
    let mut s = support::connect(&ctx.user).await;
    s.select("INBOX").await.unwrap();
    use futures::StreamExt;
    let updates: Vec<_> = s
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await
        .unwrap()
        .collect()
        .await;
    assert!(!updates.is_empty());
    s.logout().await.unwrap();
    run_once(&ctx);
    assert_eq!(cases(&ctx).len(), 1);
}

#[tokio::test]
async fn a_crash_after_commit_before_move_does_not_double_on_restart() {
    let ctx = customer_ctx("crash");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("c1@acme.example"),
            "taro@acme.example",
            "First",
            "",
            "1",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(None, "taro@acme.example", "Second, no id", "", "2"),
        None,
    )
    .await;
    let crashed = ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE_FAILPOINT", "after_commit")
        .output()
        .unwrap();
    assert!(
        !crashed.status.success(),
        "the failpoint must kill the process"
    );
    assert_eq!(cases(&ctx).len(), 2, "the batch (both mails) was committed");
    assert_eq!(count(&ctx.user, "INBOX").await, 2, "nothing was moved");
    let summary = run_once(&ctx);
    assert!(summary.contains("2 duplicate(s)"), "{summary}");
    let list = cases(&ctx);
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|c| inbound_count(&ctx, c["number"].as_str().unwrap()) == 1),
        "{list:?}"
    );
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    assert_eq!(count(&ctx.user, "Processed").await, 2);
}

#[tokio::test]
async fn a_uidvalidity_reset_never_doubles_cases() {
    let ctx = customer_ctx("uidvalidity");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("u1@acme.example"),
            "taro@acme.example",
            "Before reset",
            "",
            "1",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(None, "taro@acme.example", "Also before", "", "2"),
        None,
    )
    .await;
    // Commit the first mail but crash before moving it: both stay in the inbox.
    let crashed = ctx
        .casegate(&["run", "--once"])
        .env("CASEGATE_FAILPOINT", "after_commit")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    let before = support::uid_validity(&ctx.user, "INBOX").await;
    let after = support::reset_uidvalidity(&ctx.user, "INBOX");
    assert_ne!(before, after);
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("u3@acme.example"),
            "taro@acme.example",
            "After reset",
            "",
            "3",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    run_once(&ctx);
    let list = cases(&ctx);
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .all(|c| inbound_count(&ctx, c["number"].as_str().unwrap()) == 1)
    );
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    assert_eq!(count(&ctx.user, "Processed").await, 3);
}

#[tokio::test]
async fn broken_and_oversized_mail_is_quarantined_and_replayed_after_a_fix() {
    let ctx = entitle(TestCtx::with_config(
        "quarantine",
        "[gateway]\nmax_message_bytes = 2048\n",
    ));
    append(&ctx.user, "INBOX", b"\x00\x01 not a mail \xff\r\n", None).await;
    let big_body = "log line 0123456789 abcdefghij\n".repeat(200);
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("big@acme.example"),
            "taro@acme.example",
            "Huge logs",
            "",
            &big_body,
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("ok@acme.example"),
            "taro@acme.example",
            "Fine",
            "",
            "small",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("1 new case") && summary.contains("2 quarantined"),
        "{summary}"
    );
    assert_eq!(count(&ctx.user, "Quarantine").await, 2);
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    let listed: Value = serde_json::from_str(&ok(ctx
        .casegate(&["quarantine", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let reasons: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("unparseable")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("too large") && r.contains("limit 2048")),
        "{reasons:?}"
    );

    // The admin raises the limit and replays: the big mail becomes a case, the broken
    // one stays; a second replay doubles nothing.
    support::write_config_with(
        ctx.dir.path(),
        &ctx.user,
        &ctx.db_path,
        "[gateway]\nmax_message_bytes = 1048576\n",
    );
    let replay = ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    assert!(replay.contains("1 released, 1 still held"), "{replay}");
    ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    let list = cases(&ctx);
    assert_eq!(list.len(), 2);
    let big = list.iter().find(|c| c["subject"] == "Huge logs").unwrap();
    assert_eq!(inbound_count(&ctx, big["number"].as_str().unwrap()), 1);
    assert_eq!(count(&ctx.user, "Quarantine").await, 1);
    assert_eq!(count(&ctx.user, "Processed").await, 2);
}

#[tokio::test]
async fn a_database_outage_leaves_the_mail_in_the_inbox() {
    use sqlx::{Connection, Executor};
    let ctx = customer_ctx("dbdown");
    ok(ctx.casegate(&["cases", "list"]).output().unwrap()); // creates the database
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("db@acme.example"),
            "taro@acme.example",
            "While the DB is locked",
            "",
            "x",
        ),
        None,
    )
    .await;
    let mut blocker =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", ctx.db_path.display()))
            .await
            .unwrap();
    blocker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let failed = ctx.casegate(&["run", "--once"]).output().unwrap();
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("stays in the inbox"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    blocker.execute("ROLLBACK").await.unwrap();
    drop(blocker);
    assert_eq!(count(&ctx.user, "INBOX").await, 1);
    run_once(&ctx);
    assert_eq!(cases(&ctx).len(), 1);
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
}

/// Kills the daemon if a test fails half-way.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn the_daemon_picks_up_new_mail_while_idle_and_stops_cleanly_on_sigterm() {
    let ctx = customer_ctx("idle");
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon(
        ctx.casegate(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait until the daemon created its folders: it is then connected and about to IDLE.
    let folder = support::TestEnv::get()
        .mail_dir
        .join(&ctx.user)
        .join("Maildir/.Quarantine");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !folder.exists() {
        assert!(
            Instant::now() < deadline,
            "daemon did not connect: {}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    append(
        &ctx.user,
        "INBOX",
        &mail(
            Some("idle@acme.example"),
            "taro@acme.example",
            "While idle",
            "",
            "x",
        ),
        None,
    )
    .await;
    let n = support::wait_for_count(&ctx.user, "Processed", 1, Duration::from_secs(5)).await;
    let took = sent.elapsed();
    assert_eq!(n, 1);
    assert!(took < Duration::from_secs(2), "picked up after {took:?}");
    sigterm(&daemon.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(cases(&ctx).len(), 1);
    let fetched = fetch_all(&ctx.user, "Processed").await;
    assert_eq!(fetched.len(), 1);
}
