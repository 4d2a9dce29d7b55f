//! Mail templates: minijinja, read at run time from a folder so that admins edit them
//! without a rebuild (`templates/en/NAME.txt`, `templates/ja/NAME.txt`).
//!
//! File format: the first line is `Subject: ...` (a template too), then one blank line,
//! then the body. Blocks (`{% if %}` ...) on lines of their own leave no blank line
//! (`trim_blocks` + `lstrip_blocks`); nothing is HTML-escaped (plain text mail).
//!
//! [`load`] refuses a set of templates with a syntax error, a variable that the kind's
//! context does not define (see [`context`]: every template is rendered in strict mode
//! against its documented sample), or a template missing in one of the languages. At
//! run time rendering is strict too: a missing variable is an error, never a blank.

pub mod context;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::problem::Problem;
pub use context::{TemplateContext, sample_context};

/// The languages support is given in: English, and Japanese for mail from Japan.
pub const LANGUAGES: [&str; 2] = ["en", "ja"];

pub use crate::domain::outbound::TemplateKind;

/// The file a kind's template is read from, per language folder.
fn file_name(kind: TemplateKind) -> String {
    format!("{}.txt", kind.name())
}

/// A rendered mail: one-line subject, body ending in one newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no templates for language {0:?} (expected \"en\" or \"ja\")")]
    UnknownLanguage(String),
    #[error("{0} is sent as written, not rendered from a template")]
    NotATemplate(&'static str),
    #[error("template {template}: {cause}")]
    Render {
        template: String,
        cause: minijinja::Error,
    },
}

/// The loaded, checked templates. Cheap to share behind an `Arc`; reload by loading a
/// new set and swapping it in (a failed load leaves the running set untouched).
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
}

/// An empty set: what a configuration that failed to load carries (it is never used,
/// since such a configuration is refused as a whole).
impl Default for Templates {
    fn default() -> Self {
        Templates {
            env: Environment::new(),
            dir: PathBuf::new(),
        }
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Part {
    Subject,
    Body,
}

fn template_name(lang: &str, kind: TemplateKind, part: Part) -> String {
    let part = match part {
        Part::Subject => "subject",
        Part::Body => "body",
    };
    format!("{lang}/{}#{part}", file_name(kind))
}

impl Templates {
    /// The folder the templates were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Render `kind` in `lang` ("en" or "ja") with a JSON context (see [`context`]).
    pub fn render(
        &self,
        kind: TemplateKind,
        lang: &str,
        ctx: &serde_json::Value,
    ) -> Result<Rendered, TemplateError> {
        let lang = LANGUAGES
            .into_iter()
            .find(|l| *l == lang)
            .ok_or_else(|| TemplateError::UnknownLanguage(lang.to_string()))?;
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let subject = self.render_part(&template_name(lang, kind, Part::Subject), &ctx)?;
        let body = self.render_part(&template_name(lang, kind, Part::Body), &ctx)?;
        Ok(Rendered {
            subject: one_line(&subject),
            body: finish_body(&body),
        })
    }

    /// Render with a typed context: the template is the one the context type belongs to.
    pub fn render_typed<C: TemplateContext>(
        &self,
        lang: &str,
        ctx: &C,
    ) -> Result<Rendered, TemplateError> {
        let value = serde_json::to_value(ctx).unwrap_or_default();
        self.render(C::KIND, lang, &value)
    }

    fn render_part(&self, name: &str, ctx: &minijinja::Value) -> Result<String, TemplateError> {
        let err = |source| TemplateError::Render {
            template: name.to_string(),
            cause: source,
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(ctx)
            .map_err(err)
    }
}

/// Whitespace (newlines included) collapsed: a subject is one header line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// No trailing blank lines or spaces; exactly one final newline.
fn finish_body(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    let mut body = lines.join("\n").trim_end().to_string();
    body.push('\n');
    body
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// Read and check every template under `dir`; every problem found, one per line.
pub fn load(dir: &Path) -> Result<Templates, Vec<Problem>> {
    if !dir.is_dir() {
        return Err(vec![problem(dir, None, "template folder not found".into())]);
    }
    let mut env = environment();
    let mut problems = Vec::new();
    for lang in LANGUAGES {
        for kind in TemplateKind::ALL {
            let path = dir.join(lang).join(file_name(kind));
            if let Err(mut found) = load_one(&mut env, lang, kind, &path) {
                problems.append(&mut found);
            }
        }
        problems.extend(unknown_files(&dir.join(lang)));
    }
    if problems.is_empty() {
        Ok(Templates {
            env,
            dir: dir.to_path_buf(),
        })
    } else {
        Err(problems)
    }
}

fn problem(path: &Path, line: Option<usize>, message: String) -> Problem {
    Problem {
        file: path.display().to_string(),
        key: line.map(|n| format!("line {n}")).unwrap_or_default(),
        message,
    }
}

/// The two parts of a template file, and the file line the body starts on.
struct Source {
    subject: String,
    body: String,
}

const BODY_FIRST_LINE: usize = 3;

fn split_source(text: &str) -> Result<Source, (usize, String)> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let subject = first
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("subject:"))
        .map(|_| first[8..].trim().to_string())
        .ok_or((1, "the first line must be `Subject: ...`".to_string()))?;
    if subject.is_empty() {
        return Err((
            1,
            "the subject is empty: write it after `Subject:` (the customer would get a mail without one)"
                .into(),
        ));
    }
    let (blank, body) = rest.split_once('\n').unwrap_or((rest, ""));
    if !blank.trim().is_empty() {
        return Err((
            2,
            "the Subject line must be followed by one blank line".into(),
        ));
    }
    Ok(Source {
        subject,
        body: body.to_string(),
    })
}

fn load_one(
    env: &mut Environment<'static>,
    lang: &str,
    kind: TemplateKind,
    path: &Path,
) -> Result<(), Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "missing: every template must exist in {}",
                LANGUAGES.join(" and ")
            )
        } else {
            format!("cannot read: {e}")
        };
        vec![problem(path, None, what)]
    })?;
    let source = split_source(&text).map_err(|(line, msg)| vec![problem(path, Some(line), msg)])?;
    let parts = [
        (Part::Subject, source.subject, 1),
        (Part::Body, source.body, BODY_FIRST_LINE),
    ];
    let mut problems = Vec::new();
    for (part, src, first_line) in parts {
        let name = template_name(lang, kind, part);
        if let Err(e) = env.add_template_owned(name.clone(), src.clone()) {
            problems.push(minijinja_problem(path, first_line, &e));
            continue;
        }
        problems.extend(check_part(env, &name, &src, kind, lang, path, first_line));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Unknown variables (found statically, so that branches the sample does not take are
/// checked too), then a strict render against the sample.
fn check_part(
    env: &Environment<'static>,
    name: &str,
    src: &str,
    kind: TemplateKind,
    lang: &str,
    path: &Path,
    first_line: usize,
) -> Vec<Problem> {
    let Ok(template) = env.get_template(name) else {
        return Vec::new();
    };
    let sample = sample_context(kind, lang);
    let known: BTreeSet<String> = sample
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let globals: BTreeSet<&str> = env.globals().map(|(n, _)| n).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !known.contains(v) && !globals.contains(v.as_str()))
        .collect();
    unknown.sort();
    let list = known.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|v| {
            let line = line_of(src, v).map(|l| l + first_line - 1);
            problem(
                path,
                line,
                format!("unknown variable `{v}` for {kind} (known: {list})"),
            )
        })
        .collect();
    if problems.is_empty()
        && let Err(e) = template.render(minijinja::Value::from(minijinja::value::Serde(&sample)))
    {
        problems.push(minijinja_problem(path, first_line, &e));
    }
    problems
}

fn minijinja_problem(path: &Path, first_line: usize, e: &minijinja::Error) -> Problem {
    let line = e.line().map(|l| l + first_line - 1);
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    problem(path, line, message)
}

/// The first line (1-based) where `word` appears as a whole identifier.
fn line_of(src: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    src.lines()
        .position(|line| {
            line.match_indices(word).any(|(i, _)| {
                let before = line[..i].chars().next_back();
                let after = line[i + word.len()..].chars().next();
                !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
            })
        })
        .map(|i| i + 1)
}

/// `*.txt` files in a language folder that are no template: most likely a misspelt name,
/// which would otherwise be silently ignored.
fn unknown_files(lang_dir: &Path) -> Vec<Problem> {
    let Ok(entries) = std::fs::read_dir(lang_dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            TemplateKind::from_name(stem).is_none()
        })
        .collect();
    paths.sort();
    let names: Vec<&str> = TemplateKind::ALL.iter().map(|k| k.name()).collect();
    paths
        .iter()
        .map(|p| {
            problem(
                p,
                None,
                format!(
                    "not a known template name (expected one of: {})",
                    names.join(", ")
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Templates>();
    }

    #[test]
    fn names_round_trip() {
        for kind in TemplateKind::ALL {
            assert_eq!(TemplateKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn source_needs_subject_then_blank_line() {
        let s = split_source("Subject: Hi {{ x }}\r\n\r\nBody\n").unwrap();
        assert_eq!(s.subject, "Hi {{ x }}");
        assert_eq!(s.body, "Body\n");
        assert_eq!(split_source("Hello\n\nBody").err().map(|e| e.0), Some(1));
        assert_eq!(split_source("Subject: x\nBody").err().map(|e| e.0), Some(2));
        assert_eq!(
            split_source("Subject:  \n\nBody").err().map(|e| e.0),
            Some(1)
        );
    }

    #[test]
    fn subject_is_one_line_and_body_ends_in_one_newline() {
        assert_eq!(one_line(" Re:  a\nb "), "Re: a b");
        assert_eq!(finish_body("a  \nb\n\n\n"), "a\nb\n");
    }

    #[test]
    fn line_of_matches_whole_identifiers() {
        assert_eq!(line_of("{{ case_tag }}\n{{ case }}", "case"), Some(2));
        assert_eq!(line_of("nothing", "case"), None);
    }

    #[test]
    fn every_sample_is_an_object() {
        for kind in TemplateKind::ALL {
            for lang in LANGUAGES {
                let v = sample_context(kind, lang);
                assert!(v.get("case_number").is_some(), "{kind} {lang}");
            }
        }
    }
}
