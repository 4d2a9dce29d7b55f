//! Signed per-case reply addresses: `support+c00001234.<tag>@example.com`.
//!
//! A From header proves nothing, so an engineer's reply proves itself by the address
//! it was sent to: notifications carry a Reply-To whose tag is an HMAC of the case
//! token, which only casegate (holding the key) can make. Changing the case number
//! invalidates the tag, so a reply address cannot be pointed at another case.
//!
//! The tag is the first 16 hex digits (64 bits) of HMAC-SHA256(key, "c00001234"),
//! lower-case (mail systems may fold the local part's case; verification ignores it).
//! Anyone who can read a notification can reuse its reply address for that one case:
//! the caller still requires a staff sender.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Hex digits of the tag: 64 bits, enough against guessing, short enough for an address.
const TAG_HEX_LEN: usize = 16;

/// Keys shorter than this should be refused by the configuration check.
pub const MIN_KEY_LEN: usize = 16;

/// The reply address for `case`. `support_address` is the plain `local@domain`;
/// `case` must be positive (others never verify).
pub fn reply_address(support_address: &str, case: i64, key: &[u8]) -> String {
    let (local, domain) = split_address(support_address.trim()).unwrap_or((support_address, ""));
    let token = case_token(case);
    let tag = hex::encode(mac(key, &token).finalize().into_bytes());
    format!("{local}+{token}.{}@{domain}", &tag[..TAG_HEX_LEN])
}

/// The case a reply address was made for, when `address` is a reply address of
/// `support_address` with a valid tag. Local part and domain compare case-insensitively;
/// the tag is checked in constant time. `Name <addr>` and `<addr>` are accepted.
pub fn verify(address: &str, support_address: &str, key: &[u8]) -> Option<i64> {
    if key.is_empty() {
        return None; // a misconfigured empty key must never authenticate anything
    }
    let (local, domain) = split_address(bare(address))?;
    let (support_local, support_domain) = split_address(support_address.trim())?;
    if !domain.eq_ignore_ascii_case(support_domain) {
        return None;
    }
    let detail = strip_prefix_ignore_case(local, support_local)?.strip_prefix('+')?;
    let (token, tag) = detail.split_once('.')?;
    let case = parse_token(token)?;
    let tag = hex::decode(tag).ok().filter(|_| tag.len() == TAG_HEX_LEN)?;
    mac(key, &case_token(case))
        .verify_truncated_left(&tag)
        .ok()?;
    Some(case)
}

/// The case named by the first recipient that is a valid reply address. `None` when
/// no recipient verifies, or when valid addresses of different cases are present
/// (ambiguous: the engineer must answer one case at a time).
pub fn find_case_token<'a>(
    recipients: impl IntoIterator<Item = &'a str>,
    support_address: &str,
    key: &[u8],
) -> Option<i64> {
    let mut found = None;
    for case in recipients
        .into_iter()
        .filter_map(|r| verify(r, support_address, key))
    {
        match found {
            Some(other) if other != case => return None,
            _ => found = Some(case),
        }
    }
    found
}

/// `c00001234`: the case number as shown (8 digits or more), the message that is signed.
fn case_token(case: i64) -> String {
    format!("c{case:08}")
}

/// Only the canonical form parses, so each case has exactly one valid token text.
fn parse_token(token: &str) -> Option<i64> {
    let digits = token
        .strip_prefix('c')
        .or_else(|| token.strip_prefix('C'))?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let case = digits.parse::<i64>().ok().filter(|n| *n > 0)?;
    (case_token(case)[1..] == *digits).then_some(case)
}

fn mac(key: &[u8], token: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(token.as_bytes());
    mac
}

fn split_address(address: &str) -> Option<(&str, &str)> {
    address
        .rsplit_once('@')
        .filter(|(l, d)| !l.is_empty() && !d.is_empty())
}

/// `Name <a@b>` or `<a@b>` to `a@b`.
fn bare(address: &str) -> &str {
    let a = address.trim();
    match (a.rfind('<'), a.rfind('>')) {
        (Some(open), Some(close)) if open < close => a[open + 1..close].trim(),
        _ => a,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef-test-key";
    const SUPPORT: &str = "support@example.com";

    #[test]
    fn round_trip() {
        let addr = reply_address(SUPPORT, 1234, KEY);
        assert!(addr.starts_with("support+c00001234."), "{addr}");
        assert!(addr.ends_with("@example.com"));
        assert_eq!(
            addr.len(),
            "support+c00001234.".len() + 16 + "@example.com".len()
        );
        assert_eq!(verify(&addr, SUPPORT, KEY), Some(1234));
        assert_eq!(verify(&addr.to_uppercase(), SUPPORT, KEY), Some(1234));
        assert_eq!(
            verify(&format!("Casegate <{addr}>"), "Support@Example.COM", KEY),
            Some(1234)
        );
    }

    #[test]
    fn large_case_numbers() {
        let addr = reply_address(SUPPORT, 123_456_789, KEY);
        assert_eq!(verify(&addr, SUPPORT, KEY), Some(123_456_789));
    }

    #[test]
    fn forged_case_number_with_old_tag_is_rejected() {
        let addr = reply_address(SUPPORT, 1234, KEY);
        let forged = addr.replace("c00001234", "c00001235");
        assert_eq!(verify(&forged, SUPPORT, KEY), None);
        let padded = addr.replace("c00001234", "c000001234");
        assert_eq!(verify(&padded, SUPPORT, KEY), None);
    }

    #[test]
    fn rejections() {
        let addr = reply_address(SUPPORT, 1234, KEY);
        let tag = addr
            .split('.')
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(verify(&addr, SUPPORT, b"another key"), None);
        assert_eq!(
            verify(&addr.replace("example.com", "example.org"), SUPPORT, KEY),
            None
        );
        assert_eq!(
            verify(&addr.replace("support+", "sales+"), SUPPORT, KEY),
            None
        );
        assert_eq!(
            verify(&addr.replace("support+", "xsupport+"), SUPPORT, KEY),
            None
        );
        assert_eq!(verify("support+c00001234@example.com", SUPPORT, KEY), None);
        assert_eq!(verify("support+c00001234.@example.com", SUPPORT, KEY), None);
        assert_eq!(verify(SUPPORT, SUPPORT, KEY), None);
        let short = addr.replace(&tag, &tag[..8]);
        assert_eq!(verify(&short, SUPPORT, KEY), None, "truncated tag");
        let bad = addr.replace(&tag, "0000000000000000");
        assert_eq!(verify(&bad, SUPPORT, KEY), None);
        assert_eq!(verify(&addr, SUPPORT, b""), None);
    }

    #[test]
    fn find_among_recipients() {
        let a = reply_address(SUPPORT, 7, KEY);
        let b = reply_address(SUPPORT, 8, KEY);
        assert_eq!(
            find_case_token(["x@y.z", a.as_str()], SUPPORT, KEY),
            Some(7)
        );
        assert_eq!(
            find_case_token([a.as_str(), a.as_str()], SUPPORT, KEY),
            Some(7)
        );
        assert_eq!(
            find_case_token([a.as_str(), b.as_str()], SUPPORT, KEY),
            None
        );
        assert_eq!(find_case_token([SUPPORT], SUPPORT, KEY), None);
    }
}
