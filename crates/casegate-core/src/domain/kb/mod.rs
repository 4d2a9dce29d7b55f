//! Knowledge-base article drafts, PURE: a solved case in, a Markdown article out.
//!
//! A good team turns solved problems into articles; the engineer who solved one should
//! only have to edit, not to copy and paste. The draft is built from what the case
//! already holds: the customer's first mail (the symptom), their answers to the
//! acknowledgement's questions (the environment), the engineers' replies (cause and
//! resolution) and the linked bug. Everything that identifies the customer is taken
//! out ([`scrub`]); pasted traces and logs stay verbatim in code blocks ([`verbatim`]).

pub mod article;
pub mod draft;
pub mod scrub;
pub mod verbatim;

pub use article::{ArticleMeta, ArticleStatus, front_matter};
pub use draft::{Author, CaseStory, Draft, Reference, StoryMessage, draft};

/// The title of an article: its first level-one heading.
pub fn title_of(markdown: &str) -> Option<String> {
    markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// An attachment that holds an article: a `.md` / `.markdown` file or Markdown content.
pub fn is_article_file(filename: Option<&str>, content_type: &str) -> bool {
    let named = filename.is_some_and(|f| {
        let f = f.to_ascii_lowercase();
        f.ends_with(".md") || f.ends_with(".markdown")
    });
    let typed = matches!(
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .as_str(),
        "text/markdown" | "text/x-markdown"
    );
    named || typed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_the_first_heading() {
        assert_eq!(
            title_of("intro\n# Jobs fail\n## Symptom"),
            Some("Jobs fail".into())
        );
        assert_eq!(title_of("## Symptom only"), None);
    }

    #[test]
    fn article_files() {
        assert!(is_article_file(
            Some("Draft.MD"),
            "application/octet-stream"
        ));
        assert!(is_article_file(None, "text/markdown; charset=utf-8"));
        assert!(!is_article_file(Some("trace.log"), "text/plain"));
    }
}
