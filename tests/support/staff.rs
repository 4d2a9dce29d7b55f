//! The engineers' side of the tests: a context with staff and contracts, the mails a
//! customer and an engineer write, the case a notification opens (shared by
//! `engineer_e2e.rs` and `trust_e2e.rs`).

use super::cli::{ok, run_once};
use super::{TestCtx, append, smtp_received};

pub const ENGINEER: &str = "sato@vendor.example";

pub fn staff_config() -> String {
    format!(
        "[staff]\nreply_key = \"test-reply-key-0123456789\"\ndefault_escalation = \"leads@vendor.example\"\n\n\
         [[staff.engineers]]\naddress = \"{ENGINEER}\"\nname = \"Sato Hanako\"\nregion = \"APAC\"\n\
         queues = [\"ansible-ja\", \"ansible-na\", \"ansible-apac\"]\n\n\
         [[staff.engineers]]\naddress = \"lee@vendor.example\"\nname = \"Lee Min\"\nregion = \"NA\"\nqueues = [\"ansible-na\"]\n"
    )
}

/// A test context with [`staff_config`] and the contracts of acme.example (US) and
/// acme.co.jp (JP) imported.
pub fn ctx(tag: &str) -> TestCtx {
    ctx_with(tag, &staff_config())
}

/// Like [`ctx`] with `config` (TOML, e.g. another `[staff]`) instead of [`staff_config`].
pub fn ctx_with(tag: &str, config: &str) -> TestCtx {
    let ctx = TestCtx::with_config(tag, config);
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(
        &csv,
        "account,contract_id,tier,products,domains,contacts,country,start,end\n\
         Acme,C-ACME,premium,ansible,acme.example,,US,2025-01-01,2030-12-31\n\
         アクメ株式会社,C-ACMEJP,standard,ansible,acme.co.jp,,JP,2025-01-01,2030-12-31\n",
    )
    .unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    ctx
}

pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

pub fn decoded_text(raw: &[u8]) -> String {
    let mail = casegate::mail::parse::parse(
        raw,
        &casegate::mail::parse::ParseLimits {
            max_attachment_bytes: 1 << 20,
            max_header_bytes: casegate::mail::parse::DEFAULT_MAX_HEADER_BYTES,
        },
    )
    .unwrap();
    format!("{}\n{}", mail.subject, mail.text)
}

/// Waits for a mail to `rcpt` that satisfies `pred` (the engineer's address is shared by
/// tests running in parallel, so count-based waiting would race).
pub async fn wait_for(rcpt: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(m) = smtp_received(rcpt).into_iter().find(|m| pred(&m.raw)) {
            return m.raw;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no matching mail for {rcpt}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn customer_mail(from: &str, mid: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

pub fn engineer_mail(to: &str, mid: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sato Hanako <{ENGINEER}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Opens a case for a fresh customer and returns (customer address, the signed reply
/// address from the engineer's notification).
pub async fn open_case(ctx: &TestCtx, tag: &str) -> (String, String) {
    let customer = format!("{}-{tag}@acme.example", ctx.user);
    append(
        &ctx.user,
        "INBOX",
        &customer_mail(
            &customer,
            &format!("c1-{}@acme.example", ctx.user),
            "Playbook fails",
            "The playbook fails on host web01.\nSeverity: 3",
        ),
        None,
    )
    .await;
    run_once(ctx);
    let note = wait_for(ENGINEER, |m| decoded_text(m).contains(&customer)).await;
    let note = &note;
    let reply_to = header(note, "Reply-To").expect("Reply-To on the notification");
    let addr = reply_to
        .rsplit('<')
        .next()
        .unwrap()
        .trim_end_matches('>')
        .to_string();
    assert!(addr.starts_with("support+c00000001."), "{addr}");
    assert!(
        decoded_text(note).contains("#severity N REASON"),
        "command help in the notification"
    );
    (customer, addr)
}
