//! The status pages on the admin listener: overview, queue, case, quarantine, outbox
//! and team pages, rendered on the server from `templates/web/`, with SVG charts and a
//! short poll that refreshes the overview. Access rules are in [`access`], the
//! language in [`lang`], the figures in [`pages`].

// A refusal is the response itself (a sign-in page, a 403); handlers return it at once.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod lang;
mod pages;
pub mod render;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::Role;
use crate::pipeline::Pipeline;
use access::{CSRF_COOKIE, Credentials, SESSION_COOKIE, Sessions, Viewer};
use lang::Lang;
use render::Pages;

/// What every page handler shares.
#[derive(Clone)]
pub struct WebState {
    /// The current pipeline (its configuration follows reloads).
    pipeline: watch::Receiver<Pipeline>,
    pub(crate) pages: Arc<Pages>,
    sessions: Arc<Sessions>,
}

impl WebState {
    pub fn new(pipeline: watch::Receiver<Pipeline>, pages: Pages) -> WebState {
        WebState {
            pipeline,
            pages: Arc::new(pages),
            sessions: Arc::new(Sessions::default()),
        }
    }

    pub(crate) fn pipeline(&self) -> Pipeline {
        self.pipeline.borrow().clone()
    }
}

/// The strict policy every page is sent with: nothing but casegate's own files, no
/// inline script or style, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages' routes (merged into the admin listener's router).
pub fn routes(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/live/overview", get(pages::overview_live))
        .route("/queues/{queue}", get(pages::queue))
        .route("/cases/{number}", get(pages::case))
        .route("/quarantine", get(pages::quarantine))
        .route("/quarantine/replay", post(pages::replay))
        .route("/quarantine/{id}/discard", post(pages::discard))
        .route("/quarantine/{id}/replay", post(pages::replay_mail))
        .route("/outbox", get(pages::outbox))
        .route("/outbox/{id}/retry", post(pages::retry))
        .route("/team", get(pages::team))
        .route("/charts/{name}", get(pages::chart))
        .route("/static/{name}", get(static_file))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// One request as the pages see it: who, in which language, and the CSRF token its
/// forms carry (a new one is set as a cookie when the browser has none).
pub(crate) struct Req {
    pub viewer: Viewer,
    pub lang: Lang,
    pub csrf: String,
    new_csrf: bool,
}

fn header_str(h: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Let the request in (`Ok`), or not: `Err` with the request of an anonymous visitor,
/// for the sign-in page.
fn identify(state: &WebState, peer: SocketAddr, h: &HeaderMap) -> Result<Req, Req> {
    let config = state.pipeline().config().clone();
    let web = &config.web;
    let cookies = header_str(h, header::COOKIE);
    let session_user =
        access::cookie(cookies, SESSION_COOKIE).and_then(|id| state.sessions.user(id));
    let proxy_user = web
        .proxy_user_header
        .as_deref()
        .and_then(|name| header_str(h, name));
    let lang = Lang::negotiate(header_str(h, header::ACCEPT_LANGUAGE));
    let (csrf, new_csrf) = match access::cookie(cookies, CSRF_COOKIE).filter(|c| c.len() == 64) {
        Some(c) => (c.to_string(), false),
        None => (access::random_token(), true),
    };
    let creds = Credentials {
        peer: peer.ip(),
        proxy_user,
        session_user: session_user.as_deref(),
    };
    match access::decide(creds, web) {
        Some(viewer) => Ok(Req {
            viewer,
            lang,
            csrf,
            new_csrf,
        }),
        None => {
            let req = Req {
                viewer: Viewer {
                    name: None,
                    roles: Vec::new(),
                    tz: web.timezone,
                },
                lang,
                csrf,
                new_csrf,
            };
            Err(req)
        }
    }
}

/// Let the request in, or the refusal: 401 with the sign-in page.
pub(crate) fn gate(state: &WebState, peer: SocketAddr, h: &HeaderMap) -> Result<Req, Response> {
    identify(state, peer, h)
        .map_err(|req| sign_in_page(state, &req, StatusCode::UNAUTHORIZED, false))
}

impl Req {
    /// `page` rendered for this request (with the common context), as a response.
    pub(crate) fn page(
        &self,
        state: &WebState,
        name: &str,
        status: StatusCode,
        mut data: Value,
    ) -> Response {
        if let Value::Object(m) = &mut data {
            m.insert("csrf".into(), json!(self.csrf));
            m.insert(
                "viewer".into(),
                json!({
                    "name": self.viewer.name,
                    "admin": self.viewer.has(Role::Admin),
                    "zone": self.viewer.tz.name(),
                }),
            );
        }
        let mut r = match state.pages.render(name, self.lang, data) {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "status page");
                (StatusCode::INTERNAL_SERVER_ERROR, "page template error\n").into_response()
            }
        };
        self.set_csrf(&mut r);
        r
    }

    fn set_csrf(&self, r: &mut Response) {
        if self.new_csrf
            && let Ok(v) = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                self.csrf
            ))
        {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }

    pub(crate) fn label(&self, state: &WebState, key: &str) -> String {
        state.pages.label(self.lang, key)
    }
}

fn sign_in_page(state: &WebState, req: &Req, status: StatusCode, failed: bool) -> Response {
    let can = state
        .pipeline()
        .config()
        .web
        .users
        .values()
        .any(|u| u.password_hash.is_some());
    req.page(
        state,
        "login.html",
        status,
        json!({"title": req.label(state, "sign_in"), "failed": failed, "sign_in_configured": can, "nav": ""}),
    )
}

/// Form fields of an urlencoded body.
pub(crate) fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Query parameters.
pub(crate) fn query(q: &Option<String>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Every POST: same origin (when the browser says), and the form's CSRF token equal to
/// the cookie's.
pub(crate) fn check_post(
    h: &HeaderMap,
    fields: &std::collections::HashMap<String, String>,
) -> Result<(), Response> {
    if let (Some(origin), Some(host)) = (header_str(h, header::ORIGIN), header_str(h, header::HOST))
    {
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            == Some(host);
        if !same {
            return Err((StatusCode::FORBIDDEN, "cross-origin request refused\n").into_response());
        }
    }
    let cookie = access::cookie(header_str(h, header::COOKIE), CSRF_COOKIE).unwrap_or("");
    let sent = fields.get("csrf").map(String::as_str).unwrap_or("");
    if access::same_token(cookie, sent) {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again\n",
        )
            .into_response())
    }
}

pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

async fn static_file(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    match state.pages.static_file(&name) {
        Some((ct, body)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            body.to_vec(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

async fn login_form(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Response {
    let (Ok(req) | Err(req)) = identify(&state, peer, &h);
    sign_in_page(&state, &req, StatusCode::OK, false)
}

async fn login(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    if let Err(r) = check_post(&h, &fields) {
        return r;
    }
    let config = state.pipeline().config().clone();
    let user = fields
        .get("user")
        .map(|u| u.trim().to_lowercase())
        .unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    // The hash is slow on purpose: keep it off the async workers.
    let web = config.web.clone();
    let checked = {
        let user = user.clone();
        tokio::task::spawn_blocking(move || access::password_ok(&web, &user, &password)).await
    };
    if checked.unwrap_or(false) {
        tracing::info!(user = %user, peer = %peer.ip(), "status pages: signed in");
        let lasts = std::time::Duration::from_secs(config.web.session_hours * 3600);
        let id = state.sessions.open(&user, lasts);
        let mut r = see_other("/");
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            lasts.as_secs()
        )) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return r;
    }
    tracing::warn!(user = %user, peer = %peer.ip(), "status pages: sign-in refused");
    let req = Req {
        viewer: Viewer {
            name: None,
            roles: Vec::new(),
            tz: config.web.timezone,
        },
        lang: Lang::negotiate(header_str(&h, header::ACCEPT_LANGUAGE)),
        csrf: fields.get("csrf").cloned().unwrap_or_default(),
        new_csrf: false,
    };
    sign_in_page(&state, &req, StatusCode::UNAUTHORIZED, true)
}

async fn logout(State(state): State<WebState>, h: HeaderMap, body: Bytes) -> Response {
    let fields = form(&body);
    if let Err(r) = check_post(&h, &fields) {
        return r;
    }
    if let Some(id) = access::cookie(header_str(&h, header::COOKIE), SESSION_COOKIE) {
        state.sessions.close(id);
    }
    let mut r = see_other("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("casegate_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
