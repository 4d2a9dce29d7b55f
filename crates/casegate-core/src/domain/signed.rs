//! Unguessable names for the mail we send: Message-IDs and VERP return paths.
//!
//! Both carry an HMAC-SHA256 of the case number and the message's sequence number
//! under the site key (generated once and kept in the database, see
//! `Store::site_key`), so nobody outside a case can predict them:
//!
//! - Message-ID `case-00001234.m-3.<tag>@domain`: a reply that names it has seen our
//!   mail (and still joins only under the participant rule, see `thread`). The same
//!   case and sequence always give the same id, so a resend keeps its Message-ID.
//! - Envelope sender `support+b00001234.3.<tag>@domain`: a delivery report (bounce)
//!   comes back to it; only a report sent to a valid one is attached to the case
//!   as a delivery failure of that very mail.
//!
//! Tags are the first 16 hex digits (64 bits) of the HMAC, lower-case; verification
//! ignores case (mail systems may fold local parts) and runs in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TAG_HEX_LEN: usize = 16;

fn mac(key: &[u8], purpose: &str, case: i64, n: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(format!("{purpose} c{case:08} {n}").as_bytes());
    mac
}

fn tag(key: &[u8], purpose: &str, case: i64, n: i64) -> String {
    let full = hex::encode(mac(key, purpose, case, n).finalize().into_bytes());
    full[..TAG_HEX_LEN].to_string()
}

/// The Message-ID (without brackets) of the `n`th outbound message of `case`.
pub fn message_id(key: &[u8], case: i64, n: i64, domain: &str) -> String {
    format!(
        "case-{case:08}.m-{n}.{}@{}",
        tag(key, "message-id", case, n),
        domain.trim().to_ascii_lowercase()
    )
}

/// The envelope sender (return path) of the `n`th outbound message of `case`.
pub fn bounce_address(key: &[u8], support_address: &str, case: i64, n: i64) -> String {
    let (local, domain) = support_address
        .trim()
        .rsplit_once('@')
        .unwrap_or((support_address, ""));
    format!(
        "{local}+b{case:08}.{n}.{}@{domain}",
        tag(key, "bounce", case, n)
    )
}

/// `(case, n)` when `address` (bare, `<a>` or `Name <a>`) is a valid return path that
/// [`bounce_address`] made for `support_address` under `key`.
pub fn verify_bounce(key: &[u8], address: &str, support_address: &str) -> Option<(i64, i64)> {
    if key.is_empty() {
        return None;
    }
    let a = address.trim();
    let a = match (a.rfind('<'), a.rfind('>')) {
        (Some(open), Some(close)) if open < close => a[open + 1..close].trim(),
        _ => a,
    };
    let (local, domain) = a.rsplit_once('@')?;
    let (support_local, support_domain) = support_address.trim().rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(support_domain) {
        return None;
    }
    let head = local.get(..support_local.len())?;
    if !head.eq_ignore_ascii_case(support_local) {
        return None;
    }
    let detail = local[support_local.len()..].strip_prefix('+')?;
    let detail = detail
        .strip_prefix('b')
        .or_else(|| detail.strip_prefix('B'))?;
    let mut parts = detail.split('.');
    let (case, n, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || case.len() < 8 || tag.len() != TAG_HEX_LEN {
        return None;
    }
    if !case.bytes().all(|b| b.is_ascii_digit()) || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (case, n) = (case.parse::<i64>().ok()?, n.parse::<i64>().ok()?);
    let tag = hex::decode(tag.to_ascii_lowercase()).ok()?;
    mac(key, "bounce", case, n)
        .verify_truncated_left(&tag)
        .ok()?;
    Some((case, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn message_ids_are_stable_and_depend_on_the_key() {
        let a = message_id(KEY, 1234, 3, "Support.Example.com");
        assert_eq!(a, message_id(KEY, 1234, 3, "support.example.com"));
        assert!(a.starts_with("case-00001234.m-3."), "{a}");
        assert!(a.ends_with("@support.example.com"), "{a}");
        assert_ne!(
            a,
            message_id(
                b"another key, just as long.......",
                1234,
                3,
                "support.example.com"
            )
        );
        assert_ne!(a, message_id(KEY, 1234, 4, "support.example.com"));
    }

    #[test]
    fn bounce_addresses_verify_only_as_made() {
        let a = bounce_address(KEY, "support@example.com", 7, 2);
        assert!(a.starts_with("support+b00000007.2."), "{a}");
        assert_eq!(verify_bounce(KEY, &a, "support@example.com"), Some((7, 2)));
        assert_eq!(
            verify_bounce(
                KEY,
                &format!("<{}>", a.to_uppercase()),
                "support@example.com"
            ),
            Some((7, 2))
        );
        let other_case = a.replace("b00000007.2", "b00000008.2");
        assert_eq!(verify_bounce(KEY, &other_case, "support@example.com"), None);
        assert_eq!(verify_bounce(b"", &a, "support@example.com"), None);
        assert_eq!(verify_bounce(KEY, &a, "help@example.com"), None);
        assert_eq!(
            verify_bounce(KEY, "support@example.com", "support@example.com"),
            None
        );
    }
}
