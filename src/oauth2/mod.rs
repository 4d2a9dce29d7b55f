//! OAuth2 for signing in to Microsoft 365 and Gmail mailboxes: a token client (RFC 6749:
//! refresh token and client credentials grants) with a cache, and the SASL messages
//! that carry an access token (XOAUTH2, and OAUTHBEARER of RFC 7628).

pub mod http;
mod jwt;
pub mod login;
pub mod settings;
mod token;

pub use jwt::check_service_account_key;
pub use token::{TokenError, TokenSource, read_refresh_token};

use crate::domain::secret::Secret;

/// The XOAUTH2 initial response (Google's and Microsoft's format):
/// `user=USER ^A auth=Bearer TOKEN ^A ^A`.
pub fn xoauth2_response(user: &str, token: &Secret) -> Secret {
    Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// The OAUTHBEARER initial response (RFC 7628 §3.1): a GS2 header naming the user, the
/// server's host and port, and the bearer token.
pub fn oauthbearer_response(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    // RFC 5801 §4: ',' and '=' in the authzid are escaped as =2C and =3D.
    let user = user.replace('=', "=3D").replace(',', "=2C");
    Secret::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_responses_have_the_documented_layout() {
        let t = Secret::new("tok");
        assert_eq!(
            xoauth2_response("a@b.c", &t).expose(),
            "user=a@b.c\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            oauthbearer_response("a,b=c", "imap.example", 993, &t).expose(),
            "n,a=a=2Cb=3Dc,\x01host=imap.example\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }
}
