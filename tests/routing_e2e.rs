//! Issue 3 acceptance, end to end: customer mail goes through the real Dovecot and
//! `casegate run --once` (or the daemon), is checked against imported contracts,
//! routed to a regional queue in the right language, and the right templated mail
//! (acknowledgement, refusal, redirect, forward) reaches the real SMTP server.
//! Also `contracts import` / `contracts list`; the reload of the files admins edit is in
//! `routing_reload.rs`.

mod support;

use casegate::mail::Inbound;
use casegate::mail::parse::{ParseLimits, parse};
use serde_json::Value;
use support::cli::{cases, ok, run_once, show};
use support::mail::iso2022jp_mail;
use support::routing::{HEADER, import, mail, mail_to, routed, scenario_contracts};
use support::{SinkMessage, TestCtx, append, is_our_message_id, smtp_received};

// ---------------------------------------------------------------------------
// helpers

/// The cases opened by `customer` (lower-case address), oldest first, in full.
fn cases_of(ctx: &TestCtx, customer: &str) -> Vec<Value> {
    cases(ctx)
        .iter()
        .filter(|c| c["customer"] == customer)
        .map(|c| show(ctx, c["number"].as_str().unwrap()))
        .collect()
}

/// The one case `customer` opened.
fn case_of(ctx: &TestCtx, customer: &str) -> Value {
    let mut found = cases_of(ctx, customer);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one case from {customer}: {found:#?}"
    );
    found.remove(0)
}

fn events_of<'a>(case: &'a Value, kind: &str) -> Vec<&'a Value> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// Mail the shared SMTP sink received for `rcpt`, parsed.
fn inbox_of(rcpt: &str) -> Vec<(SinkMessage, Inbound)> {
    smtp_received(rcpt)
        .into_iter()
        .map(|m| {
            let parsed = parse(&m.raw, &ParseLimits::default())
                .unwrap_or_else(|e| panic!("our own mail does not parse: {e}"));
            (m, parsed)
        })
        .collect()
}

/// Exactly one mail for `rcpt` in the shared sink.
fn the_mail_to(rcpt: &str) -> Inbound {
    let mut got = inbox_of(rcpt);
    assert_eq!(
        got.len(),
        1,
        "expected exactly one mail to {rcpt}, got {}: {:#?}",
        got.len(),
        got.iter().map(|(_, m)| &m.subject).collect::<Vec<_>>()
    );
    got.remove(0).1
}

fn case_tag(case: &Value) -> String {
    format!("[Case #{}]", case["number"].as_str().unwrap())
}

// ---------------------------------------------------------------------------
// the acceptance scenario

#[tokio::test]
async fn every_sender_lands_in_the_right_queue_and_gets_the_right_mail() {
    let ctx = TestCtx::new("routing");
    let u = ctx.user.clone();
    ok(import(&ctx, "contracts.csv", &scenario_contracts(&u)));

    // Addresses: the unique user in every local part, so that the shared SMTP sink's
    // per-recipient folders belong to this test run alone.
    let ja = format!("yamada-{u}@acme.co.jp");
    let au = format!("bruce-{u}@kangaroo-logistics.com.au");
    let de = format!("klaus-{u}@rheinwerk.de");
    let expired = format!("mary-{u}@oldharbor.co.uk");
    let stranger = format!("eve-{u}@stranger.example");
    let freemail = format!("tanaka-{u}@gmail.com");
    let free_contact = format!("partner-{u}@gmail.com");
    let subdomain = format!("ops-{u}@ops.tokyo.acme.co.jp");
    let renewal = format!("procurement-{u}@rheinwerk.de");
    let playbook = format!("sheila-{u}@kangaroo-logistics.com.au");
    let ja_quote = format!("suzuki-{u}@acme.co.jp");
    let not_covered = format!("wal-{u}@kangaroo-logistics.com.au");
    let plus = format!("matilda-{u}@kangaroo-logistics.com.au");
    let chinese = format!("wang-{u}@dragoncloud.cn");
    let en_signature = format!("kato-{u}@acme.co.jp");

    let log = "TASK [deploy : restart service] ****************************************\n\
               fatal: [web01]: FAILED! => {\"changed\": false, \"msg\": \"Unable to restart service httpd: Job for httpd.service failed\"}\n\
               PLAY RECAP *************************************************************\n\
               web01 : ok=12 changed=3 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0\n";
    let mails: Vec<Vec<u8>> = vec![
        iso2022jp_mail(
            &format!("ja-{u}@acme.co.jp"),
            "山田 太郎",
            &ja,
            "プレイブック実行時にエラーが発生します",
            "サポートご担当者様\n\nいつもお世話になっております。株式会社アクメの山田です。\n\
             本番環境でプレイブックを実行したところ、以下のエラーが発生しました。\n\
             原因と対処方法についてご教示いただけますでしょうか。\n\nよろしくお願いいたします。\n",
        ),
        mail(
            &format!("au-{u}@kangaroo-logistics.com.au"),
            Some("Bruce Wayne"),
            &au,
            "Playbook fails on RHEL 9 hosts",
            "",
            &format!(
                "Hi team,\n\nOur nightly playbook run fails on all RHEL 9 hosts since yesterday.\n\n{log}\nCan you help?\n\nBruce\n"
            ),
        ),
        mail(
            &format!("de-{u}@rheinwerk.de"),
            Some("Klaus Becker"),
            &de,
            "AWX job templates time out",
            "",
            "Hello,\n\nsince the upgrade our AWX job templates time out after 10 minutes.\nWhat can we check?\n\nKlaus\n",
        ),
        mail(
            &format!("gb-{u}@oldharbor.co.uk"),
            Some("Mary Jones"),
            &expired,
            "Ansible inventory sync broken",
            "",
            "Hello,\n\nthe inventory sync stopped working this morning. Please help.\n",
        ),
        mail(
            &format!("x-{u}@stranger.example"),
            None,
            &stranger,
            "Need help with ansible",
            "",
            "Hi, my playbook does not work. Please help.\n",
        ),
        mail(
            &format!("free-{u}@gmail.com"),
            Some("田中 花子"),
            &freemail,
            "インベントリの同期について",
            "",
            "お世話になっております。株式会社アクメの田中です。\n個人のアドレスから失礼いたします。\n\
             インベントリの同期が失敗するようになりました。ご確認をお願いいたします。\n",
        ),
        mail(
            &format!("fc-{u}@gmail.com"),
            Some("Partner Consultant"),
            &free_contact,
            "Execution environment build fails",
            "",
            "Hello,\n\nI work for ACME as a consultant. Building our execution environment fails with a pip error.\n",
        ),
        mail(
            &format!("sub-{u}@ops.tokyo.acme.co.jp"),
            Some("運用チーム"),
            &subdomain,
            "ジョブテンプレートのタイムアウトについて",
            "",
            &format!(
                "お世話になっております。運用チームの佐藤です。\n\
                 ジョブテンプレートを実行すると、下記のようにタイムアウトが発生します。\n\n{log}{log}{log}\n\
                 回避策があればご教示ください。\nよろしくお願いいたします。\n"
            ),
        ),
        mail(
            &format!("renew-{u}@rheinwerk.de"),
            Some("Petra Procurement"),
            &renewal,
            "Subscription renewal 2027",
            "",
            "Hello,\n\nwe would like to renew our subscription for 2027. Could you send us a quote for 40 nodes?\n\nPetra\n",
        ),
        mail(
            &format!("ps-{u}@kangaroo-logistics.com.au"),
            Some("Sheila"),
            &playbook,
            "Playbook for our patching",
            "",
            "Hi,\n\nwe need to patch 300 servers every month. Could you please write this playbook for us? \
             It should patch, reboot and report.\n\nThanks, Sheila\n",
        ),
        mail(
            &format!("quote-{u}@acme.co.jp"),
            Some("鈴木 一郎"),
            &ja_quote,
            "契約更新のお見積りについて",
            "",
            "いつもお世話になっております。\n来年度の契約更新にあたり、見積をお送りいただけますでしょうか。\nよろしくお願いいたします。\n",
        ),
        mail(
            &format!("cn-{u}@dragoncloud.cn"),
            Some("王伟"),
            &chinese,
            "剧本运行失败",
            "",
            "您好，\n\n我们的剧本在生产环境中运行失败了。请帮助我们检查这个问题。\n\n谢谢！\n王伟\n",
        ),
        mail(
            &format!("sig-{u}@acme.co.jp"),
            Some("Kenji Kato"),
            &en_signature,
            "Playbook fails with become",
            "",
            "Hello,\n\nour playbook fails when become is enabled on RHEL 8 hosts. What can we check?\n\nBest regards,\n\
             --\n加藤 健二\n株式会社アクメ 情報システム部\n東京都千代田区丸の内1-1-1\n",
        ),
        mail_to(
            "support+satellite@example.com",
            &format!("plus-{u}@kangaroo-logistics.com.au"),
            None,
            &plus,
            "Sync question",
            "",
            "Hello,\n\nhow often should the sync run?\n",
        ),
        mail(
            &format!("nc-{u}@kangaroo-logistics.com.au"),
            None,
            &not_covered,
            "Satellite capsule sync fails",
            "",
            "Hello,\n\nour Satellite capsule does not sync the content view anymore.\n",
        ),
    ];
    for m in &mails {
        append(&ctx.user, "INBOX", m, None).await;
    }
    let summary = run_once(&ctx);
    assert!(
        summary.contains(&format!("{} new case(s)", mails.len())),
        "{summary}"
    );
    assert!(
        summary.contains("outbox: 18 sent, 0 to retry, 0 failed"),
        "{summary}"
    );

    let r = |q: &str, l: &str, reg: &str, e: &str, s: &str| {
        (
            q.to_string(),
            l.to_string(),
            reg.to_string(),
            e.to_string(),
            s.to_string(),
        )
    };

    // --- entitled Japanese customer: Japanese queue, Japanese acknowledgement.
    let c = case_of(&ctx, &ja);
    assert_eq!(
        routed(&c),
        r("ansible-ja", "ja", "APAC", "entitled", "new"),
        "{c:#}"
    );
    assert_eq!(c["account"], "ACME Corporation Japan");
    assert_eq!(c["product"], "ansible");
    assert!(c["sla"]["first_response_due"].is_string(), "{c:#}");
    let m = the_mail_to(&ja);
    assert_eq!(
        m.subject,
        format!(
            "Re: {} プレイブック実行時にエラーが発生します",
            case_tag(&c)
        )
    );
    for phrase in [
        "ACME Corporation Japan",
        "山田 太郎 様",
        "いつもお世話になっております。",
        "初回回答期限",
        c["number"].as_str().unwrap(),
    ] {
        assert!(
            m.text.contains(phrase),
            "{phrase:?} missing from the Japanese acknowledgement:\n{}",
            m.text
        );
    }
    assert!(!m.text.contains("Thank you for contacting"), "{}", m.text);

    // --- English APAC (AU contract).
    let c = case_of(&ctx, &au);
    assert_eq!(
        routed(&c),
        r("ansible-apac", "en", "APAC", "entitled", "new"),
        "{c:#}"
    );
    assert_eq!(c["account"], "Kangaroo Logistics Pty Ltd");
    let m = the_mail_to(&au);
    assert_eq!(
        m.subject,
        format!("Re: {} Playbook fails on RHEL 9 hosts", case_tag(&c))
    );
    for phrase in [
        "Hello Bruce Wayne,",
        "Thank you for contacting Example Support",
        "First response due by:",
        "(Australia/Sydney)",
    ] {
        assert!(
            m.text.contains(phrase),
            "{phrase:?} missing from the acknowledgement:\n{}",
            m.text
        );
    }

    // --- English EMEA (DE contract).
    let c = case_of(&ctx, &de);
    assert_eq!(
        routed(&c),
        r("ansible-emea", "en", "EMEA", "entitled", "new"),
        "{c:#}"
    );
    assert_eq!(c["account"], "Rheinwerk Automation GmbH");
    let m = the_mail_to(&de);
    assert_eq!(
        m.subject,
        format!("Re: {} AWX job templates time out", case_tag(&c))
    );
    assert!(
        m.text.contains("Hello Klaus Becker,") && m.text.contains("(Europe/Berlin)"),
        "{}",
        m.text
    );

    // --- expired contract: refused, no SLA, English refusal naming the end date.
    let c = case_of(&ctx, &expired);
    assert_eq!(
        (c["entitlement"].as_str(), c["status"].as_str()),
        (Some("expired"), Some("refused")),
        "{c:#}"
    );
    assert_eq!(c["account"], "Old Harbor Shipping Ltd");
    assert_eq!(c["region"], "EMEA");
    assert_eq!(c["sla"]["first_response_due"], Value::Null);
    let m = the_mail_to(&expired);
    assert_eq!(
        m.subject,
        format!("Re: {} Ansible inventory sync broken", case_tag(&c))
    );
    assert!(
        m.text.contains("ended on 2024-12-31") && m.text.contains("sales@example.com"),
        "{}",
        m.text
    );

    // --- a stranger: no contract, refused, default region.
    let c = case_of(&ctx, &stranger);
    assert_eq!(
        (c["entitlement"].as_str(), c["status"].as_str()),
        (Some("no_contract"), Some("refused")),
        "{c:#}"
    );
    assert_eq!(c["account"], Value::Null);
    assert_eq!(c["region"], "NA");
    assert_eq!(c["sla"]["first_response_due"], Value::Null);
    let m = the_mail_to(&stranger);
    assert!(
        m.text
            .contains("could not find an active support subscription")
            && m.text.contains(&stranger),
        "{}",
        m.text
    );

    // --- an ACME person writing from gmail.com: never matched by domain; refused in Japanese.
    let c = case_of(&ctx, &freemail);
    assert_eq!(routed(&c).3, "no_contract", "{c:#}");
    assert_eq!(
        (c["status"].as_str(), c["language"].as_str()),
        (Some("refused"), Some("ja")),
        "{c:#}"
    );
    assert_eq!(c["account"], Value::Null);
    let m = the_mail_to(&freemail);
    assert_eq!(
        m.subject,
        format!("Re: {} インベントリの同期について", case_tag(&c))
    );
    assert!(
        m.text.contains("田中 花子 様")
            && m.text
                .contains("有効なサポート契約を確認することができませんでした"),
        "{}",
        m.text
    );

    // --- a contact address registered on the contract matches even at a free-mail provider.
    let c = case_of(&ctx, &free_contact);
    assert_eq!(
        routed(&c),
        r("ansible-apac", "en", "APAC", "entitled", "new"),
        "{c:#}"
    );
    assert_eq!(c["account"], "ACME Corporation Japan");
    let triaged = events_of(&c, "triaged");
    assert_eq!(triaged[0]["detail"]["matched_by"], "contact", "{c:#}");
    assert!(
        the_mail_to(&free_contact)
            .text
            .contains("First response due by:")
    );

    // --- a subdomain sender: ops.tokyo.acme.co.jp matches acme.co.jp; Japanese prose
    //     among a lot of pasted English log lines is Japanese.
    let c = case_of(&ctx, &subdomain);
    assert_eq!(
        routed(&c),
        r("ansible-ja", "ja", "APAC", "entitled", "new"),
        "{c:#}"
    );
    assert_eq!(c["account"], "ACME Corporation Japan");
    assert_eq!(
        events_of(&c, "triaged")[0]["detail"]["matched_by"],
        "domain"
    );
    let m = the_mail_to(&subdomain);
    assert!(
        m.text.contains("運用チーム 様") && m.text.contains("いつもお世話になっております。"),
        "{}",
        m.text
    );

    // --- a renewal question: out of scope, redirected to Sales and forwarded there.
    let c = case_of(&ctx, &renewal);
    assert_eq!(c["entitlement"], "out_of_scope", "{c:#}");
    assert_ne!(
        c["status"], "new",
        "an out-of-scope mail is not worked: {c:#}"
    );
    assert_eq!(c["sla"]["first_response_due"], Value::Null);
    assert_eq!(events_of(&c, "out_of_scope")[0]["detail"]["scope"], "sales");
    let m = the_mail_to(&renewal);
    assert_eq!(
        m.subject,
        format!("Re: {} Subscription renewal 2027", case_tag(&c))
    );
    assert!(
        m.text
            .contains("Our sales team takes care of these questions")
            && m.text.contains("sales@example.com"),
        "{}",
        m.text
    );
    let (fwd, original) = forwarded_with_original("sales@example.com", &renewal);
    assert_eq!(
        fwd.subject,
        format!("Fwd: {} Subscription renewal 2027", case_tag(&c))
    );
    // A short covering note: case number, customer, account, why.
    for fact in [
        c["number"].as_str().unwrap(),
        "Petra Procurement",
        renewal.as_str(),
        "Rheinwerk Automation GmbH",
        "renewal, pricing or a quote",
    ] {
        assert!(fwd.text.contains(fact), "{fact:?} missing:\n{}", fwd.text);
    }
    // The customer's mail itself, attached as it came: its own Message-ID intact.
    assert_eq!(
        original.message_id.as_deref(),
        Some(format!("renew-{u}@rheinwerk.de").as_str())
    );
    assert!(
        original.text.contains("renew our subscription for 2027"),
        "{}",
        original.text
    );
    assert_eq!(
        fwd.reply_to.first().map(|a| a.email.as_str()),
        Some(renewal.as_str()),
        "Sales answers the customer directly"
    );

    // --- "please write this playbook for us": Professional Services.
    let c = case_of(&ctx, &playbook);
    assert_eq!(c["entitlement"], "out_of_scope", "{c:#}");
    assert_ne!(c["status"], "new", "{c:#}");
    assert_eq!(
        events_of(&c, "out_of_scope")[0]["detail"]["scope"],
        "professional_services",
        "{c:#}"
    );
    let m = the_mail_to(&playbook);
    assert!(
        m.text.contains("Professional Services team") && m.text.contains("consulting@example.com"),
        "{}",
        m.text
    );
    let (fwd, original) = forwarded_with_original("consulting@example.com", &playbook);
    assert_eq!(
        fwd.subject,
        format!("Fwd: {} Playbook for our patching", case_tag(&c))
    );
    assert!(fwd.text.contains("write or test code"), "{}", fwd.text);
    assert!(
        original.text.contains("write this playbook for us"),
        "{}",
        original.text
    );

    // --- a Japanese quote request: Sales, with the Japanese redirect.
    let c = case_of(&ctx, &ja_quote);
    assert_eq!(
        (c["entitlement"].as_str(), c["language"].as_str()),
        (Some("out_of_scope"), Some("ja")),
        "{c:#}"
    );
    let m = the_mail_to(&ja_quote);
    assert!(
        m.text.contains("鈴木 一郎 様") && m.text.contains("営業窓口（sales@example.com）"),
        "{}",
        m.text
    );
    // Its original is 8-bit (UTF-8 body, 8bit): attached as base64 original.eml, the
    // Japanese text intact.
    let (fwd, original) = forwarded_with_original("sales@example.com", &ja_quote);
    assert!(
        fwd.attachments
            .iter()
            .any(|a| a.filename.as_deref() == Some("original.eml")
                && a.content_type == "application/octet-stream"),
        "{:#?}",
        fwd.attachments
    );
    assert!(original.text.contains('見'), "{}", original.text);
    assert!(
        fwd.text
            .contains("ご契約そのもの（更新・価格・お見積もり）")
            && fwd.text.contains("鈴木 一郎 様"),
        "{}",
        fwd.text
    );

    // --- a product the contract does not cover.
    let c = case_of(&ctx, &not_covered);
    assert_eq!(
        (
            c["entitlement"].as_str(),
            c["status"].as_str(),
            c["product"].as_str()
        ),
        (Some("not_covered"), Some("refused"), Some("satellite")),
        "{c:#}"
    );
    let m = the_mail_to(&not_covered);
    assert!(
        m.text
            .contains("satellite, which your current support subscription does not cover"),
        "{}",
        m.text
    );

    // --- Chinese (kanji only, no kana) is not Japanese: the English APAC queue.
    let c = case_of(&ctx, &chinese);
    assert_eq!(
        routed(&c),
        r("ansible-apac", "en", "APAC", "entitled", "new"),
        "{c:#}"
    );
    let m = the_mail_to(&chinese);
    assert!(
        m.text.contains("Hello 王伟,") && m.text.contains("(Asia/Shanghai)"),
        "{}",
        m.text
    );

    // --- English with a Japanese signature block is English.
    let c = case_of(&ctx, &en_signature);
    assert_eq!(
        routed(&c),
        r("ansible-apac", "en", "APAC", "entitled", "new"),
        "{c:#}"
    );
    assert!(
        the_mail_to(&en_signature)
            .text
            .contains("Hello Kenji Kato,")
    );

    // --- the product named by plus addressing (support+satellite@), not by keywords.
    let c = case_of(&ctx, &plus);
    assert_eq!(
        (c["product"].as_str(), c["entitlement"].as_str()),
        (Some("satellite"), Some("not_covered")),
        "{c:#}"
    );
    assert!(the_mail_to(&plus).text.contains("does not cover"));

    // Each outbound mail of a case has its own stable Message-ID: the redirect is the
    // case's first, the forward its second.
    let c = case_of(&ctx, &renewal);
    let n = c["number"].as_str().unwrap();
    let ids: Vec<&str> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{c:#}");
    assert!(
        is_our_message_id(ids[0], n, 1) && is_our_message_id(ids[1], n, 2),
        "{c:#}"
    );
    assert_eq!(the_mail_to(&renewal).message_id.as_deref(), Some(ids[0]));
    assert_eq!(
        forwarded("sales@example.com", &renewal)
            .1
            .message_id
            .as_deref(),
        Some(ids[1])
    );
}

#[tokio::test]
async fn a_contract_is_judged_on_the_receipt_date_and_its_last_day_is_covered() {
    use chrono::TimeZone;
    let ctx = TestCtx::new("expiry-day");
    let u = ctx.user.clone();
    ok(import(&ctx, "contracts.csv", &scenario_contracts(&u)));
    let last_day = format!("lastday-{u}@oldharbor.co.uk");
    let next_day = format!("nextday-{u}@oldharbor.co.uk");
    // INTERNALDATE (the receipt time) decides, not the Date header nor the processing time.
    let on =
        |d: u32, m: u32, y: i32| Some(chrono::Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap());
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("ld-{u}@oldharbor.co.uk"),
            None,
            &last_day,
            "Inventory sync broken",
            "",
            "Help.\n",
        ),
        on(31, 12, 2024),
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("nd-{u}@oldharbor.co.uk"),
            None,
            &next_day,
            "Inventory sync broken",
            "",
            "Help.\n",
        ),
        on(1, 1, 2025),
    )
    .await;
    run_once(&ctx);
    let c = case_of(&ctx, &last_day);
    assert_eq!(
        (c["entitlement"].as_str(), c["status"].as_str()),
        (Some("entitled"), Some("new")),
        "the end date is covered: {c:#}"
    );
    assert!(
        the_mail_to(&last_day)
            .text
            .contains("First response due by:")
    );
    let c = case_of(&ctx, &next_day);
    assert_eq!(
        (c["entitlement"].as_str(), c["status"].as_str()),
        (Some("expired"), Some("refused")),
        "{c:#}"
    );
    assert!(the_mail_to(&next_day).text.contains("ended on 2024-12-31"));
}

/// The one forward of `customer`'s mail that reached the desk address `desk` (shared by
/// every test: pick ours by the customer's unique address), and the original it
/// attaches as `message/rfc822` (issue 12: it used to be inline text only), or, when
/// the original is 8-bit, as base64 `original.eml`. Either way the forward is 7-bit
/// clean: it needs no 8BITMIME at the relay (an 8-bit original went as 8bit).
fn forwarded_with_original(desk: &str, customer: &str) -> (Inbound, Inbound) {
    let (raw, fwd) = forwarded(desk, customer);
    assert!(
        raw.is_ascii(),
        "the forward of {customer}'s mail is not 7-bit clean"
    );
    let attached: Vec<_> = fwd
        .attachments
        .iter()
        .filter(|a| {
            a.content_type == "message/rfc822"
                || (a.content_type == "application/octet-stream"
                    && a.filename.as_deref() == Some("original.eml"))
        })
        .collect();
    assert_eq!(attached.len(), 1, "{:#?}", fwd.attachments);
    let bytes = casegate::mail::parse::attachment_content(&raw, attached[0].span)
        .expect("the attached original");
    let original = parse(&bytes, &ParseLimits::default()).expect("the original parses");
    assert_eq!(original.from.email, customer);
    (fwd, original)
}

fn forwarded(desk: &str, customer: &str) -> (Vec<u8>, Inbound) {
    let ours: Vec<(Vec<u8>, Inbound)> = inbox_of(desk)
        .into_iter()
        .map(|(raw, m)| (raw.raw, m))
        .filter(|(_, m)| m.text.contains(customer))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "expected one forward of {customer}'s mail to {desk}, got {}",
        ours.len()
    );
    let (raw, m) = ours.into_iter().next().unwrap();
    assert_eq!(m.from.email, "support@example.com");
    assert_eq!(
        m.headers.auto_submitted, None,
        "a forward is not an automatic reply"
    );
    (raw, m)
}

#[tokio::test]
async fn a_refused_sender_is_refused_once_within_the_interval() {
    let ctx = TestCtx::new("refuse-once");
    let u = ctx.user.clone();
    ok(import(&ctx, "contracts.csv", &scenario_contracts(&u)));
    let stranger = format!("eve-{u}@stranger.example");
    let expired = format!("mary-{u}@oldharbor.co.uk");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("s1-{u}@stranger.example"),
            None,
            &stranger,
            "Help with ansible",
            "",
            "It fails.\n",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("e1-{u}@oldharbor.co.uk"),
            None,
            &expired,
            "Inventory broken",
            "",
            "Please help.\n",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(inbox_of(&stranger).len(), 1);
    assert_eq!(inbox_of(&expired).len(), 1);
    let refusal_id = case_of(&ctx, &stranger)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "out")
        .and_then(|m| m["message_id"].as_str())
        .unwrap()
        .to_string();

    // Both write again: a new mail, and a reply to the refusal. Neither is answered.
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("s2-{u}@stranger.example"),
            None,
            &stranger,
            "Still need help!!",
            "",
            "Anyone?\n",
        ),
        None,
    )
    .await;
    let reply_headers = format!("In-Reply-To: <{refusal_id}>\r\nReferences: <{refusal_id}>\r\n");
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("s3-{u}@stranger.example"),
            None,
            &stranger,
            "Re: Help with ansible",
            &reply_headers,
            "But why?\n",
        ),
        None,
    )
    .await;
    append(
        &ctx.user,
        "INBOX",
        &mail(
            &format!("e2-{u}@oldharbor.co.uk"),
            None,
            &expired,
            "Inventory still broken",
            "",
            "Hello?\n",
        ),
        None,
    )
    .await;
    let summary = run_once(&ctx);
    assert!(
        summary.contains("2 new case(s), 1 added to existing cases"),
        "{summary}"
    );
    assert!(summary.contains("outbox: 0 sent"), "{summary}");
    assert_eq!(
        inbox_of(&stranger).len(),
        1,
        "no second refusal within the interval"
    );
    assert_eq!(
        inbox_of(&expired).len(),
        1,
        "no second refusal within the interval"
    );

    let stranger_cases = cases_of(&ctx, &stranger);
    assert_eq!(
        stranger_cases.len(),
        2,
        "the new mail is filed as its own (refused) case"
    );
    for c in &stranger_cases {
        assert_eq!(c["status"], "refused");
    }
    let first = &stranger_cases[0];
    let inbound = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(inbound, 2, "the reply joined the refused case: {first:#}");
    assert!(
        !events_of(first, "auto_reply_suppressed").is_empty(),
        "{first:#}"
    );
    let second = &stranger_cases[1];
    let why = events_of(second, "auto_reply_suppressed");
    assert!(
        why.iter().any(|e| e["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("already refused")),
        "{second:#}"
    );
    let expired_cases = cases_of(&ctx, &expired);
    assert_eq!(expired_cases.len(), 2);
    assert!(
        expired_cases
            .iter()
            .all(|c| c["entitlement"] == "expired" && c["status"] == "refused")
    );
}

// ---------------------------------------------------------------------------
// contracts import / list

#[test]
fn contracts_import_is_all_or_nothing_idempotent_and_listed() {
    let ctx = TestCtx::new("contracts-cli");
    let bad = format!(
        "{HEADER}\
         Good Co,C-1,premium,ansible,good.example,,US,2025-01-01,2030-12-31\n\
         Bad Date Co,C-2,standard,ansible,baddate.example,,US,2025-01-01,2026-13-01\n\
         # a comment line\n\
         Bad Country Co,C-3,standard,ansible,badcountry.example,,Narnia,2025-01-01,2030-12-31\n\
         Fine Co,C-4,standard,satellite,fine.example,,DE,2025-01-01,2030-12-31\n\
         Suffix Co,C-5,standard,ansible,co.jp,,JP,2025-01-01,2030-12-31\n"
    );
    let out = import(&ctx, "bad.csv", &bad);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad file fails: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bad.csv: line 3:") && l.contains("2026-13-01")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bad.csv: line 5:") && l.to_lowercase().contains("country")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bad.csv: line 7:") && l.contains("co.jp")),
        "a public suffix is not a company's domain: {stdout}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("line 2:") || l.contains("line 6:")),
        "good rows are not reported: {stdout}"
    );
    assert!(stdout.contains("nothing imported"), "{stdout}");
    // Nothing of a bad file is imported: the database was not even created, and
    // listing says so instead of showing an empty list.
    assert!(!ctx.db_path.exists(), "nothing of a bad file is imported");
    let listed = ctx
        .casegate(&["contracts", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&listed.stderr).contains("does not exist"));

    let good = format!(
        "{HEADER}\
         Good Co,C-1,premium,ansible,good.example,it@good.example;boss@good.example,US,2025-01-01,2030-12-31\n\
         Fine Co,C-4,standard,satellite;ansible,fine.example,,DE,2025-01-01,2030-12-31\n"
    );
    let first = ok(import(&ctx, "good.csv", &good));
    assert!(
        first.contains("imported 2 contract(s)") && first.contains("2 new, 0 updated, 0 unchanged"),
        "{first}"
    );
    let again = ok(import(&ctx, "good.csv", &good));
    assert!(
        again.contains("0 new, 0 updated, 2 unchanged"),
        "importing twice changes nothing: {again}"
    );
    let listed: Value = serde_json::from_str(&ok(ctx
        .casegate(&["contracts", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let list = listed.as_array().unwrap();
    assert_eq!(list.len(), 2, "{listed:#}");
    let good_co = list.iter().find(|c| c["contract_id"] == "C-1").unwrap();
    assert_eq!(good_co["account"], "Good Co");
    assert_eq!(good_co["tier"], "premium");
    assert_eq!(good_co["products"], serde_json::json!(["ansible"]));
    assert_eq!(good_co["domains"], serde_json::json!(["good.example"]));
    assert_eq!(
        good_co["contacts"],
        serde_json::json!(["it@good.example", "boss@good.example"])
    );
    assert_eq!(good_co["country"], "US");
    assert_eq!(good_co["start"], "2025-01-01");
    assert_eq!(good_co["end"], "2030-12-31");

    // An edited row is an update, not a second contract.
    let edited = good.replace("2030-12-31\nFine", "2031-12-31\nFine");
    let third = ok(import(&ctx, "good.csv", &edited));
    assert!(third.contains("0 new, 1 updated, 1 unchanged"), "{third}");
    let listed: Value = serde_json::from_str(&ok(ctx
        .casegate(&["contracts", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contract_id"] == "C-1")
            .unwrap()["end"],
        "2031-12-31"
    );
    // The table form names the contracts too.
    let table = ok(ctx.casegate(&["contracts", "list"]).output().unwrap());
    assert!(
        table.contains("C-1") && table.contains("Fine Co"),
        "{table}"
    );
}
