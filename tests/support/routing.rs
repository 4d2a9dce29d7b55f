//! The routing scenario's customer mail and contracts, shared by `routing_e2e.rs`
//! (triage and replies) and `routing_reload.rs` (admins editing the files).

use std::process::Output;

use serde_json::Value;

use super::TestCtx;
use super::mail::b64;

/// An RFC 2047 encoded word (UTF-8, B) for non-ASCII text, the text itself otherwise.
pub fn header_text(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", b64(s.as_bytes()))
    }
}

/// A customer mail in UTF-8 (8bit body, encoded-word subject and display name).
pub fn mail(
    mid: &str,
    from_name: Option<&str>,
    from: &str,
    subject: &str,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    mail_to(
        "support@example.com",
        mid,
        from_name,
        from,
        subject,
        extra_headers,
        body,
    )
}

/// [`mail`] to another of our addresses (e.g. `support+satellite@example.com`).
pub fn mail_to(
    to: &str,
    mid: &str,
    from_name: Option<&str>,
    from: &str,
    subject: &str,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    let from = match from_name {
        Some(n) => format!("{} <{from}>", header_text(n)),
        None => from.to_string(),
    };
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{mid}>\r\n{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        header_text(subject),
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// The fields routing decides.
pub fn routed(case: &Value) -> (String, String, String, String, String) {
    let s = |k: &str| {
        case[k]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("<{}>", case[k]))
    };
    (
        s("queue"),
        s("language"),
        s("region"),
        s("entitlement"),
        s("status"),
    )
}

pub fn import(ctx: &TestCtx, name: &str, csv: &str) -> Output {
    let path = ctx.dir.path().join(name);
    std::fs::write(&path, csv).unwrap();
    ctx.casegate(&["contracts", "import", path.to_str().unwrap()])
        .output()
        .unwrap()
}

pub const HEADER: &str = "account,contract_id,tier,products,domains,contacts,country,start,end\n";

/// The contracts of the acceptance scenario. `u` (the test's unique user) makes the
/// free-mail contact address unique.
pub fn scenario_contracts(u: &str) -> String {
    format!(
        "{HEADER}\
         ACME Corporation Japan,C-1001,premium,ansible;satellite,acme.co.jp,partner-{u}@gmail.com,JP,2025-04-01,2030-03-31\n\
         Kangaroo Logistics Pty Ltd,C-2001,standard,ansible,kangaroo-logistics.com.au,,AU,2025-07-01,2030-06-30\n\
         Rheinwerk Automation GmbH,C-3001,premium,ansible;satellite,rheinwerk.de,,DE,2026-01-01,2030-12-31\n\
         Old Harbor Shipping Ltd,C-3002,standard,ansible;satellite,oldharbor.co.uk,,GB,2023-01-01,2024-12-31\n\
         Prairie Health Inc,C-4001,standard,ansible,prairiehealth.com,,US,2025-10-01,2030-09-30\n\
         Dragon Cloud Ltd,C-5001,standard,ansible,dragoncloud.cn,,CN,2025-01-01,2030-12-31\n"
    )
}
