//! Header values from raw bytes: unfolding, RFC 2047 encoded words and raw 8-bit text.
//!
//! mail-parser decodes each encoded word on its own with its own charset table, and
//! reads raw 8-bit header bytes as lossy UTF-8. Japanese mail breaks both: labels such
//! as `cp932` are unknown to it, Shift_JIS is sent raw in Subject and file names, and
//! some clients split one character across two encoded words. So header bytes are
//! decoded here, through [`charset::decode`], and structured headers are handed back to
//! mail-parser's parsers rewritten as UTF-8.

use super::charset;

/// Unfolds and decodes an unstructured value (Subject, a display text): encoded words
/// decoded, raw 8-bit text detected, whitespace trimmed.
pub fn decode_text(raw: &[u8]) -> String {
    let text = raw_text(raw);
    let mut out = String::with_capacity(text.len());
    for group in groups(&pieces(&text)) {
        match group {
            Group::Text(text) => out.push_str(text),
            Group::Words { charset, words } => {
                out.push_str(&charset::decode_words(&words, charset))
            }
        }
    }
    out.replace('\t', " ").trim().to_owned()
}

/// The value unfolded, trimmed and decoded to UTF-8, encoded words left as they are:
/// the "raw" form of a header (Authentication-Results, List-Id ...).
pub fn raw_text(raw: &[u8]) -> String {
    charset::decode(&unfold(raw), None).trim().to_owned()
}

/// The value rewritten for mail-parser's structured parsers (addresses, Content-Type):
/// UTF-8 throughout, each run of encoded words replaced by one UTF-8 encoded word, so the
/// parser's own syntax handling applies and its charset handling does not.
pub fn to_utf8_structured(raw: &[u8]) -> Vec<u8> {
    let text = raw_text(raw);
    let mut out = String::with_capacity(text.len() + 2);
    for group in groups(&pieces(&text)) {
        match group {
            Group::Text(text) => out.push_str(text),
            Group::Words { charset, words } => {
                q_word(&mut out, &charset::decode_words(&words, charset));
            }
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Message ids from Message-ID, In-Reply-To or References, without angle brackets.
/// When no id is bracketed (seen from broken clients), the whitespace- or
/// comma-separated words that contain `@` are the ids.
pub fn message_ids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(&unfold(raw)).into_owned();
    let bracketed: Vec<String> = text
        .split('<')
        .skip(1)
        .filter_map(|after| after.split_once('>'))
        .map(|(id, _)| id.split_whitespace().collect::<String>())
        .filter(|id| !id.is_empty())
        .collect();
    if !bracketed.is_empty() {
        return bracketed;
    }
    text.split([' ', '\t', ','])
        .filter(|word| word.contains('@'))
        .map(|word| word.trim_matches(['"', '(', ')']).to_owned())
        .collect()
}

/// Removes the line breaks of folded lines (RFC 5322 2.2.3) and the final line break.
pub fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        let next = raw.get(i + 1).copied();
        let folded = match b {
            b'\n' => true,
            b'\r' => next == Some(b'\n') || next.is_none_or(|n| n == b' ' || n == b'\t'),
            _ => false,
        };
        if !folded {
            out.push(b);
        }
    }
    out
}

/// The header fields of the top-level header block, as (name, raw value), without
/// running the MIME parser: enough to find a Message-ID in mail that cannot be parsed.
/// A leading mbox `From ` line (MTA pipe delivery) is skipped.
pub fn fields(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = skip_mbox_line(raw);
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return None;
            }
            let end = field_end(rest);
            let (field, after) = rest.split_at(end);
            rest = after;
            if let Some(colon) = field.iter().position(|&b| b == b':') {
                return Some((field[..colon].trim_ascii(), &field[colon + 1..]));
            }
        }
    })
}

/// True when the input opens with a header field (`Name: value`), the minimum for
/// anything to be called a message.
pub fn starts_with_field(raw: &[u8]) -> bool {
    let rest = skip_mbox_line(raw);
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let name = line[..colon].trim_ascii_end();
            !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && b != b':')
        }
        None => false,
    }
}

pub fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        let end = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        &raw[end..]
    } else {
        raw
    }
}

/// End of the field starting at `rest[0]`, continuation lines included.
fn field_end(rest: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(nl) = rest[pos..].iter().position(|&b| b == b'\n') {
        pos += nl + 1;
        if !matches!(rest.get(pos), Some(b' ' | b'\t')) {
            return pos;
        }
    }
    rest.len()
}

/// A header value cut into literal text and decoded encoded words.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Word { charset: &'a str, bytes: Vec<u8> },
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    // Where to look for the next "=?" in `rest`; everything before it is literal.
    let mut pos = 0;
    while let Some(found) = rest[pos..].find("=?") {
        let start = pos + found;
        match encoded_word(&rest[start..]) {
            Some((len, charset, bytes)) => {
                if start > 0 {
                    pieces.push(Piece::Text(&rest[..start]));
                }
                pieces.push(Piece::Word { charset, bytes });
                rest = &rest[start + len..];
                pos = 0;
            }
            None => pos = start + 2,
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// Parses `=?charset[*lang]?B|Q?data?=` at the start of `s`: (length, charset, bytes).
fn encoded_word(s: &str) -> Option<(usize, &str, Vec<u8>)> {
    let body = s.strip_prefix("=?")?;
    let (charset, after) = body.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let data_len = after.find("?=")?;
    let data = &after[..data_len];
    if charset.is_empty() || data.contains([' ', '\t', '\r', '\n']) || charset.contains([' ', '='])
    {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64_word(data)?,
        "Q" | "q" => q_decode(data),
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or(charset);
    let len = 2 + body.len() - after.len() + data_len + 2;
    Some((len, charset, bytes))
}

fn base64_word(data: &str) -> Option<Vec<u8>> {
    use mail_parser::decoders::base64::base64_decode;
    let data = data.trim_end_matches('=').as_bytes();
    let usable = data.len() - data.len() % 4;
    let mut bytes = base64_decode(&data[..usable])?;
    // A last group of 2 or 3 characters still carries 1 or 2 bytes when padding was cut.
    let tail = &data[usable..];
    if tail.len() >= 2 {
        let mut padded = tail.to_vec();
        padded.resize(4, b'=');
        bytes.extend(base64_decode(&padded)?);
    }
    Some(bytes)
}

fn q_decode(data: &str) -> Vec<u8> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'_', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    out
}

/// Pieces regrouped for output: linear whitespace between two encoded words is dropped
/// (RFC 2047 6.2) and adjacent words in one charset are decoded together
/// ([`charset::decode_words`]), so a character split across words survives.
enum Group<'a> {
    Text(&'a str),
    Words {
        charset: &'a str,
        words: Vec<&'a [u8]>,
    },
}

fn groups<'a>(pieces: &'a [Piece<'a>]) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => {
                // Only SP and HTAB are linear whitespace (folding is already undone): an
                // ideographic space between two words is text.
                let between_words = text.trim_matches([' ', '\t']).is_empty()
                    && i > 0
                    && matches!(pieces.get(i + 1), Some(Piece::Word { .. }))
                    && matches!(pieces.get(i - 1), Some(Piece::Word { .. }));
                if !between_words {
                    groups.push(Group::Text(text));
                }
            }
            Piece::Word { charset, bytes } => match groups.last_mut() {
                Some(Group::Words {
                    charset: last,
                    words,
                }) if last.eq_ignore_ascii_case(charset) => words.push(bytes),
                _ => groups.push(Group::Words {
                    charset,
                    words: vec![bytes],
                }),
            },
        }
    }
    groups
}

fn q_word(out: &mut String, text: &str) {
    out.push_str("=?utf-8?q?");
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out.push_str("?=");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_join_across_a_split_character() {
        // "日本" in UTF-8 is e6 97 a5 e6 9c ac; split after the fourth byte.
        let raw = b" =?UTF-8?B?5pel5g==?=\r\n =?utf-8?Q?=9C=AC?= test\r\n";
        assert_eq!(decode_text(raw), "日本 test");
    }

    #[test]
    fn text_between_words_is_kept() {
        assert_eq!(decode_text(b"=?utf-8?q?a?= b =?utf-8?q?c?="), "a b c");
        assert_eq!(decode_text(b"Re: =?iso-8859-1?q?caf=E9?="), "Re: café");
    }

    #[test]
    fn malformed_words_stay_literal() {
        assert_eq!(
            decode_text(b"=?utf-8?x?abc?= =?broken"),
            "=?utf-8?x?abc?= =?broken"
        );
        assert_eq!(decode_text(b"=?utf-8?B?!!!?="), "=?utf-8?B?!!!?=");
    }

    #[test]
    fn raw_shift_jis_header_is_detected() {
        let raw = encoding_rs::SHIFT_JIS
            .encode(" ログ送付の件\r\n")
            .0
            .into_owned();
        assert_eq!(decode_text(&raw), "ログ送付の件");
    }

    #[test]
    fn structured_values_become_utf8_words() {
        let out = to_utf8_structured(b" =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <a@b>\r\n");
        assert_eq!(out, b"=?utf-8?q?=E5=B1=B1=E7=94=B0?= <a@b>\r\n");
    }

    #[test]
    fn ids_with_and_without_brackets() {
        assert_eq!(
            message_ids(b" <a@b>\r\n\t<c@d> <e\r\n @f>"),
            ["a@b", "c@d", "e@f"]
        );
        assert_eq!(message_ids(b" <a@b> (Bob's message of Mon)"), ["a@b"]);
        assert_eq!(message_ids(b" <a@b> (from bob@example.com)"), ["a@b"]);
        assert_eq!(message_ids(b" x@y z@w,\r\n  v@u"), ["x@y", "z@w", "v@u"]);
        assert_eq!(
            message_ids(b" Your message of Monday"),
            Vec::<String>::new()
        );
        assert!(message_ids(b" <>").is_empty());
    }

    #[test]
    fn fields_skip_mbox_line_and_stop_at_body() {
        let raw = b"From x@y Mon Jan 1\r\nSubject: a\r\n b\r\nMessage-ID: <m@x>\r\n\r\nMessage-ID: <no@x>\r\n";
        let found: Vec<_> = fields(raw).map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (b"Subject".to_vec(), b" a\r\n b\r\n".to_vec()));
        assert!(starts_with_field(raw));
        assert!(!starts_with_field(b"\x89PNG\r\n"));
        assert!(!starts_with_field(b""));
    }
}
