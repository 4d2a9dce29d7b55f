//! `[web]`: the status pages on the admin listener — who may sign in (argon2 password
//! hashes, or a trusted reverse proxy's header), their roles, the time zone pages show,
//! and where the page templates are.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono_tz::Tz;

use super::load::Reader;

/// What a signed-in user may do beyond reading the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Replay quarantined mail, retry outbound mail.
    Admin,
    /// Read customer text (subjects, messages) when `web.hide_customer_text` is on.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// One `[web.users.NAME]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser {
    /// An argon2 PHC string (`casegate web-password` prints one); `None` for a user who
    /// only comes through the trusted proxy.
    pub password_hash: Option<String>,
    pub roles: Vec<Role>,
    /// The zone this user's pages show times in (else `web.timezone`).
    pub timezone: Option<Tz>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// `web.timezone`: times on the pages (default UTC).
    pub timezone: Tz,
    /// `web.hide_customer_text`: users without the `viewer` role see no subjects or
    /// message text.
    pub hide_customer_text: bool,
    /// `web.templates_dir`: page templates and label files (default: the `web` folder
    /// of `gateway.templates_dir`).
    pub templates_dir: PathBuf,
    pub users: BTreeMap<String, WebUser>,
    /// `web.trusted_proxies`: addresses whose `web.proxy_user_header` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    pub proxy_user_header: Option<String>,
    /// Roles of a proxy-authenticated user not listed in `web.users`.
    pub proxy_default_roles: Vec<Role>,
    /// `web.session_hours`: how long a sign-in lasts.
    pub session_hours: u64,
}

pub(super) fn read(r: &mut Reader<'_>) -> WebSettings {
    let timezone = zone(r, "web.timezone").unwrap_or(Tz::UTC);
    // By default beside the mail templates: `<gateway.templates_dir>/web`.
    let dir = match r.opt_string("web.templates_dir") {
        Some(d) => r.resolve(&d),
        None => {
            let mail = r.string("gateway.templates_dir", Some("../templates"));
            r.resolve(&mail).join("web")
        }
    };
    let mut users = BTreeMap::new();
    for name in r.table_keys("web.users") {
        let key = format!("web.users.{name}");
        let password_hash = r.opt_string(&format!("{key}.password_hash"));
        if let Some(h) = &password_hash
            && let Err(why) = check_hash(h)
        {
            r.problem(None, &format!("{key}.password_hash"), why);
        }
        let roles = roles(r, &format!("{key}.roles"));
        let timezone = zone(r, &format!("{key}.timezone"));
        users.insert(
            name.to_lowercase(),
            WebUser {
                password_hash,
                roles,
                timezone,
            },
        );
    }
    let mut trusted_proxies = Vec::new();
    for (i, p) in r
        .string_list("web.trusted_proxies", &[])
        .into_iter()
        .enumerate()
    {
        match p.parse::<IpAddr>() {
            Ok(a) => trusted_proxies.push(a),
            Err(_) => r.problem(
                None,
                &format!("web.trusted_proxies[{i}]"),
                format!("{p:?} is not an IP address"),
            ),
        }
    }
    let proxy_user_header = r.opt_string("web.proxy_user_header");
    if proxy_user_header.is_some() && trusted_proxies.is_empty() {
        r.problem(
            None,
            "web.proxy_user_header",
            "needs web.trusted_proxies: the header is believed only from those addresses",
        );
    }
    WebSettings {
        timezone,
        hide_customer_text: r.bool("web.hide_customer_text", false),
        templates_dir: dir,
        users,
        trusted_proxies,
        proxy_user_header,
        proxy_default_roles: roles(r, "web.proxy_default_roles"),
        session_hours: r.uint("web.session_hours", 12, 1, 24 * 30),
    }
}

fn zone(r: &mut Reader<'_>, key: &str) -> Option<Tz> {
    let name = r.opt_string(key)?;
    match name.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            r.problem(
                None,
                key,
                format!("{name:?} is not a time zone name such as Asia/Tokyo or UTC"),
            );
            None
        }
    }
}

fn roles(r: &mut Reader<'_>, key: &str) -> Vec<Role> {
    let mut out = Vec::new();
    for (i, s) in r.string_list(key, &[]).into_iter().enumerate() {
        match Role::parse(&s) {
            Some(role) => out.push(role),
            None => r.problem(
                None,
                &format!("{key}[{i}]"),
                format!("unknown role {s:?} (admin, viewer)"),
            ),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An argon2 PHC string, or why not.
fn check_hash(h: &str) -> Result<(), String> {
    match argon2::PasswordHash::new(h) {
        Ok(p) if p.algorithm.as_str().starts_with("argon2") => Ok(()),
        Ok(p) => Err(format!(
            "an {} hash: use argon2 (casegate web-password prints one)",
            p.algorithm.as_str()
        )),
        Err(e) => Err(format!(
            "not an argon2 PHC string ($argon2id$v=19$...): {e} (casegate web-password prints one)"
        )),
    }
}
