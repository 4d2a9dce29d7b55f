//! The IMAP client (`casegate::imap`) against the real test Dovecot: connection security,
//! errors, listing and fetching by UID, moving, and IDLE.

mod support;

use std::time::{Duration, Instant};

use casegate::config::{ImapAuth, ImapSettings, Secret, TlsMode};
use casegate::imap::{IdleEnd, ImapClient, ImapError};
use casegate::runtime::shutdown_channel;
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use support::mail::mail_to_support;
use support::*;

fn settings(user: &str, host: &str, port: u16, tls: TlsMode) -> ImapSettings {
    let env = TestEnv::get();
    ImapSettings {
        host: host.into(),
        port,
        tls,
        ca_file: Some(env.ca_file.clone()),
        username: user.into(),
        password: Secret::new(env.password.clone()),
        auth: ImapAuth::Password,
        mailbox: "INBOX".into(),
        processed_mailbox: "Processed".into(),
        quarantine_mailbox: "Quarantine".into(),
        poll_interval: Duration::from_secs(30),
        idle: true,
        idle_recheck: None,
        batch_size: 200,
        batch_bytes: 16 << 20,
        timeout: Duration::from_secs(10),
    }
}

/// Plaintext to the loopback test server.
fn plain(user: &str) -> ImapSettings {
    settings(user, "127.0.0.1", TestEnv::get().imap_port, TlsMode::None)
}

async fn connect(user: &str) -> ImapClient {
    ImapClient::connect(&plain(user))
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

fn mail(user: &str, n: u32) -> Vec<u8> {
    mail_to_support(
        "Customer <customer@example.net>",
        format!("imap client test {n}"),
        format!("{user}-{n}@example.net"),
    )
    .body(&format!("Body {n}, ü日本語\n"))
}

/// The flags of every message in `mailbox`, by UID, read without changing them.
async fn flags(user: &str, mailbox: &str) -> Vec<(u32, Vec<String>)> {
    let mut s = support::connect(user).await;
    s.examine(mailbox).await.unwrap();
    let fetches: Vec<_> = s
        .uid_fetch("1:*", "(UID FLAGS)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out: Vec<_> = fetches
        .iter()
        .map(|f| {
            (
                f.uid.unwrap(),
                f.flags().map(|fl| format!("{fl:?}")).collect(),
            )
        })
        .collect();
    out.sort();
    s.logout().await.unwrap();
    out
}

#[tokio::test]
async fn connects_in_plaintext_to_loopback_and_learns_capabilities() {
    let user = unique_user("imapc-plain");
    let mut client = connect(&user).await;
    assert!(
        client.has_idle() && client.has_move(),
        "Dovecot advertises IDLE and MOVE"
    );
    let selected = client.select("INBOX").await.unwrap();
    assert_eq!(selected.exists, 0);
    assert!(selected.uid_validity > 0);
    client.logout().await;
}

#[tokio::test]
async fn connects_with_implicit_tls_trusting_the_ca_file() {
    let user = unique_user("imapc-tls");
    let s = settings(&user, "localhost", TestEnv::get().imaps_port, TlsMode::Tls);
    let mut client = ImapClient::connect(&s).await.unwrap();
    client.select("INBOX").await.unwrap();
    client.logout().await;
}

#[tokio::test]
async fn connects_with_starttls_trusting_the_ca_file() {
    let user = unique_user("imapc-starttls");
    let s = settings(
        &user,
        "127.0.0.1",
        TestEnv::get().imap_port,
        TlsMode::StartTls,
    );
    let mut client = ImapClient::connect(&s).await.unwrap();
    client.select("INBOX").await.unwrap();
    client.logout().await;
}

#[tokio::test]
async fn untrusted_certificate_is_a_permanent_error() {
    let user = unique_user("imapc-untrusted");
    let mut s = settings(&user, "localhost", TestEnv::get().imaps_port, TlsMode::Tls);
    s.ca_file = None;
    let err = ImapClient::connect(&s).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn plaintext_to_a_remote_host_is_refused_before_connecting() {
    let s = settings("someone", "mail.example.com", 143, TlsMode::None);
    let err = ImapClient::connect(&s).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "imap.tls = \"none\" is only allowed for a loopback host, not mail.example.com"
    );
    assert!(matches!(err, ImapError::PlaintextNotAllowed { .. }));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn wrong_password_is_a_permanent_login_error() {
    let user = unique_user("imapc-badpass");
    let mut s = plain(&user);
    s.password = Secret::new("not-the-password");
    let err = ImapClient::connect(&s).await.unwrap_err();
    assert!(matches!(err, ImapError::Login { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test]
async fn refused_connection_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = ImapClient::connect(&plain_on(port)).await.unwrap_err();
    assert!(matches!(err, ImapError::Connect { .. }), "{err}");
    assert!(err.is_transient());
}

fn plain_on(port: u16) -> ImapSettings {
    let mut s = plain("nobody");
    s.port = port;
    s
}

#[tokio::test]
async fn ensure_mailbox_twice_is_fine_and_missing_mailbox_is_permanent() {
    let user = unique_user("imapc-ensure");
    let mut client = connect(&user).await;
    client.ensure_mailbox("Processed").await.unwrap();
    client.ensure_mailbox("Processed").await.unwrap();
    client.ensure_mailbox("INBOX").await.unwrap();
    client.select("Processed").await.unwrap();
    let err = client.select("Nope").await.unwrap_err();
    assert!(matches!(err, ImapError::Mailbox { .. }), "{err}");
    assert!(!err.is_transient());
    client
        .select("INBOX")
        .await
        .expect("still usable after a refused SELECT");
    client.logout().await;
}

#[tokio::test]
async fn lists_and_fetches_appended_mail_with_internal_date_and_exact_bytes() {
    let user = unique_user("imapc-fetch");
    let d1 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    append(&user, "INBOX", &mail(&user, 1), Some(d1)).await;
    append(&user, "INBOX", &mail(&user, 2), None).await;
    // A zone other than UTC: 12:04:05 +0900 is 03:04:05 UTC.
    let mut s = support::connect(&user).await;
    s.append(
        "INBOX",
        None,
        Some("\"02-Jan-2026 12:04:05 +0900\""),
        mail(&user, 3),
    )
    .await
    .unwrap();
    s.logout().await.unwrap();

    let mut client = connect(&user).await;
    assert_eq!(client.select("INBOX").await.unwrap().exists, 3);
    let metas = client.list_after(0).await.unwrap();
    let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
    assert_eq!(uids.len(), 3);
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "ascending: {uids:?}");
    assert_eq!(metas[0].internal_date, d1);
    assert_eq!(metas[2].internal_date, d1);
    assert_eq!(metas[0].size as usize, mail(&user, 1).len());

    let after_second = client.list_after(uids[1]).await.unwrap();
    assert_eq!(
        after_second.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [uids[2]]
    );
    assert!(
        client.list_after(uids[2]).await.unwrap().is_empty(),
        "n:* must not return the last mail again"
    );

    let fetched = client.fetch(&[uids[2], uids[0]]).await.unwrap();
    assert_eq!(
        fetched.iter().map(|f| f.uid).collect::<Vec<_>>(),
        [uids[0], uids[2]]
    );
    assert_eq!(fetched[0].raw, mail(&user, 1));
    assert_eq!(fetched[1].raw, mail(&user, 3));
    assert_eq!(fetched[1].internal_date, d1);
    client.logout().await;

    let seen = flags(&user, "INBOX").await;
    assert!(
        seen.iter()
            .all(|(_, f)| !f.iter().any(|x| x.contains("Seen"))),
        "fetch set \\Seen: {seen:?}"
    );
}

#[tokio::test]
async fn fetch_header_returns_only_the_header() {
    let user = unique_user("imapc-header");
    append(&user, "INBOX", &mail(&user, 1), None).await;
    let mut client = connect(&user).await;
    client.select("INBOX").await.unwrap();
    let uid = client.list_after(0).await.unwrap()[0].uid;
    let header = client.fetch_header(uid).await.unwrap();
    let raw = mail(&user, 1);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(header, raw[..end]);
    let err = client.fetch_header(uid + 100).await.unwrap_err();
    assert!(matches!(err, ImapError::NoSuchMessage { .. }), "{err}");
    client.logout().await;
}

#[tokio::test]
async fn a_mail_already_seen_is_still_listed() {
    let user = unique_user("imapc-seen");
    append(&user, "INBOX", &mail(&user, 1), None).await;
    let mut s = support::connect(&user).await;
    s.select("INBOX").await.unwrap();
    let _: Vec<_> = s
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    s.logout().await.unwrap();

    let mut client = connect(&user).await;
    client.select("INBOX").await.unwrap();
    assert_eq!(client.list_after(0).await.unwrap().len(), 1);
    client.logout().await;
}

async fn check_move(user: &str, prepare: impl FnOnce(&mut ImapClient)) {
    append(user, "INBOX", &mail(user, 1), None).await;
    append(user, "INBOX", &mail(user, 2), None).await;
    append(user, "INBOX", &mail(user, 3), None).await;
    let mut client = connect(user).await;
    prepare(&mut client);
    client.ensure_mailbox("Processed").await.unwrap();
    client.select("INBOX").await.unwrap();
    let uids: Vec<u32> = client
        .list_after(0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    client
        .move_to(&[uids[0], uids[2]], "Processed")
        .await
        .unwrap();
    client.logout().await;

    assert_eq!(support::uids(user, "INBOX").await, [uids[1]]);
    let moved: Vec<Vec<u8>> = fetch_all(user, "Processed")
        .await
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    assert_eq!(moved, [mail(user, 1), mail(user, 3)]);
}

#[tokio::test]
async fn move_to_moves_with_move() {
    check_move(&unique_user("imapc-move"), |_| {}).await;
}

#[tokio::test]
async fn move_to_falls_back_to_copy_and_uid_expunge() {
    check_move(&unique_user("imapc-copy"), |c| {
        c.disable_move_for_tests(false)
    })
    .await;
}

#[tokio::test]
async fn move_to_falls_back_to_copy_and_expunge_without_uidplus() {
    check_move(&unique_user("imapc-copy-noplus"), |c| {
        c.disable_move_for_tests(true)
    })
    .await;
}

#[tokio::test]
async fn fetch_all_reads_another_folder() {
    let user = unique_user("imapc-fetchall");
    append(&user, "Quarantine", &mail(&user, 7), None).await;
    let mut client = connect(&user).await;
    let all = client.fetch_all("Quarantine").await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        [mail(&user, 7)]
    );
    client.logout().await;
}

#[tokio::test]
async fn idle_wait_returns_new_mail_when_another_connection_appends() {
    let user = unique_user("imapc-idle-new");
    let mut client = connect(&user).await;
    client.select("INBOX").await.unwrap();
    assert!(client.list_after(0).await.unwrap().is_empty());
    let (_trigger, mut shutdown) = shutdown_channel();
    let appender = {
        let user = user.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            append(&user, "INBOX", &mail(&user, 1), None).await;
        })
    };
    let start = Instant::now();
    let end = client
        .idle_wait(Duration::from_secs(20), &mut shutdown)
        .await
        .unwrap();
    assert_eq!(end, IdleEnd::NewMail);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    appender.await.unwrap();
    assert_eq!(
        client.list_after(0).await.unwrap().len(),
        1,
        "session usable after IDLE"
    );
    client.logout().await;
}

#[tokio::test]
async fn idle_wait_times_out_when_nothing_happens() {
    let user = unique_user("imapc-idle-timeout");
    let mut client = connect(&user).await;
    client.select("INBOX").await.unwrap();
    let (_trigger, mut shutdown) = shutdown_channel();
    let start = Instant::now();
    let end = client
        .idle_wait(Duration::from_millis(700), &mut shutdown)
        .await
        .unwrap();
    assert_eq!(end, IdleEnd::Timeout);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    client
        .select("INBOX")
        .await
        .expect("session usable after IDLE");
    client.logout().await;
}

#[tokio::test]
async fn idle_wait_ends_promptly_on_shutdown() {
    let user = unique_user("imapc-idle-shutdown");
    let mut client = connect(&user).await;
    client.select("INBOX").await.unwrap();
    let (trigger, mut shutdown) = shutdown_channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.trigger();
    });
    let start = Instant::now();
    let end = client
        .idle_wait(Duration::from_secs(30), &mut shutdown)
        .await
        .unwrap();
    assert_eq!(end, IdleEnd::Shutdown);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        client
            .idle_wait(Duration::from_secs(30), &mut shutdown)
            .await
            .unwrap(),
        IdleEnd::Shutdown,
        "an already fired shutdown returns at once"
    );
    client.logout().await;
}

/// Regression: the server announces new mail once, in the answer to the next command
/// (here the UID MOVE that settles a batch); IDLE does not repeat it, so the wait must
/// not start as if nothing had happened.
#[tokio::test]
async fn idle_wait_reports_mail_announced_during_an_earlier_command() {
    let user = unique_user("imapc-idle-pending");
    let mut client = connect(&user).await;
    client.ensure_mailbox("Processed").await.unwrap();
    client.select("INBOX").await.unwrap();
    append(&user, "INBOX", &mail(&user, 1), None).await;
    // Its answer carries "* 1 EXISTS" and "* 1 RECENT" (no such UID: nothing moves).
    client.move_to(&[999], "Processed").await.unwrap();
    let (_trigger, mut shutdown) = shutdown_channel();
    let start = Instant::now();
    let end = client
        .idle_wait(Duration::from_secs(5), &mut shutdown)
        .await
        .unwrap();
    assert_eq!(end, IdleEnd::NewMail);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    client.logout().await;
}

/// Another session expunges one of the fetched mails before `move_to`: the server
/// answers `NO [EXPUNGEISSUED]`; the others must still leave the inbox (issue 22).
async fn check_move_after_expunge(user: &str, prepare: impl FnOnce(&mut ImapClient)) {
    for n in 1..=3 {
        append(user, "INBOX", &mail(user, n), None).await;
    }
    let mut client = connect(user).await;
    prepare(&mut client);
    client.ensure_mailbox("Processed").await.unwrap();
    client.select("INBOX").await.unwrap();
    let uids: Vec<u32> = client
        .list_after(0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    let mut other = support::imap::connect(user).await;
    other.select("INBOX").await.unwrap();
    let _: Vec<_> = other
        .uid_store(uids[1].to_string(), "+FLAGS.SILENT (\\Deleted)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let _: Vec<_> = other.expunge().await.unwrap().try_collect().await.unwrap();
    other.logout().await.unwrap();
    client.move_to(&uids, "Processed").await.unwrap();
    client.logout().await;
    assert!(support::uids(user, "INBOX").await.is_empty());
    let moved: Vec<Vec<u8>> = fetch_all(user, "Processed")
        .await
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    assert_eq!(moved, [mail(user, 1), mail(user, 3)]);
}

#[tokio::test]
async fn move_to_moves_the_rest_when_another_client_expunged_one() {
    check_move_after_expunge(&unique_user("imapc-expunged"), |_| {}).await;
}

#[tokio::test]
async fn copy_fallback_moves_the_rest_when_another_client_expunged_one() {
    check_move_after_expunge(&unique_user("imapc-expunged-copy"), |c| {
        c.disable_move_for_tests(false)
    })
    .await;
}
