//! The OAuth2 token server of the test servers (`scripts/token_server.py`): register a
//! client, play the user's side of a sign-in (grant, device approval, revocation), and
//! list every token it ever issued (to check that none reached a log).
//!
//! Plain HTTP/1.1 over a std `TcpStream`, so the harness does not lean on the token
//! client under test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::TestEnv;

/// `application/x-www-form-urlencoded` (RFC 3986 unreserved characters kept).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One HTTP request to the token server: (status, headers, JSON body or Null).
pub fn http(method: &str, path: &str, body: &str) -> (u16, String, Value) {
    let port = TestEnv::get().oauth_port;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the token server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_string(), json)
}

pub fn post(path: &str, fields: &[(&str, &str)]) -> Value {
    let (status, _, v) = http("POST", path, &form_encode(fields));
    assert!(
        status == 200 || path == "/token",
        "POST {path}: {status} {v}"
    );
    v
}

/// Registers a confidential client whose access tokens live `access_ttl` seconds;
/// `app_user` is the mailbox of its client_credentials grant.
pub fn register_client(client_id: &str, secret: &str, access_ttl: u32, app_user: Option<&str>) {
    let ttl = access_ttl.to_string();
    let mut f = vec![
        ("client_id", client_id),
        ("client_secret", secret),
        ("access_ttl", ttl.as_str()),
    ];
    if let Some(u) = app_user {
        f.push(("user", u));
    }
    post("/admin/client", &f);
}

/// Registers a Google-style service account: `email` signs its assertions with the key
/// whose public half is `public_key_pem`.
pub fn register_service_account(email: &str, public_key_pem: &str, access_ttl: u32) {
    let ttl = access_ttl.to_string();
    post(
        "/admin/client",
        &[
            ("client_id", email),
            ("public_key", public_key_pem),
            ("access_ttl", ttl.as_str()),
        ],
    );
}

/// The refresh token a first sign-in of `user` would have given `client_id`.
pub fn grant(client_id: &str, user: &str, scope: &str) -> String {
    post(
        "/admin/grant",
        &[("client_id", client_id), ("user", user), ("scope", scope)],
    )["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

/// The user approves the device code `user_code`.
pub fn approve_device(user_code: &str, user: &str) {
    post(
        "/admin/approve",
        &[("user_code", user_code), ("user", user)],
    );
}

/// Revokes every token of `user` (as an admin who removes the app's consent).
pub fn revoke_user(user: &str) {
    post("/admin/revoke-user", &[("user", user)]);
}

/// Revokes the access tokens of `user` only: clients still holding one are refused at
/// their next sign-in, and must fetch a new one with their refresh token.
pub fn revoke_access_tokens(user: &str) {
    post("/admin/revoke-access", &[("user", user)]);
}

/// Every token the server has issued (access and refresh tokens, authorization codes).
pub fn issued_tokens() -> Vec<String> {
    let (_, _, v) = http("GET", "/admin/issued", "");
    v["issued"]
        .as_array()
        .expect("issued list")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// Panics naming the token when any token the server ever issued appears in `text`.
pub fn assert_no_token_in(what: &str, text: &str) {
    for t in issued_tokens() {
        assert!(!text.contains(&t), "{what} contains an issued token: {t}");
    }
}

/// The token server's base URL, e.g. `http://127.0.0.1:40123`.
pub fn base_url() -> String {
    format!("http://127.0.0.1:{}", TestEnv::get().oauth_port)
}
