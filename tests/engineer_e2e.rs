//! Engineers work cases from their own mail client, end to end with the real Dovecot
//! and SMTP server: notifications with a signed Reply-To, replies relayed to the
//! customer in the thread, commands, forgery, #split and feedback.

mod support;

use serde_json::Value;
use support::cli::{ok, run_once, show};
use support::staff::{
    ENGINEER, ctx, customer_mail, decoded_text, engineer_mail, header, open_case, wait_for,
};
use support::{append, smtp_received, wait_for_smtp};

#[tokio::test]
async fn a_notified_engineer_answers_and_steers_the_case_from_the_mail_client() {
    let ctx = ctx("eng-reply");
    let (customer, reply_addr) = open_case(&ctx, "reply").await;
    let body = "#take\n#severity 2 production deployments are blocked\n\nPlease run the playbook with -vvv and send us the output.\n\nOn Mon, Nov 23, 2026 at 9:12 AM Support <support@example.com> wrote:\n> The playbook fails on host web01.";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("e1-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            body,
        ),
        None,
    )
    .await;
    run_once(&ctx);

    // The acknowledgement, then ONE mail carrying the answer and the severity change
    // (not a severity notice and a separate reply).
    let got = wait_for_smtp(&customer, 2, std::time::Duration::from_secs(10)).await;
    assert_eq!(
        smtp_received(&customer).len(),
        2,
        "a reply that changes the severity is one mail to the customer"
    );
    let relay = got
        .iter()
        .find(|m| decoded_text(m).contains("-vvv"))
        .expect("relayed answer");
    let text = decoded_text(relay);
    assert!(
        !text.contains("#take") && !text.contains("wrote:"),
        "{text}"
    );
    assert!(text.contains("Sato Hanako"));
    assert_eq!(
        header(relay, "In-Reply-To").as_deref(),
        Some(format!("<c1-{}@acme.example>", ctx.user).as_str())
    );
    assert!(
        header(relay, "Auto-Submitted").is_none(),
        "a person wrote it"
    );
    assert!(header(relay, "Subject").is_some());
    assert!(
        text.contains("production deployments are blocked") && text.contains("severity 2"),
        "the severity change travels with the answer: {text}"
    );

    let case = show(&ctx, "1");
    assert_eq!(case["owner"], ENGINEER);
    assert_eq!(case["severity"], 2);
    assert_eq!(case["status"], "waiting");
    assert!(case["sla"]["first_response_at"].is_string(), "{case}");
    let events: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"owner_changed")
            && events.contains(&"severity_changed")
            && events.contains(&"engineer_reply"),
        "{events:?}"
    );

    // The customer answers: back to waiting on the engineer, the owner alone is notified.
    let about_this_case = || {
        smtp_received("lee@vendor.example")
            .iter()
            .filter(|m| decoded_text(&m.raw).contains(&customer))
            .count()
    };
    let before = about_this_case();
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("c2-{}@acme.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "Here is the -vvv output.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["status"], "open");
    wait_for(ENGINEER, |m| {
        decoded_text(m).contains("Here is the -vvv output.")
    })
    .await;
    assert_eq!(
        about_this_case(),
        before,
        "only the owner is told once the case has one"
    );
}

#[tokio::test]
async fn a_japanese_reply_with_a_japanese_quote_header_is_relayed_without_the_quote() {
    let ctx = ctx("eng-ja");
    let customer = format!("{}-ja@acme.co.jp", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("j1-{}@acme.co.jp", ctx.user),
            "ジョブが失敗します",
            "お世話になっております。ジョブテンプレートの実行が失敗します。",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(&customer)).await;
    let note = &note;
    let reply_addr = header(note, "Reply-To")
        .unwrap()
        .rsplit('<')
        .next()
        .unwrap()
        .trim_end_matches('>')
        .to_string();
    let body = "お世話になっております。\nログを確認いたしましたので、以下の手順をお試しください。\n\n2026年11月24日(火) 10:00 山田 太郎 <yamada@acme.co.jp>:\n> お世話になっております。\n> ジョブテンプレートの実行が失敗します。";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("ej-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] ジョブが失敗します",
            body,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let got = wait_for_smtp(&customer, 2, std::time::Duration::from_secs(10)).await;
    let relay = got
        .iter()
        .find(|m| decoded_text(m).contains("以下の手順をお試しください"))
        .expect("relay");
    let text = decoded_text(relay);
    assert!(!text.contains("山田 太郎 <yamada"), "{text}");
    assert!(
        text.contains("ジョブが失敗します"),
        "subject keeps the thread: {text}"
    );
}

#[tokio::test]
async fn a_forged_staff_mail_runs_no_command_and_is_logged() {
    let ctx = ctx("eng-forged");
    let (customer, _) = open_case(&ctx, "forged").await;
    // From the engineer's address, but to the plain support address: no token.
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            "support@example.com",
            &format!("f1-{}@evil.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "#close\nClosing this.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let case = show(&ctx, "1");
    assert_ne!(case["status"], "closed");
    let all: Vec<Value> = serde_json::from_str(&ok(ctx
        .casegate(&["cases", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let security = all.iter().any(|c| {
        let n = c["number"].as_str().unwrap();
        show(&ctx, n)["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "security")
    });
    assert!(security, "a security event is logged");
    assert!(
        smtp_received(&customer)
            .iter()
            .all(|m| !decoded_text(&m.raw).contains("Closing this."))
    );
}

#[tokio::test]
async fn unknown_commands_reach_only_the_engineer() {
    let ctx = ctx("eng-unknown");
    let (customer, reply_addr) = open_case(&ctx, "unknown").await;
    let before = smtp_received(&customer).len();
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("u1-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] x",
            "#sevrity 2 typo\nThis must not reach the customer.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let tag = format!("{}-unknown", ctx.user);
    let error = wait_for(ENGINEER, |m| {
        decoded_text(m).contains("#sevrity")
            && String::from_utf8_lossy(m).contains("00000001")
            && decoded_text(m).contains("#severity")
    })
    .await;
    assert!(!decoded_text(&error).is_empty(), "{tag}");
    assert_eq!(smtp_received(&customer).len(), before);
    assert_eq!(show(&ctx, "1")["status"], "new");
}

#[tokio::test]
async fn split_close_and_feedback() {
    let ctx = ctx("eng-split");
    let (customer, reply_addr) = open_case(&ctx, "split").await;
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("c3-{}@acme.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "Another thing: the inventory sync also fails since yesterday.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("s1-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] x",
            "#split\n#internal\nNew problem, split off.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let list: Vec<Value> = serde_json::from_str(&ok(ctx
        .casegate(&["cases", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let split = list
        .iter()
        .find(|c| c["related_case"] == "00000001")
        .expect("split case");
    let split = show(&ctx, split["number"].as_str().unwrap());
    assert!(
        split["messages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("inventory sync")
    );

    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("s2-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] x",
            "#take\n#close\nThe fix is in 2.14.1; closing the case.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["status"], "closed");
    wait_for(&customer, |m| decoded_text(m).contains("2.14.1")).await;

    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("c4-{}@acme.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "★★★★☆",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let case = show(&ctx, "1");
    assert_eq!(
        case["status"], "closed",
        "a rating does not reopen the case"
    );
    assert!(
        case["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "feedback" && e["detail"]["rating"] == 4)
    );
    let report: Value =
        serde_json::from_str(&ok(ctx.casegate(&["report", "--json"]).output().unwrap())).unwrap();
    let me = report["engineers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engineer"] == ENGINEER)
        .unwrap();
    assert_eq!(me["average_rating"], 4.0);
}

#[tokio::test]
async fn assign_transfer_status_and_links() {
    let ctx = ctx("eng-commands");
    let (customer, reply_addr) = open_case(&ctx, "commands").await;
    let body = "#assign lee@vendor.example\n#queue ansible-apac\n#status open\n#link bug:AAP-1234\n#kb https://kb.example.com/solutions/42\n#internal\nKnown issue, see the bug.";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("a1-{}@vendor.example", ctx.user),
            "Re: [Case #00000001] x",
            body,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let case = show(&ctx, "1");
    assert_eq!(case["owner"], "lee@vendor.example");
    assert_eq!(case["queue"], "ansible-apac");
    assert_eq!(case["status"], "open");
    let events = case["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "transferred" && e["detail"]["to"] == "ansible-apac")
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "linked_reference" && e["detail"]["target"] == "AAP-1234")
    );
    assert!(events.iter().any(|e| e["kind"] == "internal_note"));
    assert!(
        smtp_received(&customer)
            .iter()
            .all(|m| !decoded_text(&m.raw).contains("Known issue")),
        "#internal reaches no customer"
    );
    // An assignment to someone who is not staff is refused as a whole.
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_addr,
            &format!("a2-{}@vendor.example", ctx.user),
            "Re: x",
            "#assign nobody@else.example\nHello",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["owner"], "lee@vendor.example");
}
