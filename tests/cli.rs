//! The command line through the real binary: check-config, ingest (MTA pipe mode),
//! cases list/show.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::cli::{ingest, ingest_with_env, text};
use support::mail::{MailBuilder, mail_to_support};
use support::{TestCtx, casegate, tempdir};

#[test]
fn check_config_accepts_a_good_file() {
    let ctx = TestCtx::new("cfg-good");
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OK"));
}

#[test]
fn the_shipped_configuration_checks_clean_given_its_secret() {
    let shipped = support::repo_dir().join("config/casegate.toml");
    let out = casegate()
        .arg("--config")
        .arg(&shipped)
        .arg("check-config")
        .env("CASEGATE__IMAP__PASSWORD", "x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let without = casegate()
        .arg("--config")
        .arg(&shipped)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&without.stdout).lines().count(),
        1,
        "{}",
        text(&without)
    );
}

#[test]
fn check_config_names_every_problem_by_file_and_key() {
    let dir = tempdir();
    let path = dir.path().join("casegate.toml");
    let repo = support::repo_dir();
    let gateway = format!(
        "[gateway]\nrouting_file = \"{0}/config/routing.toml\"\ntemplates_dir = \"{0}/templates\"\n\n",
        repo.display()
    );
    std::fs::write(
        &path,
        gateway + "[imap]\nhost = \"127.0.0.1\"\nport = \"not a number\"\ntls = \"none\"\nusername = \"support\"\nmailbox_typo = \"INBOX\"\n\n[database]\nurl = \"mysql://x\"\n",
    )
    .unwrap();
    let out = casegate()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let f = path.display().to_string();
    let expect = [
        format!("{f}: imap.port: expected an integer from 1 to 65535, found \"not a number\""),
        format!(
            "{f}: imap.password: missing: set imap.password, imap.password_file or CASEGATE__IMAP__PASSWORD"
        ),
        format!("{f}: imap.mailbox_typo: unknown key"),
        format!("{f}: database.url: expected a sqlite://FILE or postgres://... URL"),
    ];
    for e in &expect {
        assert!(lines.contains(e), "missing line {e:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
}

#[test]
fn environment_overrides_are_checked_too_and_secrets_never_printed() {
    let ctx = TestCtx::new("cfg-env");
    let out = ctx
        .casegate(&["check-config"])
        .env("CASEGATE__IMAP__BATCH_SIZE", "many")
        .env("CASEGATE__IMAP__PASSWORD", "hunter2-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("the environment: imap.batch_size: expected an integer"),
        "{t}"
    );
    assert!(!t.contains("hunter2"), "{t}");
}

#[test]
fn a_missing_config_file_is_one_clear_line() {
    let out = casegate()
        .args(["--config", "/nonexistent/casegate.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/nonexistent/casegate.toml: config file not found"
    );
}

#[test]
fn ingest_files_one_mail_from_stdin_once() {
    let ctx = TestCtx::new("ingest");
    let raw = &mail_to_support("Taro <taro@acme.example>", "Piped", "pipe@acme.example")
        .body("from the MTA\n");
    let first = ingest(&ctx, raw);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "opened case 00000001"
    );
    let again = ingest(&ctx, raw);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "duplicate of a mail on case 00000001"
    );
    let junk = ingest(&ctx, b"\x00\x00garbage");
    assert!(junk.status.success());
    assert!(
        String::from_utf8_lossy(&junk.stdout).starts_with("quarantined: unparseable"),
        "{}",
        text(&junk)
    );

    let list: Value = serde_json::from_slice(
        &ctx.casegate(&["cases", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let shown = ctx
        .casegate(&["cases", "show", "00000001"])
        .output()
        .unwrap();
    assert!(text(&shown).contains("from the MTA"), "{}", text(&shown));
    let missing = ctx.casegate(&["cases", "show", "42"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("no case 00000042"));
    let q: Value = serde_json::from_slice(
        &ctx.casegate(&["quarantine", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(q[0]["source"], "stdin");
    // `cases show 1 | head -0`: the reader is gone before anything is printed; the
    // command ends like other tools on a closed pipe (SIGPIPE), without a panic.
    let mut cmd = ctx.casegate(&["cases", "show", "00000001"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(13),
        "{:?} {}",
        out.status,
        text(&out)
    );
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

/// Issue 12: `From: <\xff\xfe@>` became a refused case whose refusal failed to compose.
/// A sender that is not an address is quarantined, the MTA's Return-Path beside it or not.
#[test]
fn ingest_quarantines_a_mail_whose_sender_is_not_an_address() {
    let ctx = TestCtx::new("ingest-bad-from");
    for (i, from) in [
        &b"<\xff\xfe@>"[..],
        b"Someone <@acme.example>",
        b"<a b@acme.example>",
    ]
    .iter()
    .enumerate()
    {
        let raw = MailBuilder::new()
            .header("Return-Path", format!("<bounce-{i}@bulk.example>"))
            .header_bytes("From", from)
            .header("To", "support@example.com")
            .header("Subject", "hi")
            .message_id(format!("bad-from-{i}@bulk.example"))
            .body("x\n");
        let out = ingest(&ctx, &raw);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "quarantined: unparseable: no usable sender address",
            "{}",
            text(&out)
        );
    }
    let list: Value = serde_json::from_slice(
        &ctx.casegate(&["cases", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(list.as_array().unwrap().is_empty(), "{list:#}");
}

#[test]
fn ingest_asks_the_mta_to_retry_when_the_database_is_unreachable() {
    let ctx = TestCtx::new("ingest-db");
    let raw = b"From: a@b.example\r\nSubject: x\r\n\r\nx\r\n";
    let out = ingest_with_env(
        &ctx,
        raw,
        &[(
            "CASEGATE__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )],
    );
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
}

/// Issue 18a: a bad known-issues file fails `check-config` with one line per problem,
/// each naming the file and key; a missing file names the config key.
#[test]
fn check_config_names_the_known_issues_files_problems() {
    let dir = tempdir();
    let issues = dir.path().join("known_issues.toml");
    std::fs::write(
        &issues,
        "[[issues]]\nid = \"AAP-1\"\ntitle = \"Hangs\"\nlink = \"www.example.com/1\"\n\
         workaround = { en = \"Restart it.\" }\n\n\
         [[issues]]\nid = \"aap-1\"\ntitle = \"Again\"\nlink = \"https://kb.example/2\"\nfixd_in = \"2.1\"\n",
    )
    .unwrap();
    let ctx = TestCtx::with_config(
        "cfg-known",
        &format!("[gateway]\nknown_issues_file = \"{}\"\n", issues.display()),
    );
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let f = issues.display().to_string();
    for want in [
        format!("{f}: issues[0].link: \"www.example.com/1\" is not an http(s) URL"),
        format!(
            "{f}: issues[0].workaround.ja: missing: a workaround is given in both languages (en and ja)"
        ),
        format!(
            "{f}: issues[1].fixd_in: unknown key (known: id, title, affected, fixed_in, link, workaround)"
        ),
    ] {
        assert!(
            stdout.lines().any(|l| l == want),
            "missing {want:?} in\n{stdout}"
        );
    }
    // Fixed, the duplicate id shows (it hid behind the broken first entry).
    std::fs::write(
        &issues,
        "[[issues]]\nid = \"AAP-1\"\ntitle = \"Hangs\"\nlink = \"https://kb.example/1\"\n\n\
         [[issues]]\nid = \"aap-1\"\ntitle = \"Again\"\nlink = \"https://kb.example/2\"\n",
    )
    .unwrap();
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{f}: issues[1].id: duplicate id \"aap-1\" (also issues[0])")
    );
    std::fs::remove_file(&issues).unwrap();
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("gateway.known_issues_file: not found"),
        "{}",
        text(&out)
    );
}
