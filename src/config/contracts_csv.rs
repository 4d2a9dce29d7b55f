//! The contracts file (`casegate contracts import FILE`): CSV with a header row.
//!
//! Columns (header names case-insensitive, any order; spaces and dashes count as
//! underscores, so "Contract ID" is `contract_id`): `account`, `contract_id`, `tier`,
//! `products`, `domains`, `contacts` (also `contact_addresses`), `country`, `start`
//! (also `start_date`), `end` (also `end_date`). Multi-valued cells (products, domains,
//! contacts) are separated by `;`, `,` or whitespace. Dates are `YYYY-MM-DD`; `end` is
//! the last covered day. Lines starting with `#` are comments; a UTF-8 BOM is allowed.
//!
//! All or nothing: every row is validated and every problem reported with its line
//! number (the header is line 1), and a file with any bad row imports nothing, so an
//! admin never ends up with half a contract list.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::NaiveDate;
use csv::{ReaderBuilder, StringRecord, Trim};

use crate::domain::entitlement::Contract;

/// One problem in the file, e.g. `line 7: end date "2026-13-01" is not a date (YYYY-MM-DD)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number where the row starts (the header is line 1).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RowError {}

/// The columns, in the order [`Contract`] lists them.
pub const COLUMNS: [&str; 9] = [
    "account",
    "contract_id",
    "tier",
    "products",
    "domains",
    "contacts",
    "country",
    "start",
    "end",
];

/// What a contract must agree with to be served: the SLA tiers (`sla.policies`), the
/// routing file's products and the free-mail providers (`gateway.free_mail_domains`).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Tiers with an SLA policy, lower-case.
    pub tiers: BTreeSet<String>,
    /// Products of the routing file, lower-case; empty when it could not be read (then
    /// products are not checked: the routing file's own problems are reported).
    pub products: BTreeSet<String>,
    /// Free-mail domains, lower-case: never a company's domain.
    pub free_mail: BTreeSet<String>,
}

impl Known {
    /// What the loaded configuration knows.
    pub fn of(config: &crate::config::Config) -> Known {
        Known::from_parts(
            &config.sla.policies,
            &config.routing,
            &config.gateway.free_mail_domains,
        )
    }

    pub fn from_parts(
        policies: &crate::domain::sla::Policies,
        routing: &crate::domain::routing::Routing,
        free_mail: &[String],
    ) -> Known {
        Known {
            tiers: policies.iter().map(|(t, _, _)| t.to_string()).collect(),
            products: routing.products.iter().map(|p| p.name.clone()).collect(),
            free_mail: free_mail.iter().map(|d| d.to_lowercase()).collect(),
        }
    }

    /// Every reason the contract cannot be served as written.
    fn problems(&self, c: &Contract) -> Vec<String> {
        let mut out = Vec::new();
        if !c.tier.is_empty() && !self.tiers.contains(&c.tier) {
            out.push(format!(
                "tier \"{}\" has no SLA policy (sla.policies.{}; known: {})",
                c.tier,
                c.tier,
                self.tiers.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.products.is_empty() {
            for p in c.products.iter().filter(|p| !self.products.contains(*p)) {
                out.push(format!(
                    "unknown product \"{p}\" (the routing file has: {})",
                    self.products.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for d in &c.domains {
            let free = self
                .free_mail
                .iter()
                .any(|f| crate::domain::entitlement::is_within(d, f));
            if free {
                out.push(format!(
                    "domain \"{d}\" is a free-mail provider, never a company's domain (list the people as contacts instead)"
                ));
            }
        }
        out
    }
}

/// ISO 3166-1 alpha-2 country codes.
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Parse and validate a whole contracts file, and check every contract against what the
/// configuration can serve (tier, products, company domains).
pub fn check_contracts(text: &str, known: &Known) -> Result<Vec<Contract>, Vec<RowError>> {
    parse(text, Some(known))
}

/// Parse and validate a whole contracts file on its own, without a configuration to
/// check it against (the format's unit tests and its fuzz target).
pub fn parse_contracts(text: &str) -> Result<Vec<Contract>, Vec<RowError>> {
    parse(text, None)
}

fn parse(text: &str, known: Option<&Known>) -> Result<Vec<Contract>, Vec<RowError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(vec![csv_error(text, &e)]),
        None => {
            return Err(vec![RowError {
                line: 1,
                message: "missing header row".into(),
            }]);
        }
    };
    let columns = header_columns(&header, line_of(text, &header))?;
    let mut rows = Rows {
        known,
        columns,
        width: header.len(),
        errors: Vec::new(),
        seen: HashMap::new(),
        contracts: Vec::new(),
    };
    for record in records {
        match record {
            Ok(r) => rows.add(&r, line_of(text, &r)),
            Err(e) => rows.errors.push(csv_error(text, &e)),
        }
    }
    if rows.errors.is_empty() {
        Ok(rows.contracts)
    } else {
        Err(rows.errors)
    }
}

/// The file line a record starts on. The csv crate's own line count skips blank and
/// comment lines, and its byte offset points before them, so count from the offset.
fn line_of(text: &str, record: &StringRecord) -> usize {
    record
        .position()
        .map_or(1, |p| line_at(text, p.byte() as usize))
}

fn line_at(text: &str, byte: usize) -> usize {
    let mut at = byte.min(text.len());
    while let Some(rest) = text.get(at..) {
        let line = rest.split('\n').next().unwrap_or("");
        let skipped = line.trim_end_matches('\r').is_empty() || line.starts_with('#');
        if !skipped || at + line.len() >= text.len() {
            break;
        }
        at += line.len() + 1;
    }
    1 + text[..at].bytes().filter(|b| *b == b'\n').count()
}

fn csv_error(text: &str, e: &csv::Error) -> RowError {
    let line = e.position().map_or(1, |p| line_at(text, p.byte() as usize));
    RowError {
        line,
        message: format!("cannot read CSV: {e}"),
    }
}

/// Column positions of [`COLUMNS`] in the header, or every header problem.
fn header_columns(header: &StringRecord, line: usize) -> Result<[usize; 9], Vec<RowError>> {
    let mut found: [Option<usize>; 9] = [None; 9];
    let mut errors = Vec::new();
    let mut err = |message: String| errors.push(RowError { line, message });
    for (pos, name) in header.iter().enumerate() {
        match column_index(name) {
            None => err(format!(
                "unknown column \"{name}\" (expected: {})",
                COLUMNS.join(", ")
            )),
            Some(i) if found[i].is_some() => err(format!("duplicate column \"{name}\"")),
            Some(i) => found[i] = Some(pos),
        }
    }
    for (i, f) in found.iter().enumerate() {
        if f.is_none() {
            err(format!("missing column \"{}\"", COLUMNS[i]));
        }
    }
    if errors.is_empty() {
        Ok(found.map(|f| f.unwrap_or_default()))
    } else {
        Err(errors)
    }
}

fn column_index(name: &str) -> Option<usize> {
    let n = name.trim().to_lowercase().replace([' ', '-'], "_");
    let n = match n.as_str() {
        "contact_addresses" | "contact" => "contacts",
        "start_date" => "start",
        "end_date" => "end",
        "product" => "products",
        "domain" => "domains",
        other => other,
    };
    COLUMNS.iter().position(|c| *c == n)
}

/// Rows accumulated so far, with every error and the line of each contract id.
struct Rows<'k> {
    known: Option<&'k Known>,
    columns: [usize; 9],
    width: usize,
    errors: Vec<RowError>,
    seen: HashMap<String, usize>,
    contracts: Vec<Contract>,
}

impl Rows<'_> {
    fn add(&mut self, record: &StringRecord, line: usize) {
        if record.len() != self.width {
            let message = format!("expected {} fields, found {}", self.width, record.len());
            self.errors.push(RowError { line, message });
            return;
        }
        let mut row = Row {
            record,
            columns: &self.columns,
            problems: Vec::new(),
        };
        let contract = row.contract();
        let mut problems = row.problems;
        if let Some(known) = self.known {
            problems.extend(known.problems(&contract));
        }
        if let Some(first) = self.seen.get(&contract.contract_id) {
            problems.push(format!(
                "duplicate contract_id \"{}\" (first on line {first})",
                contract.contract_id
            ));
        } else if !contract.contract_id.is_empty() {
            self.seen.insert(contract.contract_id.clone(), line);
        }
        self.errors.extend(
            problems
                .into_iter()
                .map(|message| RowError { line, message }),
        );
        self.contracts.push(contract);
    }
}

/// One data row being validated; `problems` collects every fault in it.
struct Row<'a> {
    record: &'a StringRecord,
    columns: &'a [usize; 9],
    problems: Vec<String>,
}

impl Row<'_> {
    fn cell(&self, column: usize) -> &str {
        self.record.get(self.columns[column]).unwrap_or("")
    }

    fn contract(&mut self) -> Contract {
        let c = Contract {
            account: self.required(0),
            contract_id: self.required(1),
            tier: self.required(2).to_lowercase(),
            products: self.products(),
            domains: self.domains(),
            contacts: self.contacts(),
            country: self.country(),
            start: self.date(7, "start"),
            end: self.date(8, "end"),
        };
        if c.domains.is_empty() && c.contacts.is_empty() {
            self.problems
                .push("a contract needs at least one domain or contact".into());
        }
        if c.end < c.start && c.start != NaiveDate::MIN && c.end != NaiveDate::MIN {
            self.problems.push(format!(
                "end date {} is before start date {}",
                c.end, c.start
            ));
        }
        c
    }

    fn required(&mut self, column: usize) -> String {
        let v = self.cell(column).to_string();
        if v.is_empty() {
            self.problems.push(format!("{} is empty", COLUMNS[column]));
        }
        v
    }

    fn list(&self, column: usize) -> Vec<String> {
        self.cell(column)
            .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    fn products(&mut self) -> Vec<String> {
        let v = self.list(3);
        if v.is_empty() {
            self.problems.push("products is empty".into());
        }
        v
    }

    fn domains(&mut self) -> Vec<String> {
        let v: Vec<String> = self
            .list(4)
            .into_iter()
            .map(|d| d.trim_start_matches('@').trim_end_matches('.').to_string())
            .collect();
        for d in &v {
            if let Some(why) = domain_problem(d) {
                self.problems.push(format!("domain \"{d}\" {why}"));
            }
        }
        v
    }

    fn contacts(&mut self) -> Vec<String> {
        let v = self.list(5);
        for a in &v {
            let ok = a
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && is_domain_name(d));
            if !ok {
                self.problems
                    .push(format!("contact \"{a}\" is not an email address"));
            }
        }
        v
    }

    fn country(&mut self) -> String {
        let raw = self.cell(6);
        let c = raw.to_ascii_uppercase();
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            self.problems.push(format!(
                "country \"{raw}\" is not an ISO 3166 alpha-2 code (e.g. JP)"
            ));
        } else if COUNTRIES.binary_search(&c.as_str()).is_err() {
            self.problems.push(format!(
                "unknown country code \"{raw}\" (not in ISO 3166; e.g. GB, JP, US)"
            ));
        }
        c
    }

    /// A date, or `NaiveDate::MIN` after recording the problem.
    fn date(&mut self, column: usize, what: &str) -> NaiveDate {
        let raw = self.cell(column);
        match parse_date(raw) {
            Some(d) => d,
            None => {
                self.problems
                    .push(format!("{what} date \"{raw}\" is not a date (YYYY-MM-DD)"));
                NaiveDate::MIN
            }
        }
    }
}

/// Strictly `YYYY-MM-DD`: "2026-1-5" is refused too, as it is ambiguous to the eye.
fn parse_date(raw: &str) -> Option<NaiveDate> {
    let shape = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// Public suffixes people are likely to type by mistake: a contract lists the
/// company's registrable domain, and matching on `co.jp` would match every company.
const PUBLIC_SUFFIXES: &[&str] = &[
    "co.jp", "ne.jp", "or.jp", "ac.jp", "ad.jp", "ed.jp", "go.jp", "gr.jp", "lg.jp", "com.au",
    "net.au", "org.au", "edu.au", "gov.au", "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk",
    "com.cn", "net.cn", "org.cn", "com.sg", "edu.sg", "com.br", "com.mx", "co.kr", "or.kr",
    "co.in", "co.nz", "com.tw", "com.hk", "co.za", "com.sa", "co.il", "com.tr", "co.th", "com.my",
    "co.id",
];

/// Why `d` cannot be a company's registrable domain, if it cannot.
fn domain_problem(d: &str) -> Option<&'static str> {
    if !is_domain_name(d) {
        Some("is not a domain name")
    } else if PUBLIC_SUFFIXES.contains(&d) {
        Some("is a public suffix, not a company's domain")
    } else {
        None
    }
}

/// Two labels or more, each letters, digits and inner dashes.
fn is_domain_name(d: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    d.split('.').count() >= 2 && d.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
account,contract_id,tier,products,domains,contacts,country,start,end
ACME Corporation,C-1001,Premium,ansible;satellite,acme.co.jp,it-ops@acme.co.jp;partner@gmail.com,jp,2025-04-01,2026-03-31
Kangaroo Pty,C-2001,standard,ansible,kangaroo.com.au,,AU,2025-07-01,2026-06-30
";

    #[test]
    fn good_file_parses_and_normalises() {
        let c = parse_contracts(GOOD).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].tier, "premium");
        assert_eq!(c[0].products, vec!["ansible", "satellite"]);
        assert_eq!(
            c[0].contacts,
            vec!["it-ops@acme.co.jp", "partner@gmail.com"]
        );
        assert_eq!(c[0].country, "JP");
        assert_eq!(c[0].end, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        assert!(c[1].contacts.is_empty());
    }

    #[test]
    fn header_is_case_insensitive_in_any_order_with_aliases() {
        let text = "\u{feff}END_DATE,Start Date,Country,Contact Addresses,Domains,Products,Tier,Contract-ID,Account\n\
                    2026-12-31,2026-01-01,DE,\"a@x.de b@x.de\",x.de,ansible,standard,C-1,X GmbH\n";
        let c = parse_contracts(text).unwrap();
        assert_eq!(c[0].contract_id, "C-1");
        assert_eq!(c[0].contacts, vec!["a@x.de", "b@x.de"]);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = "\
account,contract_id,tier,products,domains,contacts,country,start,end
ACME,C-1,premium,ansible,acme.co.jp,,JP,2025-04-01,2026-03-31
# a comment line
Bad Dates,C-2,premium,ansible,bad.example,,JP,2025-04-01,2026-13-01

Dup,C-1,premium,ansible,dup.example,,JP,2025-04-01,2026-03-31
Suffix,C-3,,ansible,co.jp,not-an-address,Japan,2026-04-01,2025-03-31
Short,C-4,premium
";
        let errs = parse_contracts(text).unwrap_err();
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let expected = [
            "line 4: end date \"2026-13-01\" is not a date (YYYY-MM-DD)",
            "line 6: duplicate contract_id \"C-1\" (first on line 2)",
            "line 7: tier is empty",
            "line 7: domain \"co.jp\" is a public suffix, not a company's domain",
            "line 7: contact \"not-an-address\" is not an email address",
            "line 7: country \"Japan\" is not an ISO 3166 alpha-2 code (e.g. JP)",
            "line 7: end date 2025-03-31 is before start date 2026-04-01",
            "line 8: expected 9 fields, found 3",
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn header_problems_are_all_reported_on_the_header_line() {
        let errs = parse_contracts(
            "# comment\n\naccount,contract,tier,tier,products,domains,country,start,end\n",
        )
        .unwrap_err();
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            lines[0].starts_with("line 3: unknown column \"contract\""),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"line 3: duplicate column \"tier\"".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"line 3: missing column \"contract_id\"".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"line 3: missing column \"contacts\"".to_string()),
            "{lines:?}"
        );
        assert_eq!(
            parse_contracts("").unwrap_err()[0].to_string(),
            "line 1: missing header row"
        );
    }

    #[test]
    fn a_contract_needs_a_domain_or_a_contact_and_real_dates() {
        let text = "account,contract_id,tier,products,domains,contacts,country,start,end\nX,C-1,premium,ansible,,,US,2026-1-5,2026-02-30\n";
        let lines: Vec<String> = parse_contracts(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "line 2: start date \"2026-1-5\" is not a date (YYYY-MM-DD)",
                "line 2: end date \"2026-02-30\" is not a date (YYYY-MM-DD)",
                "line 2: a contract needs at least one domain or contact",
            ]
        );
    }

    #[test]
    fn line_numbers_count_multi_line_cells() {
        let text = "account,contract_id,tier,products,domains,contacts,country,start,end\n\
                    \"Two\nLines\",C-1,premium,ansible,a.example,,US,2026-01-01,2026-12-31\n\
                    X,C-2,premium,ansible,b.example,,US,2026-01-01,bad\n";
        assert_eq!(parse_contracts(text).unwrap_err()[0].line, 4);
    }

    #[test]
    fn contracts_nobody_can_serve_are_named_by_line() {
        let known = Known {
            tiers: ["premium", "standard"].map(String::from).into(),
            products: ["ansible", "satellite"].map(String::from).into(),
            free_mail: ["gmail.com"].map(String::from).into(),
        };
        let text = "account,contract_id,tier,products,domains,contacts,country,start,end\n\
                    A,C-1,platinum,ansible,a.example,,US,2026-01-01,2026-12-31\n\
                    B,C-2,premium,ansibel,b.example,,US,2026-01-01,2026-12-31\n\
                    C,C-3,premium,ansible,c.example,,XX,2026-01-01,2026-12-31\n\
                    D,C-4,premium,ansible,gmail.com,,US,2026-01-01,2026-12-31\n\
                    E,C-5,standard,satellite,e.example,,JP,2026-01-01,2026-12-31\n";
        let lines: Vec<String> = check_contracts(text, &known)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("line 2: tier \"platinum\" has no SLA policy"));
        assert!(lines[1].starts_with("line 3: unknown product \"ansibel\""));
        assert!(lines[2].starts_with("line 4: unknown country code \"XX\""));
        assert!(lines[3].starts_with("line 5: domain \"gmail.com\" is a free-mail provider"));
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../config/contracts.example.csv");
        assert!(parse_contracts(text).unwrap().len() >= 5);
    }
}
