//! Out-of-scope mail (DESIGN §1 "Out of scope"): questions about the contract itself
//! belong to Sales, requests to write, test or do the work belong to Professional
//! Services. Such mail is redirected with a template, not worked.
//!
//! A false positive is expensive (a real problem goes unworked), a false negative is
//! cheap (an engineer redirects by hand). So the default rules are phrases, not single
//! words: "renew the SSL certificate" is support, "renew our subscription" is Sales;
//! "we developed a playbook and it fails" is support, "write a playbook for us" is PS.
//!
//! Phrase syntax ([`phrase_in`]): case-insensitive; runs of whitespace match any
//! whitespace; an ASCII word must match whole words ("renew" does not match
//! "renewed"); Japanese matches as a substring; `*` stands for up to
//! [`MAX_WILDCARD_WORDS`] words within the same sentence.

use serde::{Deserialize, Serialize};

use super::language::{looks_like_log, own_lines};

/// Where an out-of-scope mail belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Sales,
    ProfessionalServices,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Sales => "sales",
            Scope::ProfessionalServices => "professional_services",
        }
    }
}

/// Phrases that mark a mail as Sales or Professional Services business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRules {
    pub sales: Vec<String>,
    pub ps: Vec<String>,
}

/// The default Sales phrases. Bare "renew"/"renewal"/"quote" are left out on purpose:
/// certificates are renewed and errors are quoted in ordinary support mail.
pub const DEFAULT_SALES: &[&str] = &[
    "renew our subscription",
    "renew our subscriptions",
    "renew the subscription",
    "renew our contract",
    "renew the contract",
    "renew our license",
    "renew our licenses",
    "subscription renewal",
    "contract renewal",
    "renewal quote",
    "pricing",
    "price",
    "quote for",
    "request a quote",
    "send us a quote",
    "get a quote",
    "quotation for",
    "send us a quotation",
    "invoice",
    "purchase order",
    "purchase more",
    "purchase additional",
    "buy more",
    "license count",
    "number of licenses",
    "additional licenses",
    "additional subscriptions",
    "見積",
    "契約更新",
    "契約の更新",
    "更新手続き",
    "サブスクリプションの更新",
    "価格",
    "料金",
    "請求書",
    "購入を検討",
    "購入したい",
    "追加購入",
    "購入方法",
    "ライセンス数",
];

/// The default Professional Services phrases. Bare "develop" / 開発 / 作成してください
/// are left out on purpose: "we developed a playbook", 開発環境で発生, and reproduction
/// steps (「playbookを作成してください」) are ordinary support mail.
pub const DEFAULT_PS: &[&str] = &[
    "write * playbook for us",
    "write * playbooks for us",
    "write * script for us",
    "write * scripts for us",
    "write * code for us",
    "write * role for us",
    "write * module for us",
    "write the code for",
    "create * playbook for us",
    "create * script for us",
    "create * scripts for us",
    "create * role for us",
    "build * playbook for us",
    "build * script for us",
    "develop * for us",
    "implement * for us",
    "do the work",
    "do it for us",
    "do this for us",
    "on our behalf",
    "test our code",
    "test our playbook",
    "test our playbooks",
    "test our scripts",
    "review our code",
    "review our playbooks",
    "開発を依頼",
    "開発をお願い",
    "開発していただけ",
    "開発してほしい",
    "代行",
    "作成していただけ",
    "作成をお願いでき",
    "作成を依頼",
    "作成してほしい",
    "作成してもらえ",
    "代わりに作成",
    "作っていただけ",
    "作ってもらえ",
    "作ってほしい",
    "構築を依頼",
    "構築をお願い",
    "構築していただけ",
    "実装していただけ",
    "実装をお願い",
    "実装を依頼",
    "書いていただけ",
    "書いてほしい",
];

impl Default for ScopeRules {
    fn default() -> Self {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ScopeRules {
            sales: own(DEFAULT_SALES),
            ps: own(DEFAULT_PS),
        }
    }
}

/// Classify a mail; `None` is ordinary support. Quoted lines, quoted history and log
/// lines are ignored (a quoted "please send a quote" or an `InvoiceService` stack
/// frame says nothing about this mail). When both match, Professional Services wins:
/// a quote for custom work is a PS matter.
pub fn classify(subject: &str, body: &str, rules: &ScopeRules) -> Option<Scope> {
    let mut text = subject.to_string();
    for line in own_lines(body).into_iter().filter(|l| !looks_like_log(l)) {
        text.push('\n');
        text.push_str(line);
    }
    let text = normalise(&text);
    // One search over the whole text first rules out most phrases for most mail: a
    // sentence's words are words of the whole text too (issue 21: the search per
    // sentence and phrase was a visible share of intake's CPU).
    let whole = collapse(&text);
    let sentences = sentences_of(&text);
    let found = |p: &String| may_occur(&whole, p) && phrase_in_sentences(&sentences, p);
    if rules.ps.iter().any(found) {
        Some(Scope::ProfessionalServices)
    } else if rules.sales.iter().any(found) {
        Some(Scope::Sales)
    } else {
        None
    }
}

/// How many words a `*` in a phrase may stand for.
pub const MAX_WILDCARD_WORDS: usize = 4;

/// Lower-case and keep line breaks (sentence ends), so a phrase never spans lines.
pub fn normalise(text: &str) -> String {
    text.to_lowercase()
}

/// Whether `phrase` occurs in `text` (already [`normalise`]d), per the module rules.
pub fn phrase_in(text: &str, phrase: &str) -> bool {
    phrase_in_sentences(&sentences_of(text), phrase)
}

/// A [`normalise`]d text split into collapsed sentences once, to test many phrases.
pub fn sentences_of(text: &str) -> Vec<String> {
    sentences(text).map(collapse).collect()
}

/// [`phrase_in`] on the output of [`sentences_of`].
pub fn phrase_in_sentences(sentences: &[String], phrase: &str) -> bool {
    let phrase = phrase.to_lowercase();
    let parts: Vec<String> = phrase.split('*').map(collapse).collect();
    if parts.iter().all(|p| p.is_empty()) {
        return false;
    }
    sentences.iter().any(|s| parts_in(s, &parts))
}

/// Whether every part of `phrase` occurs somewhere in `whole` (a [`normalise`]d and
/// collapsed text): needed, not enough, for [`phrase_in_sentences`].
fn may_occur(whole: &str, phrase: &str) -> bool {
    phrase
        .to_lowercase()
        .split('*')
        .map(collapse)
        .all(|part| whole.contains(part.as_str()))
}

/// Sentences: split at line breaks and sentence punctuation (". " but not "6.15").
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', '。', '?', '!', '？', '！'])
        .flat_map(|l| l.split(". "))
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parts in order, each gap (a `*`) at most [`MAX_WILDCARD_WORDS`] words.
fn parts_in(sentence: &str, parts: &[String]) -> bool {
    match_from(sentence, 0, parts, true)
}

fn match_from(s: &str, from: usize, parts: &[String], first: bool) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return true;
    };
    if part.is_empty() {
        return match_from(s, from, rest, first);
    }
    for (at, _) in s[from..].match_indices(part.as_str()) {
        let start = from + at;
        let end = start + part.len();
        if !first && gap_words(&s[from..start]) > MAX_WILDCARD_WORDS {
            break;
        }
        if whole_words(s, start, end) && match_from(s, end, rest, false) {
            return true;
        }
    }
    false
}

fn gap_words(gap: &str) -> usize {
    gap.split_whitespace().count()
}

/// An ASCII word at either end of the match must not continue in the text.
fn whole_words(s: &str, start: usize, end: usize) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let first = s[start..].chars().next();
    let last = s[..end].chars().next_back();
    let before = s[..start].chars().next_back();
    let after = s[end..].chars().next();
    let cut_at_start = first.is_some_and(word) && before.is_some_and(word);
    let cut_at_end = last.is_some_and(word) && after.is_some_and(word);
    !cut_at_start && !cut_at_end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(subject: &str, body: &str) -> Option<Scope> {
        classify(subject, body, &ScopeRules::default())
    }

    #[test]
    fn sales_questions_are_recognised() {
        assert_eq!(
            scope("Quote", "Please send us a quote for 50 more nodes."),
            Some(Scope::Sales)
        );
        assert_eq!(
            scope(
                "Renewal",
                "We would like to renew our subscription for next year."
            ),
            Some(Scope::Sales)
        );
        assert_eq!(
            scope("契約更新の件", "見積もりをお願いします。"),
            Some(Scope::Sales)
        );
        assert_eq!(
            scope("", "ライセンス数を増やしたいです。"),
            Some(Scope::Sales)
        );
    }

    #[test]
    fn ps_requests_are_recognised() {
        assert_eq!(
            scope("Request", "Could you please write this playbook for us?"),
            Some(Scope::ProfessionalServices)
        );
        assert_eq!(
            scope("", "Can you implement it for us by Friday?"),
            Some(Scope::ProfessionalServices)
        );
        assert_eq!(
            scope("", "Playbookの作成を代行していただけますか。"),
            Some(Scope::ProfessionalServices)
        );
        assert_eq!(
            scope("", "監視スクリプトを作っていただけないでしょうか。"),
            Some(Scope::ProfessionalServices)
        );
    }

    #[test]
    fn ordinary_support_mail_is_not_out_of_scope() {
        for (s, b) in [
            (
                "Playbook fails",
                "We developed a playbook and it fails with a timeout.",
            ),
            (
                "Certificate",
                "How do I renew the SSL certificate on Satellite?",
            ),
            (
                "Certificate renewal fails",
                "The renewal of the capsule certificate fails.",
            ),
            ("Error", "Let me quote the error we get when syncing."),
            ("Build", "The build fails for us since the upgrade."),
            (
                "",
                "After we renewed our subscription manifest the import fails.",
            ),
            ("エラー", "開発環境で発生しています。"),
            (
                "再現手順",
                "1. 以下の内容でplaybookを作成してください\n2. 実行すると失敗します。",
            ),
            (
                "Crash",
                "Our job fails:\n  File \"/opt/app/invoice.py\", line 3, in run\nPlease help.",
            ),
            ("Version", "We run version 6.15 of Satellite."),
        ] {
            assert_eq!(scope(s, b), None, "{s} / {b}");
        }
    }

    #[test]
    fn quoted_text_is_ignored() {
        let body = "The sync is still failing, see the log.\n> Please send us a quote.\n＞見積をお願いします。\n";
        assert_eq!(scope("Re: sync", body), None);
    }

    #[test]
    fn ps_wins_over_sales() {
        assert_eq!(
            scope("", "Please send a quote and write the playbook for us."),
            Some(Scope::ProfessionalServices)
        );
    }

    #[test]
    fn phrases_match_whole_words_and_bounded_wildcards() {
        assert!(phrase_in("we need a price list", "price"));
        assert!(!phrase_in("this is priceless", "price"));
        assert!(!phrase_in("renewed yesterday", "renew"));
        assert!(phrase_in(
            "write  this\tansible playbook for us",
            "write * playbook for us"
        ));
        assert!(!phrase_in(
            "write one two three four five six playbook for us",
            "write * playbook for us"
        ));
        assert!(!phrase_in(
            "write it.\nthe playbook for us",
            "write * playbook for us"
        ));
        assert!(phrase_in("更新手続きについて", "更新手続き"));
        assert!(!phrase_in("anything", "*"));
    }
}
