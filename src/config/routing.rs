//! Loading `config/routing.toml` into a validated [`Routing`].
//!
//! Like the main config, every problem is collected and named by file and key path
//! (`config/routing.toml: rules[3].queue: unknown queue "x"`): unknown keys, wrong
//! types, bad values, unknown names, and from [`routing::check`] dead ends and
//! unreachable rules. The flow checks (dead ends, unreachable rules) run only once
//! the file is structurally sound, since a half-read rule would make them lie.
//!
//! Layout (see the documented `config/routing.toml`): top-level `default_product`,
//! `default_region`, `japanese_queue_any_region`; `[[products]]`; `[regions]` as
//! region = [countries]; `[[queues]]`; `[[rules]]`; `[scope]`.
//! Product names are lower-cased everywhere (contracts list them lower-case).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::{Table, Value};

use super::Problem;
use crate::domain::language::Language;
use crate::domain::routing::{self, ProductRule, QueueDef, RouteRule, Routing};
use crate::domain::scope::{DEFAULT_PS, DEFAULT_SALES, ScopeRules};

/// Read, parse and validate the routing file.
pub fn load_routing(path: &Path) -> Result<Routing, Vec<Problem>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_routing(&text, &file),
        Err(e) => Err(vec![Problem {
            file,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Parse and validate routing TOML; `file` names it in problems.
pub fn parse_routing(text: &str, file: &str) -> Result<Routing, Vec<Problem>> {
    let root: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![problem(
                file,
                "",
                format!("cannot parse: {}", one_line(&e.to_string())),
            )]);
        }
    };
    let mut w = Walk {
        file,
        problems: Vec::new(),
        broken: BTreeSet::new(),
    };
    let routing = build(&mut w, &root);
    let structural = !w.problems.is_empty();
    let found = if structural {
        routing::check_names(&routing)
    } else {
        routing::check(&routing)
    };
    let reported: BTreeSet<String> = w.problems.iter().map(|p| p.key.clone()).collect();
    for (key, message) in found {
        let under_broken_entry = key.contains('[') && w.broken.contains(entry_of(&key));
        if !(reported.contains(&key) || under_broken_entry) {
            w.problem(&key, message);
        }
    }
    if w.problems.is_empty() {
        Ok(routing)
    } else {
        Err(w.problems)
    }
}

fn problem(file: &str, key: &str, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        key: key.to_string(),
        message,
    }
}

/// toml's errors span several lines (a source excerpt); keep one line per problem.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}

const TOP_KEYS: &[&str] = &[
    "default_product",
    "default_region",
    "japanese_queue_any_region",
    "products",
    "regions",
    "queues",
    "rules",
    "scope",
];

fn build(w: &mut Walk<'_>, root: &Table) -> Routing {
    w.known_keys(root, "", TOP_KEYS);
    let (sales_address, ps_address, scope) = scope(w, root);
    Routing {
        products: entries(w, root, "products", product, ProductRule::default),
        default_product: w.string(root, "", "default_product").to_lowercase(),
        regions: regions(w, root),
        default_region: w.string(root, "", "default_region"),
        queues: entries(w, root, "queues", queue, placeholder_queue),
        rules: entries(w, root, "rules", rule, placeholder_rule),
        japanese_queue_any_region: w.bool(root, "", "japanese_queue_any_region", true),
        scope,
        sales_address,
        ps_address,
    }
}

/// Read each entry of an array of tables; an entry that is not a table becomes a
/// placeholder.
fn entries<T>(
    w: &mut Walk<'_>,
    root: &Table,
    key: &str,
    read: fn(&mut Walk<'_>, &str, &Table) -> T,
    placeholder: fn() -> T,
) -> Vec<T> {
    w.tables(root, key)
        .into_iter()
        .map(|(path, t)| t.map_or_else(placeholder, |t| read(w, &path, t)))
        .collect()
}

/// Stand-ins for list entries that are not tables: they keep later indexes (and so
/// key paths) aligned, and their entry is already reported as broken.
fn placeholder_queue() -> QueueDef {
    QueueDef {
        name: String::new(),
        product: String::new(),
        language: Language::En,
        region: String::new(),
    }
}

fn placeholder_rule() -> RouteRule {
    RouteRule {
        product: None,
        language: None,
        region: None,
        queue: String::new(),
    }
}

fn product(w: &mut Walk<'_>, path: &str, t: &Table) -> ProductRule {
    w.known_keys(t, path, &["name", "addresses", "keywords"]);
    ProductRule {
        name: w.string(t, path, "name").to_lowercase(),
        addresses: w.strings(t, path, "addresses").unwrap_or_default(),
        keywords: w.strings(t, path, "keywords").unwrap_or_default(),
    }
}

fn queue(w: &mut Walk<'_>, path: &str, t: &Table) -> QueueDef {
    w.known_keys(t, path, &["name", "product", "language", "region"]);
    QueueDef {
        name: w.string(t, path, "name"),
        product: w.string(t, path, "product").to_lowercase(),
        language: w.language(t, path).unwrap_or(Language::En),
        region: w.string(t, path, "region"),
    }
}

fn rule(w: &mut Walk<'_>, path: &str, t: &Table) -> RouteRule {
    w.known_keys(t, path, &["product", "language", "region", "queue"]);
    let language = if t.contains_key("language") {
        w.language(t, path)
    } else {
        None
    };
    RouteRule {
        product: w.opt_string(t, path, "product").map(|p| p.to_lowercase()),
        language,
        region: w.opt_string(t, path, "region"),
        queue: w.string(t, path, "queue"),
    }
}

/// `[regions]`: region = ["JP", "AU", ...]; inverted to country -> region.
fn regions(w: &mut Walk<'_>, root: &Table) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let Some(table) = w.table(root, "regions") else {
        return out;
    };
    for region in table.keys() {
        let path = format!("regions.{region}");
        let countries = w.strings(table, "regions", region).unwrap_or_default();
        for (i, c) in countries.iter().enumerate() {
            let code = c.trim().to_ascii_uppercase();
            let key = format!("{path}[{i}]");
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                w.problem(
                    &key,
                    format!("expected an ISO 3166 alpha-2 country code, found \"{c}\""),
                );
            } else if let Some(other) = out.get(&code) {
                w.problem(
                    &key,
                    format!("country \"{code}\" is already in region \"{other}\""),
                );
            } else {
                out.insert(code, region.clone());
            }
        }
    }
    out
}

/// `[scope]`: the Sales and PS addresses (required) and phrases (default lists).
fn scope(w: &mut Walk<'_>, root: &Table) -> (String, String, ScopeRules) {
    let defaults = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let Some(t) = w.table(root, "scope") else {
        if !root.contains_key("scope") {
            w.problem(
                "scope",
                "missing (required: sales_address and ps_address)".into(),
            );
        }
        return (String::new(), String::new(), ScopeRules::default());
    };
    w.known_keys(t, "scope", &["sales_address", "ps_address", "sales", "ps"]);
    let sales_address = w.address(t, "scope", "sales_address");
    let ps_address = w.address(t, "scope", "ps_address");
    let sales = w
        .phrases(t, "scope", "sales")
        .unwrap_or_else(|| defaults(DEFAULT_SALES));
    let ps = w
        .phrases(t, "scope", "ps")
        .unwrap_or_else(|| defaults(DEFAULT_PS));
    (sales_address, ps_address, ScopeRules { sales, ps })
}

/// Typed access to the TOML tree, collecting problems by key path. `broken` holds the
/// paths of entries that could not be read, so later checks do not pile onto them.
struct Walk<'a> {
    file: &'a str,
    problems: Vec<Problem>,
    broken: BTreeSet<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The array entry a key path belongs to: "rules[3].queue" -> "rules[3]".
fn entry_of(key: &str) -> &str {
    key.find(']').map_or(key, |i| &key[..=i])
}

impl Walk<'_> {
    fn problem(&mut self, key: &str, message: String) {
        self.broken.insert(entry_of(key).to_string());
        self.problems.push(problem(self.file, key, message));
    }

    /// Unknown keys are reported but do not make their entry unreadable.
    fn known_keys(&mut self, t: &Table, path: &str, allowed: &[&str]) {
        for k in t.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.problems
                .push(problem(self.file, &join(path, k), "unknown key".into()));
        }
    }

    fn wrong(&mut self, key: &str, expected: &str, v: &Value) {
        self.problem(key, format!("expected {expected}, found {}", describe(v)));
    }

    /// A required non-empty string ("" after the problem is recorded).
    fn string(&mut self, t: &Table, path: &str, key: &str) -> String {
        let full = join(path, key);
        match t.get(key) {
            None => self.problem(&full, "missing (required)".into()),
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(&full, "must not be empty".into())
            }
            Some(Value::String(s)) => return s.trim().to_string(),
            Some(v) => self.wrong(&full, "a string", v),
        }
        String::new()
    }

    fn opt_string(&mut self, t: &Table, path: &str, key: &str) -> Option<String> {
        t.get(key)?;
        Some(self.string(t, path, key))
    }

    fn bool(&mut self, t: &Table, path: &str, key: &str, default: bool) -> bool {
        match t.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.wrong(&join(path, key), "true or false", v);
                default
            }
        }
    }

    /// A list of strings, or `None` when absent (or not a list).
    fn strings(&mut self, t: &Table, path: &str, key: &str) -> Option<Vec<String>> {
        let full = join(path, key);
        let items = match t.get(key)? {
            Value::Array(a) => a,
            v => {
                self.wrong(&full, "a list of strings", v);
                return None;
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.trim().to_string()),
                v => self.wrong(&format!("{full}[{i}]"), "a string", v),
            }
        }
        Some(out)
    }

    /// Scope phrases: a list of non-empty strings.
    fn phrases(&mut self, t: &Table, path: &str, key: &str) -> Option<Vec<String>> {
        let list = self.strings(t, path, key)?;
        for (i, p) in list.iter().enumerate() {
            if p.replace('*', "").trim().is_empty() {
                self.problem(&format!("{}[{i}]", join(path, key)), "empty phrase".into());
            }
        }
        Some(list)
    }

    /// A required email address.
    fn address(&mut self, t: &Table, path: &str, key: &str) -> String {
        let a = self.string(t, path, key);
        let ok = a
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
        if !a.is_empty() && !ok {
            self.problem(
                &join(path, key),
                format!("expected an email address, found \"{a}\""),
            );
        }
        a
    }

    fn language(&mut self, t: &Table, path: &str) -> Option<Language> {
        let full = join(path, "language");
        let raw = self.string(t, path, "language");
        let parsed = Language::parse(&raw);
        if parsed.is_none() && !raw.is_empty() {
            self.problem(&full, format!("expected \"en\" or \"ja\", found \"{raw}\""));
        }
        parsed
    }

    fn table<'t>(&mut self, t: &'t Table, key: &str) -> Option<&'t Table> {
        match t.get(key)? {
            Value::Table(inner) => Some(inner),
            v => {
                self.wrong(key, "a table", v);
                None
            }
        }
    }

    /// An array of tables (`[[key]]` or `key = [{...}]`), each with its key path;
    /// `None` for an entry that is not a table (reported here).
    fn tables<'t>(&mut self, t: &'t Table, key: &str) -> Vec<(String, Option<&'t Table>)> {
        let items = match t.get(key) {
            None => return Vec::new(),
            Some(Value::Array(a)) => a,
            Some(v) => {
                self.wrong(key, &format!("a list of tables ([[{key}]])"), v);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let table = item.as_table();
            if table.is_none() {
                self.wrong(&path, "a table", item);
            }
            out.push((path, table));
        }
        out
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_product = "ansible"
default_region = "NA"

[[products]]
name = "Ansible"
addresses = ["ansible"]
keywords = ["ansible", "playbook"]

[[products]]
name = "satellite"
addresses = ["satellite"]
keywords = ["satellite"]

[regions]
APAC = ["JP", "au"]
EMEA = ["DE"]
NA = ["US"]

[[queues]]
name = "ansible-ja"
product = "ansible"
language = "ja"
region = "APAC"

[[queues]]
name = "satellite-ja"
product = "satellite"
language = "ja"
region = "APAC"

[[queues]]
name = "global-en"
product = "ansible"
language = "en"
region = "NA"

[[rules]]
queue = "global-en"

[scope]
sales_address = "sales@vendor.example"
ps_address = "consulting@vendor.example"
sales = ["pricing", "見積"]
"#;

    fn errors(text: &str) -> Vec<String> {
        parse_routing(text, "routing.toml")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_file_loads_with_defaults() {
        let r = parse_routing(GOOD, "routing.toml").unwrap();
        assert_eq!(r.products[0].name, "ansible");
        assert_eq!(r.regions.get("AU").map(String::as_str), Some("APAC"));
        assert!(r.japanese_queue_any_region);
        assert_eq!(r.scope.sales, vec!["pricing", "見積"]);
        assert_eq!(r.scope.ps, ScopeRules::default().ps);
        assert_eq!(
            r.rules[0],
            RouteRule {
                product: None,
                language: None,
                region: None,
                queue: "global-en".into()
            }
        );
    }

    #[test]
    fn the_shipped_routing_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.toml");
        let r = load_routing(&path).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            routing::queue_for("ansible", Language::Ja, "EMEA", &r).as_deref(),
            Some("ansible-ja")
        );
        assert_eq!(
            routing::queue_for(
                "satellite",
                Language::En,
                &routing::region_for(Some("AU"), &r),
                &r
            )
            .as_deref(),
            Some("satellite-apac")
        );
    }

    #[test]
    fn every_problem_is_reported_by_key_path() {
        let bad = GOOD
            .replace("queue = \"global-en\"", "queue = \"x\"\ncolour = \"blue\"")
            .replace(
                "language = \"ja\"\nregion = \"APAC\"\n\n[[queues]]\nname = \"satellite-ja\"",
                "language = \"fr\"\nregion = \"APAC\"\n\n[[queues]]\nname = \"satellite-ja\"",
            )
            .replace("EMEA = [\"DE\"]", "EMEA = [\"DE\", \"JP\", 49]")
            .replace(
                "default_region = \"NA\"",
                "default_region = 3\njapanese_queue_any_region = \"yes\"",
            );
        let errs = errors(&bad);
        for expected in [
            "routing.toml: rules[0].queue: unknown queue \"x\"",
            "routing.toml: rules[0].colour: unknown key",
            "routing.toml: queues[0].language: expected \"en\" or \"ja\", found \"fr\"",
            "routing.toml: regions.EMEA[1]: country \"JP\" is already in region \"APAC\"",
            "routing.toml: regions.EMEA[2]: expected a string, found 49",
            "routing.toml: default_region: expected a string, found 3",
            "routing.toml: japanese_queue_any_region: expected true or false, found \"yes\"",
        ] {
            assert!(
                errs.contains(&expected.to_string()),
                "{expected}\n{errs:#?}"
            );
        }
    }

    #[test]
    fn dead_ends_and_unreachable_rules_come_from_the_check() {
        let bad = GOOD.replace(
            "[[rules]]\nqueue = \"global-en\"",
            "[[rules]]\nproduct = \"ansible\"\nqueue = \"global-en\"\n\n[[rules]]\nproduct = \"ansible\"\nlanguage = \"en\"\nqueue = \"global-en\"",
        );
        let errs = errors(&bad);
        assert!(errs.contains(&"routing.toml: rules: no queue for product \"satellite\", language \"en\", region \"EMEA\"".to_string()), "{errs:#?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("routing.toml: rules[1]: unreachable")),
            "{errs:#?}"
        );
    }

    #[test]
    fn missing_sections_and_wrong_shapes_are_reported() {
        let errs = errors("products = 3\nrules = [1, \"x\"]\n");
        for expected in [
            "routing.toml: products: expected a list of tables ([[products]]), found 3",
            "routing.toml: rules[0]: expected a table, found 1",
            "routing.toml: rules[1]: expected a table, found \"x\"",
            "routing.toml: default_product: missing (required)",
            "routing.toml: default_region: missing (required)",
            "routing.toml: scope: missing (required: sales_address and ps_address)",
        ] {
            assert!(
                errs.contains(&expected.to_string()),
                "{expected}\n{errs:#?}"
            );
        }
        assert_eq!(errs.len(), 6, "{errs:#?}");
    }

    #[test]
    fn a_bad_address_and_empty_phrase_are_reported() {
        let bad = GOOD
            .replace("sales@vendor.example", "sales")
            .replace("\"pricing\"", "\" * \"");
        let errs = errors(&bad);
        assert!(
            errs.contains(
                &"routing.toml: scope.sales_address: expected an email address, found \"sales\""
                    .to_string()
            ),
            "{errs:#?}"
        );
        assert!(
            errs.contains(&"routing.toml: scope.sales[0]: empty phrase".to_string()),
            "{errs:#?}"
        );
    }

    #[test]
    fn syntax_error_is_one_line() {
        let errs = errors("[rules\nqueue=");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("routing.toml: cannot parse"),
            "{errs:?}"
        );
        assert!(!errs[0].contains('\n'));
    }
}
