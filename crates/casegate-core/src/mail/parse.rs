//! The "parse" stage: raw RFC 5322 bytes -> [`Inbound`].
//!
//! mail-parser (0.11, `full_encoding`) finds the structure: headers, MIME tree, which
//! parts are body and which are attachments. Everything a Japanese support desk cares
//! about in the bytes is decoded here instead (see `charset`, `header`, `body`, `html`):
//! wrong or missing charset labels, raw Shift_JIS headers, encoded words split across a
//! character, HTML-only mail, damaged MIME. Mail is never lost: anything mail-parser can
//! make sense of parses; only input that is not a message at all, or has no sender,
//! is an error (and goes to quarantine, keyed by [`dedup_key`] and described by
//! [`sniff_headers`], both of which work on any bytes).

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use mail_parser::{Addr, HeaderValue, Message, MessageParser, MimeHeaders, parsers::MessageStream};
use sha2::{Digest, Sha256};

use super::skeleton::Skeleton;
use super::{Address, Inbound, MailHeaders, addr_spec, body, bounded, header};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Empty input, binary data, or text that does not open with a header field.
    #[error("no RFC 5322 header block")]
    NotAMessage,
    /// Neither From, Sender nor Return-Path holds an address: nobody to answer.
    #[error("no From address")]
    NoSender,
    /// The From (or, without one, the Sender or Return-Path) holds something that is
    /// not an address one could write to (`<\xff\xfe@>`): nobody to answer either.
    #[error("no usable sender address")]
    UnusableSender,
    /// mail-parser panicked on this input (0.11.9 has `debug_assert!`s that damaged
    /// MIME trips in debug builds); caught so that one mail cannot stop the daemon.
    #[error("the MIME parser failed on this input")]
    ParserFailed,
}

/// Bounds on what one mail may make us hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Attachments larger than this keep name, type and size but not their content.
    pub max_attachment_bytes: u64,
    /// A top-level header field longer than this is cut and marked `[truncated]`
    /// before anything decodes it (see `bounded`).
    pub max_header_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_attachment_bytes: 25 * 1024 * 1024,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// `gateway.max_header_bytes`' default: 64 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Parses one raw mail. Never panics, whatever the bytes.
///
/// `message_id` is [`sniff_message_id`] of the same bytes, the id [`dedup_key`] uses.
pub fn parse(raw: &[u8], limits: &ParseLimits) -> Result<Inbound, ParseError> {
    parse_with(raw, limits, Decode::TextParts)
}

/// What the MIME parse decodes: the text parts only (attachments are only scanned for
/// their end, see `skeleton`), or every part (the check that both agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    TextParts,
    #[cfg_attr(not(test), allow(dead_code))]
    Everything,
}

fn parse_with(raw: &[u8], limits: &ParseLimits, decode: Decode) -> Result<Inbound, ParseError> {
    if !header::starts_with_field(raw) {
        return Err(ParseError::NotAMessage);
    }
    // A giant header field is cut before mail-parser and the decoders see it: they
    // hold several copies of every value (a 20 MiB Subject cost 30 times its size).
    let bounded = bounded::cut_long_fields(raw, limits.max_header_bytes);
    let raw_len = raw.len();
    let raw = bounded.as_deref().unwrap_or(raw);
    let mime = header::skip_mbox_line(raw);
    let skeleton = match decode {
        Decode::TextParts => Skeleton::of(mime),
        Decode::Everything => None,
    };
    // The skeleton's parse, when it proves right; else the mail as sent.
    let parsed = skeleton.as_ref().and_then(|s| {
        let message = mime_tree(&s.bytes).ok()?;
        let masked = s.masked_parts(&message)?;
        Some((message, masked))
    });
    let (message, masked) = match parsed {
        Some(parsed) => parsed,
        None => (mime_tree(mime)?, Vec::new()),
    };
    let from = sender(&message)?;
    let mut body = body::extract(&message, limits.max_attachment_bytes, &masked);
    // Offsets count from the MIME text; spans count from the raw mail as stored (the
    // cut fields lie before every part, so they shift all spans alike).
    let skipped = raw_len - mime.len();
    for a in &mut body.attachments {
        a.span = (a.span.0 + skipped, a.span.1 + skipped);
    }
    Ok(Inbound {
        message_id: sniff_message_id(raw),
        in_reply_to: first_value(&message, "In-Reply-To")
            .map(header::message_ids)
            .unwrap_or_default(),
        references: first_value(&message, "References")
            .map(header::message_ids)
            .unwrap_or_default(),
        subject: first_value(&message, "Subject")
            .map(header::decode_text)
            .unwrap_or_default(),
        from,
        reply_to: addresses(&message, "Reply-To"),
        to: addresses(&message, "To"),
        cc: addresses(&message, "Cc"),
        date: date(&message),
        text: body.text,
        html_only: body.html_only,
        attachments: body.attachments,
        headers: mail_headers(&message),
    })
}

/// The content of the attachment at `span` in the raw mail (its [`crate::mail::Attachment::span`]):
/// the part, MIME headers and body, is itself a MIME entity, decoded on its own.
pub fn attachment_content(raw: &[u8], span: (usize, usize)) -> Option<Vec<u8>> {
    let part = raw.get(span.0..span.1)?;
    let entity = mime_tree(part).ok()?;
    Some(body::decoded_bytes(part, entity.parts.first()?))
}

/// Dedup key of a mail, from its raw bytes alone so that a parsed mail and a
/// quarantined one get the same key: `mid:<message-id>` ([`sniff_message_id`]) when the
/// mail has one, else `sha256:<hex of the raw bytes>`.
pub fn dedup_key(raw: &[u8]) -> String {
    match sniff_message_id(raw) {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    }
}

/// The first Message-ID of the top-level header block, without angle brackets, found
/// without a MIME parse so that even unparseable mail can be de-duplicated.
pub fn sniff_message_id(raw: &[u8]) -> Option<String> {
    sniffed_field(raw, "Message-ID").and_then(|value| header::message_ids(value).into_iter().next())
}

/// What the quarantine register shows of a mail, read from its header block alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SniffedHeaders {
    pub message_id: Option<String>,
    /// The From address, or the From text when it holds no address.
    pub from: Option<String>,
    /// Decoded like a parsed subject.
    pub subject: Option<String>,
}

/// [`SniffedHeaders`] of any bytes, message or not.
pub fn sniff_headers(raw: &[u8]) -> SniffedHeaders {
    let from = sniffed_field(raw, "From").and_then(|value| {
        let email = header_addresses(value).into_iter().next().map(|a| a.email);
        email.or_else(|| Some(header::decode_text(value)).filter(|text| !text.is_empty()))
    });
    SniffedHeaders {
        message_id: sniff_message_id(raw),
        from,
        subject: sniffed_field(raw, "Subject")
            .map(header::decode_text)
            .filter(|s| !s.is_empty()),
    }
}

fn sniffed_field<'r>(raw: &'r [u8], name: &str) -> Option<&'r [u8]> {
    header::fields(raw)
        .find(|(field, _)| field.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, value)| value)
}

fn mime_tree(raw: &[u8]) -> Result<Message<'_>, ParseError> {
    match catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(raw))) {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err(ParseError::NotAMessage),
        Err(_) => Err(ParseError::ParserFailed),
    }
}

/// Raw values (as sent, folding included) of the top-level headers called `name`.
fn values<'m>(message: &'m Message<'_>, name: &'m str) -> impl Iterator<Item = &'m [u8]> {
    let raw = message.raw_message.as_ref();
    message
        .headers()
        .iter()
        .filter(move |h| h.name.as_str().eq_ignore_ascii_case(name))
        .filter_map(move |h| raw.get(h.offset_start as usize..h.offset_end as usize))
}

fn first_value<'m>(message: &'m Message<'_>, name: &'m str) -> Option<&'m [u8]> {
    values(message, name).next()
}

fn first_text(message: &Message<'_>, name: &str) -> Option<String> {
    first_value(message, name).map(header::raw_text)
}

/// From, else Sender, else Return-Path: the first of them that holds an address gives
/// the sender, and its first usable one ([`addr_spec::is_usable`]) is the sender. When
/// that header holds none, the mail has no usable sender: a From that is there but
/// broken is not replaced by an envelope address (the MTA adds Return-Path to every
/// mail, and a reply to it would go where the author never asked).
fn sender(message: &Message<'_>) -> Result<Address, ParseError> {
    let found = ["From", "Sender", "Return-Path"]
        .into_iter()
        .map(|name| {
            first_value(message, name)
                .map(header_addresses)
                .unwrap_or_default()
        })
        .find(|list| !list.is_empty())
        .ok_or(ParseError::NoSender)?;
    found
        .into_iter()
        .find(|a| addr_spec::is_usable(&a.email))
        .ok_or(ParseError::UnusableSender)
}

/// Every usable address of every header called `name`, groups flattened; what is not
/// an address (see [`addr_spec`]) is left out, so that nothing is ever sent to it.
fn addresses(message: &Message<'_>, name: &str) -> Vec<Address> {
    values(message, name)
        .flat_map(header_addresses)
        .filter(|a| addr_spec::is_usable(&a.email))
        .collect()
}

fn header_addresses(value: &[u8]) -> Vec<Address> {
    let utf8 = header::to_utf8_structured(value);
    match MessageStream::new(&utf8).parse_address() {
        HeaderValue::Address(list) => list.iter().filter_map(|a| address(a, &utf8)).collect(),
        _ => Vec::new(),
    }
}

/// Trimmed, domain lower-cased (local parts can be case-sensitive); a display name that
/// only repeats the address is dropped. `text` is the header value that was parsed.
fn address(addr: &Addr<'_>, text: &[u8]) -> Option<Address> {
    let mut name = addr.name.as_deref();
    let mut email = addr.address.as_deref()?.trim().to_owned();
    // mail-parser reads a bare quoted local part (`"john doe"@example.com`, without
    // angle brackets) as a display name followed by `@example.com`: put it back.
    if let Some(local) = name
        && email.starts_with('@')
    {
        let quoted = format!("\"{}\"", local.replace('\\', "\\\\").replace('"', "\\\""));
        let written = format!("{quoted}{email}");
        if text.windows(written.len()).any(|w| w == written.as_bytes()) {
            email = written;
            name = None;
        }
    }
    let email = match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email,
    };
    if email.is_empty() {
        return None;
    }
    let name = name
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.eq_ignore_ascii_case(&email))
        .map(str::to_owned);
    Some(Address { name, email })
}

fn date(message: &Message<'_>) -> Option<DateTime<Utc>> {
    let date = message.date().filter(|d| d.is_valid())?;
    DateTime::from_timestamp(date.to_timestamp(), 0)
}

fn mail_headers(message: &Message<'_>) -> MailHeaders {
    MailHeaders {
        auto_submitted: first_text(message, "Auto-Submitted"),
        precedence: first_text(message, "Precedence"),
        list_id: first_text(message, "List-Id"),
        return_path: first_text(message, "Return-Path").map(|path| return_path(&path)),
        content_type: top_content_type(message),
        authentication_results: values(message, "Authentication-Results")
            .map(header::raw_text)
            .collect(),
    }
}

/// `<>` (a bounce) becomes `""`, `<a@b>` becomes `a@b`.
fn return_path(value: &str) -> String {
    let value = value.trim();
    let inner = value
        .strip_prefix('<')
        .and_then(|v| v.split_once('>'))
        .map_or(value, |(inner, _)| inner);
    inner.trim().to_owned()
}

/// `type/subtype`, plus `report-type` when present: bounces are recognised by it.
fn top_content_type(message: &Message<'_>) -> Option<String> {
    let ct = message.content_type()?;
    let mut out = ct.ctype().to_ascii_lowercase();
    if let Some(subtype) = ct.subtype() {
        out = format!("{out}/{}", subtype.to_ascii_lowercase());
    }
    if let Some(report_type) = ct.attribute("report-type") {
        out = format!("{out}; report-type={}", report_type.to_ascii_lowercase());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits::default()
    }

    /// Every `.eml` below `dir`, recursively.
    fn eml_files(dir: &std::path::Path, any_name: bool, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                eml_files(&path, any_name, out);
            } else if any_name || path.extension().is_some_and(|e| e == "eml") {
                out.push(path);
            }
        }
    }

    /// The skeleton (attachments not decoded) parses every mail of the golden files and
    /// of mail-parser's own test mails exactly as the full decode does: same text, same
    /// attachments with the same sizes and spans, same headers.
    #[test]
    fn skeleton_parse_equals_full_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        eml_files(&root.join("tests/fixtures"), false, &mut files);
        // The fuzzer's kept mails: damaged MIME of every kind.
        eml_files(&root.join("fuzz/corpus/mail"), true, &mut files);
        eml_files(&root.join("fuzz/findings/mail"), true, &mut files);
        // mail-parser's own test mails, from cargo's registry copy (as tests/corpora.rs).
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
        let indexes = cargo_home.map(|c| c.join("registry/src")).into_iter();
        for index in indexes.flat_map(std::fs::read_dir).flatten().flatten() {
            for krate in std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if krate
                    .file_name()
                    .to_string_lossy()
                    .starts_with("mail-parser-0.11")
                {
                    eml_files(&krate.path().join("resources/eml"), false, &mut files);
                }
            }
        }
        assert!(files.len() > 1000, "found only {} mails", files.len());
        let mut with_attachments = 0;
        for path in &files {
            let raw = std::fs::read(path).expect("readable fixture");
            let skeleton = parse_with(&raw, &limits(), Decode::TextParts);
            let full = parse_with(&raw, &limits(), Decode::Everything);
            if let Ok(mail) = &full {
                with_attachments += usize::from(!mail.attachments.is_empty());
            }
            assert_eq!(
                format!("{skeleton:?}"),
                format!("{full:?}"),
                "{}",
                path.display()
            );
        }
        assert!(
            with_attachments > 10,
            "{with_attachments} mails with attachments"
        );
    }

    #[test]
    fn not_a_message() {
        for raw in [
            &b""[..],
            b"   \r\n",
            b"\x00\x01\x02binary",
            b"just some text\r\nmore\r\n",
            b"\r\nFrom: a@b\r\n",
        ] {
            assert!(
                matches!(parse(raw, &limits()), Err(ParseError::NotAMessage)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn sender_fallbacks() {
        let raw = b"Sender: b@Y.example\r\nReturn-Path: <c@z>\r\n\r\nx";
        assert_eq!(
            parse(raw, &limits()).map(|m| m.from.email).ok(),
            Some("b@y.example".into())
        );
        let raw = b"Return-Path: <c@Z.example>\r\nSubject: s\r\n\r\nx";
        assert_eq!(
            parse(raw, &limits()).map(|m| m.from.email).ok(),
            Some("c@z.example".into())
        );
        let raw = b"From: nobody\r\nReturn-Path: <>\r\n\r\nx";
        assert!(matches!(
            parse(raw, &limits()),
            Err(ParseError::NoSender) | Err(ParseError::UnusableSender)
        ));
    }

    /// `From: <\xff\xfe@>` was accepted as the sender `ÿþ@`: a case was opened and its
    /// refusal failed to compose.
    #[test]
    fn from_that_is_not_an_address_has_no_usable_sender() {
        for raw in [
            &b"From: <\xff\xfe@>\r\nSubject: x\r\n\r\nx"[..],
            b"From: <\xff\xfe@>\r\nReturn-Path: <ok@example.com>\r\n\r\nx",
            b"From: Someone <@example.com>\r\n\r\nx",
            b"From: <user@>\r\n\r\nx",
            b"Sender: <a b@example.com>\r\n\r\nx",
        ] {
            let err = parse(raw, &limits()).err();
            assert!(
                matches!(err, Some(ParseError::UnusableSender)),
                "{raw:?}: {err:?}"
            );
            assert_eq!(
                err.map(|e| e.to_string()).as_deref(),
                Some("no usable sender address")
            );
        }
    }

    #[test]
    fn lenient_senders_are_usable() {
        for (raw, email) in [
            (
                &b"From: \"john doe\"@Example.com\r\n\r\nx"[..],
                "\"john doe\"@example.com",
            ),
            (
                b"From: <taro..yamada.@docomo.ne.jp>\r\n\r\nx",
                "taro..yamada.@docomo.ne.jp",
            ),
            (
                "From: =?utf-8?b?5bGx55Sw?= <info@例え.JP>\r\n\r\nx".as_bytes(),
                "info@例え.jp",
            ),
        ] {
            let got = parse(raw, &limits()).map(|m| m.from.email);
            assert_eq!(got.ok().as_deref(), Some(email), "{raw:?}");
        }
    }

    #[test]
    fn unusable_reply_to_and_cc_addresses_are_dropped() {
        let raw = b"From: a@b.example\r\nReply-To: <\xff\xfe@>, ok@b.example\r\nCc: <@x>\r\n\r\nx";
        let mail = parse(raw, &limits()).expect("parses");
        let reply_to: Vec<_> = mail.reply_to.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(reply_to, ["ok@b.example"]);
        assert!(mail.cc.is_empty());
    }

    #[test]
    fn dedup_keys() {
        assert_eq!(dedup_key(b"Message-ID: <a@b>\r\n\r\nx"), "mid:a@b");
        let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(dedup_key(b""), format!("sha256:{empty_sha256}"));
        assert!(dedup_key(b"Message-ID: <>\r\n\r\n").starts_with("sha256:"));
    }

    #[test]
    fn sniffed_headers_of_an_unparseable_mail() {
        let raw = b"Subject: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\r\nFrom: X <x@Y.example>\r\nMessage-ID: <q@x>\r\n\r\n";
        let head = sniff_headers(raw);
        assert_eq!(head.message_id.as_deref(), Some("q@x"));
        assert_eq!(head.from.as_deref(), Some("x@y.example"));
        assert_eq!(head.subject.as_deref(), Some("山田"));
        assert_eq!(
            sniff_headers(b"From: nobody\r\n\r\n").from.as_deref(),
            Some("nobody")
        );
        assert_eq!(sniff_headers(b"\x89PNG"), SniffedHeaders::default());
    }

    #[test]
    fn sniff_matches_parse() {
        let raw = b"From x Mon\r\nFrom: a@b\r\nMessage-Id:\r\n <id-1@host>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(sniff_message_id(raw).as_deref(), Some("id-1@host"));
        assert_eq!(
            parse(raw, &limits())
                .ok()
                .and_then(|m| m.message_id)
                .as_deref(),
            Some("id-1@host")
        );
        assert_eq!(sniff_message_id(b"\x89PNG garbage"), None);
    }

    #[test]
    fn addresses_are_flattened_and_normalised() {
        let raw = b"From: \"A, B\" <a@X.Example>, c@d\r\nTo: Team: t1@T.example, <t2@t.example>;, \r\n Solo <Solo@S.EXAMPLE >\r\nTo: more@m\r\n\r\nx";
        let mail = parse(raw, &limits()).expect("parses");
        assert_eq!(
            mail.from,
            Address {
                name: Some("A, B".into()),
                email: "a@x.example".into()
            }
        );
        let to: Vec<_> = mail.to.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(
            to,
            ["t1@t.example", "t2@t.example", "Solo@s.example", "more@m"]
        );
    }

    #[test]
    fn return_path_forms() {
        assert_eq!(return_path("<>"), "");
        assert_eq!(return_path(" <a@b> "), "a@b");
        assert_eq!(return_path("a@b"), "a@b");
    }

    #[test]
    fn oversized_attachment_keeps_metadata_only() {
        let raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x\r\n\
                    Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--x--\r\n";
        let small = parse(
            raw,
            &ParseLimits {
                max_attachment_bytes: 4,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            },
        )
        .ok();
        let att = small.as_ref().and_then(|m| m.attachments.first());
        assert_eq!(att.map(|a| (a.size, a.kept)), Some((5, false)));
        let big = parse(raw, &limits()).ok();
        let att = big.as_ref().and_then(|m| m.attachments.first());
        assert_eq!(
            att.map(|a| (a.size, a.kept, a.content.is_none())),
            Some((5, true, true))
        );
        assert_eq!(
            att.and_then(|a| attachment_content(raw, a.span)),
            Some(b"hello".to_vec())
        );
    }
}
