//! The kinds of audit event a case records: one closed set, written to and read back
//! from the events table by name ([`EventKind::as_str`], [`EventKind::parse`]).

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What happened to a case (the `kind` column of the events table).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The name stored in the events table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }
    };
}

event_kinds! {
    CaseOpened => "case_opened",
    Triaged => "triaged",
    RoutingDeadEnd => "routing_dead_end",
    SeverityInvalid => "severity_invalid",
    OutOfScope => "out_of_scope",
    WeekendCrew => "weekend_crew",
    NoSlaPolicy => "no_sla_policy",
    /// A new case linked to an older one (and the older one's side of it).
    Linked => "linked",
    LinkedFromNewCase => "linked_from_new_case",
    /// Something a reviewer should look at (a forged staff address, a foreign reference).
    Security => "security",
    Feedback => "feedback",
    CustomerUpdate => "customer_update",
    CaseReopened => "case_reopened",
    AutoReplySuppressed => "auto_reply_suppressed",
    AutomaticReplyNoted => "automatic_reply_noted",
    CommandsRefused => "commands_refused",
    InternalNote => "internal_note",
    EngineerReply => "engineer_reply",
    OwnerChanged => "owner_changed",
    SeverityChanged => "severity_changed",
    Transferred => "transferred",
    CaseClosed => "case_closed",
    LinkedReference => "linked_reference",
    /// Issue 18b: `#kb draft` made an article draft; a draft was published.
    KbDrafted => "kb_drafted",
    KbPublished => "kb_published",
    /// `#split`: the new case's side and the old case's side.
    SplitFrom => "split_from",
    SplitInto => "split_into",
    /// A planned mail that could not be composed (the mail is still filed).
    NoticeFailed => "notice_failed",
    SlaWarning => "sla_warning",
    SlaBreached => "sla_breached",
    DeliveryFailed => "delivery_failed",
    DeliveryRetried => "delivery_retried",
    Quarantined => "quarantined",
    QuarantineDiscarded => "quarantine_discarded",
    ReleasedFromQuarantine => "released_from_quarantine",
    /// The case's resolution path was set (`#known`, `#bug`, `#resolution`).
    ResolutionSet => "resolution_set",
}

impl EventKind {
    /// The kind stored under `name`; `None` for a name casegate never writes.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Compares by stored name, so a report or a test can ask `kind == "security"`.
impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_itself_and_names_are_unique() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert_eq!(EventKind::parse("case_openned"), None);
    }
}
