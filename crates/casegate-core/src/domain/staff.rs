//! The staff settings the rules read: the engineers, the queues they work, each queue's
//! escalation address, and how an engineer's reply proves itself. `config` reads them
//! from the `[staff]` section.

use std::collections::BTreeMap;

use super::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engineer {
    /// Lower-case address the engineer writes from.
    pub address: String,
    pub name: String,
    pub region: String,
    pub queues: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct StaffSettings {
    pub engineers: Vec<Engineer>,
    /// Queue name -> escalation address (SLA breaches).
    pub escalation: BTreeMap<String, String>,
    /// Escalation address for queues without their own.
    pub default_escalation: Option<String>,
    /// HMAC key for per-case reply addresses; `None` disables engineer replies.
    pub reply_key: Option<Secret>,
    /// authserv-ids of our own MTA, whose Authentication-Results are trusted.
    pub trusted_authserv_ids: Vec<String>,
    /// Only the topmost N Authentication-Results fields are read: our MTA adds its own
    /// on top (RFC 8601 §5); anything below came from the sender or an earlier hop.
    pub trusted_authres_topmost: usize,
}

impl StaffSettings {
    pub fn engineer(&self, address: &str) -> Option<&Engineer> {
        self.engineers
            .iter()
            .find(|e| e.address.eq_ignore_ascii_case(address))
    }

    /// Everyone who works the queue.
    pub fn members(&self, queue: &str) -> Vec<&Engineer> {
        self.engineers
            .iter()
            .filter(|e| e.queues.iter().any(|q| q == queue))
            .collect()
    }

    pub fn escalation_for(&self, queue: &str) -> Option<&str> {
        self.escalation
            .get(queue)
            .or(self.default_escalation.as_ref())
            .map(String::as_str)
    }
}
