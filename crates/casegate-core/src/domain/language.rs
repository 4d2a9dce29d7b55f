//! The language a new case is worked in: `ja` or `en` (DESIGN §1 "Language and region").
//!
//! Support is given in English, except that Japanese mail is handled in Japanese.
//! whatlang alone misreads support mail: Japanese prose drowned in pasted English logs
//! reads as English, and kanji-only text reads as Chinese. So the decision is
//! script-aware, and whatlang only gives the confidence of a non-Japanese verdict:
//!
//! 1. Keep the sender's own words: drop quoted lines and quoted history
//!    ([`own_lines`]), the signature, and ASCII lines that look like logs, stack
//!    traces or commands ([`looks_like_log`]).
//! 2. Real Japanese prose => `ja`. Prose means kana in sentence form, not a few kana
//!    anywhere: a signature block under an English mail (株式会社アクメ, 丸の内 ...)
//!    must not flip it. See [`is_japanese_sentence`].
//! 3. Everything else => `en`: kanji-only text (Chinese, or a kanji-only Japanese
//!    line, which cannot be told apart), Korean, romaji and other languages.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The language a case is worked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Ja,
}

impl Language {
    /// Every supported language, in a fixed order (routing checks enumerate them).
    pub const ALL: [Language; 2] = [Language::En, Language::Ja];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ja => "ja",
        }
    }

    /// `"en"` / `"ja"`, case-insensitive.
    pub fn parse(s: &str) -> Option<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "ja" => Some(Language::Ja),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A language verdict with its confidence in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub language: Language,
    pub confidence: f64,
}

/// Detect the language of a mail from its decoded subject and body text.
pub fn detect(subject: &str, body: &str) -> Detection {
    detect_or(subject, body, None)
}

/// The confidence recorded when a mailbox's default language stood in for the mail's.
pub const DEFAULTED_CONFIDENCE: f64 = 0.5;

/// [`detect`], with a mailbox's default language for a mail that has neither Japanese
/// nor English prose of its own (a log paste, a one-word line, an empty body).
pub fn detect_or(subject: &str, body: &str, fallback: Option<Language>) -> Detection {
    let lines = prose_lines(body);
    let own_english = english_prose_words(&lines) >= MIN_ENGLISH_WORDS;
    let subject_counts = subject_evidence(subject, own_english);
    let mut kana = subject_counts;
    let mut sentences = usize::from(subject_counts >= 2);
    for line in &lines {
        if is_japanese_sentence(line) {
            sentences += 1;
            kana += Script::of(line).kana();
        }
    }
    // With no English prose of the sender's own, any kana is Japanese: the mail has
    // nothing else to say (「はい」, a half-width katakana one-liner ...).
    if sentences == 0 && !own_english {
        kana += lines.iter().map(|l| Script::of(l).kana()).sum::<usize>();
        sentences = usize::from(kana >= 2);
    }
    if sentences > 0 {
        return Detection {
            language: Language::Ja,
            confidence: japanese_confidence(kana),
        };
    }
    if let (false, Some(language)) = (own_english, fallback) {
        return Detection {
            language,
            confidence: DEFAULTED_CONFIDENCE,
        };
    }
    Detection {
        language: Language::En,
        confidence: english_confidence(subject, &lines),
    }
}

/// Fewer Latin words than this is a greeting or a name, not English prose.
const MIN_ENGLISH_WORDS: usize = 3;

/// Kana the subject contributes. A reply or forward prefix (Re:, Fwd:, 転送:) means the
/// subject was inherited from someone else: it counts only when the sender wrote no
/// English of their own.
fn subject_evidence(subject: &str, own_english: bool) -> usize {
    if own_english && has_reply_prefix(subject) {
        return 0;
    }
    // A subject is short and often nominal (【至急】サーバー停止), so kana count even
    // without a sentence ending, unless English words outnumber them
    // ("Our app アクメ管理 cannot reach Satellite" names a product, it is not Japanese).
    let kana = Script::of(subject).kana();
    let japanese = is_japanese_sentence(subject) || (kana >= 2 && kana >= english_words(subject));
    if japanese { kana } else { 0 }
}

fn has_reply_prefix(subject: &str) -> bool {
    let s = subject.trim_start().to_lowercase();
    [
        "re:",
        "re：",
        "fw:",
        "fwd:",
        "aw:",
        "wg:",
        "tr:",
        "返信:",
        "返信：",
        "転送:",
        "転送：",
        "答复:",
        "回复:",
        "转发:",
    ]
    .iter()
    .any(|p| s.starts_with(p))
}

/// More kana, more certainty; a Japanese verdict always starts at 0.6.
fn japanese_confidence(kana: usize) -> f64 {
    0.6 + 0.4 * (kana.min(20) as f64 / 20.0)
}

/// whatlang's confidence over the kept text. A language other than English is only
/// routed as English (the policy), so its confidence is halved to say so.
fn english_confidence(subject: &str, lines: &[&str]) -> f64 {
    let mut text = String::from(subject);
    for l in lines.iter().filter(|l| !looks_like_log(l)) {
        text.push('\n');
        text.push_str(l);
    }
    match whatlang::detect(&text) {
        Some(info) if info.lang() == whatlang::Lang::Eng => info.confidence(),
        Some(info) => info.confidence() * 0.5,
        None => 0.0,
    }
}

/// Counts of the scripts that matter for the decision.
#[derive(Debug, Default, Clone, Copy)]
struct Script {
    hiragana: usize,
    katakana: usize,
    halfwidth: usize,
}

impl Script {
    fn of(s: &str) -> Script {
        let mut c = Script::default();
        for ch in s.chars() {
            match ch {
                '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309F}' => c.hiragana += 1,
                // U+30FB (・) is punctuation; ー (U+30FC) is counted as katakana.
                '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' => {
                    c.katakana += 1
                }
                '\u{FF66}'..='\u{FF9F}' => c.halfwidth += 1,
                _ => {}
            }
        }
        c
    }

    fn kana(self) -> usize {
        self.hiragana + self.katakana + self.halfwidth
    }
}

/// Word endings and particles that only running Japanese text has; names, company
/// names and addresses (signature material) do not.
const SENTENCE_MARKERS: &[&str] = &[
    "ます",
    "です",
    "ません",
    "ください",
    "下さい",
    "でしょう",
    "お願い",
    "よろしく",
    "宜しく",
    "ありがと",
    "について",
    "する",
    "される",
    "ており",
    "ている",
    "ていた",
    "でした",
    "ない",
    "した",
    "して",
    "ので",
    "けど",
    "という",
    "ように",
    "ことが",
    "できま",
    "られ",
    "れる",
    "だった",
];

/// A line of real Japanese prose, as opposed to a Japanese name, company or address
/// in a signature (株式会社アクメ, 東京都千代田区丸の内, さくらインターネット株式会社).
/// Chinese never qualifies: it has no kana.
pub fn is_japanese_sentence(line: &str) -> bool {
    let c = Script::of(line);
    c.hiragana >= 6
        || (c.hiragana >= 2 && SENTENCE_MARKERS.iter().any(|m| line.contains(m)))
        || (c.kana() >= 2 && line.contains('。'))
        || c.halfwidth >= 8
}

/// The sender's own lines without the signature: what the language is judged on.
fn prose_lines(body: &str) -> Vec<&str> {
    let lines = own_lines(body);
    let mut english_seen = false;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t == "--" {
            return lines[..i].to_vec(); // RFC 3676 §4.3 signature separator
        }
        if english_seen && is_valediction(t) && is_tail(&lines[i + 1..]) {
            return lines[..i].to_vec(); // what follows an English closing is its signature
        }
        english_seen |= english_words(t) >= MIN_ENGLISH_WORDS && !looks_like_log(t);
    }
    lines
}

/// A signature is short: a closing followed by many lines is not the end of the mail.
fn is_tail(rest: &[&str]) -> bool {
    rest.iter().filter(|l| !l.trim().is_empty()).count() <= 8
}

fn is_valediction(t: &str) -> bool {
    let t = t.trim_end_matches([',', '.', '!']).to_ascii_lowercase();
    [
        "regards",
        "best regards",
        "kind regards",
        "warm regards",
        "best wishes",
        "sincerely",
        "yours sincerely",
        "thanks",
        "thank you",
        "many thanks",
        "thanks in advance",
        "thanks and regards",
        "cheers",
        "best",
        "br",
    ]
    .contains(&t.as_str())
}

fn english_prose_words(lines: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| !looks_like_log(l))
        .map(|l| english_words(l))
        .sum()
}

/// Words made of ASCII letters (with trailing punctuation), two letters or more.
fn english_words(line: &str) -> usize {
    line.split_whitespace()
        .map(|w| w.trim_matches(|c: char| ",.;:!?()\"'".contains(c)))
        .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic() || c == '\''))
        .count()
}

/// The sender's own lines: everything before quoted history, without quoted lines
/// ('>' or full-width '＞' prefixed). Shared with the out-of-scope rules, which must
/// not react to a quoted earlier message either.
pub fn own_lines(body: &str) -> Vec<&str> {
    let lines: Vec<&str> = body.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if starts_history(&lines, i) {
            break;
        }
        if !is_quoted(line) {
            out.push(*line);
        }
    }
    out
}

fn is_quoted(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('>') || t.starts_with('＞')
}

/// Line endings of the attribution lines mail clients put above quoted history:
/// "On ... wrote:", 「2024/01/10 10:00、山田 のメール:」, 「山田さんは書きました:」 ...
const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "wrote：",
    "writes:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "のメール:",
    "のメール：",
    "書きました:",
    "書きました：",
    "書きました。",
    "wrote :",
];

/// Whether line `i` starts quoted history: an attribution line, an "Original Message"
/// or forward separator, or an Outlook header block (From: followed by Sent:/Date:).
fn starts_history(lines: &[&str], i: usize) -> bool {
    let t = lines[i].trim();
    let lower = t.to_lowercase();
    if ATTRIBUTION_ENDINGS.iter().any(|e| lower.ends_with(e)) {
        return true;
    }
    if lower.starts_with("---")
        && [
            "original message",
            "forwarded message",
            "元のメッセージ",
            "転送メッセージ",
        ]
        .iter()
        .any(|m| lower.contains(m))
    {
        return true;
    }
    // Gmail's Japanese attribution: "2024年1月10日(水) 10:00 Taro <taro@example.com>:"
    if (t.ends_with(':') || t.ends_with('：'))
        && t.contains('@')
        && t.chars().any(|c| c.is_ascii_digit())
    {
        return true;
    }
    is_header_block(lines, i)
}

fn is_header_block(lines: &[&str], i: usize) -> bool {
    const FROM: &[&str] = &[
        "from:",
        "差出人:",
        "差出人：",
        "送信者:",
        "送信者：",
        "von:",
        "de :",
        "de:",
    ];
    const NEXT: &[&str] = &[
        "sent:",
        "date:",
        "to:",
        "送信日時:",
        "送信日時：",
        "日付:",
        "日付：",
        "宛先:",
        "宛先：",
        "gesendet:",
        "envoyé :",
    ];
    let starts = |l: &str, set: &[&str]| {
        let l = l.trim_start().to_lowercase();
        set.iter().any(|p| l.starts_with(p))
    };
    starts(lines[i], FROM) && lines[i + 1..].iter().take(4).any(|l| starts(l, NEXT))
}

/// Line starts of logs, traces, shell sessions and Ansible output.
const LOG_PREFIXES: &[&str] = &[
    "at ",
    "File \"",
    "Traceback",
    "Caused by",
    "...",
    "$ ",
    "# ",
    "[",
    "{",
    "}",
    "<",
    "|",
    "+",
    "TASK ",
    "PLAY ",
    "fatal:",
    "ok:",
    "changed:",
    "failed:",
    "skipping:",
    "Error:",
    "ERROR",
    "WARNING",
    "Warning:",
    "DEBUG",
    "INFO",
    "Exception",
    "panic",
    "sudo ",
    "#!",
];

/// Fragments that only machine output has.
const LOG_MARKERS: &[&str] = &[
    "://",
    "=>",
    "::",
    "==",
    "Exception",
    "Error:",
    "ERROR",
    "FAILED",
    "/usr/",
    "/etc/",
    "/var/",
    "\\",
];

/// An ASCII line that looks like machine output (a log line, a stack frame, a
/// command) rather than something the sender wrote. Lines with any non-ASCII letter
/// are never logs here: they may hold Japanese prose.
pub fn looks_like_log(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || !t.is_ascii() {
        return false;
    }
    LOG_PREFIXES.iter().any(|p| t.starts_with(p))
        || LOG_MARKERS.iter().any(|m| t.contains(m))
        || has_clock_time(t)
        || code_like_share(t) >= 0.3
}

/// hh:mm:ss, as log timestamps have.
fn has_clock_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.windows(8).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        d(0) && d(1) && w[2] == b':' && d(3) && d(4) && w[5] == b':' && d(6) && d(7)
    })
}

/// Share of tokens that look like code: paths, dotted names, key=value, calls.
fn code_like_share(t: &str) -> f64 {
    let tokens: Vec<&str> = t.split_whitespace().collect();
    let code = tokens.iter().filter(|w| is_code_token(w)).count();
    code as f64 / tokens.len().max(1) as f64
}

fn is_code_token(w: &str) -> bool {
    let w = w.trim_end_matches([',', '.', ';', ':', ')']);
    w.contains(['/', '=', '_', '{', '}', '[', ']', '$', '(', '"'])
        || w.split('.')
            .filter(|p| p.chars().any(|c| c.is_ascii_alphabetic()))
            .count()
            >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(subject: &str, body: &str) -> Language {
        detect(subject, body).language
    }

    #[test]
    fn a_mailbox_default_language_fills_in_only_for_mail_without_prose() {
        let ja = Some(Language::Ja);
        let log = "ERROR 0x80004005\n/var/log/foreman/production.log:42";
        assert_eq!(detect_or("", log, ja).language, Language::Ja);
        assert_eq!(detect_or("", log, ja).confidence, DEFAULTED_CONFIDENCE);
        assert_eq!(detect_or("", log, None).language, Language::En);
        let english = "Our capsule stopped syncing after the upgrade last night.";
        assert_eq!(detect_or("Sync fails", english, ja).language, Language::En);
        let japanese = "昨夜からサーバーが停止しております。ご確認をお願いいたします。";
        assert_eq!(
            detect_or("", japanese, Some(Language::En)).language,
            Language::Ja
        );
    }

    #[test]
    fn japanese_prose_with_a_long_english_trace_is_japanese() {
        let mut body =
            String::from("お世話になっております。\nplaybook実行時に以下のエラーが出ます。\n\n");
        for i in 0..60 {
            body.push_str(&format!("    at org.example.Foo.bar{i}(Foo.java:{i})\n"));
        }
        let d = detect("Error on playbook run", &body);
        assert_eq!(d.language, Language::Ja);
        assert!(d.confidence >= 0.6 && d.confidence <= 1.0);
    }

    #[test]
    fn kanji_only_text_is_not_japanese() {
        assert_eq!(lang("", "本日会議室予約確認"), Language::En);
        assert_eq!(
            lang("服务器无法启动", "我们的服务器升级后无法启动，请帮忙检查。"),
            Language::En
        );
    }

    #[test]
    fn a_japanese_signature_does_not_flip_an_english_mail() {
        let body = "Hello,\nOur Satellite server fails to sync content since the upgrade.\nCould you check the attached logs?\n\nTaro Yamada\nさくらインターネット株式会社\nアクメ・テクノロジー 情報システム部\n東京都千代田区丸の内1-2-3\n";
        assert_eq!(lang("Sync fails", body), Language::En);
    }

    #[test]
    fn a_japanese_one_liner_is_japanese() {
        assert_eq!(lang("", "よろしくお願いします"), Language::Ja);
        assert_eq!(lang("", "はい"), Language::Ja);
    }

    #[test]
    fn japanese_subject_with_empty_body_is_japanese() {
        assert_eq!(lang("【至急】サーバー停止", ""), Language::Ja);
    }

    #[test]
    fn an_inherited_japanese_subject_does_not_outweigh_english_text() {
        let body =
            "Hi team,\nI am forwarding this for our Tokyo office, please answer in English.\n";
        assert_eq!(lang("Fwd: サーバー停止について", body), Language::En);
    }

    #[test]
    fn quoted_lines_and_history_are_ignored() {
        let body = "Thanks, the workaround solved our problem here.\n\nOn Mon, Jan 5, 2026 at 10:00 Support <support@vendor.example> wrote:\n本日はお問い合わせありがとうございます。\n";
        assert_eq!(lang("Re: help", body), Language::En);
        let quoted = "Thanks, the workaround solved our problem here.\n> 本日はお問い合わせありがとうございます。\n＞ ご確認ください。\n";
        assert_eq!(lang("Re: help", quoted), Language::En);
    }

    #[test]
    fn korean_falls_back_to_english_with_lower_confidence() {
        let d = detect(
            "서버 오류",
            "안녕하세요. 서버가 업그레이드 후에 시작되지 않습니다. 확인 부탁드립니다.",
        );
        assert_eq!(d.language, Language::En);
        assert!(d.confidence <= 0.5, "{d:?}");
    }

    #[test]
    fn empty_mail_is_english_with_no_confidence() {
        assert_eq!(
            detect("", ""),
            Detection {
                language: Language::En,
                confidence: 0.0
            }
        );
    }

    #[test]
    fn log_lines_are_recognised() {
        for l in [
            "    at org.example.Foo.bar(Foo.java:42)",
            "Traceback (most recent call last):",
            "fatal: [web1]: FAILED! => {\"msg\": \"x\"}",
            "Jan 10 10:00:01 host sshd[123]: Accepted",
            "$ ansible-playbook -i inventory site.yml",
            "KeyError: 'foo'",
            "  File \"/usr/lib/python3.9/site-packages/ansible/x.py\", line 12, in main",
        ] {
            assert!(looks_like_log(l), "{l}");
        }
        for l in [
            "We upgraded Satellite to 6.15 yesterday (see below).",
            "Hello, could you help us?",
        ] {
            assert!(!looks_like_log(l), "{l}");
        }
    }

    #[test]
    fn outlook_header_block_starts_history() {
        let body = "Please see below.\n\nFrom: 山田 <y@acme.co.jp>\nSent: Monday\nTo: support\n本日はよろしくお願いいたします。\n";
        assert_eq!(own_lines(body), vec!["Please see below.", ""]);
    }

    #[test]
    fn language_parses_and_serialises_lower_case() {
        assert_eq!(Language::parse("JA"), Some(Language::Ja));
        assert_eq!(Language::parse("fr"), None);
        assert_eq!(serde_json::to_string(&Language::En).unwrap(), "\"en\"");
    }
}
