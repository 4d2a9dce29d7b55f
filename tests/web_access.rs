//! Who may see the status pages and act on them, against a real daemon listening on
//! all addresses: from a non-loopback address nothing is shown without sign-in; a
//! sign-in (argon2 hash in the config) or a trusted proxy's header lets in; every page
//! has the strict CSP; an action without the CSRF token is refused and changes nothing.

mod support;

use support::TestCtx;
use support::cli::{import_contracts, ingest, ok, show, text};
use support::daemon::Daemon;
use support::mail::plain_mail;
use support::web::{free_port, outside_address, password_hash, request};

const PASSWORD: &str = "correct horse battery";

async fn daemon(tag: &str) -> (TestCtx, Daemon, u16) {
    let port = free_port();
    let hash = password_hash(PASSWORD);
    let outside = outside_address().expect("a non-loopback address (hostname -I)");
    let config = format!(
        "[admin]\nlisten = \"0.0.0.0:{port}\"\n[web]\ntrusted_proxies = [\"{outside}\"]\n\
             proxy_user_header = \"X-Remote-User\"\n\
             [web.users.lead]\npassword_hash = \"{hash}\"\nroles = [\"admin\", \"viewer\"]\n"
    );
    let (ctx, d) = seeded_daemon(tag, &config, "a1@globex.example").await;
    (ctx, d, port)
}

/// A daemon with `config` (its admin listener and `[web]` settings), one contracted
/// customer and their case (`message_id`), once its admin listener is up.
async fn seeded_daemon(tag: &str, config: &str, message_id: &str) -> (TestCtx, Daemon) {
    let ctx = TestCtx::with_config(tag, config);
    ok(import_contracts(
        &ctx,
        "contracts.csv",
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Globex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n",
        &[],
    ));
    let out = ingest(
        &ctx,
        &plain_mail(
            "ann@globex.example",
            "Secret project Falcon fails",
            message_id,
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    support::create(&ctx.user, "INBOX").await;
    let mut d = Daemon::start(&ctx, "daemon.log");
    d.wait_log("admin listener", 1).await;
    (ctx, d)
}

fn csp_is_strict(r: &support::web::Http) {
    let csp = r.header("content-security-policy").expect("a CSP header");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
}

#[tokio::test]
async fn outside_loopback_nothing_is_shown_without_sign_in() {
    let (_ctx, d, port) = daemon("webaccess").await;
    let outside = format!("{}:{port}", outside_address().unwrap());
    let local = format!("127.0.0.1:{port}");

    // Loopback: the overview, with the CSP.
    let r = request(&local, "GET", "/", &[], "").await;
    assert_eq!(r.status, 200);
    csp_is_strict(&r);
    assert!(r.body.contains("id=\"queues\""));

    // From a non-loopback address, without sign-in: refused on every page, nothing shown.
    for path in [
        "/",
        "/cases/1",
        "/queues/ansible-na",
        "/quarantine",
        "/outbox",
        "/team",
        "/live/overview",
        "/charts/backlog.svg",
    ] {
        let r = request(&outside, "GET", path, &[], "").await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(
            !r.body.contains("Falcon") && !r.body.contains("ansible-na"),
            "{path} leaks: {}",
            r.body
        );
        csp_is_strict(&r);
    }
    // Sign in from outside: the login form's CSRF cookie and field, then the password.
    let form = request(&outside, "GET", "/login", &[], "").await;
    assert_eq!(form.status, 200);
    let csrf = form.cookie("casegate_csrf").expect("a CSRF cookie");
    assert!(
        form.body
            .contains(&format!("name=\"csrf\" value=\"{csrf}\""))
    );
    let cookie = format!("casegate_csrf={csrf}");
    let wrong = request(
        &outside,
        "POST",
        "/login",
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}&user=lead&password=nope"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookie("casegate_session").is_none());
    let no_token = request(
        &outside,
        "POST",
        "/login",
        &[("Cookie", &cookie)],
        "user=lead&password=correct+horse+battery",
    )
    .await;
    assert_eq!(no_token.status, 403, "a sign-in without the CSRF token");
    let good = request(
        &outside,
        "POST",
        "/login",
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}&user=lead&password=correct+horse+battery"),
    )
    .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let session = good.cookie("casegate_session").expect("a session cookie");
    assert!(good.headers.iter().any(|(k, v)| k == "set-cookie"
        && v.contains("HttpOnly")
        && v.contains("SameSite=Strict")));
    let both = format!("casegate_csrf={csrf}; casegate_session={session}");
    let r = request(&outside, "GET", "/cases/1", &[("Cookie", &both)], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Secret project Falcon fails"));

    // Actions need the CSRF token: without it (or with another) refused, nothing changes.
    for body in ["", "csrf=0000"] {
        let r = request(
            &outside,
            "POST",
            "/outbox/1/retry",
            &[("Cookie", &both)],
            body,
        )
        .await;
        assert_eq!(r.status, 403, "retry with {body:?}");
        let r = request(
            &outside,
            "POST",
            "/quarantine/replay",
            &[("Cookie", &both)],
            body,
        )
        .await;
        assert_eq!(r.status, 403, "replay with {body:?}");
    }
    // From another site (Origin) even with the token.
    let r = request(
        &outside,
        "POST",
        "/outbox/1/retry",
        &[("Cookie", &both), ("Origin", "http://evil.example")],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 403);
    let case = show(&_ctx, "1");
    let kinds: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"delivery_retried"), "{kinds:?}");

    // With the token the signed-in admin's actions run (what the CLI's do).
    let r = request(
        &outside,
        "POST",
        "/quarantine/replay",
        &[("Cookie", &both)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/quarantine?released=0&held=0"));

    // A loopback reader without sign-in may read, not act.
    let r = request(
        &local,
        "POST",
        "/quarantine/replay",
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 403);

    // The trusted proxy's header signs in whoever it names, with their roles.
    let r = request(&outside, "GET", "/", &[("X-Remote-User", "lead")], "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(">lead<"),
        "the proxy's user is shown as signed in"
    );

    // Signing out ends the session.
    let r = request(
        &outside,
        "POST",
        "/logout",
        &[("Cookie", &both)],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303);
    let r = request(&outside, "GET", "/", &[("Cookie", &both)], "").await;
    assert_eq!(r.status, 401);
    assert!(d.stop().await.success());
}

#[tokio::test]
async fn customer_text_is_hidden_from_users_without_the_viewer_role() {
    let port = free_port();
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\n[web]\nhide_customer_text = true\n\
             trusted_proxies = [\"127.0.0.1\"]\nproxy_user_header = \"X-Remote-User\"\n\
             [web.users.reader]\nroles = []\n[web.users.lead]\nroles = [\"viewer\"]\n"
    );
    // The test folder (config, database) lives as long as the daemon.
    let (_ctx, d) = seeded_daemon("webhide", &config, "h1@globex.example").await;
    let local = format!("127.0.0.1:{port}");
    for path in ["/", "/cases/1", "/queues/ansible-na"] {
        let r = request(&local, "GET", path, &[("X-Remote-User", "reader")], "").await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !r.body.contains("Falcon") && !r.body.contains("playbook fails"),
            "{path} shows customer text: {}",
            r.body
        );
        assert!(r.body.contains("(hidden)"), "{path}");
    }
    let r = request(&local, "GET", "/cases/1", &[("X-Remote-User", "lead")], "").await;
    assert!(
        r.body.contains("Secret project Falcon fails")
            && r.body.contains("The playbook fails on every host.")
    );
    assert!(d.stop().await.success());
}
