//! `casegate backup` while the daemon drains real mail from Dovecot, then `casegate
//! restore` into a fresh place: every case of the backup is there with every message
//! and every attachment byte for byte (the large ones live in raw-mail files), the
//! backup checks out, and a restore is refused while a daemon holds the database or
//! over an existing one without `--replace`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{json, ok, text};
use support::daemon::Daemon;
use support::mail::b64;
use support::{TestCtx, append};

/// 96 KiB of bytes that differ for every mail (the raw mail then is a file).
fn attachment(n: usize) -> Vec<u8> {
    (0..96 * 1024)
        .map(|i: usize| (i.wrapping_mul(31) ^ n.wrapping_mul(7919) ^ (i >> 8)) as u8)
        .collect()
}

fn mail(user: &str, n: usize, with_attachment: bool) -> Vec<u8> {
    let from = format!("{user}-c{n}@globex.example");
    let id = format!("{user}-{n}@globex.example");
    let head = format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: Playbook fails {n}\r\nMessage-ID: <{id}>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    );
    if !with_attachment {
        return format!(
            "{head}Content-Type: text/plain\r\n\r\nThe playbook fails on host {n}.\r\n"
        )
        .into_bytes();
    }
    let data = b64(&attachment(n));
    let lines: Vec<&str> = data
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "{head}Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\nContent-Type: text/plain\r\n\r\nThe playbook fails on host {n}; the log is attached.\r\n\
         --b{n}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"log-{n}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b{n}--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

fn contracts(ctx: &TestCtx) {
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(&csv, "account,contract_id,tier,products,domains,contacts,country,start,end\nGlobex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n").unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
}

/// Cases committed so far (read beside the running daemon).
fn committed(ctx: &TestCtx) -> usize {
    support::cli::cases(ctx).len()
}

#[tokio::test]
async fn a_backup_taken_during_a_drain_restores_every_case_and_attachment() {
    const MAILS: usize = 120;
    // Small batches: many commits during the drain.
    let ctx = TestCtx::with_config("backup", "[imap]\nbatch_size = 4\n");
    let u = ctx.user.clone();
    support::create(&u, "INBOX").await;
    contracts(&ctx);
    // Every third mail carries a 96 KiB attachment.
    for n in 0..MAILS / 2 {
        append(&u, "INBOX", &mail(&u, n, n.is_multiple_of(3)), None).await;
    }
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    // Under load: the drain has begun, and more mail keeps arriving.
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(&ctx) < 5 {
        daemon.assert_running();
        assert!(Instant::now() < deadline, "no drain:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let appender = {
        let u = u.clone();
        tokio::spawn(async move {
            for n in MAILS / 2..MAILS {
                append(&u, "INBOX", &mail(&u, n, n.is_multiple_of(3)), None).await;
            }
        })
    };
    let backup_dir = ctx.dir.path().join("backup-1");
    let before = committed(&ctx);
    let out = ctx
        .casegate(&["backup", backup_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let after = committed(&ctx);
    let said = ok(out);
    println!("{said}(the daemon had committed {before} cases before, {after} after)");
    appender.await.unwrap();

    // A second backup into the same folder is refused: never mixed with an old one.
    let again = ctx
        .casegate(&["backup", backup_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    // Restoring over the daemon's own database is refused while it runs.
    let busy = ctx
        .casegate(&["restore", backup_dir.to_str().unwrap(), "--replace"])
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(1), "{}", text(&busy));
    assert!(text(&busy).contains("in use"), "{}", text(&busy));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    let cases_in_backup = manifest["cases"].as_u64().unwrap() as usize;
    assert!(cases_in_backup >= 5, "{manifest}");

    // Let the drain finish, so that the original holds every mail to compare with.
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed(&ctx) < MAILS {
        daemon.assert_running();
        assert!(Instant::now() < deadline, "drain stuck:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(daemon.stop().await.success());

    // Restore into a fresh place (no IMAP needed for that).
    let other = TestCtx::new("restored");
    let check = other
        .casegate(&["restore", "--check", backup_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok(check).contains("is sound"));
    let out = ok(other
        .casegate(&["restore", backup_dir.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(out.contains(&format!("{cases_in_backup} cases")), "{out}");
    // Over an existing database only with --replace.
    let exists = other
        .casegate(&["restore", backup_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(exists.status.code(), Some(1), "{}", text(&exists));
    assert!(text(&exists).contains("--replace"), "{}", text(&exists));

    let original = json(&ctx, &["cases", "list", "--json", "--limit", "1000"]);
    let restored = json(&other, &["cases", "list", "--json", "--limit", "1000"]);
    let restored = restored.as_array().unwrap();
    assert_eq!(restored.len(), cases_in_backup);
    let by_number: BTreeMap<String, Value> = original
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["number"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    let mut attachments = 0;
    for case in restored {
        let number = case["number"].as_str().unwrap();
        let was = &by_number[number];
        assert_eq!(case["subject"], was["subject"], "{case}");
        let shown = json(&other, &["cases", "show", number, "--json"]);
        let n: usize = shown["subject"]
            .as_str()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let inbound: Vec<&Value> = shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .collect();
        assert_eq!(inbound.len(), 1, "{shown:#}");
        let list = inbound[0]["attachments"].as_array().unwrap();
        assert_eq!(list.len(), usize::from(n.is_multiple_of(3)), "{shown:#}");
        for a in list {
            let file = other.dir.path().join(format!("att-{n}"));
            let id = a["id"].to_string();
            ok(other
                .casegate(&["cases", "attachment", &id, "-o", file.to_str().unwrap()])
                .output()
                .unwrap());
            assert_eq!(
                std::fs::read(&file).unwrap(),
                attachment(n),
                "case {number}"
            );
            attachments += 1;
        }
    }
    assert!(attachments >= 1, "the backup held no attachment");
    let files = manifest["files"].as_array().unwrap().len();
    assert_eq!(
        files, attachments,
        "one raw-mail file per mail with an attachment"
    );
    println!(
        "backup under load: {cases_in_backup} of {MAILS} cases, {attachments} attachments in {files} raw-mail files, all restored"
    );
}

#[tokio::test]
async fn backup_on_postgresql_says_to_use_pg_dump() {
    let ctx = TestCtx::new("backup-pg");
    let db = support::pg::PgDatabase::create().await;
    for verb in ["backup", "restore"] {
        let out = ctx
            .casegate(&[verb, ctx.dir.path().join("b").to_str().unwrap()])
            .env("CASEGATE__DATABASE__URL", &db.url)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("pg_dump"), "{verb}: {}", text(&out));
        assert!(!ctx.dir.path().join("b").exists(), "nothing written");
    }
    db.drop().await;
}
