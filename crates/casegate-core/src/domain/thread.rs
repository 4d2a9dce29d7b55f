//! Threading: which case, if any, a mail belongs to.
//!
//! Rules (RFC 5322 §3.6.4 headers first, the subject tag second):
//! 1. In-Reply-To / References naming any known message (inbound or sent by us) join
//!    that message's case, under the participant rule of 2: a Message-ID can be copied
//!    or guessed, so naming one proves nothing about the sender.
//! 2. Else a subject tag `[Case #00001234]` joins that case, but only when the sender
//!    already takes part in the case or writes from the customer's own (non free-mail)
//!    domain. Anyone else gets a new case, linked to the named one in the event log.
//! 3. Subject prefixes (Re:, AW:, 返信: ...) never thread by themselves.
//! 4. A mail for a closed case reopens it within the reopen window; later, it opens a
//!    new case that references the old one.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::case::{CaseNumber, Status};
use super::entitlement::Entitlement;
use super::language::Language;

/// What the store knows about a candidate case; gathered by the I/O shell.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFacts {
    pub number: CaseNumber,
    pub status: Status,
    pub closed_at: Option<DateTime<Utc>>,
    /// The customer's address domain (lower-case).
    pub customer_domain: String,
    /// True when the sender has already written on, or been copied on, this case.
    pub sender_participates: bool,
    /// What the case already knows, for the decisions that follow threading.
    pub details: CaseDetails,
}

/// The recorded triage of a case (empty for cases opened before triage existed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseDetails {
    pub subject: String,
    pub customer: String,
    pub customer_name: Option<String>,
    pub account: Option<String>,
    pub language: Option<Language>,
    pub entitlement: Option<Entitlement>,
    pub tier: Option<String>,
    pub severity: Option<u8>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub queue: Option<String>,
    pub owner: Option<String>,
    pub product: Option<String>,
    /// The case's status before this mail.
    pub status: Option<Status>,
    /// The response due time the case shows (next response, else first response).
    pub response_due: Option<DateTime<Utc>>,
    /// The customer was asked for feedback already (it is asked once per case).
    pub feedback_asked: bool,
}

/// Candidate cases for one mail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadFacts {
    /// The case of the most recent referenced message we know.
    pub by_reference: Option<CaseFacts>,
    /// The case named by the subject tag, when it exists.
    pub by_tag: Option<CaseFacts>,
}

/// Why a new case was linked to an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The mail carried another case's tag but the sender has no part in that case.
    ForeignTag,
    /// The mail's In-Reply-To/References named a message of a case the sender has no
    /// part in.
    ForeignReference,
    /// A follow-up to a case closed longer ago than the reopen window.
    FollowUpOfClosed,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::ForeignTag => "foreign_tag",
            Link::ForeignReference => "foreign_reference",
            Link::FollowUpOfClosed => "follow_up_of_closed",
        }
    }
}

/// The threading verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Thread {
    /// Open a new case, possibly linked to an older one.
    New { link: Option<(CaseNumber, Link)> },
    /// Add to an existing case; `reopen` when it was closed (within the window).
    Existing {
        number: CaseNumber,
        reopen: bool,
        by: JoinedBy,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedBy {
    Reference,
    Tag,
}

impl JoinedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            JoinedBy::Reference => "references",
            JoinedBy::Tag => "subject_tag",
        }
    }
}

/// Decide the thread. `sender_domain` is the From domain (lower-case);
/// `free_mail` tells whether a domain is a free-mail provider (never a company).
pub fn resolve(
    facts: &ThreadFacts,
    sender_domain: &str,
    free_mail: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
    reopen_window: Duration,
) -> Thread {
    if let Some(case) = &facts.by_reference {
        if is_party(case, sender_domain, &free_mail) {
            return join(case, JoinedBy::Reference, now, reopen_window);
        }
        return Thread::New {
            link: Some((case.number, Link::ForeignReference)),
        };
    }
    if let Some(case) = &facts.by_tag {
        if is_party(case, sender_domain, &free_mail) {
            return join(case, JoinedBy::Tag, now, reopen_window);
        }
        return Thread::New {
            link: Some((case.number, Link::ForeignTag)),
        };
    }
    Thread::New { link: None }
}

/// The participant rule: the sender already takes part in the case, or writes from the
/// customer's own domain (never a free-mail domain). Threading and ratings both obey it.
pub fn is_party(case: &CaseFacts, sender_domain: &str, free_mail: impl Fn(&str) -> bool) -> bool {
    let sender_domain = sender_domain.to_ascii_lowercase();
    let same_company = !sender_domain.is_empty()
        && sender_domain == case.customer_domain
        && !free_mail(&sender_domain);
    case.sender_participates || same_company
}

fn join(case: &CaseFacts, by: JoinedBy, now: DateTime<Utc>, window: Duration) -> Thread {
    if case.status != Status::Closed {
        return Thread::Existing {
            number: case.number,
            reopen: false,
            by,
        };
    }
    let within = case.closed_at.is_none_or(|closed| {
        let age = now.signed_duration_since(closed);
        age.to_std().map(|a| a <= window).unwrap_or(true)
    });
    if within {
        Thread::Existing {
            number: case.number,
            reopen: true,
            by,
        }
    } else {
        Thread::New {
            link: Some((case.number, Link::FollowUpOfClosed)),
        }
    }
}

/// The subject tag for a case: `[Case #00001234]`.
pub fn subject_tag(word: &str, number: CaseNumber) -> String {
    format!("[{word} #{number}]")
}

/// Find a case tag in a subject: `[WORD #digits]`, the word compared case-insensitively,
/// a space before `#` optional, full-width `＃` accepted (Japanese IMEs produce it).
pub fn find_tag(subject: &str, word: &str) -> Option<CaseNumber> {
    let lower = subject.to_lowercase();
    let word = word.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(n) = after.strip_prefix(word.as_str()).and_then(parse_tag_tail) {
            return Some(n);
        }
        rest = after;
    }
    None
}

/// Parses ` #00001234]` (after the tag word).
fn parse_tag_tail(s: &str) -> Option<CaseNumber> {
    let s = s.trim_start_matches(' ');
    let s = s.strip_prefix('#').or_else(|| s.strip_prefix('＃'))?;
    let end = s.find(']')?;
    let digits = &s[..end];
    if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(CaseNumber)
}

/// The subject of our reply in a customer's thread: their own subject, reply prefixes
/// (`Re:`, `AW:`, `返信:` ...) and any copy of our tag removed, then `Re: <tag> <subject>`.
/// So `Re: Re: [Case #00001234] Agent down` stays `Re: [Case #00001234] Agent down`.
pub fn reply_subject(case_tag: &str, customer_subject: &str) -> String {
    let clean = clean_subject(customer_subject, tag_word(case_tag));
    if clean.is_empty() {
        format!("Re: {case_tag}")
    } else {
        format!("Re: {case_tag} {clean}")
    }
}

/// `Case` from `[Case #00001234]`.
fn tag_word(case_tag: &str) -> &str {
    let inner = case_tag.trim().trim_start_matches('[');
    inner.split(['#', '＃']).next().unwrap_or("").trim()
}

/// The subject without reply/forward prefixes (Re:, RE:, AW:, Fwd:, FW:, WG:, SV:,
/// Re[2]:, 返信:, 転送:, full-width colons) and without our case tag: what a case is
/// titled by. Prefixes never thread by themselves; this is for display and titles.
pub fn clean_subject(subject: &str, tag_word: &str) -> String {
    let mut s = subject.trim().to_string();
    loop {
        let before = s.clone();
        if let Some(n) = find_tag(&s, tag_word) {
            let tag = subject_tag_pattern(&s, tag_word, n);
            if let Some(t) = tag {
                s = s.replacen(&t, "", 1).trim().to_string();
            }
        }
        s = strip_one_prefix(&s).trim().to_string();
        if s == before {
            return s;
        }
    }
}

/// The exact text of the tag as written in `s` (it may differ in case and spacing).
///
/// Offsets are taken in `s` itself: lower-casing may change a text's length in bytes
/// (`İ` is two bytes, its lower case three), so an offset found in a lower-cased copy
/// does not point into the original (a subject found by fuzzing panicked here).
fn subject_tag_pattern(s: &str, word: &str, n: CaseNumber) -> Option<String> {
    let number = n.0.to_string();
    s.match_indices('[').find_map(|(start, _)| {
        let after = &s[start + 1..];
        let named = after
            .chars()
            .zip(word.chars())
            .filter(|(a, b)| a.to_lowercase().eq(b.to_lowercase()))
            .count()
            == word.chars().count()
            && after.chars().count() >= word.chars().count();
        let end = start + 1 + after.find(']')? + 1;
        let found = &s[start..end];
        (named && found.contains(&number)).then(|| found.to_string())
    })
}

const PREFIXES: &[&str] = &[
    "re", "aw", "fwd", "fw", "wg", "sv", "vs", "tr", "antw", "返信", "転送", "回复", "转发",
];

fn strip_one_prefix(s: &str) -> &str {
    for p in PREFIXES {
        // The prefixes are lower-case ASCII or CJK: compared in `s` itself, never in a
        // lower-cased copy (whose byte offsets may differ, see `subject_tag_pattern`).
        if let Some(head) = s.get(..p.len())
            && head.eq_ignore_ascii_case(p)
        {
            let tail = skip_counter(&s[p.len()..]);
            if let Some(after) = tail.strip_prefix(':').or_else(|| tail.strip_prefix('：')) {
                return after;
            }
        }
    }
    s
}

/// `Re[2]:` and `Re(2):` style counters.
fn skip_counter(s: &str) -> &str {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = s.strip_prefix(open)
            && let Some(end) = inner.find(close)
            && inner[..end].chars().all(|c| c.is_ascii_digit())
        {
            return &inner[end + 1..];
        }
    }
    s.trim_start_matches(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `thread` fuzz target: characters whose lower case is longer in UTF-8
    /// than they are (`İ`, `Ⱥ`) before a prefix or a tag made the byte offsets of the
    /// lower-cased copy point past the original.
    #[test]
    fn subjects_whose_lower_case_is_longer_clean_without_a_panic() {
        assert_eq!(clean_subject("İİİ RE: x", "Case"), "İİİ RE: x");
        assert_eq!(clean_subject("RE: ȺȺȺ", "Case"), "ȺȺȺ");
        // The tag goes, the spaces around it stay (as for any subject).
        assert_eq!(
            clean_subject("ȺȺȺȺ [case #00000042] Agent down", "Case"),
            "ȺȺȺȺ  Agent down"
        );
        assert_eq!(
            reply_subject("[Case #00000042]", "Re: [CASE #42] İstanbul office down"),
            "Re: [Case #00000042] İstanbul office down"
        );
        let fuzzed = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/findings/thread/crashes-11b97d3c3ce8e00e"
        ))
        .unwrap();
        let _ = clean_subject(&String::from_utf8_lossy(&fuzzed), "Case");
    }
    use chrono::TimeZone;

    fn case(status: Status, participates: bool) -> CaseFacts {
        CaseFacts {
            number: CaseNumber(42),
            status,
            closed_at: None,
            customer_domain: "acme.co.jp".into(),
            sender_participates: participates,
            details: CaseDetails::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
    }

    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    fn free(d: &str) -> bool {
        d == "gmail.com"
    }

    #[test]
    fn reference_wins_over_everything() {
        let facts = ThreadFacts {
            by_reference: Some(case(Status::Open, true)),
            by_tag: None,
        };
        assert_eq!(
            resolve(&facts, "stranger.org", free, now(), WEEK),
            Thread::Existing {
                number: CaseNumber(42),
                reopen: false,
                by: JoinedBy::Reference
            }
        );
    }

    #[test]
    fn a_stranger_naming_a_known_message_id_gets_a_new_linked_case() {
        let facts = ThreadFacts {
            by_reference: Some(case(Status::Closed, false)),
            by_tag: None,
        };
        assert_eq!(
            resolve(&facts, "stranger.org", free, now(), WEEK),
            Thread::New {
                link: Some((CaseNumber(42), Link::ForeignReference))
            }
        );
        assert!(matches!(
            resolve(&facts, "ACME.co.jp", free, now(), WEEK),
            Thread::Existing { reopen: true, .. }
        ));
    }

    #[test]
    fn tag_joins_for_participant_or_same_company() {
        let facts = ThreadFacts {
            by_reference: None,
            by_tag: Some(case(Status::Open, true)),
        };
        assert!(matches!(
            resolve(&facts, "gmail.com", free, now(), WEEK),
            Thread::Existing {
                by: JoinedBy::Tag,
                ..
            }
        ));
        let facts = ThreadFacts {
            by_reference: None,
            by_tag: Some(case(Status::Open, false)),
        };
        assert!(matches!(
            resolve(&facts, "acme.co.jp", free, now(), WEEK),
            Thread::Existing { .. }
        ));
    }

    #[test]
    fn stranger_with_tag_gets_new_linked_case() {
        let facts = ThreadFacts {
            by_reference: None,
            by_tag: Some(case(Status::Open, false)),
        };
        assert_eq!(
            resolve(&facts, "evil.example", free, now(), WEEK),
            Thread::New {
                link: Some((CaseNumber(42), Link::ForeignTag))
            }
        );
    }

    #[test]
    fn free_mail_domain_is_never_the_same_company() {
        let mut c = case(Status::Open, false);
        c.customer_domain = "gmail.com".into();
        let facts = ThreadFacts {
            by_reference: None,
            by_tag: Some(c),
        };
        assert!(matches!(
            resolve(&facts, "gmail.com", free, now(), WEEK),
            Thread::New { .. }
        ));
    }

    #[test]
    fn closed_case_reopens_within_window_else_new_linked() {
        let mut c = case(Status::Closed, true);
        c.closed_at = Some(now() - chrono::Duration::days(3));
        let facts = ThreadFacts {
            by_reference: Some(c.clone()),
            by_tag: None,
        };
        assert!(matches!(
            resolve(&facts, "acme.co.jp", free, now(), WEEK),
            Thread::Existing { reopen: true, .. }
        ));
        c.closed_at = Some(now() - chrono::Duration::days(8));
        let facts = ThreadFacts {
            by_reference: Some(c),
            by_tag: None,
        };
        assert_eq!(
            resolve(&facts, "acme.co.jp", free, now(), WEEK),
            Thread::New {
                link: Some((CaseNumber(42), Link::FollowUpOfClosed))
            }
        );
    }

    #[test]
    fn no_facts_means_new_case() {
        assert_eq!(
            resolve(&ThreadFacts::default(), "a.com", free, now(), WEEK),
            Thread::New { link: None }
        );
    }

    #[test]
    fn tags_are_found_in_many_spellings() {
        assert_eq!(
            find_tag("Re: [Case #00001234] Server down", "Case"),
            Some(CaseNumber(1234))
        );
        assert_eq!(
            find_tag("RE: [case#00001234]", "Case"),
            Some(CaseNumber(1234))
        );
        assert_eq!(
            find_tag("返信: [Case ＃00000007] 障害", "Case"),
            Some(CaseNumber(7))
        );
        assert_eq!(
            find_tag("[Ticket #00000007]", "Ticket"),
            Some(CaseNumber(7))
        );
        assert_eq!(
            find_tag("[Case #abc] [Case #12]", "Case"),
            Some(CaseNumber(12))
        );
        assert_eq!(find_tag("Case #00001234", "Case"), None);
        assert_eq!(find_tag("[Case #]", "Case"), None);
        assert_eq!(find_tag("[Case #00000000]", "Case"), None);
    }

    #[test]
    fn prefixes_and_tags_are_cleaned_from_titles() {
        assert_eq!(
            clean_subject("Re: RE: AW: Fwd: Server down", "Case"),
            "Server down"
        );
        assert_eq!(
            clean_subject("Re[2]: [Case #00000012] Server down", "Case"),
            "Server down"
        );
        assert_eq!(
            clean_subject("返信: 転送： サーバー停止", "Case"),
            "サーバー停止"
        );
        assert_eq!(
            clean_subject("Regarding the update", "Case"),
            "Regarding the update"
        );
        assert_eq!(clean_subject("  ", "Case"), "");
    }

    #[test]
    fn tags_are_written_with_eight_digits() {
        assert_eq!(subject_tag("Case", CaseNumber(1234)), "[Case #00001234]");
    }

    #[test]
    fn reply_subject_adds_the_tag_once() {
        let tag = "[Case #00001234]";
        assert_eq!(
            reply_subject(tag, "Agent down"),
            "Re: [Case #00001234] Agent down"
        );
        assert_eq!(
            reply_subject(tag, "Re: RE: [Case #00001234] Agent down"),
            "Re: [Case #00001234] Agent down"
        );
        assert_eq!(
            reply_subject(tag, "AW: Agent down [case #1234]"),
            "Re: [Case #00001234] Agent down"
        );
        assert_eq!(
            reply_subject(tag, "返信: エージェント停止"),
            "Re: [Case #00001234] エージェント停止"
        );
        assert_eq!(reply_subject(tag, ""), "Re: [Case #00001234]");
    }
}
