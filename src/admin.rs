//! The admin HTTP listener of `casegate run` (`admin.listen`): `/metrics` in the
//! Prometheus text format, `/healthz` (the process answers) and `/readyz` (the database
//! answers, every mailbox is connected, the outbox is not stuck), with a JSON body
//! that says what is wrong; and the status pages (`src/web/`) at `/`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::json;
use tokio::net::TcpListener;

use crate::metrics::{SlaClockLabel, StatusLabel, metrics};
use crate::runtime::Shutdown;
use crate::store::Store;

/// An outbox row due longer ago than this, and not sent, means the sender is stuck.
pub const OUTBOX_STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
#[error("admin listener {addr}: {cause}")]
pub struct AdminError {
    addr: SocketAddr,
    cause: std::io::Error,
}

/// Bind `addr` now (so a port in use stops the start-up with a clear error).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AdminError> {
    TcpListener::bind(addr)
        .await
        .map_err(|cause| AdminError { addr, cause })
}

/// Serve until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    web: crate::web::WebState,
    mut shutdown: Shutdown,
) -> Result<(), AdminError> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(store)
        .merge(crate::web::routes(web));
    tracing::info!(listen = %addr, "admin listener: /metrics /healthz /readyz, status pages at /");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.recv().await })
    .await
    .map_err(|cause| AdminError { addr, cause })
}

async fn scrape(State(store): State<Store>) -> Response {
    let m = metrics();
    match store.outbox_counts().await {
        Ok(c) => {
            for (status, n) in [
                ("pending", c.pending),
                ("sending", c.sending),
                ("failed", c.failed),
            ] {
                m.outbox_rows.get_or_create(&StatusLabel { status }).set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
    }
    match store.clocks_at_risk(Utc::now()).await {
        Ok(c) => {
            for (state, n) in [("at_risk", c.at_risk), ("overdue", c.overdue)] {
                m.sla_clocks.get_or_create(&SlaClockLabel { state }).set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the SLA clocks"),
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &m.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn ready(State(store): State<Store>) -> Response {
    let mut problems = Vec::new();
    match store.next_due().await {
        Ok(Some(due))
            if Utc::now() - due
                > chrono::Duration::from_std(OUTBOX_STUCK_AFTER).unwrap_or_default() =>
        {
            problems.push(json!({
                "check": "outbox",
                "problem": format!("an outbound mail due since {} is not sent", due.to_rfc3339()),
            }));
        }
        Ok(_) => {}
        Err(e) => problems.push(json!({"check": "database", "problem": e.to_string()})),
    }
    for (mailbox, why) in metrics().mailboxes_down() {
        problems.push(json!({"check": "mailbox", "mailbox": mailbox, "problem": why}));
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"ready": problems.is_empty(), "problems": problems});
    (status, axum::Json(body)).into_response()
}
