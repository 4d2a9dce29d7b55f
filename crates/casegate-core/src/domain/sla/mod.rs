//! SLA domain, PURE: policies, business calendars, clocks and the severity a
//! customer states. No I/O and no clock reads: every instant (`start`, `now`) is an
//! argument, so every rule is testable with any clock.
//!
//! Why it is built this way:
//! - Instants are UTC (`DateTime<Utc>`); wall-clock reasoning happens only inside a
//!   [`Calendar`], one local day at a time, in the region's IANA time zone. That is
//!   what keeps business-time arithmetic exact across DST changes and lets Sunday be
//!   an ordinary business day for a Sunday–Thursday country.
//! - A business window is `[open, close)`; a clock that runs out at the end of a day
//!   is due at the close, not at the next opening.
//! - The weekend crew is not a second calendar: it lends its hours on the calendar's
//!   non-work days to the severities it takes, and only to those; every other
//!   business clock stops until the next business day (see [`WeekendCrew`]).
//! - Calendars that could never open are rejected when built, so no computation here
//!   can loop without end.
//! - Severity parsing reports an invalid value instead of guessing, so the decision
//!   step can fall back to the default and record an event.

pub mod calendar;
pub mod clock;
pub mod policy;
pub mod settings;
pub mod severity;

#[cfg(test)]
mod scenarios;

pub use calendar::{Calendar, CalendarError, WorkWeek};
pub use clock::{DEFAULT_WARN_SHARE, WeekendCrew, due, time_left, wakes_weekend_crew, warn_at};
pub use policy::{ClockMode, ClockSpec, MAX_CLOCK_MINUTES, Policies, Policy, PolicyError};
pub use settings::{RegionHours, SlaSettings};
pub use severity::{SeverityFound, from_mail};
