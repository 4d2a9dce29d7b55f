//! Proves the test harness (tests/support, scripts/testenv, scripts/smtp_sink.py)
//! works against the real servers.

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use support::mail::MailBuilder;
use support::*;

fn mail(n: usize, user: &str) -> Vec<u8> {
    MailBuilder::new()
        .header("From", "Customer <customer@example.net>")
        .header("To", format!("{user}@example.com"))
        .header("Subject", format!("harness test {n}"))
        .message_id(format!("{user}-{n}@example.net"))
        .header("Date", "Sat, 28 Nov 2026 10:00:00 +0000")
        .utf8_text()
        .header("Content-Transfer-Encoding", "8bit")
        .body(&format!("Hello {n}, ü日本語\n.line starting with a dot\n"))
}

fn lettre_message(to: &str, subject: &str) -> Message {
    Message::builder()
        .from("Support <support@example.com>".parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject(subject)
        .body(format!("body of {subject}\r\n"))
        .unwrap()
}

fn plain_transport(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

#[tokio::test]
async fn imap_append_and_read_back() {
    let user = unique_user("smoke-append");
    let m1 = mail(1, &user);
    let m2 = mail(2, &user);
    let date = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    append(&user, "INBOX", &m1, Some(date)).await;
    append(&user, "INBOX", &m2, None).await;

    assert_eq!(count(&user, "INBOX").await, 2);
    assert_eq!(count(&user, "Nope").await, 0, "missing mailbox counts 0");
    let uids = uids(&user, "INBOX").await;
    assert_eq!(uids.len(), 2);
    assert!(uids[0] < uids[1]);

    let all = fetch_all_with_dates(&user, "INBOX").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, uids[0]);
    assert_eq!(all[0].1, m1, "bytes of message 1");
    assert_eq!(all[1].1, m2, "bytes of message 2");
    assert_eq!(all[0].2, date, "INTERNALDATE as given");
    assert!(
        (Utc::now() - all[1].2).num_seconds().abs() < 120,
        "INTERNALDATE now"
    );

    // Other mailboxes are created on demand.
    append(&user, "Processed", &m1, None).await;
    create(&user, "Quarantine").await;
    create(&user, "Quarantine").await;
    assert_eq!(count(&user, "Processed").await, 1);
    assert_eq!(count(&user, "Quarantine").await, 0);
    assert!(uid_validity(&user, "Processed").await > 0);
}

#[tokio::test]
async fn uidvalidity_reset_renumbers_and_keeps_messages() {
    let user = unique_user("smoke-uidv");
    for mailbox in ["INBOX", "Processed"] {
        append(&user, mailbox, &mail(1, &user), None).await;
        append(&user, mailbox, &mail(2, &user), None).await;
        let before = fetch_all(&user, mailbox).await;
        let old = uid_validity(&user, mailbox).await;

        let new = reset_uidvalidity(&user, mailbox);
        assert_ne!(new, old);
        assert_eq!(
            uid_validity(&user, mailbox).await,
            new,
            "{mailbox}: SELECT shows the new UIDVALIDITY"
        );

        let after = fetch_all(&user, mailbox).await;
        assert_eq!(after.len(), 2, "{mailbox}: messages kept");
        let old_max = before.iter().map(|(u, _)| *u).max().unwrap();
        assert!(
            after.iter().all(|(u, _)| *u > old_max),
            "{mailbox}: new UIDs {after:?} vs old {before:?}"
        );
        let bodies = |v: &Vec<(u32, Vec<u8>)>| v.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>();
        assert_eq!(
            bodies(&after),
            bodies(&before),
            "{mailbox}: same messages, same order"
        );

        // New mail after the reset still gets numbered.
        append(&user, mailbox, &mail(3, &user), None).await;
        assert_eq!(count(&user, mailbox).await, 3);
    }
}

#[tokio::test]
async fn lmtp_delivers_to_user_inbox() {
    let user = unique_user("smoke-lmtp");
    let raw = mail(1, &user);
    lmtp_deliver(
        "sender@example.net",
        &[&user, &format!("{user}+detail")],
        &raw,
    )
    .await;
    let got = fetch_all(&user, "INBOX").await;
    assert_eq!(got.len(), 2);
    // LMTP adds Return-Path/Delivered-To/Received headers in front.
    assert!(got[0].1.ends_with(&raw[raw.len() - 40..]));
}

#[tokio::test]
async fn smtp_sink_keeps_mail_sent_with_lettre() {
    let env = TestEnv::get();
    let rcpt = format!("{}@example.com", unique_user("smoke-smtp"));
    let rcpt_upper = rcpt.to_uppercase();
    let t = plain_transport(env.smtp_port);
    t.send(lettre_message(&rcpt_upper, "first"))
        .await
        .expect("send 1");
    t.send(lettre_message(&rcpt, "second"))
        .await
        .expect("send 2");
    let msgs = wait_for_smtp(&rcpt, 2, Duration::from_secs(10)).await;
    assert_eq!(msgs.len(), 2);
    let text0 = String::from_utf8_lossy(&msgs[0]);
    let text1 = String::from_utf8_lossy(&msgs[1]);
    assert!(text0.contains("Subject: first"), "{text0}");
    assert!(text1.contains("Subject: second"), "{text1}");
    let rec = smtp_received(&rcpt);
    assert_eq!(rec[0].mail_from, "support@example.com");
    assert_eq!(rec[0].rcpt_to, rcpt_upper);
    assert!(!rec[0].tls);
}

#[tokio::test]
async fn smtp_rules_inject_failures() {
    let env = TestEnv::get();
    let rcpt = format!("{}@example.com", unique_user("smoke-rule"));
    let t = plain_transport(env.smtp_port);

    smtp_rule(&rcpt, "451 2");
    for i in 0..2 {
        let err = t
            .send(lettre_message(&rcpt, "retry me"))
            .await
            .expect_err("451 expected");
        assert!(err.is_transient(), "try {i}: {err}");
        assert_eq!(err.status().map(u16::from), Some(451), "try {i}: {err}");
    }
    t.send(lettre_message(&rcpt, "third time"))
        .await
        .expect("rule used up");
    let msgs = wait_for_smtp(&rcpt, 1, Duration::from_secs(10)).await;
    assert_eq!(msgs.len(), 1);

    smtp_rule(&rcpt, "554");
    for _ in 0..2 {
        let err = t
            .send(lettre_message(&rcpt, "rejected"))
            .await
            .expect_err("554 expected");
        assert!(err.is_permanent(), "{err}");
        assert_eq!(err.status().map(u16::from), Some(554));
    }
    // The raw client reports the refusal too.
    let e = smtp_send(
        env.smtp_port,
        "a@example.com",
        &[&rcpt],
        b"Subject: x\r\n\r\nx\r\n",
    )
    .await
    .unwrap_err();
    assert_eq!(e.0, 554, "{e:?}");
    smtp_clear_rule(&rcpt);
    smtp_send(
        env.smtp_port,
        "a@example.com",
        &[&rcpt],
        b"Subject: x\r\n\r\n.x\r\n",
    )
    .await
    .unwrap();
    let msgs = wait_for_smtp(&rcpt, 2, Duration::from_secs(10)).await;
    assert_eq!(msgs[1], b"Subject: x\r\n\r\n.x\r\n");
}

#[tokio::test]
async fn smtps_and_imaps_certificate_is_accepted_by_rustls() {
    let env = TestEnv::get();
    let pem = std::fs::read(&env.ca_file).unwrap();

    // SMTP over implicit TLS, verified against the test CA file.
    let rcpt = format!("{}@example.com", unique_user("smoke-smtps"));
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&pem).unwrap())
        .build_rustls()
        .unwrap();
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(env.smtps_port)
        .tls(Tls::Wrapper(tls))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    t.send(lettre_message(&rcpt, "over tls"))
        .await
        .expect("send over implicit TLS");
    wait_for_smtp(&rcpt, 1, Duration::from_secs(10)).await;
    assert!(smtp_received(&rcpt)[0].tls);

    // IMAPS handshake with tokio-rustls (ring provider), for both server names.
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&env.ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    for name in ["localhost", "127.0.0.1"] {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", env.imaps_port))
            .await
            .unwrap();
        let server_name = rustls_pki_types::ServerName::try_from(name)
            .unwrap()
            .to_owned();
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .unwrap_or_else(|e| panic!("TLS to {name}: {e}"));
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"* OK"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[tokio::test]
async fn private_sink_outage_and_recovery() {
    let mut sink = SmtpSink::start();
    let rcpt = "outage@example.com";
    smtp_send(
        sink.port,
        "a@example.com",
        &[rcpt],
        b"Subject: 1\r\n\r\n1\r\n",
    )
    .await
    .unwrap();
    sink.stop();
    let e = smtp_send(
        sink.port,
        "a@example.com",
        &[rcpt],
        b"Subject: 2\r\n\r\n2\r\n",
    )
    .await
    .unwrap_err();
    assert_eq!(e.0, 0, "connection refused while stopped: {e:?}");
    sink.resume();
    smtp_send(
        sink.port,
        "a@example.com",
        &[rcpt],
        b"Subject: 3\r\n\r\n3\r\n",
    )
    .await
    .unwrap();
    let msgs = sink.sink.wait_for(rcpt, 2, Duration::from_secs(10)).await;
    assert_eq!(msgs.len(), 2);
    assert!(msgs[1].starts_with(b"Subject: 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_imap_sessions() {
    let tag = unique_user("smoke-par");
    let mut sessions = Vec::new();
    for i in 0..50 {
        sessions.push(connect(&format!("{tag}-{}", i % 5)).await);
    }
    let mut tasks = Vec::new();
    for (i, mut s) in sessions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            s.select("INBOX").await.unwrap();
            s.append("INBOX", None, None, format!("Subject: {i}\r\n\r\n{i}\r\n"))
                .await
                .unwrap();
            s.logout().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for u in 0..5 {
        total += count(&format!("{tag}-{u}"), "INBOX").await;
    }
    assert_eq!(total, 50);
}

#[test]
fn config_is_written_and_overridable() {
    let dir = tempdir();
    let user = unique_user("smoke-config");
    let db = dir.path().join("c.db");
    let path = write_config(dir.path(), &user, &db);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("username = \"{user}\"")));
    assert!(text.contains(&format!("url = \"sqlite://{}\"", db.display())));

    let path = write_config_with(
        dir.path(),
        &user,
        &db,
        "[imap]\nidle = false\n[smtp]\nusername = \"u\"\n",
    );
    let t: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    assert_eq!(t["imap"]["idle"].as_bool(), Some(false));
    assert_eq!(
        t["imap"]["port"].as_integer(),
        Some(TestEnv::get().imap_port as i64)
    );
    assert_eq!(t["smtp"]["username"].as_str(), Some("u"));
    assert_eq!(t["gateway"]["case_tag_word"].as_str(), Some("Case"));

    let ctx = TestCtx::new("smoke-ctx");
    assert!(ctx.config.exists());
    assert!(
        ctx.casegate(&["check-config"])
            .get_program()
            .to_string_lossy()
            .ends_with("casegate")
    );
}

/// `AUTHENTICATE MECH <initial response>` on a raw connection to Dovecot; on a refusal
/// answers the server's error challenge with the empty line SASL asks for. The tagged
/// status line.
fn imap_sasl(mechanism: &str, initial: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let env = TestEnv::get();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", env.imap_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = tcp.try_clone().unwrap();
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    write!(
        w,
        "a AUTHENTICATE {mechanism} {}\r\n",
        mail::b64(initial.as_bytes())
    )
    .unwrap();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed");
        if line.starts_with("+ ") {
            w.write_all(b"\r\n").unwrap();
        } else if line.starts_with("a ") {
            return line.trim_end().to_string();
        }
    }
}

#[test]
fn token_server_rotates_refresh_tokens_and_dovecot_checks_access_tokens() {
    let user = unique_user("smoke-oauth");
    let client = unique_user("client");
    oauth::register_client(&client, "s3cret", 3, None);
    let first = oauth::grant(&client, &user, "imap");
    let refresh = |rt: &str| {
        oauth::post(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &client),
                ("client_secret", "s3cret"),
            ],
        )
    };
    let t = refresh(&first);
    let access = t["access_token"].as_str().unwrap().to_string();
    let second = t["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first, "the refresh token rotates");
    assert_eq!(t["expires_in"], 3);
    assert_eq!(
        refresh(&first)["error"],
        "invalid_grant",
        "a used refresh token is dead"
    );
    let (status, _, v) = oauth::http(
        "POST",
        "/token",
        &oauth::form_encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second),
            ("client_id", &client),
            ("client_secret", "wrong"),
        ]),
    );
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));

    let xoauth2 = |u: &str, token: &str| format!("user={u}\x01auth=Bearer {token}\x01\x01");
    assert!(imap_sasl("XOAUTH2", &xoauth2(&user, &access)).starts_with("a OK"));
    let bearer = format!("n,a={user},\x01auth=Bearer {access}\x01\x01");
    assert!(imap_sasl("OAUTHBEARER", &bearer).starts_with("a OK"));
    // The token is someone else's, made up, or expired: refused.
    let other = imap_sasl("XOAUTH2", &xoauth2("someone-else", &access));
    assert!(other.contains("AUTHENTICATIONFAILED"), "{other}");
    let made_up = imap_sasl("XOAUTH2", &xoauth2(&user, "at-made-up"));
    assert!(made_up.contains("AUTHENTICATIONFAILED"), "{made_up}");
    std::thread::sleep(Duration::from_millis(3200));
    let expired = imap_sasl("XOAUTH2", &xoauth2(&user, &access));
    assert!(expired.contains("AUTHENTICATIONFAILED"), "{expired}");
    // Revoked: its access tokens stop working too.
    let t = refresh(&second);
    let access = t["access_token"].as_str().unwrap().to_string();
    oauth::revoke_user(&user);
    let revoked = imap_sasl("XOAUTH2", &xoauth2(&user, &access));
    assert!(revoked.contains("AUTHENTICATIONFAILED"), "{revoked}");
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(rt)["error"], "invalid_grant");
    // Passwords keep working beside tokens.
    let password = imap_sasl("PLAIN", &format!("\0{user}\0{}", TestEnv::get().password));
    assert!(password.starts_with("a OK"), "{password}");
}

#[tokio::test]
async fn smtp_sink_accepts_xoauth2_tokens_of_the_token_server() {
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    let env = TestEnv::get();
    let user = unique_user("smoke-smtp-oauth");
    let client = unique_user("client");
    oauth::register_client(&client, "pw", 30, Some(&user));
    let t = oauth::post(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client),
            ("client_secret", "pw"),
            ("scope", "smtp"),
        ],
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    assert!(
        t.get("refresh_token").is_none(),
        "client_credentials: no refresh token"
    );
    let rcpt = format!("{}@example.com", unique_user("smoke-smtp-oauth-rcpt"));
    let send = |token: String| {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(env.smtp_port)
            .credentials(Credentials::new(user.clone(), token))
            .authentication(vec![Mechanism::Xoauth2])
            .timeout(Some(Duration::from_secs(10)))
            .build()
    };
    send(access.clone())
        .send(lettre_message(&rcpt, "over xoauth2"))
        .await
        .expect("XOAUTH2 with a live token");
    let err = send("at-made-up".into())
        .send(lettre_message(&rcpt, "refused"))
        .await
        .expect_err("a made-up token is refused");
    // The sink answers like Gmail and Microsoft 365: an error challenge (334) first;
    // lettre 0.11 gives up on it at once instead of answering and reading the 535.
    let text = err.to_string();
    assert!(text.contains("535") || text.contains("challenge"), "{text}");
    env.sink().wait_for(&rcpt, 1, Duration::from_secs(10)).await;
    let got = env.sink().received(&rcpt);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_user.as_deref(), Some(user.as_str()));
}
