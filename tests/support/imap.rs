//! IMAP (async-imap over plain TCP to the test Dovecot), LMTP delivery, and
//! UIDVALIDITY reset. Every function opens its own connection and logs out again.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::TestEnv;

pub type ImapSession = Session<TcpStream>;

fn is_no(e: &async_imap::error::Error) -> bool {
    matches!(e, async_imap::error::Error::No(_))
}

/// A logged-in session for `user` (plain TCP, 127.0.0.1:imap_port).
pub async fn connect(user: &str) -> ImapSession {
    let env = TestEnv::get();
    let tcp = TcpStream::connect(("127.0.0.1", env.imap_port))
        .await
        .unwrap_or_else(|e| panic!("connect to IMAP port {}: {e}", env.imap_port));
    tcp.set_nodelay(true).ok();
    let mut client = Client::new(tcp);
    // async-imap does not read the greeting by itself.
    let greeting = client
        .read_response()
        .await
        .expect("read IMAP greeting")
        .expect("IMAP server closed before its greeting");
    drop(greeting);
    client
        .login(user, &env.password)
        .await
        .unwrap_or_else(|(e, _)| panic!("IMAP login as {user}: {e}"))
}

async fn logout(mut s: ImapSession) {
    let _ = s.logout().await;
}

/// Creates `mailbox` unless it exists (INBOX always exists).
async fn ensure_mailbox(s: &mut ImapSession, mailbox: &str) {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return;
    }
    if let Err(e) = s.create(mailbox).await {
        // NO [ALREADYEXISTS] is fine; anything else will show in the next command.
        assert!(is_no(&e), "CREATE {mailbox}: {e}");
    }
}

/// IMAP date-time: `"28-Nov-2026 10:11:07 +0000"` (with the quotes).
pub fn imap_date(t: DateTime<Utc>) -> String {
    format!("\"{}\"", t.format("%d-%b-%Y %H:%M:%S +0000"))
}

/// APPENDs `raw` to `user`'s `mailbox` (created when missing), with INTERNALDATE
/// `internal_date` (the server's now when None) and no flags.
pub async fn append(user: &str, mailbox: &str, raw: &[u8], internal_date: Option<DateTime<Utc>>) {
    let mut s = connect(user).await;
    ensure_mailbox(&mut s, mailbox).await;
    let date = internal_date.map(imap_date);
    s.append(mailbox, None, date.as_deref(), raw)
        .await
        .unwrap_or_else(|e| panic!("APPEND to {user}/{mailbox}: {e}"));
    logout(s).await;
}

/// CREATEs `mailbox` for `user` (no error when it already exists).
pub async fn create(user: &str, mailbox: &str) {
    let mut s = connect(user).await;
    ensure_mailbox(&mut s, mailbox).await;
    logout(s).await;
}

/// EXAMINE (read-only); None when the mailbox does not exist.
async fn examine(s: &mut ImapSession, mailbox: &str) -> Option<async_imap::types::Mailbox> {
    match s.examine(mailbox).await {
        Ok(m) => Some(m),
        Err(e) if is_no(&e) => None,
        Err(e) => panic!("EXAMINE {mailbox}: {e}"),
    }
}

/// UIDs in `mailbox`, ascending (empty when the mailbox does not exist).
pub async fn uids(user: &str, mailbox: &str) -> Vec<u32> {
    let mut s = connect(user).await;
    let mut out = Vec::new();
    if examine(&mut s, mailbox).await.is_some() {
        out = s
            .uid_search("ALL")
            .await
            .unwrap_or_else(|e| panic!("UID SEARCH in {user}/{mailbox}: {e}"))
            .into_iter()
            .collect();
        out.sort_unstable();
    }
    logout(s).await;
    out
}

/// `(uid, full raw message)` for every message, ascending by UID; read with
/// BODY.PEEK[] so \Seen is not set. Empty when the mailbox does not exist.
pub async fn fetch_all(user: &str, mailbox: &str) -> Vec<(u32, Vec<u8>)> {
    fetch_all_with_dates(user, mailbox)
        .await
        .into_iter()
        .map(|(uid, raw, _)| (uid, raw))
        .collect()
}

/// Like [`fetch_all`], with each message's INTERNALDATE.
pub async fn fetch_all_with_dates(user: &str, mailbox: &str) -> Vec<(u32, Vec<u8>, DateTime<Utc>)> {
    let mut s = connect(user).await;
    let mut out = Vec::new();
    if let Some(mb) = examine(&mut s, mailbox).await
        && mb.exists > 0
    {
        let fetches: Vec<_> = s
            .uid_fetch("1:*", "(UID INTERNALDATE BODY.PEEK[])")
            .await
            .unwrap_or_else(|e| panic!("UID FETCH in {user}/{mailbox}: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("UID FETCH in {user}/{mailbox}: {e}"));
        for f in fetches {
            let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                continue;
            };
            let date = f
                .internal_date()
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default();
            out.push((uid, body.to_vec(), date));
        }
        out.sort_by_key(|(uid, _, _)| *uid);
    }
    logout(s).await;
    out
}

/// Number of messages in `mailbox`; 0 when it does not exist.
pub async fn count(user: &str, mailbox: &str) -> usize {
    let mut s = connect(user).await;
    let n = examine(&mut s, mailbox)
        .await
        .map(|m| m.exists as usize)
        .unwrap_or(0);
    logout(s).await;
    n
}

/// Polls until `mailbox` holds at least `n` messages; panics after `timeout`.
/// Returns the count seen.
pub async fn wait_for_count(user: &str, mailbox: &str, n: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let c = count(user, mailbox).await;
        if c >= n {
            return c;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?}: {user}/{mailbox} holds {c} messages, expected at least {n}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// UIDVALIDITY of `mailbox` (panics when it does not exist).
pub async fn uid_validity(user: &str, mailbox: &str) -> u32 {
    let mut s = connect(user).await;
    let v = examine(&mut s, mailbox)
        .await
        .unwrap_or_else(|| panic!("mailbox {user}/{mailbox} does not exist"))
        .uid_validity
        .unwrap_or_else(|| panic!("no UIDVALIDITY for {user}/{mailbox}"));
    logout(s).await;
    v
}

fn doveadm(args: &[&str]) -> String {
    let env = TestEnv::get();
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(&env.dovecot_conf)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
    assert!(
        out.status.success(),
        "doveadm {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `doveadm kick USER`: Dovecot drops every IMAP session of `user`, so the client must
/// sign in again (with OAuth2: with a token that may have expired meanwhile). True when
/// a session was kicked.
pub fn kick(user: &str) -> bool {
    let env = TestEnv::get();
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(&env.dovecot_conf)
        .args(["kick", user])
        .output()
        .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
    String::from_utf8_lossy(&out.stdout).contains(user)
}

/// Sign-ins of `user` with `method` (e.g. "XOAUTH2") in Dovecot's log so far.
pub fn dovecot_logins(user: &str, method: &str) -> usize {
    let log = std::fs::read_to_string(TestEnv::get().dir.join("dovecot.log")).unwrap_or_default();
    let needle = format!("Login: user=<{user}>, method={method},");
    log.matches(&needle).count()
}

/// Makes Dovecot give `mailbox` a new UIDVALIDITY and every message in it a new UID
/// (all above the old UIDNEXT), as after a server-side rebuild. The messages stay.
/// Sessions that have the mailbox selected are disconnected by Dovecot.
///
/// How: the mailbox's `dovecot-uidlist` and `dovecot.index*` files (and the user's
/// mailbox-list index) are deleted and a uidlist header `3 V<old+1> N<oldnext+100>`
/// is written; Dovecot then re-reads the Maildir and numbers the messages afresh.
/// Returns the new UIDVALIDITY.
pub fn reset_uidvalidity(user: &str, mailbox: &str) -> u32 {
    let status = doveadm(&[
        "mailbox",
        "status",
        "-u",
        user,
        "uidvalidity uidnext",
        mailbox,
    ]);
    let field = |name: &str| -> u32 {
        status
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in doveadm output: {status}"))
    };
    let old_validity = field("uidvalidity");
    let old_next = field("uidnext");
    let path = PathBuf::from(doveadm(&["mailbox", "path", "-u", user, mailbox]).trim());
    let home_maildir = PathBuf::from(doveadm(&["mailbox", "path", "-u", user, "INBOX"]).trim());
    let mut new_validity = old_validity.wrapping_add(1);
    if new_validity == 0 {
        new_validity = 1;
    }
    let new_next = old_next.saturating_add(100);

    let remove_matching = |dir: &PathBuf, prefix: &str| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) && e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    };
    remove_matching(&path, "dovecot.index");
    remove_matching(&path, "dovecot-uidlist");
    remove_matching(&home_maildir, "dovecot.list.index");

    let uidlist = path.join("dovecot-uidlist");
    std::fs::write(&uidlist, format!("3 V{new_validity} N{new_next}\n"))
        .unwrap_or_else(|e| panic!("write {}: {e}", uidlist.display()));
    // The mail processes run as the userdb's uid/gid (5000): keep their ownership.
    let out = Command::new("chown")
        .arg("--reference")
        .arg(&path)
        .arg(&uidlist)
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "chown {}: {}",
        uidlist.display(),
        String::from_utf8_lossy(&out.stderr)
    );

    // Let Dovecot rebuild its indexes now, and check the result.
    let status = doveadm(&["mailbox", "status", "-u", user, "uidvalidity", mailbox]);
    assert!(
        status.contains(&format!("uidvalidity={new_validity}")),
        "UIDVALIDITY reset of {user}/{mailbox} did not take: {status}"
    );
    new_validity
}

/// Delivers `raw` over LMTP to each of `rcpts` (Dovecot users; `user+detail`
/// goes to `user`'s INBOX). Panics unless every recipient accepted it.
pub async fn lmtp_deliver(mail_from: &str, rcpts: &[&str], raw: &[u8]) {
    let env = TestEnv::get();
    let tcp = TcpStream::connect(("127.0.0.1", env.lmtp_port))
        .await
        .unwrap_or_else(|e| panic!("connect to LMTP port {}: {e}", env.lmtp_port));
    tcp.set_nodelay(true).ok();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);

    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, what: &str) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = r.read_line(&mut line).await.expect("read LMTP reply");
            assert!(n > 0, "LMTP connection closed during {what}");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(
            all.starts_with('2') || all.starts_with('3'),
            "LMTP {what} refused: {all}"
        );
        all
    }

    reply(&mut r, "greeting").await;
    w.write_all(b"LHLO localhost\r\n").await.unwrap();
    reply(&mut r, "LHLO").await;
    w.write_all(format!("MAIL FROM:<{mail_from}>\r\n").as_bytes())
        .await
        .unwrap();
    reply(&mut r, "MAIL FROM").await;
    for rcpt in rcpts {
        w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut r, "RCPT TO").await;
    }
    w.write_all(b"DATA\r\n").await.unwrap();
    reply(&mut r, "DATA").await;
    w.write_all(&dot_stuff(raw)).await.unwrap();
    w.write_all(b".\r\n").await.unwrap();
    for rcpt in rcpts {
        reply(&mut r, &format!("delivery to {rcpt}")).await;
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
}

/// CRLF-normalised, dot-stuffed DATA payload ending in CRLF (without the final ".").
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Stops the shared Dovecot (`scripts/testenv imap-stop`): every test of the binary
/// loses IMAP, so only a test binary that runs nothing else meanwhile may use it.
pub fn imap_stop() {
    super::TestEnv::get();
    super::run_testenv(&["imap-stop"]);
}

/// Starts the shared Dovecot again on the same ports (`scripts/testenv imap-start`).
pub fn imap_start() {
    super::TestEnv::get();
    super::run_testenv(&["imap-start"]);
}
