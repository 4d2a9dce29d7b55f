//! The daemon's counters and its health, served by the admin listener ([`crate::admin`]).
//!
//! One registry per process ([`metrics`]): the workers count what they do as they do it,
//! and the listener encodes the lot in the Prometheus text format. Gauges read from the
//! database (the outbox by status) are set when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::entitlement::Entitlement;
use crate::pipeline::{Filed, Outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabel {
    pub mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub mailbox: String,
    /// `opened` (a new case), `added` (to an existing case), `duplicate`, `quarantined`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub mailbox: String,
    /// [`OutcomeKind::as_str`]: one of eight.
    pub kind: &'static str,
}

/// A new case's language (`en`, `ja`) and queue (a queue of the routing file, or
/// `none`): values from a bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NewCaseLabels {
    pub language: &'static str,
    pub queue: String,
}

/// What a committed mail was, as the operators count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    /// A new case for an entitled customer.
    New,
    /// A mail on an existing case (customer or engineer).
    Reply,
    Duplicate,
    Bounce,
    Automatic,
    Quarantined,
    /// A new case refused: no contract, expired, product not covered.
    Refused,
    /// A new case redirected to Sales or Professional Services.
    OutOfScope,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 8] = [
        OutcomeKind::New,
        OutcomeKind::Reply,
        OutcomeKind::Duplicate,
        OutcomeKind::Bounce,
        OutcomeKind::Automatic,
        OutcomeKind::Quarantined,
        OutcomeKind::Refused,
        OutcomeKind::OutOfScope,
    ];

    pub fn of(outcome: &Outcome) -> OutcomeKind {
        match outcome {
            Outcome::Stored { filed, .. } => match filed {
                Filed::Opened { entitlement, .. } => match entitlement {
                    Entitlement::Entitled => OutcomeKind::New,
                    Entitlement::OutOfScope => OutcomeKind::OutOfScope,
                    Entitlement::NoContract | Entitlement::Expired | Entitlement::NotCovered => {
                        OutcomeKind::Refused
                    }
                },
                Filed::Reply => OutcomeKind::Reply,
                Filed::Bounce => OutcomeKind::Bounce,
                Filed::Automatic => OutcomeKind::Automatic,
            },
            Outcome::Duplicate { .. } => OutcomeKind::Duplicate,
            Outcome::Quarantined { .. } => OutcomeKind::Quarantined,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::New => "new",
            OutcomeKind::Reply => "reply",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::Bounce => "bounce",
            OutcomeKind::Automatic => "automatic",
            OutcomeKind::Quarantined => "quarantined",
            OutcomeKind::Refused => "refused",
            OutcomeKind::OutOfScope => "out_of_scope",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlaClockLabel {
    /// `at_risk` (past the warning, not yet due) or `overdue` (past the due time).
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    /// The target triple and profile it was built for (from `build.rs`).
    pub target: &'static str,
    pub profile: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the daemon exports, and what `/readyz` is told by the workers.
pub struct Metrics {
    pub registry: Registry,
    pub mails_fetched: Family<MailboxLabel, Counter>,
    pub outcomes: Family<OutcomeLabels, Counter>,
    pub kinds: Family<KindLabels, Counter>,
    pub cases_opened: Family<NewCaseLabels, Counter>,
    pub batch_commit_seconds: Family<MailboxLabel, Histogram, fn() -> Histogram>,
    pub arrival_to_commit_seconds: Family<MailboxLabel, Histogram, fn() -> Histogram>,
    pub imap_connected: Family<MailboxLabel, Gauge>,
    pub imap_reconnects: Family<MailboxLabel, Counter>,
    pub outbox_rows: Family<StatusLabel, Gauge>,
    pub outbox_sent: Counter,
    pub outbox_failed: Counter,
    pub outbox_send_seconds: Histogram,
    pub sla_warnings: Counter,
    pub sla_breaches: Counter,
    /// Running clocks past their warning (at risk) or their due time (read from the
    /// database at scrape time).
    pub sla_clocks: Family<SlaClockLabel, Gauge>,
    pub reloads: Counter,
    pub reload_failures: Counter,
    /// Per configured mailbox: `None` while connected, else why not.
    mailboxes: Mutex<BTreeMap<String, Option<String>>>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("casegate");
        let m = Metrics {
            mails_fetched: Family::default(),
            outcomes: Family::default(),
            kinds: Family::default(),
            cases_opened: Family::default(),
            batch_commit_seconds: Family::new_with_constructor(latency_histogram),
            arrival_to_commit_seconds: Family::new_with_constructor(latency_histogram),
            imap_connected: Family::default(),
            imap_reconnects: Family::default(),
            outbox_rows: Family::default(),
            outbox_sent: Counter::default(),
            outbox_failed: Counter::default(),
            outbox_send_seconds: latency_histogram(),
            sla_warnings: Counter::default(),
            sla_breaches: Counter::default(),
            sla_clocks: Family::default(),
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            mailboxes: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "mails_fetched",
            "Mails fetched from the mailbox",
            m.mails_fetched.clone(),
        );
        r.register(
            "mail_outcomes",
            "Mails committed, by outcome (opened, added, duplicate, quarantined)",
            m.outcomes.clone(),
        );
        r.register(
            "mails",
            "Mails committed, by kind (new, reply, duplicate, bounce, automatic, quarantined, refused, out_of_scope)",
            m.kinds.clone(),
        );
        r.register(
            "cases_opened",
            "Cases opened, by language and queue",
            m.cases_opened.clone(),
        );
        r.register(
            "batch_commit_seconds",
            "Time to write and commit one fetch batch",
            m.batch_commit_seconds.clone(),
        );
        r.register(
            "arrival_to_commit_seconds",
            "From the server's receipt of a mail (INTERNALDATE) to its commit",
            m.arrival_to_commit_seconds.clone(),
        );
        r.register(
            "imap_connected",
            "1 while the mailbox's IMAP connection is up",
            m.imap_connected.clone(),
        );
        r.register(
            "imap_reconnects",
            "IMAP connections lost and retried",
            m.imap_reconnects.clone(),
        );
        r.register(
            "outbox_rows",
            "Outbox rows by status (read from the database at scrape time)",
            m.outbox_rows.clone(),
        );
        r.register(
            "outbox_sent",
            "Outbound mails delivered by this process",
            m.outbox_sent.clone(),
        );
        r.register(
            "outbox_failed",
            "Outbound mails that failed for good in this process",
            m.outbox_failed.clone(),
        );
        r.register(
            "outbox_send_seconds",
            "Time to deliver one outbound mail",
            m.outbox_send_seconds.clone(),
        );
        r.register("sla_warnings", "SLA warnings sent", m.sla_warnings.clone());
        r.register(
            "sla_breaches",
            "SLA breaches escalated",
            m.sla_breaches.clone(),
        );
        r.register(
            "sla_clocks",
            "Running SLA clocks at risk (past the warning) or overdue (read from the database at scrape time)",
            m.sla_clocks.clone(),
        );
        r.register(
            "reloads",
            "Configuration reloads applied",
            m.reloads.clone(),
        );
        r.register(
            "reload_failures",
            "Configuration reloads refused",
            m.reload_failures.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                target: env!("CASEGATE_BUILD_TARGET"),
                profile: env!("CASEGATE_BUILD_PROFILE"),
            })
            .set(1);
        r.register("build_info", "The running version", build);
        Metrics { registry, ..m }
    }

    /// Count one committed mail.
    pub fn count_outcome(&self, mailbox: &str, outcome: &Outcome) {
        let label = match outcome {
            Outcome::Stored { opened: true, .. } => "opened",
            Outcome::Stored { opened: false, .. } => "added",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Quarantined { .. } => "quarantined",
        };
        self.outcomes
            .get_or_create(&OutcomeLabels {
                mailbox: mailbox.to_string(),
                outcome: label,
            })
            .inc();
        self.kinds
            .get_or_create(&KindLabels {
                mailbox: mailbox.to_string(),
                kind: OutcomeKind::of(outcome).as_str(),
            })
            .inc();
        if let Outcome::Stored {
            filed: Filed::Opened {
                language, queue, ..
            },
            ..
        } = outcome
        {
            self.cases_opened
                .get_or_create(&NewCaseLabels {
                    language: language.as_str(),
                    queue: queue.clone().unwrap_or_else(|| "none".to_string()),
                })
                .inc();
        }
    }

    /// Every kind of a mailbox at 0 from the start, so that `rate()` and alerts see a
    /// series before its first mail.
    pub fn declare_mailbox(&self, mailbox: &str) {
        for kind in OutcomeKind::ALL {
            let _ = self.kinds.get_or_create(&KindLabels {
                mailbox: mailbox.to_string(),
                kind: kind.as_str(),
            });
        }
    }

    pub fn mailbox(&self, mailbox: &str) -> MailboxLabel {
        MailboxLabel {
            mailbox: mailbox.to_string(),
        }
    }

    /// The mailbox's connection is up (`None`) or down, and why.
    pub fn set_connection(&self, mailbox: &str, down: Option<String>) {
        self.imap_connected
            .get_or_create(&self.mailbox(mailbox))
            .set(i64::from(down.is_none()));
        if let Ok(mut m) = self.mailboxes.lock() {
            m.insert(mailbox.to_string(), down);
        }
    }

    /// This instance no longer reads the mailbox (another instance holds its lease): it
    /// is neither up nor down here.
    pub fn forget_connection(&self, mailbox: &str) {
        self.imap_connected
            .get_or_create(&self.mailbox(mailbox))
            .set(0);
        if let Ok(mut m) = self.mailboxes.lock() {
            m.remove(mailbox);
        }
    }

    /// True once the mailbox's connection is up (and while it stays up).
    pub fn connected(&self, mailbox: &str) -> bool {
        self.mailboxes
            .lock()
            .map(|m| matches!(m.get(mailbox), Some(None)))
            .unwrap_or(false)
    }

    /// Mailboxes whose connection is down, with the reason.
    pub fn mailboxes_down(&self) -> Vec<(String, String)> {
        self.mailboxes
            .lock()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}
