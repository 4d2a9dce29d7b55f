//! Routing (DESIGN §1 "Intake and queues", "Language and region"): every case lands
//! in the queue of the team for its product, language and region.
//!
//! - Product: a recipient address first (plus addressing included), else keyword
//!   rules over subject and body, else the default product.
//! - Region: the contract's country through the country table, else the default region.
//! - Queue: with `japanese_queue_any_region`, Japanese mail goes to the product's
//!   Japanese queue whatever the region (Japanese support is one team). Otherwise, and
//!   for everything else, the rules are tried in order and the first match wins.
//!
//! [`check`] proves a configuration total and tidy before it is used: every
//! (product, language, region) reaches a queue, every name resolves, no rule is dead.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::language::{Language, own_lines};
use super::scope::{ScopeRules, normalise, phrase_in_sentences, sentences_of};

/// How a product is recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRule {
    /// Lower-case product name, as in contracts ("ansible").
    pub name: String,
    /// Recipient patterns, see [`address_matches`].
    pub addresses: Vec<String>,
    /// Phrases (scope phrase syntax) that name the product in subject or body.
    pub keywords: Vec<String>,
}

/// A team's queue: it belongs to one product, language and region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub product: String,
    pub language: Language,
    pub region: String,
}

/// One routing rule; a `None` condition matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRule {
    pub product: Option<String>,
    pub language: Option<Language>,
    pub region: Option<String>,
    pub queue: String,
}

impl RouteRule {
    pub fn matches(&self, product: &str, language: Language, region: &str) -> bool {
        self.product.as_deref().is_none_or(|p| p == product)
            && self.language.is_none_or(|l| l == language)
            && self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// The validated routing configuration (`config/routing.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub products: Vec<ProductRule>,
    pub default_product: String,
    /// ISO 3166-1 alpha-2 country (upper-case) -> region name.
    pub regions: BTreeMap<String, String>,
    pub default_region: String,
    pub queues: Vec<QueueDef>,
    pub rules: Vec<RouteRule>,
    pub japanese_queue_any_region: bool,
    pub scope: ScopeRules,
    /// Where Sales matters are forwarded.
    pub sales_address: String,
    /// Where Professional Services matters are forwarded.
    pub ps_address: String,
}

impl Routing {
    /// Every region a case can be in: the table's regions and the default, sorted.
    pub fn region_names(&self) -> BTreeSet<String> {
        self.regions
            .values()
            .cloned()
            .chain([self.default_region.clone()])
            .collect()
    }

    /// The queue definition of that name.
    pub fn queue(&self, name: &str) -> Option<&QueueDef> {
        self.queues.iter().find(|q| q.name == name)
    }
}

/// The product a mail is about. `recipients` are the addresses it was sent to (To,
/// Cc, and the envelope recipient when known), in order: the first one that names a
/// product decides.
pub fn product_for(recipients: &[String], subject: &str, body: &str, routing: &Routing) -> String {
    product_or(recipients, subject, body, None, routing)
}

/// Routing defaults of the mailbox a mail was read from (a `[[mailboxes]]` entry's
/// `product`, `queue` and `language`). Each one fills in only where the mail itself
/// names nothing more specific, so one address can serve a product or a country
/// without a rule for every case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxDefaults {
    pub product: Option<String>,
    pub queue: Option<String>,
    pub language: Option<Language>,
}

/// [`product_for`] with a mailbox's default product: an address rule, then keyword
/// rules, then `fallback`, then the routing file's default product.
pub fn product_or(
    recipients: &[String],
    subject: &str,
    body: &str,
    fallback: Option<&str>,
    routing: &Routing,
) -> String {
    by_address(recipients, routing)
        .or_else(|| by_keywords(subject, body, routing))
        .or_else(|| fallback.map(str::to_string))
        .unwrap_or_else(|| routing.default_product.clone())
}

fn by_address(recipients: &[String], routing: &Routing) -> Option<String> {
    recipients.iter().find_map(|rcpt| {
        let p = routing
            .products
            .iter()
            .find(|p| p.addresses.iter().any(|a| address_matches(rcpt, a)))?;
        Some(p.name.clone())
    })
}

/// Whether a recipient matches a product's address pattern. A pattern with '@' is a
/// whole address ("ansible-support@vendor.example"); without, it is a local part or a
/// plus tag: "ansible" matches `ansible@...`, `ansible+x@...` and `support+ansible@...`,
/// but not `ansible-support@...` (list that separately). Case-insensitive.
pub fn address_matches(recipient: &str, pattern: &str) -> bool {
    let rcpt = recipient
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase();
    let pattern = pattern.trim().to_lowercase();
    if pattern.is_empty() {
        return false;
    }
    if pattern.contains('@') {
        return rcpt == pattern;
    }
    let local = rcpt.rsplit_once('@').map_or(rcpt.as_str(), |(l, _)| l);
    let (base, tag) = local
        .split_once('+')
        .map_or((local, None), |(b, t)| (b, Some(t)));
    base == pattern || tag == Some(pattern.as_str())
}

/// The product whose keywords score highest: a keyword in the subject counts 3, in
/// the sender's own body text 1 (quoted history is someone else's mail). Ties go to
/// the product listed first; no keyword at all gives `None`.
fn by_keywords(subject: &str, body: &str, routing: &Routing) -> Option<String> {
    let subject = sentences_of(&normalise(subject));
    let body = sentences_of(&normalise(&own_lines(body).join("\n")));
    let score = |p: &ProductRule| -> usize {
        p.keywords
            .iter()
            .map(|k| {
                3 * usize::from(phrase_in_sentences(&subject, k))
                    + usize::from(phrase_in_sentences(&body, k))
            })
            .sum()
    };
    let mut best: Option<(&ProductRule, usize)> = None;
    for p in &routing.products {
        let s = score(p);
        if s > 0 && best.is_none_or(|(_, b)| s > b) {
            best = Some((p, s));
        }
    }
    best.map(|(p, _)| p.name.clone())
}

/// The region of a customer's country (ISO 3166-1 alpha-2, any case); unknown or
/// missing (no contract) gives the default region.
pub fn region_for(country: Option<&str>, routing: &Routing) -> String {
    country
        .map(|c| c.trim().to_ascii_uppercase())
        .and_then(|c| routing.regions.get(&c).cloned())
        .unwrap_or_else(|| routing.default_region.clone())
}

/// The queue for a case, or `None` when the configuration has a dead end (which
/// [`check`] reports before a configuration is ever used).
pub fn queue_for(
    product: &str,
    language: Language,
    region: &str,
    routing: &Routing,
) -> Option<String> {
    match winner(product, language, region, routing) {
        Some(Winner::Japanese(q)) => Some(q.name.clone()),
        Some(Winner::Rule(i)) => Some(routing.rules[i].queue.clone()),
        None => None,
    }
}

/// [`queue_for`] with a mailbox's default queue: the Japanese-queue override and a rule
/// that names the product are specific and win; a rule that does not name the product
/// is a catch-all, and `fallback` comes before it.
pub fn queue_or(
    product: &str,
    language: Language,
    region: &str,
    fallback: Option<&str>,
    routing: &Routing,
) -> Option<String> {
    match (winner(product, language, region, routing), fallback) {
        (Some(Winner::Rule(i)), Some(q)) if routing.rules[i].product.is_none() => {
            Some(q.to_string())
        }
        (None, Some(q)) => Some(q.to_string()),
        _ => queue_for(product, language, region, routing),
    }
}

/// Every queue some mail can be routed to (by a rule or the Japanese-queue override).
pub fn reachable_queues(routing: &Routing) -> BTreeSet<String> {
    combinations(routing)
        .into_iter()
        .filter_map(|(p, l, g)| queue_for(p, l, &g, routing))
        .collect()
}

/// What decides a combination: the Japanese-queue override or a rule (by index).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Winner<'a> {
    Japanese(&'a QueueDef),
    Rule(usize),
}

fn winner<'a>(
    product: &str,
    language: Language,
    region: &str,
    routing: &'a Routing,
) -> Option<Winner<'a>> {
    if routing.japanese_queue_any_region
        && language == Language::Ja
        && let Some(q) = japanese_queue(product, routing)
    {
        return Some(Winner::Japanese(q));
    }
    routing
        .rules
        .iter()
        .position(|r| r.matches(product, language, region))
        .map(Winner::Rule)
}

/// The product's Japanese queue: the first queue of that product in Japanese.
pub fn japanese_queue<'a>(product: &str, routing: &'a Routing) -> Option<&'a QueueDef> {
    routing
        .queues
        .iter()
        .find(|q| q.product == product && q.language == Language::Ja)
}

/// Everything wrong with a routing configuration, as (key path, message): unknown
/// names, duplicates, combinations that reach no queue, and rules no mail can reach.
pub fn check(routing: &Routing) -> Vec<(String, String)> {
    let mut out = check_names(routing);
    check_dead_ends(routing, &mut out);
    check_unreachable(routing, &mut out);
    out
}

/// The name checks of [`check`] alone (unknown or duplicate products, queues, regions,
/// addresses), for a configuration that could not be read completely: the flow
/// checks would misjudge rules that were only half read.
pub fn check_names(routing: &Routing) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_products(routing, &mut out);
    check_queues(routing, &mut out);
    check_rules(routing, &mut out);
    out
}

type Found = Vec<(String, String)>;

fn check_products(r: &Routing, out: &mut Found) {
    let mut names = BTreeSet::new();
    let mut patterns: BTreeMap<String, &str> = BTreeMap::new();
    for (i, p) in r.products.iter().enumerate() {
        if !names.insert(p.name.as_str()) {
            out.push((
                format!("products[{i}].name"),
                format!("duplicate product \"{}\"", p.name),
            ));
        }
        for (j, a) in p.addresses.iter().enumerate() {
            let key = a.trim().to_lowercase();
            match patterns.get(&key) {
                Some(other) if *other != p.name => out.push((
                    format!("products[{i}].addresses[{j}]"),
                    format!("\"{a}\" is already an address of product \"{other}\""),
                )),
                _ => {
                    patterns.insert(key, &p.name);
                }
            }
        }
    }
    if !names.contains(r.default_product.as_str()) {
        out.push((
            "default_product".into(),
            format!("unknown product \"{}\"", r.default_product),
        ));
    }
}

fn check_queues(r: &Routing, out: &mut Found) {
    let regions = r.region_names();
    let mut names = BTreeSet::new();
    for (i, q) in r.queues.iter().enumerate() {
        if !names.insert(q.name.as_str()) {
            out.push((
                format!("queues[{i}].name"),
                format!("duplicate queue \"{}\"", q.name),
            ));
        }
        if !is_product(r, &q.product) {
            out.push((
                format!("queues[{i}].product"),
                format!("unknown product \"{}\"", q.product),
            ));
        }
        if !regions.contains(&q.region) {
            out.push((
                format!("queues[{i}].region"),
                unknown_region(&q.region, &regions),
            ));
        }
        let first_ja = japanese_queue(&q.product, r).is_some_and(|f| std::ptr::eq(f, q));
        if r.japanese_queue_any_region && q.language == Language::Ja && !first_ja {
            out.push((
                format!("queues[{i}]"),
                format!("product \"{}\" already has a Japanese queue; japanese_queue_any_region only uses the first", q.product),
            ));
        }
    }
}

fn check_rules(r: &Routing, out: &mut Found) {
    let regions = r.region_names();
    for (i, rule) in r.rules.iter().enumerate() {
        if r.queue(&rule.queue).is_none() {
            out.push((
                format!("rules[{i}].queue"),
                format!("unknown queue \"{}\"", rule.queue),
            ));
        }
        if let Some(p) = rule.product.as_deref().filter(|p| !is_product(r, p)) {
            out.push((
                format!("rules[{i}].product"),
                format!("unknown product \"{p}\""),
            ));
        }
        if let Some(g) = rule.region.as_ref().filter(|g| !regions.contains(*g)) {
            out.push((format!("rules[{i}].region"), unknown_region(g, &regions)));
        }
    }
}

fn is_product(r: &Routing, name: &str) -> bool {
    r.products.iter().any(|p| p.name == name)
}

fn unknown_region(name: &str, regions: &BTreeSet<String>) -> String {
    let known: Vec<&str> = regions.iter().map(String::as_str).collect();
    format!("unknown region \"{name}\" (known: {})", known.join(", "))
}

/// Every (product, language, region) a mail can have.
fn combinations(r: &Routing) -> Vec<(&str, Language, String)> {
    let regions = r.region_names();
    let mut out = Vec::new();
    for p in &r.products {
        for l in Language::ALL {
            out.extend(regions.iter().map(|g| (p.name.as_str(), l, g.clone())));
        }
    }
    out
}

fn check_dead_ends(r: &Routing, out: &mut Found) {
    for (p, l, g) in combinations(r) {
        if winner(p, l, &g, r).is_none() {
            out.push((
                "rules".into(),
                format!("no queue for product \"{p}\", language \"{l}\", region \"{g}\""),
            ));
        }
    }
}

/// A rule is unreachable when every combination it matches is decided before it.
/// Rules naming an unknown product or region are left to `check_rules`.
fn check_unreachable(r: &Routing, out: &mut Found) {
    let regions = r.region_names();
    let combos = combinations(r);
    for (i, rule) in r.rules.iter().enumerate() {
        let known = rule.product.as_deref().is_none_or(|p| is_product(r, p))
            && rule.region.as_ref().is_none_or(|g| regions.contains(g));
        let matched: Vec<_> = combos
            .iter()
            .filter(|(p, l, g)| rule.matches(p, *l, g))
            .collect();
        if !known || matched.is_empty() {
            continue;
        }
        if matched
            .iter()
            .any(|(p, l, g)| winner(p, *l, g, r) == Some(Winner::Rule(i)))
        {
            continue;
        }
        let takers: BTreeSet<String> = matched
            .iter()
            .filter_map(|(p, l, g)| taker(winner(p, *l, g, r)?))
            .collect();
        let by: Vec<String> = takers.into_iter().collect();
        out.push((
            format!("rules[{i}]"),
            format!(
                "unreachable: every mail it matches is taken by {}",
                by.join(", ")
            ),
        ));
    }
}

fn taker(w: Winner<'_>) -> Option<String> {
    match w {
        Winner::Rule(j) => Some(format!("rules[{j}]")),
        Winner::Japanese(q) => Some(format!(
            "the Japanese queue \"{}\" (japanese_queue_any_region)",
            q.name
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn queue(name: &str, product: &str, language: Language, region: &str) -> QueueDef {
        QueueDef {
            name: name.into(),
            product: product.into(),
            language,
            region: region.into(),
        }
    }

    fn rule(
        product: Option<&str>,
        language: Option<Language>,
        region: Option<&str>,
        queue: &str,
    ) -> RouteRule {
        RouteRule {
            product: product.map(Into::into),
            language,
            region: region.map(Into::into),
            queue: queue.into(),
        }
    }

    /// ansible and satellite, APAC/EMEA/NA, one English queue per product and region.
    pub(crate) fn sample() -> Routing {
        use Language::*;
        let mut queues = vec![
            queue("ansible-ja", "ansible", Ja, "APAC"),
            queue("satellite-ja", "satellite", Ja, "APAC"),
        ];
        let mut rules = Vec::new();
        for p in ["ansible", "satellite"] {
            for g in ["APAC", "EMEA", "NA"] {
                let name = format!("{p}-{}", g.to_lowercase());
                queues.push(queue(&name, p, En, g));
                rules.push(rule(Some(p), Some(En), Some(g), &name));
            }
        }
        let regions = [("JP", "APAC"), ("AU", "APAC"), ("DE", "EMEA"), ("US", "NA")];
        Routing {
            products: vec![
                ProductRule {
                    name: "ansible".into(),
                    addresses: s(&["ansible"]),
                    keywords: s(&["ansible", "playbook", "awx"]),
                },
                ProductRule {
                    name: "satellite".into(),
                    addresses: s(&["satellite", "satellite-support@vendor.example"]),
                    keywords: s(&["satellite", "capsule", "content view"]),
                },
            ],
            default_product: "ansible".into(),
            regions: regions
                .iter()
                .map(|(c, r)| (c.to_string(), r.to_string()))
                .collect(),
            default_region: "NA".into(),
            queues,
            rules,
            japanese_queue_any_region: true,
            scope: ScopeRules::default(),
            sales_address: "sales@vendor.example".into(),
            ps_address: "consulting@vendor.example".into(),
        }
    }

    #[test]
    fn the_sample_is_clean() {
        assert_eq!(check(&sample()), Vec::<(String, String)>::new());
    }

    #[test]
    fn product_from_recipient_with_plus_addressing() {
        let r = sample();
        let p = |to: &[&str]| product_for(&s(to), "Ansible question", "", &r);
        assert_eq!(p(&["support+satellite@vendor.example"]), "satellite");
        assert_eq!(p(&["Satellite@Vendor.example"]), "satellite");
        assert_eq!(p(&["satellite+urgent@vendor.example"]), "satellite");
        assert_eq!(p(&["<satellite-support@vendor.example>"]), "satellite");
        assert_eq!(
            p(&["support@vendor.example", "satellite@vendor.example"]),
            "satellite"
        );
        // Not a product address: keywords decide.
        assert_eq!(p(&["satellite-team@vendor.example"]), "ansible");
    }

    #[test]
    fn product_from_keywords_subject_first_else_default() {
        let r = sample();
        let p = |subject: &str, body: &str| {
            product_for(&s(&["support@vendor.example"]), subject, body, &r)
        };
        assert_eq!(
            p(
                "Capsule sync fails",
                "The playbook that we run on it works."
            ),
            "satellite"
        );
        assert_eq!(p("Help", "Our content view publish fails."), "satellite");
        assert_eq!(p("Help", "Something is broken."), "ansible");
        assert_eq!(p("Help", "It broke.\n> our satellite is fine"), "ansible");
        // "satellites" is not "satellite": whole words only.
        assert_eq!(p("Help", "We track satellites."), "ansible");
    }

    #[test]
    fn a_mailbox_default_product_comes_after_address_and_keyword_rules() {
        let r = sample();
        let p = |to: &[&str], body: &str| product_or(&s(to), "Help", body, Some("satellite"), &r);
        assert_eq!(
            p(&["support@vendor.example"], "Something is broken."),
            "satellite"
        );
        assert_eq!(
            p(&["ansible@vendor.example"], "Something is broken."),
            "ansible"
        );
        assert_eq!(
            p(&["support@vendor.example"], "Our playbook fails."),
            "ansible"
        );
        assert_eq!(
            product_or(&s(&["support@vendor.example"]), "Help", "", None, &r),
            "ansible"
        );
    }

    #[test]
    fn a_mailbox_default_queue_comes_before_catch_all_rules_only() {
        let mut r = sample();
        r.queues
            .push(queue("triage", "ansible", Language::En, "NA"));
        // A rule naming the product, and the Japanese override, are more specific.
        let q = |p: &str, l: Language, r: &Routing| queue_or(p, l, "EMEA", Some("triage"), r);
        assert_eq!(
            q("ansible", Language::En, &r).as_deref(),
            Some("ansible-emea")
        );
        assert_eq!(
            q("satellite", Language::Ja, &r).as_deref(),
            Some("satellite-ja")
        );
        // A catch-all rule is not.
        r.rules.retain(|rule| rule.queue != "ansible-emea");
        r.rules.push(rule(None, None, None, "ansible-na"));
        assert_eq!(q("ansible", Language::En, &r).as_deref(), Some("triage"));
        assert_eq!(
            queue_or("ansible", Language::En, "EMEA", None, &r).as_deref(),
            Some("ansible-na")
        );
    }

    #[test]
    fn region_from_country_else_default() {
        let r = sample();
        assert_eq!(region_for(Some("jp"), &r), "APAC");
        assert_eq!(region_for(Some("DE"), &r), "EMEA");
        assert_eq!(region_for(Some("ZZ"), &r), "NA");
        assert_eq!(region_for(None, &r), "NA");
    }

    #[test]
    fn japanese_goes_to_the_japanese_queue_whatever_the_region() {
        let mut r = sample();
        assert_eq!(
            queue_for("satellite", Language::Ja, "EMEA", &r).as_deref(),
            Some("satellite-ja")
        );
        assert_eq!(
            queue_for("ansible", Language::En, "EMEA", &r).as_deref(),
            Some("ansible-emea")
        );
        r.japanese_queue_any_region = false;
        r.rules.insert(
            0,
            rule(None, Some(Language::Ja), Some("APAC"), "ansible-ja"),
        );
        assert_eq!(
            queue_for("ansible", Language::Ja, "APAC", &r).as_deref(),
            Some("ansible-ja")
        );
        assert_eq!(queue_for("ansible", Language::Ja, "EMEA", &r), None);
    }

    #[test]
    fn dead_ends_are_reported_per_combination() {
        let mut r = sample();
        r.japanese_queue_any_region = false;
        r.rules.retain(|x| x.queue != "satellite-emea");
        let found = check(&r);
        assert!(found.contains(&(
            "rules".into(),
            "no queue for product \"satellite\", language \"en\", region \"EMEA\"".into()
        )));
        // 2 products x 3 regions in Japanese, plus satellite/en/EMEA.
        assert_eq!(
            found
                .iter()
                .filter(|(_, m)| m.starts_with("no queue"))
                .count(),
            7,
            "{found:?}"
        );
    }

    #[test]
    fn unknown_names_are_reported_by_key() {
        let mut r = sample();
        r.rules[3].queue = "x".into();
        r.rules
            .push(rule(Some("rhel"), None, Some("LATAM"), "ansible-na"));
        r.queues[0].region = "MARS".into();
        r.default_product = "tower".into();
        let found = check(&r);
        for (k, m) in [
            ("rules[3].queue", "unknown queue \"x\""),
            ("rules[6].product", "unknown product \"rhel\""),
            ("default_product", "unknown product \"tower\""),
        ] {
            assert!(found.contains(&(k.into(), m.into())), "{k}: {found:?}");
        }
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "rules[6].region" && m.starts_with("unknown region \"LATAM\""))
        );
        assert!(found.iter().any(|(k, _)| k == "queues[0].region"));
    }

    #[test]
    fn shadowed_rules_are_unreachable() {
        let mut r = sample();
        r.rules
            .insert(0, rule(Some("ansible"), None, None, "ansible-na"));
        r.rules
            .push(rule(None, Some(Language::Ja), None, "ansible-ja"));
        let found = check(&r);
        let unreachable: Vec<&String> = found
            .iter()
            .filter(|(_, m)| m.starts_with("unreachable"))
            .map(|(k, _)| k)
            .collect();
        // The three ansible/en rules (now 1..=3) and the trailing Japanese rule.
        assert_eq!(
            unreachable,
            vec!["rules[1]", "rules[2]", "rules[3]", "rules[7]"],
            "{found:?}"
        );
        let last = found.iter().find(|(k, _)| k == "rules[7]").unwrap();
        assert!(last.1.contains("the Japanese queue"), "{last:?}");
    }

    #[test]
    fn a_catch_all_after_specific_rules_is_reachable() {
        let mut r = sample();
        r.rules.retain(|x| x.queue != "satellite-emea");
        r.rules.push(rule(None, None, None, "ansible-na"));
        assert_eq!(check(&r), Vec::<(String, String)>::new());
    }

    #[test]
    fn a_second_japanese_queue_and_duplicate_addresses_are_reported() {
        let mut r = sample();
        r.queues
            .push(queue("ansible-ja2", "ansible", Language::Ja, "APAC"));
        r.products[1].addresses.push("ANSIBLE".into());
        let found = check(&r);
        assert!(found.iter().any(|(k, _)| k == "queues[8]"), "{found:?}");
        assert!(
            found.iter().any(|(k, _)| k == "products[1].addresses[2]"),
            "{found:?}"
        );
    }
}
