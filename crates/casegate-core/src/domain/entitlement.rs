//! The contract check (DESIGN §1 "Contract check"): only customers with a paid
//! subscription covering the product get support.
//!
//! Matching: the sender's exact contact address (case-insensitive), or the sender's
//! domain or a parent domain of it (`ops.tokyo.acme.co.jp` matches `acme.co.jp`).
//! Contract domains are registrable domains and are compared by whole labels, so
//! `evilacme.co.jp` never matches `acme.co.jp`. A free-mail domain never matches.
//!
//! When several contracts match, the best outcome for the customer wins, because one
//! valid contract is enough to be entitled: entitled > not covered > expired > not
//! yet started. At an equal outcome a contact match beats a domain match (it names
//! this very person), then the more specific domain, then the later end date, then
//! the contract id: the choice is deterministic.
//!
//! Dates are judged on the receipt date (IMAP INTERNALDATE, in the caller's chosen
//! time zone): the end date is the last covered day. A contract whose start date is
//! still ahead is not in force: the verdict is `NoContract` (the refusal says "no
//! active contract", not "expired"), with that contract attached so the event log can
//! say which contract starts when.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One support contract (a row of the contracts CSV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub account: String,
    pub contract_id: String,
    /// SLA tier, e.g. "premium"; its meaning comes from the SLA configuration.
    pub tier: String,
    /// Product names, lower-case.
    pub products: Vec<String>,
    /// Registrable domains, lower-case.
    pub domains: Vec<String>,
    /// Contact addresses, lower-case.
    pub contacts: Vec<String>,
    /// ISO 3166-1 alpha-2, upper-case.
    pub country: String,
    /// First covered day.
    pub start: NaiveDate,
    /// Last covered day.
    pub end: NaiveDate,
}

impl Contract {
    pub fn covers(&self, product: &str) -> bool {
        self.products
            .iter()
            .any(|p| p.eq_ignore_ascii_case(product))
    }

    /// Whether it still covers a day after `day`: ending it on `day` changes it.
    pub fn runs_after(&self, day: NaiveDate) -> bool {
        self.end > day
    }

    /// Where the contract stands on day `on` (the end date is the last covered day).
    pub fn standing(&self, on: NaiveDate) -> Standing {
        if on < self.start {
            Standing::Future
        } else if on > self.end {
            Standing::Expired
        } else {
            Standing::Active
        }
    }
}

/// A contract's standing on a given day, as `contracts list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Its first covered day is still ahead.
    Future,
    Active,
    /// Its last covered day is past.
    Expired,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Future => "future",
            Standing::Active => "active",
            Standing::Expired => "expired",
        }
    }
}

/// What importing `file` over the `current` contracts changes, contract by contract.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportChanges<'a> {
    /// In the file, not yet known.
    pub new: Vec<&'a Contract>,
    /// Known, and the file changes them: (as they are, as the file has them).
    pub updated: Vec<(&'a Contract, &'a Contract)>,
    pub unchanged: usize,
    /// With `replace`: known, missing from the file, and still covering a day after
    /// `last_day`, so they end on it.
    pub ended: Vec<&'a Contract>,
}

/// Compare an import with the contracts there are. With `replace` (a last covered day)
/// the file is the whole list: a contract missing from it ends on that day (one that
/// ends by then already is left alone).
pub fn import_changes<'a>(
    current: &'a [Contract],
    file: &'a [Contract],
    replace: Option<NaiveDate>,
) -> ImportChanges<'a> {
    let by_id: std::collections::HashMap<&str, &Contract> = current
        .iter()
        .map(|c| (c.contract_id.as_str(), c))
        .collect();
    let mut out = ImportChanges::default();
    for c in file {
        match by_id.get(c.contract_id.as_str()) {
            None => out.new.push(c),
            Some(old) if *old == c => out.unchanged += 1,
            Some(old) => out.updated.push((old, c)),
        }
    }
    if let Some(last_day) = replace {
        let in_file: std::collections::HashSet<&str> =
            file.iter().map(|c| c.contract_id.as_str()).collect();
        out.ended = current
            .iter()
            .filter(|c| !in_file.contains(c.contract_id.as_str()) && c.runs_after(last_day))
            .collect();
    }
    out
}

/// The outcome recorded on a case (`entitlement` in `cases show --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entitlement {
    Entitled,
    NoContract,
    Expired,
    NotCovered,
    /// Decided by `domain::scope`, never by [`check`].
    OutOfScope,
}

impl Entitlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Entitlement::Entitled => "entitled",
            Entitlement::NoContract => "no_contract",
            Entitlement::Expired => "expired",
            Entitlement::NotCovered => "not_covered",
            Entitlement::OutOfScope => "out_of_scope",
        }
    }

    /// The entitlement [`Entitlement::as_str`] names, if any.
    pub fn parse(s: &str) -> Option<Entitlement> {
        [
            Entitlement::Entitled,
            Entitlement::NoContract,
            Entitlement::Expired,
            Entitlement::NotCovered,
            Entitlement::OutOfScope,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// How the deciding contract was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Contact,
    Domain,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Contact => "contact",
            MatchedBy::Domain => "domain",
        }
    }
}

/// The contract check's result: the outcome and the contract that decided it (none
/// when nothing matched).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub entitlement: Entitlement,
    pub contract: Option<Contract>,
    pub matched_by: Option<MatchedBy>,
}

/// Check `sender` (an address) for `product` on the receipt date `received_on`.
pub fn check(
    sender: &str,
    product: &str,
    contracts: &[Contract],
    is_free_mail: impl Fn(&str) -> bool,
    received_on: NaiveDate,
) -> Verdict {
    let sender = sender.trim().to_lowercase();
    let domain = sender
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.'))
        .unwrap_or("");
    let best = contracts
        .iter()
        .filter_map(|c| how_matched(c, &sender, domain, &is_free_mail).map(|m| (c, m)))
        .map(|(c, m)| (rank(c, m, product, received_on), c, m))
        .min_by(|a, b| a.0.cmp(&b.0));
    match best {
        None => Verdict {
            entitlement: Entitlement::NoContract,
            contract: None,
            matched_by: None,
        },
        Some((key, c, m)) => Verdict {
            entitlement: key.0.entitlement(),
            contract: Some(c.clone()),
            matched_by: Some(m.0),
        },
    }
}

/// How a contract matches, with the specificity (labels) of a domain match.
#[derive(Debug, Clone, Copy)]
struct Match(MatchedBy, usize);

fn how_matched(
    c: &Contract,
    sender: &str,
    domain: &str,
    is_free_mail: &impl Fn(&str) -> bool,
) -> Option<Match> {
    if c.contacts.iter().any(|a| a.eq_ignore_ascii_case(sender)) {
        return Some(Match(MatchedBy::Contact, usize::MAX));
    }
    c.domains
        .iter()
        .filter(|d| is_within(domain, d) && !is_free_mail(d) && !is_free_mail(domain))
        .map(|d| Match(MatchedBy::Domain, d.split('.').count()))
        .max_by_key(|m| m.1)
}

/// `domain` is `registrable` or one of its subdomains, by whole labels.
pub fn is_within(domain: &str, registrable: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let r = registrable.trim_start_matches('.').to_ascii_lowercase();
    // A bare label ("jp", "com") is never a company's domain.
    r.contains('.') && (d == r || d.ends_with(&format!(".{r}")))
}

/// A contract's state on the receipt date, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Entitled,
    NotCovered,
    Expired,
    NotStarted,
}

impl State {
    fn entitlement(self) -> Entitlement {
        match self {
            State::Entitled => Entitlement::Entitled,
            State::NotCovered => Entitlement::NotCovered,
            State::Expired => Entitlement::Expired,
            State::NotStarted => Entitlement::NoContract,
        }
    }
}

fn state(c: &Contract, product: &str, on: NaiveDate) -> State {
    match c.standing(on) {
        Standing::Future => State::NotStarted,
        Standing::Expired => State::Expired,
        Standing::Active if c.covers(product) => State::Entitled,
        Standing::Active => State::NotCovered,
    }
}

/// Sort key, smallest best: outcome, contact before domain, more specific domain,
/// later end date, contract id.
type Rank = (
    State,
    u8,
    std::cmp::Reverse<usize>,
    std::cmp::Reverse<NaiveDate>,
    String,
);

fn rank(c: &Contract, m: Match, product: &str, on: NaiveDate) -> Rank {
    let by = match m.0 {
        MatchedBy::Contact => 0,
        MatchedBy::Domain => 1,
    };
    (
        state(c, product, on),
        by,
        std::cmp::Reverse(m.1),
        std::cmp::Reverse(c.end),
        c.contract_id.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn contract(
        id: &str,
        domains: &[&str],
        contacts: &[&str],
        products: &[&str],
        start: &str,
        end: &str,
    ) -> Contract {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Contract {
            account: format!("Account {id}"),
            contract_id: id.into(),
            tier: "premium".into(),
            products: v(products),
            domains: v(domains),
            contacts: v(contacts),
            country: "JP".into(),
            start: d(start),
            end: d(end),
        }
    }

    #[test]
    fn an_import_names_what_is_new_updated_unchanged_and_ended() {
        let kept = contract(
            "C-1",
            &["a.example"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2030-12-31",
        );
        let changed = contract(
            "C-2",
            &["b.example"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2030-12-31",
        );
        let gone = contract(
            "C-3",
            &["c.example"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2030-12-31",
        );
        let over = contract(
            "C-4",
            &["d.example"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2026-01-31",
        );
        let current = [kept.clone(), changed.clone(), gone.clone(), over.clone()];
        let mut changed_now = changed.clone();
        changed_now.tier = "standard".into();
        let fresh = contract(
            "C-5",
            &["e.example"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2030-12-31",
        );
        let file = [kept, changed_now.clone(), fresh.clone()];
        let last_day = d("2026-06-30");
        let c = import_changes(&current, &file, Some(last_day));
        assert_eq!(c.new, [&fresh]);
        assert_eq!(c.updated, [(&changed, &changed_now)]);
        assert_eq!(c.unchanged, 1);
        // C-4 ends before the last day already: nothing to end.
        assert_eq!(c.ended, [&gone]);
        assert!(import_changes(&current, &file, None).ended.is_empty());
        assert_eq!(over.standing(last_day), Standing::Expired);
        assert_eq!(over.standing(d("2026-01-31")), Standing::Active);
        assert_eq!(over.standing(d("2024-12-31")), Standing::Future);
    }

    fn acme() -> Contract {
        contract(
            "C-1",
            &["acme.co.jp"],
            &["partner@gmail.com"],
            &["ansible"],
            "2025-01-01",
            "2026-03-31",
        )
    }

    fn free(d: &str) -> bool {
        ["gmail.com", "yahoo.co.jp"].contains(&d)
    }

    fn verdict(sender: &str, product: &str, contracts: &[Contract], on: &str) -> Verdict {
        check(sender, product, contracts, free, d(on))
    }

    #[test]
    fn domain_and_subdomains_match_by_whole_labels() {
        let c = [acme()];
        for s in ["taro@acme.co.jp", "Ops@OPS.Tokyo.Acme.co.jp"] {
            let v = verdict(s, "ansible", &c, "2026-01-10");
            assert_eq!(v.entitlement, Entitlement::Entitled, "{s}");
            assert_eq!(v.matched_by, Some(MatchedBy::Domain));
        }
        for s in [
            "x@evilacme.co.jp",
            "x@co.jp",
            "x@acme.co.jp.evil.example",
            "no-at-sign",
        ] {
            assert_eq!(
                verdict(s, "ansible", &c, "2026-01-10").entitlement,
                Entitlement::NoContract,
                "{s}"
            );
        }
    }

    #[test]
    fn bare_labels_never_match_and_public_suffixes_are_refused_at_import() {
        let c = [contract(
            "C-9",
            &["jp", "co.jp"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2027-01-01",
        )];
        assert!(is_within("a.co.jp", "co.jp")); // two labels look registrable ...
        assert_eq!(
            verdict("x@b.jp", "ansible", &c, "2026-01-10").entitlement,
            Entitlement::NoContract
        );
        // ... which is why contracts_csv rejects known public suffixes such as co.jp.
    }

    #[test]
    fn free_mail_never_matches_by_domain_but_a_listed_contact_does() {
        let mut c = acme();
        c.domains.push("gmail.com".into());
        let c = [c];
        assert_eq!(
            verdict("someone@gmail.com", "ansible", &c, "2026-01-10").entitlement,
            Entitlement::NoContract
        );
        let v = verdict("Partner@Gmail.com", "ansible", &c, "2026-01-10");
        assert_eq!(
            (v.entitlement, v.matched_by),
            (Entitlement::Entitled, Some(MatchedBy::Contact))
        );
    }

    #[test]
    fn the_end_date_is_the_last_covered_day() {
        let c = [acme()];
        assert_eq!(
            verdict("a@acme.co.jp", "ansible", &c, "2026-03-31").entitlement,
            Entitlement::Entitled
        );
        let v = verdict("a@acme.co.jp", "ansible", &c, "2026-04-01");
        assert_eq!(v.entitlement, Entitlement::Expired);
        assert_eq!(v.contract.unwrap().contract_id, "C-1");
        assert_eq!(
            verdict("a@acme.co.jp", "ansible", &c, "2025-01-01").entitlement,
            Entitlement::Entitled
        );
    }

    #[test]
    fn a_contract_not_yet_started_is_no_contract_with_the_contract_attached() {
        let c = [contract(
            "C-2",
            &["acme.co.jp"],
            &[],
            &["ansible"],
            "2026-06-01",
            "2027-05-31",
        )];
        let v = verdict("a@acme.co.jp", "ansible", &c, "2026-05-31");
        assert_eq!(v.entitlement, Entitlement::NoContract);
        assert_eq!(v.contract.unwrap().contract_id, "C-2");
    }

    #[test]
    fn a_product_not_covered_is_not_covered() {
        let v = verdict("a@acme.co.jp", "satellite", &[acme()], "2026-01-10");
        assert_eq!(v.entitlement, Entitlement::NotCovered);
        assert_eq!(
            verdict("a@acme.co.jp", "ANSIBLE", &[acme()], "2026-01-10").entitlement,
            Entitlement::Entitled
        );
    }

    #[test]
    fn the_best_outcome_wins_among_several_contracts() {
        let expired = contract(
            "C-0",
            &["acme.co.jp"],
            &[],
            &["ansible", "satellite"],
            "2020-01-01",
            "2024-12-31",
        );
        let ansible_only = acme();
        let satellite = contract(
            "C-3",
            &["tokyo.acme.co.jp"],
            &[],
            &["satellite"],
            "2025-01-01",
            "2026-12-31",
        );
        let all = [expired.clone(), ansible_only.clone(), satellite.clone()];
        let v = verdict("a@ops.tokyo.acme.co.jp", "satellite", &all, "2026-01-10");
        assert_eq!(
            (v.entitlement, v.contract.unwrap().contract_id),
            (Entitlement::Entitled, "C-3".into())
        );
        // Headquarters are not covered by the subsidiary's contract: active but not covering beats expired.
        let v = verdict("a@acme.co.jp", "satellite", &all, "2026-01-10");
        assert_eq!(
            (v.entitlement, v.contract.unwrap().contract_id),
            (Entitlement::NotCovered, "C-1".into())
        );
        // Order of the input does not matter.
        let reversed = [satellite, ansible_only, expired];
        let v = verdict("a@acme.co.jp", "satellite", &reversed, "2026-01-10");
        assert_eq!(v.contract.unwrap().contract_id, "C-1");
    }

    #[test]
    fn at_equal_outcome_contact_beats_domain_then_later_end() {
        let by_domain = contract(
            "C-5",
            &["acme.co.jp"],
            &[],
            &["ansible"],
            "2025-01-01",
            "2027-01-01",
        );
        let by_contact = contract(
            "C-6",
            &[],
            &["taro@acme.co.jp"],
            &["ansible"],
            "2025-01-01",
            "2026-06-01",
        );
        let v = verdict(
            "taro@acme.co.jp",
            "ansible",
            &[by_domain.clone(), by_contact],
            "2026-01-10",
        );
        assert_eq!(
            (v.contract.unwrap().contract_id, v.matched_by),
            ("C-6".into(), Some(MatchedBy::Contact))
        );
        let v = verdict(
            "hanako@acme.co.jp",
            "ansible",
            &[acme(), by_domain],
            "2026-01-10",
        );
        assert_eq!(v.contract.unwrap().contract_id, "C-5");
    }

    #[test]
    fn strangers_have_no_contract() {
        let v = verdict("x@stranger.example", "ansible", &[acme()], "2026-01-10");
        assert_eq!(
            v,
            Verdict {
                entitlement: Entitlement::NoContract,
                contract: None,
                matched_by: None
            }
        );
    }

    #[test]
    fn outcomes_have_stable_names() {
        assert_eq!(Entitlement::OutOfScope.as_str(), "out_of_scope");
        assert_eq!(
            serde_json::to_string(&Entitlement::NotCovered).unwrap(),
            "\"not_covered\""
        );
    }
}
