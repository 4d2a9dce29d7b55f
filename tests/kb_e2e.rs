//! Issue 18b, end to end through Dovecot and the SMTP sink: `#kb draft` with `#close`
//! mails the engineer a scrubbed Markdown draft (the customer's Java trace kept in a
//! code block, no name, company, phone, postal address or e-mail), the engineer's reply
//! with the edited file attached (or `#kb publish URL`) records it as published by them,
//! and `casegate kb list|show|export` show and write it. One English case, one Japanese.

mod support;

use serde_json::Value;
use support::cli::{json, ok, run_once, show};
use support::staff::{ENGINEER, ctx, decoded_text, engineer_mail, header, wait_for};
use support::{TestCtx, append, smtp_received};

use casegate::mail::parse::{self, ParseLimits};

const JAVA_TRACE: &str = "java.lang.IllegalStateException: Connection pool shut down\r\n\
\tat org.apache.http.pool.AbstractConnPool.lease(AbstractConnPool.java:189)\r\n\
\tat org.example.billing.InvoiceRunner.run(InvoiceRunner.java:42)\r\n\
\t... 17 more";

fn customer_mail(from: &str, name: &str, mid: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {name} <{from}>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// An engineer's reply to `in_reply_to` with `markdown` attached as `name`.
fn reply_with_file(
    to: &str,
    mid: &str,
    in_reply_to: &str,
    subject: &str,
    body: &str,
    name: &str,
    markdown: &str,
) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(markdown.as_bytes());
    format!(
        "From: Sato Hanako <{ENGINEER}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
         In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --b1\r\nContent-Type: text/markdown; charset=utf-8\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// The reply address of the engineer's notification for `customer`.
async fn reply_address(customer: &str) -> String {
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(customer)).await;
    address_of(&header(&note, "Reply-To").expect("Reply-To"))
}

fn address_of(field: &str) -> String {
    field
        .rsplit('<')
        .next()
        .unwrap()
        .trim_end_matches('>')
        .to_string()
}

/// The draft mail about `subject` and its Markdown attachment.
async fn draft_mail(subject: &str) -> (Vec<u8>, String) {
    let raw = wait_for(ENGINEER, |m| {
        decoded_text(m).contains(subject) && String::from_utf8_lossy(m).contains("text/markdown")
    })
    .await;
    let mail = parse::parse(
        &raw,
        &ParseLimits {
            max_attachment_bytes: 1 << 20,
            max_header_bytes: parse::DEFAULT_MAX_HEADER_BYTES,
        },
    )
    .unwrap();
    let file = mail
        .attachments
        .iter()
        .find(|a| a.content_type.starts_with("text/markdown"))
        .expect("a Markdown attachment");
    assert!(
        file.filename.as_deref().unwrap().ends_with("-kb-draft.md"),
        "{file:?}"
    );
    assert!(
        String::from_utf8_lossy(&raw)
            .to_ascii_lowercase()
            .contains("text/markdown; charset=utf-8"),
        "the attachment says its charset"
    );
    let md = String::from_utf8(parse::attachment_content(&raw, file.span).unwrap()).unwrap();
    (raw, md.replace("\r\n", "\n"))
}

fn assert_absent(md: &str, forbidden: &[&str]) {
    for f in forbidden {
        assert!(!md.contains(f), "the draft contains {f:?}:\n{md}");
    }
}

fn articles(ctx: &TestCtx) -> Vec<Value> {
    json(ctx, &["kb", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_english_case_becomes_a_published_article_written_by_the_engineer() {
    let ctx = ctx("kb-en");
    let customer = format!("{}-kb@acme.example", ctx.user);
    let subject = format!("Billing job fails after upgrade {}", ctx.user);
    let first = format!(
        "Hello Support,\r\n\r\nSince the upgrade to 4.2.1 our nightly billing job fails with this error:\r\n\r\n\
         {JAVA_TRACE}\r\n\r\nSeverity: 2\r\n\r\nBest regards,\r\nJohn Smith\r\nIT Operations, Acme Inc.\r\n\
         Phone: +1 (555) 123-4567\r\n123 Main Street, Suite 400\r\nSpringfield, IL 62704\r\n{customer}\r\n"
    );
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            "John Smith",
            &format!("c1-{}@acme.example", ctx.user),
            &subject,
            &first,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let reply_to = reply_address(&customer).await;

    // The customer answers the acknowledgement's questions.
    let answer = "Hi,\r\n\r\n1. Controller 4.2.1 on RHEL 9.2\r\n2. Java: OpenJDK 17.0.9\r\n\r\nThanks,\r\nJohn\r\n";
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            "John Smith",
            &format!("c2-{}@acme.example", ctx.user),
            &format!("Re: [Case #00000001] {subject}"),
            answer,
        ),
        None,
    )
    .await;
    run_once(&ctx);

    let diagnosis = "#kb draft\n#close\n\nDear Mr Smith,\n\nThe cause is a known issue in 4.2.1: the connection pool is closed when the HTTP client times out.\n\nPlease upgrade to 4.2.2.\n\nBest regards,\nSato";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_to,
            &format!("e1-{}@vendor.example", ctx.user),
            &format!("Re: [Case #00000001] {subject}"),
            diagnosis,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["status"], "closed");

    let (draft, md) = draft_mail(&subject).await;
    assert!(
        decoded_text(&draft).contains("#kb publish"),
        "the mail says how to publish"
    );
    assert_eq!(
        header(&draft, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        md.contains(&format!("# Billing job fails after upgrade {}", ctx.user)),
        "{md}"
    );
    let trace = JAVA_TRACE.replace("\r\n", "\n");
    assert!(
        md.contains(&format!("```text\n{trace}\n```")),
        "the trace verbatim in a code block:\n{md}"
    );
    assert!(
        md.contains("- Controller 4.2.1 on RHEL 9.2") && md.contains("- Java: OpenJDK 17.0.9"),
        "{md}"
    );
    assert!(md.contains("The cause is a known issue in 4.2.1"), "{md}");
    assert!(
        !md.contains("Severity: 2"),
        "the case's severity is not the article's: {md}"
    );
    assert!(md.contains("Please upgrade to 4.2.2."), "{md}");
    assert_absent(
        &md,
        &[
            "John",
            "Smith",
            "Acme",
            "acme",
            "555",
            "Main Street",
            "Springfield",
            "62704",
            "@",
            "#kb",
            "#close",
            "Sato",
        ],
    );
    let listed = articles(&ctx);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "draft");

    // The engineer edits the file and sends it back.
    let edited = md.replace(
        "Please upgrade to 4.2.2.",
        "Upgrade to 4.2.2 or later; it keeps the pool open.",
    );
    let edited = edited.replacen(
        &format!("# Billing job fails after upgrade {}", ctx.user),
        "# Billing jobs fail with \"Connection pool shut down\"",
        1,
    );
    let draft_id = header(&draft, "Message-ID").unwrap();
    let draft_reply_to =
        address_of(&header(&draft, "Reply-To").expect("the draft has a signed Reply-To"));
    let before = smtp_received(&customer).len();
    append(
        &ctx.user,
        "INBOX",
        &reply_with_file(
            &draft_reply_to,
            &format!("e2-{}@vendor.example", ctx.user),
            &draft_id,
            &format!("Re: [Case #00000001] {subject}"),
            "Edited, thanks.",
            "article.md",
            &edited,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let listed = articles(&ctx);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "published");
    assert_eq!(listed[0]["author"], ENGINEER);
    assert_eq!(
        listed[0]["title"],
        "Billing jobs fail with \"Connection pool shut down\""
    );
    assert!(listed[0]["published_at"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        smtp_received(&customer).len(),
        before,
        "a reply about the article never reaches the customer"
    );

    let shown = ok(ctx.casegate(&["kb", "show", "00000001"]).output().unwrap());
    assert!(
        shown.starts_with(
            "---\ntitle: \"Billing jobs fail with \\\"Connection pool shut down\\\"\"\n"
        ),
        "{shown}"
    );
    assert!(shown.contains("Upgrade to 4.2.2 or later"), "{shown}");

    let out = ctx.dir.path().join("kb-site");
    let said = ok(ctx
        .casegate(&["kb", "export", out.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(said.contains("1 published article(s)"), "{said}");
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let doc = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("case-00000001-article-")
    );
    for field in [
        "case: \"00000001\"",
        "language: \"en\"",
        "product: \"ansible\"",
        &format!("author: \"{ENGINEER}\""),
        "published: \"20",
        "url: null",
    ] {
        assert!(doc.contains(field), "{field}:\n{doc}");
    }
    assert!(doc.contains(&format!("```text\n{trace}\n```")), "{doc}");
    assert_absent(&doc, &["John", "Smith", "Acme", "555", "62704"]);
}

#[tokio::test]
async fn a_japanese_case_is_drafted_in_japanese_and_published_with_its_url() {
    let ctx = ctx("kb-ja");
    let customer = format!("{}-kbja@acme.co.jp", ctx.user);
    let subject = format!("ジョブ実行時に Permission denied が発生する {}", ctx.user);
    let first = "サポートご担当者様\r\n\r\nいつもお世話になっております。\r\nアクメ株式会社の田中です。\r\n\r\n\
         本番環境で Automation Controller のジョブが失敗するようになりました。\r\n\r\n\
         Exception in thread \"main\" java.lang.SecurityException: Permission denied\r\n\
         \tat org.example.jobs.Runner.start(Runner.java:88)\r\n\r\n\
         ご確認のほど、よろしくお願いいたします。\r\n\r\n━━━━━━━━━━━━━━━━\r\nアクメ株式会社 情報システム部\r\n田中 太郎\r\n\
         〒100-0005 東京都千代田区丸の内1-1-1\r\nTEL：03-1234-5678\r\n━━━━━━━━━━━━━━━━\r\n";
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            "田中 太郎",
            &format!("j1-{}@acme.co.jp", ctx.user),
            &subject,
            first,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    assert_eq!(show(&ctx, "1")["language"], "ja");
    let reply_to = reply_address(&customer).await;

    let diagnosis = "＃kb draft\n#link bug:AAP-1234\n\n田中様\n\nお世話になっております。\n\n原因は、アップグレード時にプロジェクトディレクトリの所有者が変更されたことによるものです。\n\n所有者を awx に戻してください。\n\nよろしくお願いいたします。";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_to,
            &format!("e1-{}@vendor.example", ctx.user),
            &format!("Re: [Case #00000001] {subject}"),
            diagnosis,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let (draft, md) = draft_mail(&subject).await;
    assert!(
        decoded_text(&draft).contains("ナレッジベース記事の下書き"),
        "a Japanese mail"
    );
    for h in [
        "## 現象",
        "## 環境",
        "## 原因",
        "## 解決方法",
        "## 関連情報",
    ] {
        assert!(md.contains(h), "{h}:\n{md}");
    }
    assert!(md.contains("```text\nException in thread \"main\" java.lang.SecurityException: Permission denied\n\tat org.example.jobs.Runner.start(Runner.java:88)\n```"), "{md}");
    assert!(md.contains("所有者が変更された"), "{md}");
    assert!(
        md.contains("## 関連情報\n\n- 不具合: AAP-1234"),
        "the bug linked in the same reply: {md}"
    );
    assert_absent(
        &md,
        &[
            "田中",
            "太郎",
            "アクメ",
            "丸の内",
            "03-1234-5678",
            "100-0005",
            "@",
            "kb draft",
        ],
    );

    // The reply went to the customer (it was not about the article); the article is
    // published with its URL by a reply on the case.
    let publish = "#kb publish https://kb.example.com/ja/1234";
    append(
        &ctx.user,
        "INBOX",
        &engineer_mail(
            &reply_to,
            &format!("e2-{}@vendor.example", ctx.user),
            &format!("Re: [Case #00000001] {subject}"),
            publish,
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let listed = articles(&ctx);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "published");
    assert_eq!(listed[0]["language"], "ja");
    assert_eq!(listed[0]["url"], "https://kb.example.com/ja/1234");
    assert_eq!(listed[0]["author"], ENGINEER);
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let shown = ok(ctx.casegate(&["kb", "show", &id]).output().unwrap());
    assert!(
        shown.contains("url: \"https://kb.example.com/ja/1234\"") && shown.contains("## 現象"),
        "{shown}"
    );
    let case = show(&ctx, "1");
    let events: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"kb_drafted") && events.contains(&"kb_published"),
        "{events:?}"
    );
}

#[test]
fn kb_commands_say_what_is_missing() {
    let ctx = ctx("kb-cli");
    let listed = ok(ctx.casegate(&["kb", "list"]).output().unwrap());
    assert!(listed.contains("no articles yet"), "{listed}");
    assert_eq!(articles(&ctx), Vec::<Value>::new());
    for (arg, says) in [
        ("7", "no article 7"),
        ("00000007", "no article 00000007"),
        ("seven", "neither an article id nor a case number"),
    ] {
        let out = ctx.casegate(&["kb", "show", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{arg}");
        assert!(
            support::cli::text(&out).contains(says),
            "{arg}: {}",
            support::cli::text(&out)
        );
    }
    let dir = ctx.dir.path().join("empty-site");
    let said = ok(ctx
        .casegate(&["kb", "export", dir.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(said.contains("0 published article(s)"), "{said}");
    assert!(dir.is_dir());
}
