//! The status pages in a real browser: a daemon (`casegate run`) with seeded cases (mail
//! through `casegate ingest`, one quarantined), each page loaded by headless Chromium in
//! English and Japanese; the rendered DOM holds the expected figures, the console stays
//! silent (a CSP violation or a script error would show there), a customer's HTML shows
//! as text, and screenshots at desktop and phone widths go to `target/web-screenshots/`.

mod support;

use std::time::Duration;

use support::TestCtx;
use support::cli::{import_contracts, ingest, ok, text};
use support::daemon::Daemon;
use support::web::{dump, free_port, request, screenshot};

const STAFF: &str = "[staff]\n\
    [[staff.engineers]]\naddress = \"sato@vendor.example\"\nname = \"Sato Hanako\"\nregion = \"APAC\"\n\
    queues = [\"ansible-ja\", \"ansible-na\"]\n";

fn mail(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A daemon over three cases (two English in ansible-na, one Japanese in ansible-ja)
/// and one quarantined mail.
async fn seeded(tag: &str) -> (TestCtx, Daemon, String) {
    let port = free_port();
    let ctx = TestCtx::with_config(
        tag,
        &format!(
            "[gateway]\nmax_message_bytes = 8192\n[admin]\nlisten = \"127.0.0.1:{port}\"\n\
             [web]\ntimezone = \"Asia/Tokyo\"\n{STAFF}"
        ),
    );
    ok(import_contracts(
        &ctx,
        "contracts.csv",
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Globex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n",
        &[],
    ));
    let hostile = "Severity 2. Our playbook fails.\r\n<script>window.pwned = 1; console.error('pwned')</script>\r\n\
                   <img src=x onerror=\"console.error('img')\"> <b>bold?</b>\r\n\r\nOn Mon, Bob wrote:\r\n> earlier text\r\n";
    for raw in [
        mail(
            "Ann <ann@globex.example>",
            "Playbook fails <script>alert(1)</script>",
            "w1@globex.example",
            hostile,
        ),
        mail(
            "Bob <bob@globex.example>",
            "Question about inventories",
            "w2@globex.example",
            "Severity 4. How do inventories work?",
        ),
        mail(
            "佐藤 <sato.k@globex.example>",
            "プレイブックの実行が失敗します",
            "w3@globex.example",
            "お世話になっております。\r\n重要度 3 でお願いいたします。プレイブックの実行が途中で失敗します。\r\nよろしくお願いいたします。",
        ),
    ] {
        let out = ingest(&ctx, &raw);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Over gateway.max_message_bytes: quarantined with the reason.
    let big = mail(
        "Cy <cy@globex.example>",
        "Huge log",
        "w4@globex.example",
        &"x".repeat(9000),
    );
    let out = ingest(&ctx, &big);
    assert!(out.status.success(), "{}", text(&out));
    ok(ctx
        .casegate(&["cases", "assign", "1", "sato@vendor.example"])
        .output()
        .unwrap());
    support::create(&ctx.user, "INBOX").await;
    let mut d = Daemon::start(&ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    (ctx, d, format!("127.0.0.1:{port}"))
}

fn assert_quiet(page: &str, d: &support::web::Dump) {
    assert!(
        d.console.is_empty(),
        "{page}: console messages: {:#?}",
        d.console
    );
    assert!(d.dom.contains("</html>"), "{page}: no page:\n{}", d.dom);
}

/// The text of the table row of `id` whose first cell links `needle`.
fn row<'a>(dom: &'a str, table: &str, needle: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{table}\""))
        .unwrap_or_else(|| panic!("no table {table}"));
    let t = &dom[start..];
    let t = &t[..t.find("</table>").unwrap()];
    t.split("<tr")
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row {needle} in {table}:\n{t}"))
}

#[tokio::test]
async fn every_page_renders_its_figures_in_english_and_japanese() {
    let (_ctx, daemon, addr) = seeded("webui").await;
    let base = format!("http://{addr}");
    let pages = [
        "/",
        "/queues/ansible-na",
        "/cases/1",
        "/cases/3",
        "/quarantine",
        "/outbox",
        "/team",
    ];

    // Overview, English: per-queue open cases by severity, today's intake, quarantine.
    let d = dump(&format!("{base}/"), "en", &[]);
    assert_quiet("/", &d);
    assert!(d.dom.contains("<h1>Overview</h1>"));
    let na = row(&d.dom, "queues", "ansible-na");
    assert!(na.contains("class=\"num open\">2<"), "{na}");
    assert!(
        na.contains("class=\"num sev2\">1<") && na.contains("class=\"num sev4\">1<"),
        "{na}"
    );
    let ja = row(&d.dom, "queues", "ansible-ja");
    assert!(ja.contains("class=\"num open\">1<"), "{ja}");
    assert!(
        d.dom.contains("id=\"quarantine-held\">1<"),
        "quarantine tile"
    );
    assert!(d.dom.contains("id=\"intake-total\">3<"), "intake tile");
    assert!(row(&d.dom, "intake", "ansible-ja").contains(">ja<"));
    // Clocks by time left: the premium severity 2 case (2 h around the clock) first.
    let running = &d.dom[d.dom.find("id=\"running\"").unwrap()..];
    let first = running.find("/cases/1\"").unwrap();
    assert!(
        running.find("/cases/2\"").is_none_or(|p| p > first),
        "{running}"
    );
    assert!(d.dom.contains("JST"), "times in the configured zone");
    assert!(d.dom.contains("src=\"/charts/attainment.svg\""));

    // Overview, Japanese.
    let d = dump(&format!("{base}/"), "ja", &[]);
    assert_quiet("/ (ja)", &d);
    for label in [
        "<h1>概要</h1>",
        "キュー",
        "隔離メール",
        "送信待ち",
        "本日の新規ケース",
    ] {
        assert!(d.dom.contains(label), "no {label} in the Japanese overview");
    }
    assert!(d.dom.contains("lang=\"ja\""));

    // The case page: the customer's HTML is text, never markup; quoted history folded.
    let d = dump(&format!("{base}/cases/1"), "en", &[]);
    assert_quiet("/cases/1", &d);
    assert!(
        d.dom.contains("&lt;script&gt;window.pwned = 1;"),
        "script shown as text"
    );
    assert!(
        d.dom.contains("&lt;img src=x onerror="),
        "img shown as text"
    );
    assert!(
        !d.dom.contains("<img src=\"x\""),
        "no img element from the mail"
    );
    assert!(!d.dom.contains("<b>bold?</b>"));
    assert!(
        d.dom
            .contains("<details><summary>Show quoted history</summary>")
    );
    assert!(d.dom.contains("sato@vendor.example"), "the owner");
    assert!(d.dom.contains("id=\"clocks\"") && d.dom.contains("First response"));
    assert!(d.dom.contains("id=\"events\""), "audit trail");
    let d = dump(&format!("{base}/cases/3"), "ja", &[]);
    assert_quiet("/cases/3 (ja)", &d);
    assert!(d.dom.contains("プレイブックの実行が失敗します") && d.dom.contains("初回応答"));

    // Queue, quarantine, outbox, team.
    let d = dump(&format!("{base}/queues/ansible-na"), "en", &[]);
    assert_quiet("/queues/ansible-na", &d);
    assert!(d.dom.contains("href=\"/cases/1\"") && d.dom.contains("href=\"/cases/2\""));
    assert!(
        !d.dom.contains("href=\"/cases/3\""),
        "the Japanese case is in ansible-ja"
    );
    let d = dump(&format!("{base}/quarantine"), "ja", &[]);
    assert_quiet("/quarantine (ja)", &d);
    assert!(d.dom.contains("too large:") && d.dom.contains("cy@globex.example"));
    assert!(
        d.dom.contains("管理者としてサインイン"),
        "replay needs a signed-in admin"
    );
    let d = dump(&format!("{base}/outbox"), "en", &[]);
    assert_quiet("/outbox", &d);
    assert!(d.dom.contains("<h1>Outbox</h1>"));
    let d = dump(&format!("{base}/team"), "en", &[]);
    assert_quiet("/team", &d);
    let sato = row(&d.dom, "engineers", "sato@vendor.example");
    assert!(sato.contains("class=\"num\">1<"), "one case owned: {sato}");

    // The overview refreshes itself: after the poll (15 s of virtual time) the figures
    // were replaced in place, with no console message.
    let d = dump(&format!("{base}/"), "en", &["--virtual-time-budget=16000"]);
    assert_quiet("/ (after a poll)", &d);
    assert!(
        d.dom.contains("data-refreshed=\"1\""),
        "the poll did not run:\n{}",
        d.dom
    );
    assert!(d.dom.contains("id=\"quarantine-held\">1<"));

    // The charts are SVG drawn by the server.
    let svg = request(
        &addr,
        "GET",
        "/charts/backlog.svg",
        &[("Accept-Language", "ja")],
        "",
    )
    .await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(svg.body.contains("<svg") && svg.body.contains("日ごとの未解決ケース数"));

    // Screenshots of every page, both languages, desktop and phone.
    for lang in ["en", "ja"] {
        for page in pages {
            let name = if page == "/" {
                "overview".to_string()
            } else {
                page.trim_start_matches('/').replace('/', "-")
            };
            for (w, h, form) in [(1280, 900, "desktop"), (390, 844, "phone")] {
                screenshot(
                    &format!("{base}{page}"),
                    lang,
                    w,
                    h,
                    &format!("{name}-{lang}-{form}"),
                );
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(daemon.stop().await.success());
}
