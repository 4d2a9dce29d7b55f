//! Text decoding for support mail, where charset labels are often missing or wrong:
//! Outlook and older Japanese clients send Shift_JIS or ISO-2022-JP labelled `us-ascii`,
//! `iso-8859-1` or nothing at all. A label is trusted only when the bytes agree with it;
//! otherwise the charset is detected, and genuine Latin-1 text still comes out as Latin-1.
//!
//! encoding_rs implements the WHATWG Japanese decoders, which are the Microsoft ones:
//! Shift_JIS is Windows-31J/CP932 (①, ㈱, ～ and the IBM extensions) and ISO-2022-JP
//! accepts NEC row 13 and the NEC-selected IBM rows (CP50220/CP50221).

use encoding_rs::{
    EUC_JP, Encoding, ISO_2022_JP, REPLACEMENT, SHIFT_JIS, UTF_16BE, UTF_16LE, WINDOWS_1252,
};

/// Decodes `bytes` that were declared as `label` (`None` when the part named no charset).
pub fn decode(bytes: &[u8], label: Option<&str>) -> String {
    let declared = label.and_then(lookup);
    let text = match declared {
        Some(enc) if enc == UTF_16LE || enc == UTF_16BE => lossy(bytes, enc),
        _ => decode_ascii_compatible(bytes, declared),
    };
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Decodes a run of adjacent encoded words in one charset (RFC 2047 §6.2; the
/// whitespace between them is already gone) to the text their writer meant.
///
/// Stateless charsets (UTF-8, Shift_JIS, EUC-JP ...) are joined byte-wise first, so a
/// character that a client split across two words (seen for UTF-8 and Shift_JIS) comes
/// out whole. Stateful ones cannot be joined blindly. Each ISO-2022-JP word is written
/// to stand alone (it switches to JIS X 0208 and back to ASCII inside itself), so the
/// joined bytes hold `ESC ( B ESC $ B` at every seam, which the WHATWG decoder reads as
/// an error (U+FFFD): there the escape sequence that the next one overrides at once is
/// dropped, while a word that does not end in ASCII (an encoder that cut its byte
/// stream anywhere) still runs on into the next. UTF-7 words each start afresh and are
/// decoded one by one.
pub fn decode_words(words: &[&[u8]], label: &str) -> String {
    let text = if is_utf7(label) {
        words.iter().map(|word| utf7(word)).collect()
    } else {
        let mut joined: Vec<u8> = Vec::with_capacity(words.iter().map(|w| w.len()).sum());
        for word in words {
            if word.first() == Some(&0x1b) && joined.is_ascii() {
                let overridden = trailing_escape_len(&joined);
                joined.truncate(joined.len() - overridden);
            }
            joined.extend_from_slice(word);
        }
        decode(&joined, Some(label))
    };
    // UTF-16 words may each open with a byte order mark.
    text.replace('\u{feff}', "")
}

/// The length of the ISO-2022-JP escape sequence that ends `bytes`, or 0.
fn trailing_escape_len(bytes: &[u8]) -> usize {
    const ESCAPES: [&[u8]; 5] = [b"\x1b(B", b"\x1b(J", b"\x1b(I", b"\x1b$@", b"\x1b$B"];
    ESCAPES
        .iter()
        .find(|esc| bytes.ends_with(esc))
        .map_or(0, |esc| esc.len())
}

fn is_utf7(label: &str) -> bool {
    let compact: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    compact == "utf7" || compact == "csutf7" || compact == "unicode11utf7"
}

/// UTF-7 (RFC 2152), which encoding_rs does not implement: ASCII, and UTF-16 in
/// modified base64 between `+` and `-` (or the first other character, or the end).
fn utf7(bytes: &[u8]) -> String {
    fn sextet(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'+' {
            out.push(char::from(b));
            continue;
        }
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut bits, mut nbits, mut units) = (0u32, 0u32, Vec::new());
        while let Some(v) = bytes.get(i).copied().and_then(sextet) {
            bits = (bits << 6 | v) & 0xff_ffff;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
            }
            i += 1;
        }
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        out.extend(char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')));
    }
    out
}

fn decode_ascii_compatible(bytes: &[u8], declared: Option<&'static Encoding>) -> String {
    if bytes.is_ascii() {
        return if has_jis_escape(bytes) {
            iso2022jp(bytes)
        } else {
            ascii(bytes)
        };
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        // Valid multi-byte UTF-8 is practically never an accident, whatever the label says.
        return text.to_owned();
    }
    match declared {
        Some(enc) if is_japanese(enc) => declared_japanese(bytes, enc),
        Some(enc) if enc != WINDOWS_1252 => strict(bytes, enc)
            .or_else(|| best_japanese(bytes).map(|(_, text)| text))
            .unwrap_or_else(|| lossy(bytes, enc)),
        // us-ascii, iso-8859-1, windows-1252 or no label: the client's default, not a choice.
        _ => best_japanese(bytes).map_or_else(|| lossy(bytes, WINDOWS_1252), |(_, text)| text),
    }
}

/// A Japanese label is kept when its decoding is clean and reads as Japanese; a Shift_JIS
/// label on EUC-JP bytes (or the reverse) decodes cleanly into nonsense, hence the score.
fn declared_japanese(bytes: &[u8], declared: &'static Encoding) -> String {
    let own = strict(bytes, declared);
    if let Some(text) = own.as_deref()
        && japanese_score(text).is_some()
    {
        return text.to_owned();
    }
    if let Some((_, text)) = best_japanese(bytes) {
        return text;
    }
    own.unwrap_or_else(|| lossy(bytes, declared))
}

fn best_japanese(bytes: &[u8]) -> Option<(&'static Encoding, String)> {
    [SHIFT_JIS, EUC_JP]
        .into_iter()
        .filter_map(|enc| strict(bytes, enc).map(|text| (enc, text)))
        .filter_map(|(enc, text)| japanese_score(&text).map(|score| (score, enc, text)))
        // Ties go to the first candidate: Shift_JIS is the more common of the two.
        .reduce(|best, next| if next.0 > best.0 { next } else { best })
        .map(|(_, enc, text)| (enc, text))
}

/// Resolves a MIME charset label, including the vendor names for the Japanese
/// encodings that WHATWG (and so encoding_rs) does not list: `cp932`, `iso-2022-jp-ms`,
/// `cp50221`, `eucjp-ms` ...
pub fn lookup(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    let compact: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
    let japanese =
        if compact.contains("2022jp") || compact.starts_with("cp5022") || compact == "jis" {
            Some(ISO_2022_JP)
        } else if compact.contains("sjis")
            || compact.contains("shiftjis")
            || compact.contains("932")
            || compact.contains("31j")
            || compact.contains("943")
            || compact == "mskanji"
        {
            Some(SHIFT_JIS)
        } else if compact.contains("eucjp")
            || compact.contains("51932")
            || compact == "ujis"
            || compact == "cseucpkdfmtjapanese"
        {
            Some(EUC_JP)
        } else {
            None
        };
    japanese
        .or_else(|| Encoding::for_label(label.as_bytes()))
        // WHATWG maps ISO-2022-KR/CN and HZ to "replacement", which would destroy the text.
        .filter(|enc| *enc != REPLACEMENT)
}

fn is_japanese(enc: &'static Encoding) -> bool {
    enc == SHIFT_JIS || enc == EUC_JP || enc == ISO_2022_JP
}

/// Decodes without replacement, or `None` when the bytes are not valid in `enc`.
fn strict(bytes: &[u8], enc: &'static Encoding) -> Option<String> {
    if enc == ISO_2022_JP {
        return strict_iso2022jp(bytes);
    }
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
}

fn lossy(bytes: &[u8], enc: &'static Encoding) -> String {
    if enc == ISO_2022_JP {
        return iso2022jp(bytes);
    }
    enc.decode(bytes).0.into_owned()
}

fn strict_iso2022jp(bytes: &[u8]) -> Option<String> {
    let bytes = roman_as_ascii(bytes);
    ISO_2022_JP
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .map(|text| text.into_owned())
}

fn iso2022jp(bytes: &[u8]) -> String {
    ISO_2022_JP
        .decode_without_bom_handling(&roman_as_ascii(bytes))
        .0
        .into_owned()
}

/// Japanese clients switch back with `ESC ( J` (JIS X 0201 Roman) as often as with
/// `ESC ( B`. Decoded strictly, its 0x5C and 0x7E become ¥ and ‾, which turns every
/// Windows path in a log into `C:¥Program Files`; Microsoft's decoder reads it as ASCII,
/// and so do we.
fn roman_as_ascii(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for i in 0..out.len().saturating_sub(2) {
        if out[i..i + 3] == *b"\x1b(J" {
            out[i + 2] = b'B';
        }
    }
    out
}

fn has_jis_escape(bytes: &[u8]) -> bool {
    const ESCAPES: [&[u8]; 6] = [
        b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I", b"\x1b$(D", b"\x1b$(Q",
    ];
    bytes
        .windows(3)
        .any(|w| w[0] == 0x1b && ESCAPES.iter().any(|esc| esc.starts_with(w)))
}

fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// How Japanese a decoding reads, or `None` when it does not read as Japanese at all.
///
/// Latin-1 text decodes "cleanly" as Shift_JIS more often than one would think (è, é,
/// û and cp1252 quotes are lead bytes), but it yields isolated kanji, half-width katakana
/// and private-use characters, never hiragana. So: no replacement or private-use
/// characters, at least 90% Japanese characters among the non-ASCII ones, and either
/// some kana or kanji that come in words rather than one at a time.
fn japanese_score(text: &str) -> Option<f32> {
    let tally = Tally::of(text);
    if tally.bad > 0 || tally.total == 0 {
        return None;
    }
    let good = (tally.kana + tally.kanji + tally.symbol) as f32 + tally.halfwidth as f32 * 0.5;
    let ratio = good / tally.total as f32;
    let kanji_words = tally.kanji >= 2
        && tally.halfwidth == 0
        && tally.other == 0
        && tally.total as f32 / tally.runs.max(1) as f32 >= 2.0;
    (ratio >= 0.9 && (tally.kana > 0 || kanji_words))
        .then(|| ratio + tally.kana as f32 / tally.total as f32)
}

/// Character classes of the non-ASCII part of a text.
#[derive(Default, Debug)]
struct Tally {
    total: usize,
    kana: usize,
    kanji: usize,
    symbol: usize,
    halfwidth: usize,
    other: usize,
    bad: usize,
    /// Runs of consecutive non-ASCII characters.
    runs: usize,
}

impl Tally {
    fn of(text: &str) -> Tally {
        let mut tally = Tally::default();
        let mut in_run = false;
        for c in text.chars() {
            if c.is_ascii() {
                tally.bad += usize::from(c == '\u{1b}');
                in_run = false;
                continue;
            }
            tally.runs += usize::from(!in_run);
            in_run = true;
            tally.total += 1;
            *tally.class(c) += 1;
        }
        tally
    }

    fn class(&mut self, c: char) -> &mut usize {
        match c {
            '\u{3041}'..='\u{30ff}' => &mut self.kana,
            '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' => {
                &mut self.kanji
            }
            '\u{ff61}'..='\u{ff9f}' => &mut self.halfwidth,
            '\u{fffd}' | '\u{e000}'..='\u{f8ff}' | '\u{80}'..='\u{9f}' => &mut self.bad,
            // JIS X 0208 rows 1-8 and 13: punctuation, Greek, Cyrillic, box drawing, ①, ㈱ ...
            '\u{a0}'..='\u{ff}'
            | '\u{391}'..='\u{451}'
            | '\u{2010}'..='\u{2bff}'
            | '\u{3000}'..='\u{303f}'
            | '\u{3200}'..='\u{33ff}'
            | '\u{ff01}'..='\u{ff60}'
            | '\u{ffe0}'..='\u{ffee}' => &mut self.symbol,
            _ => &mut self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use encoding_rs::UTF_8;

    use super::*;

    /// The charset the bytes look like when their label cannot be trusted: ISO-2022-JP when
    /// they carry its escape sequences, UTF-8 when valid, else the more plausible of
    /// Shift_JIS and EUC-JP; `None` when nothing fits (the caller's Latin-1 fallback).
    fn detect(bytes: &[u8]) -> Option<&'static Encoding> {
        if bytes.is_ascii() {
            return has_jis_escape(bytes).then_some(ISO_2022_JP);
        }
        if std::str::from_utf8(bytes).is_ok() {
            return Some(UTF_8);
        }
        best_japanese(bytes).map(|(enc, _)| enc)
    }

    fn sjis(text: &str) -> Vec<u8> {
        SHIFT_JIS.encode(text).0.into_owned()
    }

    fn eucjp(text: &str) -> Vec<u8> {
        EUC_JP.encode(text).0.into_owned()
    }

    const JA: &str = "お世話になっております。①と②の手順で停止します～。㈱サンプル";

    #[test]
    fn labelled_shift_jis_keeps_windows_characters() {
        assert_eq!(decode(&sjis(JA), Some("Shift_JIS")), JA);
        assert_eq!(decode(&sjis(JA), Some("cp932")), JA);
        assert_eq!(decode(&sjis(JA), Some("x-sjis")), JA);
    }

    #[test]
    fn microsoft_iso_2022_jp_decodes_nec_and_ibm_rows() {
        // ① (NEC row 13), ㈱, ～ (0x2141) and 髙 (NEC-selected IBM row 92).
        let raw = b"\x1b$B-!-j!A|b\x1b(B";
        assert_eq!(decode(raw, Some("iso-2022-jp")), "①㈱～髙");
        assert_eq!(decode(raw, Some("ISO-2022-JP-MS")), "①㈱～髙");
        assert_eq!(decode(raw, Some("CP50220")), "①㈱～髙");
    }

    #[test]
    fn jis_roman_escape_is_read_as_ascii() {
        let raw = b"\x1b$B$\"\x1b(J C:\\temp ~x";
        assert_eq!(decode(raw, Some("iso-2022-jp")), "あ C:\\temp ~x");
    }

    #[test]
    fn iso_2022_jp_is_found_under_any_label() {
        let raw = b"\x1b$B$3$s$K$A$O\x1b(B world";
        assert_eq!(detect(raw), Some(ISO_2022_JP));
        for label in [None, Some("us-ascii"), Some("iso-8859-1"), Some("utf-8")] {
            assert_eq!(decode(raw, label), "こんにちは world", "label {label:?}");
        }
    }

    #[test]
    fn unlabelled_shift_jis_is_detected() {
        assert_eq!(detect(&sjis(JA)), Some(SHIFT_JIS));
        assert_eq!(decode(&sjis(JA), None), JA);
        assert_eq!(decode(&sjis(JA), Some("iso-8859-1")), JA);
        assert_eq!(decode(&sjis(JA), Some("us-ascii")), JA);
    }

    #[test]
    fn unlabelled_euc_jp_is_detected() {
        let text = "設定ファイルの場所を教えてください。";
        assert_eq!(detect(&eucjp(text)), Some(EUC_JP));
        assert_eq!(decode(&eucjp(text), None), text);
    }

    #[test]
    fn wrong_japanese_label_is_overridden() {
        let text = "設定ファイルの場所を教えてください。";
        assert_eq!(decode(&eucjp(text), Some("shift_jis")), text);
        assert_eq!(decode(&sjis(text), Some("euc-jp")), text);
        assert_eq!(decode(&sjis(text), Some("iso-2022-jp")), text);
        assert_eq!(decode(text.as_bytes(), Some("shift_jis")), text);
    }

    #[test]
    fn kanji_only_words_are_japanese() {
        assert_eq!(decode(&sjis("見積依頼"), None), "見積依頼");
    }

    #[test]
    fn latin1_stays_latin1() {
        let text = "Crème brûlée, Müller, Straße, garçon, à bientôt. ÄÖÜ";
        let bytes = WINDOWS_1252.encode(text).0.into_owned();
        assert_eq!(detect(&bytes), None);
        assert_eq!(decode(&bytes, Some("iso-8859-1")), text);
        assert_eq!(decode(&bytes, None), text);
    }

    #[test]
    fn cp1252_quotes_stay_quotes() {
        let text = "\u{201c}It\u{2019}s broken\u{201d} \u{2013} don\u{2019}t restart\u{2026}";
        let bytes = WINDOWS_1252.encode(text).0.into_owned();
        assert_eq!(detect(&bytes), None);
        assert_eq!(decode(&bytes, Some("us-ascii")), text);
    }

    #[test]
    fn other_declared_charsets_are_honoured() {
        let bytes = encoding_rs::KOI8_R.encode("Привет, мир").0.into_owned();
        assert_eq!(decode(&bytes, Some("koi8-r")), "Привет, мир");
        assert_eq!(decode(&[0xe9], Some("iso-8859-15")), "é");
    }

    #[test]
    fn utf8_wins_over_a_wrong_label_and_loses_its_bom() {
        assert_eq!(
            decode("\u{feff}日本語 ✓".as_bytes(), Some("iso-8859-1")),
            "日本語 ✓"
        );
    }

    #[test]
    fn unknown_labels_and_replacement_labels_fall_back_to_detection() {
        assert_eq!(decode(&sjis(JA), Some("x-unknown")), JA);
        assert_eq!(lookup("iso-2022-kr"), None);
        assert_eq!(decode(b"plain", Some("iso-2022-kr")), "plain");
    }

    #[test]
    fn score_rejects_mojibake() {
        assert!(japanese_score("こんにちは").is_some());
        assert!(japanese_score("Cr\u{7e8a}me").is_none());
        assert!(japanese_score("\u{ff71}\u{ff72}\u{ff73}").is_none());
        assert!(japanese_score("abc\u{fffd}あ").is_none());
        assert!(japanese_score("ascii only").is_none());
    }

    /// Thunderbird, Outlook and Becky! write each ISO-2022-JP word to stand alone:
    /// joined byte-wise, the seams held `ESC ( B ESC $ B` and decoded to U+FFFD.
    #[test]
    fn iso_2022_jp_words_join_without_replacement_at_seams() {
        let words: [&[u8]; 2] = [b"\x1b$B%?%$%`\x1b(B", b"\x1b$B%\"%&%H\x1b(B"];
        assert_eq!(decode_words(&words, "ISO-2022-JP"), "タイムアウト");
        // ASCII at a seam, and a word cut in JIS mode by a naive encoder, still decode.
        let words: [&[u8]; 3] = [b"\x1b$B%?%$\x1b(B", b"ab\x1b$B%`", b"%\"\x1b(B"];
        assert_eq!(decode_words(&words, "iso-2022-jp"), "タイabムア");
    }

    #[test]
    fn shift_jis_and_utf8_words_split_inside_a_character() {
        let bytes = sjis("障害報告");
        let (a, b) = bytes.split_at(3);
        assert_eq!(decode_words(&[a, b], "Shift_JIS"), "障害報告");
        let bytes = "障害".as_bytes();
        let (a, b) = bytes.split_at(4);
        assert_eq!(decode_words(&[a, b], "utf-8"), "障害");
    }

    #[test]
    fn utf7_words_decode_one_by_one() {
        // Joined, the first word's implicit end would run into the second's `+`.
        assert_eq!(
            decode_words(&[b"+ZeVnLA", b"+ZeVnLA-"], "UTF-7"),
            "日本日本"
        );
        assert_eq!(utf7(b"a+-b +ZeVnLA-."), "a+b 日本.");
    }

    #[test]
    fn labels_resolve() {
        assert_eq!(lookup("\"Windows-31J\""), Some(SHIFT_JIS));
        assert_eq!(lookup("x-euc-jp"), Some(EUC_JP));
        assert_eq!(lookup("eucJP-ms"), Some(EUC_JP));
        assert_eq!(lookup("csISO2022JP"), Some(ISO_2022_JP));
        assert_eq!(lookup("us-ascii"), Some(WINDOWS_1252));
        assert_eq!(lookup("utf8"), Some(UTF_8));
    }
}
