//! Issue 18a end to end, through the real Dovecot and SMTP server: a known issue answered
//! from the engineer's mail client (`#known ... fixed-in`), a knowledge-base article
//! drafted (`#kb draft`) and published, the case closed, the customer's rating (a low one
//! reaches the queue's lead), and `casegate report --json` counting it all, for an
//! English and a Japanese case.

mod support;

use serde_json::Value;
use support::cli::{ok, run_once, show};
use support::staff::{
    ENGINEER, ctx_with, customer_mail, decoded_text, engineer_mail, header, staff_config, wait_for,
};
use support::{TestCtx, append, repo_dir, smtp_received};

/// Staff, plus the shipped example known-issues file.
fn config() -> String {
    format!(
        "{}\n[gateway]\nknown_issues_file = \"{}/config/known_issues.toml\"\n",
        staff_config(),
        repo_dir().display()
    )
}

/// A customer mail that opens case `number`; returns the signed reply address of the
/// engineer's notification.
async fn open(ctx: &TestCtx, customer: &str, subject: &str, body: &str, number: u32) -> String {
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            customer,
            &format!("open{number}-{}@customer.example", ctx.user),
            subject,
            body,
        ),
        None,
    )
    .await;
    run_once(ctx);
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(customer)).await;
    let reply_to = header(&note, "Reply-To").expect("Reply-To on the notification");
    let addr = reply_to
        .rsplit('<')
        .next()
        .unwrap()
        .trim_end_matches('>')
        .to_string();
    assert!(
        addr.starts_with(&format!("support+c{number:08}.")),
        "{addr}"
    );
    addr
}

async fn engineer_says(ctx: &TestCtx, reply_addr: &str, mid: &str, body: &str) {
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            reply_addr,
            &format!("{mid}-{}@vendor.example", ctx.user),
            "Re: case",
            body,
        ),
        None,
    )
    .await;
    run_once(ctx);
}

async fn customer_says(ctx: &TestCtx, customer: &str, mid: &str, subject: &str, body: &str) {
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            customer,
            &format!("{mid}-{}@customer.example", ctx.user),
            subject,
            body,
        ),
        None,
    )
    .await;
    run_once(ctx);
}

fn row<'a>(report: &'a Value, list: &str, key: &str, name: &str) -> &'a Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("no {list} row {name} in {report:#}"))
}

#[tokio::test]
async fn known_issue_fixed_in_close_rating_and_the_report_in_english_and_japanese() {
    let ctx = ctx_with("known-e2e", &config());
    let en = format!("{}-en@acme.example", ctx.user);
    let ja = format!("{}-ja@acme.co.jp", ctx.user);
    let en_reply = open(
        &ctx,
        &en,
        "Job template hangs",
        "Our job template hangs at host 10,000 of the inventory.\nSeverity: 3",
        1,
    )
    .await;
    let ja_reply = open(
        &ctx,
        &ja,
        "ジョブテンプレートが停止します",
        "お世話になっております。インベントリのホストが1万台を超えるとジョブが止まります。\n重大度：3",
        2,
    )
    .await;

    // A typo in the issue id is an error mailed back to the engineer, with the
    // nearest id; the customer gets nothing and the case does not change.
    let before = smtp_received(&en).len();
    engineer_says(
        &ctx,
        &en_reply,
        "typo",
        "#known AAP-1243 fixed-in 2.14.2\nPlease upgrade.",
    )
    .await;
    wait_for(ENGINEER, |m| {
        let t = decoded_text(m);
        t.contains("AAP-1243") && t.contains("did you mean \"AAP-1234\"")
    })
    .await;
    // An older version than the fix is refused too.
    engineer_says(&ctx, &en_reply, "old", "#known AAP-1234 fixed-in 2.14.1").await;
    wait_for(ENGINEER, |m| {
        decoded_text(m).contains("AAP-1234 is fixed in 2.14.2, and 2.14.1 is older")
    })
    .await;
    assert_eq!(smtp_received(&en).len(), before, "no mail to the customer");
    assert!(show(&ctx, "1")["resolution"].is_null());

    // The answers: the upgrade mail with the issue's link, in the customer's language.
    engineer_says(
        &ctx,
        &en_reply,
        "known",
        "#take\n#known AAP-1234 fixed-in 2.14.3\nThe log you sent shows the same pause.",
    )
    .await;
    engineer_says(
        &ctx,
        &ja_reply,
        "known-ja",
        "#take\n#known aap-1234 fixed-in 2.14.2",
    )
    .await;
    let link = "https://access.example.com/issues/AAP-1234";
    let upgrade_en = wait_for(&en, |m| {
        decoded_text(m).contains("Please upgrade to 2.14.3")
    })
    .await;
    let text = decoded_text(&upgrade_en);
    assert!(text.contains(link), "{text}");
    assert!(
        text.contains("The log you sent shows the same pause."),
        "{text}"
    );
    assert!(
        !text.contains("#known"),
        "commands never reach the customer: {text}"
    );
    assert!(
        header(&upgrade_en, "Auto-Submitted").is_none(),
        "a person answered"
    );
    let upgrade_ja = wait_for(&ja, |m| {
        decoded_text(m).contains("2.14.2 以降へのアップグレード")
    })
    .await;
    let text = decoded_text(&upgrade_ja);
    assert!(
        text.contains(link) && text.contains("既知の不具合"),
        "{text}"
    );

    for n in ["1", "2"] {
        let case = show(&ctx, n);
        assert_eq!(case["resolution"], "upgrade", "{case:#}");
        assert_eq!(case["status"], "waiting");
        assert!(case["sla"]["first_response_at"].is_string());
    }
    let cases_show = ok(ctx.casegate(&["cases", "show", "1"]).output().unwrap());
    assert!(cases_show.contains("Resolution: upgrade"), "{cases_show}");

    // An internal note on the English case is a comment too.
    engineer_says(
        &ctx,
        &en_reply,
        "note",
        "#internal\nCustomer plans the upgrade for Friday.",
    )
    .await;

    // Each case becomes a knowledge-base article: a draft mailed to the engineer in the
    // case's language, then published with its URL.
    engineer_says(&ctx, &en_reply, "draft", "#kb draft").await;
    engineer_says(&ctx, &ja_reply, "draft-ja", "#kb draft").await;
    for (case, heading) in [("00000001", "## Symptom"), ("00000002", "## 現象")] {
        let file = format!("case-{case}-kb-draft.md");
        let draft = wait_for(ENGINEER, |m| String::from_utf8_lossy(m).contains(&file)).await;
        assert!(
            String::from_utf8_lossy(&draft).contains("text/markdown"),
            "{file}"
        );
        let shown = ok(ctx.casegate(&["kb", "show", case]).output().unwrap());
        assert!(shown.contains(heading), "{shown}");
    }
    engineer_says(
        &ctx,
        &en_reply,
        "publish",
        "#kb publish https://kb.example.com/en/1",
    )
    .await;
    engineer_says(
        &ctx,
        &ja_reply,
        "publish-ja",
        "#kb publish https://kb.example.com/ja/2",
    )
    .await;

    // Closed: the closure mail asks for a rating and a comment, in the customer's language.
    engineer_says(&ctx, &en_reply, "close", "#close").await;
    engineer_says(&ctx, &ja_reply, "close-ja", "#close").await;
    wait_for(&en, |m| {
        decoded_text(m).contains("a few words on what went well")
    })
    .await;
    wait_for(&ja, |m| {
        decoded_text(m).contains("1〜5の数字でご返信ください")
    })
    .await;

    // The English customer is happy; the Japanese one is not, and the lead hears of it.
    customer_says(
        &ctx,
        &en,
        "rate",
        "Re: [Case #00000001] Job template hangs",
        "5 - the upgrade fixed it",
    )
    .await;
    customer_says(
        &ctx,
        &ja,
        "rate-ja",
        "Re: [Case #00000002] ジョブテンプレートが停止します",
        "２\n回答までに時間がかかりました。",
    )
    .await;
    let lead = wait_for("leads@vendor.example", |m| decoded_text(m).contains(&ja)).await;
    let text = decoded_text(&lead);
    assert!(
        text.contains("5 段階中 2 の評価") && text.contains("回答までに時間がかかりました。"),
        "{text}"
    );
    assert!(
        smtp_received("leads@vendor.example")
            .iter()
            .all(|m| !decoded_text(&m.raw).contains(&en)),
        "a 5 tells the lead nothing"
    );
    let case = show(&ctx, "2");
    assert_eq!(case["status"], "closed");
    assert_eq!(case["feedback"]["rating"], 2);
    assert_eq!(
        case["feedback"]["comment"],
        "回答までに時間がかかりました。"
    );
    assert_eq!(
        show(&ctx, "1")["feedback"]["comment"],
        "the upgrade fixed it"
    );

    // The report: Sato commented on both cases (replies and a note), owns both.
    let report: Value =
        serde_json::from_str(&ok(ctx.casegate(&["report", "--json"]).output().unwrap())).unwrap();
    let me = row(&report, "engineers", "engineer", ENGINEER);
    assert_eq!(me["cases_commented"], 2, "{me:#}");
    // The two #known answers and the note; a mail of commands alone (#close) is none.
    assert_eq!(me["comments"], 3, "{me:#}");
    assert_eq!(me["cases_owned"], 2, "{me:#}");
    assert_eq!(me["articles_written"], 2, "{me:#}");
    assert_eq!(me["ratings"], 2, "{me:#}");
    assert_eq!(me["average_rating"], 3.5, "{me:#}");
    assert_eq!(me["resolutions"]["upgrade"], 2, "{me:#}");
    assert_eq!(me["median_round_trips"], 1.0, "{me:#}");
    let na = row(&report, "queues", "queue", "ansible-na");
    assert_eq!(na["cases_commented"], 1, "{na:#}");
    assert_eq!(na["comments"], 2, "{na:#}");
    assert_eq!(na["average_rating"], 5.0, "{na:#}");
    assert_eq!(na["articles_written"], 1, "{na:#}");
    let jq = row(&report, "queues", "queue", "ansible-ja");
    assert_eq!(jq["comments"], 1, "{jq:#}");
    assert_eq!(jq["average_rating"], 2.0, "{jq:#}");
    assert_eq!(jq["resolutions"]["upgrade"], 1, "{jq:#}");
    let lee = row(&report, "engineers", "engineer", "lee@vendor.example");
    assert_eq!(lee["comments"], 0);
    assert!(lee["average_rating"].is_null());
    assert_eq!(report["team"]["ratings"], 2);
    assert_eq!(report["team"]["articles_written"], 2);

    // CSV and text carry the same numbers.
    let csv = ok(ctx.casegate(&["report", "--csv"]).output().unwrap());
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("engineer,\"{ENGINEER}\",2,3,2,2,2,3.50,"))),
        "{csv}"
    );
    let svg = ctx.dir.path().join("trend.svg");
    let text = ok(ctx
        .casegate(&["report", "--svg", svg.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(text.contains(ENGINEER), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(ENGINEER)
            && l.split_whitespace().collect::<Vec<_>>()
                == [
                    ENGINEER, "2", "3", "2", "2", "3.50", "(2)", "100.0%", "1.0", "upgrade", "2"
                ]),
        "{text}"
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("Average customer rating per month"));
    // A period without the work shows none of it.
    let old: Value = serde_json::from_str(&ok(ctx
        .casegate(&[
            "report",
            "--json",
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-31",
        ])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(row(&old, "engineers", "engineer", ENGINEER)["comments"], 0);
}

#[tokio::test]
async fn workaround_keeps_the_case_open_and_bug_records_a_new_problem() {
    let ctx = ctx_with("known-wa", &config());
    let ja = format!("{}-ja@acme.co.jp", ctx.user);
    let reply = open(
        &ctx,
        &ja,
        "証明書更新後にログインできません",
        "お世話になっております。証明書を更新してから Web 画面にログインできなくなりました。",
        1,
    )
    .await;
    // No text of the engineer's own: the file's Japanese workaround goes out.
    engineer_says(&ctx, &reply, "wa", "#known AAP-2001 workaround").await;
    let mail = wait_for(&ja, |m| decoded_text(m).contains("回避策")).await;
    let text = decoded_text(&mail);
    assert!(
        text.contains("sudo systemctl restart automation-controller-web")
            && text.contains("https://access.example.com/issues/AAP-2001")
            && text.contains("オープンのまま"),
        "{text}"
    );
    let case = show(&ctx, "1");
    assert_eq!(case["status"], "open", "waiting for the fix");
    assert_eq!(case["resolution"], "workaround");
    // No fix yet: fixed-in is refused; #bug of a known issue is refused.
    engineer_says(&ctx, &reply, "nofix", "#known AAP-2001 fixed-in 2.16.0").await;
    wait_for(ENGINEER, |m| {
        decoded_text(m).contains("lists no fix for AAP-2001 yet")
    })
    .await;
    engineer_says(&ctx, &reply, "bugknown", "#bug AAP-2001").await;
    wait_for(ENGINEER, |m| {
        decoded_text(m).contains("AAP-2001 is a known issue already")
    })
    .await;
    // A new problem filed with development: recorded as the path and as a bug link.
    engineer_says(
        &ctx,
        &reply,
        "bug",
        "#bug AAP-3001\n#internal\nFiled with dev.",
    )
    .await;
    let case = show(&ctx, "1");
    assert_eq!(case["resolution"], "new_bug");
    assert!(
        case["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| { e["kind"] == "linked_reference" && e["detail"]["target"] == "AAP-3001" })
    );
    // #resolution together with #close.
    engineer_says(&ctx, &reply, "nff", "#resolution no-fault-found\n#close").await;
    let case = show(&ctx, "1");
    assert_eq!(case["status"], "closed");
    assert_eq!(case["resolution"], "no_fault_found");
    // Reopened and closed again: the second closure mail does not ask for a rating.
    customer_says(
        &ctx,
        &ja,
        "again",
        "Re: [Case #00000001] 証明書更新後にログインできません",
        "再発しました。ご確認をお願いいたします。",
    )
    .await;
    assert_eq!(show(&ctx, "1")["status"], "open");
    engineer_says(&ctx, &reply, "close2", "#close").await;
    let closures = || -> Vec<String> {
        smtp_received(&ja)
            .iter()
            .map(|m| decoded_text(&m.raw))
            .filter(|t| t.contains("クローズさせていただきました"))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while closures().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let closures = closures();
    assert_eq!(closures.len(), 2, "{closures:#?}");
    assert_eq!(
        closures
            .iter()
            .filter(|t| t.contains("1〜5の数字でご返信ください"))
            .count(),
        1,
        "feedback is asked once"
    );
}

/// Stops the daemon (SIGTERM, then SIGKILL after 10 s) when the test ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The running daemon picks up an edited known-issues file; a broken edit is refused
/// and the last good list stays.
#[tokio::test]
async fn the_daemon_reloads_an_edited_known_issues_file() {
    let issues = support::tempdir();
    let file = issues.path().join("known_issues.toml");
    let original = std::fs::read_to_string(repo_dir().join("config/known_issues.toml")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let ctx = ctx_with(
        "known-reload",
        &format!(
            "{}\n[gateway]\nknown_issues_file = \"{}\"\n",
            staff_config(),
            file.display()
        ),
    );
    let en = format!("{}-en@acme.example", ctx.user);
    let reply = open(&ctx, &en, "Agent crash", "The agent crashes at start.", 1).await;
    let _daemon = Daemon(
        ctx.casegate(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let send = |mid: &'static str, body: &'static str| {
        let (ctx, reply) = (&ctx, reply.clone());
        async move {
            append(
                &ctx.user,
                "INBOX",
                &engineer_mail(
                    &reply,
                    &format!("{mid}-{}@vendor.example", ctx.user),
                    "Re: case",
                    body,
                ),
                None,
            )
            .await;
        }
    };
    // The daemon is up and answers with the file as it started.
    send("r0", "#known AAP-1234 fixed-in 2.14.2").await;
    wait_for(&en, |m| {
        decoded_text(m).contains("Please upgrade to 2.14.2")
    })
    .await;
    // A broken edit (a link that is no URL) is refused: AAP-1234 still answers.
    std::fs::write(
        &file,
        original.replace(
            "link = \"https://access.example.com/issues/AAP-1234\"",
            "link = \"AAP-1234\"",
        ),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    send("r1", "#known AAP-1234 fixed-in 2.14.2").await;
    wait_for(&en, |m| {
        decoded_text(m).contains("Please upgrade to 2.14.2")
    })
    .await;
    // A good edit: a new issue answers without a restart.
    std::fs::write(
        &file,
        format!(
            "{original}\n[[issues]]\nid = \"AGT-7\"\ntitle = \"The agent crashes at start\"\n\
             fixed_in = \"3.1\"\nlink = \"https://access.example.com/issues/AGT-7\"\n"
        ),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    send("r2", "#known AGT-7 fixed-in 3.1").await;
    let mail = wait_for(&en, |m| decoded_text(m).contains("Please upgrade to 3.1")).await;
    assert!(decoded_text(&mail).contains("https://access.example.com/issues/AGT-7"));
}
