//! Issue 19: mail built to hurt a parser, and customer text built to forge headers.
//!
//! Each monster goes through `casegate ingest` under an address-space limit and a time
//! limit: it must end as a case or a quarantined mail with a reason, the process must
//! neither crash, nor hang, nor grow past the limit. Customer-controlled text with CR/LF
//! (an encoded-word Subject and display name) must never add a header field to the mail
//! casegate sends (checked on the real SMTP server's copy).

mod support;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::TestCtx;
use support::cli::{ok, run_once, text};

/// Address space allowed to one `casegate ingest` (virtual memory: thread stacks and
/// allocator arenas count too, so this is far above the resident size it needs).
const ADDRESS_SPACE: u64 = 2 << 30;
/// Wall time allowed to one `casegate ingest` of a monster on a loaded 2-core machine.
const WALL: Duration = Duration::from_secs(60);

/// `casegate ingest` of `raw` with [`ADDRESS_SPACE`] and [`WALL`] enforced.
fn ingest_bounded(ctx: &TestCtx, raw: &[u8]) -> (Output, Duration) {
    let mut cmd = ctx.casegate(&["ingest"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let raw = raw.to_vec();
    let writer = std::thread::spawn(move || {
        // The process may refuse to read all of it; a broken pipe is its answer.
        let _ = stdin.write_all(&raw);
    });
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + WALL;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: signal 0 only asks whether the process exists.
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: ends the hung child (its pid is not reused before we wait for it).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    writer.join().unwrap();
    let hung = watchdog.join().unwrap();
    assert!(!hung, "ingest hung for more than {WALL:?}");
    (out, took)
}

/// Asserts `ingest` filed the mail (a case or a quarantined mail with a reason), and
/// returns its one-line answer.
fn filed(label: &str, ctx: &TestCtx, raw: &[u8]) -> String {
    let (out, took) = ingest_bounded(ctx, raw);
    let all = text(&out);
    assert!(
        out.status.success(),
        "{label}: ingest ended {:?} after {took:?}\n{}",
        out.status,
        &all[..all.len().min(4000)]
    );
    assert!(!all.contains("panicked"), "{label}: {all}");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        line.starts_with("opened case ")
            || line
                .strip_prefix("quarantined: ")
                .is_some_and(|r| !r.trim().is_empty()),
        "{label}: {line}"
    );
    eprintln!("{label}: {} bytes in {took:?}: {line}", raw.len());
    line
}

fn head(from: &str, subject: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
    )
}

#[test]
fn ten_thousand_header_fields() {
    let ctx = TestCtx::new("hostile-fields");
    let mut raw = head("taro@acme.example", "Many fields", "fields@acme.example");
    for i in 0..10_000 {
        raw.push_str(&format!("X-Filler-{i}: value number {i}\r\n"));
    }
    raw.push_str("\r\nThe playbook fails.\r\n");
    filed("10,000 fields", &ctx, raw.as_bytes());
}

#[test]
fn mime_nested_a_thousand_deep() {
    let ctx = TestCtx::new("hostile-nested");
    let mut raw = head("taro@acme.example", "Deep", "deep@acme.example");
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
    for i in 1..1000 {
        raw.push_str(&format!(
            "--b{p}\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n",
            p = i - 1
        ));
    }
    raw.push_str("--b999\r\nContent-Type: text/plain\r\n\r\nThe innermost text.\r\n");
    for i in (0..1000).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    filed("MIME 1,000 deep", &ctx, raw.as_bytes());
}

#[test]
fn a_hundred_thousand_recipients() {
    let ctx = TestCtx::new("hostile-rcpts");
    let mut raw = head("taro@acme.example", "Everyone", "rcpts@acme.example");
    raw.push_str("Cc: ");
    for i in 0..100_000 {
        if i > 0 {
            raw.push_str(",\r\n ");
        }
        raw.push_str(&format!("user{i}@many.example"));
    }
    raw.push_str("\r\n\r\nThe playbook fails.\r\n");
    let line = filed("100,000 recipients", &ctx, raw.as_bytes());
    if let Some(case) = line.strip_prefix("opened case ") {
        // The cut field keeps a bounded number of the copied addresses.
        let shown = support::cli::show(&ctx, case);
        let cc = shown["messages"][0]["cc"]
            .as_array()
            .expect("the mail's Cc")
            .len();
        assert!((1..10_000).contains(&cc), "{cc} addresses kept");
    }
}

#[test]
fn a_subject_of_one_megabyte() {
    let ctx = TestCtx::new("hostile-subject");
    let subject = "Sehr langer Betreff ".repeat(1 << 20 >> 4);
    let raw = format!(
        "{}\r\nThe playbook fails.\r\n",
        head("taro@acme.example", &subject, "subject@acme.example")
    );
    assert!(raw.len() > 1 << 20);
    let line = filed("1 MB subject", &ctx, raw.as_bytes());
    if let Some(case) = line.strip_prefix("opened case ") {
        let shown = support::cli::show(&ctx, case);
        let kept = shown["subject"].as_str().expect("the case's subject").len();
        assert!(kept <= 64 * 1024 + 64, "subject kept at {kept} bytes");
    }
}

/// The header section of a raw mail, unfolded into (name, value) fields.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(line);
            }
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        fields.push((name.to_string(), value.to_string()));
    }
    fields
}

#[test]
fn customer_text_with_line_breaks_never_adds_a_header() {
    use base64::Engine;
    let ctx = TestCtx::new("hostile-inject");
    let sink = support::TestEnv::get().sink();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let victim = format!("{}@acme.example", ctx.user);
    let subject = format!(
        "=?UTF-8?B?{}?=",
        b64("Help\r\nBcc: victim@evil.example\r\nX-Injected: subject")
    );
    let name = format!(
        "=?UTF-8?B?{}?=",
        b64("Taro\r\nX-Injected: name\r\nBcc: victim@evil.example")
    );
    let raw = format!(
        "{}\r\nThe playbook fails.\r\n",
        head(
            &format!("{name} <{victim}>"),
            &subject,
            &format!("inject-{}@acme.example", ctx.user)
        )
    );
    let line = filed("header injection", &ctx, raw.as_bytes());
    assert!(line.starts_with("opened case "), "{line}");
    run_once(&ctx);
    let sent = sink.wait_for_blocking(&victim, 1, Duration::from_secs(30));
    assert!(!sent.is_empty(), "a reply reaches the customer");
    for mail in &sent {
        let fields = header_fields(mail);
        for (name, value) in &fields {
            assert!(
                !name.eq_ignore_ascii_case("bcc") && !name.eq_ignore_ascii_case("x-injected"),
                "injected field {name}:{value}\n{}",
                String::from_utf8_lossy(mail)
            );
            assert!(
                name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
                "not a field name: {name:?}\n{}",
                String::from_utf8_lossy(mail)
            );
        }
        assert_eq!(
            fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("subject"))
                .count(),
            1
        );
    }
    // Nobody else got anything.
    assert!(sink.messages("victim@evil.example").is_empty());
    let cases = ok(ctx.casegate(&["cases", "list", "--json"]).output().unwrap());
    assert!(cases.contains("Help"), "{cases}");
}
