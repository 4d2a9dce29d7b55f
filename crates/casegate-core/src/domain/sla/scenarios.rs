//! The scenarios, end to end through policies, calendars and clocks.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Asia::{Riyadh, Tokyo};
use chrono_tz::Europe::London;
use chrono_tz::Tz;

use super::*;

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
}

fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, m: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, m, 0)
        .single()
        .expect("unambiguous test time")
        .with_timezone(&Utc)
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("valid RFC 3339 in test")
}

fn initial(tier: &str, severity: u8) -> ClockSpec {
    Policies::vendor_defaults()
        .get(tier, severity)
        .expect("default policy")
        .initial
}

fn riyadh() -> Calendar {
    Calendar::sunday_to_thursday(Riyadh, t(8, 0), t(17, 0)).expect("valid calendar")
}

fn tokyo() -> Calendar {
    Calendar::monday_to_friday(Tokyo, t(9, 0), t(18, 0)).expect("valid calendar")
}

// 2026-03-01 is a Sunday; 2026-03-06 a Friday, 07/08 the weekend, 09 a Monday.

#[test]
fn saudi_sunday_is_a_business_day() {
    let cal = riyadh();
    assert!(
        cal.is_business(at(Riyadh, 2026, 3, 1, 10, 0)),
        "Sunday 10:00"
    );
    assert!(!cal.is_business(at(Riyadh, 2026, 3, 6, 10, 0)), "Friday");
    assert!(!cal.is_business(at(Riyadh, 2026, 3, 7, 10, 0)), "Saturday");
}

#[test]
fn saudi_premium_sev3_on_sunday_is_due_the_same_sunday() {
    let start = at(Riyadh, 2026, 3, 1, 10, 0);
    let due_at = due(
        start,
        &initial("premium", 3),
        3,
        &riyadh(),
        &WeekendCrew::default(),
    );
    assert_eq!(due_at, at(Riyadh, 2026, 3, 1, 14, 0));
    assert_eq!(due_at, utc("2026-03-01T11:00:00Z"));
}

#[test]
fn saudi_standard_sev3_on_sunday_is_due_monday_morning() {
    // 8 business hours: Sunday 10:00-17:00 is 7, the last one is Monday 08:00-09:00.
    let start = at(Riyadh, 2026, 3, 1, 10, 0);
    let due_at = due(
        start,
        &initial("standard", 3),
        3,
        &riyadh(),
        &WeekendCrew::default(),
    );
    assert_eq!(due_at, at(Riyadh, 2026, 3, 2, 9, 0));
}

#[test]
fn saudi_thursday_evening_waits_over_friday_and_saturday() {
    let start = at(Riyadh, 2026, 3, 5, 16, 0);
    let due_at = due(
        start,
        &initial("standard", 2),
        2,
        &riyadh(),
        &WeekendCrew::none(),
    );
    assert_eq!(
        due_at,
        at(Riyadh, 2026, 3, 8, 11, 0),
        "1 h Thursday, 3 h Sunday"
    );
}

#[test]
fn tokyo_standard_sev3_on_friday_evening_is_due_monday() {
    // Friday 17:00-18:00 is 1 business hour, the other 7 run Monday 09:00-16:00.
    let start = at(Tokyo, 2026, 3, 6, 17, 0);
    let due_at = due(
        start,
        &initial("standard", 3),
        3,
        &tokyo(),
        &WeekendCrew::default(),
    );
    assert_eq!(due_at, at(Tokyo, 2026, 3, 9, 16, 0));
    assert_eq!(due_at, utc("2026-03-09T07:00:00Z"));
}

#[test]
fn premium_sev1_on_saturday_is_due_an_hour_later_and_wakes_the_crew() {
    let cal = tokyo();
    let crew = WeekendCrew::default();
    let start = at(Tokyo, 2026, 3, 7, 11, 20);
    assert_eq!(
        due(start, &initial("premium", 1), 1, &cal, &crew),
        at(Tokyo, 2026, 3, 7, 12, 20)
    );
    assert!(wakes_weekend_crew(start, 1, &cal, &crew));
}

#[test]
fn standard_sev4_on_saturday_waits_for_monday() {
    let cal = tokyo();
    let crew = WeekendCrew::default();
    let start = at(Tokyo, 2026, 3, 7, 11, 20);
    let spec = initial("standard", 4);
    let due_at = due(start, &spec, 4, &cal, &crew);
    assert_eq!(
        warn_at(start, due_at, 0.0, &spec, 4, &cal, &crew),
        at(Tokyo, 2026, 3, 9, 9, 0),
        "clock starts Monday"
    );
    assert_eq!(
        due_at,
        at(Tokyo, 2026, 3, 10, 16, 0),
        "16 h: Monday 9, Tuesday 7"
    );
    assert!(!wakes_weekend_crew(start, 4, &cal, &crew));
}

#[test]
fn standard_sev1_on_saturday_runs_on_crew_hours() {
    let start = at(Tokyo, 2026, 3, 7, 8, 0);
    let due_at = due(
        start,
        &initial("standard", 1),
        1,
        &tokyo(),
        &WeekendCrew::default(),
    );
    assert_eq!(due_at, at(Tokyo, 2026, 3, 7, 10, 0));
}

#[test]
fn holidays_are_skipped() {
    let holiday = NaiveDate::from_ymd_opt(2026, 3, 9).expect("date");
    let cal = tokyo().with_holidays([holiday]);
    let start = at(Tokyo, 2026, 3, 6, 17, 0);
    let due_at = due(
        start,
        &initial("standard", 3),
        3,
        &cal,
        &WeekendCrew::default(),
    );
    assert_eq!(due_at, at(Tokyo, 2026, 3, 10, 16, 0));
}

#[test]
fn lowering_severity_moves_the_due_time() {
    let cal = tokyo();
    let crew = WeekendCrew::default();
    let start = at(Tokyo, 2026, 3, 4, 10, 0);
    let sev2 = due(start, &initial("standard", 2), 2, &cal, &crew);
    let sev4 = due(start, &initial("standard", 4), 4, &cal, &crew);
    assert_eq!(sev2, at(Tokyo, 2026, 3, 4, 14, 0));
    assert_eq!(sev4, at(Tokyo, 2026, 3, 5, 17, 0));
}

#[test]
fn new_york_dst_2026_is_exact_to_the_minute() {
    let cal = Calendar::monday_to_friday(New_York, t(9, 0), t(17, 0)).expect("valid calendar");
    let crew = WeekendCrew::none();
    let spec = initial("standard", 2); // 4 business hours
    // Spring forward, Sunday 2026-03-08: Friday 15:00 EST -> Monday 11:00 EDT.
    assert_eq!(
        due(utc("2026-03-06T20:00:00Z"), &spec, 2, &cal, &crew),
        utc("2026-03-09T15:00:00Z")
    );
    // Fall back, Sunday 2026-11-01: Friday 15:00 EDT -> Monday 11:00 EST.
    assert_eq!(
        due(utc("2026-10-30T19:00:00Z"), &spec, 2, &cal, &crew),
        utc("2026-11-02T16:00:00Z")
    );
    // Around the clock is wall-clock time: 1 real hour across the jump.
    let sev1 = initial("premium", 1);
    assert_eq!(
        due(utc("2026-03-08T06:30:00Z"), &sev1, 1, &cal, &crew),
        utc("2026-03-08T07:30:00Z")
    );
}

#[test]
fn london_dst_2026_is_exact_to_the_minute() {
    let cal = Calendar::monday_to_friday(London, t(9, 0), t(17, 0)).expect("valid calendar");
    let crew = WeekendCrew::none();
    let spec = initial("standard", 3); // 8 business hours
    // Spring forward, Sunday 2026-03-29: Friday 13:00 GMT -> Monday 13:00 BST.
    assert_eq!(
        due(utc("2026-03-27T13:00:00Z"), &spec, 3, &cal, &crew),
        utc("2026-03-30T12:00:00Z")
    );
    // Fall back, Sunday 2026-10-25: Friday 13:00 BST -> Monday 13:00 GMT.
    assert_eq!(
        due(utc("2026-10-23T12:00:00Z"), &spec, 3, &cal, &crew),
        utc("2026-10-26T13:00:00Z")
    );
}
