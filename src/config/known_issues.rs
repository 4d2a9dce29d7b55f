//! Loading the known-issues file (`gateway.known_issues_file`, e.g.
//! `config/known_issues.toml`) into validated [`KnownIssues`].
//!
//! Every problem is collected and named by file and key (`issues[2].link: ...`): an
//! unknown key, a missing or empty field, a duplicate id, a link that is not http(s),
//! a version that is not dotted numbers, a workaround without both languages.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::Problem;
use crate::domain::known_issue::{KnownIssue, KnownIssues, Version, Workaround};

const ISSUE_KEYS: &[&str] = &["id", "title", "affected", "fixed_in", "link", "workaround"];
const LANGUAGES: &[&str] = &["en", "ja"];

/// Read, parse and validate the known-issues file.
pub fn load_known_issues(path: &Path) -> Result<KnownIssues, Vec<Problem>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_known_issues(&text, &file),
        Err(e) => Err(vec![problem(&file, "", format!("cannot read: {e}"))]),
    }
}

/// Parse and validate known-issues TOML; `file` names it in problems.
pub fn parse_known_issues(text: &str, file: &str) -> Result<KnownIssues, Vec<Problem>> {
    let root: Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().replace('\n', " ");
        vec![problem(file, "", format!("cannot parse: {message}"))]
    })?;
    let mut problems = Vec::new();
    let mut add = |key: String, message: String| problems.push(problem(file, &key, message));
    for key in root.keys().filter(|k| *k != "issues") {
        add(
            key.clone(),
            "unknown key (expected [[issues]] entries)".into(),
        );
    }
    let entries: &[Value] = match root.get("issues") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            add("issues".into(), "expected [[issues]] entries".into());
            &[]
        }
    };
    let mut issues = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (n, entry) in entries.iter().enumerate() {
        let at = format!("issues[{n}]");
        let Some(t) = entry.as_table() else {
            add(at, "expected a table with id, title, link ...".into());
            continue;
        };
        if let Some(issue) = issue(t, &at, &mut add) {
            match seen.get(&issue.id.to_ascii_lowercase()) {
                Some(first) => add(
                    format!("{at}.id"),
                    format!("duplicate id \"{}\" (also issues[{first}])", issue.id),
                ),
                None => {
                    seen.insert(issue.id.to_ascii_lowercase(), n);
                    issues.push(issue);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(KnownIssues { issues })
    } else {
        Err(problems)
    }
}

/// One `[[issues]]` entry; `None` when a required part is missing or wrong.
fn issue(t: &Table, at: &str, add: &mut impl FnMut(String, String)) -> Option<KnownIssue> {
    for key in t.keys().filter(|k| !ISSUE_KEYS.contains(&k.as_str())) {
        add(
            format!("{at}.{key}"),
            format!("unknown key (known: {})", ISSUE_KEYS.join(", ")),
        );
    }
    let mut ok = true;
    let mut text = |key: &str, ok: &mut bool| -> String {
        match t.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) => {
                add(format!("{at}.{key}"), "must not be empty".into());
                *ok = false;
                String::new()
            }
            Some(_) => {
                add(format!("{at}.{key}"), "expected a string".into());
                *ok = false;
                String::new()
            }
            None => {
                add(format!("{at}.{key}"), "missing".into());
                *ok = false;
                String::new()
            }
        }
    };
    let id = text("id", &mut ok);
    let title = text("title", &mut ok);
    let link = text("link", &mut ok);
    if ok && !id_is_valid(&id) {
        add(
            format!("{at}.id"),
            format!("\"{id}\" is not an issue id: letters, digits, '.', '_' and '-' only"),
        );
        ok = false;
    }
    if !link.is_empty() && !is_http_url(&link) {
        add(
            format!("{at}.link"),
            format!("\"{link}\" is not an http(s) URL"),
        );
        ok = false;
    }
    let fixed_in = match t.get("fixed_in") {
        None => None,
        Some(Value::String(s)) => match Version::parse(s) {
            Some(v) => Some(v),
            None => {
                add(
                    format!("{at}.fixed_in"),
                    format!("\"{s}\" is not a version such as 2.14.2"),
                );
                ok = false;
                None
            }
        },
        Some(_) => {
            add(
                format!("{at}.fixed_in"),
                "expected a version string such as \"2.14.2\"".into(),
            );
            ok = false;
            None
        }
    };
    let affected = affected(t, at, fixed_in.as_ref(), add, &mut ok);
    let workaround = workaround(t, at, add, &mut ok);
    ok.then_some(KnownIssue {
        id,
        title,
        affected,
        fixed_in,
        link,
        workaround,
    })
}

fn affected(
    t: &Table,
    at: &str,
    fixed_in: Option<&Version>,
    add: &mut impl FnMut(String, String),
    ok: &mut bool,
) -> Vec<String> {
    let Some(value) = t.get("affected") else {
        return Vec::new();
    };
    let Some(list) = value.as_array() else {
        add(
            format!("{at}.affected"),
            "expected a list of versions, e.g. [\"2.14.0\", \"2.14.1\"]".into(),
        );
        *ok = false;
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let key = format!("{at}.affected[{i}]");
        match v.as_str().and_then(Version::parse) {
            Some(version) => {
                if fixed_in.is_some_and(|f| version >= *f) {
                    add(
                        key,
                        format!(
                            "version {version} is affected but not older than fixed_in {}",
                            fixed_in.map(|f| f.as_str()).unwrap_or_default()
                        ),
                    );
                    *ok = false;
                }
                out.push(version.as_str().to_string());
            }
            None => {
                add(key, format!("{v} is not a version such as \"2.14.0\""));
                *ok = false;
            }
        }
    }
    out
}

fn workaround(
    t: &Table,
    at: &str,
    add: &mut impl FnMut(String, String),
    ok: &mut bool,
) -> Option<Workaround> {
    let value = t.get("workaround")?;
    let key = format!("{at}.workaround");
    let Some(w) = value.as_table() else {
        add(
            key,
            "expected a table with the text in both languages: { en = \"...\", ja = \"...\" }"
                .into(),
        );
        *ok = false;
        return None;
    };
    for k in w.keys().filter(|k| !LANGUAGES.contains(&k.as_str())) {
        add(format!("{key}.{k}"), "unknown key (known: en, ja)".into());
        *ok = false;
    }
    let mut text = |lang: &str| match w.get(lang) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => {
            add(format!("{key}.{lang}"), "must not be empty".into());
            None
        }
        Some(_) => {
            add(format!("{key}.{lang}"), "expected a string".into());
            None
        }
        None => {
            add(
                format!("{key}.{lang}"),
                "missing: a workaround is given in both languages (en and ja)".into(),
            );
            None
        }
    };
    let (en, ja) = (text("en"), text("ja"));
    match (en, ja) {
        (Some(en), Some(ja)) => Some(Workaround { en, ja }),
        _ => {
            *ok = false;
            None
        }
    }
}

/// The same characters `#known`, `#bug` and `#link bug:` accept.
fn id_is_valid(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|r| {
        r.split(['/', '?', '#'])
            .next()
            .is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace))
    }) && !url.contains(char::is_whitespace)
}

fn problem(file: &str, key: &str, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        key: key.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[issues]]
id = "AAP-1234"
title = "Jobs hang when the inventory has more than 10,000 hosts"
affected = ["2.14.0", "2.14.1"]
fixed_in = "2.14.2"
link = "https://kb.example.com/issues/AAP-1234"

[[issues]]
id = "AAP-2001"
title = "Login fails after a certificate rotation"
affected = ["2.15.0"]
link = "https://kb.example.com/issues/AAP-2001"
workaround = { en = "Restart the web service.", ja = "Web サービスを再起動してください。" }
"#;

    fn errors(text: &str) -> Vec<String> {
        parse_known_issues(text, "k.toml")
            .expect_err("should fail")
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_good_file_loads() {
        let k = parse_known_issues(GOOD, "k.toml").unwrap();
        assert_eq!(k.issues.len(), 2);
        let first = k.get("aap-1234").unwrap();
        assert_eq!(first.fixed_in.as_ref().unwrap().as_str(), "2.14.2");
        assert_eq!(first.affected, vec!["2.14.0", "2.14.1"]);
        assert!(first.workaround.is_none());
        let second = k.get("AAP-2001").unwrap();
        assert!(second.fixed_in.is_none());
        assert_eq!(
            second.workaround.as_ref().unwrap().ja,
            "Web サービスを再起動してください。"
        );
        assert_eq!(
            parse_known_issues("", "k.toml").unwrap(),
            KnownIssues::default()
        );
    }

    #[test]
    fn every_error_names_the_file_and_key() {
        let text = r#"
colour = "red"
[[issues]]
id = "AAP-1"
title = "a"
link = "ftp://x/1"
fixed_in = "2.x"
severity = 2
workaround = { en = "do this" }

[[issues]]
id = "aap-1"
title = ""
link = "https://x/2"
affected = ["2.14.0", 3]

[[issues]]
title = "no id"
link = "https://x/3"
fixed_in = "2.14"
affected = ["2.14.0"]
workaround = { en = "a", ja = "b", de = "c" }
"#;
        let e = errors(text);
        let want = [
            "k.toml: colour: unknown key (expected [[issues]] entries)",
            "k.toml: issues[0].severity: unknown key (known: id, title, affected, fixed_in, link, workaround)",
            "k.toml: issues[0].link: \"ftp://x/1\" is not an http(s) URL",
            "k.toml: issues[0].fixed_in: \"2.x\" is not a version such as 2.14.2",
            "k.toml: issues[0].workaround.ja: missing: a workaround is given in both languages (en and ja)",
            "k.toml: issues[1].title: must not be empty",
            "k.toml: issues[1].affected[1]: 3 is not a version such as \"2.14.0\"",
            "k.toml: issues[2].id: missing",
            "k.toml: issues[2].affected[0]: version 2.14.0 is affected but not older than fixed_in 2.14",
            "k.toml: issues[2].workaround.de: unknown key (known: en, ja)",
        ];
        for w in want {
            assert!(e.iter().any(|x| x == w), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn duplicate_ids_are_refused_whatever_their_case() {
        let text = r#"
[[issues]]
id = "AAP-1"
title = "a"
link = "https://x/1"
[[issues]]
id = "aap-1"
title = "b"
link = "https://x/2"
"#;
        assert_eq!(
            errors(text),
            vec!["k.toml: issues[1].id: duplicate id \"aap-1\" (also issues[0])"]
        );
    }

    #[test]
    fn syntax_errors_and_wrong_shapes() {
        assert!(errors("[[issues]\n")[0].starts_with("k.toml: cannot parse: "));
        assert_eq!(
            errors("issues = 3"),
            vec!["k.toml: issues: expected [[issues]] entries"]
        );
        assert_eq!(
            errors("[[issues]]\nid = \"a b\"\ntitle = \"t\"\nlink = \"https://x\"\n"),
            vec![
                "k.toml: issues[0].id: \"a b\" is not an issue id: letters, digits, '.', '_' and '-' only"
            ]
        );
        assert_eq!(
            errors(
                "[[issues]]\nid = \"A\"\ntitle = \"t\"\nlink = \"https://x\"\nworkaround = \"x\"\n"
            ),
            vec![
                "k.toml: issues[0].workaround: expected a table with the text in both languages: { en = \"...\", ja = \"...\" }"
            ]
        );
    }
}
