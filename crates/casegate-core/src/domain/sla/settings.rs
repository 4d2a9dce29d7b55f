//! The SLA settings a decision reads: policies, region hours, work weeks and time zones
//! per country. `config` reads them from the `[sla]` section; the rules only use them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;

use super::{Calendar, Policies, WeekendCrew, WorkWeek};

/// A region's business hours and holidays; the work week comes from the customer's country.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionHours {
    pub tz: Tz,
    pub open: NaiveTime,
    pub close: NaiveTime,
    pub holidays: BTreeSet<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct SlaSettings {
    pub policies: Policies,
    /// Severity when the customer states none (or an invalid one).
    pub default_severity: u8,
    /// Share of a clock after which the warning goes out.
    pub warn_share: f64,
    pub weekend_crew: WeekendCrew,
    /// Region name (upper-case) -> hours.
    pub regions: BTreeMap<String, RegionHours>,
    /// Hours for regions not listed.
    pub default_hours: RegionHours,
    /// Countries (ISO alpha-2, upper-case) whose weekend is Friday–Saturday.
    pub sunday_week_countries: BTreeSet<String>,
    /// Country -> the customer's time zone (due times are shown and counted in it).
    pub country_time_zones: BTreeMap<String, Tz>,
}

impl SlaSettings {
    /// The calendar a case runs on: the region's hours and holidays, in the customer's
    /// time zone when known, over the customer's country's work week.
    pub fn calendar(&self, region: &str, country: Option<&str>) -> Calendar {
        let hours = self
            .regions
            .get(&region.to_uppercase())
            .unwrap_or(&self.default_hours);
        let country = country.map(str::to_uppercase);
        let tz = country
            .as_ref()
            .and_then(|c| self.country_time_zones.get(c))
            .copied()
            .unwrap_or(hours.tz);
        let week = match country {
            Some(c) if self.sunday_week_countries.contains(&c) => WorkWeek::SundayToThursday,
            _ => WorkWeek::MondayToFriday,
        };
        // Hours were validated when loaded (open < close), so this cannot fail; fall back
        // to a plain weekday calendar rather than panic if it ever did.
        Calendar::for_week(tz, hours.open, hours.close, week)
            .map(|c| c.with_holidays(hours.holidays.iter().copied()))
            .unwrap_or_else(|_| fallback_calendar())
    }

    /// The customer's time zone for showing due times.
    pub fn time_zone(&self, region: &str, country: Option<&str>) -> Tz {
        self.calendar(region, country).tz
    }
}

fn fallback_calendar() -> Calendar {
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
    let six = NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default();
    Calendar {
        tz: chrono_tz::UTC,
        open: nine,
        close: six,
        work_days: WorkWeek::MondayToFriday.days(),
        holidays: BTreeSet::new(),
    }
}
