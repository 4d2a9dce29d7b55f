//! Outbound mail delivery: the SMTP client ([`smtp`]) and the sender worker
//! ([`worker`]) that empties the transactional outbox (`store::outbox`).
//!
//! Wiring: the commit step queues rows inside the case transaction (from
//! `store/cases.rs`: `super::outbox::insert_outbox(&mut tx, &row, now)`), then, once
//! committed, notifies the worker's `wake` (`notify_one`). The daemon runs [`run`];
//! `casegate run --once` calls [`drain_once`].

pub mod alert;
pub mod smtp;
pub mod worker;

pub use alert::FailureAlerts;
pub use smtp::{SmtpClient, SmtpError};
pub use worker::{
    DrainReport, IDLE_POLL, OutboxError, RetryPolicy, drain_once, drain_once_alerting, run,
    run_alerting,
};
