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

/// The cells of a table row, as text.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let c = &c[c.find('>').map_or(0, |p| p + 1)..];
            c[..c.find("</td>").unwrap_or(c.len())].to_string()
        })
        .collect()
}

/// The team page over real work: an engineer's reply, an internal note with a `#kb`
/// link and a close, all mailed through Dovecot with the signed reply address; the
/// customer's rating; one clock met and one breached.
#[tokio::test]
async fn the_team_page_shows_what_engineers_really_did() {
    use support::staff::{ENGINEER, customer_mail, engineer_mail, open_case, staff_config};
    use support::{append, cli::run_once, cli::show};
    let port = free_port();
    let ctx = support::staff::ctx_with(
        "webteam",
        &format!(
            "{}[admin]\nlisten = \"127.0.0.1:{port}\"\n[web]\ntimezone = \"Asia/Tokyo\"\n\
             [sla.policies.premium]\nsev1 = {{ initial = \"1h\", clock = \"24x7\" }}\n\
             sev2 = {{ initial = \"1h\", clock = \"24x7\" }}\n\
             sev3 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
             sev4 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
             [sla.policies.standard]\nsev1 = {{ initial = \"8h\" }}\nsev2 = {{ initial = \"8h\" }}\n\
             sev3 = {{ initial = \"8h\" }}\nsev4 = {{ initial = \"8h\" }}\n",
            staff_config()
        ),
    );
    let (customer, reply_addr) = open_case(&ctx, "team").await;
    // A second case, owned by the same engineer and never answered: its clock breaches.
    let other = format!("{}-late@acme.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &other,
            &format!("late-{}@acme.example", ctx.user),
            "Inventory sync is slow",
            "Severity: 4\nThe sync takes an hour.",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    ok(ctx
        .casegate(&["cases", "assign", "2", ENGINEER])
        .output()
        .unwrap());
    // The engineer answers case 1 in time, adds a note with a KB article, closes it.
    for (n, body) in [
        "#take\nPlease run the playbook with -vvv and send us the output.",
        "#kb https://kb.example.com/solutions/42\n#internal\nKnown issue, see the article.",
        "#close\nThe fix is in 2.14.1; closing the case.",
    ]
    .iter()
    .enumerate()
    {
        append(
            &ctx.user,
            "INBOX",
            &engineer_mail(
                &reply_addr,
                &format!("t{n}-{}@vendor.example", ctx.user),
                "Re: [Case #00000001] Playbook fails",
                body,
            ),
            None,
        )
        .await;
        run_once(&ctx);
    }
    assert_eq!(show(&ctx, "1")["status"], "closed");
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("r-{}@acme.example", ctx.user),
            "Re: [Case #00000001] Playbook fails",
            "★★★★☆",
        ),
        None,
    )
    .await;
    run_once(&ctx);
    let case = show(&ctx, "1");
    assert!(
        case["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "feedback" && e["detail"]["rating"] == 4),
        "{case}"
    );

    let mut d = Daemon::start(&ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while show(&ctx, "2")["sla"]["breached"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "case 2 never breached"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let base = format!("http://127.0.0.1:{port}");
    let dom = dump(&format!("{base}/team"), "en", &[]);
    assert_quiet("/team", &dom);
    // Engineer: cases commented, comments, owned, average feedback, attainment, KB.
    let sato = cells(row(&dom.dom, "engineers", ENGINEER));
    assert_eq!(
        sato,
        [ENGINEER, "1", "3", "2", "4.00", "50.0%", "1"],
        "{sato:?}"
    );
    // Queue: opened, cases commented, comments, average feedback, attainment, KB.
    let queue = cells(row(&dom.dom, "team-queues", "ansible-na"));
    assert_eq!(
        queue,
        ["ansible-na", "2", "1", "3", "4.00", "50.0%", "1"],
        "{queue:?}"
    );
    let ja = dump(&format!("{base}/team"), "ja", &[]);
    assert_quiet("/team (ja)", &ja);
    assert_eq!(cells(row(&ja.dom, "engineers", ENGINEER)), sato);
    for (lang, form, w, h) in [("en", "desktop", 1280, 900), ("ja", "phone", 390, 844)] {
        screenshot(
            &format!("{base}/team"),
            lang,
            w,
            h,
            &format!("team-real-{lang}-{form}"),
        );
    }
    assert!(d.stop().await.success());
}

/// The outbox with a failed row (the sink refuses with 554) and a waiting one (451):
/// both shown with the last error; a signed-in admin's retry (with the CSRF token)
/// sends the failed mail once the server takes it again.
#[tokio::test]
async fn the_outbox_shows_waiting_and_failed_mail_and_an_admin_retries() {
    use support::smtp_rule;
    let port = free_port();
    let hash = support::web::password_hash("correct horse battery");
    let ctx = TestCtx::with_config(
        "weboutbox",
        &format!(
            "[gateway]\nmax_message_bytes = 8192\n[admin]\nlisten = \"127.0.0.1:{port}\"\n[web]\ntimezone = \"Asia/Tokyo\"\n\
             [web.users.lead]\npassword_hash = \"{hash}\"\nroles = [\"admin\", \"viewer\"]\n"
        ),
    );
    ok(import_contracts(
        &ctx,
        "contracts.csv",
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Globex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n",
        &[],
    ));
    let refused = format!("{}-refused@globex.example", ctx.user);
    let later = format!("{}-later@globex.example", ctx.user);
    smtp_rule(&refused, "554");
    smtp_rule(&later, "451");
    for (who, id) in [(&refused, "o1"), (&later, "o2")] {
        let out = ingest(
            &ctx,
            &mail(
                who,
                "Playbook fails",
                &format!("{id}-{}@globex.example", ctx.user),
                "Severity 3. The playbook fails.",
            ),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    // Over gateway.max_message_bytes: held in quarantine, for the discard button.
    let huge = format!("{}-huge@globex.example", ctx.user);
    let out = ingest(
        &ctx,
        &mail(&huge, "Huge log", "o3@globex.example", &"x".repeat(9000)),
    );
    assert!(out.status.success(), "{}", text(&out));
    support::create(&ctx.user, "INBOX").await;
    let mut d = Daemon::start(&ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    let addr = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}");

    // Sign in as the admin.
    let form = request(&addr, "GET", "/login", &[], "").await;
    let csrf = form.cookie("casegate_csrf").expect("a CSRF cookie");
    let signin = request(
        &addr,
        "POST",
        "/login",
        &[("Cookie", &format!("casegate_csrf={csrf}"))],
        &format!("csrf={csrf}&user=lead&password=correct+horse+battery"),
    )
    .await;
    assert_eq!(signin.status, 303, "{}", signin.body);
    let session = signin.cookie("casegate_session").expect("a session");
    let cookie = format!("casegate_csrf={csrf}; casegate_session={session}");

    // Both rows, each with its last error and a retry button, once both were tried.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let r = request(&addr, "GET", "/outbox", &[("Cookie", &cookie)], "").await;
        assert_eq!(r.status, 200);
        if r.body.contains("554") && r.body.contains("451") {
            break r.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no errors on the outbox page:\n{}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let failed = row(&page, "outbox", &refused);
    let waiting = row(&page, "outbox", &later);
    assert!(
        failed.contains("class=\"bad\"") && failed.contains(">Failed<"),
        "{failed}"
    );
    assert!(failed.contains("554"), "{failed}");
    assert!(
        waiting.contains("451") && !waiting.contains("class=\"bad\""),
        "{waiting}"
    );
    for r in [failed, waiting] {
        assert!(
            r.contains(&format!("name=\"csrf\" value=\"{csrf}\"")) && r.contains("Retry"),
            "a retry button: {r}"
        );
    }
    let id = cells(failed)[0].clone();

    // Loopback in Chromium (no sign-in): the rows and their errors, no button.
    for lang in ["en", "ja"] {
        let dom = dump(&format!("{base}/outbox"), lang, &[]);
        assert_quiet("/outbox", &dom);
        assert!(row(&dom.dom, "outbox", &refused).contains("554"));
        assert!(row(&dom.dom, "outbox", &later).contains("451"));
        for (form, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
            screenshot(
                &format!("{base}/outbox"),
                lang,
                w,
                h,
                &format!("outbox-errors-{lang}-{form}"),
            );
        }
    }

    // The server takes the mail again; the admin presses retry: it goes out.
    support::TestEnv::get().sink().clear_rule(&refused);
    let r = request(
        &addr,
        "POST",
        &format!("/outbox/{id}/retry"),
        &[("Cookie", &cookie), ("Origin", &base)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    support::wait_for_smtp(&refused, 1, Duration::from_secs(15)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = request(&addr, "GET", "/outbox", &[("Cookie", &cookie)], "").await;
        if !r.body.contains(&refused) {
            assert!(r.body.contains(&later), "the waiting row stays");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "row {id} not delivered:\n{}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    support::TestEnv::get().sink().clear_rule(&later);

    // The quarantine page: a discard button per held mail; without the token it is
    // refused, with it the mail is discarded and leaves the page.
    let page = request(&addr, "GET", "/quarantine", &[("Cookie", &cookie)], "").await;
    let held = row(&page.body, "quarantine", &huge);
    let qid = cells(held)[0].clone();
    assert!(
        held.contains(&format!("action=\"/quarantine/{qid}/discard\""))
            && held.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{held}"
    );
    assert!(
        held.contains(&format!("action=\"/quarantine/{qid}/replay\"")),
        "{held}"
    );
    // Replayed alone it is still too large: it stays held.
    let replay = format!("/quarantine/{qid}/replay");
    let r = request(&addr, "POST", &replay, &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 403, "a replay without the CSRF token");
    let r = request(
        &addr,
        "POST",
        &replay,
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/quarantine?released=0&held=1"));
    let path = format!("/quarantine/{qid}/discard");
    let r = request(&addr, "POST", &path, &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 403, "a discard without the CSRF token");
    let r = request(&addr, "GET", "/quarantine", &[], "").await;
    assert!(
        r.body.contains(&huge) && !r.body.contains("/discard\""),
        "no button for loopback readers"
    );
    let r = request(
        &addr,
        "POST",
        &path,
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = request(&addr, "GET", "/quarantine", &[("Cookie", &cookie)], "").await;
    assert!(!r.body.contains(&huge), "still listed:\n{}", r.body);
    let list = ok(ctx
        .casegate(&["quarantine", "list", "--all", "--json"])
        .output()
        .unwrap());
    assert!(list.contains("discarded"), "{list}");
    assert!(d.stop().await.success());
}

/// Signs in as `user` with `password`: the CSRF token and the cookie header to send.
async fn sign_in(addr: &str, user: &str, password: &str) -> (String, String) {
    let form = request(addr, "GET", "/login", &[], "").await;
    let csrf = form.cookie("casegate_csrf").expect("a CSRF cookie");
    let r = request(
        addr,
        "POST",
        "/login",
        &[("Cookie", &format!("casegate_csrf={csrf}"))],
        &format!("csrf={csrf}&user={user}&password={password}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let session = r.cookie("casegate_session").expect("a session");
    let cookie = format!("casegate_csrf={csrf}; casegate_session={session}");
    (csrf, cookie)
}

/// Two mails held in the IMAP quarantine folder for their size; after the admin raises
/// the limit, one row's replay button brings only that mail onto a case and moves it to
/// the processed folder; the other stays held.
#[tokio::test]
async fn one_held_mail_is_replayed_by_its_own_button() {
    let port = free_port();
    let hash = support::web::password_hash("correct horse battery");
    let web = format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\n\
         [web.users.lead]\npassword_hash = \"{hash}\"\nroles = [\"admin\", \"viewer\"]\n"
    );
    let ctx = TestCtx::with_config(
        "webreplay",
        &format!("[gateway]\nmax_message_bytes = 2048\n{web}"),
    );
    ok(import_contracts(
        &ctx,
        "contracts.csv",
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Globex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n",
        &[],
    ));
    let first = format!("{}-first@globex.example", ctx.user);
    let second = format!("{}-second@globex.example", ctx.user);
    for (who, id) in [(&first, "q1"), (&second, "q2")] {
        let raw = mail(
            who,
            "Huge logs",
            &format!("{id}-{}@globex.example", ctx.user),
            &format!("Severity 3.\r\n{}", "log line\r\n".repeat(400)),
        );
        support::append(&ctx.user, "INBOX", &raw, None).await;
    }
    let summary = support::cli::run_once(&ctx);
    assert!(summary.contains("2 quarantined"), "{summary}");
    support::write_config_with(
        ctx.dir.path(),
        &ctx.user,
        &ctx.db_path,
        &format!("[gateway]\nmax_message_bytes = 1048576\n{web}"),
    );
    let mut d = Daemon::start(&ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    let addr = format!("127.0.0.1:{port}");
    let (csrf, cookie) = sign_in(&addr, "lead", "correct+horse+battery").await;
    let page = request(&addr, "GET", "/quarantine", &[("Cookie", &cookie)], "").await;
    let qid = cells(row(&page.body, "quarantine", &first))[0].clone();
    let r = request(
        &addr,
        "POST",
        &format!("/quarantine/{qid}/replay"),
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/quarantine?released=1&held=0"));
    let page = request(&addr, "GET", "/quarantine", &[("Cookie", &cookie)], "").await;
    assert!(
        !page.body.contains(&first) && page.body.contains(&second),
        "{}",
        page.body
    );
    assert_eq!(support::count(&ctx.user, "Quarantine").await, 1);
    assert_eq!(support::count(&ctx.user, "Processed").await, 1);
    let list = support::cli::cases(&ctx);
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(d.stop().await.success());
}
