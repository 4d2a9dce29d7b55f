//! SLA policies: which clocks a contract tier and a severity buy.
//!
//! A policy holds two clocks, the initial response and the next (ongoing) response,
//! each either around the clock or in business time. The defaults follow a typical
//! open-source subscription vendor's production support terms (Red Hat's published
//! SLA has this shape): premium severity 1 and 2 run around the clock, everything
//! else in business hours; "1 business day" is counted as 8 business hours.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The highest clock accepted from config: one year. Longer clocks are certainly a
/// typo, and bounding them keeps the business-time arithmetic cheap.
pub const MAX_CLOCK_MINUTES: u32 = 365 * 24 * 60;

/// Why a policy cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("severity {0} is not 1-4")]
    Severity(u8),
    #[error("tier name is empty")]
    EmptyTier,
    #[error("{which} clock of {minutes} minutes is out of range (1..={max})", max = MAX_CLOCK_MINUTES)]
    Minutes { which: &'static str, minutes: u32 },
}

/// How a clock's time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// Wall-clock time, 24x7.
    AroundTheClock,
    /// Only the region's business hours (plus the weekend crew's, for its severities).
    BusinessHours,
}

/// One clock: its length and how its time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClockSpec {
    pub minutes: u32,
    pub mode: ClockMode,
}

impl ClockSpec {
    /// `hours` of wall-clock time.
    pub const fn around_the_clock_hours(hours: u32) -> ClockSpec {
        ClockSpec {
            minutes: hours.saturating_mul(60),
            mode: ClockMode::AroundTheClock,
        }
    }

    /// `hours` of business time.
    pub const fn business_hours(hours: u32) -> ClockSpec {
        ClockSpec {
            minutes: hours.saturating_mul(60),
            mode: ClockMode::BusinessHours,
        }
    }

    /// The clock's length as a duration.
    pub fn duration(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.minutes))
    }
}

/// The two clocks of a tier and severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policy {
    /// From receipt of the customer's first mail to the first engineer reply.
    pub initial: ClockSpec,
    /// From each customer update (while the case waits on the engineer) to the next reply.
    pub next: ClockSpec,
}

/// Policies keyed by (tier, severity). Tier names are compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    by_key: BTreeMap<(String, u8), Policy>,
}

impl Policies {
    /// No policies at all.
    pub fn new() -> Policies {
        Policies::default()
    }

    /// Registers the policy of a tier and severity, returning the one it replaces.
    pub fn insert(
        &mut self,
        tier: &str,
        severity: u8,
        policy: Policy,
    ) -> Result<Option<Policy>, PolicyError> {
        let tier = tier_key(tier);
        if tier.is_empty() {
            return Err(PolicyError::EmptyTier);
        }
        if !(1..=4).contains(&severity) {
            return Err(PolicyError::Severity(severity));
        }
        check_minutes("initial", policy.initial)?;
        check_minutes("next", policy.next)?;
        Ok(self.by_key.insert((tier, severity), policy))
    }

    /// The policy of a tier and severity, if configured.
    pub fn get(&self, tier: &str, severity: u8) -> Option<&Policy> {
        self.by_key.get(&(tier_key(tier), severity))
    }

    /// All policies, ordered by tier then severity.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u8, &Policy)> {
        self.by_key
            .iter()
            .map(|((tier, sev), p)| (tier.as_str(), *sev, p))
    }

    /// A typical vendor's terms. Initial response: premium sev1 1 h and sev2 2 h
    /// around the clock, sev3 4 and sev4 8 business hours; standard sev1 1, sev2 4,
    /// sev3 8 and sev4 16 business hours. Next response: standard is the same as
    /// initial (one "response time" column); premium follows the published ongoing
    /// column: sev1 1 h and sev2 4 h around the clock, sev3 8 and sev4 16 business
    /// hours.
    pub fn vendor_defaults() -> Policies {
        use ClockSpec as C;
        let table = [
            (
                "premium",
                1,
                C::around_the_clock_hours(1),
                C::around_the_clock_hours(1),
            ),
            (
                "premium",
                2,
                C::around_the_clock_hours(2),
                C::around_the_clock_hours(4),
            ),
            ("premium", 3, C::business_hours(4), C::business_hours(8)),
            ("premium", 4, C::business_hours(8), C::business_hours(16)),
            ("standard", 1, C::business_hours(1), C::business_hours(1)),
            ("standard", 2, C::business_hours(4), C::business_hours(4)),
            ("standard", 3, C::business_hours(8), C::business_hours(8)),
            ("standard", 4, C::business_hours(16), C::business_hours(16)),
        ];
        let by_key = table
            .into_iter()
            .map(|(tier, sev, initial, next)| ((tier.to_string(), sev), Policy { initial, next }))
            .collect();
        Policies { by_key }
    }
}

fn tier_key(tier: &str) -> String {
    tier.trim().to_ascii_lowercase()
}

fn check_minutes(which: &'static str, spec: ClockSpec) -> Result<(), PolicyError> {
    if (1..=MAX_CLOCK_MINUTES).contains(&spec.minutes) {
        Ok(())
    } else {
        Err(PolicyError::Minutes {
            which,
            minutes: spec.minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_defaults_match_the_published_terms() {
        let p = Policies::vendor_defaults();
        let initial = |tier: &str, sev: u8| p.get(tier, sev).map(|p| p.initial);
        assert_eq!(
            initial("premium", 1),
            Some(ClockSpec {
                minutes: 60,
                mode: ClockMode::AroundTheClock
            })
        );
        assert_eq!(
            initial("premium", 2),
            Some(ClockSpec::around_the_clock_hours(2))
        );
        assert_eq!(initial("premium", 3), Some(ClockSpec::business_hours(4)));
        assert_eq!(initial("premium", 4), Some(ClockSpec::business_hours(8)));
        assert_eq!(initial("standard", 1), Some(ClockSpec::business_hours(1)));
        assert_eq!(initial("standard", 2), Some(ClockSpec::business_hours(4)));
        assert_eq!(initial("standard", 3), Some(ClockSpec::business_hours(8)));
        assert_eq!(initial("standard", 4), Some(ClockSpec::business_hours(16)));
        assert_eq!(
            p.get("premium", 2).map(|p| p.next),
            Some(ClockSpec::around_the_clock_hours(4))
        );
        assert_eq!(
            p.get("standard", 3).map(|p| p.next),
            Some(ClockSpec::business_hours(8))
        );
        assert_eq!(p.iter().count(), 8);
    }

    #[test]
    fn lookup_ignores_tier_case_and_misses_unknown_keys() {
        let p = Policies::vendor_defaults();
        assert!(p.get("Premium", 1).is_some());
        assert!(p.get(" STANDARD ", 4).is_some());
        assert!(p.get("gold", 1).is_none());
        assert!(p.get("premium", 5).is_none());
    }

    #[test]
    fn insert_validates() {
        let mut p = Policies::new();
        let ok = Policy {
            initial: ClockSpec::business_hours(2),
            next: ClockSpec::business_hours(4),
        };
        assert_eq!(p.insert("gold", 1, ok), Ok(None));
        assert_eq!(p.insert("Gold", 1, ok), Ok(Some(ok)));
        assert_eq!(p.insert("gold", 0, ok), Err(PolicyError::Severity(0)));
        assert_eq!(p.insert("  ", 1, ok), Err(PolicyError::EmptyTier));
        let zero = Policy {
            initial: ClockSpec {
                minutes: 0,
                mode: ClockMode::BusinessHours,
            },
            ..ok
        };
        assert_eq!(
            p.insert("gold", 2, zero),
            Err(PolicyError::Minutes {
                which: "initial",
                minutes: 0
            })
        );
        let huge = Policy {
            next: ClockSpec {
                minutes: MAX_CLOCK_MINUTES + 1,
                mode: ClockMode::AroundTheClock,
            },
            ..ok
        };
        assert!(matches!(
            p.insert("gold", 2, huge),
            Err(PolicyError::Minutes { which: "next", .. })
        ));
    }

    #[test]
    fn clock_mode_config_spelling() {
        let spec: ClockSpec =
            serde_json::from_str(r#"{"minutes":240,"mode":"business_hours"}"#).expect("valid json");
        assert_eq!(spec, ClockSpec::business_hours(4));
        let mode: ClockMode = serde_json::from_str(r#""around_the_clock""#).expect("valid json");
        assert_eq!(mode, ClockMode::AroundTheClock);
    }
}
