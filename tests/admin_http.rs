//! The admin listener of `casegate run` (`admin.listen`): `/metrics` scraped during a
//! drain counts what was sent, and `/readyz` turns unready while Dovecot is down and
//! ready again once it is back.
//!
//! The readiness test stops the shared Dovecot: the two tests of this binary take
//! turns (`SERIAL`), and no other binary runs meanwhile.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::ok;
use support::daemon::Daemon;
use support::mail::{dsn, iso2022jp_mail, plain_mail};
use support::{TestCtx, append};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `GET path` over a plain HTTP/1.1 connection: (status, body).
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The value of the sample `name` (with its labels, as printed) in a scrape; 0 when
/// absent.
fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn started(ctx: &TestCtx) -> Daemon {
    let mut d = Daemon::start(ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    d
}

fn ctx_on(tag: &str, port: u16) -> TestCtx {
    let ctx = TestCtx::with_config(tag, &format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n"));
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(&csv, "account,contract_id,tier,products,domains,contacts,country,start,end\nGlobex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n").unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    ctx
}

#[tokio::test]
async fn metrics_scraped_during_a_drain_count_what_was_sent() {
    let _turn = SERIAL.lock().await;
    let port = free_port();
    let ctx = ctx_on("metrics", port);
    support::create(&ctx.user, "INBOX").await;
    const NEW: usize = 40;
    // One customer per mail: acknowledgements are limited per sender and hour.
    let customer = |n: usize| format!("{}-c{n}@globex.example", ctx.user);
    for n in 0..NEW {
        let id = format!("{}-{n}@globex.example", ctx.user);
        append(
            &ctx.user,
            "INBOX",
            &plain_mail(&customer(n), &format!("Playbook fails {n}"), &id),
            None,
        )
        .await;
    }
    // The first mail again: a duplicate.
    let first = format!("{}-0@globex.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &plain_mail(&customer(0), "Playbook fails 0", &first),
        None,
    )
    .await;
    let daemon = started(&ctx).await;

    let fetched = r#"casegate_mails_fetched_total{mailbox="INBOX"}"#;
    let opened = r#"casegate_mail_outcomes_total{mailbox="INBOX",outcome="opened"}"#;
    let duplicate = r#"casegate_mail_outcomes_total{mailbox="INBOX",outcome="duplicate"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scrapes = 0;
    let mut last = 0.0;
    let scrape = loop {
        let (status, body) = get(port, "/metrics").await.expect("the listener answers");
        assert_eq!(status, 200, "{body}");
        scrapes += 1;
        let now = sample(&body, fetched);
        assert!(now >= last, "a counter went down: {last} -> {now}\n{body}");
        last = now;
        if sample(&body, opened) + sample(&body, duplicate) >= (NEW + 1) as f64 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the drain never finished:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(sample(&scrape, fetched), (NEW + 1) as f64, "{scrape}");
    assert_eq!(sample(&scrape, opened), NEW as f64, "{scrape}");
    assert_eq!(sample(&scrape, duplicate), 1.0, "{scrape}");
    assert_eq!(
        sample(&scrape, r#"casegate_imap_connected{mailbox="INBOX"}"#),
        1.0,
        "{scrape}"
    );
    assert!(scrape.contains("casegate_build_info{version="), "{scrape}");
    assert!(
        sample(
            &scrape,
            r#"casegate_batch_commit_seconds_count{mailbox="INBOX"}"#
        ) >= 1.0,
        "{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            r#"casegate_arrival_to_commit_seconds_count{mailbox="INBOX"}"#
        ),
        (NEW + 1) as f64,
        "{scrape}"
    );

    // Every case's acknowledgement: the sender's counter matches what the sink got.
    let acks = || {
        (0..NEW)
            .map(|n| support::smtp_messages(&customer(n)).len())
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let scrape = loop {
        let (_, body) = get(port, "/metrics").await.unwrap();
        let got = acks();
        if got == NEW && sample(&body, "casegate_outbox_sent_total") == NEW as f64 {
            break body;
        }
        assert!(Instant::now() < deadline, "sent {got} of {NEW}:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(&scrape, r#"casegate_outbox_rows{status="pending"}"#),
        0.0,
        "{scrape}"
    );
    assert!(scrapes >= 1);
    println!("{scrapes} scrape(s) during the drain");
    assert!(daemon.stop().await.success());
}

/// A mail from `from` with extra header lines (each ending in CRLF) and a body.
fn mail_with(from: &str, subject: &str, id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n{headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Scrape until `done` holds for the scrape (60 s at most).
async fn scrape_until(port: u16, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(port, "/metrics").await.expect("the listener answers");
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what} never happened:\n{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_kind_of_mail_and_each_new_case_language_and_queue_are_counted() {
    let _turn = SERIAL.lock().await;
    let port = free_port();
    let ctx = ctx_on("kinds", port);
    let u = ctx.user.clone();
    support::create(&u, "INBOX").await;
    let customer = |n: usize| format!("{u}-c{n}@globex.example");
    let id = |n: usize| format!("{u}-{n}@globex.example");
    let mut sent: Vec<(&str, Vec<u8>)> = Vec::new();
    // Two English cases and a Japanese one, all entitled.
    sent.push(("new", plain_mail(&customer(0), "Playbook fails", &id(0))));
    sent.push((
        "new",
        plain_mail(&customer(1), "Playbook fails too", &id(1)),
    ));
    sent.push((
        "new",
        iso2022jp_mail(
            &id(2),
            "山田 太郎",
            &customer(2),
            "プレイブックが失敗します",
            "お世話になっております。\nプレイブックを実行するとエラーになります。\nよろしくお願いいたします。",
        ),
    ));
    sent.push((
        "duplicate",
        plain_mail(&customer(0), "Playbook fails", &id(0)),
    ));
    // Customer 1 answers its own case; customer 0's out-of-office answers ours.
    sent.push((
        "reply",
        mail_with(
            &customer(1),
            "Re: Playbook fails too",
            &id(11),
            &format!("In-Reply-To: <{}>\r\n", id(1)),
            "Here is the log you asked for.",
        ),
    ));
    sent.push((
        "automatic",
        mail_with(
            &customer(0),
            "Out of office",
            &id(10),
            &format!(
                "In-Reply-To: <{}>\r\nAuto-Submitted: auto-replied\r\n",
                id(0)
            ),
            "I am away until Monday.",
        ),
    ));
    sent.push((
        "refused",
        plain_mail(
            &format!("{u}@no-contract.example"),
            "Playbook fails",
            &id(20),
        ),
    ));
    sent.push((
        "out_of_scope",
        mail_with(
            &customer(3),
            "Renewal",
            &id(30),
            "",
            "Please send us a quote for the subscription renewal of our Ansible nodes.",
        ),
    ));
    sent.push((
        "quarantined",
        b"Subject: no sender at all\r\nMessage-ID: <broken@x.example>\r\n\r\nhello\r\n".to_vec(),
    ));
    for (_, raw) in &sent {
        append(&u, "INBOX", raw, None).await;
    }
    let daemon = started(&ctx).await;
    let kind = |k: &str| format!(r#"casegate_mails_total{{mailbox="INBOX",kind="{k}"}}"#);
    let total = sent.len() as f64;
    let all_kinds = [
        "new",
        "reply",
        "duplicate",
        "bounce",
        "automatic",
        "quarantined",
        "refused",
        "out_of_scope",
    ];
    let scrape = scrape_until(port, "the drain", |b| {
        all_kinds.iter().map(|k| sample(b, &kind(k))).sum::<f64>() >= total
    })
    .await;
    for k in all_kinds {
        let want = sent.iter().filter(|(s, _)| *s == k).count() as f64;
        assert_eq!(sample(&scrape, &kind(k)), want, "kind {k}:\n{scrape}");
        // Declared at 0 before the first mail of that kind.
        assert!(scrape.contains(&kind(k)), "{k} is exported: {scrape}");
    }

    // New cases by language and queue: as the cases themselves say.
    let mut by_label = std::collections::BTreeMap::<(String, String), f64>::new();
    for c in support::cli::cases(&ctx) {
        let queue = c["queue"].as_str().unwrap_or("none").to_string();
        let language = c["language"].as_str().unwrap().to_string();
        *by_label.entry((language, queue)).or_default() += 1.0;
    }
    assert_eq!(by_label.values().sum::<f64>(), 5.0, "{by_label:?}");
    assert!(by_label.keys().any(|(l, _)| l == "ja"), "{by_label:?}");
    for ((language, queue), n) in &by_label {
        let name =
            format!(r#"casegate_cases_opened_total{{language="{language}",queue="{queue}"}}"#);
        assert_eq!(sample(&scrape, &name), *n, "{name}:\n{scrape}");
    }
    assert!(
        scrape.contains("casegate_sla_clocks{state=\"at_risk\"} 0"),
        "{scrape}"
    );
    assert!(scrape.contains("casegate_build_info{version="), "{scrape}");
    assert!(scrape.contains("profile=\"debug\""), "{scrape}");

    // The customer's server bounces our acknowledgement to customer 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ack = loop {
        if let Some(m) = support::smtp_received(&customer(1)).into_iter().next() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no acknowledgement for customer 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    append(
        &u,
        "INBOX",
        &dsn(
            "mx.globex.example",
            &u,
            &ack.mail_from,
            &ack.raw,
            "message/rfc822",
        ),
        None,
    )
    .await;
    let scrape = scrape_until(port, "the bounce", |b| sample(b, &kind("bounce")) >= 1.0).await;
    assert_eq!(sample(&scrape, &kind("bounce")), 1.0, "{scrape}");
    assert_eq!(
        sample(&scrape, r#"casegate_mails_fetched_total{mailbox="INBOX"}"#),
        total + 1.0,
        "{scrape}"
    );
    assert!(daemon.stop().await.success());
}

#[tokio::test]
async fn readyz_turns_unready_while_dovecot_is_down_and_ready_once_it_is_back() {
    let _turn = SERIAL.lock().await;
    let port = free_port();
    let ctx = ctx_on("ready", port);
    support::create(&ctx.user, "INBOX").await;
    let daemon = started(&ctx).await;

    let wait_for = |want: u16, secs: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, body) = get(port, "/readyz").await.expect("the listener answers");
            if status == want {
                return serde_json::from_str::<Value>(&body).expect("a JSON body");
            }
            assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let ready = wait_for(200, 30).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(get(port, "/healthz").await.unwrap().0, 200);

    support::imap_stop();
    let down = wait_for(503, 60).await;
    support::imap_start();
    assert_eq!(down["ready"], false, "{down}");
    let problem = &down["problems"][0];
    assert_eq!(problem["check"], "mailbox", "{down}");
    assert_eq!(problem["mailbox"], "INBOX", "{down}");
    assert!(
        !problem["problem"].as_str().unwrap_or_default().is_empty(),
        "{down}"
    );
    // Alive all along.
    assert_eq!(get(port, "/healthz").await.unwrap().0, 200);

    let back = wait_for(200, 90).await;
    assert_eq!(back["ready"], true, "{back}");
    assert!(daemon.stop().await.success());
}
