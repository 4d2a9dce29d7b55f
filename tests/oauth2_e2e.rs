//! OAuth2 sign-in end to end: casegate against Dovecot's `oauth2` passdb and the SMTP
//! sink's XOAUTH2, both checking tokens with the test token server
//! (`scripts/token_server.py`), whose access tokens live two seconds.

mod support;

use std::time::{Duration, Instant};

use support::cli::{cases, ok};
use support::daemon::Daemon;
use support::mail::MailBuilder;
use support::oauth;
use support::{TestCtx, TestEnv, append, count, dovecot_logins, kick, unique_user};

fn mail(n: usize, user: &str) -> Vec<u8> {
    MailBuilder::new()
        .header("From", format!("Customer {n} <customer{n}@example.net>"))
        .header("To", "support@example.com")
        .header("Subject", format!("oauth2 question {n}"))
        .header("Date", "Mon, 23 Nov 2026 09:00:00 +0000")
        .message_id(format!("{user}-{n}@example.net"))
        .utf8_text()
        .body(&format!("Question number {n}.\n"))
}

/// A registered client, a first refresh token in `<test dir>/refresh-token`, and the
/// config that signs in to IMAP with it (`extra` merged over that).
fn oauth_ctx(tag: &str, access_ttl: u32, extra: &str) -> (TestCtx, String) {
    let client = unique_user("client");
    let base = format!(
        r#"[imap]
auth = "oauth2"
password = "not-the-password"
[oauth2]
token_url = "{url}/token"
client_id = "{client}"
client_secret = "client-secret"
scopes = ["imap", "smtp"]
refresh_token_file = "refresh-token"
"#,
        url = oauth::base_url()
    );
    let ctx = TestCtx::with_config(tag, &support::merge_toml(&base, extra));
    oauth::register_client(&client, "client-secret", access_ttl, Some(&ctx.user));
    let rt = oauth::grant(&client, &ctx.user, "imap smtp");
    std::fs::write(ctx.dir.path().join("refresh-token"), format!("{rt}\n")).unwrap();
    (ctx, client)
}

fn refresh_token(ctx: &TestCtx) -> String {
    std::fs::read_to_string(ctx.dir.path().join("refresh-token"))
        .unwrap()
        .trim()
        .to_string()
}

async fn wait_processed(ctx: &TestCtx, n: usize, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&ctx.user, "Processed").await < n {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "only {} of {n} mails processed:\n{}",
            count(&ctx.user, "Processed").await,
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_drain_over_xoauth2_outlives_expiring_access_tokens_and_rotating_refresh_tokens() {
    let (ctx, _) = oauth_ctx(
        "oauth-drain",
        2,
        "[imap]\nsasl_mechanism = \"xoauth2\"\nidle_recheck_ms = 100\n",
    );
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    let mut seen = vec![refresh_token(&ctx)];
    let rounds = 4;
    for round in 0..rounds {
        for i in 0..3 {
            append(&ctx.user, "INBOX", &mail(round * 10 + i, &ctx.user), None).await;
        }
        wait_processed(&ctx, (round + 1) * 3, &mut daemon).await;
        // Let the access token expire, then make the daemon sign in again.
        tokio::time::sleep(Duration::from_millis(2300)).await;
        assert!(kick(&ctx.user), "round {round}: no session to kick");
        let deadline = Instant::now() + Duration::from_secs(15);
        while dovecot_logins(&ctx.user, "XOAUTH2") < round + 2 {
            daemon.assert_running();
            assert!(
                Instant::now() < deadline,
                "no new sign-in:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = refresh_token(&ctx);
        assert!(
            !seen.contains(&now),
            "round {round}: the refresh token rotated"
        );
        seen.push(now);
    }
    // Mail that arrives after the last sign-in is still picked up.
    append(&ctx.user, "INBOX", &mail(99, &ctx.user), None).await;
    wait_processed(&ctx, rounds * 3 + 1, &mut daemon).await;
    let status = daemon.stop().await;
    assert!(status.success(), "daemon exit: {status}");

    assert_eq!(cases(&ctx).len(), rounds * 3 + 1, "every mail one case");
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    // (imap.password is wrong on purpose: the daemon's every sign-in was a token.)
    assert!(dovecot_logins(&ctx.user, "XOAUTH2") > rounds);
    let log = std::fs::read_to_string(ctx.dir.path().join("daemon.log")).unwrap();
    oauth::assert_no_token_in("the daemon log", &log);
    // Nor do the servers' logs hold any token they were shown.
    for server_log in ["dovecot.log", "smtp.log", "token_server.log"] {
        let text = std::fs::read_to_string(TestEnv::get().dir.join(server_log)).unwrap_or_default();
        oauth::assert_no_token_in(server_log, &text);
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_is_a_clear_error_and_loses_no_mail() {
    let (ctx, client) = oauth_ctx("oauth-revoked", 30, "");
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    append(&ctx.user, "INBOX", &mail(2, &ctx.user), None).await;
    oauth::revoke_user(&ctx.user);

    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "run --once must fail:\n{stderr}");
    assert!(
        stderr.contains("refresh token was refused (invalid_grant")
            && stderr.contains("casegate oauth2 login"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("invalid_grant").count(),
        1,
        "said once:\n{stderr}"
    );
    assert_eq!(
        count(&ctx.user, "INBOX").await,
        2,
        "the mail waits in the inbox"
    );
    oauth::assert_no_token_in("stderr", &stderr);

    // The admin signs in again: everything is filed, nothing twice.
    let rt = oauth::grant(&client, &ctx.user, "imap smtp");
    std::fs::write(ctx.dir.path().join("refresh-token"), format!("{rt}\n")).unwrap();
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    oauth::assert_no_token_in("stderr", &String::from_utf8_lossy(&out.stderr));
    ok(out);
    assert_eq!(cases(&ctx).len(), 2);
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
}

#[tokio::test]
async fn oauthbearer_is_chosen_when_the_server_offers_it_and_smtp_signs_in_with_xoauth2() {
    let env = TestEnv::get();
    let (ctx, _) = oauth_ctx("oauth-bearer", 30, "");
    // Acknowledgements go out over AUTH XOAUTH2 with the same token source.
    let ctx = {
        let extra = format!(
            "[smtp]\nauth = \"oauth2\"\nusername = \"{}\"\nport = {}\n",
            ctx.user, env.smtp_port
        );
        let text = support::merge_toml(&std::fs::read_to_string(&ctx.config).unwrap(), &extra);
        std::fs::write(&ctx.config, text).unwrap();
        ctx
    };
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(
        &csv,
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Example,C-EX,premium,ansible,example.net,,US,2025-01-01,2030-12-31\n",
    )
    .unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ok(out);
    assert_eq!(dovecot_logins(&ctx.user, "OAUTHBEARER"), 1);
    assert_eq!(cases(&ctx).len(), 1);
    let acks = env.sink().received("customer1@example.net");
    let ours: Vec<_> = acks
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.raw).contains("oauth2 question 1"))
        .filter(|m| m.auth_user.as_deref() == Some(ctx.user.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "one acknowledgement sent over XOAUTH2");
    oauth::assert_no_token_in("stderr", &stderr);
}

#[tokio::test]
async fn the_client_credentials_grant_reads_a_shared_mailbox_without_a_refresh_token() {
    let (ctx, _) = oauth_ctx(
        "oauth-app",
        30,
        "[oauth2]\ngrant = \"client_credentials\"\nrefresh_token_file = \"no-such-file\"\n",
    );
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    assert_eq!(cases(&ctx).len(), 1);
    assert!(!ctx.dir.path().join("no-such-file").exists());
}

#[tokio::test]
async fn a_refused_cached_access_token_is_renewed_once_and_the_daemon_signs_in_again() {
    let (ctx, _) = oauth_ctx("oauth-renew", 300, "[imap]\nidle_recheck_ms = 100\n");
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    wait_processed(&ctx, 1, &mut daemon).await;
    let before = refresh_token(&ctx);
    // The cached token is still young, but the server no longer honours it.
    oauth::revoke_access_tokens(&ctx.user);
    let logins = dovecot_logins(&ctx.user, "OAUTHBEARER");
    assert!(kick(&ctx.user));
    append(&ctx.user, "INBOX", &mail(2, &ctx.user), None).await;
    wait_processed(&ctx, 2, &mut daemon).await;
    assert_eq!(dovecot_logins(&ctx.user, "OAUTHBEARER"), logins + 1);
    assert_ne!(refresh_token(&ctx), before, "a new token was fetched");
    let log = daemon.log();
    assert!(log.contains("the server refused the access token"), "{log}");
    assert!(daemon.stop().await.success());
    oauth::assert_no_token_in("the daemon log", &log);
}

#[tokio::test]
async fn a_google_service_account_signs_a_jwt_and_reads_the_mailbox_it_names() {
    let ctx = TestCtx::with_config("oauth-sa", "");
    let dir = ctx.dir.path();
    // A key as Google hands it out: PKCS#8 PEM inside a JSON key file.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "key.pem",
    ]);
    openssl(&["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    let email = format!(
        "{}@casegate-test.iam.gserviceaccount.com",
        unique_user("sa")
    );
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key": std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        "token_uri": format!("{}/token", oauth::base_url()),
    });
    std::fs::write(dir.join("sa.json"), key.to_string()).unwrap();
    oauth::register_service_account(
        &email,
        &std::fs::read_to_string(dir.join("pub.pem")).unwrap(),
        30,
    );
    let extra = format!(
        "[imap]\nauth = \"oauth2\"\npassword = \"not-the-password\"\n\
         [oauth2]\ngrant = \"service_account\"\nservice_account_key_file = \"sa.json\"\n\
         token_url = \"{}/token\"\nscopes = [\"https://mail.google.com/\"]\n",
        oauth::base_url()
    );
    let text = support::merge_toml(&std::fs::read_to_string(&ctx.config).unwrap(), &extra);
    std::fs::write(&ctx.config, text).unwrap();

    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ok(out);
    assert_eq!(cases(&ctx).len(), 1);
    assert_eq!(dovecot_logins(&ctx.user, "OAUTHBEARER"), 1);
    oauth::assert_no_token_in("stderr", &stderr);

    // A key the token server does not know is refused, by reason.
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "other.pem",
    ]);
    let other = serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key": std::fs::read_to_string(dir.join("other.pem")).unwrap(),
    });
    std::fs::write(dir.join("sa.json"), other.to_string()).unwrap();
    append(&ctx.user, "INBOX", &mail(2, &ctx.user), None).await;
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(stderr.contains("invalid_grant: bad signature"), "{stderr}");
    assert_eq!(count(&ctx.user, "INBOX").await, 1, "the mail waits");
}

#[tokio::test]
async fn a_refresh_token_rotated_by_another_casegate_command_is_read_from_the_file() {
    let (ctx, _) = oauth_ctx("oauth-shared-file", 2, "[imap]\nidle_recheck_ms = 100\n");
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    wait_processed(&ctx, 1, &mut daemon).await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // The admin checks the sign-in while the daemon runs: that rotates the token.
    let before = refresh_token(&ctx);
    ok(ctx
        .casegate(&["check-config", "--online"])
        .output()
        .unwrap());
    assert_ne!(refresh_token(&ctx), before);
    assert!(kick(&ctx.user));
    append(&ctx.user, "INBOX", &mail(2, &ctx.user), None).await;
    wait_processed(&ctx, 2, &mut daemon).await;
    let log = daemon.log();
    assert!(!log.contains("invalid_grant"), "{log}");
    assert!(daemon.stop().await.success());
}

#[tokio::test]
async fn the_daemon_keeps_running_on_a_revoked_refresh_token_and_recovers_after_a_new_sign_in() {
    let (ctx, client) = oauth_ctx("oauth-no-crash-loop", 30, "[imap]\nidle_recheck_ms = 100\n");
    oauth::revoke_user(&ctx.user);
    append(&ctx.user, "INBOX", &mail(1, &ctx.user), None).await;
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    daemon
        .wait_log("refresh token was refused (invalid_grant", 1)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.assert_running();
    assert_eq!(count(&ctx.user, "INBOX").await, 1, "the mail waits");
    // An admin signs in again; the running daemon picks the new token up.
    let rt = oauth::grant(&client, &ctx.user, "imap smtp");
    std::fs::write(ctx.dir.path().join("refresh-token"), format!("{rt}\n")).unwrap();
    wait_processed(&ctx, 1, &mut daemon).await;
    let log = daemon.log();
    assert!(daemon.stop().await.success());
    oauth::assert_no_token_in("the daemon log", &log);
}

#[tokio::test]
async fn a_wrong_client_secret_and_an_unreachable_token_endpoint_say_why() {
    let (ctx, _) = oauth_ctx("oauth-reasons", 30, "[oauth2]\nclient_secret = \"wrong\"\n");
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not accept client") && stderr.contains("invalid_client"),
        "{stderr}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = support::merge_toml(
        &std::fs::read_to_string(&ctx.config).unwrap(),
        &format!("[oauth2]\ntoken_url = \"http://127.0.0.1:{port}/token\"\n"),
    );
    std::fs::write(&ctx.config, text).unwrap();
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot reach the token endpoint: cannot connect to 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
}
