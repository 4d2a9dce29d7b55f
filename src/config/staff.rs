//! `[staff]`: the engineers, which queues they work, each queue's escalation address,
//! and how an engineer's reply proves itself (signed reply addresses, trusted MTA
//! authentication results).

use config::ValueKind;

use super::load::Reader;
use crate::domain::staff::{Engineer, StaffSettings};

pub(super) fn read(r: &mut Reader<'_>, known_queues: &[String]) -> StaffSettings {
    let mut staff = StaffSettings {
        engineers: engineers(r, known_queues),
        default_escalation: r
            .opt_string("staff.default_escalation")
            .map(|s| s.to_lowercase()),
        trusted_authserv_ids: r.string_list("staff.trusted_authserv_ids", &[]),
        trusted_authres_topmost: r.uint("staff.trusted_authres_topmost", 1, 1, 50) as usize,
        ..StaffSettings::default()
    };
    for queue in r.table_keys("staff.escalation") {
        let key = format!("staff.escalation.{queue}");
        if !known_queues.is_empty() && !known_queues.contains(&queue) {
            r.problem(
                None,
                &key,
                format!("unknown queue \"{queue}\" (not in the routing file)"),
            );
        }
        if let Some(addr) = r.opt_string(&key) {
            staff.escalation.insert(queue, addr.to_lowercase());
        }
    }
    staff.reply_key = r.secret_opt("staff.reply_key", "staff.reply_key_file");
    if let Some(k) = &staff.reply_key
        && k.expose().len() < crate::domain::token::MIN_KEY_LEN
    {
        r.problem(
            None,
            "staff.reply_key",
            format!(
                "too short: use at least {} characters",
                crate::domain::token::MIN_KEY_LEN
            ),
        );
    }
    staff
}

fn engineers(r: &mut Reader<'_>, known_queues: &[String]) -> Vec<Engineer> {
    let Some(v) = r.lookup("staff.engineers") else {
        return Vec::new();
    };
    let ValueKind::Array(items) = v.kind else {
        r.problem(
            None,
            "staff.engineers",
            "expected a list of tables ([[staff.engineers]])",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("staff.engineers[{i}]");
        let ValueKind::Table(t) = item.kind else {
            r.problem(
                None,
                &key,
                "expected a table with address, name, region, queues",
            );
            continue;
        };
        let text = |field: &str| match t.get(field).map(|v| &v.kind) {
            Some(ValueKind::String(s)) => Some(s.trim().to_string()),
            _ => None,
        };
        let queues: Vec<String> = match t.get("queues").map(|v| &v.kind) {
            Some(ValueKind::Array(qs)) => qs
                .iter()
                .filter_map(|q| match &q.kind {
                    ValueKind::String(s) => Some(s.trim().to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for field in t
            .keys()
            .filter(|k| !["address", "name", "region", "queues"].contains(&k.as_str()))
        {
            r.problem(None, &format!("{key}.{field}"), "unknown key");
        }
        let Some(address) = text("address").filter(|a| a.contains('@')) else {
            r.problem(
                None,
                &format!("{key}.address"),
                "missing or not an email address",
            );
            continue;
        };
        for q in queues
            .iter()
            .filter(|q| !known_queues.is_empty() && !known_queues.contains(q))
        {
            r.problem(
                None,
                &format!("{key}.queues"),
                format!("unknown queue \"{q}\" (not in the routing file)"),
            );
        }
        out.push(Engineer {
            name: text("name").unwrap_or_else(|| address.clone()),
            address: address.to_lowercase(),
            region: text("region").unwrap_or_default(),
            queues,
        });
    }
    out
}

/// Every queue some mail can reach needs someone to tell about its new cases: an
/// engineer who works it, or its own escalation address (`staff.escalation.QUEUE`).
pub(super) fn check_watched(
    r: &mut Reader<'_>,
    staff: &StaffSettings,
    routing: &crate::domain::routing::Routing,
) {
    for queue in crate::domain::routing::reachable_queues(routing) {
        if staff.members(&queue).is_empty() && !staff.escalation.contains_key(&queue) {
            r.warning(
                "staff.engineers",
                format!(
                    "queue \"{queue}\" gets mail from the routing rules but no engineer works it \
                     and it has no staff.escalation.{queue} address: its new cases notify nobody"
                ),
            );
        }
    }
}
