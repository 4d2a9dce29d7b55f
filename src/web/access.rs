//! Who is asking, and may they: loopback readers without sign-in, otherwise a signed-in
//! user (argon2 password from `[web.users]`) or a trusted reverse proxy's header; CSRF
//! tokens (double submit: a cookie and the same value in every form) for every action.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::PasswordVerifier;
use chrono_tz::Tz;

use crate::config::{Role, WebSettings};

pub const SESSION_COOKIE: &str = "casegate_session";
pub const CSRF_COOKIE: &str = "casegate_csrf";

/// The person a page is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// `None`: an anonymous reader on the loopback address.
    pub name: Option<String>,
    pub roles: Vec<Role>,
    pub tz: Tz,
}

impl Viewer {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether subjects and message text may be shown to this viewer.
    pub fn sees_customer_text(&self, web: &WebSettings) -> bool {
        !web.hide_customer_text || self.has(Role::Viewer)
    }
}

/// What the request carries that says who sent it.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub peer: IpAddr,
    /// The value of `web.proxy_user_header`, when the request has it.
    pub proxy_user: Option<&'a str>,
    /// The user name of a live session, when the session cookie names one.
    pub session_user: Option<&'a str>,
}

/// The access decision, pure: the proxy header counts only from a trusted address; a
/// session counts anywhere; without either, only loopback readers get in.
pub fn decide(c: Credentials<'_>, web: &WebSettings) -> Option<Viewer> {
    let known = |name: &str, default_roles: &[Role]| {
        let user = web.users.get(&name.to_lowercase());
        Viewer {
            name: Some(name.to_lowercase()),
            roles: user.map_or_else(|| default_roles.to_vec(), |u| u.roles.clone()),
            tz: user.and_then(|u| u.timezone).unwrap_or(web.timezone),
        }
    };
    if let Some(user) = c.proxy_user.map(str::trim).filter(|u| !u.is_empty())
        && web.trusted_proxies.contains(&c.peer)
    {
        return Some(known(user, &web.proxy_default_roles));
    }
    if let Some(user) = c.session_user
        && web.users.contains_key(user)
    {
        return Some(known(user, &[]));
    }
    is_loopback(c.peer).then(|| Viewer {
        name: None,
        roles: vec![Role::Viewer],
        tz: web.timezone,
    })
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Check a sign-in: the user exists, has a password hash, and the password matches.
pub fn password_ok(web: &WebSettings, user: &str, password: &str) -> bool {
    let Some(hash) = web
        .users
        .get(&user.trim().to_lowercase())
        .and_then(|u| u.password_hash.as_deref())
    else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// An argon2id PHC string for `password` with a fresh random salt (`casegate web-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "no random bytes for the salt".to_string())?;
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// 32 random bytes, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The system's random source failing is not something a page can recover from;
    // an all-zero token would be guessable, so fall back to refusing (empty token).
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b) {
        Ok(()) => hex::encode(b),
        Err(_) => String::new(),
    }
}

/// Equal without a timing side channel on the content.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty()
        && a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Signed-in users, in memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session for `user`; its id (the cookie's value).
    pub fn open(&self, user: &str, lasts: Duration) -> String {
        let id = random_token();
        if let Ok(mut live) = self.live.lock() {
            let now = Instant::now();
            live.retain(|_, (_, until)| *until > now);
            live.insert(id.clone(), (user.to_lowercase(), now + lasts));
        }
        id
    }

    /// The user of a live session.
    pub fn user(&self, id: &str) -> Option<String> {
        let live = self.live.lock().ok()?;
        live.get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(u, _)| u.clone())
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::WebUser;

    fn web() -> WebSettings {
        let mut users = BTreeMap::new();
        users.insert(
            "lead".to_string(),
            WebUser {
                password_hash: Some(hash_password("s3cret pass").unwrap()),
                roles: vec![Role::Admin],
                timezone: Some(chrono_tz::Asia::Tokyo),
            },
        );
        WebSettings {
            timezone: Tz::UTC,
            hide_customer_text: true,
            templates_dir: "templates/web".into(),
            users,
            trusted_proxies: vec!["10.0.0.5".parse().unwrap()],
            proxy_user_header: Some("X-Remote-User".into()),
            proxy_default_roles: vec![Role::Viewer],
            session_hours: 12,
        }
    }

    fn creds<'a>(peer: &str, proxy: Option<&'a str>, session: Option<&'a str>) -> Credentials<'a> {
        Credentials {
            peer: peer.parse().unwrap(),
            proxy_user: proxy,
            session_user: session,
        }
    }

    #[test]
    fn only_loopback_reads_without_sign_in() {
        let w = web();
        assert!(decide(creds("127.0.0.1", None, None), &w).is_some());
        assert!(decide(creds("::1", None, None), &w).is_some());
        assert!(decide(creds("::ffff:127.0.0.1", None, None), &w).is_some());
        assert_eq!(decide(creds("192.0.2.2", None, None), &w), None);
        // A session of a user no longer configured counts for nothing.
        assert_eq!(decide(creds("192.0.2.2", None, Some("gone")), &w), None);
        let lead = decide(creds("192.0.2.2", None, Some("lead")), &w).unwrap();
        assert!(lead.has(Role::Admin));
        assert_eq!(lead.tz, chrono_tz::Asia::Tokyo);
        assert!(!lead.sees_customer_text(&w));
    }

    #[test]
    fn the_proxy_header_counts_only_from_a_trusted_address() {
        let w = web();
        assert_eq!(decide(creds("192.0.2.9", Some("mallory"), None), &w), None);
        let v = decide(creds("10.0.0.5", Some("Ann"), None), &w).unwrap();
        assert_eq!(v.name.as_deref(), Some("ann"));
        assert_eq!(v.roles, vec![Role::Viewer]);
        let lead = decide(creds("10.0.0.5", Some("lead"), None), &w).unwrap();
        assert_eq!(lead.roles, vec![Role::Admin]);
    }

    #[test]
    fn passwords_are_checked_against_the_argon2_hash() {
        let w = web();
        assert!(password_ok(&w, "lead", "s3cret pass"));
        assert!(password_ok(&w, " Lead ", "s3cret pass"));
        assert!(!password_ok(&w, "lead", "s3cret pas"));
        assert!(!password_ok(&w, "nobody", "s3cret pass"));
    }

    #[test]
    fn tokens_and_cookies() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
        assert_eq!(random_token().len(), 64);
        let h = Some("a=1; casegate_csrf=xyz; b=2");
        assert_eq!(cookie(h, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(h, "c"), None);
    }
}
