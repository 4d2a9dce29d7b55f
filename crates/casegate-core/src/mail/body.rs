//! Body text and attachments from mail-parser's part tree.
//!
//! mail-parser decides the structure (which parts are body, which are attachments);
//! the bytes are taken again from the raw part and decoded here, because its charset
//! step cannot be overridden: it would decode a mislabelled Shift_JIS part as lossy
//! UTF-8, and a text attachment's content must stay the bytes that were sent.

use mail_parser::{
    Encoding, HeaderName, Message, MessagePart, MimeHeaders, PartType, parsers::MessageStream,
};

use super::{Attachment, charset, header, html, skeleton};

/// What the body parts of a message come to.
pub struct Body {
    pub text: String,
    pub html_only: bool,
    pub attachments: Vec<Attachment>,
}

/// Name given to an attached message that has no file name of its own.
const FORWARDED_NAME: &str = "forwarded.eml";

/// `masked`: the parts whose base64 the skeleton hid from mail-parser (see
/// `skeleton`): their body is still encoded, and only its decoded size is worked out.
pub fn extract(message: &Message<'_>, max_attachment_bytes: u64, masked: &[u32]) -> Body {
    let body_ids = body_part_ids(message);
    let raw = message.raw_message.as_ref();
    let parts: Vec<&MessagePart<'_>> = body_ids
        .iter()
        .filter_map(|&id| part(message, id))
        .collect();
    let text = parts
        .iter()
        .map(|p| part_text(raw, p))
        .collect::<Vec<_>>()
        .join("\n");
    let html_only = !parts.is_empty() && parts.iter().all(|p| is_html(p));
    let attachments = message
        .attachments
        .iter()
        .filter(|id| !body_ids.contains(id))
        .filter_map(|&id| Some((part(message, id)?, masked.contains(&id))))
        .map(|(p, masked)| attachment(raw, p, max_attachment_bytes, masked))
        .collect();
    Body {
        text: normalise(&text),
        html_only,
        attachments,
    }
}

/// The text parts mail-parser chose as the body. When it chose none, the first text part
/// that is not explicitly an attachment: mail-parser files a part whose closing boundary
/// never arrived under attachments, and a truncated mail still has a readable body.
fn body_part_ids(message: &Message<'_>) -> Vec<u32> {
    let chosen: Vec<u32> = message
        .text_body
        .iter()
        .copied()
        .filter(|&id| part(message, id).is_some_and(is_text))
        .collect();
    if !chosen.is_empty() {
        return chosen;
    }
    message
        .attachments
        .iter()
        .copied()
        .find(|&id| part(message, id).is_some_and(|p| is_text(p) && !is_declared_attachment(p)))
        .into_iter()
        .collect()
}

fn part<'m, 'x>(message: &'m Message<'x>, id: u32) -> Option<&'m MessagePart<'x>> {
    message.parts.get(id as usize)
}

/// A text/plain or text/html part (a missing Content-Type means text/plain).
fn is_text(part: &MessagePart<'_>) -> bool {
    matches!(part.body, PartType::Text(_) | PartType::Html(_))
        && part.content_type().is_none_or(|ct| {
            ct.ctype().eq_ignore_ascii_case("text")
                && matches!(subtype(ct).as_str(), "plain" | "html")
        })
}

/// Decided on the Content-Type sent, not on mail-parser's part kind: it files an HTML
/// part with a broken transfer encoding as plain text.
fn is_html(part: &MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|ct| subtype(ct) == "html")
}

fn is_declared_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|cd| cd.is_attachment())
        || part.attachment_name().is_some()
}

fn subtype(ct: &mail_parser::ContentType<'_>) -> String {
    ct.subtype().unwrap_or_default().to_ascii_lowercase()
}

fn part_text(raw: &[u8], part: &MessagePart<'_>) -> String {
    let label = part.content_type().and_then(|ct| ct.attribute("charset"));
    let text = charset::decode(&decoded_bytes(raw, part), label);
    if is_html(part) {
        html::to_text(&text)
    } else {
        text
    }
}

/// `\n` line endings, no BOM, no trailing blank lines.
fn normalise(text: &str) -> String {
    let text = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\u{feff}', "");
    text.trim_end().to_owned()
}

fn attachment(raw: &[u8], part: &MessagePart<'_>, max_bytes: u64, masked: bool) -> Attachment {
    let content_type = content_type(part);
    // Only a forwarded original is read again (bounce handling): no copy of the others.
    let (size, content) = if masked {
        let body = raw
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_default();
        (skeleton::base64_decoded_len(body), None)
    } else if super::is_forwarded_original(&content_type) {
        let content = decoded_bytes(raw, part);
        (content.len(), Some(content))
    } else {
        (decoded_len(raw, part), None)
    };
    let kept = u64::try_from(size).is_ok_and(|size| size <= max_bytes);
    Attachment {
        filename: filename(raw, part)
            .or_else(|| part.is_message().then(|| FORWARDED_NAME.to_owned())),
        content_type,
        size,
        kept,
        content: content.filter(|_| kept),
        span: (part.offset_header as usize, part.offset_end as usize),
    }
}

/// The decoded size, without a copy when mail-parser decoded the part already.
fn decoded_len(raw: &[u8], part: &MessagePart<'_>) -> usize {
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) if !part.is_encoding_problem => {
            bytes.len()
        }
        _ => decoded_bytes(raw, part).len(),
    }
}

/// Lower-case `type/subtype`, defaulted from the part kind when the header is missing.
fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match part.body {
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Text(_) => "text/plain".into(),
            PartType::Html(_) => "text/html".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

/// The file name from Content-Disposition, else from Content-Type's `name`, decoded
/// from the raw header (raw Shift_JIS, encoded words in any charset), without any path.
fn filename(raw: &[u8], part: &MessagePart<'_>) -> Option<String> {
    let param = |name: HeaderName<'_>, attr: &str| {
        let header = part.headers.iter().find(|h| h.name == name)?;
        let value = raw.get(header.offset_start as usize..header.offset_end as usize)?;
        let utf8 = header::to_utf8_structured(value);
        let parsed = MessageStream::new(&utf8).parse_content_type();
        parsed.as_content_type()?.attribute(attr).map(str::to_owned)
    };
    let name = param(HeaderName::ContentDisposition, "filename")
        .or_else(|| param(HeaderName::ContentType, "name"))?;
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    (!base.is_empty()).then(|| base.to_owned())
}

/// The part's content after transfer decoding, before any charset decoding.
pub(super) fn decoded_bytes(raw: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    if let PartType::Binary(bytes) | PartType::InlineBinary(bytes) = &part.body
        && !part.is_encoding_problem
    {
        return bytes.to_vec();
    }
    let body = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    match transfer_encoding(part) {
        Encoding::Base64 => base64(body),
        Encoding::QuotedPrintable => quoted_printable(body),
        Encoding::None => body.to_vec(),
    }
}

/// From the header, not from `part.encoding`: mail-parser resets that to "none" when
/// the content does not decode, and we still want what can be decoded.
fn transfer_encoding(part: &MessagePart<'_>) -> Encoding {
    match part.content_transfer_encoding().map(str::trim) {
        Some(cte) if cte.eq_ignore_ascii_case("base64") => Encoding::Base64,
        Some(cte) if cte.eq_ignore_ascii_case("quoted-printable") => Encoding::QuotedPrintable,
        _ => Encoding::None,
    }
}

/// Base64 that tolerates damage: where mail-parser gives up on the whole part (and
/// would hand back the undecoded text), lines that are not base64 (mangled in transit,
/// a stray boundary) are dropped and the rest is decoded.
fn base64(body: &[u8]) -> Vec<u8> {
    let (end, bytes) = MessageStream::new(body).decode_base64_mime(b"");
    if end != usize::MAX {
        return bytes.into_owned();
    }
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    let clean: Vec<u8> = body
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| line.iter().all(is_base64))
        .flat_map(|line| line.iter().copied().chain([b'\n']))
        .collect();
    MessageStream::new(&clean)
        .decode_base64_mime(b"")
        .1
        .into_owned()
}

/// Quoted-printable as senders write it: an `=` that starts no escape is kept as is
/// (mail-parser's decoder gives up on the whole part at `==`, common in sloppy QP).
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        let next = body.get(i + 1..).unwrap_or_default();
        let hex = next
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        i += match (b, hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                3
            }
            (b'=', None) if next.starts_with(b"\r\n") => 3,
            (b'=', None) if next.starts_with(b"\n") => 2,
            _ => {
                out.push(b);
                1
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_base64_keeps_what_decodes() {
        assert_eq!(
            base64(b"aGVsbG8g\r\n!!! damaged !!!\r\nd29ybGQ="),
            b"hello world"
        );
        assert_eq!(base64(b"aGVsbG8="), b"hello");
    }

    #[test]
    fn quoted_printable_is_lenient() {
        assert_eq!(
            quoted_printable(b"a=3Db =\r\nc == d =ZZ=\ne=E2=80=93"),
            "a=b c == d =ZZe\u{2013}".as_bytes()
        );
    }

    #[test]
    fn text_is_normalised() {
        assert_eq!(normalise("\u{feff}a\r\nb\rc  \n\n"), "a\nb\nc");
    }
}
