//! What an admin does from the command line, through the real binary: case commands
//! with the engineers' rules and audit trail, contract replacement and ending, the
//! quarantine, and the team report.

mod support;

use std::process::Output;

use serde_json::Value;
use support::cli::{import_contracts as import, ingest, json, ok, run_once, show, text};
use support::mail::mail_to_support;
use support::{TestCtx, smtp_received};

const STAFF: &str = "[staff]\n\
    [[staff.engineers]]\naddress = \"sato@vendor.example\"\nname = \"Sato Hanako\"\nregion = \"APAC\"\n\
    queues = [\"ansible-ja\", \"ansible-na\"]\n\n\
    [[staff.engineers]]\naddress = \"idle@vendor.example\"\nname = \"Idle Engineer\"\nregion = \"EMEA\"\n\
    queues = [\"ansible-emea\"]\n";

const HEADER: &str = "account,contract_id,tier,products,domains,contacts,country,start,end\n";

fn events(case: &Value) -> Vec<(String, String)> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn fails(out: Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(expected),
        "{expected:?} in {}",
        text(&out)
    );
}

#[test]
fn case_commands_follow_the_mail_command_rules_with_the_same_audit_trail() {
    let ctx = TestCtx::with_config("admin-cases", STAFF);
    ok(import(
        &ctx,
        "c.csv",
        &format!("{HEADER}Acme,C-ACME,premium,ansible,acme.example,,US,2025-01-01,2030-12-31\n"),
        &[],
    ));
    let customer = format!("{}@acme.example", ctx.user);
    let out = ingest(
        &ctx,
        &mail_to_support(
            &customer,
            "Playbook fails",
            format!("c1-{}@acme.example", ctx.user),
        )
        .body("The playbook fails on web01.\nSeverity: 3\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let lead = "lead@vendor.example";

    ok(ctx
        .casegate(&[
            "cases",
            "assign",
            "1",
            "sato@vendor.example",
            "--actor",
            lead,
        ])
        .output()
        .unwrap());
    fails(
        ctx.casegate(&["cases", "assign", "1", "nobody@vendor.example"])
            .output()
            .unwrap(),
        "#assign nobody@vendor.example: not an engineer in the staff configuration",
    );
    ok(ctx
        .casegate(&[
            "cases",
            "severity",
            "1",
            "2",
            "production",
            "deployments",
            "are",
            "blocked",
            "--actor",
            "sato@vendor.example",
        ])
        .output()
        .unwrap());
    fails(
        ctx.casegate(&["cases", "severity", "1", "2", "again"])
            .output()
            .unwrap(),
        "has severity 2 already",
    );
    fails(
        ctx.casegate(&["cases", "transfer", "1", "no-such-queue"])
            .output()
            .unwrap(),
        "#queue no-such-queue: no such queue in the routing configuration",
    );
    ok(ctx
        .casegate(&["cases", "transfer", "1", "ansible-emea", "--actor", lead])
        .output()
        .unwrap());
    fails(
        ctx.casegate(&["cases", "reopen", "1"]).output().unwrap(),
        "is not closed",
    );
    ok(ctx
        .casegate(&["cases", "close", "1", "--actor", lead])
        .output()
        .unwrap());
    fails(
        ctx.casegate(&["cases", "close", "1"]).output().unwrap(),
        "is already closed",
    );
    fails(
        ctx.casegate(&["cases", "close", "42"]).output().unwrap(),
        "no case 00000042",
    );

    let case = show(&ctx, "1");
    assert_eq!(case["owner"], "sato@vendor.example");
    assert_eq!(case["severity"], 2);
    assert_eq!(case["queue"], "ansible-emea");
    assert_eq!(case["status"], "closed");
    let trail = events(&case);
    for (kind, actor) in [
        ("owner_changed", lead),
        ("severity_changed", "sato@vendor.example"),
        ("transferred", lead),
        ("case_closed", lead),
    ] {
        assert!(
            trail.contains(&(kind.to_string(), actor.to_string())),
            "{kind} by {actor} in {trail:?}"
        );
    }
    assert!(
        !trail.iter().any(|(k, _)| k == "commands_refused"),
        "refused commands change nothing: {trail:?}"
    );

    ok(ctx
        .casegate(&["cases", "reopen", "1", "--actor", lead])
        .output()
        .unwrap());
    let case = show(&ctx, "1");
    assert_eq!(case["status"], "open");
    // The same audit event as a reopening by mail.
    assert!(events(&case).contains(&("case_reopened".to_string(), lead.to_string())));

    // The customer mails of the commands go out like those of the mail commands: the
    // severity notice (signed by the engineer) and the closure mail.
    run_once(&ctx);
    let got: Vec<String> = smtp_received(&customer)
        .iter()
        .map(|m| String::from_utf8_lossy(&m.raw).to_string())
        .collect();
    assert!(
        got.iter()
            .any(|m| m.contains("production deployments are blocked") && m.contains("Sato Hanako")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains("Case #00000001") && m.contains("closed")),
        "{got:#?}"
    );
    // As with `#queue`, the new queue's engineers are told of the transfer.
    let told: Vec<String> = smtp_received("idle@vendor.example")
        .iter()
        .map(|m| String::from_utf8_lossy(&m.raw).to_string())
        .collect();
    assert!(
        told.iter()
            .any(|m| m.contains(&customer) && m.contains("transferred")),
        "{told:#?}"
    );
}

#[test]
fn contracts_import_replace_shows_the_changes_and_ends_what_the_file_drops() {
    let ctx = TestCtx::new("admin-contracts");
    let long = "Very Long Account Name Incorporated International Holdings Limited";
    let first = format!(
        "{HEADER}\
         {long},C-1,premium,ansible,long.example,,US,2025-01-01,2030-12-31\n\
         アクメ株式会社,C-2,standard,ansible,acme.co.jp,,JP,2025-01-01,2030-12-31\n\
         Gone,C-3,standard,ansible,gone.example,,US,2025-01-01,2030-12-31\n"
    );
    ok(import(&ctx, "first.csv", &first, &[]));
    let second = format!(
        "{HEADER}\
         {long},C-1,standard,ansible,long.example,,US,2025-01-01,2030-12-31\n\
         アクメ株式会社,C-2,standard,ansible,acme.co.jp,,JP,2025-01-01,2030-12-31\n\
         New,C-4,premium,satellite,new.example,,DE,2025-01-01,2030-12-31\n"
    );
    let dry = ok(import(
        &ctx,
        "second.csv",
        &second,
        &["--replace", "--dry-run"],
    ));
    assert!(dry.contains("+ new: C-4 (New)"), "{dry}");
    assert!(
        dry.contains("~ updated: C-1") && dry.contains("tier premium -> standard"),
        "{dry}"
    );
    assert!(dry.contains("- ends: C-3 (Gone)"), "{dry}");
    assert!(
        dry.contains("1 new, 1 updated, 1 unchanged, 1 to end"),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    let list: Value = json(&ctx, &["contracts", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 3, "dry run changed nothing");

    let done = ok(import(&ctx, "second.csv", &second, &["--replace"]));
    assert!(
        done.contains("1 new, 1 updated, 1 unchanged; 1 ended"),
        "{done}"
    );
    ok(ctx.casegate(&["contracts", "end", "C-4"]).output().unwrap());
    fails(
        ctx.casegate(&["contracts", "end", "C-404"])
            .output()
            .unwrap(),
        "no contract C-404",
    );

    let table = ok(ctx.casegate(&["contracts", "list"]).output().unwrap());
    let lines: Vec<&str> = table.lines().collect();
    let status_at = lines[0].find("STATUS").expect("a STATUS column");
    let status = |id: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} in {table}"));
        line.split_whitespace()
            .find(|w| ["active", "expired", "future"].contains(w))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status("C-1"), "active", "{table}");
    assert_eq!(status("C-3"), "expired", "{table}");
    assert_eq!(status("C-4"), "expired", "{table}");
    let listed = json(&ctx, &["contracts", "list", "--json"]);
    let status_of = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contract_id"] == id)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status_of("C-1"), Some("active".into()), "{listed:#}");
    assert_eq!(status_of("C-3"), Some("expired".into()), "{listed:#}");
    // The long name does not push the columns out of line (ASCII rows).
    for line in lines.iter().filter(|l| l.is_ascii()).skip(1) {
        let at = ["active", "expired", "future"]
            .iter()
            .find_map(|w| line.find(&format!("  {w}  ")).map(|i| i + 2))
            .unwrap_or_else(|| panic!("status in {line:?}"));
        assert_eq!(at, status_at, "{table}");
    }
    assert!(table.contains(long), "{table}");
}

#[test]
fn quarantined_mail_can_be_shown_and_discarded() {
    let ctx = TestCtx::new("admin-quarantine");
    let out = ingest(
        &ctx,
        b"Subject: no sender at all\r\nX-Trace: quarantine-show\r\n\r\nbody\r\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = json(&ctx, &["quarantine", "list", "--json"]);
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let shown = ok(ctx.casegate(&["quarantine", "show", &id]).output().unwrap());
    assert!(shown.contains("Reason: "), "{shown}");
    assert!(shown.contains("Size: "), "{shown}");
    assert!(
        shown.contains("X-Trace: quarantine-show"),
        "headers: {shown}"
    );
    assert!(!shown.contains("\nbody"), "headers only: {shown}");

    let discarded = ok(ctx
        .casegate(&[
            "quarantine",
            "discard",
            &id,
            "--actor",
            "admin@vendor.example",
        ])
        .output()
        .unwrap());
    assert!(discarded.contains(&format!("discarded quarantined mail {id}")));
    let held = ok(ctx.casegate(&["quarantine", "list"]).output().unwrap());
    assert!(held.contains("quarantine is empty"), "{held}");
    let all = ok(ctx
        .casegate(&["quarantine", "list", "--all"])
        .output()
        .unwrap());
    assert!(all.contains("discarded"), "{all}");
    fails(
        ctx.casegate(&["quarantine", "discard", &id])
            .output()
            .unwrap(),
        "is discarded, not held",
    );
    fails(
        ctx.casegate(&["quarantine", "show", "9999"])
            .output()
            .unwrap(),
        "no quarantined mail 9999",
    );
    // A replay leaves it alone.
    let replay = ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    assert!(replay.contains("replayed 0 mail(s)"), "{replay}");
}

#[tokio::test]
async fn a_discarded_imap_mail_stays_in_the_quarantine_folder_and_is_not_replayed() {
    let ctx = TestCtx::new("admin-quarantine-imap");
    support::append(
        &ctx.user,
        "INBOX",
        b"Subject: no sender here\r\nX-Trace: imap-discard\r\n\r\nbody\r\n",
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 quarantined"), "{summary}");
    assert_eq!(support::count(&ctx.user, "Quarantine").await, 1);
    let list: Value = json(&ctx, &["quarantine", "list", "--json"]);
    assert_eq!(list[0]["source"], "imap");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let shown = ok(ctx.casegate(&["quarantine", "show", &id]).output().unwrap());
    assert!(
        shown.contains("X-Trace: imap-discard"),
        "the headers of mail that came by IMAP: {shown}"
    );
    ok(ctx
        .casegate(&["quarantine", "discard", &id])
        .output()
        .unwrap());
    let replay = ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    assert!(replay.contains("replayed 0 mail(s)"), "{replay}");
    // Nothing is lost: the mail is still in the folder, for anyone who looks.
    assert_eq!(support::count(&ctx.user, "Quarantine").await, 1);
    assert_eq!(support::count(&ctx.user, "Processed").await, 0);
}

#[tokio::test]
async fn an_oversized_imap_mail_shows_its_headers() {
    let ctx = TestCtx::with_config(
        "admin-quarantine-big",
        "[gateway]\nmax_message_bytes = 2048\n",
    );
    let big = format!(
        "From: big@acme.example\r\nTo: support@example.com\r\nSubject: Huge logs\r\n\
         X-Trace: imap-oversized\r\n\r\n{}",
        "log line 0123456789 abcdefghij\r\n".repeat(200)
    );
    support::append(&ctx.user, "INBOX", big.as_bytes(), None).await;
    let summary = run_once(&ctx);
    assert!(summary.contains("1 quarantined"), "{summary}");
    let list: Value = json(&ctx, &["quarantine", "list", "--json"]);
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let shown = ok(ctx.casegate(&["quarantine", "show", &id]).output().unwrap());
    assert!(shown.contains("X-Trace: imap-oversized"), "{shown}");
    assert!(!shown.contains("log line"), "headers only: {shown}");
    // The replay still takes the mail from the folder, not the kept header.
    let replay = ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    assert!(replay.contains("1 still held"), "{replay}");
}

#[test]
fn the_report_lists_every_configured_engineer_also_without_activity() {
    let ctx = TestCtx::with_config("admin-report", STAFF);
    let out = ingest(
        &ctx,
        b"From: someone@acme.example\r\nTo: support@example.com\r\nSubject: Hello\r\n\r\nhi\r\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = ok(ctx.casegate(&["report"]).output().unwrap());
    assert!(report.contains("sato@vendor.example"), "{report}");
    assert!(report.contains("idle@vendor.example"), "{report}");
    let team = json(&ctx, &["report", "--json"]);
    let names: Vec<&str> = team["engineers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engineer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["idle@vendor.example", "sato@vendor.example"]);
}
