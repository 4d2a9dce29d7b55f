//! Outbound mail: an [`Outgoing`] -> RFC 5322 bytes, with lettre's builder.
//!
//! - Body: UTF-8 `text/plain`, transfer-encoded by lettre (7bit, quoted-printable or
//!   base64, whichever fits), so the bytes are 7-bit clean and need no 8BITMIME.
//! - A forwarded original ([`compose_with_original`]) is 7-bit clean too: attached as
//!   `message/rfc822` when it is 7-bit with lines within RFC 5322's limit, else (8-bit
//!   bytes, NUL, longer lines) as `application/octet-stream` base64 `original.eml`.
//!   RFC 2046 §5.2.1 allows only 7bit, 8bit and binary for `message/rfc822`, and 8bit
//!   needs 8BITMIME at the relay, which is not known when the mail is composed.
//! - Non-ASCII subjects and display names become RFC 2047 encoded words.
//! - Every header line stays within RFC 5322 §2.1.1 whatever the input: a subject with
//!   a word too long to fold is written as RFC 2047 encoded words of at most 75
//!   characters, one per folded line ([`subject_header`]).
//! - Threading (RFC 5322 §3.6.4): a stable, unguessable `Message-ID` per outbound
//!   message (`crate::domain::signed::message_id`), `In-Reply-To` the message answered, `References` its
//!   References plus its Message-ID ([`thread_references`]), so that the customer's
//!   client keeps the conversation together.
//! - Automatic mail carries `Auto-Submitted: auto-replied` (RFC 3834 §5) so that
//!   well-behaved responders never answer it, and `X-Auto-Response-Suppress: All` for
//!   Exchange, which ignores RFC 3834.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{self, HeaderName, HeaderValue, InReplyTo, MessageId, References};
use lettre::message::{Body, Mailbox, Mailboxes, MultiPart, SinglePart};

use super::Address;

/// One mail to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The support address with its display name.
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// Where replies go when not to `from` (e.g. an engineer's signed reply address).
    pub reply_to: Option<Address>,
    pub subject: String,
    pub body: String,
    /// Without angle brackets: `case-00001234.m-3.<tag>@support.example.com`.
    pub message_id: String,
    /// The Message-ID answered, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Sets `Auto-Submitted: auto-replied` (RFC 3834).
    pub auto_submitted: bool,
    pub date: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("invalid message id {0:?}: expected local@domain without <>, spaces or controls")]
    MessageId(String),
    #[error("no recipient")]
    NoRecipient,
    #[error("cannot build the message: {0}")]
    Build(lettre::error::Error),
}

// The variants above print their cause in their own message, so they do not also
// return it as `source()`: `{:#}` (anyhow) would print it twice.
impl From<lettre::error::Error> for ComposeError {
    fn from(e: lettre::error::Error) -> Self {
        ComposeError::Build(e)
    }
}

/// The RFC 5322 bytes of `mail` (CRLF line ends).
pub fn compose(mail: &Outgoing) -> Result<Vec<u8>, ComposeError> {
    compose_with(mail, &[])
}

/// [`compose`] with `extra` header fields (ASCII names and short ASCII values), e.g.
/// `Auto-Submitted: auto-generated` on mail to staff.
pub fn compose_with(
    mail: &Outgoing,
    extra: &[(&'static str, &str)],
) -> Result<Vec<u8>, ComposeError> {
    let message = headers(mail, extra)?.singlepart(SinglePart::plain(crlf(&mail.body)))?;
    Ok(message.formatted())
}

/// `mail` with `original` attached as it came (its headers, Message-ID included,
/// untouched): `message/rfc822` 7bit, or base64 `application/octet-stream` `original.eml`
/// when it holds 8-bit bytes or overlong lines (see the module doc):
/// how an out-of-scope mail is forwarded to the desk that handles it. `mail.body` is the
/// covering note, the first part of a `multipart/mixed`.
pub fn compose_with_original(
    mail: &Outgoing,
    extra: &[(&'static str, &str)],
    original: &[u8],
) -> Result<Vec<u8>, ComposeError> {
    let original = crlf_bytes(strip_mbox_line(original));
    let attachment = |content_type: &str, body: Body| {
        SinglePart::builder()
            .header(
                header::ContentType::parse(content_type).unwrap_or(header::ContentType::TEXT_PLAIN),
            )
            .header(header::ContentDisposition::attachment("original.eml"))
            .body(body)
    };
    // RFC 5322 lines (at most 998 octets) travel as they are; lettre's own check wants
    // 76, which real mail breaks all the time. Only 7-bit: an 8bit part would need
    // 8BITMIME at the relay (see the module doc).
    let travels = original
        .split(|&b| b == b'\n')
        .all(|line| line.len() <= 999)
        && original.is_ascii()
        && !original.contains(&0);
    let part = if travels {
        attachment(
            "message/rfc822",
            Body::dangerous_pre_encoded(original, ContentTransferEncoding::SevenBit),
        )
    } else {
        // 8-bit bytes or longer lines cannot travel as 7bit message/rfc822: the bytes
        // go as a file.
        attachment(
            "application/octet-stream",
            Body::new_with_encoding(original, ContentTransferEncoding::Base64)
                .unwrap_or_else(Body::new),
        )
    };
    let message = headers(mail, extra)?.multipart(
        MultiPart::mixed()
            .singlepart(SinglePart::plain(crlf(&mail.body)))
            .singlepart(part),
    )?;
    Ok(message.formatted())
}

// --- issue 18b ---
/// `mail` with a UTF-8 text file attached (base64, so any line length and any script
/// travel): the Markdown draft of `#kb draft`, `text/markdown; charset=utf-8`.
pub fn compose_with_text_file(
    mail: &Outgoing,
    extra: &[(&'static str, &str)],
    filename: &str,
    content_type: &str,
    text: &str,
) -> Result<Vec<u8>, ComposeError> {
    let file = SinglePart::builder()
        .header(header::ContentType::parse(content_type).unwrap_or(header::ContentType::TEXT_PLAIN))
        .header(header::ContentDisposition::attachment(filename))
        .body(
            Body::new_with_encoding(crlf(text).into_bytes(), ContentTransferEncoding::Base64)
                .unwrap_or_else(Body::new),
        );
    let message = headers(mail, extra)?.multipart(
        MultiPart::mixed()
            .singlepart(SinglePart::plain(crlf(&mail.body)))
            .singlepart(file),
    )?;
    Ok(message.formatted())
}
// --- end issue 18b ---

/// A leading mbox `From ` line (MTA pipe delivery) is not part of the message.
fn strip_mbox_line(raw: &[u8]) -> &[u8] {
    match raw.strip_prefix(b"From ") {
        Some(_) => raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&raw[raw.len()..], |nl| &raw[nl + 1..]),
        None => raw,
    }
}

/// Bare LF (mail piped in by an MTA) as CRLF, as on the wire.
fn crlf_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 50);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Every header of `mail`: addresses, subject, date, threading, etiquette, and `extra`.
fn headers(
    mail: &Outgoing,
    extra: &[(&'static str, &str)],
) -> Result<lettre::message::MessageBuilder, ComposeError> {
    if mail.to.is_empty() && mail.cc.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    let from = mailbox(&mail.from)?;
    let to: Vec<Mailbox> = mail.to.iter().map(mailbox).collect::<Result<_, _>>()?;
    let cc: Vec<Mailbox> = mail.cc.iter().map(mailbox).collect::<Result<_, _>>()?;
    // The envelope is given, not derived: lettre derives it by re-parsing the header
    // values, which drops the legacy addresses [`address`] accepts.
    let recipients = to
        .iter()
        .chain(cc.iter())
        .map(|m| m.email.clone())
        .collect();
    let envelope = Envelope::new(Some(from.email.clone()), recipients)?;
    let mut builder = lettre::Message::builder().from(from);
    builder = match subject_header(&mail.subject) {
        Some(folded) => builder.raw_header(folded),
        None => builder.subject(mail.subject.clone()),
    };
    let mut builder = builder
        .date(SystemTime::from(mail.date))
        .header(MessageId::from(bracketed(&mail.message_id)?))
        .envelope(envelope);
    // Each list set at once: adding one by one would re-parse the header too.
    if !to.is_empty() {
        builder = builder.header(header::To::from(Mailboxes::from(to)));
    }
    if !cc.is_empty() {
        builder = builder.header(header::Cc::from(Mailboxes::from(cc)));
    }
    if let Some(a) = &mail.reply_to {
        builder = builder.reply_to(mailbox(a)?);
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.header(InReplyTo::from(bracketed(id)?));
    }
    if !mail.references.is_empty() {
        let ids: Result<Vec<String>, _> = mail.references.iter().map(|id| bracketed(id)).collect();
        builder = builder.header(References::from(ids?.join(" ")));
    }
    if mail.auto_submitted {
        builder = builder
            .raw_header(raw("Auto-Submitted", "auto-replied"))
            .raw_header(raw("X-Auto-Response-Suppress", "All"));
    }
    for (name, value) in extra {
        builder = builder.raw_header(raw(name, value));
    }
    Ok(builder)
}

/// Longest word (bytes) lettre may write as it is: it folds only at spaces, so a longer
/// word would stand on one line of its own, and beyond 998 octets relays refuse the mail
/// (`500 Line too long`). 62 keeps even the first line within the 78 RFC 5322 asks for.
const MAX_PLAIN_WORD: usize = 62;

/// UTF-8 bytes per encoded word: 36 bytes are 48 base64 characters, 60 with
/// `=?utf-8?b?` and `?=` (RFC 2047 §2 allows 75), so `Subject: ` and one word fit a line.
const ENCODED_WORD_BYTES: usize = 36;

/// The `Subject` field written by us when lettre could not fold it (a word longer than
/// [`MAX_PLAIN_WORD`]): the whole subject as base64 encoded words, one per folded line.
/// `None` when lettre's own encoding stays within the limits.
pub fn subject_header(subject: &str) -> Option<HeaderValue> {
    if !subject.split([' ', '\t']).any(|w| w.len() > MAX_PLAIN_WORD) {
        return None;
    }
    let mut words = Vec::new();
    let mut rest = subject;
    while !rest.is_empty() {
        let mut cut = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        words.push(format!("=?utf-8?b?{}?=", base64(chunk.as_bytes())));
        rest = tail;
    }
    Some(HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("Subject"),
        subject.to_string(),
        words.join("\r\n "),
    ))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

fn mailbox(a: &Address) -> Result<Mailbox, ComposeError> {
    let email = address(&a.email).map_err(|reason| ComposeError::Address {
        address: a.email.clone(),
        reason,
    })?;
    // lettre folds names only at spaces (it encodes non-ASCII words itself): a name with
    // an ASCII word too long for a line is left out rather than breaking the mail.
    let name = a
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .filter(|n| {
            !n.split([' ', '\t'])
                .any(|w| w.is_ascii() && w.len() > MAX_PLAIN_WORD)
        })
        .map(str::to_string);
    Ok(Mailbox::new(name, email))
}

/// `email` as a lettre address (for headers and the SMTP envelope). Besides what lettre
/// accepts, this takes the dotted local parts Japanese mobile carriers handed out for
/// years (`taro..yamada@docomo.ne.jp`, `hanako.@ezweb.ne.jp`): not RFC 5322 dot-atoms,
/// but deliverable, and customers still write from them. Only the dot placement is
/// forgiven: every other character must be atext, and the domain must be valid.
pub fn address(email: &str) -> Result<lettre::Address, String> {
    let email = email.trim();
    let strict = match email.parse::<lettre::Address>() {
        Ok(a) => return Ok(a),
        Err(e) => e.to_string(),
    };
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(strict);
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let dotted_legacy = !local.is_empty() && local.contains('.') && local.chars().all(atext);
    if dotted_legacy && lettre::Address::new("x", domain).is_ok() {
        Ok(lettre::Address::new_dangerous(local, domain))
    } else {
        Err(strict)
    }
}

/// `<id>`, after checking that `id` is a plausible msg-id (RFC 5322 §3.6.4): one `@`,
/// printable ASCII, no brackets or spaces. A bad id would break threading silently.
fn bracketed(id: &str) -> Result<String, ComposeError> {
    if is_msg_id(id) {
        Ok(format!("<{id}>"))
    } else {
        Err(ComposeError::MessageId(id.to_string()))
    }
}

/// The longest msg-id we write (RFC 5322 has no limit, but a header line has one).
const MAX_MSG_ID_LEN: usize = 900;

/// Whether [`compose`] accepts `id` (without brackets) as a msg-id.
fn is_msg_id(id: &str) -> bool {
    // Longer ids could not be folded within a line of 998 octets (RFC 5322 §2.1.1).
    id.len() <= MAX_MSG_ID_LEN
        && id.split('@').count() == 2
        && !id.starts_with('@')
        && !id.ends_with('@')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

/// CRLF line ends throughout, as RFC 5322 §2.3 requires on the wire.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// Most references kept: the first (the thread's root) and the newest ones. Long threads
/// otherwise grow the header without bound (RFC 5322 §3.6.4 allows trimming).
const MAX_REFERENCES: usize = 20;

/// `In-Reply-To` and `References` for a reply to a message with Message-ID `parent_id`,
/// `References` `parent_references` and `In-Reply-To` `parent_in_reply_to` (RFC 5322
/// §3.6.4: the parent's References, else its single In-Reply-To, then the parent's id).
/// Ids that are not `left@right` (old mailers, broken clients) are left out rather than
/// making the reply impossible to compose: the reply matters more than its threading.
pub fn thread_references(
    parent_id: Option<&str>,
    parent_references: &[String],
    parent_in_reply_to: &[String],
) -> (Option<String>, Vec<String>) {
    let Some(parent) = parent_id else {
        return (None, Vec::new());
    };
    let parent = Some(parent).filter(|p| is_msg_id(p));
    let mut refs: Vec<String> = if !parent_references.is_empty() {
        parent_references.to_vec()
    } else if parent_in_reply_to.len() == 1 {
        parent_in_reply_to.to_vec()
    } else {
        Vec::new()
    };
    refs.retain(|r| is_msg_id(r) && Some(r.as_str()) != parent);
    refs.dedup();
    refs.extend(parent.map(str::to_string));
    if refs.len() > MAX_REFERENCES {
        let tail = refs.split_off(refs.len() - (MAX_REFERENCES - 1));
        refs.truncate(1);
        refs.extend(tail);
    }
    (parent.map(str::to_string), refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::{ParseLimits, parse};
    use chrono::TimeZone;

    fn outgoing() -> Outgoing {
        Outgoing {
            from: Address {
                name: Some("Example サポート".into()),
                email: "support@example.com".into(),
            },
            to: vec![Address {
                name: Some("山田 太郎".into()),
                email: "taro@acme.example".into(),
            }],
            cc: vec![Address {
                name: None,
                email: "boss@acme.example".into(),
            }],
            reply_to: None,
            subject: "Re: [Case #00001234] エージェントが起動しません（緊急）".into(),
            body: "山田様\n\nいつもお世話になっております。\n".into(),
            message_id: "case-00001234.m-1@example.com".into(),
            in_reply_to: Some("abc@acme.example".into()),
            references: vec!["root@acme.example".into(), "abc@acme.example".into()],
            auto_submitted: true,
            date: Utc.with_ymd_and_hms(2026, 11, 30, 1, 2, 3).unwrap(),
        }
    }

    #[test]
    fn japanese_mail_round_trips_through_the_parser() {
        let raw = compose(&outgoing()).unwrap();
        assert!(raw.is_ascii(), "composed mail must be 7-bit clean");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
        assert!(
            text.contains("Message-ID: <case-00001234.m-1@example.com>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <abc@acme.example>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("References: <root@acme.example> <abc@acme.example>\r\n"),
            "{text}"
        );
        let mail = parse(&raw, &ParseLimits::default()).unwrap();
        assert_eq!(mail.subject, outgoing().subject);
        assert_eq!(mail.from.name.as_deref(), Some("Example サポート"));
        assert_eq!(mail.to[0].name.as_deref(), Some("山田 太郎"));
        assert_eq!(mail.cc[0].email, "boss@acme.example");
        assert_eq!(
            mail.message_id.as_deref(),
            Some("case-00001234.m-1@example.com")
        );
        assert_eq!(mail.in_reply_to, vec!["abc@acme.example".to_string()]);
        assert_eq!(mail.references.len(), 2);
        assert_eq!(mail.text, "山田様\n\nいつもお世話になっております。");
        assert_eq!(mail.headers.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(mail.date, Some(outgoing().date));
    }

    #[test]
    fn long_japanese_subject_round_trips() {
        let mut m = outgoing();
        m.subject = "【至急】本番環境のジョブ実行基盤でエージェントが起動直後に異常終了する件について（再送）".repeat(3);
        let mail = parse(&compose(&m).unwrap(), &ParseLimits::default()).unwrap();
        assert_eq!(mail.subject, m.subject);
    }

    #[test]
    fn plain_mail_has_no_auto_headers() {
        let mut m = outgoing();
        m.auto_submitted = false;
        m.in_reply_to = None;
        m.references.clear();
        let text = String::from_utf8(compose(&m).unwrap()).unwrap();
        assert!(!text.contains("Auto-Submitted"));
        assert!(!text.contains("In-Reply-To"));
        assert!(!text.contains("References"));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut m = outgoing();
        m.message_id = "<x@y>".into();
        assert!(matches!(compose(&m), Err(ComposeError::MessageId(_))));
        let mut m = outgoing();
        m.to[0].email = "not an address".into();
        assert!(matches!(compose(&m), Err(ComposeError::Address { .. })));
        let mut m = outgoing();
        m.to.clear();
        m.cc.clear();
        assert!(matches!(compose(&m), Err(ComposeError::NoRecipient)));
    }

    #[test]
    fn legacy_carrier_addresses_are_accepted_but_nothing_else_is() {
        for ok in [
            "taro..yamada@docomo.ne.jp",
            "hanako.@ezweb.ne.jp",
            ".x@au.com",
            "plain@example.com",
        ] {
            assert_eq!(
                address(ok).map(|a| a.to_string()),
                Ok(ok.to_string()),
                "{ok}"
            );
        }
        for bad in [
            "a b@x.example",
            "a..b@",
            "a..b@bad domain",
            "a<b>..c@x.example",
            "a..b@x.example\r\nBcc: e@x",
            "no-at-sign",
        ] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
        let mut m = outgoing();
        m.to[0].email = "taro..yamada@docomo.ne.jp".into();
        let text = String::from_utf8(compose(&m).unwrap()).unwrap();
        assert!(text.contains("<taro..yamada@docomo.ne.jp>"), "{text}");
    }

    #[test]
    fn a_subject_with_a_1200_character_word_is_folded_within_the_limits() {
        let word = "x".repeat(1200);
        for subject in [
            format!("Re: [Case #00001234] {word}"),
            format!("障害 {}", "あ".repeat(700)),
        ] {
            let mut m = outgoing();
            m.subject = subject.clone();
            let raw = compose(&m).unwrap();
            let text = String::from_utf8(raw.clone()).unwrap();
            for line in text.split("\r\n") {
                assert!(line.len() <= 78, "line of {}: {line}", line.len());
            }
            let mail = parse(&raw, &ParseLimits::default()).unwrap();
            assert_eq!(mail.subject, subject);
        }
        assert!(subject_header("Re: [Case #00001234] Agent down").is_none());
        // A customer's display name (the Reply-To of a forward) cannot break it either.
        let mut m = outgoing();
        m.reply_to = Some(Address {
            name: Some(word.clone()),
            email: "taro@acme.example".into(),
        });
        let text = String::from_utf8(compose(&m).unwrap()).unwrap();
        assert!(text.split("\r\n").all(|l| l.len() <= 78), "{text}");
        assert!(text.contains("Reply-To: taro@acme.example\r\n"), "{text}");
    }

    #[test]
    fn references_follow_rfc5322() {
        let (irt, refs) = thread_references(Some("c@x"), &["a@x".into(), "b@x".into()], &[]);
        assert_eq!(irt.as_deref(), Some("c@x"));
        assert_eq!(refs, vec!["a@x", "b@x", "c@x"]);
        let (_, refs) = thread_references(Some("c@x"), &[], &["b@x".into()]);
        assert_eq!(refs, vec!["b@x", "c@x"]);
        assert_eq!(
            thread_references(None, &["a@x".into()], &[]),
            (None, vec![])
        );
        let many: Vec<String> = (0..50).map(|i| format!("m{i}@x")).collect();
        let (_, refs) = thread_references(Some("p@x"), &many, &[]);
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "m0@x");
        assert_eq!(refs.last().map(String::as_str), Some("p@x"));
    }

    #[test]
    fn ids_compose_cannot_write_are_left_out_of_the_thread() {
        let (irt, refs) =
            thread_references(Some("c@x"), &["legacy.lotus".into(), "b@x".into()], &[]);
        assert_eq!(
            (irt.as_deref(), refs),
            (Some("c@x"), vec!["b@x".to_string(), "c@x".to_string()])
        );
        let (irt, refs) = thread_references(Some("123.JavaMail.app"), &["a@x".into()], &[]);
        assert_eq!((irt, refs), (None, vec!["a@x".to_string()]));
        let mut m = super::tests::outgoing();
        (m.in_reply_to, m.references) = thread_references(Some("no-at-sign"), &[], &[]);
        assert!(compose(&m).is_ok());
    }
}
