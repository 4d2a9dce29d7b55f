//! Google service accounts: the JWT bearer grant (RFC 7523). The assertion is a JWT
//! signed RS256 with the account's private key, naming the mailbox to act for as its
//! subject (domain-wide delegation). Signed with `ring`, which rustls already uses.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use super::TokenError;
use super::settings::OAuth2Settings;
use crate::domain::secret::Secret;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The fields of Google's JSON key file that the assertion needs.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
}

/// Reads and checks the key file (check-config).
pub fn check_service_account_key(s: &OAuth2Settings) -> Result<(), TokenError> {
    load(s).map(|_| ())
}

fn load(s: &OAuth2Settings) -> Result<(String, RsaKeyPair), TokenError> {
    let path = s
        .service_account_key_file
        .as_deref()
        .ok_or_else(|| TokenError::Setup("oauth2.service_account_key_file is not set".into()))?;
    let err = |detail: String| TokenError::KeyFile {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let key: KeyFile = serde_json::from_slice(&text)
        .map_err(|e| err(format!("not a service account key file: {e}")))?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(key.private_key.as_bytes())
        .map_err(|e| err(format!("private_key is not a PKCS#8 PEM key: {e}")))?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| err(format!("private_key is not a usable RSA key: {e}")))?;
    Ok((key.client_email, pair))
}

/// A fresh assertion, valid for an hour.
pub fn service_account_assertion(s: &OAuth2Settings) -> Result<Secret, TokenError> {
    let (issuer, key) = load(s)?;
    let subject = s.subject.as_deref().ok_or_else(|| {
        TokenError::Setup("no mailbox for the service account to act for: set imap.username".into())
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": issuer,
        "sub": subject,
        "scope": s.scopes.join(" "),
        "aud": s.token_url,
        "iat": now,
        "exp": now + 3600,
    });
    let claims = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| TokenError::Setup("signing the service account assertion failed".into()))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
}
