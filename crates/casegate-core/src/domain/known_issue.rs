//! Known issues (the admins' `known_issues.toml`) and a case's resolution path.
//!
//! An engineer answers a known issue by its id (`#known AAP-1234 fixed-in 2.14.2`), so
//! the link and title the customer reads come from one reviewed file, not from
//! whatever the engineer typed. The file is read by `config`; the rules here only look
//! issues up, compare versions and suggest the nearest id for a typo.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use super::language::Language;

/// One issue of the known-issues file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownIssue {
    /// As written in the file (`AAP-1234`); looked up case-insensitively.
    pub id: String,
    pub title: String,
    /// Versions the issue affects, as written (`2.14.0`, `2.14.1`).
    pub affected: Vec<String>,
    /// The first version with the fix; `None` while there is none.
    pub fixed_in: Option<Version>,
    /// Where the customer reads about it (http or https).
    pub link: String,
    /// The reviewed workaround text, English and Japanese; `None` when there is none.
    pub workaround: Option<Workaround>,
}

/// A workaround in both languages casegate answers in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workaround {
    pub en: String,
    pub ja: String,
}

impl Workaround {
    pub fn text(&self, language: Language) -> &str {
        match language {
            Language::Ja => &self.ja,
            Language::En => &self.en,
        }
    }
}

/// Every known issue; empty when no file is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownIssues {
    pub issues: Vec<KnownIssue>,
}

impl KnownIssues {
    /// The issue with this id (ASCII case ignored: engineers type `aap-1234`).
    pub fn get(&self, id: &str) -> Option<&KnownIssue> {
        self.issues.iter().find(|i| i.id.eq_ignore_ascii_case(id))
    }

    /// The nearest id to a mistyped one (at most two edits, or a shared number).
    pub fn suggest(&self, id: &str) -> Option<&str> {
        let lower = id.to_ascii_lowercase();
        self.issues
            .iter()
            .map(|i| {
                (
                    super::commands::edit_distance(&lower, &i.id.to_ascii_lowercase()),
                    i,
                )
            })
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d)
            .map(|(_, i)| i.id.as_str())
    }

    /// The error for an id that is not in the file, with the nearest one when close.
    pub fn unknown(&self, id: &str) -> String {
        match self.suggest(id) {
            Some(near) => format!("{id}: not in the known issues file — did you mean \"{near}\"?"),
            None if self.issues.is_empty() => {
                format!("{id}: not in the known issues file (it lists no issues)")
            }
            None => format!("{id}: not in the known issues file"),
        }
    }
}

/// A product version: dot-separated numbers (`2.14.2`), compared number by number, a
/// missing part counting as 0 (`2.14` = `2.14.0`). Written as given.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    parts: Vec<u64>,
}

impl Version {
    /// `None` unless the text is numbers separated by dots (an optional leading `v`).
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let digits = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let parts = digits
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse::<u64>().ok())
                    .flatten()
            })
            .collect::<Option<Vec<u64>>>()?;
        Some(Version {
            text: t.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        (0..n)
            .map(|i| {
                let a = self.parts.get(i).copied().unwrap_or(0);
                let b = other.parts.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a case was (or is being) resolved: one of the paths support works by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// A known issue with a fix: the customer was asked to upgrade.
    Upgrade,
    /// A known issue without a fix yet: a workaround, the case waits for the fix.
    Workaround,
    /// A new problem, filed with the development team.
    NewBug,
    /// Advice or a how-to answer: nothing was broken in the product.
    Advice,
    /// The product behaved as designed; no fault found.
    NoFaultFound,
}

impl Resolution {
    pub const ALL: [Resolution; 5] = [
        Resolution::Upgrade,
        Resolution::Workaround,
        Resolution::NewBug,
        Resolution::Advice,
        Resolution::NoFaultFound,
    ];

    /// The name stored in `cases.resolution` and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Upgrade => "upgrade",
            Resolution::Workaround => "workaround",
            Resolution::NewBug => "new_bug",
            Resolution::Advice => "advice",
            Resolution::NoFaultFound => "no_fault_found",
        }
    }

    /// The stored name, or the command's spelling (`no-fault-found`, `new-bug`).
    pub fn parse(name: &str) -> Option<Resolution> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Resolution::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl Serialize for Resolution {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(v("2.14.10") > v("2.14.2"));
        assert_eq!(v("2.14"), v("2.14.0"));
        assert!(v("v3") > v("2.99.99"));
        assert_eq!(v("v2.1").as_str(), "v2.1");
        for bad in ["", "2..1", "2.x", "2.14-rc1", "1.", " "] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lookup_ignores_case_and_suggests_near_ids() {
        let issues = KnownIssues {
            issues: vec![KnownIssue {
                id: "AAP-1234".into(),
                title: "t".into(),
                affected: vec![],
                fixed_in: None,
                link: "https://x/1".into(),
                workaround: None,
            }],
        };
        assert!(issues.get("aap-1234").is_some());
        assert_eq!(issues.suggest("AAP-1243"), Some("AAP-1234"));
        assert_eq!(issues.suggest("XYZ-9"), None);
        assert!(
            issues
                .unknown("AAP-124")
                .contains("did you mean \"AAP-1234\"")
        );
    }

    #[test]
    fn resolution_names_round_trip() {
        for r in Resolution::ALL {
            assert_eq!(Resolution::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            Resolution::parse("No-Fault-Found"),
            Some(Resolution::NoFaultFound)
        );
        assert_eq!(Resolution::parse("fixed"), None);
    }
}
