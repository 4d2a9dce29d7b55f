//! The 1–5 rating in a customer's reply to the closure mail.
//!
//! Customers answer the feedback request in free form: "4", "4/5", "Rating: 5",
//! 「５」, "★★★★☆", "評価: 4", "5 - great service". A wrong rating skews the team's
//! measured average, so anything ambiguous ("version 2.14 fails", "we have 3 hosts",
//! two different ratings) yields `None` and the reply is just a message.
//!
//! Where a rating may appear:
//! - a line that is only a rating ("4", "4/5", 「5」, "5点", "★★★★☆"): any line;
//! - a labelled rating ("Rating: 5 - thanks", "評価：★★★★☆"): any line;
//! - a rating followed by a comment ("5 - great service"): the first line only.
//!
//! Quoted lines (`>`, `＞`) are ignored even though callers pass stripped text.

use super::commands::fold_width;

/// The customer's rating, 1..=5, when the text states exactly one.
pub fn rating(text: &str) -> Option<u8> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| fold_width(l).trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('>') && !l.starts_with('＞'))
        .collect();
    let mut found: Vec<u8> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let r = stars(line).or_else(|| labelled(line)).or_else(|| {
            leading(line)
                .filter(|(_, whole)| *whole || i == 0)
                .map(|(r, _)| r)
        });
        found.extend(r);
    }
    let first = *found.first()?;
    found.iter().all(|r| *r == first).then_some(first)
}

// --- issue 18a: the comment that comes with a rating ---

/// The customer's words besides the rating: every line but the ones that state it,
/// and what follows a rating on the first line ("5 - great service" gives "great
/// service"). `None` when nothing else was written.
pub fn comment(text: &str) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut first = true;
    for raw in text.lines() {
        let line = fold_width(raw).trim().to_owned();
        if line.starts_with('>') || line.starts_with('＞') {
            continue;
        }
        if line.is_empty() {
            if !kept.is_empty() {
                kept.push(String::new());
            }
            continue;
        }
        let rest = if stars(&line).is_some() {
            Some(line.trim_start_matches(['★', '⭐', '☆', ' ']).to_string())
        } else if labelled(&line).is_some() {
            Some(String::new())
        } else {
            match leading(&line) {
                Some((_, true)) => Some(String::new()),
                Some((_, false)) if first => Some(after_rating(&line)),
                _ => None,
            }
        };
        first = false;
        let rest = rest.unwrap_or(line);
        let rest = rest.trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '–' | '—' | ':' | ',' | '、' | '~')
        });
        if !rest.is_empty() {
            kept.push(rest.to_string());
        }
    }
    while kept.last().is_some_and(String::is_empty) {
        kept.pop();
    }
    let text = kept.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// What follows the digit of a leading rating, its scale and unit ("5/5 stars - x").
fn after_rating(line: &str) -> String {
    let s = line.trim_start_matches(['「', '『', '【', '"', '\'', '(', '[']);
    let mut chars = s.chars();
    chars.next();
    let rest = strip_scale(chars.as_str().trim_start());
    let rest = rest
        .trim_start_matches(['」', '』', '】', '"', '\'', ')', ']'])
        .trim_start();
    ["点です", "点", "です", "stars", "star"]
        .iter()
        .find_map(|u| rest.strip_prefix(u))
        .unwrap_or(rest)
        .to_string()
}

/// A run of stars at the start: ★ (or ⭐) filled, ☆ empty, five at most.
fn stars(line: &str) -> Option<u8> {
    let run: Vec<char> = line
        .chars()
        .take_while(|c| matches!(c, '★' | '⭐' | '☆' | ' '))
        .collect();
    let filled = run.iter().filter(|c| matches!(c, '★' | '⭐')).count();
    let total = run.iter().filter(|c| **c != ' ').count();
    (1..=5)
        .contains(&filled)
        .then_some(filled as u8)
        .filter(|_| total <= 5)
}

/// "Rating: 5", "my rating is 4/5", "評価は４です", "満足度：★★★★★".
fn labelled(line: &str) -> Option<u8> {
    const LABELS: &[&str] = &[
        "rating",
        "rate",
        "score",
        "feedback",
        "評価",
        "満足度",
        "点数",
    ];
    let lower = line.to_lowercase();
    let lower = lower
        .strip_prefix("my ")
        .or_else(|| lower.strip_prefix("our "))
        .unwrap_or(&lower);
    let rest = LABELS.iter().find_map(|l| lower.strip_prefix(l))?;
    let rest = rest.trim_start();
    let rest = ["is ", ":", "=", "は"]
        .iter()
        .find_map(|s| rest.strip_prefix(s))
        .unwrap_or(rest);
    let rest = rest.trim_start();
    stars(rest).or_else(|| leading(rest).map(|(r, _)| r))
}

/// A digit 1..=5 at the start, in a form that reads as a rating. Returns the rating
/// and whether the line holds nothing else (so it may stand on any line).
fn leading(line: &str) -> Option<(u8, bool)> {
    let s = line.trim_start_matches(['「', '『', '【', '"', '\'', '(', '[']);
    let mut chars = s.chars();
    let digit = chars.next()?.to_digit(10).filter(|d| (1..=5).contains(d))? as u8;
    let rest = chars.as_str();
    if rest.starts_with(|c: char| c.is_ascii_digit()) || rest.starts_with("点満点") {
        return None;
    }
    let rest = strip_scale(rest.trim_start());
    if rest.starts_with('/') {
        return None; // another scale: "3/10"
    }
    let after_unit = rest
        .trim_start_matches(['」', '』', '】', '"', '\'', ')', ']'])
        .trim_start();
    let after_unit = ["点です", "点", "です", "stars", "star"]
        .iter()
        .find_map(|u| after_unit.strip_prefix(u))
        .unwrap_or(after_unit)
        .trim_start();
    if after_unit.trim_matches(['.', '。', '!', '！']).is_empty() {
        return Some((digit, true));
    }
    let separated = rest.len() > after_unit.len()
        || after_unit.starts_with(['-', '–', '—', ':', ',', '!', '、', '！', '~']);
    separated.then_some((digit, false))
}

/// Strips "/5", "/ 5", "out of 5", "of 5" after the digit; a scale other than 5 is kept,
/// so "3/10" is not read as a rating.
fn strip_scale(rest: &str) -> &str {
    let lower = rest.to_ascii_lowercase();
    for prefix in ["/ 5", "/5", "out of 5", "of 5"] {
        if lower.starts_with(prefix)
            && !lower[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
        {
            return &rest[prefix.len()..];
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, u8)] = &[
            ("4", 4),
            ("4\n", 4),
            ("4/5", 4),
            ("4 / 5 thanks", 4),
            ("Rating: 5", 5),
            ("rating 3", 3),
            ("My rating is 4/5.", 4),
            ("５", 5),
            ("「5」", 5),
            ("「５」です。ありがとうございました。", 5),
            ("5点", 5),
            ("★★★★☆", 4),
            ("★★★★★ excellent", 5),
            ("評価: 4", 4),
            ("評価：★★★☆☆", 3),
            ("満足度は５です", 5),
            ("5 - great service", 5),
            ("5! thanks a lot", 5),
            ("1.", 1),
            ("Thanks for the quick fix!\n\n5", 5),
            ("Thanks!\nRating: 4 - slow at first", 4),
            ("4\n4/5", 4),
            ("5 out of 5", 5),
        ];
        for (text, want) in cases {
            assert_eq!(rating(text), Some(*want), "{text:?}");
        }
    }

    #[test]
    fn the_comment_is_the_rest_of_the_text() {
        let cases: &[(&str, Option<&str>)] = &[
            ("4", None),
            ("5 - great service", Some("great service")),
            ("5/5 stars: quick and clear", Some("quick and clear")),
            ("★★★★★ excellent", Some("excellent")),
            (
                "Rating: 2\n\nIt took a week to get an answer.",
                Some("It took a week to get an answer."),
            ),
            (
                "Thanks for the quick fix!\n\n5",
                Some("Thanks for the quick fix!"),
            ),
            (
                "２\n回答まで時間がかかりました。",
                Some("回答まで時間がかかりました。"),
            ),
            ("1\n> quoted text", None),
        ];
        for (text, want) in cases {
            assert_eq!(comment(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn ambiguous_or_absent() {
        for text in [
            "",
            "version 2.14 fails",
            "we have 3 hosts",
            "3 hosts are still down",
            "2.14 fails again",
            "Thanks!\n5 - great", // a commented rating only counts on the first line
            "4 or 5",
            "4\n5",
            "Rating: 4\n★★★★★",
            "0",
            "6",
            "45",
            "3/10",
            "5点満点中4点",
            "☆☆☆☆☆",
            "> 5\nthanks",
            "We rate 3 hosts as critical",
        ] {
            assert_eq!(rating(text), None, "{text:?}");
        }
    }
}
