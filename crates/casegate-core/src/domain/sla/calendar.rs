//! Business calendars: when a region's support team is at work, and business-time
//! arithmetic over those hours.
//!
//! Every computation works one local day at a time: the day's opening and closing
//! wall-clock times are turned into UTC instants in the region's time zone, and the
//! business time of the day is the real time between them. This is what makes the
//! arithmetic exact across DST changes: a Friday-afternoon clock that ends on the
//! Monday after a change ends at Monday's real opening, not an hour off.
//!
//! Business windows are half-open, `[open, close)`: the opening instant is business
//! time, the closing instant is not. A business clock that runs out exactly at the
//! end of a day ends *at* the close (an 8-hour clock started at 09:00 is due 17:00
//! the same day, not 09:00 the next morning).

use std::collections::BTreeSet;

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;

/// Why a calendar (or a weekend crew's hours) cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the work week has no work day: no business clock could ever run")]
    NoWorkDays,
    #[error("business hours must open before they close (open {open}, close {close})")]
    EmptyHours { open: NaiveTime, close: NaiveTime },
    #[error("unknown time zone \"{0}\" (expected an IANA name such as Asia/Tokyo)")]
    UnknownTimeZone(String),
    #[error("unknown work week \"{0}\" (expected mon-fri or sun-thu)")]
    UnknownWorkWeek(String),
}

/// The shape of a country's work week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkWeek {
    /// Monday to Friday: the default.
    MondayToFriday,
    /// Sunday to Thursday: countries whose weekend is Friday and Saturday, where
    /// Sunday is a business day like any other.
    SundayToThursday,
}

impl WorkWeek {
    /// Work days indexed Monday (0) to Sunday (6), the layout of [`Calendar::work_days`].
    pub fn days(self) -> [bool; 7] {
        match self {
            WorkWeek::MondayToFriday => [true, true, true, true, true, false, false],
            WorkWeek::SundayToThursday => [true, true, true, true, false, false, true],
        }
    }

    /// Parses the config spelling: `mon-fri` or `sun-thu` (case-insensitive).
    pub fn parse(s: &str) -> Result<WorkWeek, CalendarError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mon-fri" | "monday-friday" => Ok(WorkWeek::MondayToFriday),
            "sun-thu" | "sunday-thursday" => Ok(WorkWeek::SundayToThursday),
            _ => Err(CalendarError::UnknownWorkWeek(s.to_string())),
        }
    }
}

/// A region's business calendar. Build it with [`Calendar::new`] (or one of the
/// shortcuts), which rejects calendars on which no business clock could ever run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub tz: Tz,
    /// Local opening time, the same on every work day.
    pub open: NaiveTime,
    /// Local closing time; after `open` (business hours never cross midnight).
    pub close: NaiveTime,
    /// Monday (index 0) to Sunday (index 6).
    pub work_days: [bool; 7],
    /// Local dates on which nobody works, whatever their weekday.
    pub holidays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// A validated calendar: at least one work day, and `open < close`.
    pub fn new(
        tz: Tz,
        open: NaiveTime,
        close: NaiveTime,
        work_days: [bool; 7],
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Calendar, CalendarError> {
        if !work_days.iter().any(|d| *d) {
            return Err(CalendarError::NoWorkDays);
        }
        check_hours(open, close)?;
        Ok(Calendar {
            tz,
            open,
            close,
            work_days,
            holidays,
        })
    }

    /// A calendar for a work-week shape, without holidays.
    pub fn for_week(
        tz: Tz,
        open: NaiveTime,
        close: NaiveTime,
        week: WorkWeek,
    ) -> Result<Calendar, CalendarError> {
        Calendar::new(tz, open, close, week.days(), BTreeSet::new())
    }

    /// Monday to Friday, the default work week.
    pub fn monday_to_friday(
        tz: Tz,
        open: NaiveTime,
        close: NaiveTime,
    ) -> Result<Calendar, CalendarError> {
        Calendar::for_week(tz, open, close, WorkWeek::MondayToFriday)
    }

    /// Sunday to Thursday, for countries whose weekend is Friday–Saturday.
    pub fn sunday_to_thursday(
        tz: Tz,
        open: NaiveTime,
        close: NaiveTime,
    ) -> Result<Calendar, CalendarError> {
        Calendar::for_week(tz, open, close, WorkWeek::SundayToThursday)
    }

    /// The same calendar with these holidays added.
    pub fn with_holidays(mut self, days: impl IntoIterator<Item = NaiveDate>) -> Calendar {
        self.holidays.extend(days);
        self
    }

    /// Parses an IANA time-zone name from config, with a typed error.
    pub fn parse_tz(name: &str) -> Result<Tz, CalendarError> {
        name.trim()
            .parse::<Tz>()
            .map_err(|_| CalendarError::UnknownTimeZone(name.to_string()))
    }

    /// Whether `day` is in the work week (holidays aside).
    pub fn is_work_day(&self, day: NaiveDate) -> bool {
        self.work_days[day.weekday().num_days_from_monday() as usize]
    }

    /// Whether `day` is a holiday.
    pub fn is_holiday(&self, day: NaiveDate) -> bool {
        self.holidays.contains(&day)
    }

    /// Whether `day` is a business day: in the work week and not a holiday.
    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        self.is_work_day(day) && !self.is_holiday(day)
    }

    /// The local date of an instant in this calendar's time zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// Whether `t` is inside business hours (windows are `[open, close)`).
    pub fn is_business(&self, t: DateTime<Utc>) -> bool {
        is_open(self, t)
    }

    /// The moment the business clock runs again: `t` itself when `t` is inside
    /// business hours, else the next opening.
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        add_over(self, t, Duration::zero())
    }

    /// `start` plus `d` of business time. A start outside business hours starts the
    /// clock at the next opening; a negative `d` counts as zero. The result is inside
    /// business hours, or exactly at a close when the clock runs out there.
    pub fn add_business(&self, start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        add_over(self, start, d)
    }

    /// The business time in `[a, b)`; zero when `b <= a`. The inverse of
    /// [`Calendar::add_business`]: `business_between(s, add_business(s, d)) == d`.
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        between_over(self, a, b)
    }
}

/// Rejects empty or inverted business hours.
pub(crate) fn check_hours(open: NaiveTime, close: NaiveTime) -> Result<(), CalendarError> {
    if open < close {
        Ok(())
    } else {
        Err(CalendarError::EmptyHours { open, close })
    }
}

/// Opening hours day by day: what the arithmetic below runs over. A [`Calendar`] is
/// one; the SLA clock adds the weekend crew's days on top of it.
pub(crate) trait Hours {
    fn tz(&self) -> Tz;
    /// Local `(open, close)` on `day`, or `None` when nobody works that day.
    fn hours_on(&self, day: NaiveDate) -> Option<(NaiveTime, NaiveTime)>;
    /// Whether any day has hours at all: without this no scan could ever end.
    fn ever_open(&self) -> bool;
}

impl Hours for Calendar {
    fn tz(&self) -> Tz {
        self.tz
    }

    fn hours_on(&self, day: NaiveDate) -> Option<(NaiveTime, NaiveTime)> {
        self.is_business_day(day).then_some((self.open, self.close))
    }

    /// Also guards hand-built calendars that skipped [`Calendar::new`].
    fn ever_open(&self) -> bool {
        self.work_days.iter().any(|d| *d) && self.open < self.close
    }
}

/// The business window of `day` in UTC, or `None` when the day has no business time.
fn window<H: Hours + ?Sized>(h: &H, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (open, close) = h.hours_on(day)?;
    let o = first_at_or_after(h.tz(), day.and_time(open))?;
    let c = first_at_or_after(h.tz(), day.and_time(close))?;
    (o < c).then_some((o, c))
}

/// The first instant at which the local wall clock shows `local` or later.
///
/// One rule covers both DST oddities: a wall-clock time that happens twice (autumn)
/// means its first occurrence; one that never happens (spring, e.g. 02:30 in New
/// York on the change day) means the instant the clocks jump, when 03:00 begins.
/// The rule is monotonic, so a day's opening never resolves after its closing.
fn first_at_or_after(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => gap_end(tz, local),
    }
}

/// For a wall-clock time inside a spring-forward gap: the instant of the jump,
/// found by bisection between the readings of `local` in the offsets in force
/// well before and well after it.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let offset_at = |hours: i64| {
        let probe = local.checked_add_signed(Duration::hours(hours))?;
        Some(Duration::seconds(i64::from(
            tz.offset_from_utc_datetime(&probe).fix().local_minus_utc(),
        )))
    };
    let (before, after) = (offset_at(-36)?, offset_at(36)?);
    let mut lo = local.checked_sub_signed(after)?; // reads before `local`
    let mut hi = local.checked_sub_signed(before)?; // reads at or after `local`
    let reads_at_or_after = |utc: NaiveDateTime| tz.from_utc_datetime(&utc).naive_local() >= local;
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if reads_at_or_after(mid) {
            hi = mid
        } else {
            lo = mid
        }
    }
    Some(Utc.from_utc_datetime(&hi))
}

/// The first local day whose window may hold `t`. A window of day D normally lies
/// within local day D, but DST changes at midnight can move an opening or the wall
/// clock across it, so scans reach one day further on either side.
fn first_day(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    let day = t.with_timezone(&tz).date_naive();
    day.pred_opt().unwrap_or(day)
}

pub(crate) fn is_open<H: Hours + ?Sized>(h: &H, t: DateTime<Utc>) -> bool {
    let mut days = std::iter::successors(Some(first_day(h.tz(), t)), |d| d.succ_opt()).take(3);
    days.any(|d| window(h, d).is_some_and(|(o, c)| o <= t && t < c))
}

/// `start` plus `d` of business time over `h`; see [`Calendar::add_business`].
///
/// The scan walks day by day and ends when `d` is used up; days with hours recur (a
/// holiday list is finite), so it always ends. Were the calendar range of chrono
/// exhausted first, or no day ever open, the answer is [`DateTime::<Utc>::MAX_UTC`]:
/// "never".
pub(crate) fn add_over<H: Hours + ?Sized>(
    h: &H,
    start: DateTime<Utc>,
    d: Duration,
) -> DateTime<Utc> {
    if !h.ever_open() {
        return DateTime::<Utc>::MAX_UTC;
    }
    let mut remaining = d.max(Duration::zero());
    let mut day = first_day(h.tz(), start);
    loop {
        if let Some((o, c)) = window(h, day) {
            let from = o.max(start);
            if from < c {
                let available = c - from;
                if remaining <= available {
                    return from + remaining;
                }
                remaining -= available;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => return DateTime::<Utc>::MAX_UTC,
        }
    }
}

/// The business time of `h` in `[a, b)`; see [`Calendar::business_between`].
pub(crate) fn between_over<H: Hours + ?Sized>(
    h: &H,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> Duration {
    let mut total = Duration::zero();
    if b <= a {
        return total;
    }
    let last = b
        .with_timezone(&h.tz())
        .date_naive()
        .succ_opt()
        .unwrap_or(NaiveDate::MAX);
    let mut day = first_day(h.tz(), a);
    while day <= last {
        if let Some((o, c)) = window(h, day) {
            let (from, to) = (o.max(a), c.min(b));
            if from < to {
                total += to - from;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::{Riyadh, Tokyo};
    use chrono_tz::Europe::London;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    fn date(y: i32, mo: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, d).expect("valid test date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid RFC 3339 in test")
    }

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, m: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, m, 0)
            .single()
            .expect("unambiguous test time")
            .with_timezone(&Utc)
    }

    fn nine_to_five(tz: Tz) -> Calendar {
        Calendar::monday_to_friday(tz, t(9, 0), t(17, 0)).expect("valid calendar")
    }

    fn every_day(tz: Tz, open: NaiveTime, close: NaiveTime) -> Calendar {
        Calendar::new(tz, open, close, [true; 7], BTreeSet::new()).expect("valid calendar")
    }

    #[test]
    fn construction_rejects_calendars_that_never_open() {
        assert_eq!(
            Calendar::new(Tokyo, t(9, 0), t(18, 0), [false; 7], BTreeSet::new()),
            Err(CalendarError::NoWorkDays)
        );
        assert!(matches!(
            Calendar::monday_to_friday(Tokyo, t(18, 0), t(9, 0)),
            Err(CalendarError::EmptyHours { .. })
        ));
        assert!(matches!(
            Calendar::monday_to_friday(Tokyo, t(9, 0), t(9, 0)),
            Err(CalendarError::EmptyHours { .. })
        ));
    }

    #[test]
    fn hand_built_calendar_without_work_days_answers_never_instead_of_looping() {
        let cal = Calendar {
            tz: Tokyo,
            open: t(9, 0),
            close: t(18, 0),
            work_days: [false; 7],
            holidays: BTreeSet::new(),
        };
        let start = utc("2026-03-02T00:00:00Z");
        assert_eq!(
            cal.add_business(start, Duration::hours(1)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(cal.next_open(start), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            cal.business_between(start, start + Duration::days(30)),
            Duration::zero()
        );
        assert!(!cal.is_business(start));
    }

    #[test]
    fn parses_config_spellings() {
        assert_eq!(Calendar::parse_tz("Asia/Riyadh"), Ok(Riyadh));
        assert_eq!(
            Calendar::parse_tz("Mars/Olympus"),
            Err(CalendarError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert_eq!(WorkWeek::parse("Sun-Thu"), Ok(WorkWeek::SundayToThursday));
        assert_eq!(WorkWeek::parse("mon-fri"), Ok(WorkWeek::MondayToFriday));
        assert!(WorkWeek::parse("tue-sat").is_err());
    }

    #[test]
    fn sunday_to_thursday_week() {
        let cal = Calendar::sunday_to_thursday(Riyadh, t(8, 0), t(17, 0)).expect("valid calendar");
        assert!(cal.is_work_day(date(2026, 3, 1))); // Sunday
        assert!(cal.is_work_day(date(2026, 3, 5))); // Thursday
        assert!(!cal.is_work_day(date(2026, 3, 6))); // Friday
        assert!(!cal.is_work_day(date(2026, 3, 7))); // Saturday
    }

    #[test]
    fn is_business_is_half_open() {
        let cal = nine_to_five(Tokyo);
        assert!(cal.is_business(local(Tokyo, 2026, 3, 2, 9, 0)));
        assert!(cal.is_business(local(Tokyo, 2026, 3, 2, 16, 59)));
        assert!(!cal.is_business(local(Tokyo, 2026, 3, 2, 17, 0)));
        assert!(!cal.is_business(local(Tokyo, 2026, 3, 2, 8, 59)));
        assert!(!cal.is_business(local(Tokyo, 2026, 3, 7, 10, 0))); // Saturday
    }

    #[test]
    fn next_open_is_identity_inside_hours_and_next_opening_outside() {
        let cal = nine_to_five(Tokyo);
        let inside = local(Tokyo, 2026, 3, 2, 10, 30);
        assert_eq!(cal.next_open(inside), inside);
        assert_eq!(
            cal.next_open(local(Tokyo, 2026, 3, 2, 17, 0)),
            local(Tokyo, 2026, 3, 3, 9, 0)
        );
        assert_eq!(
            cal.next_open(local(Tokyo, 2026, 3, 6, 20, 0)),
            local(Tokyo, 2026, 3, 9, 9, 0)
        );
        assert_eq!(
            cal.next_open(local(Tokyo, 2026, 3, 2, 3, 0)),
            local(Tokyo, 2026, 3, 2, 9, 0)
        );
    }

    #[test]
    fn add_business_within_a_day_across_days_and_at_close() {
        let cal = nine_to_five(Tokyo);
        let mon9 = local(Tokyo, 2026, 3, 2, 9, 0);
        assert_eq!(
            cal.add_business(mon9, Duration::hours(8)),
            local(Tokyo, 2026, 3, 2, 17, 0),
            "ends at close"
        );
        assert_eq!(
            cal.add_business(mon9, Duration::hours(9)),
            local(Tokyo, 2026, 3, 3, 10, 0)
        );
        assert_eq!(cal.add_business(mon9, Duration::zero()), mon9);
        let sat = local(Tokyo, 2026, 3, 7, 12, 0);
        assert_eq!(
            cal.add_business(sat, Duration::zero()),
            local(Tokyo, 2026, 3, 9, 9, 0)
        );
        assert_eq!(
            cal.add_business(sat, Duration::minutes(-5)),
            local(Tokyo, 2026, 3, 9, 9, 0),
            "negative is zero"
        );
    }

    #[test]
    fn business_between_counts_only_hours() {
        let cal = nine_to_five(Tokyo);
        let fri16 = local(Tokyo, 2026, 3, 6, 16, 0);
        let mon10 = local(Tokyo, 2026, 3, 9, 10, 0);
        assert_eq!(cal.business_between(fri16, mon10), Duration::hours(2));
        assert_eq!(cal.business_between(mon10, fri16), Duration::zero());
        let week = cal.business_between(
            local(Tokyo, 2026, 3, 1, 0, 0),
            local(Tokyo, 2026, 3, 8, 0, 0),
        );
        assert_eq!(week, Duration::hours(40));
    }

    #[test]
    fn holidays_are_skipped() {
        let cal = nine_to_five(Tokyo).with_holidays([date(2026, 3, 9), date(2026, 3, 10)]);
        let fri16 = local(Tokyo, 2026, 3, 6, 16, 0);
        assert_eq!(
            cal.add_business(fri16, Duration::hours(2)),
            local(Tokyo, 2026, 3, 11, 10, 0)
        );
        assert!(!cal.is_business(local(Tokyo, 2026, 3, 9, 10, 0)));
        assert_eq!(
            cal.business_between(fri16, local(Tokyo, 2026, 3, 11, 10, 0)),
            Duration::hours(2)
        );
    }

    #[test]
    fn new_york_spring_forward_is_exact() {
        // DST starts Sunday 2026-03-08: Friday 16:00 EST (21:00Z) + 2 h = Monday 10:00 EDT (14:00Z).
        let cal = nine_to_five(New_York);
        let fri = utc("2026-03-06T21:00:00Z");
        assert_eq!(
            cal.add_business(fri, Duration::hours(2)),
            utc("2026-03-09T14:00:00Z")
        );
        assert_eq!(
            cal.business_between(fri, utc("2026-03-09T14:00:00Z")),
            Duration::hours(2)
        );
    }

    #[test]
    fn new_york_fall_back_is_exact() {
        // DST ends Sunday 2026-11-01: Friday 16:00 EDT (20:00Z) + 2 h = Monday 10:00 EST (15:00Z).
        let cal = nine_to_five(New_York);
        assert_eq!(
            cal.add_business(utc("2026-10-30T20:00:00Z"), Duration::hours(2)),
            utc("2026-11-02T15:00:00Z")
        );
    }

    #[test]
    fn london_changes_are_exact() {
        // BST starts 2026-03-29 and ends 2026-10-25, both Sundays.
        let cal = nine_to_five(London);
        assert_eq!(
            cal.add_business(utc("2026-03-27T16:00:00Z"), Duration::hours(2)),
            utc("2026-03-30T09:00:00Z")
        );
        assert_eq!(
            cal.add_business(utc("2026-10-23T15:00:00Z"), Duration::hours(2)),
            utc("2026-10-26T10:00:00Z")
        );
        // Two weeks spanning the change still hold 80 business hours.
        assert_eq!(
            cal.business_between(utc("2026-03-22T00:00:00Z"), utc("2026-04-05T00:00:00Z")),
            Duration::hours(80)
        );
    }

    #[test]
    fn hours_spanning_the_jump_count_real_time() {
        // 00:00-06:00 on 2026-03-08 in New York is only five real hours.
        let cal = every_day(New_York, t(0, 0), t(6, 0));
        let day = cal.business_between(utc("2026-03-08T04:00:00Z"), utc("2026-03-08T12:00:00Z"));
        assert_eq!(day, Duration::hours(5));
        // ... and 00:00-06:00 on 2026-11-01 is seven.
        let day = cal.business_between(utc("2026-11-01T03:00:00Z"), utc("2026-11-01T12:00:00Z"));
        assert_eq!(day, Duration::hours(7));
    }

    #[test]
    fn nonexistent_opening_opens_when_the_clocks_jump() {
        // 02:30 does not exist in New York on 2026-03-08: the office opens at the jump (03:00 EDT, 07:00Z).
        let cal = every_day(New_York, t(2, 30), t(4, 0));
        assert_eq!(
            cal.next_open(utc("2026-03-08T05:00:00Z")),
            utc("2026-03-08T07:00:00Z")
        );
        assert_eq!(
            cal.add_business(utc("2026-03-08T05:00:00Z"), Duration::hours(1)),
            utc("2026-03-08T08:00:00Z")
        );
        // Closing inside the gap closes at the jump: 01:00-02:30 that day is one real hour.
        let cal = every_day(New_York, t(1, 0), t(2, 30));
        assert_eq!(
            cal.business_between(utc("2026-03-08T05:00:00Z"), utc("2026-03-08T08:00:00Z")),
            Duration::hours(1)
        );
    }

    #[test]
    fn repeated_time_means_its_first_occurrence() {
        // 01:30 happens twice in New York on 2026-11-01; opening at the first (EDT, 05:30Z),
        // closing at 03:00 EST (08:00Z): 2.5 real hours.
        let cal = every_day(New_York, t(1, 30), t(3, 0));
        assert_eq!(
            cal.next_open(utc("2026-11-01T04:00:00Z")),
            utc("2026-11-01T05:30:00Z")
        );
        let day = cal.business_between(utc("2026-11-01T04:00:00Z"), utc("2026-11-01T09:00:00Z"));
        assert_eq!(day, Duration::minutes(150));
    }

    #[test]
    fn very_long_clock_ends() {
        let cal = nine_to_five(Tokyo);
        let start = local(Tokyo, 2026, 3, 2, 9, 0);
        let end = cal.add_business(start, Duration::hours(8 * 5 * 52));
        assert_eq!(
            cal.business_between(start, end),
            Duration::hours(8 * 5 * 52)
        );
    }
}
