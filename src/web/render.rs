//! The page templates, labels and static files under `web.templates_dir`
//! (`templates/web/`), read once when the listener starts. Admins restyle the pages by
//! editing them; HTML is escaped by default (customer text shows as text).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Value, json};

use super::lang::Lang;
use crate::problem::Problem;

/// Every page template the listener renders.
pub const PAGES: [&str; 10] = [
    "base.html",
    "overview.html",
    "overview_live.html",
    "queue.html",
    "case.html",
    "quarantine.html",
    "outbox.html",
    "team.html",
    "login.html",
    "notice.html",
];

/// Static files served under `/static/`, with their content types.
pub const STATIC: [(&str, &str); 2] = [
    ("style.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
];

pub struct Pages {
    env: Environment<'static>,
    labels: BTreeMap<&'static str, BTreeMap<String, String>>,
    statics: BTreeMap<&'static str, Vec<u8>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

fn problem(path: &Path, key: &str, message: impl Into<String>) -> Problem {
    Problem {
        file: path.display().to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

impl Pages {
    /// Read and check everything: each template parses, each label file is a flat table
    /// of strings, and both languages have the same label keys.
    pub fn load(dir: &Path) -> Result<Pages, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for name in PAGES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(src) => {
                    if let Err(e) = env.add_template_owned(name, src) {
                        problems.push(problem(&path, "", e.to_string()));
                    }
                }
                Err(e) => problems.push(problem(&path, "", format!("cannot read: {e}"))),
            }
        }
        let mut labels = BTreeMap::new();
        for lang in [Lang::En, Lang::Ja] {
            let path = dir.join("labels").join(format!("{}.toml", lang.code()));
            match read_labels(&path) {
                Ok(l) => {
                    labels.insert(lang.code(), l);
                }
                Err(p) => problems.push(p),
            }
        }
        if let (Some(en), Some(ja)) = (labels.get("en"), labels.get("ja")) {
            for (have, miss, lang) in [(en, ja, "ja"), (ja, en, "en")] {
                for key in have.keys().filter(|k| !miss.contains_key(*k)) {
                    let path = dir.join("labels").join(format!("{lang}.toml"));
                    problems.push(problem(&path, key, "missing (the other language has it)"));
                }
            }
        }
        let mut statics = BTreeMap::new();
        for (name, _) in STATIC {
            let path = dir.join("static").join(name);
            match std::fs::read(&path) {
                Ok(b) => {
                    statics.insert(name, b);
                }
                Err(e) => problems.push(problem(&path, "", format!("cannot read: {e}"))),
            }
        }
        if problems.is_empty() {
            Ok(Pages {
                env,
                labels,
                statics,
            })
        } else {
            Err(problems)
        }
    }

    /// Page `name` with `data`, the labels as `t` and the language as `lang`.
    pub fn render(&self, name: &str, lang: Lang, mut data: Value) -> Result<String, String> {
        if let Value::Object(m) = &mut data {
            m.insert("t".into(), json!(self.labels.get(lang.code())));
            m.insert("lang".into(), json!(lang.code()));
        }
        self.env
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&data))))
            .map_err(|e| format!("template {name}: {e:#}"))
    }

    /// One label, or its key when missing (never blank).
    pub fn label(&self, lang: Lang, key: &str) -> String {
        self.labels
            .get(lang.code())
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    pub fn static_file(&self, name: &str) -> Option<(&'static str, &[u8])> {
        let (_, ct) = STATIC.iter().find(|(n, _)| *n == name)?;
        Some((ct, self.statics.get(name)?.as_slice()))
    }
}

fn read_labels(path: &Path) -> Result<BTreeMap<String, String>, Problem> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(path, "", format!("cannot read: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| problem(path, "", e.message().to_string()))?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        match v {
            toml::Value::String(s) => {
                out.insert(k, s);
            }
            _ => return Err(problem(path, &k, "expected a string")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_pages_load_in_both_languages() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/web");
        let pages = super::Pages::load(&dir).unwrap();
        assert_eq!(pages.label(super::Lang::Ja, "overview"), "概要");
        assert_eq!(pages.label(super::Lang::En, "overview"), "Overview");
    }

    #[test]
    fn a_broken_template_or_a_missing_label_is_named_by_file_and_key() {
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/web");
        let dir = tempfile::tempdir().unwrap();
        for sub in ["", "labels", "static"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            for f in std::fs::read_dir(shipped.join(sub)).unwrap() {
                let f = f.unwrap().path();
                if f.is_file() {
                    std::fs::copy(&f, dir.path().join(sub).join(f.file_name().unwrap())).unwrap();
                }
            }
        }
        let ja = dir.path().join("labels/ja.toml");
        let text = std::fs::read_to_string(&ja).unwrap();
        std::fs::write(&ja, text.replace("overview = \"概要\"\n", "")).unwrap();
        std::fs::write(dir.path().join("team.html"), "{% if %}").unwrap();
        let problems = super::Pages::load(dir.path()).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("ja.toml: overview: missing")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("team.html")), "{lines:?}");
    }
}
