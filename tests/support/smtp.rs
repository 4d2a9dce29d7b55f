//! The SMTP sink (`scripts/smtp_sink.py`): read what it received, inject failures,
//! stop/start it, or run a private one.
//!
//! Storage: `<smtp_dir>/<rcpt lower-cased>/<20-digit monotonic ns>-<8-digit seq>.eml`
//! holds the DATA exactly as received (no header added), with a `.json` sidecar
//! (`mail_from`, `rcpt_to`, `rcpt_tos`, `mail_options`, `tls`, `auth_user`, ...).
//! Name order is arrival order.
//!
//! Failure injection: the file `<smtp_dir>/rules/<rcpt lower-cased>` containing
//! `CODE [COUNT]` (e.g. `451`, `554`, `451 2`) makes RCPT TO for that recipient fail
//! with CODE (`451 4.3.0`, `554 5.7.1`); with COUNT only the next COUNT times.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{TestEnv, port_open, run_testenv};

/// One message as the sink stored it for one recipient.
#[derive(Debug, Clone)]
pub struct SinkMessage {
    /// The DATA exactly as received (CRLF line ends, dots unstuffed).
    pub raw: Vec<u8>,
    /// Envelope sender (MAIL FROM), "" for the null sender.
    pub mail_from: String,
    /// The recipient this copy is for, as given in RCPT TO.
    pub rcpt_to: String,
    /// All accepted recipients of the transaction.
    pub rcpt_tos: Vec<String>,
    /// MAIL FROM parameters, e.g. `SMTPUTF8`, `BODY=8BITMIME`, `SIZE=123`.
    pub mail_options: Vec<String>,
    /// Whether the session used TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The AUTH user name, if the client authenticated.
    pub auth_user: Option<String>,
    /// The .eml file.
    pub path: PathBuf,
    /// The sink's wall clock (ns since the epoch) when the DATA was complete, before
    /// its 250 went out.
    pub accepted_at_ns: Option<i64>,
}

/// A sink's mail folder.
#[derive(Debug, Clone)]
pub struct Sink {
    pub dir: PathBuf,
}

fn file_name_for(addr: &str) -> String {
    let mut s = addr.trim().to_lowercase().replace(['/', '\0'], "_");
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

impl Sink {
    pub fn new(dir: PathBuf) -> Sink {
        Sink { dir }
    }

    /// Folder of one recipient's mail.
    pub fn rcpt_dir(&self, rcpt: &str) -> PathBuf {
        self.dir.join(file_name_for(rcpt))
    }

    fn eml_files(&self, rcpt: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(self.rcpt_dir(rcpt)) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    !n.starts_with('.') && n.ends_with(".eml")
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        files
    }

    /// Raw messages received for `rcpt` (case-insensitive), in arrival order.
    pub fn messages(&self, rcpt: &str) -> Vec<Vec<u8>> {
        self.eml_files(rcpt)
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
            .collect()
    }

    /// Messages with their envelope, in arrival order.
    pub fn received(&self, rcpt: &str) -> Vec<SinkMessage> {
        self.eml_files(rcpt)
            .into_iter()
            .map(|p| read_message(&p))
            .collect()
    }

    /// Polls until at least `count` messages arrived for `rcpt`; panics after `timeout`.
    pub async fn wait_for(&self, rcpt: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages(rcpt);
            if msgs.len() >= count {
                return msgs;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {count} message(s) to {rcpt} in the SMTP sink \
                     ({}); got {}",
                    self.rcpt_dir(rcpt).display(),
                    msgs.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Blocking version of [`Sink::wait_for`], for tests without a runtime.
    pub fn wait_for_blocking(&self, rcpt: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages(rcpt);
            if msgs.len() >= count {
                return msgs;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {count} message(s) to {rcpt} in the SMTP sink; got {}",
                    msgs.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets the failure rule for `rcpt`: `"451"`, `"554"`, `"451 2"` (next 2 only), ...
    pub fn rule(&self, rcpt: &str, rule: &str) {
        let rules = self.dir.join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        let path = rules.join(file_name_for(rcpt));
        let tmp = rules.join(format!(
            ".{}.{}.tmp",
            file_name_for(rcpt),
            std::process::id()
        ));
        std::fs::write(&tmp, format!("{}\n", rule.trim())).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// Removes the failure rule for `rcpt` (no error when there is none).
    pub fn clear_rule(&self, rcpt: &str) {
        let _ = std::fs::remove_file(self.dir.join("rules").join(file_name_for(rcpt)));
    }
}

fn read_message(eml: &Path) -> SinkMessage {
    let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("read {}: {e}", eml.display()));
    let meta: serde_json::Value = std::fs::read(eml.with_extension("json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let s = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let list = |k: &str| -> Vec<String> {
        meta.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    SinkMessage {
        raw,
        mail_from: s("mail_from").unwrap_or_default(),
        rcpt_to: s("rcpt_to").unwrap_or_default(),
        rcpt_tos: list("rcpt_tos"),
        mail_options: list("mail_options"),
        tls: meta.get("tls").and_then(|v| v.as_bool()).unwrap_or(false),
        auth_user: s("auth_user"),
        path: eml.to_path_buf(),
        accepted_at_ns: meta.get("accepted_at_ns").and_then(|v| v.as_i64()),
    }
}

// ---- the shared sink of scripts/testenv ----

/// Raw messages the shared sink received for `rcpt`, in arrival order.
pub fn smtp_messages(rcpt: &str) -> Vec<Vec<u8>> {
    TestEnv::get().sink().messages(rcpt)
}

/// Messages with envelope data that the shared sink received for `rcpt`.
pub fn smtp_received(rcpt: &str) -> Vec<SinkMessage> {
    TestEnv::get().sink().received(rcpt)
}

/// Waits until the shared sink holds at least `count` messages for `rcpt`; panics with
/// a clear message after `timeout`.
pub async fn wait_for_smtp(rcpt: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
    TestEnv::get().sink().wait_for(rcpt, count, timeout).await
}

/// Failure rule for `rcpt` on the shared sink (`"451"`, `"554"`, `"451 2"`).
pub fn smtp_rule(rcpt: &str, rule: &str) {
    TestEnv::get().sink().rule(rcpt, rule)
}

/// Removes the failure rule for `rcpt` on the shared sink.
pub fn smtp_clear_rule(rcpt: &str) {
    TestEnv::get().sink().clear_rule(rcpt)
}

/// Stops the shared sink (`scripts/testenv smtp-stop`). It is shared by all tests of
/// the run: prefer [`SmtpSink`] or a failure rule to simulate an outage in one test.
pub fn smtp_stop() {
    TestEnv::get();
    run_testenv(&["smtp-stop"]);
}

/// Starts the shared sink again on the same ports (`scripts/testenv smtp-start`).
pub fn smtp_start() {
    TestEnv::get();
    run_testenv(&["smtp-start"]);
}

// ---- a private sink, owned by one test ----

/// A sink process of its own (own port, own folder), killed on drop: stop and start
/// it freely to simulate an SMTP outage without disturbing other tests.
pub struct SmtpSink {
    pub port: u16,
    pub sink: Sink,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts a private plaintext sink (STARTTLS and AUTH offered) on a free port.
    pub fn start() -> SmtpSink {
        TestEnv::get();
        let dir = super::tempdir();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut s = SmtpSink {
            port,
            sink: Sink::new(dir.path().join("smtp")),
            child: None,
            _dir: dir,
        };
        s.resume();
        s
    }

    /// Kills the sink and waits until it is gone (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and folder.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let env = TestEnv::get();
        std::fs::create_dir_all(self.sink.dir.join("rules")).unwrap();
        let log = self.sink.dir.join("smtp.log");
        let script = super::repo_dir().join("scripts/smtp_sink.py");
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg("--dir")
            .arg(&self.sink.dir)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--cert")
            .arg(&env.ca_file)
            .arg("--key")
            .arg(&env.key_file)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.sink.dir.join("smtp.err"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !port_open(self.port) {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("private SMTP sink exited ({st}); see {}", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "private SMTP sink did not open port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- a minimal SMTP client ----

/// Sends `raw` over plain SMTP to 127.0.0.1:`port`. Ok(()) when accepted for all
/// recipients; otherwise Err((code, full reply)) of the first refusal (connection,
/// MAIL, RCPT or DATA). Uses SMTPUTF8 when the envelope is not ASCII.
pub async fn smtp_send(
    port: u16,
    mail_from: &str,
    rcpts: &[&str],
    raw: &[u8],
) -> Result<(), (u16, String)> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| (0, format!("connect: {e}")))?;
    tcp.set_nodelay(true).ok();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);

    async fn reply(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    ) -> Result<(u16, String), (u16, String)> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = r
                .read_line(&mut line)
                .await
                .map_err(|e| (0, format!("read: {e}")))?;
            if n == 0 {
                return Err((0, format!("connection closed; got {all:?}")));
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        let code = all.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok((code, all))
    }
    async fn expect(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        ok: std::ops::RangeInclusive<u16>,
    ) -> Result<(), (u16, String)> {
        let (code, text) = reply(r).await?;
        if ok.contains(&code) {
            Ok(())
        } else {
            Err((code, text))
        }
    }
    async fn send(
        w: &mut tokio::net::tcp::OwnedWriteHalf,
        line: String,
    ) -> Result<(), (u16, String)> {
        w.write_all(line.as_bytes())
            .await
            .map_err(|e| (0, format!("write: {e}")))
    }

    expect(&mut r, 220..=220).await?;
    send(&mut w, "EHLO localhost\r\n".into()).await?;
    expect(&mut r, 250..=250).await?;
    let utf8 = !mail_from.is_ascii() || rcpts.iter().any(|a| !a.is_ascii());
    let params = if utf8 {
        " SMTPUTF8 BODY=8BITMIME"
    } else {
        " BODY=8BITMIME"
    };
    send(&mut w, format!("MAIL FROM:<{mail_from}>{params}\r\n")).await?;
    expect(&mut r, 250..=250).await?;
    for rcpt in rcpts {
        send(&mut w, format!("RCPT TO:<{rcpt}>\r\n")).await?;
        expect(&mut r, 250..=251).await?;
    }
    send(&mut w, "DATA\r\n".into()).await?;
    expect(&mut r, 354..=354).await?;
    let mut data = super::imap::dot_stuff(raw);
    data.extend_from_slice(b".\r\n");
    w.write_all(&data)
        .await
        .map_err(|e| (0, format!("write: {e}")))?;
    expect(&mut r, 250..=250).await?;
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// True when `id` is the Message-ID casegate gives the `n`th mail of case `case` (8
/// digits) at example.com: `case-00000001.m-1.<16 hex digits of HMAC>@example.com`.
pub fn is_our_message_id(id: &str, case: &str, n: u32) -> bool {
    id.strip_prefix(&format!("case-{case}.m-{n}."))
        .and_then(|r| r.strip_suffix("@example.com"))
        .is_some_and(|tag| tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True when `address` is the signed return path casegate sends the `n`th mail of case
/// `case` from (`support+b00000001.1.<16 hex>@example.com`): bounces come back to it.
pub fn is_our_return_path(address: &str, case: &str, n: u32) -> bool {
    address
        .strip_prefix(&format!("support+b{case}.{n}."))
        .and_then(|r| r.strip_suffix("@example.com"))
        .is_some_and(|tag| tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
}
