//! The page handlers: read the store, shape the figures for the templates (times in the
//! viewer's zone, customer text hidden when the viewer may not see it), render.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::{Req, WebState, check_post, form, gate, query, see_other};
use crate::charts::{Series, line_chart};
use crate::config::Role;
use crate::domain::CaseNumber;
use crate::domain::sla::{self, ClockMode};
use crate::store::{OpenClock, OutboxStatus, QuarantineStatus, Retried, StoreError};

/// A time as the viewer reads it: `2026-12-01 18:30 JST`.
pub fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// `3h 05m`, `2d 4h` (days of 24 h), `-45m` when past.
pub fn span(d: Duration) -> String {
    let sign = if d < Duration::zero() { "-" } else { "" };
    let m = d.num_minutes().abs();
    let (days, hours, mins) = (m / 1440, (m % 1440) / 60, m % 60);
    if days > 0 {
        format!("{sign}{days}d {hours}h")
    } else if hours > 0 {
        format!("{sign}{hours}h {mins:02}m")
    } else {
        format!("{sign}{mins}m")
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "status page: the store failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the database did not answer; try again\n",
    )
        .into_response()
}

fn nav(active: &str) -> Value {
    json!(active)
}

/// The subject, or the "hidden" label for a viewer who may not read customer text.
fn subject(state: &WebState, req: &Req, s: &str) -> String {
    let config = state.pipeline().config().clone();
    if req.viewer.sees_customer_text(&config.web) {
        s.to_string()
    } else {
        req.label(state, "hidden")
    }
}

fn clock_label(state: &WebState, req: &Req, kind: &str) -> String {
    req.label(state, &format!("clock_{kind}"))
}

/// Time left on a clock in the hours the SLA counts it over: the customer's country's
/// business time (its zone and work week, the weekend crew's days for the severities
/// it takes) unless the clock runs around the clock (premium severity 1 and 2 by default).
fn time_left(state: &WebState, c: &OpenClock, now: DateTime<Utc>) -> Duration {
    let config = state.pipeline().config().clone();
    let settings = &config.sla;
    let severity = u8::try_from(c.severity).unwrap_or(0);
    let mode = settings
        .policies
        .get(&c.tier, severity)
        .map(|p| {
            if c.clock == "first_response" {
                p.initial.mode
            } else {
                p.next.mode
            }
        })
        .unwrap_or(ClockMode::BusinessHours);
    let calendar = settings.calendar(&c.region, c.country.as_deref());
    sla::time_left(
        now,
        c.due,
        mode,
        severity,
        &calendar,
        &settings.weekend_crew,
    )
}

async fn overview_data(state: &WebState, req: &Req) -> Result<Value, StoreError> {
    let pipeline = state.pipeline();
    let store = pipeline.store();
    let now = Utc::now();
    let tz = req.viewer.tz;
    let loads: Vec<Value> = store
        .queue_loads()
        .await?
        .iter()
        .map(|l| {
            let st = |s: &str| l.by_status.get(s).copied().unwrap_or(0);
            let sev = |n: i64| l.by_severity.get(&n).copied().unwrap_or(0);
            json!({
                "queue": l.queue, "open": l.open,
                "new": st("new"), "opened": st("open"), "waiting": st("waiting"),
                "sev": [sev(1), sev(2), sev(3), sev(4)], "unset": sev(0),
            })
        })
        .collect();
    let clocks = store.open_clocks(None).await?;
    let mut running: Vec<(Duration, Value)> = Vec::new();
    let mut breached = Vec::new();
    for c in &clocks {
        let left = time_left(state, c, now);
        let row = json!({
            "case": c.case.0, "subject": subject(state, req, &c.subject), "queue": c.queue,
            "severity": c.severity, "clock": clock_label(state, req, &c.clock),
            "due": local_time(c.due, tz), "at_risk": c.warn_at <= now,
            "left": span(left), "overdue": span(now - c.due),
        });
        if c.due <= now {
            breached.push(row);
        } else {
            running.push((left, row));
        }
    }
    running.sort_by_key(|(left, _)| *left);
    let day_start = tz
        .from_local_datetime(
            &now.with_timezone(&tz)
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default(),
        )
        .earliest()
        .map_or(now - Duration::hours(24), |t| t.with_timezone(&Utc));
    let intake = store.intake(day_start, now + Duration::seconds(1)).await?;
    let intake_total: i64 = intake.iter().map(|i| i.cases).sum();
    let held = store
        .quarantine_list(false)
        .await?
        .iter()
        .filter(|e| e.status == QuarantineStatus::Held)
        .count();
    let outbox = store.outbox_counts().await?;
    Ok(json!({
        "loads": loads,
        "running": running.into_iter().map(|(_, v)| v).take(50).collect::<Vec<_>>(),
        "breached": breached,
        "intake": intake.iter().map(|i| json!({"language": i.language, "queue": i.queue, "cases": i.cases})).collect::<Vec<_>>(),
        "intake_total": intake_total,
        "quarantine_held": held,
        "outbox_pending": outbox.pending + outbox.sending,
        "outbox_failed": outbox.failed,
        "updated": local_time(now, tz),
    }))
}

pub async fn overview(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    match overview_data(&state, &req).await {
        Ok(mut data) => {
            data["title"] = json!(req.label(&state, "overview"));
            data["nav"] = nav("overview");
            req.page(&state, "overview.html", StatusCode::OK, data)
        }
        Err(e) => failed(e),
    }
}

/// The overview's figures alone, for the page's short poll.
pub async fn overview_live(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(_) => return (StatusCode::UNAUTHORIZED, "sign in again\n").into_response(),
    };
    match overview_data(&state, &req).await {
        Ok(data) => req.page(&state, "overview_live.html", StatusCode::OK, data),
        Err(e) => failed(e),
    }
}

pub async fn queue(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(queue): Path<String>,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    let store = pipeline.store();
    let now = Utc::now();
    let tz = req.viewer.tz;
    let (cases, clocks) = match (
        store.queue_cases(&queue).await,
        store.open_clocks(Some(&queue)).await,
    ) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let mut next: BTreeMap<i64, &OpenClock> = BTreeMap::new();
    for k in &clocks {
        next.entry(k.case.0).or_insert(k);
    }
    let rows: Vec<Value> = cases
        .iter()
        .map(|c| {
            let clock = next.get(&c.number.0).map(|k| {
                json!({"clock": clock_label(&state, &req, &k.clock), "due": local_time(k.due, tz),
                       "left": span(time_left(&state, k, now)), "breached": k.due <= now, "at_risk": k.warn_at <= now})
            });
            json!({
                "case": c.number.0, "subject": subject(&state, &req, &c.subject),
                "status": req.label(&state, &format!("status_{}", c.status.as_str())),
                "severity": c.severity, "owner": c.owner, "customer": c.customer,
                "account": c.account, "created": local_time(c.created_at, tz),
                "updated": local_time(c.updated_at, tz), "messages": c.message_count, "clock": clock,
            })
        })
        .collect();
    let title = format!("{}: {}", req.label(&state, "queue"), queue);
    req.page(
        &state,
        "queue.html",
        StatusCode::OK,
        json!({"title": title, "nav": "queue", "queue": queue, "cases": rows}),
    )
}

/// The case page's SLA timeline: each clock as a bar on one time axis (0..1000).
fn timeline(
    clocks: &[crate::store::ClockLine],
    now: DateTime<Utc>,
    tz: Tz,
    state: &WebState,
    req: &Req,
) -> Value {
    let Some(start) = clocks.iter().map(|c| c.started_at).min() else {
        return json!([]);
    };
    let end = clocks
        .iter()
        .flat_map(|c| [c.due_at, c.met_at.unwrap_or(c.due_at)])
        .chain([now])
        .max()
        .unwrap_or(now);
    let total = (end - start).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| (((t - start).num_seconds() as f64 / total) * 1000.0).round() as i64;
    let rows: Vec<Value> = clocks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let stop = c.met_at.unwrap_or(now).min(end);
            let late = c.met_at.map_or(now > c.due_at, |m| m > c.due_at);
            json!({
                "y": 8 + i * 28, "label_y": 22 + i * 28,
                "clock": clock_label(state, req, &c.kind),
                "state": req.label(state, &format!("clock_state_{}", c.state)),
                "late": late,
                "x": x(c.started_at), "w": (x(stop) - x(c.started_at)).max(2),
                "warn_x": x(c.warn_at), "due_x": x(c.due_at),
                "started": local_time(c.started_at, tz), "due": local_time(c.due_at, tz),
                "met": c.met_at.map(|m| local_time(m, tz)),
            })
        })
        .collect();
    json!({"rows": rows, "height": 16 + clocks.len() * 28, "now_x": x(now)})
}

pub async fn case(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(number): Path<String>,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let Some(n) = number
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .map(CaseNumber)
    else {
        return (StatusCode::NOT_FOUND, "no such case\n").into_response();
    };
    let pipeline = state.pipeline();
    let store = pipeline.store();
    let tz = req.viewer.tz;
    let (view, clocks) = match (store.show_case(n).await, store.case_clocks(n).await) {
        (Ok(Some(v)), Ok(k)) => (v, k),
        (Ok(None), _) => {
            return req.page(
                &state,
                "notice.html",
                StatusCode::NOT_FOUND,
                json!({"title": req.label(&state, "no_such_case"), "nav": "", "message": format!("{} {number}", req.label(&state, "no_such_case"))}),
            );
        }
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let sees = req.viewer.sees_customer_text(&pipeline.config().web);
    let s = &view.summary;
    // The people on the case: not casegate's own addresses (plus-tagged ones included).
    let ours = pipeline.config().gateway.support_address.to_lowercase();
    let is_ours = |a: &str| {
        let a = a.to_lowercase();
        match (a.split_once('@'), ours.split_once('@')) {
            (Some((al, ad)), Some((ol, od))) => {
                ad == od && (al == ol || al.starts_with(&format!("{ol}+")))
            }
            _ => a == ours,
        }
    };
    let mut parties: Vec<String> = vec![s.customer.clone()];
    for m in &view.messages {
        for a in std::iter::once(&m.from).chain(&m.to).chain(&m.cc) {
            if !is_ours(a) && !parties.iter().any(|p| p.eq_ignore_ascii_case(a)) {
                parties.push(a.clone());
            }
        }
    }
    let messages: Vec<Value> = view
        .messages
        .iter()
        .map(|m| {
            let new_text = crate::mail::quote::strip_reply(&m.text);
            let folded = new_text.trim() != m.text.trim();
            json!({
                "direction": req.label(&state, &format!("direction_{}", m.direction)),
                "role": req.label(&state, &format!("role_{}", m.role)),
                "role_key": m.role,
                "from": m.from, "to": m.to.join(", "), "cc": m.cc.join(", "),
                "subject": subject(&state, &req, &m.subject),
                "when": local_time(m.received_at, tz),
                "text": if sees { new_text } else { req.label(&state, "hidden") },
                "quoted": if sees && folded { Some(m.text.clone()) } else { None },
                "attachments": m.attachments.iter().map(|a| json!({"name": a.filename, "type": a.content_type, "size": a.size})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let events: Vec<Value> = view
        .events
        .iter()
        .map(|e| {
            json!({"at": local_time(e.at, tz), "actor": e.actor, "kind": e.kind,
                   "detail": if sees { e.detail.to_string() } else { String::new() }})
        })
        .collect();
    let title = format!("#{} {}", s.number.0, subject(&state, &req, &s.subject));
    req.page(
        &state,
        "case.html",
        StatusCode::OK,
        json!({
            "title": title, "nav": "case",
            "case": {
                "number": s.number.0, "subject": subject(&state, &req, &s.subject),
                "status": req.label(&state, &format!("status_{}", s.status.as_str())),
                "queue": s.queue, "product": s.product, "language": s.language, "region": s.region,
                "severity": s.severity, "owner": s.owner, "customer": s.customer,
                "customer_name": if sees { s.customer_name.clone() } else { None },
                "account": s.account,
                "entitlement": s.entitlement.as_deref().map(|e| req.label(&state, &format!("entitlement_{e}"))),
                "created": local_time(s.created_at, tz), "updated": local_time(s.updated_at, tz),
                "closed": s.closed_at.map(|t| local_time(t, tz)), "breached": s.sla.breached,
            },
            "parties": parties, "messages": messages, "events": events,
            "timeline": timeline(&clocks, Utc::now(), tz, &state, &req),
        }),
    )
}

pub async fn quarantine(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    let entries = match pipeline.store().quarantine_list(false).await {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let tz = req.viewer.tz;
    let rows: Vec<Value> = entries
        .iter()
        .filter(|e| e.status == QuarantineStatus::Held)
        .map(|e| {
            json!({"id": e.id, "when": local_time(e.quarantined_at, tz), "from": e.from,
                   "subject": e.subject.as_deref().map(|s| subject(&state, &req, s)),
                   "reason": e.reason, "size": e.size, "source": e.source})
        })
        .collect();
    let q = query(&q);
    req.page(
        &state,
        "quarantine.html",
        StatusCode::OK,
        json!({"title": req.label(&state, "quarantine"), "nav": "quarantine", "entries": rows,
               "released": q.get("released"), "held": q.get("held"), "error": q.get("error"),
               "discarded": q.get("discarded")}),
    )
}

/// An action: a signed-in admin (the gate lets loopback readers in; actions need more),
/// and a valid CSRF token.
fn admin_action(
    state: &WebState,
    peer: SocketAddr,
    h: &HeaderMap,
    body: &Bytes,
) -> Result<Req, Response> {
    let fields = form(body);
    check_post(h, &fields)?;
    let req = gate(state, peer, h)?;
    if req.viewer.name.is_none() || !req.viewer.has(Role::Admin) {
        return Err(req.page(
            state,
            "notice.html",
            StatusCode::FORBIDDEN,
            json!({"title": req.label(state, "admin_only"), "nav": "", "message": req.label(state, "admin_only")}),
        ));
    }
    Ok(req)
}

pub async fn replay(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match admin_action(&state, peer, &h, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    match crate::replay::replay_all(&pipeline).await {
        Ok(t) => {
            tracing::info!(user = ?req.viewer.name, released = t.released, held = t.held, "status pages: quarantine replayed");
            pipeline.outbox_wake().notify_one();
            see_other(&format!(
                "/quarantine?released={}&held={}",
                t.released, t.held
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "status pages: quarantine replay failed");
            see_other("/quarantine?error=1")
        }
    }
}

/// Replay one held mail (the per-row button; `replay` does them all).
pub async fn replay_mail(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match admin_action(&state, peer, &h, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    match crate::replay::replay_one(&pipeline, id).await {
        Ok(Some(t)) => {
            tracing::info!(user = ?req.viewer.name, quarantine_id = id, released = t.released, held = t.held, "status pages: quarantined mail replayed");
            pipeline.outbox_wake().notify_one();
            see_other(&format!(
                "/quarantine?released={}&held={}",
                t.released, t.held
            ))
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such quarantined mail\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, quarantine_id = id, "status pages: quarantine replay failed");
            see_other("/quarantine?error=1")
        }
    }
}

/// Discard one held mail (what `casegate quarantine discard ID` does), recorded with
/// the signed-in admin as the actor.
pub async fn discard(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match admin_action(&state, peer, &h, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let actor = req.viewer.name.clone().unwrap_or_default();
    match state
        .pipeline()
        .store()
        .quarantine_discard(id, &actor, Utc::now())
        .await
    {
        Ok(Some(_)) => {
            tracing::info!(user = %actor, quarantine_id = id, "status pages: quarantined mail discarded");
            see_other(&format!("/quarantine?discarded={id}"))
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such quarantined mail\n").into_response(),
        Err(e) => failed(e),
    }
}

pub async fn outbox(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    let rows = match pipeline.store().outbox_list(None).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let tz = req.viewer.tz;
    let rows: Vec<Value> = rows
        .iter()
        .filter(|r| r.status != OutboxStatus::Sent)
        .map(|r| {
            json!({"id": r.id, "status": req.label(&state, outbox_label(r.status)),
                   "failed": r.status == OutboxStatus::Failed,
                   "case": r.case.map(|c| c.0), "kind": r.kind, "attempts": r.attempts,
                   "to": r.recipients.join(", "), "next": local_time(r.next_attempt_at, tz),
                   "last_error": r.last_error,
                   "can_retry": matches!(r.status, OutboxStatus::Failed | OutboxStatus::Pending)})
        })
        .collect();
    let q = query(&q);
    req.page(
        &state,
        "outbox.html",
        StatusCode::OK,
        json!({"title": req.label(&state, "outbox"), "nav": "outbox", "rows": rows,
               "retried": q.get("retried"), "refused": q.get("refused")}),
    )
}

fn outbox_label(s: OutboxStatus) -> &'static str {
    match s {
        OutboxStatus::Pending => "outbox_pending_status",
        OutboxStatus::Sending => "outbox_sending",
        OutboxStatus::Sent => "outbox_sent",
        OutboxStatus::Failed => "outbox_failed_status",
    }
}

pub async fn retry(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match admin_action(&state, peer, &h, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let pipeline = state.pipeline();
    match pipeline.store().retry_outbox(id, Utc::now()).await {
        Ok(Retried::Queued) => {
            tracing::info!(user = ?req.viewer.name, outbox_id = id, "status pages: outbound mail retried");
            pipeline.outbox_wake().notify_one();
            see_other(&format!("/outbox?retried={id}"))
        }
        Ok(other) => {
            let why = match other {
                Retried::NotFound => "not_found",
                Retried::AlreadySent => "already_sent",
                _ => "in_flight",
            };
            see_other(&format!("/outbox?refused={why}"))
        }
        Err(e) => failed(e),
    }
}

fn parse_day(s: Option<&String>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s?.trim(), "%Y-%m-%d").ok()
}

fn day_start(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or_else(
            || d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

fn percent(met: i64, missed: i64) -> Option<String> {
    (met + missed > 0).then(|| format!("{:.1}%", 100.0 * met as f64 / (met + missed) as f64))
}

pub async fn team(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let tz = req.viewer.tz;
    let q = query(&q);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let to = parse_day(q.get("to")).unwrap_or(today);
    let from = parse_day(q.get("from"))
        .unwrap_or(to - Duration::days(29))
        .min(to);
    let pipeline = state.pipeline();
    let staff: Vec<String> = pipeline
        .config()
        .staff
        .engineers
        .iter()
        .map(|e| e.address.clone())
        .collect();
    let m = match pipeline
        .store()
        .team_measures(
            &staff,
            day_start(from, tz),
            day_start(to + Duration::days(1), tz),
        )
        .await
    {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let avg = |v: Option<f64>| v.map(|v| format!("{v:.2}"));
    let engineers: Vec<Value> = m
        .engineers
        .iter()
        .map(|e| json!({"engineer": e.engineer, "cases_commented": e.cases_commented, "comments": e.comments,
                        "owned": e.owned, "feedback": avg(e.average_feedback),
                        "attainment": percent(e.clocks_met, e.clocks_missed), "kb": e.kb_articles}))
        .collect();
    let queues: Vec<Value> = m
        .queues
        .iter()
        .map(|e| {
            json!({"queue": e.queue, "cases_commented": e.cases_commented, "comments": e.comments,
                        "opened": e.opened, "feedback": avg(e.average_feedback),
                        "attainment": percent(e.clocks_met, e.clocks_missed), "kb": e.kb_articles})
        })
        .collect();
    req.page(
        &state,
        "team.html",
        StatusCode::OK,
        json!({"title": req.label(&state, "team"), "nav": "team", "from": from.to_string(), "to": to.to_string(),
               "engineers": engineers, "queues": queues}),
    )
}

pub async fn chart(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    h: HeaderMap,
) -> Response {
    let req = match gate(&state, peer, &h) {
        Ok(r) => r,
        Err(_) => return (StatusCode::UNAUTHORIZED, "sign in\n").into_response(),
    };
    let pipeline = state.pipeline();
    let store = pipeline.store();
    let now = Utc::now();
    let series = match name.as_str() {
        "attainment.svg" => store
            .weekly_attainment(now, 12)
            .await
            .map(|w| attainment_series(&w, &state, &req)),
        "backlog.svg" => store
            .daily_backlog(now, 30)
            .await
            .map(|d| backlog_series(&d, &state, &req)),
        _ => return (StatusCode::NOT_FOUND, "no such chart\n").into_response(),
    };
    let svg = match series.map(|s| line_chart(&s, 640, 300)) {
        Ok(Ok(svg)) => svg,
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e),
    };
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

/// The weekly attainment chart's points (the report commands draw the same).
pub fn attainment_series(
    weeks: &[crate::store::WeekAttainment],
    state: &WebState,
    req: &Req,
) -> Series {
    crate::charts::attainment(
        weeks,
        &req.label(state, "chart_attainment"),
        &req.label(state, "chart_percent_met"),
    )
}

pub fn backlog_series(days: &[crate::store::DayBacklog], state: &WebState, req: &Req) -> Series {
    crate::charts::backlog(
        days,
        &req.label(state, "chart_backlog"),
        &req.label(state, "chart_open_cases"),
    )
}
