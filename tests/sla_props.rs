//! Property tests of the business-time arithmetic in `domain::sla::calendar`.
//!
//! "Never outside business hours" is defined precisely: business windows are
//! `[open, close)`. For a positive duration the result `r` lies in `(open, close]`
//! of some window, i.e. the second just before `r` is business time; `r` itself is
//! business time unless the clock ran out exactly at a close. For a zero duration
//! the result is where the clock starts: `next_open(start)`, which is business time.

use std::collections::BTreeSet;

use casegate::domain::sla::Calendar;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Asia::{Riyadh, Tokyo};
use chrono_tz::Europe::London;
use chrono_tz::Tz;
use proptest::prelude::*;

const SECOND: Duration = Duration::seconds(1);

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
}

fn jan1() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid instant")
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date") + Duration::days(i64::from(n))
}

/// Office calendars: hours well away from the DST jumps, so a wall-clock oracle
/// (minute by minute) is an exact model of them.
fn office(which: u8) -> Calendar {
    let cal = match which {
        0 => Calendar::monday_to_friday(New_York, t(9, 0), t(17, 0)),
        1 => Calendar::monday_to_friday(London, t(9, 0), t(17, 30)),
        2 => Calendar::sunday_to_thursday(Riyadh, t(8, 0), t(17, 0)),
        _ => Calendar::monday_to_friday(Tokyo, t(9, 0), t(18, 0)),
    };
    cal.expect("valid calendar")
}

/// Calendars whose hours straddle the DST jumps, to stress gaps and repeated hours.
fn odd(which: u8) -> Calendar {
    let cal = match which {
        0 => Calendar::new(New_York, t(1, 0), t(4, 0), [true; 7], BTreeSet::new()),
        1 => Calendar::new(London, t(0, 30), t(2, 30), [true; 7], BTreeSet::new()),
        _ => Calendar::new(
            New_York,
            t(2, 30),
            t(3, 30),
            [true, false, true, false, true, false, true],
            BTreeSet::new(),
        ),
    };
    cal.expect("valid calendar")
}

fn holidays() -> impl Strategy<Value = BTreeSet<NaiveDate>> {
    proptest::collection::btree_set(0u32..420, 0..25)
        .prop_map(|days| days.into_iter().map(day).collect())
}

fn any_calendar() -> impl Strategy<Value = Calendar> {
    let base = prop_oneof![(0u8..4).prop_map(office), (0u8..3).prop_map(odd)];
    (base, holidays()).prop_map(|(cal, h)| cal.with_holidays(h))
}

fn office_calendar() -> impl Strategy<Value = Calendar> {
    ((0u8..4).prop_map(office), holidays()).prop_map(|(cal, h)| cal.with_holidays(h))
}

/// A New York or London office calendar (DST zones).
fn dst_calendar() -> impl Strategy<Value = Calendar> {
    ((0u8..2).prop_map(office), holidays()).prop_map(|(cal, h)| cal.with_holidays(h))
}

/// Starts in 2026, to the second; half of them in the ten days before one of the
/// 2026 DST changes of New York (03-08, 11-01) or London (03-29, 10-25).
fn start_2026() -> impl Strategy<Value = DateTime<Utc>> {
    let anywhere = (0i64..365 * 86_400).prop_map(|s| jan1() + Duration::seconds(s));
    let changes = [(3, 8), (11, 1), (3, 29), (10, 25)];
    let near_change = (0usize..4, 0i64..10 * 86_400).prop_map(move |(i, s)| {
        let (m, d) = changes[i];
        let change = Utc
            .with_ymd_and_hms(2026, m, d, 0, 0, 0)
            .single()
            .expect("valid instant");
        change - Duration::seconds(s)
    });
    prop_oneof![anywhere, near_change]
}

fn minute_start_2026() -> impl Strategy<Value = DateTime<Utc>> {
    start_2026().prop_map(|s| s - Duration::seconds(s.timestamp().rem_euclid(60)))
}

/// Up to two weeks of an eight-hour day, in minutes.
fn business_minutes() -> impl Strategy<Value = Duration> {
    (0i64..=80 * 60).prop_map(Duration::minutes)
}

/// The wall-clock model of an office calendar: business iff the local date is a
/// work day and no holiday, and the local time is in `[open, close)`.
fn oracle_is_business(cal: &Calendar, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&cal.tz);
    let date = local.date_naive();
    let day_ok = cal.work_days[date.weekday().num_days_from_monday() as usize]
        && !cal.holidays.contains(&date);
    day_ok && cal.open <= local.time() && local.time() < cal.close
}

/// `add_business` by counting business minutes one at a time (minute-aligned starts).
fn oracle_add(cal: &Calendar, start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let mut at = start;
    let mut left = d.num_minutes();
    if left == 0 {
        while !oracle_is_business(cal, at) {
            at += Duration::minutes(1);
        }
        return at;
    }
    loop {
        if oracle_is_business(cal, at) {
            left -= 1;
            if left == 0 {
                return at + Duration::minutes(1);
            }
        }
        at += Duration::minutes(1);
    }
}

/// Midnight-to-midnight of a local date, as UTC instants.
fn whole_day(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .expect("midnight exists")
            .with_timezone(&Utc)
    };
    (midnight(date), midnight(date + Duration::days(1)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn monotonic_in_the_duration(cal in any_calendar(), start in start_2026(), a in business_minutes(), b in business_minutes()) {
        let (short, long) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(cal.add_business(start, short) <= cal.add_business(start, long));
    }

    #[test]
    fn monotonic_in_the_start(cal in any_calendar(), a in start_2026(), b in start_2026(), d in business_minutes()) {
        let (early, late) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(cal.add_business(early, d) <= cal.add_business(late, d));
    }

    #[test]
    fn never_lands_outside_business_hours(cal in any_calendar(), start in start_2026(), d in business_minutes()) {
        let end = cal.add_business(start, d);
        prop_assert!(end >= start);
        if d.is_zero() {
            prop_assert_eq!(end, cal.next_open(start));
            prop_assert!(cal.is_business(end));
        } else {
            prop_assert!(cal.is_business(end - SECOND), "the second before {} is not business time", end);
            prop_assert_eq!(cal.business_between(end - SECOND, end), SECOND);
        }
    }

    #[test]
    fn outside_hours_only_exactly_at_close(cal in office_calendar(), start in start_2026(), halves in 0i64..=160) {
        // Clocks of whole half hours from an opening often run out exactly at a close.
        let d = Duration::minutes(30 * halves);
        for from in [start, cal.next_open(start)] {
            let end = cal.add_business(from, d);
            if !cal.is_business(end) {
                prop_assert!(!d.is_zero());
                prop_assert_eq!(end.with_timezone(&cal.tz).time(), cal.close);
                prop_assert_eq!(cal.next_open(end), cal.add_business(end, Duration::zero()));
                prop_assert!(cal.next_open(end) > end, "a close is not business time");
            }
        }
    }

    #[test]
    fn business_between_inverts_add_business(cal in any_calendar(), start in start_2026(), d in business_minutes()) {
        let inside = cal.next_open(start);
        prop_assert!(cal.is_business(inside));
        prop_assert_eq!(cal.business_between(inside, cal.add_business(inside, d)), d);
        // Time before the first opening is not business time, so any start inverts too.
        prop_assert_eq!(cal.business_between(start, cal.add_business(start, d)), d);
    }

    #[test]
    fn exact_across_dst_against_a_wall_clock_model(cal in dst_calendar(), start in minute_start_2026(), d in business_minutes()) {
        prop_assert_eq!(cal.add_business(start, d), oracle_add(&cal, start, d));
    }

    #[test]
    fn is_business_matches_the_wall_clock_model(cal in office_calendar(), at in start_2026()) {
        prop_assert_eq!(cal.is_business(at), oracle_is_business(&cal, at));
    }

    #[test]
    fn holidays_never_count(cal in office_calendar(), extra in holidays(), start in start_2026(), d in business_minutes()) {
        let with = cal.clone().with_holidays(extra.iter().copied());
        for holiday in &with.holidays {
            let (from, to) = whole_day(with.tz, *holiday);
            prop_assert_eq!(with.business_between(from, to), Duration::zero());
        }
        let end = with.add_business(start, d);
        if !d.is_zero() {
            prop_assert!(!with.holidays.contains(&with.local_date(end - SECOND)));
        }
        prop_assert!(end >= cal.add_business(start, d), "more holidays never make a clock end sooner");
    }

    #[test]
    fn sunday_to_thursday_never_counts_friday_or_saturday(h in holidays(), start in start_2026(), d in business_minutes()) {
        let cal = office(2).with_holidays(h);
        let end = cal.add_business(start, d);
        if !d.is_zero() {
            let weekday = cal.local_date(end - SECOND).weekday();
            prop_assert!(!matches!(weekday, Weekday::Fri | Weekday::Sat), "counted a {:?}", weekday);
        }
        let date = cal.local_date(start);
        let (from, to) = whole_day(Riyadh, date);
        let expected = match date.weekday() {
            Weekday::Fri | Weekday::Sat => Duration::zero(),
            _ if cal.holidays.contains(&date) => Duration::zero(),
            _ => Duration::hours(9),
        };
        prop_assert_eq!(cal.business_between(from, to), expected);
    }
}
