//! The severity a customer states in their first mail.
//!
//! Customers write it in many ways: `Severity: 2`, `Severity 2`, `Severity level: 2`,
//! `Sev: 2`, `重大度：２` (full-width colon and digits from Japanese input methods), or
//! a `[SEV 2]` / `[Sev 2]` tag in the subject. Keywords are case-insensitive. The
//! subject is read before the body and the first match wins; quoted lines (`>`) are
//! skipped, since they hold somebody else's words, often our own acknowledgement.
//!
//! A stated value outside 1-4 is reported as [`SeverityFound::Invalid`] so that the
//! caller falls back to the default *and* records why. A bare keyword followed by a
//! word (`high severity issue`, `Severity of the bug`) is prose, not a statement:
//! without a colon only a number counts.

/// What the mail says about its severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeverityFound {
    /// A valid severity, 1 (production down) to 4 (question).
    Stated(u8),
    /// A stated value that is not 1-4, as the customer wrote it (e.g. `7`, `high`).
    Invalid(String),
    /// No severity statement at all.
    Missing,
}

/// Finds the severity stated in a customer's mail; see the module doc for the forms.
pub fn from_mail(subject: &str, body: &str) -> SeverityFound {
    scan(subject, true)
        .or_else(|| {
            body.lines()
                .filter(|l| !is_quoted(l))
                .find_map(|l| scan(l, false))
        })
        .unwrap_or(SeverityFound::Missing)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with(['>', '＞'])
}

/// The first statement in `line`, by position.
fn scan(line: &str, in_subject: bool) -> Option<SeverityFound> {
    line.char_indices().find_map(|(i, c)| {
        let rest = &line[i..];
        let bracket = if in_subject && c == '[' {
            bracket_tag(&rest[1..])
        } else {
            None
        };
        bracket.or_else(|| keyword_at(line, i))
    })
}

/// `[SEV N]`, `[Sev: N]`, `[sev1]`: the subject tag. `rest` follows the `[`.
fn bracket_tag(rest: &str) -> Option<SeverityFound> {
    let rest = strip_keyword(rest.trim_start(), "sev")?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix([':', '：']).unwrap_or(rest).trim_start();
    let (token, after) = take_token(rest)?;
    after.trim_start().starts_with(']').then(|| classify(token))
}

/// A `Severity`, `Sev:` or `重大度` statement starting at byte `i` of `line`.
fn keyword_at(line: &str, i: usize) -> Option<SeverityFound> {
    let rest = &line[i..];
    if let Some(after) = rest.strip_prefix("重大度") {
        return value(after, false);
    }
    if line[..i]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
    {
        return None;
    }
    if let Some(after) = strip_keyword(rest, "severity") {
        let after_level = strip_keyword(after.trim_start(), "level").unwrap_or(after);
        return value(after_level, false);
    }
    strip_keyword(rest, "sev").and_then(|after| value(after, true))
}

/// The value after a keyword: `: token` (any token), or without a colon a number.
fn value(after: &str, colon_required: bool) -> Option<SeverityFound> {
    let after = after.trim_start();
    let (colon, rest) = match after.strip_prefix([':', '：']) {
        Some(rest) => (true, rest.trim_start()),
        None => (false, after),
    };
    if colon_required && !colon {
        return None;
    }
    let (token, _) = take_token(rest)?;
    (colon || token.starts_with(is_digit)).then(|| classify(token))
}

/// `s` after an ASCII keyword matched case-insensitively.
fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let head = s.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| &s[keyword.len()..])
}

/// The value token at the start of `s` and what follows it: a number (`2`, `１`,
/// `1.5`), else a word (`high`, `高`, `-1`). `None` when there is no token.
fn take_token(s: &str) -> Option<(&str, &str)> {
    let end = if s.starts_with(is_digit) {
        number_end(s)
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '+' | '.')))
            .unwrap_or(s.len());
        s[..end].trim_end_matches(['-', '+', '.']).len()
    };
    (end > 0).then(|| (&s[..end], &s[end..]))
}

/// The end of a run of digits, with a decimal point only between digits.
fn number_end(s: &str) -> usize {
    let mut end = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let dot_then_digit = c == '.' && chars.peek().is_some_and(|(_, n)| is_digit(*n));
        if !(is_digit(c) || dot_then_digit) {
            break;
        }
        end = i + c.len_utf8();
    }
    end
}

/// ASCII or full-width digit.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// `Stated` for 1-4 (ASCII or full-width), else `Invalid` with the token as written.
fn classify(token: &str) -> SeverityFound {
    let ascii: String = token
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_digit(u32::from(c) - u32::from('０'), 10).unwrap_or(c),
            _ => c,
        })
        .collect();
    match ascii.parse::<u8>() {
        Ok(n @ 1..=4) => SeverityFound::Stated(n),
        _ => SeverityFound::Invalid(token.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::SeverityFound::{Invalid, Missing, Stated};
    use super::*;

    fn body(text: &str) -> SeverityFound {
        from_mail("Problem with the product", text)
    }

    #[test]
    fn english_forms_in_the_body() {
        assert_eq!(body("Hello,\nSeverity: 2\nThe service fails."), Stated(2));
        assert_eq!(body("Severity 1 - production down"), Stated(1));
        assert_eq!(body("SEVERITY:3."), Stated(3));
        assert_eq!(body("severity level: 4"), Stated(4));
        assert_eq!(body("Sev: 1"), Stated(1));
        assert_eq!(body("Sev：2"), Stated(2));
    }

    #[test]
    fn japanese_forms() {
        assert_eq!(body("重大度: 2"), Stated(2));
        assert_eq!(body("重大度：３"), Stated(3));
        assert_eq!(body("本件の重大度：１（本番停止）です"), Stated(1));
        assert_eq!(body("重大度 4"), Stated(4));
        assert_eq!(body("重大度：高"), Invalid("高".into()));
        assert_eq!(body("重大度：７"), Invalid("７".into()));
    }

    #[test]
    fn subject_tags() {
        assert_eq!(from_mail("[SEV 1] cluster down", ""), Stated(1));
        assert_eq!(from_mail("Re: [Sev 2] jobs hang", ""), Stated(2));
        assert_eq!(from_mail("[sev1] jobs hang", ""), Stated(1));
        assert_eq!(from_mail("[Sev: 3] question", ""), Stated(3));
        assert_eq!(from_mail("[SEV 9] help", ""), Invalid("9".into()));
        assert_eq!(from_mail("Upgrade question - Severity: 4", ""), Stated(4));
    }

    #[test]
    fn brackets_count_only_in_the_subject() {
        assert_eq!(body("see ticket [SEV 1] from last year"), Missing);
    }

    #[test]
    fn invalid_values() {
        assert_eq!(body("Severity: 7"), Invalid("7".into()));
        assert_eq!(body("Severity: high"), Invalid("high".into()));
        assert_eq!(body("Severity: 0"), Invalid("0".into()));
        assert_eq!(body("Severity: 12"), Invalid("12".into()));
        assert_eq!(body("Severity: 1.5"), Invalid("1.5".into()));
        assert_eq!(body("Severity: -1"), Invalid("-1".into()));
        assert_eq!(body("Sev: critical!"), Invalid("critical".into()));
    }

    #[test]
    fn prose_is_not_a_statement() {
        assert_eq!(body("This is a high severity issue for us."), Missing);
        assert_eq!(body("The severity of this bug is unclear"), Missing);
        assert_eq!(body("Several: items"), Missing);
        assert_eq!(body("multisev: 2"), Missing);
        assert_eq!(body("Severity:"), Missing);
        assert_eq!(
            body("Sev 2"),
            Missing,
            "bare Sev needs a colon outside a subject tag"
        );
    }

    #[test]
    fn first_match_wins_subject_before_body() {
        assert_eq!(from_mail("[SEV 2] down", "Severity: 1"), Stated(2));
        assert_eq!(
            from_mail("Severity: high", "Severity: 1"),
            Invalid("high".into())
        );
        assert_eq!(body("Severity: 3\nSeverity: 1"), Stated(3));
        assert_eq!(body("Sev: 4 (was Severity: 1)"), Stated(4));
        assert_eq!(
            body("a high severity issue. Severity: 2"),
            Stated(2),
            "prose skipped, statement found"
        );
    }

    #[test]
    fn quoted_lines_are_ignored() {
        let text = "Thanks, it still fails.\n\n> Severity: 1\n  > 重大度：2\n＞ Sev: 3\n";
        assert_eq!(body(text), Missing);
        assert_eq!(body("> Severity: 1\nSeverity: 3"), Stated(3));
    }

    #[test]
    fn missing() {
        assert_eq!(from_mail("", ""), Missing);
        assert_eq!(body("Please help, the scheduler stopped."), Missing);
    }
}
