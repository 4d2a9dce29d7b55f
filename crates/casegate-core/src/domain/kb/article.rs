//! A recorded article: its status, and the front matter it is exported with.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where an article stands. A draft is casegate's text; a published article is the
/// engineer's (edited, or confirmed with `#kb publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArticleStatus {
    Draft,
    Published,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Draft => "draft",
            ArticleStatus::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Option<ArticleStatus> {
        match s {
            "draft" => Some(ArticleStatus::Draft),
            "published" => Some(ArticleStatus::Published),
            _ => None,
        }
    }
}

impl fmt::Display for ArticleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a docs site needs to know about an exported article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleMeta {
    pub title: String,
    /// The case number, 8 digits.
    pub case: String,
    pub language: String,
    pub product: Option<String>,
    pub author: String,
    pub published_at: Option<DateTime<Utc>>,
    pub url: Option<String>,
    /// Related bug / issue references.
    pub related: Vec<String>,
}

/// YAML front matter (`---` ... `---`), every string double-quoted so that a title
/// with a colon or a leading `[` stays a string.
pub fn front_matter(meta: &ArticleMeta) -> String {
    let mut out = String::from("---\n");
    let mut field = |key: &str, value: Option<&str>| {
        out.push_str(key);
        out.push_str(": ");
        match value {
            Some(v) => out.push_str(&quoted(v)),
            None => out.push_str("null"),
        }
        out.push('\n');
    };
    field("title", Some(&meta.title));
    field("case", Some(&meta.case));
    field("language", Some(&meta.language));
    field("product", meta.product.as_deref());
    field("author", Some(&meta.author));
    let date = meta.published_at.map(|d| d.format("%Y-%m-%d").to_string());
    field("published", date.as_deref());
    field("url", meta.url.as_deref());
    out.push_str("related_issues:");
    if meta.related.is_empty() {
        out.push_str(" []\n");
    } else {
        out.push('\n');
        for r in &meta.related {
            out.push_str("  - ");
            out.push_str(&quoted(r));
            out.push('\n');
        }
    }
    out.push_str("---\n");
    out
}

/// A YAML double-quoted scalar (YAML 1.2 §7.3.1).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn status_round_trips() {
        for s in [ArticleStatus::Draft, ArticleStatus::Published] {
            assert_eq!(ArticleStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ArticleStatus::parse("Published"), None);
    }

    #[test]
    fn front_matter_quotes_everything() {
        let meta = ArticleMeta {
            title: "Jobs fail: \"pool closed\" after 4.2".into(),
            case: "00000012".into(),
            language: "ja".into(),
            product: Some("ansible".into()),
            author: "kenji@example.com".into(),
            published_at: Some(Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()),
            url: None,
            related: vec!["bug:RH-123".into()],
        };
        let fm = front_matter(&meta);
        assert_eq!(
            fm,
            "---\ntitle: \"Jobs fail: \\\"pool closed\\\" after 4.2\"\ncase: \"00000012\"\n\
             language: \"ja\"\nproduct: \"ansible\"\nauthor: \"kenji@example.com\"\n\
             published: \"2026-11-30\"\nurl: null\nrelated_issues:\n  - \"bug:RH-123\"\n---\n"
        );
    }
}
