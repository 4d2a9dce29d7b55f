//! Property test of RFC 2047 subjects: any Japanese string, cut into encoded words
//! anywhere by a standard encoder, parses back to itself.
//!
//! "A standard encoder" is what mail clients do: ISO-2022-JP words are each
//! self-contained (switch to JIS X 0208 and back to ASCII inside the word; encoding_rs's
//! encoder does exactly that per chunk), so they are cut between characters; UTF-8,
//! Shift_JIS and EUC-JP words are cut at any byte, also inside a character (Outlook 365
//! and older Japanese mailers do that). Words are B or Q encoded and folded with CRLF
//! plus a space or a tab, the linear whitespace RFC 2047 §6.2 says to drop between words.

mod support;

use casegate::mail::parse::{ParseLimits, parse};
use encoding_rs::{EUC_JP, Encoding, ISO_2022_JP, SHIFT_JIS, UTF_8};
use proptest::prelude::*;
use support::mail::MailBuilder;

/// Characters every one of the four charsets can encode: kana, common kanji, Japanese
/// punctuation, full-width forms and ASCII.
const CHARS: &[char] = &[
    'あ', 'い', 'う', 'ぇ', 'を', 'ん', 'ア', 'イ', 'ウ', 'ェ', 'タ', 'ム', 'ト', 'ー', 'ヴ', '障',
    '害', '報', '告', '本', '番', '環', '境', '停', '止', '至', '急', '髙', '、', '。', '「', '」',
    '（', '）', '【', '】', '：', '　', 'Ａ', '１', 'a', 'Z', '0', ' ', '-', '_', '=', '?', '.',
];

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn q(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else if b == b' ' {
                "_".to_string()
            } else {
                format!("={b:02X}")
            }
        })
        .collect()
}

fn word(charset: &str, bytes: &[u8], use_q: bool) -> String {
    if use_q {
        format!("=?{charset}?Q?{}?=", q(bytes))
    } else {
        format!("=?{charset}?B?{}?=", base64(bytes))
    }
}

fn encode(enc: &'static Encoding, text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = enc.encode(text);
    assert!(!unmappable, "{} cannot encode {text:?}", enc.name());
    bytes.into_owned()
}

/// Cut points, as fractions of the length, turned into sorted distinct positions.
fn cuts(len: usize, fractions: &[u16]) -> Vec<usize> {
    let mut cuts: Vec<usize> = fractions
        .iter()
        .map(|&f| usize::from(f) * len / usize::from(u16::MAX))
        .filter(|&c| c > 0 && c < len)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn pieces<T: Clone>(items: &[T], cuts: &[usize]) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&items.len())) {
        out.push(items[start..c].to_vec());
        start = c;
    }
    out
}

/// The encoded words of `text` in charset `which`, cut at `fractions`.
fn words(which: u8, text: &str, fractions: &[u16], q_mask: u32) -> Vec<String> {
    let use_q = |i: usize| q_mask >> (i % 32) & 1 == 1;
    if which == 0 {
        let chars: Vec<char> = text.chars().collect();
        return pieces(&chars, &cuts(chars.len(), fractions))
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let chunk: String = chunk.iter().collect();
                word("ISO-2022-JP", &encode(ISO_2022_JP, &chunk), use_q(i))
            })
            .collect();
    }
    let (label, enc) = match which {
        1 => ("UTF-8", UTF_8),
        2 => ("Shift_JIS", SHIFT_JIS),
        _ => ("EUC-JP", EUC_JP),
    };
    let bytes = encode(enc, text);
    pieces(&bytes, &cuts(bytes.len(), fractions))
        .iter()
        .enumerate()
        .map(|(i, chunk)| word(label, chunk, use_q(i)))
        .collect()
}

fn subject_of(line: &str) -> Option<String> {
    let raw = MailBuilder::new()
        .header("From", "yamada@sample.co.jp")
        .header("Subject", line)
        .message_id("p@x")
        .body("x\n");
    parse(&raw, &ParseLimits::default()).ok().map(|m| m.subject)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn japanese_subjects_split_into_encoded_words_anywhere_decode_to_themselves(
        chars in prop::collection::vec(prop::sample::select(CHARS), 1..60),
        which in 0u8..4,
        fractions in prop::collection::vec(any::<u16>(), 0..12),
        q_mask in any::<u32>(),
        tab_folds in any::<bool>(),
    ) {
        let text: String = chars.into_iter().collect();
        // A parsed subject is trimmed (the ideographic space too).
        let text = text.trim().to_string();
        prop_assume!(!text.is_empty());
        let fold = if tab_folds { "\r\n\t" } else { "\r\n " };
        let line = words(which, &text, &fractions, q_mask).join(fold);
        prop_assert_eq!(subject_of(&line), Some(text), "{}", line);
    }
}

/// The seam the issue saw: two self-contained ISO-2022-JP words made `タイム\u{fffd}アウト`.
#[test]
fn iso_2022_jp_words_have_no_replacement_character_at_the_seam() {
    let line = format!(
        "{} {}",
        word("ISO-2022-JP", &encode(ISO_2022_JP, "タイム"), false),
        word("ISO-2022-JP", &encode(ISO_2022_JP, "アウト"), false)
    );
    assert_eq!(subject_of(&line).as_deref(), Some("タイムアウト"));
}
