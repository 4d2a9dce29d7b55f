//! SLA clocks: when a response is due, when to warn, and whether the weekend crew
//! must hear of a case.
//!
//! Around-the-clock clocks are plain wall-clock time. Business-hours clocks run over
//! the customer's region calendar; for the severities the weekend crew takes they
//! also run on the crew's days (the calendar's non-work days) during crew hours, so
//! a high-severity case on Saturday is answered on Saturday while a question waits
//! for Monday, its clock stopped.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::calendar::{self, Calendar, CalendarError, Hours};
use super::policy::{ClockMode, ClockSpec};

/// The share of a clock after which the team is warned, unless configured.
pub const DEFAULT_WARN_SHARE: f64 = 0.75;

/// The smaller crew that works the calendar's non-work days for high severities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekendCrew {
    /// Severities the crew takes; all others wait for the next business day.
    pub severities: BTreeSet<u8>,
    /// Local `(open, close)` the crew works on its days; `None` means the calendar's
    /// own opening hours.
    pub hours: Option<(NaiveTime, NaiveTime)>,
    /// Whether the crew also works holidays. Off by default: a holiday stops every
    /// business-hours clock (on whatever weekday it falls), because holiday cover is
    /// a separate decision from weekend cover.
    pub on_holidays: bool,
}

impl Default for WeekendCrew {
    /// Severities 1 and 2 ("high severity"), calendar hours, no holidays.
    fn default() -> WeekendCrew {
        WeekendCrew {
            severities: BTreeSet::from([1, 2]),
            hours: None,
            on_holidays: false,
        }
    }
}

impl WeekendCrew {
    /// No weekend crew: every business-hours clock waits for the next business day.
    pub fn none() -> WeekendCrew {
        WeekendCrew {
            severities: BTreeSet::new(),
            hours: None,
            on_holidays: false,
        }
    }

    /// A crew for these severities, working the calendar's hours, not on holidays.
    pub fn for_severities(severities: impl IntoIterator<Item = u8>) -> WeekendCrew {
        WeekendCrew {
            severities: severities.into_iter().collect(),
            ..WeekendCrew::none()
        }
    }

    /// The same crew working its own hours; rejects empty or inverted hours.
    pub fn with_hours(
        self,
        open: NaiveTime,
        close: NaiveTime,
    ) -> Result<WeekendCrew, CalendarError> {
        calendar::check_hours(open, close)?;
        Ok(WeekendCrew {
            hours: Some((open, close)),
            ..self
        })
    }

    /// Whether the crew takes cases of this severity.
    pub fn takes(&self, severity: u8) -> bool {
        self.severities.contains(&severity)
    }

    /// Whether the crew is on duty on `day`: a day that is not a business day of
    /// `cal`, unless it is a holiday the crew does not cover.
    pub fn works_on(&self, cal: &Calendar, day: NaiveDate) -> bool {
        !cal.is_business_day(day)
            && (self.on_holidays || !cal.is_holiday(day))
            && self.has_hours(cal)
    }

    fn hours_for(&self, cal: &Calendar) -> (NaiveTime, NaiveTime) {
        self.hours.unwrap_or((cal.open, cal.close))
    }

    fn has_hours(&self, cal: &Calendar) -> bool {
        let (open, close) = self.hours_for(cal);
        open < close
    }
}

/// The hours a clock of one severity runs over: the calendar's business hours, plus
/// the crew's days when the crew takes that severity.
struct ClockHours<'a> {
    cal: &'a Calendar,
    crew: Option<&'a WeekendCrew>,
}

impl<'a> ClockHours<'a> {
    fn new(cal: &'a Calendar, crew: &'a WeekendCrew, severity: u8) -> ClockHours<'a> {
        ClockHours {
            cal,
            crew: crew.takes(severity).then_some(crew),
        }
    }

    /// Whether `day` counts only because the crew works it.
    fn is_crew_day(&self, day: NaiveDate) -> bool {
        self.crew.is_some_and(|crew| crew.works_on(self.cal, day))
    }
}

impl Hours for ClockHours<'_> {
    fn tz(&self) -> Tz {
        self.cal.tz
    }

    fn hours_on(&self, day: NaiveDate) -> Option<(NaiveTime, NaiveTime)> {
        self.cal.hours_on(day).or_else(|| {
            let crew = self.crew?;
            crew.works_on(self.cal, day)
                .then(|| crew.hours_for(self.cal))
        })
    }

    fn ever_open(&self) -> bool {
        self.cal.ever_open()
    }
}

/// When a clock started at `start` runs out. Around the clock: `start` plus the
/// minutes. Business hours: business time over `cal`, with the crew's days for the
/// severities it takes; a start outside those hours starts the clock at the next
/// opening.
pub fn due(
    start: DateTime<Utc>,
    spec: &ClockSpec,
    severity: u8,
    cal: &Calendar,
    crew: &WeekendCrew,
) -> DateTime<Utc> {
    match spec.mode {
        ClockMode::AroundTheClock => start
            .checked_add_signed(spec.duration())
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ClockMode::BusinessHours => calendar::add_over(
            &ClockHours::new(cal, crew, severity),
            start,
            spec.duration(),
        ),
    }
}

/// The time left from `now` until a clock of `mode` runs out at `due`, in the clock's
/// own time (the same hours [`due`] counted it over: business hours of `cal`, with the
/// crew's days for the severities it takes); an overdue clock gives the negative wall
/// time since it ran out.
pub fn time_left(
    now: DateTime<Utc>,
    due: DateTime<Utc>,
    mode: ClockMode,
    severity: u8,
    cal: &Calendar,
    crew: &WeekendCrew,
) -> Duration {
    if due <= now {
        return due - now;
    }
    match mode {
        ClockMode::AroundTheClock => due - now,
        ClockMode::BusinessHours => {
            calendar::between_over(&ClockHours::new(cal, crew, severity), now, due)
        }
    }
}

/// The moment `share` of the clock from `start` to `due` has elapsed, measured in
/// the clock's own time (business time for business-hours clocks, so a 75% warning
/// of an 8-business-hour clock comes after 6 business hours, not after 75% of the
/// nights and weekends in between). `share` is clamped to 0..=1; NaN means
/// [`DEFAULT_WARN_SHARE`].
pub fn warn_at(
    start: DateTime<Utc>,
    due: DateTime<Utc>,
    share: f64,
    spec: &ClockSpec,
    severity: u8,
    cal: &Calendar,
    crew: &WeekendCrew,
) -> DateTime<Utc> {
    let share = if share.is_nan() {
        DEFAULT_WARN_SHARE
    } else {
        share.clamp(0.0, 1.0)
    };
    match spec.mode {
        ClockMode::AroundTheClock => start + scale(due - start, share),
        ClockMode::BusinessHours => {
            let hours = ClockHours::new(cal, crew, severity);
            let total = calendar::between_over(&hours, start, due);
            calendar::add_over(&hours, start, scale(total, share))
        }
    }
}

/// `d * share`, to the millisecond; a negative `d` counts as zero.
fn scale(d: Duration, share: f64) -> Duration {
    let ms = d.num_milliseconds().max(0) as f64 * share;
    Duration::milliseconds(ms.round() as i64)
}

/// Whether the weekend crew must be told of a case arriving at `start`: the crew
/// takes its severity, and either the case arrives on a crew day (at any hour), or
/// it arrives after the last regular shift before the crew's days so that the crew
/// is the first to be able to answer (Friday evening). After-hours arrivals on an
/// ordinary weeknight wait for the regular team and do not wake the crew.
pub fn wakes_weekend_crew(
    start: DateTime<Utc>,
    severity: u8,
    cal: &Calendar,
    crew: &WeekendCrew,
) -> bool {
    let hours = ClockHours::new(cal, crew, severity);
    if hours.crew.is_none() {
        return false;
    }
    let first_answer = calendar::add_over(&hours, start, Duration::zero());
    hours.is_crew_day(cal.local_date(start)) || hours.is_crew_day(cal.local_date(first_answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Asia::Tokyo;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    fn tokyo(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Tokyo
            .with_ymd_and_hms(2026, 3, d, h, m, 0)
            .single()
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    fn cal() -> Calendar {
        Calendar::monday_to_friday(Tokyo, t(9, 0), t(18, 0)).expect("valid calendar")
    }

    // 2026-03-06 is a Friday, 07/08 the weekend, 09 a Monday.

    #[test]
    fn time_left_counts_the_clock_hours_of_a_sunday_week() {
        // Sunday to Thursday, 9:00-18:00 in Riyadh; 2026-03-05 is a Thursday.
        let riyadh = chrono_tz::Asia::Riyadh;
        let at = |d: u32, h: u32| {
            riyadh
                .with_ymd_and_hms(2026, 3, d, h, 0, 0)
                .single()
                .expect("valid test time")
                .with_timezone(&Utc)
        };
        let cal = Calendar::sunday_to_thursday(riyadh, t(9, 0), t(18, 0)).expect("calendar");
        let spec = ClockSpec::business_hours(4);
        let none = WeekendCrew::none();
        // Thursday 16:00 + 4 business hours: 2 on Thursday, 2 on Sunday (Friday and
        // Saturday are the weekend).
        let due_at = due(at(5, 16), &spec, 3, &cal, &none);
        assert_eq!(due_at, at(8, 11));
        let left = |now, sev, crew: &WeekendCrew| {
            time_left(now, due_at, ClockMode::BusinessHours, sev, &cal, crew)
        };
        assert_eq!(left(at(5, 16), 3, &none), Duration::hours(4));
        assert_eq!(
            left(at(6, 12), 3, &none),
            Duration::hours(2),
            "Friday is off"
        );
        assert_eq!(left(at(8, 10), 3, &none), Duration::hours(1));
        // The crew works Friday and Saturday for severity 1: those hours count too.
        let crew = WeekendCrew::for_severities([1]);
        assert_eq!(left(at(6, 12), 1, &crew), Duration::hours(6 + 9 + 2));
        assert_eq!(left(at(6, 12), 3, &crew), Duration::hours(2), "not sev 3");
        // Around the clock and overdue: wall time.
        let wall = time_left(at(6, 12), due_at, ClockMode::AroundTheClock, 3, &cal, &none);
        assert_eq!(wall, Duration::hours(47));
        assert_eq!(left(at(8, 12), 3, &none), -Duration::hours(1));
    }

    #[test]
    fn around_the_clock_ignores_the_calendar() {
        let due = due(
            tokyo(7, 23, 30),
            &ClockSpec::around_the_clock_hours(2),
            3,
            &cal(),
            &WeekendCrew::none(),
        );
        assert_eq!(due, tokyo(8, 1, 30));
    }

    #[test]
    fn crew_severity_runs_on_weekend_during_crew_hours() {
        let crew = WeekendCrew::for_severities([1])
            .with_hours(t(10, 0), t(16, 0))
            .expect("valid hours");
        let spec = ClockSpec::business_hours(1);
        assert_eq!(
            due(tokyo(6, 17, 30), &spec, 1, &cal(), &crew),
            tokyo(7, 10, 30)
        );
        assert_eq!(
            due(tokyo(7, 15, 30), &spec, 1, &cal(), &crew),
            tokyo(8, 10, 30)
        );
        assert_eq!(
            due(tokyo(6, 17, 30), &spec, 2, &cal(), &crew),
            tokyo(9, 9, 30),
            "sev2 waits"
        );
    }

    #[test]
    fn crew_hours_default_to_the_calendar() {
        let crew = WeekendCrew::default();
        assert_eq!(
            due(
                tokyo(7, 8, 0),
                &ClockSpec::business_hours(1),
                2,
                &cal(),
                &crew
            ),
            tokyo(7, 10, 0)
        );
    }

    #[test]
    fn holidays_stop_the_crew_unless_it_covers_them() {
        let cal = cal().with_holidays([NaiveDate::from_ymd_opt(2026, 3, 7).expect("date")]);
        let spec = ClockSpec::business_hours(1);
        let crew = WeekendCrew::for_severities([1]);
        assert_eq!(due(tokyo(7, 10, 0), &spec, 1, &cal, &crew), tokyo(8, 10, 0));
        let crew = WeekendCrew {
            on_holidays: true,
            ..crew
        };
        assert_eq!(due(tokyo(7, 10, 0), &spec, 1, &cal, &crew), tokyo(7, 11, 0));
        // A weekday holiday is covered too when the crew works holidays.
        let cal = cal.with_holidays([NaiveDate::from_ymd_opt(2026, 3, 9).expect("date")]);
        assert_eq!(due(tokyo(9, 10, 0), &spec, 1, &cal, &crew), tokyo(9, 11, 0));
        assert_eq!(
            due(tokyo(9, 10, 0), &spec, 3, &cal, &crew),
            tokyo(10, 10, 0)
        );
    }

    #[test]
    fn crew_hours_are_validated() {
        assert!(
            WeekendCrew::default()
                .with_hours(t(16, 0), t(10, 0))
                .is_err()
        );
    }

    #[test]
    fn warn_at_uses_the_clock_measure() {
        let crew = WeekendCrew::none();
        let spec = ClockSpec::business_hours(8);
        let start = tokyo(6, 17, 0);
        let due_at = due(start, &spec, 3, &cal(), &crew);
        assert_eq!(due_at, tokyo(9, 16, 0));
        assert_eq!(
            warn_at(start, due_at, 0.75, &spec, 3, &cal(), &crew),
            tokyo(9, 14, 0)
        );
        assert_eq!(warn_at(start, due_at, 1.0, &spec, 3, &cal(), &crew), due_at);
        assert_eq!(
            warn_at(start, due_at, 7.0, &spec, 3, &cal(), &crew),
            due_at,
            "clamped"
        );
        assert_eq!(
            warn_at(start, due_at, f64::NAN, &spec, 3, &cal(), &crew),
            tokyo(9, 14, 0)
        );
        let spec = ClockSpec::around_the_clock_hours(2);
        let start = tokyo(7, 10, 0);
        let due_at = due(start, &spec, 1, &cal(), &crew);
        assert_eq!(
            warn_at(start, due_at, 0.75, &spec, 1, &cal(), &crew),
            tokyo(7, 11, 30)
        );
        assert_eq!(warn_at(start, due_at, -1.0, &spec, 1, &cal(), &crew), start);
    }

    #[test]
    fn warn_at_follows_the_crew() {
        let crew = WeekendCrew::default();
        let spec = ClockSpec::business_hours(4);
        let start = tokyo(7, 10, 0);
        let due_at = due(start, &spec, 1, &cal(), &crew);
        assert_eq!(due_at, tokyo(7, 14, 0));
        assert_eq!(
            warn_at(start, due_at, 0.75, &spec, 1, &cal(), &crew),
            tokyo(7, 13, 0)
        );
    }

    #[test]
    fn who_wakes_the_crew() {
        let crew = WeekendCrew::default();
        let cal = cal();
        assert!(
            wakes_weekend_crew(tokyo(7, 3, 0), 1, &cal, &crew),
            "Saturday night"
        );
        assert!(
            wakes_weekend_crew(tokyo(8, 20, 0), 2, &cal, &crew),
            "Sunday after crew hours"
        );
        assert!(
            wakes_weekend_crew(tokyo(6, 19, 0), 1, &cal, &crew),
            "Friday after the last shift"
        );
        assert!(
            !wakes_weekend_crew(tokyo(6, 10, 0), 1, &cal, &crew),
            "regular hours"
        );
        assert!(
            !wakes_weekend_crew(tokyo(4, 22, 0), 1, &cal, &crew),
            "weeknight"
        );
        assert!(
            !wakes_weekend_crew(tokyo(7, 12, 0), 4, &cal, &crew),
            "severity the crew does not take"
        );
        assert!(
            !wakes_weekend_crew(tokyo(7, 12, 0), 1, &cal, &WeekendCrew::none()),
            "no crew"
        );
    }

    #[test]
    fn crew_off_on_holidays_is_woken_only_for_its_next_day() {
        let date = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("date");
        let crew = WeekendCrew::default();
        let cal_sat = cal().with_holidays([date(7)]);
        assert!(
            wakes_weekend_crew(tokyo(7, 12, 0), 1, &cal_sat, &crew),
            "holiday Saturday: the crew answers Sunday"
        );
        let cal_both = cal().with_holidays([date(7), date(8)]);
        assert!(
            !wakes_weekend_crew(tokyo(7, 12, 0), 1, &cal_both, &crew),
            "whole weekend off: Monday's team answers"
        );
        let covering = WeekendCrew {
            on_holidays: true,
            ..crew
        };
        assert!(wakes_weekend_crew(tokyo(7, 12, 0), 1, &cal_both, &covering));
    }
}
