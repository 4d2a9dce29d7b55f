//! A MIME pre-scan that keeps intake from decoding attachments (issue 21).
//!
//! mail-parser decodes the base64 of every part while it finds the structure, and
//! intake reads only the text parts: for mail with attachments that decoding was the
//! largest item of casegate's own CPU. Attachments stay inside the stored raw mail and
//! are decoded on request ([`super::parse::attachment_content`]), so the parse works on
//! a *skeleton*: a copy of the mail, byte for byte the same length, in which the
//! `base64` of each non-text part's Content-Transfer-Encoding is overwritten. mail-parser
//! then only scans such a part for its closing boundary; every offset stays valid.
//!
//! The scan is line-based and cannot know for sure what is a part header (a text part
//! may quote one), so the parse checks every overwritten spot afterwards
//! ([`Skeleton::masked_parts`]): each must lie in the Content-Transfer-Encoding field of
//! a non-text part of the parsed tree. If one does not, the mail is parsed again as
//! sent, so the pre-scan can only save work, never change what a mail says.

use mail_parser::{HeaderName, Message, PartType};

/// What the masked encoding reads in the skeleton: six bytes, like `base64`, and no
/// encoding mail-parser knows, so it takes the part body as it stands.
const MASK: &[u8; 6] = b"x-skip";

/// A copy of a mail with the encoding of its non-text parts masked.
pub(super) struct Skeleton {
    pub bytes: Vec<u8>,
    /// Byte offsets of the overwritten `base64` words.
    masked: Vec<usize>,
}

impl Skeleton {
    /// `None` when nothing in the mail needs masking (no base64 non-text part).
    pub fn of(raw: &[u8]) -> Option<Skeleton> {
        let masked = base64_binary_parts(raw);
        if masked.is_empty() {
            return None;
        }
        let mut bytes = raw.to_vec();
        for &at in &masked {
            bytes[at..at + MASK.len()].copy_from_slice(MASK);
        }
        Some(Skeleton { bytes, masked })
    }

    /// The ids of the parts whose encoding was masked, when every masked spot lies in
    /// the Content-Transfer-Encoding field of a binary (non-text, non-message) part of
    /// `message` (the parse of [`Skeleton::bytes`]); `None` otherwise: then the
    /// skeleton misled the parser and the mail must be parsed as sent.
    pub fn masked_parts(&self, message: &Message<'_>) -> Option<Vec<u32>> {
        let mut ids = Vec::with_capacity(self.masked.len());
        for &at in &self.masked {
            let id = message.parts.iter().position(|part| {
                matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_))
                    && part.headers.iter().any(|h| {
                        h.name == HeaderName::ContentTransferEncoding
                            && (h.offset_start as usize..h.offset_end as usize).contains(&at)
                    })
            })?;
            ids.push(u32::try_from(id).ok()?);
        }
        Some(ids)
    }
}

/// Offsets of the `base64` word in the Content-Transfer-Encoding of each MIME part
/// (a header block right after a boundary line) whose Content-Type is present and
/// neither text, message nor multipart.
fn base64_binary_parts(raw: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut lines = Lines { raw, at: 0 };
    while let Some((_, line)) = lines.next() {
        let is_delimiter = line.len() > 2 && line.starts_with(b"--");
        if !is_delimiter {
            continue;
        }
        // The part's header block: fields (with folded lines) up to the blank line.
        let mut content_type: Option<Vec<u8>> = None;
        let mut encoding: Option<(usize, Vec<u8>)> = None;
        let mut current: Option<(Field, usize, Vec<u8>)> = None;
        // Only a block that a blank line ends is a header block: where it stops at some
        // other line (a stray CR, text), mail-parser may take the part apart otherwise
        // (a fuzzer's mail: the next part's size changed).
        let mut ended = false;
        while let Some((start, line)) = lines.next() {
            let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            if folded && let Some((_, _, value)) = current.as_mut() {
                value.extend_from_slice(line);
                continue;
            }
            finish(current.take(), &mut content_type, &mut encoding);
            if line.is_empty() {
                ended = true;
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                break; // not a header block after all
            };
            let name = line[..colon].trim_ascii();
            let field = if name.eq_ignore_ascii_case(b"Content-Type") {
                Field::ContentType
            } else if name.eq_ignore_ascii_case(b"Content-Transfer-Encoding") {
                Field::Encoding
            } else {
                Field::Other
            };
            current = Some((field, start + colon + 1, line[colon + 1..].to_vec()));
        }
        finish(current.take(), &mut content_type, &mut encoding);
        if let (true, Some(ct), Some((value_at, value))) = (ended, content_type, encoding)
            && is_binary_type(&ct)
            && let Some(word) = base64_word(&value)
        {
            found.push(value_at + word);
        }
    }
    found
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    ContentType,
    Encoding,
    Other,
}

fn finish(
    field: Option<(Field, usize, Vec<u8>)>,
    content_type: &mut Option<Vec<u8>>,
    encoding: &mut Option<(usize, Vec<u8>)>,
) {
    match field {
        // The first of each counts, as for mail-parser.
        Some((Field::ContentType, _, value)) if content_type.is_none() => {
            *content_type = Some(value);
        }
        Some((Field::Encoding, at, value)) if encoding.is_none() => *encoding = Some((at, value)),
        _ => {}
    }
}

/// `application/pdf; name=...` and the like: a type that is neither text (read by
/// intake), message (a forwarded original, read for bounces) nor multipart.
fn is_binary_type(value: &[u8]) -> bool {
    let kind = value
        .split(|&b| b == b'/' || b == b';')
        .next()
        .unwrap_or_default();
    let kind = kind.trim_ascii();
    !kind.is_empty()
        && !["text", "message", "multipart"]
            .iter()
            .any(|t| kind.eq_ignore_ascii_case(t.as_bytes()))
}

/// The offset of `base64` in an encoding value that is exactly that word (within
/// the first line: folding would not change the offset of a value on one line).
fn base64_word(value: &[u8]) -> Option<usize> {
    let first = value.split(|&b| b == b'\r' || b == b'\n').next()?;
    let lead = first.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let word = first[lead..].trim_ascii_end();
    (word.eq_ignore_ascii_case(b"base64") && value.len() == first.len()).then_some(lead)
}

/// Lines without their `\r\n` / `\n`, each with its start offset.
struct Lines<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        let rest = self.raw.get(self.at..).filter(|r| !r.is_empty())?;
        let start = self.at;
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.at += (len + 1).min(rest.len());
        let line = &rest[..len];
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

/// The decoded size of a base64 body, without decoding it: what mail-parser's decoder
/// would give (`MessageStream::decode_base64_mime`, which skips whitespace and single
/// dashes, ends a group at `=` and drops an unfinished one), or, where it gives up,
/// what `body::base64` gives (the lines that are clean base64, decoded alike).
pub(super) fn base64_decoded_len(body: &[u8]) -> usize {
    let strict = decoded_len_clean(body).or_else(|| decoded_len_strict(body));
    strict.unwrap_or_else(|| {
        let is_clean = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
        let clean: Vec<u8> = body
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|line| line.iter().all(is_clean))
            .flat_map(|line| line.iter().copied().chain([b'\n']))
            .collect();
        decoded_len_strict(&clean).unwrap_or_default()
    })
}

/// The common case in one pass the compiler vectorises (a byte-at-a-time walk over a
/// megabyte cost as much as decoding it): only base64 symbols and line breaks, `=`
/// only at the end. `None` for anything else (then [`decoded_len_strict`] walks it).
fn decoded_len_clean(body: &[u8]) -> Option<usize> {
    let end = body.len()
        - body
            .iter()
            .rev()
            .take_while(|b| matches!(b, b'=' | b'\r' | b'\n' | b' '))
            .count();
    let (data, tail) = body.split_at(end);
    let (mut symbols, mut other) = (0usize, 0usize);
    for chunk in data.chunks(255) {
        // u8 counters within a chunk: what lets the loop run on vector registers.
        let (mut s, mut o) = (0u8, 0u8);
        for &b in chunk {
            let symbol = b.is_ascii_uppercase()
                | b.is_ascii_lowercase()
                | b.is_ascii_digit()
                | (b == b'+')
                | (b == b'/');
            let line_break = (b == b'\r') | (b == b'\n');
            s += u8::from(symbol);
            o += u8::from(!symbol & !line_break);
        }
        symbols += usize::from(s);
        other += usize::from(o);
    }
    if other > 0 {
        return None;
    }
    let padded = tail.contains(&b'=');
    let partial = match (symbols % 4, padded) {
        (1 | 2, true) => 1,
        (3, true) => 2,
        _ => 0,
    };
    Some(symbols / 4 * 3 + partial)
}

/// `None` where the decoder gives up (another byte, or `--` inside the body).
fn decoded_len_strict(body: &[u8]) -> Option<usize> {
    let (mut len, mut group, mut last) = (0usize, 0u8, b'\n');
    for &b in body {
        match b {
            _ if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' => {
                group = (group + 1) & 3;
                if group == 0 {
                    len += 3;
                }
            }
            b'=' => {
                len += match group {
                    1 | 2 => 1,
                    3 => 2,
                    _ => 0,
                };
                group = 0;
            }
            b'-' if last == b'-' => return None,
            b'-' | b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => return None,
        }
        last = b;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n\
--b\r\nContent-Type: application/pdf;\r\n name=\"x.pdf\"\r\nContent-Transfer-Encoding:  BASE64 \r\n\r\naGVsbG8=\r\n\
--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n\
--b--\r\n";

    #[test]
    fn only_non_text_parts_are_masked() {
        let s = Skeleton::of(MAIL).expect("one part to mask");
        assert_eq!(s.bytes.len(), MAIL.len());
        assert_eq!(s.masked.len(), 1);
        let text = String::from_utf8_lossy(&s.bytes);
        assert!(
            text.contains("Content-Transfer-Encoding:  x-skip \r\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("base64").count(),
            2,
            "text and message parts keep theirs"
        );
    }

    /// A part header block that a stray line ends instead of a blank one (the fuzzer's
    /// `fuzz/corpus/mail/20bf372447ebafaa`) is left as sent.
    #[test]
    fn a_header_block_without_its_blank_line_is_not_masked() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\
            \rDUlEQVR42mP8z8BQDwAEhQGAhKmM\r\n--b--\r\n";
        assert!(Skeleton::of(raw).is_none());
    }

    #[test]
    fn mail_without_binary_base64_is_not_copied() {
        assert!(Skeleton::of(b"From: a@example.com\r\n\r\nbase64 is a word\r\n").is_none());
        let quoted = b"From: a@example.com\r\nContent-Type: text/plain\r\n\r\nsee:\r\n--x\r\n";
        assert!(Skeleton::of(quoted).is_none());
    }

    #[test]
    fn decoded_length_matches_the_decoder() {
        assert_eq!(base64_decoded_len(b"aGVsbG8=\r\n"), 5);
        assert_eq!(base64_decoded_len(b"aGVs\r\nbG8g\r\nd29y\r\nbGQ="), 11);
        assert_eq!(base64_decoded_len(b"aGk="), 2);
        // As the decoder: a dash is skipped, `=` ends a group, an unfinished one is dropped.
        assert_eq!(base64_decoded_len(b"aGVs-bG8="), 5);
        assert_eq!(base64_decoded_len(b"YQ==YQ=="), 2);
        assert_eq!(base64_decoded_len(b"aGk"), 0);
        for body in [
            &b"aGVs-bG8="[..],
            b"YQ==YQ==",
            b"aGk",
            b"aGVs\r\n bG8g\td29y\r\nbGQ=\r\n",
        ] {
            let (_, decoded) =
                mail_parser::parsers::MessageStream::new(body).decode_base64_mime(b"");
            assert_eq!(base64_decoded_len(body), decoded.len(), "{body:?}");
        }
        // Damaged: the clean lines count, as in body::base64.
        assert_eq!(
            base64_decoded_len(b"aGVsbG8g\r\n!!! damaged !!!\r\nd29ybGQ="),
            11
        );
    }
}
