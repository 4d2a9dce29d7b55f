//! Mail etiquette, PURE: is this mail a bounce, an automatic mail, or one a person wrote?
//!
//! casegate never answers automatic mail (RFC 3834 §2: "automatic responses SHOULD NOT
//! be issued in response to" bounces, list mail or other automatic mail), and a bounce
//! of one of our own mails is attached to its case instead of opening one.

use crate::mail::parse::sniff_message_id;
use crate::mail::{Inbound, is_forwarded_original};

/// What kind of mail an inbound mail is, for the purpose of answering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailKind {
    /// A delivery status notification (RFC 3464) or another null-sender report about a
    /// mail we sent. `original_message_id` is the bounced mail's Message-ID, without
    /// brackets, when the report carries the original message or its headers.
    Bounce { original_message_id: Option<String> },
    /// Written by a machine: never answered automatically. `reason` says why, for logs.
    Automatic { reason: String },
    /// Written by a person.
    Normal,
}

/// Classify `mail` (`raw` is the same mail's bytes, used when an attached original was
/// too large to be kept in `mail.attachments`). `own_addresses` are the gateway's own
/// addresses (lower-case or not): mail from them is a loop.
pub fn classify(mail: &Inbound, raw: &[u8], own_addresses: &[String]) -> MailKind {
    if is_bounce(mail) {
        return MailKind::Bounce {
            original_message_id: original_message_id(mail, raw),
        };
    }
    match automatic_reason(mail, raw, own_addresses) {
        Some(reason) => MailKind::Automatic { reason },
        None => MailKind::Normal,
    }
}

/// What a DSN says about the failed delivery (RFC 3464 §2.3: `Final-Recipient`,
/// `Action`, `Status`, `Diagnostic-Code`), for the case's `delivery_failed` event.
pub fn delivery_report(raw: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(raw);
    let mut out = serde_json::Map::new();
    for (field, key) in [
        ("final-recipient", "final_recipient"),
        ("action", "action"),
        ("status", "status"),
        ("diagnostic-code", "diagnostic"),
    ] {
        let value = text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(field)
                .then(|| value.trim().to_string())
        });
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.insert(key.into(), v.into());
        }
    }
    serde_json::Value::Object(out)
}

/// A DSN (`multipart/report; report-type=delivery-status`, RFC 3464 §2), or a
/// non-standard bounce: null reverse-path (RFC 5321 §4.5.5) with the original attached.
fn is_bounce(mail: &Inbound) -> bool {
    let ct = mail
        .headers
        .content_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let dsn = ct.starts_with("multipart/report") && ct.contains("report-type=delivery-status");
    let null_sender = mail.headers.return_path.as_deref() == Some("");
    dsn || (null_sender
        && mail
            .attachments
            .iter()
            .any(|a| is_forwarded_original(&a.content_type)))
}

fn original_message_id(mail: &Inbound, raw: &[u8]) -> Option<String> {
    let from_parts = mail
        .attachments
        .iter()
        .filter(|a| is_forwarded_original(&a.content_type))
        .filter_map(|a| a.content.as_deref())
        .find_map(sniff_message_id);
    from_parts.or_else(|| message_id_after_original_marker(raw))
}

/// Fallback for an original too large to keep: the first `Message-ID:` field after a
/// `Content-Type: message/rfc822` (or `text/rfc822-headers`) line in the raw bytes.
fn message_id_after_original_marker(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let lower = text.to_ascii_lowercase();
    let start = ["message/rfc822", "text/rfc822-headers", "message/global"]
        .iter()
        .filter_map(|m| lower.find(m))
        .min()?;
    let rest = &text[start..];
    let body_start = [rest.find("\n\n"), rest.find("\r\n\r\n")]
        .into_iter()
        .flatten()
        .min()?;
    sniff_message_id(rest[body_start..].trim_start().as_bytes())
}

/// Why a mail is automatic, or `None` when a person wrote it.
fn automatic_reason(mail: &Inbound, raw: &[u8], own_addresses: &[String]) -> Option<String> {
    let from = mail.from.email.to_ascii_lowercase();
    if own_addresses.iter().any(|a| is_own(a, &from)) {
        return Some(format!("loop: sent from our own address {from}"));
    }
    let h = &mail.headers;
    if let Some(v) = h
        .auto_submitted
        .as_deref()
        .map(first_token)
        .filter(|v| v != "no")
    {
        return Some(format!("Auto-Submitted: {v} (RFC 3834 §5)"));
    }
    if let Some(v) = h.precedence.as_deref().map(first_token)
        && matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply")
    {
        return Some(format!("Precedence: {v}"));
    }
    if h.list_id.is_some() {
        return Some("List-Id: mailing list mail (RFC 2919)".into());
    }
    if h.return_path.as_deref() == Some("") {
        return Some("empty Return-Path <> (RFC 5321 §4.5.5)".into());
    }
    if let Some(field) = ["X-Autoreply", "X-Autorespond"]
        .into_iter()
        .find(|f| has_header(raw, f))
    {
        return Some(format!("{field} header"));
    }
    let return_path = h.return_path.as_deref().unwrap_or("");
    [from.as_str(), return_path]
        .into_iter()
        .find(|a| is_robot_address(a))
        .map(|a| format!("robot sender {a}"))
}

/// Typical out-of-office subjects (lower-case prefixes), for mail at an engineer's reply
/// address: Outlook, Exchange, Gmail, Notes and Japanese clients.
const AUTOMATIC_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto:",
    "abwesenheitsnotiz",
    "réponse automatique",
    "不在",
    "自動応答",
    "自動返信",
    "自動送信",
];

/// Why a staff mail to a case's reply address is automatic (an out-of-office, a
/// vacation notice, a client's read receipt), or `None` when the engineer wrote it:
/// the RFC 3834 signs every mail is checked for, and besides them `X-Auto-Response-
/// Suppress` (Exchange puts it on its own automatic replies) and the usual
/// out-of-office subjects. Such mail is never relayed to the customer.
pub fn engineer_automatic_reason(mail: &Inbound, raw: &[u8]) -> Option<String> {
    if let Some(reason) = automatic_reason(mail, raw, &[]) {
        return Some(reason);
    }
    if has_header(raw, "X-Auto-Response-Suppress") {
        return Some("X-Auto-Response-Suppress header".into());
    }
    let subject = mail.subject.trim_start().to_lowercase();
    AUTOMATIC_SUBJECTS
        .iter()
        .find(|p| subject.starts_with(*p))
        .map(|p| format!("out-of-office subject ({p})"))
}

/// The envelope recipient our delivering MTA wrote into the mail: the topmost
/// `Delivered-To` or `X-Original-To` field (Dovecot LMTP and Postfix prepend it on
/// delivery). Every field below it, and To and Cc, the sender wrote, so they prove
/// nothing. A bounce proves itself by this being a signed return path of ours.
pub fn envelope_recipient(raw: &[u8]) -> Option<String> {
    let end = header_end(raw);
    raw[..end].split(|&b| b == b'\n').find_map(|line| {
        ["Delivered-To", "X-Original-To"].iter().find_map(|name| {
            let head = line.get(..name.len())?;
            if !head.eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            let rest = line[name.len()..].trim_ascii_start().strip_prefix(b":")?;
            Some(String::from_utf8_lossy(rest).trim().to_string())
        })
    })
}

/// Where the top-level header block ends (the first blank line), in one pass.
fn header_end(raw: &[u8]) -> usize {
    (0..raw.len())
        .find(|&i| raw[i..].starts_with(b"\r\n\r\n") || raw[i..].starts_with(b"\n\n"))
        .unwrap_or(raw.len())
}

/// `from` (lower-case) is `own` or a plus address of it (`support+ansible@` for
/// `support@`): we receive on those too, so mail from them is ours coming back.
fn is_own(own: &str, from: &str) -> bool {
    let own = own.trim().to_ascii_lowercase();
    if own == from {
        return true;
    }
    match (own.rsplit_once('@'), from.rsplit_once('@')) {
        (Some((own_local, own_domain)), Some((local, domain))) => {
            domain == own_domain
                && local
                    .split_once('+')
                    .is_some_and(|(base, _)| base == own_local)
        }
        _ => false,
    }
}

/// The keyword of a header value, lower-case: `Auto-Replied; owner=x` -> `auto-replied`.
fn first_token(v: &str) -> String {
    v.split([';', '('])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// MAILER-DAEMON, postmaster (RFC 5321 §4.5.1) and the usual no-reply spellings, also
/// with a `+tag` or a suffix (`noreply-alerts@`, `no_reply+x@`).
fn is_robot_address(address: &str) -> bool {
    let local = address
        .rsplit_once('@')
        .map_or(address, |(l, _)| l)
        .to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or("");
    if matches!(local, "mailer-daemon" | "postmaster") {
        return true;
    }
    let squashed: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    squashed.starts_with("noreply") || squashed.starts_with("donotreply")
}

/// True when the top-level header block has a field called `name`.
fn has_header(raw: &[u8], name: &str) -> bool {
    // The first blank line, in one pass that stops there (CRLF mail has no "\n\n", so
    // searching for each form separately would read the whole mail, attachments included).
    let end = header_end(raw);
    raw[..end].split(|&b| b == b'\n').any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && line[name.len()..].trim_ascii_start().starts_with(b":")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::{ParseLimits, parse};
    use crate::mail::{Address, Attachment, MailHeaders};

    #[test]
    fn a_dsn_reports_status_and_diagnostic() {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/eml/bounce_dsn.eml"
        ))
        .unwrap();
        let report = delivery_report(&raw);
        assert_eq!(report["status"], "5.1.1");
        assert_eq!(report["diagnostic"], "smtp; 550 5.1.1 User unknown");
        assert_eq!(
            delivery_report(b"Subject: hi\r\n\r\nno report"),
            serde_json::json!({})
        );
    }

    const OWN: &[&str] = &["support@vendor.example"];

    fn own() -> Vec<String> {
        OWN.iter().map(|s| s.to_string()).collect()
    }

    fn mail(from: &str) -> Inbound {
        Inbound {
            message_id: Some("m1@acme.example".into()),
            in_reply_to: vec![],
            references: vec![],
            subject: "Agent down".into(),
            from: Address {
                name: None,
                email: from.into(),
            },
            reply_to: vec![],
            to: vec![Address {
                name: None,
                email: "support@vendor.example".into(),
            }],
            cc: vec![],
            date: None,
            text: "help".into(),
            html_only: false,
            attachments: vec![],
            headers: MailHeaders::default(),
        }
    }

    fn kind(m: &Inbound) -> MailKind {
        classify(m, b"From: x\r\n\r\nbody", &own())
    }

    fn is_automatic(m: &Inbound) -> bool {
        matches!(kind(m), MailKind::Automatic { .. })
    }

    fn fixture(name: &str) -> (Inbound, Vec<u8>) {
        let path = format!(
            "{}/../../tests/fixtures/eml/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read(&path).unwrap();
        (parse(&raw, &ParseLimits::default()).unwrap(), raw)
    }

    #[test]
    fn a_person_is_normal() {
        assert_eq!(kind(&mail("taro@acme.example")), MailKind::Normal);
        let mut m = mail("taro@acme.example");
        m.headers.auto_submitted = Some("no".into());
        m.headers.precedence = Some("first-class".into());
        m.headers.return_path = Some("taro@acme.example".into());
        assert_eq!(kind(&m), MailKind::Normal);
    }

    #[test]
    fn dsn_fixture_is_a_bounce_with_the_original_id() {
        let (m, raw) = fixture("bounce_dsn.eml");
        assert_eq!(
            classify(&m, &raw, &own()),
            MailKind::Bounce {
                original_message_id: Some("case-1050.ack@vendor.example".into())
            }
        );
    }

    #[test]
    fn dsn_whose_original_was_not_kept_is_read_from_the_raw_bytes() {
        let (m, raw) = fixture("bounce_dsn.eml");
        let limits = ParseLimits {
            max_attachment_bytes: 10,
            max_header_bytes: crate::mail::parse::DEFAULT_MAX_HEADER_BYTES,
        };
        let small = parse(&raw, &limits).unwrap();
        assert!(small.attachments.iter().all(|a| a.content.is_none()));
        assert_eq!(
            classify(&small, &raw, &own()),
            MailKind::Bounce {
                original_message_id: Some("case-1050.ack@vendor.example".into())
            }
        );
        assert!(matches!(
            classify(&m, &raw, &own()),
            MailKind::Bounce { .. }
        ));
    }

    #[test]
    fn dsn_without_original_is_still_a_bounce() {
        let mut m = mail("MAILER-DAEMON@mx.example");
        m.headers.content_type = Some("multipart/report; report-type=delivery-status".into());
        assert_eq!(
            classify(&m, b"", &own()),
            MailKind::Bounce {
                original_message_id: None
            }
        );
    }

    #[test]
    fn null_sender_with_attached_headers_is_a_bounce() {
        let mut m = mail("postmaster@mx.example");
        m.headers.return_path = Some(String::new());
        m.attachments.push(Attachment {
            filename: None,
            content_type: "text/rfc822-headers".into(),
            size: 40,
            kept: true,
            content: Some(b"From: support@vendor.example\r\nMessage-ID: <case-00000007.m-1@vendor.example>\r\n".to_vec()),
            span: (0, 0),
        });
        assert_eq!(
            kind(&m),
            MailKind::Bounce {
                original_message_id: Some("case-00000007.m-1@vendor.example".into())
            }
        );
    }

    #[test]
    fn auto_submitted_other_than_no() {
        let (m, raw) = fixture("auto_reply.eml");
        assert!(matches!(
            classify(&m, &raw, &own()),
            MailKind::Automatic { .. }
        ));
        let mut m = mail("taro@acme.example");
        m.headers.auto_submitted = Some("auto-generated; owner-email=x@y".into());
        assert!(is_automatic(&m));
        m.headers.auto_submitted = Some("No".into());
        assert!(!is_automatic(&m));
    }

    #[test]
    fn precedence_bulk_junk_list() {
        for p in ["bulk", "junk", "list", "Bulk", "auto_reply"] {
            let mut m = mail("news@acme.example");
            m.headers.precedence = Some(p.into());
            assert!(is_automatic(&m), "{p}");
        }
    }

    #[test]
    fn list_id_is_list_mail() {
        let (m, raw) = fixture("mailing_list.eml");
        assert!(matches!(
            classify(&m, &raw, &own()),
            MailKind::Automatic { .. }
        ));
        let mut m = mail("someone@acme.example");
        m.headers.list_id = Some("<users.lists.example>".into());
        assert!(is_automatic(&m));
    }

    #[test]
    fn empty_return_path() {
        let mut m = mail("taro@acme.example");
        m.headers.return_path = Some(String::new());
        assert!(is_automatic(&m));
    }

    #[test]
    fn robot_senders() {
        for a in [
            "MAILER-DAEMON@mx.example",
            "postmaster@acme.example",
            "noreply@acme.example",
            "no-reply@acme.example",
            "No_Reply+alerts@acme.example",
            "do-not-reply@acme.example",
            "donotreply@acme.example",
            "noreply-builds@ci.example",
        ] {
            assert!(is_automatic(&mail(a)), "{a}");
        }
        for a in [
            "norah@acme.example",
            "replies@acme.example",
            "post@acme.example",
        ] {
            assert!(!is_automatic(&mail(a)), "{a}");
        }
        let mut m = mail("taro@acme.example");
        m.headers.return_path = Some("MAILER-DAEMON@acme.example".into());
        assert!(is_automatic(&m));
    }

    #[test]
    fn our_own_address_is_a_loop() {
        for own in [
            "Support@Vendor.example",
            "support+ansible@vendor.example",
            "SUPPORT+x@VENDOR.example",
        ] {
            match kind(&mail(own)) {
                MailKind::Automatic { reason } => assert!(reason.contains("loop"), "{reason}"),
                other => panic!("{own}: {other:?}"),
            }
        }
        for other in [
            "support@other.example",
            "supportx@vendor.example",
            "support-team@vendor.example",
            "x+support@vendor.example",
        ] {
            assert_eq!(kind(&mail(other)), MailKind::Normal, "{other}");
        }
    }

    #[test]
    fn x_autoreply_headers() {
        let m = mail("taro@acme.example");
        let raw = b"From: taro@acme.example\r\nX-Autoreply: yes\r\n\r\nX-Autorespond: body only";
        assert!(matches!(
            classify(&m, raw, &own()),
            MailKind::Automatic { .. }
        ));
        let raw = b"From: taro@acme.example\r\n\r\nX-Autoreply: in the body does not count";
        assert_eq!(classify(&m, raw, &own()), MailKind::Normal);
    }
}
