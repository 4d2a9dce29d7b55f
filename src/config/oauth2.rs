//! `[oauth2]`: how casegate gets the access tokens it signs in to IMAP and SMTP with
//! (`imap.auth = "oauth2"`, `smtp.auth = "oauth2"`), with presets for Microsoft 365 and
//! Google. Read into [`OAuth2Settings`]; every problem named by key.

use std::sync::Arc;
use std::time::Duration;

use super::load::Reader;
use crate::oauth2::TokenSource;
use crate::oauth2::settings::*;

/// The `[oauth2]` section, when present: its settings and the token source built on them.
pub(super) fn read(r: &mut Reader<'_>) -> Option<(Arc<OAuth2Settings>, Arc<TokenSource>)> {
    if !r.has_section("oauth2") {
        return None;
    }
    let provider = match r
        .choice(
            "oauth2.provider",
            "custom",
            &["microsoft", "google", "custom"],
        )
        .as_str()
    {
        "microsoft" => Some(Provider::Microsoft),
        "google" => Some(Provider::Google),
        _ => None,
    };
    let grant = match r
        .choice(
            "oauth2.grant",
            "refresh_token",
            &["refresh_token", "client_credentials", "service_account"],
        )
        .as_str()
    {
        "client_credentials" => Grant::ClientCredentials,
        "service_account" => Grant::ServiceAccount,
        _ => Grant::RefreshToken,
    };
    if grant == Grant::ServiceAccount && provider == Some(Provider::Microsoft) {
        r.problem(
            None,
            "oauth2.grant",
            "\"service_account\" is Google's: Microsoft 365 app-only access is \"client_credentials\"",
        );
    }
    if grant == Grant::ClientCredentials && provider == Some(Provider::Google) {
        r.problem(
            None,
            "oauth2.grant",
            "Google has no client_credentials grant for mail: use \"refresh_token\"",
        );
    }
    let tenant = r.string("oauth2.tenant", Some("organizations"));
    let ms = |path: &str| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{path}");
    let (token, device, authorize) = match provider {
        Some(Provider::Microsoft) => (
            Some(ms("token")),
            Some(ms("devicecode")),
            Some(ms("authorize")),
        ),
        Some(Provider::Google) => (
            Some("https://oauth2.googleapis.com/token".to_string()),
            Some("https://oauth2.googleapis.com/device/code".to_string()),
            Some("https://accounts.google.com/o/oauth2/v2/auth".to_string()),
        ),
        None => (None, None, None),
    };
    let token_url = url(r, "oauth2.token_url", token);
    let device_authorization_url = opt_url(r, "oauth2.device_authorization_url", device);
    let authorization_url = opt_url(r, "oauth2.authorization_url", authorize);
    let service_account_key_file = r.path("oauth2.service_account_key_file");
    if grant == Grant::ServiceAccount && service_account_key_file.is_none() {
        r.problem(
            None,
            "oauth2.service_account_key_file",
            "missing: the service account's JSON key file",
        );
    }
    let subject = match grant {
        Grant::ServiceAccount => r
            .opt_string("imap.username")
            .or_else(|| r.opt_string("smtp.username")),
        _ => None,
    };
    // A service account names itself in its signed assertion, not by client id.
    let client_id = r.opt_string("oauth2.client_id").unwrap_or_else(|| {
        if grant == Grant::ServiceAccount {
            return String::new();
        }
        r.problem(
            None,
            "oauth2.client_id",
            "missing: the application (client) id of the app registration",
        );
        String::new()
    });
    let client_secret = r.secret_opt("oauth2.client_secret", "oauth2.client_secret_file");
    if client_secret.is_none() && grant == Grant::ClientCredentials {
        r.problem(
            None,
            "oauth2.client_secret",
            "missing: the client_credentials grant needs oauth2.client_secret or oauth2.client_secret_file",
        );
    }
    let default_scopes: &[&str] = match (provider, grant) {
        (Some(Provider::Microsoft), Grant::ClientCredentials) => &[MICROSOFT_APP_SCOPE],
        (Some(Provider::Microsoft), _) => {
            &[MICROSOFT_IMAP_SCOPE, MICROSOFT_SMTP_SCOPE, "offline_access"]
        }
        (Some(Provider::Google), _) => &[GOOGLE_MAIL_SCOPE],
        (None, _) => &[],
    };
    let scopes = match r.string_list_raw("oauth2.scopes") {
        Some(s) => s,
        None => default_scopes.iter().map(|s| s.to_string()).collect(),
    };
    if scopes.is_empty() && provider.is_none() {
        r.problem(
            None,
            "oauth2.scopes",
            "missing: the scopes to ask for (no provider preset is set)",
        );
    }
    let file = r.string("oauth2.refresh_token_file", Some("oauth2-refresh-token"));
    let refresh_token_file = r.resolve(&file);
    let ca_file = r.path("oauth2.ca_file");
    let timeout = Duration::from_secs(r.uint("oauth2.timeout_secs", 30, 1, 600));
    let settings = Arc::new(OAuth2Settings {
        provider,
        token_url,
        device_authorization_url,
        authorization_url,
        client_id,
        client_secret,
        scopes,
        grant,
        refresh_token_file,
        ca_file,
        timeout,
        service_account_key_file,
        subject,
    });
    let source = Arc::new(TokenSource::new(settings.clone()));
    Some((settings, source))
}

/// `imap.auth` / `smtp.auth`; `oauth2` without an `[oauth2]` section is a problem.
pub(super) fn auth_method(r: &mut Reader<'_>, key: &str, have_oauth2: bool) -> AuthMethod {
    match r.choice(key, "password", &["password", "oauth2"]).as_str() {
        "oauth2" => {
            if !have_oauth2 {
                r.problem(None, key, "\"oauth2\" needs an [oauth2] section");
            }
            AuthMethod::OAuth2
        }
        _ => AuthMethod::Password,
    }
}

/// `imap.sasl_mechanism` (or a `[[mailboxes]]` entry's `sasl_mechanism`: `key`).
pub(super) fn sasl_choice(r: &mut Reader<'_>, key: &str) -> SaslChoice {
    match r
        .choice(key, "auto", &["auto", "xoauth2", "oauthbearer"])
        .as_str()
    {
        "xoauth2" => SaslChoice::XOAuth2,
        "oauthbearer" => SaslChoice::OAuthBearer,
        _ => SaslChoice::Auto,
    }
}

/// The scopes must reach what signs in with them.
pub(super) fn check_scopes(r: &mut Reader<'_>, s: &OAuth2Settings, imap: bool, smtp: bool) {
    if imap && !s.scopes_reach_imap() {
        r.problem(
            None,
            "oauth2.scopes",
            format!(
                "no scope reaches IMAP: add {}",
                match s.provider {
                    Some(Provider::Google) => GOOGLE_MAIL_SCOPE,
                    _ if s.grant == Grant::ClientCredentials => MICROSOFT_APP_SCOPE,
                    _ => MICROSOFT_IMAP_SCOPE,
                }
            ),
        );
    }
    if smtp && !s.scopes_reach_smtp() {
        r.problem(
            None,
            "oauth2.scopes",
            format!(
                "no scope reaches SMTP: add {}",
                match s.provider {
                    Some(Provider::Google) => GOOGLE_MAIL_SCOPE,
                    _ if s.grant == Grant::ClientCredentials => MICROSOFT_APP_SCOPE,
                    _ => MICROSOFT_SMTP_SCOPE,
                }
            ),
        );
    }
}

fn opt_url(r: &mut Reader<'_>, key: &str, default: Option<String>) -> Option<String> {
    let value = r.opt_string(key).or(default)?;
    check_url(r, key, &value);
    Some(value)
}

fn url(r: &mut Reader<'_>, key: &str, default: Option<String>) -> String {
    match r.opt_string(key).or(default) {
        Some(v) => {
            check_url(r, key, &v);
            v
        }
        None => {
            r.problem(
                None,
                key,
                "missing: set it, or oauth2.provider = \"microsoft\" or \"google\"",
            );
            String::new()
        }
    }
}

fn check_url(r: &mut Reader<'_>, key: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(super::is_loopback_host) => {}
        Ok(_) => r.problem(
            None,
            key,
            format!("expected an https:// URL (http only to a loopback host), found \"{value}\""),
        ),
        Err(e) => r.problem(None, key, format!("not a URL ({e}): \"{value}\"")),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ImapAuth, Provider, load_with_env, test_env};

    fn load(body: &str) -> Result<crate::config::Config, String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("casegate.toml");
        std::fs::write(&p, body).unwrap();
        load_with_env(&p, Some(test_env())).map_err(|e| e.to_string())
    }

    #[test]
    fn the_microsoft_preset_fills_endpoints_scopes_and_host() {
        let c = load(
            "[imap]\nauth = \"oauth2\"\nusername = \"support@contoso.com\"\n\
             [oauth2]\nprovider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n",
        )
        .unwrap();
        let imap = c.imap.unwrap();
        assert_eq!(imap.host, "outlook.office365.com");
        assert!(matches!(imap.auth, ImapAuth::OAuth2 { .. }));
        let o = c.oauth2.unwrap();
        assert_eq!(o.provider, Some(Provider::Microsoft));
        assert_eq!(
            o.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(
            o.scopes
                .iter()
                .any(|s| s.ends_with("IMAP.AccessAsUser.All"))
        );
        assert!(o.scopes.iter().any(|s| s == "offline_access"));
    }

    #[test]
    fn problems_are_named_by_key() {
        let text = load(
            "[imap]\nhost = \"imap.gmail.com\"\nauth = \"oauth2\"\nusername = \"u\"\n\
             [oauth2]\nprovider = \"google\"\nscopes = [\"openid\"]\ngrant = \"client_credentials\"\n",
        )
        .unwrap_err();
        assert!(text.contains("oauth2.client_id: missing"), "{text}");
        assert!(
            text.contains("oauth2.scopes: no scope reaches IMAP: add https://mail.google.com/"),
            "{text}"
        );
        assert!(
            text.contains("oauth2.grant: Google has no client_credentials"),
            "{text}"
        );
        let text = load("[imap]\nhost = \"h\"\nauth = \"oauth2\"\nusername = \"u\"\n").unwrap_err();
        assert!(
            text.contains("imap.auth: \"oauth2\" needs an [oauth2] section"),
            "{text}"
        );
        let text = load(
            "[imap]\nhost = \"h\"\nauth = \"oauth2\"\nusername = \"u\"\n\
             [oauth2]\nclient_id = \"a\"\ntoken_url = \"http://login.example/token\"\nscopes = [\"x\"]\n",
        )
        .unwrap_err();
        assert!(
            text.contains("oauth2.token_url: expected an https:// URL"),
            "{text}"
        );
    }
}
