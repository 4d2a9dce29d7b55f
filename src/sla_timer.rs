//! The SLA timer: sleeps until the next clock's warning or due time (read from the
//! due-time index), then warns the owner or the queue, or escalates a breach to the
//! queue's escalation address. Each exactly once per clock, also across restarts and
//! instances: the store records it and queues the mail in one guarded transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::domain::language::Language;
use crate::notices::{self, format_due};
use crate::runtime::Shutdown;
use crate::store::{CaseSummary, ClockAction, DueClock, Outbound, Store, StoreError};
use crate::templates::context::{SlaBreach, SlaClock, SlaWarning};
use crate::templates::{Rendered, TemplateContext, TemplateKind};

/// The longest sleep: new clocks started by other processes are seen within it.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How soon the timer looks again at due clocks another instance held (it is settling
/// them, or an intake batch is writing to their case).
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub warned: u64,
    pub breached: u64,
    /// Due clocks left alone because another instance (or the intake) held them.
    pub busy: u64,
}

/// Due clocks read at a time.
const READ: i64 = 200;

/// What the timer works with: the store, the configuration (templates, staff, SLA) and
/// the outbox sender's wake-up for the alerts it queues.
#[derive(Debug, Clone)]
pub struct SlaTimer {
    pub store: Store,
    pub config: Arc<Config>,
    pub outbox_wake: Arc<Notify>,
}

/// Handle every clock due at `now`, in units of work of the store's size.
pub async fn tick(timer: &SlaTimer, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
    let store = &timer.store;
    let mut report = TickReport::default();
    loop {
        let due = store.due_clocks(now, READ).await?;
        if due.is_empty() {
            return Ok(report);
        }
        let before = report;
        for unit in due.chunks(store.clocks_per_unit()) {
            settle(timer, unit, now, &mut report).await?;
        }
        // A full read that settled nothing can only hold clocks of missing cases, or
        // clocks another instance holds: they would come back at once; the next tick
        // looks again.
        let settled_any = (report.warned, report.breached) != (before.warned, before.breached);
        if (due.len() as i64) < READ || !settled_any {
            return Ok(report);
        }
    }
}

/// Settle `clocks` in one unit of work.
async fn settle(
    timer: &SlaTimer,
    clocks: &[DueClock],
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let config = &timer.config;
    let site_key = timer.store.site_key().to_vec();
    let mut work = timer.store.begin_work().await?;
    let mut settled = Vec::new();
    for clock in clocks {
        if !work.claim_clock(clock).await? {
            report.busy += 1;
            continue;
        }
        let action = if now >= clock.due_at {
            ClockAction::Breach
        } else {
            ClockAction::Warn
        };
        let Some(case) = work.case_summary(clock.case).await? else {
            continue;
        };
        let recipients = recipients(config, &case, action);
        let detail = serde_json::json!({
            "clock": clock.kind, "due": clock.due_at, "recipients": recipients,
        });
        let render = |n| {
            compose_alert(config, &site_key, &case, clock, action, &recipients, n, now)
                .into_iter()
                .collect()
        };
        if work
            .settle_clock(clock, action, now, &detail, render)
            .await?
        {
            settled.push((clock, action));
        }
    }
    let queued_mail = work.commit().await?;
    for (clock, action) in settled {
        match action {
            ClockAction::Warn => {
                report.warned += 1;
                crate::metrics::metrics().sla_warnings.inc();
            }
            ClockAction::Breach => {
                report.breached += 1;
                crate::metrics::metrics().sla_breaches.inc();
            }
        }
        info!(case = %clock.case, clock = %clock.kind, action = ?action, "SLA alert");
    }
    if queued_mail {
        timer.outbox_wake.notify_one();
    }
    Ok(())
}

/// The timer task; each tick uses the configuration `timer` holds then (a reload sends
/// a new one).
pub async fn run(
    timer: watch::Receiver<SlaTimer>,
    mut shutdown: Shutdown,
) -> Result<(), StoreError> {
    while !shutdown.is_shutdown() {
        let t = timer.borrow().clone();
        let busy = match tick(&t, Utc::now()).await {
            Ok(report) => report.busy > 0,
            Err(e) => {
                warn!(error = %e, "SLA timer: database error; retrying");
                false
            }
        };
        let next = t.store.next_clock_check().await.ok().flatten();
        let wait = next
            .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        // A clock another instance holds is still due: look again soon, not at once.
        let wait = if busy { wait.max(BUSY_RETRY) } else { wait };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => {}
        }
    }
    Ok(())
}

/// Warnings go to the owner, else the queue's members; breaches to the queue's
/// escalation address (and the owner). Falls back to the support address.
fn recipients(config: &Config, case: &CaseSummary, action: ClockAction) -> Vec<String> {
    let staff = &config.staff;
    let queue = case.queue.as_deref().unwrap_or_default();
    let mut to: Vec<String> = match action {
        ClockAction::Warn => match &case.owner {
            Some(owner) => vec![owner.clone()],
            None => staff
                .members(queue)
                .iter()
                .map(|e| e.address.clone())
                .collect(),
        },
        ClockAction::Breach => staff
            .escalation_for(queue)
            .map(str::to_string)
            .into_iter()
            .chain(case.owner.clone())
            .collect(),
    };
    if to.is_empty() {
        to.push(config.gateway.support_address.clone());
    }
    to.sort();
    to.dedup();
    to
}

#[allow(clippy::too_many_arguments)]
fn compose_alert(
    config: &Config,
    site_key: &[u8],
    case: &CaseSummary,
    clock: &DueClock,
    action: ClockAction,
    recipients: &[String],
    n: i64,
    now: DateTime<Utc>,
) -> Option<Outbound> {
    let g = &config.gateway;
    let queue = case.queue.clone().unwrap_or_default();
    let queue_def = config.routing.queue(&queue);
    let lang = queue_def.map(|q| q.language).unwrap_or(Language::En);
    let tz = config.sla.time_zone(
        queue_def.map(|q| q.region.as_str()).unwrap_or_default(),
        None,
    );
    let sla = SlaClock {
        common: notices::case_common(g, case),
        clock: clock.kind.clone(),
        due: format_due(clock.due_at, tz),
        severity: case
            .severity
            .and_then(|s| u8::try_from(s).ok())
            .unwrap_or(config.sla.default_severity),
        queue,
        owner: case.owner.clone().unwrap_or_default(),
    };
    let rendered = match action {
        ClockAction::Warn => render(
            config,
            lang,
            &SlaWarning {
                remaining: minutes(clock.due_at - now, lang),
                sla,
            },
        ),
        ClockAction::Breach => render(
            config,
            lang,
            &SlaBreach {
                overdue: minutes(now - clock.due_at, lang),
                sla,
            },
        ),
    };
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            warn!(case = %case.number, error = %e, "cannot render the SLA alert");
            return None;
        }
    };
    let kind = match action {
        ClockAction::Warn => TemplateKind::SlaWarning,
        ClockAction::Breach => TemplateKind::SlaBreach,
    };
    notices::sla_alert(
        site_key,
        g,
        case.number,
        n,
        now,
        recipients.to_vec(),
        kind,
        rendered,
    )
    .map_err(|e| warn!(case = %case.number, error = %e, "cannot compose the SLA alert"))
    .ok()
}

fn render<C: TemplateContext>(
    config: &Config,
    lang: Language,
    ctx: &C,
) -> Result<Rendered, crate::templates::TemplateError> {
    config.templates.render_typed(lang.as_str(), ctx)
}

/// "1 h 5 min" / "1時間5分".
fn minutes(d: chrono::Duration, lang: Language) -> String {
    let m = d.num_minutes().max(0);
    let (h, m) = (m / 60, m % 60);
    match (lang, h) {
        (Language::Ja, 0) => format!("{m}分"),
        (Language::Ja, _) => format!("{h}時間{m}分"),
        (Language::En, 0) => format!("{m} min"),
        (Language::En, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally_in_both_languages() {
        assert_eq!(
            minutes(chrono::Duration::minutes(65), Language::En),
            "1 h 5 min"
        );
        assert_eq!(minutes(chrono::Duration::minutes(45), Language::Ja), "45分");
        assert_eq!(
            minutes(chrono::Duration::minutes(-3), Language::En),
            "0 min"
        );
    }
}
