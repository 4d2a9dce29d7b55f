//! The `[sla]` section: policies per tier and severity, calendars per region, the
//! weekend crew, and which countries work Sunday–Thursday.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use config::ValueKind;

use super::load::Reader;
use crate::domain::sla::{
    Calendar, ClockMode, ClockSpec, Policies, Policy, RegionHours, SlaSettings, WeekendCrew,
};

const DEFAULT_SUNDAY_WEEK: &[&str] = &[
    "SA", "AE", "QA", "KW", "BH", "OM", "IL", "EG", "JO", "IQ", "YE", "DZ", "LY", "SD",
];

const DEFAULT_TIME_ZONES: &[(&str, &str)] = &[
    ("JP", "Asia/Tokyo"),
    ("KR", "Asia/Seoul"),
    ("CN", "Asia/Shanghai"),
    ("SG", "Asia/Singapore"),
    ("IN", "Asia/Kolkata"),
    ("AU", "Australia/Sydney"),
    ("NZ", "Pacific/Auckland"),
    ("SA", "Asia/Riyadh"),
    ("AE", "Asia/Dubai"),
    ("IL", "Asia/Jerusalem"),
    ("GB", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
    ("US", "America/New_York"),
    ("CA", "America/Toronto"),
    ("BR", "America/Sao_Paulo"),
];

pub(super) fn read(r: &mut Reader<'_>) -> SlaSettings {
    let default_severity = r.uint("sla.default_severity", 3, 1, 4) as u8;
    let warn_percent = r.uint("sla.warn_percent", 75, 1, 99);
    let crew: Vec<u8> = r
        .string_list("sla.weekend_crew_severities", &["1", "2"])
        .iter()
        .filter_map(|s| match s.parse::<u8>() {
            Ok(n @ 1..=4) => Some(n),
            _ => {
                r.problem(
                    None,
                    "sla.weekend_crew_severities",
                    format!("expected severities 1 to 4, found \"{s}\""),
                );
                None
            }
        })
        .collect();
    let mut regions = BTreeMap::new();
    for name in r.table_keys("sla.regions") {
        let hours = region_hours(r, &format!("sla.regions.{name}"));
        regions.insert(name.to_uppercase(), hours);
    }
    let default_hours = region_hours(r, "sla.default_hours");
    let sunday_week_countries = r
        .string_list("sla.sunday_work_week_countries", DEFAULT_SUNDAY_WEEK)
        .into_iter()
        .map(|c| c.to_uppercase())
        .collect();
    let mut country_time_zones: BTreeMap<String, Tz> = DEFAULT_TIME_ZONES
        .iter()
        .filter_map(|(c, z)| z.parse().ok().map(|tz| (c.to_string(), tz)))
        .collect();
    for country in r.table_keys("sla.country_time_zones") {
        let key = format!("sla.country_time_zones.{country}");
        if let Some(tz) = time_zone(r, &key, None) {
            country_time_zones.insert(country.to_uppercase(), tz);
        }
    }
    SlaSettings {
        policies: policies(r),
        default_severity,
        warn_share: warn_percent as f64 / 100.0,
        weekend_crew: WeekendCrew::for_severities(crew),
        regions,
        default_hours,
        sunday_week_countries,
        country_time_zones,
    }
}

/// A region's hours apply only to a region the routing file has: any other name (a typo)
/// would leave the real region on the default hours without a word.
pub(super) fn check_regions(
    r: &mut Reader<'_>,
    sla: &SlaSettings,
    routing: &crate::domain::routing::Routing,
) {
    let known: BTreeSet<String> = routing
        .region_names()
        .iter()
        .map(|g| g.to_uppercase())
        .collect();
    for name in r.table_keys("sla.regions") {
        if sla.regions.contains_key(&name.to_uppercase()) && !known.contains(&name.to_uppercase()) {
            r.problem(
                None,
                &format!("sla.regions.{name}"),
                format!(
                    "unknown region \"{name}\": the routing file has {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

fn region_hours(r: &mut Reader<'_>, prefix: &str) -> RegionHours {
    let tz = time_zone(r, &format!("{prefix}.time_zone"), Some("UTC")).unwrap_or(chrono_tz::UTC);
    let open = time_of_day(r, &format!("{prefix}.open"), "09:00");
    let close = time_of_day(r, &format!("{prefix}.close"), "18:00");
    if open >= close {
        r.problem(
            None,
            &format!("{prefix}.close"),
            "must be later than open (hours never cross midnight)",
        );
    }
    let mut holidays = BTreeSet::new();
    for (i, d) in r
        .string_list(&format!("{prefix}.holidays"), &[])
        .iter()
        .enumerate()
    {
        match d.parse::<NaiveDate>() {
            Ok(day) => {
                holidays.insert(day);
            }
            Err(_) => r.problem(
                None,
                &format!("{prefix}.holidays[{i}]"),
                format!("\"{d}\" is not a date (YYYY-MM-DD)"),
            ),
        }
    }
    RegionHours {
        tz,
        open,
        close,
        holidays,
    }
}

fn time_zone(r: &mut Reader<'_>, key: &str, default: Option<&str>) -> Option<Tz> {
    let name = match default {
        Some(d) => r.string(key, Some(d)),
        None => r.opt_string(key)?,
    };
    match Calendar::parse_tz(&name) {
        Ok(tz) => Some(tz),
        Err(_) => {
            r.problem(
                None,
                key,
                format!("unknown time zone \"{name}\" (use an IANA name such as Asia/Tokyo)"),
            );
            None
        }
    }
}

fn time_of_day(r: &mut Reader<'_>, key: &str, default: &str) -> NaiveTime {
    let s = r.string(key, Some(default));
    NaiveTime::parse_from_str(&s, "%H:%M").unwrap_or_else(|_| {
        r.problem(
            None,
            key,
            format!("expected a time of day like \"09:00\", found \"{s}\""),
        );
        NaiveTime::parse_from_str(default, "%H:%M").unwrap_or_default()
    })
}

/// `[sla.policies.TIER] sevN = { initial = "4h", next = "8h", clock = "business" }`;
/// the vendor defaults when the section is absent.
fn policies(r: &mut Reader<'_>) -> Policies {
    let tiers = r.table_keys("sla.policies");
    if tiers.is_empty() {
        return Policies::vendor_defaults();
    }
    let mut out = Policies::new();
    for tier in tiers {
        for sev in 1..=4u8 {
            let key = format!("sla.policies.{tier}.sev{sev}");
            let initial = r.opt_string(&format!("{key}.initial"));
            let next = r.opt_string(&format!("{key}.next"));
            let clock = r.choice(&format!("{key}.clock"), "business", &["business", "24x7"]);
            let mode = if clock == "24x7" {
                ClockMode::AroundTheClock
            } else {
                ClockMode::BusinessHours
            };
            let Some(initial) = initial else {
                r.problem(
                    None,
                    &format!("{key}.initial"),
                    "missing (every tier needs sev1 to sev4)",
                );
                continue;
            };
            let initial = duration_minutes(r, &format!("{key}.initial"), &initial);
            let next = next
                .map(|n| duration_minutes(r, &format!("{key}.next"), &n))
                .unwrap_or(initial);
            let policy = Policy {
                initial: ClockSpec {
                    minutes: initial,
                    mode,
                },
                next: ClockSpec {
                    minutes: next,
                    mode,
                },
            };
            if let Err(e) = out.insert(&tier, sev, policy) {
                r.problem(None, &key, e.to_string());
            }
        }
    }
    out
}

/// "90m" or "4h": business minutes on a business clock, elapsed minutes on a 24x7 one.
fn duration_minutes(r: &mut Reader<'_>, key: &str, s: &str) -> u32 {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let minutes = num.parse::<u32>().ok().and_then(|n| match unit.trim() {
        "m" | "min" => Some(n),
        "h" => n.checked_mul(60),
        _ => None,
    });
    match minutes {
        Some(m) if m > 0 => m,
        _ => {
            r.problem(
                None,
                key,
                format!("expected a duration like \"90m\" or \"4h\", found \"{s}\""),
            );
            60
        }
    }
}

impl Reader<'_> {
    /// The keys of a table (e.g. the region names under `sla.regions`), sorted.
    pub(super) fn table_keys(&mut self, key: &str) -> Vec<String> {
        match self.lookup(key).map(|v| v.kind) {
            Some(ValueKind::Table(t)) => t.keys().cloned().collect(),
            Some(_) => {
                self.problem(None, key, "expected a table");
                Vec::new()
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use crate::config::load_with_env;

    fn load(body: &str) -> Result<crate::config::Config, crate::config::Problems> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, body).unwrap();
        load_with_env(&p, Some(crate::config::test_env()))
    }

    #[test]
    fn defaults_are_the_vendor_policies_and_a_sunday_week_for_saudi_arabia() {
        let c = load("").unwrap();
        assert_eq!(c.sla.default_severity, 3);
        assert_eq!(
            c.sla.policies.get("premium", 1).unwrap().initial.minutes,
            60
        );
        let cal = c.sla.calendar("EMEA", Some("sa"));
        assert_eq!(cal.tz, chrono_tz::Asia::Riyadh);
        // Sunday 2026-11-29 10:00 Riyadh is business time there.
        assert!(cal.is_business(Utc.with_ymd_and_hms(2026, 11, 29, 7, 0, 0).unwrap()));
    }

    #[test]
    fn regions_and_policies_are_read_and_checked_by_key() {
        let body = r#"
[sla]
default_severity = 4
[sla.regions.apac]
time_zone = "Asia/Singapore"
open = "08:30"
close = "17:30"
holidays = ["2026-12-31", "2026-13-01"]
[sla.regions.emea]
time_zone = "Europe/Atlantis"
[sla.policies.gold]
sev1 = { initial = "30m", clock = "24x7" }
sev2 = { initial = "2h", next = "4h", clock = "24x7" }
sev3 = { initial = "4h" }
sev4 = { initial = "soon" }
"#;
        let err = load(body).unwrap_err().to_string();
        assert!(
            err.contains("sla.regions.apac.holidays[1]: \"2026-13-01\" is not a date"),
            "{err}"
        );
        assert!(
            err.contains("sla.regions.emea.time_zone: unknown time zone \"Europe/Atlantis\""),
            "{err}"
        );
        assert!(
            err.contains("sla.policies.gold.sev4.initial: expected a duration"),
            "{err}"
        );
        let good = body
            .replace("\"2026-13-01\"", "\"2027-01-01\"")
            .replace("Europe/Atlantis", "Europe/Berlin")
            .replace("soon", "8h");
        let c = load(&good).unwrap();
        assert_eq!(c.sla.default_severity, 4);
        assert_eq!(c.sla.policies.get("gold", 1).unwrap().initial.minutes, 30);
        assert_eq!(c.sla.policies.get("gold", 1).unwrap().next.minutes, 30);
        assert!(c.sla.policies.get("premium", 1).is_none());
        let apac = c.sla.calendar("APAC", Some("SG"));
        assert_eq!(
            apac.open,
            chrono::NaiveTime::from_hms_opt(8, 30, 0).unwrap()
        );
        assert_eq!(apac.holidays.len(), 2);
    }
}
