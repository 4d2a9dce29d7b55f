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
use support::mail::plain_mail;
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
