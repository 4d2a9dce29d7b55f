//! What casegate sends: the templates it writes from, and the kinds of outbound mail
//! the outbox stores (`outbox.kind`), with the rate limits' choice of which to count.

use std::fmt;

use serde::{Serialize, Serializer};

/// Every mail casegate writes from a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    Acknowledgement,
    RefusalNoContract,
    RefusalExpired,
    RefusalNotCovered,
    RedirectSales,
    RedirectProfessionalServices,
    SeverityChanged,
    CaseClosed,
    EngineerNotification,
    EngineerCommandError,
    SlaWarning,
    SlaBreach,
    ForwardOutOfScope,
    /// Staff: a notification to an engineer failed for good (to the escalation address).
    NotificationFailed,
    /// A known issue with a fix: please upgrade (`#known ISSUE fixed-in VERSION`).
    KnownIssueUpgrade,
    /// A known issue without a fix yet: the workaround (`#known ISSUE workaround`).
    KnownIssueWorkaround,
    /// Staff: a customer rated a case 1 or 2 (to the queue's lead).
    LowRating,
    /// Staff: a knowledge-base article draft for the engineer to edit (issue 18b).
    KbDraft,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 18] = [
        TemplateKind::Acknowledgement,
        TemplateKind::RefusalNoContract,
        TemplateKind::RefusalExpired,
        TemplateKind::RefusalNotCovered,
        TemplateKind::RedirectSales,
        TemplateKind::RedirectProfessionalServices,
        TemplateKind::SeverityChanged,
        TemplateKind::CaseClosed,
        TemplateKind::EngineerNotification,
        TemplateKind::EngineerCommandError,
        TemplateKind::SlaWarning,
        TemplateKind::SlaBreach,
        TemplateKind::ForwardOutOfScope,
        TemplateKind::NotificationFailed,
        TemplateKind::KnownIssueUpgrade,
        TemplateKind::KnownIssueWorkaround,
        TemplateKind::LowRating,
        TemplateKind::KbDraft,
    ];

    /// The file stem, snake_case (`refusal_no_contract`); also the outbox row's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Acknowledgement => "acknowledgement",
            TemplateKind::RefusalNoContract => "refusal_no_contract",
            TemplateKind::RefusalExpired => "refusal_expired",
            TemplateKind::RefusalNotCovered => "refusal_not_covered",
            TemplateKind::RedirectSales => "redirect_sales",
            TemplateKind::RedirectProfessionalServices => "redirect_professional_services",
            TemplateKind::SeverityChanged => "severity_changed",
            TemplateKind::CaseClosed => "case_closed",
            TemplateKind::EngineerNotification => "engineer_notification",
            TemplateKind::EngineerCommandError => "engineer_command_error",
            TemplateKind::SlaWarning => "sla_warning",
            TemplateKind::SlaBreach => "sla_breach",
            TemplateKind::ForwardOutOfScope => "forward_out_of_scope",
            TemplateKind::NotificationFailed => "notification_failed",
            TemplateKind::KnownIssueUpgrade => "known_issue_upgrade",
            TemplateKind::KnownIssueWorkaround => "known_issue_workaround",
            TemplateKind::LowRating => "low_rating",
            TemplateKind::KbDraft => "kb_draft",
        }
    }

    pub fn from_name(name: &str) -> Option<TemplateKind> {
        TemplateKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// True for mail to the customer, false for mail to engineers (and to the Sales or
    /// Professional Services desk).
    pub fn to_customer(self) -> bool {
        !matches!(
            self,
            TemplateKind::EngineerNotification
                | TemplateKind::EngineerCommandError
                | TemplateKind::SlaWarning
                | TemplateKind::SlaBreach
                | TemplateKind::ForwardOutOfScope
                | TemplateKind::NotificationFailed
                | TemplateKind::LowRating
                | TemplateKind::KbDraft
        )
    }
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an outbound mail is (the `kind` column of the outbox): a templated, automatic
/// mail, or one a person wrote that casegate sends on their behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundKind {
    Template(TemplateKind),
    /// The customer's mail, forwarded to Sales or Professional Services.
    Forward,
    /// An engineer's answer relayed to the customer (also with a severity notice).
    EngineerReply,
}

impl OutboundKind {
    /// The name stored in the outbox: the template's name, `forward` or `engineer_reply`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundKind::Template(t) => t.name(),
            OutboundKind::Forward => "forward",
            OutboundKind::EngineerReply => "engineer_reply",
        }
    }

    /// The kind stored under `name`; `None` for a name casegate never writes.
    pub fn parse(name: &str) -> Option<OutboundKind> {
        match name {
            "forward" => Some(OutboundKind::Forward),
            "engineer_reply" => Some(OutboundKind::EngineerReply),
            other => TemplateKind::from_name(other).map(OutboundKind::Template),
        }
    }
}

impl From<TemplateKind> for OutboundKind {
    fn from(t: TemplateKind) -> OutboundKind {
        OutboundKind::Template(t)
    }
}

impl fmt::Display for OutboundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for OutboundKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Compares by stored name, so a report or a test can ask `kind == "acknowledgement"`.
impl PartialEq<&str> for OutboundKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Which queued mail the rate limits count (RFC 3834 §2: an automatic responder limits
/// what it sends to one address), each since its own time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCounting {
    /// Automatic mail to the sender: every template that goes to a customer; mail a
    /// person wrote (forwards, engineer replies) does not count.
    pub automatic: Vec<OutboundKind>,
    pub automatic_since: chrono::DateTime<chrono::Utc>,
    /// Refusals, for "refuse a refused sender at most once per interval".
    pub refusals: Vec<OutboundKind>,
    pub refusals_since: chrono::DateTime<chrono::Utc>,
}

impl SentCounting {
    /// The rate limits' counts: automatic mail since `automatic_since`, refusals since
    /// `refusals_since`.
    pub fn since(
        automatic_since: chrono::DateTime<chrono::Utc>,
        refusals_since: chrono::DateTime<chrono::Utc>,
    ) -> SentCounting {
        SentCounting {
            automatic: TemplateKind::ALL
                .into_iter()
                .filter(|k| k.to_customer())
                .map(OutboundKind::Template)
                .collect(),
            automatic_since,
            refusals: [
                TemplateKind::RefusalNoContract,
                TemplateKind::RefusalExpired,
                TemplateKind::RefusalNotCovered,
            ]
            .map(OutboundKind::Template)
            .to_vec(),
            refusals_since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outbound_kind_reads_back_as_itself() {
        let mut all: Vec<OutboundKind> = TemplateKind::ALL.map(OutboundKind::Template).to_vec();
        all.extend([OutboundKind::Forward, OutboundKind::EngineerReply]);
        for k in all {
            assert_eq!(OutboundKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OutboundKind::parse("acknowledgment"), None);
    }

    #[test]
    fn rate_limit_counts_customer_templates_only() {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let counted: Vec<&str> = SentCounting::since(t, t)
            .automatic
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert!(counted.contains(&"acknowledgement"));
        assert!(counted.contains(&"case_closed"));
        assert!(!counted.contains(&"engineer_notification"));
    }

    #[test]
    fn the_rate_limit_counts_customer_templates_but_not_mail_a_person_wrote() {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let c = SentCounting::since(t, t);
        assert!(
            c.automatic
                .contains(&OutboundKind::Template(TemplateKind::Acknowledgement))
        );
        assert!(
            c.automatic
                .contains(&OutboundKind::Template(TemplateKind::RefusalExpired))
        );
        assert!(!c.automatic.contains(&OutboundKind::EngineerReply));
        assert!(!c.automatic.contains(&OutboundKind::Forward));
        assert!(
            !c.automatic
                .contains(&OutboundKind::Template(TemplateKind::SlaWarning))
        );
        assert_eq!(c.refusals.len(), 3);
    }
}
