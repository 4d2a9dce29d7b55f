//! Reply stripping: the new text of a reply, without quoted history or signature.
//!
//! Engineers answer from whatever client they use, and customers reply to our mail
//! the same way. What is relayed to the other side, stored as the message text and
//! scanned for commands or a rating must be what this person wrote *now*, not the
//! thread's history again.
//!
//! Rules, in the order they are checked for each line:
//! 1. A signature delimiter (`-- `, also `--` when the client ate the space) ends the text.
//! 2. A "history start" ends the text: a forwarded / original-message separator, an
//!    Outlook header block (`From:`/`Sent:`/`To:`/`Subject:`, also German and
//!    Japanese `差出人:`/`送信日時:`/`宛先:`/`件名:`), an Outlook-web underscore rule
//!    before one, or a strong attribution line ("On ... wrote:", "Am ... schrieb ...:",
//!    「2023年5月15日(月) 10:00 Taro <t@example.jp>:」, 「...のメール:」) that is *not*
//!    followed by `>`-quoted lines (HTML replies lose their `>` when converted).
//! 3. An attribution line that *is* followed by `>`-quoted lines is dropped alone,
//!    so bottom-posted and interleaved answers after the quote are kept.
//! 4. `>`-quoted lines (also full-width `＞`, nested `> >`) are dropped.
//! 5. Mobile footers ("Sent from my iPhone", 「iPhoneから送信」, "Get Outlook for iOS")
//!    are dropped. Closing phrases ("Best regards,\nName") are kept: they are text.
//!
//! Every line loses its trailing whitespace; blank lines left over where a quote was
//! removed collapse; leading and trailing blank lines go. The writer's own internal
//! blank lines stay.

/// The new text of a reply: quoted history and signature removed (see module docs).
pub fn strip_reply(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = Output::default();
    let mut i = 0;
    while i < lines.len() {
        match step(&lines, i) {
            Step::Keep => out.keep(lines[i]),
            Step::Drop(n) => {
                out.drop_lines();
                i += n - 1;
            }
            Step::Stop => break,
        }
        i += 1;
    }
    out.finish()
}

/// What to do with the line(s) at one position.
enum Step {
    Keep,
    /// Drop this many lines (an attribution may span two).
    Drop(usize),
    /// History or signature starts here: nothing after it is new text.
    Stop,
}

fn step(lines: &[&str], i: usize) -> Step {
    let line = lines[i];
    if is_signature_delimiter(line) || starts_history(lines, i) {
        return Step::Stop;
    }
    match attribution_len(lines, i) {
        Some(len) if followed_by_quote(lines, i + len) => Step::Drop(len),
        Some(len) if is_strong_attribution(&lines[i..i + len]) => Step::Stop,
        _ if is_quoted(line) || is_mobile_footer(line) => Step::Drop(1),
        _ => Step::Keep,
    }
}

/// Collects kept lines; blank lines right after a removed part only survive when they
/// separate two kept paragraphs, so removing a quote never leaves a double gap.
#[derive(Default)]
struct Output {
    lines: Vec<String>,
    after_drop: bool,
}

impl Output {
    fn keep(&mut self, line: &str) {
        let blank = line.is_empty();
        let last_blank = self.lines.last().is_none_or(|l| l.is_empty());
        if blank && self.after_drop && last_blank {
            return;
        }
        self.after_drop &= blank;
        self.lines.push(line.to_owned());
    }

    fn drop_lines(&mut self) {
        self.after_drop = true;
    }

    /// Trailing blank lines and separator rules (`____`, `----`) left by a cut go.
    fn finish(mut self) -> String {
        while self.lines.last().is_some_and(|l| is_blank_or_rule(l)) {
            self.lines.pop();
        }
        let start = self.lines.iter().position(|l| !l.trim().is_empty());
        start.map_or_else(String::new, |s| self.lines[s..].join("\n"))
    }
}

fn is_blank_or_rule(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || (t.chars().count() >= 4 && t.chars().all(|c| c == '_' || c == '-'))
}

/// `-- ` is the RFC 3676 delimiter; many clients trim it to `--`.
fn is_signature_delimiter(line: &str) -> bool {
    line == "--" || line == "-- "
}

/// Quoted: `>` or full-width `＞` in the first column. An indented `>` is the
/// writer's own text (a pasted shell prompt or log), not a quote.
fn is_quoted(line: &str) -> bool {
    line.starts_with('>') || line.starts_with('＞')
}

/// Whether history starts at line `i` with something that is never followed by new
/// text: separators and header blocks (rule 2 minus attributions).
fn starts_history(lines: &[&str], i: usize) -> bool {
    is_separator(lines[i]) || header_block_at(lines, i) || underscore_rule_before_header(lines, i)
}

/// "-----Original Message-----", "---------- Forwarded message ---------",
/// "Begin forwarded message:" and their German, French and Japanese forms.
fn is_separator(line: &str) -> bool {
    const DASHED: &[&str] = &[
        "original message",
        "forwarded message",
        "ursprüngliche nachricht",
        "weitergeleitete nachricht",
        "message d'origine",
        "message transféré",
        "元のメッセージ",
        "転送されたメッセージ",
        "転送メッセージ",
        "オリジナル メッセージ",
    ];
    const PLAIN: &[&str] = &[
        "begin forwarded message:",
        "転送されたメッセージ:",
        "転送されたメッセージ：",
    ];
    let t = line.trim();
    let inner = t
        .trim_matches(|c: char| c == '-' || c == ' ' || c == '=')
        .to_lowercase();
    let dashed = inner.len() < t.len() && DASHED.contains(&inner.as_str());
    dashed || PLAIN.contains(&t.to_lowercase().as_str())
}

/// Outlook web's `____` rule directly (blank lines aside) before a `From:` line.
fn underscore_rule_before_header(lines: &[&str], i: usize) -> bool {
    let t = lines[i].trim();
    if t.len() < 20 || !t.chars().all(|c| c == '_') {
        return false;
    }
    let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
    next.is_some_and(|l| header_field(l).is_some_and(|f| f == Field::From))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    From,
    Sent,
    To,
    Subject,
}

/// The header field a line of a quoted-message header block starts with, if any.
/// Bold markers from HTML conversion (`*From:*`) are ignored.
fn header_field(line: &str) -> Option<Field> {
    const NAMES: &[(&str, Field)] = &[
        ("from", Field::From),
        ("von", Field::From),
        ("de", Field::From),
        ("差出人", Field::From),
        ("送信者", Field::From),
        ("sent", Field::Sent),
        ("date", Field::Sent),
        ("gesendet", Field::Sent),
        ("datum", Field::Sent),
        ("envoyé", Field::Sent),
        ("送信日時", Field::Sent),
        ("日付", Field::Sent),
        ("日時", Field::Sent),
        ("to", Field::To),
        ("an", Field::To),
        ("à", Field::To),
        ("cc", Field::To),
        ("宛先", Field::To),
        ("subject", Field::Subject),
        ("betreff", Field::Subject),
        ("objet", Field::Subject),
        ("件名", Field::Subject),
    ];
    let t = line.trim().trim_start_matches('*');
    let (name, _) = t.split_once([':', '：'])?;
    let name = name.trim_end_matches('*').trim().to_lowercase();
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A `From:` line followed within a few lines by a date line and a To/Subject line:
/// the header block Outlook (and Japanese Outlook) puts above the quoted message.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    if header_field(lines[i]) != Some(Field::From) {
        return false;
    }
    let fields: Vec<Field> = lines[i + 1..]
        .iter()
        .take(6)
        .filter_map(|l| header_field(l))
        .collect();
    fields.contains(&Field::Sent)
        && (fields.contains(&Field::To) || fields.contains(&Field::Subject))
}

/// The number of lines (1 or 2: clients wrap long attribution lines) of an
/// attribution line starting at `i`, if one does.
fn attribution_len(lines: &[&str], i: usize) -> Option<usize> {
    if is_quoted(lines[i]) || lines[i].trim().is_empty() {
        return None;
    }
    if is_attribution(lines[i].trim()) {
        return Some(1);
    }
    let next = lines
        .get(i + 1)
        .filter(|l| !l.trim().is_empty() && !is_quoted(l))?;
    let joined = format!("{} {}", lines[i].trim(), next.trim());
    (opens_attribution(lines[i].trim()) && is_attribution(&joined)).then_some(2)
}

/// Whether a line can be the first half of a wrapped attribution: it starts the way
/// a strong attribution starts (so ordinary text is never joined with the next line).
fn opens_attribution(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.starts_with("on ")
        || lower.starts_with("am ")
        || lower.starts_with("le ")
        || has_date(line)
}

/// Any attribution: strong ones, plus the weak "NAME wrote:" forms that are only
/// trusted when quoted lines follow.
fn is_attribution(line: &str) -> bool {
    if line.chars().count() > 250 {
        return false;
    }
    let lower = line.to_lowercase();
    const WEAK_ENDINGS: &[&str] = &[
        "wrote:",
        "writes:",
        "schrieb:",
        "a écrit :",
        "a écrit:",
        "さんは書きました:",
        "さんは書きました：",
        "さんからのメール:",
        "さんからのメール：",
    ];
    WEAK_ENDINGS.iter().any(|e| lower.ends_with(e)) || is_strong_attribution(&[line])
}

/// Attributions specific enough to cut on even without quoted lines after them:
/// "On <date> ... wrote:", "Am <date> schrieb ...:", "Le <date> ... a écrit :",
/// Japanese "<date> <time> NAME <addr>:" and "<date>、NAME のメール:".
fn is_strong_attribution(lines: &[&str]) -> bool {
    let line = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    let lower = line.to_lowercase();
    let colon = lower.ends_with(':') || lower.ends_with('：');
    // Clients put a time in these lines; prose ("On Monday, as Dana wrote:") has none.
    let dated = has_time(&line);
    let on_wrote = dated && lower.starts_with("on ") && lower.ends_with("wrote:");
    let am_schrieb = dated && lower.starts_with("am ") && lower.contains("schrieb") && colon;
    let le_ecrit = dated && lower.starts_with("le ") && lower.contains("a écrit") && colon;
    let japanese = has_date(&line)
        && has_time(&line)
        && colon
        && (line.contains('@') || lower.ends_with("のメール:") || lower.ends_with("のメール："));
    on_wrote || am_schrieb || le_ecrit || japanese
}

/// `2023年5月15日`, `2023/05/15`, `2023-05-15` or `23.11.26`-style dates.
fn has_date(s: &str) -> bool {
    const SHAPES: &[&str] = &["\0年\0月\0日", "\0/\0/\0", "\0-\0-\0", "\0.\0.\0"];
    let shape = digit_shape(s);
    SHAPES.iter().any(|p| shape.contains(p))
}

/// `10:00`-style times.
fn has_time(s: &str) -> bool {
    digit_shape(s).contains("\0:\0")
}

/// The text with every run of ASCII or full-width digits replaced by one NUL, so that
/// date and time shapes can be matched with plain `contains`.
fn digit_shape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let digit = c.is_ascii_digit() || ('０'..='９').contains(&c);
        match (digit, out.ends_with('\u{0}')) {
            (true, true) => {}
            (true, false) => out.push('\u{0}'),
            (false, _) => out.push(if c == '：' { ':' } else { c }),
        }
    }
    out
}

/// Whether the next non-blank line at or after `from` is quoted.
fn followed_by_quote(lines: &[&str], from: usize) -> bool {
    lines[from.min(lines.len())..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quoted(l))
}

/// Footers that mobile clients append on their own; the writer did not write them.
fn is_mobile_footer(line: &str) -> bool {
    const EXACT: &[&str] = &[
        "get outlook for ios",
        "get outlook for android",
        "outlook for ios を入手",
        "outlook for android を入手",
        "android 用 outlook を入手",
        "ios 用 outlook を入手",
        "iphoneから送信",
        "ipadから送信",
        "iphone から送信",
        "ipad から送信",
        "sent from mail for windows",
        "sent from outlook",
        "sent from yahoo mail for iphone",
        "sent from yahoo mail on android",
    ];
    let t = line.trim();
    // "Get Outlook for iOS<https://aka.ms/o0ukef>": the link is part of the footer.
    let t = t.split('<').next().unwrap_or(t).trim().to_lowercase();
    let sent_from_my = t
        .strip_prefix("sent from my ")
        .is_some_and(|device| device.chars().count() <= 30 && !device.contains(['.', ',']));
    sent_from_my || EXACT.contains(&t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_quote_is_kept_whole_but_trimmed() {
        assert_eq!(
            strip_reply("\n\nHello,\n\nthe fix is in 2.15.  \n\n\n"),
            "Hello,\n\nthe fix is in 2.15."
        );
    }

    #[test]
    fn gmail_attribution_cuts_top_post() {
        let text = "Done.\n\nOn Mon, Nov 23, 2026 at 9:12 AM Dana Ortiz <d@x.com> wrote:\n> old\n";
        assert_eq!(strip_reply(text), "Done.");
    }

    #[test]
    fn gmail_attribution_wrapped_over_two_lines() {
        let text =
            "Done.\n\nOn Mon, Nov 23, 2026 at 9:12 AM Dana Ortiz <\nd@x.com> wrote:\n\n> old\n";
        assert_eq!(strip_reply(text), "Done.");
    }

    #[test]
    fn html_reply_without_quote_marks_is_cut_at_strong_attribution() {
        let text = "Done.\n\nOn Mon, Nov 23, 2026 at 9:12 AM Dana <d@x.com> wrote:\nold text\n";
        assert_eq!(strip_reply(text), "Done.");
    }

    #[test]
    fn weak_attribution_without_quote_is_text() {
        assert_eq!(
            strip_reply("As Dana wrote:\nit fails."),
            "As Dana wrote:\nit fails."
        );
        let prose = "On Monday we moved to 2.14, as Dana wrote:\nit fails.";
        assert_eq!(strip_reply(prose), prose);
    }

    #[test]
    fn salutation_is_not_a_quote_header() {
        let text = "山田様\n\nお世話になっております。\n\n2023年5月15日(月) 10:00 Taro Yamada <t@example.jp>:\n> 旧";
        assert_eq!(strip_reply(text), "山田様\n\nお世話になっております。");
    }

    #[test]
    fn japanese_date_in_body_is_not_a_header() {
        let text = "2023/05/15 10:00 に以下のエラーが出ています:\nERROR x";
        assert_eq!(strip_reply(text), text);
    }

    #[test]
    fn interleaved_keeps_answers_and_collapses_gaps() {
        let text = "On 11/23/26 9:12 AM, Dana wrote:\n> Q1?\n\nA1.\n\n> > older\n> Q2?\n\nA2.\n";
        assert_eq!(strip_reply(text), "A1.\n\nA2.");
    }

    #[test]
    fn signature_and_footer() {
        assert_eq!(strip_reply("Thanks\n\n-- \nKen\nACME"), "Thanks");
        assert_eq!(strip_reply("Thanks\n\nSent from my iPhone\n"), "Thanks");
        assert_eq!(strip_reply("Regards,\nKen"), "Regards,\nKen");
    }

    #[test]
    fn outlook_blocks() {
        let text =
            "OK\r\n\r\nFrom: Dana <d@x>\r\nSent: Monday\r\nTo: s@y\r\nSubject: hi\r\n\r\nold";
        assert_eq!(strip_reply(text), "OK");
        assert_eq!(strip_reply("OK\n-----Original Message-----\nold"), "OK");
        let ja = "了解です。\n\n差出人: 山田 <t@example.jp>\n送信日時: 2023年5月15日 10:00\n宛先: s@y\n件名: x\n\n旧";
        assert_eq!(strip_reply(ja), "了解です。");
    }

    #[test]
    fn from_line_alone_is_text() {
        assert_eq!(
            strip_reply("From: the logs, it is a DNS issue."),
            "From: the logs, it is a DNS issue."
        );
    }

    #[test]
    fn full_width_quote_marks() {
        assert_eq!(strip_reply("はい。\n＞ 旧\n＞＞ 旧旧"), "はい。");
    }
}
