//! Is a parsed address one casegate can write to? RFC 5322 §3.4.1 addr-spec, with the
//! leniency real-world mail needs: quoted local parts (`"j doe"@example.com`), dots
//! where the grammar has none (Japanese mobile carriers issued `taro..yamada.@`),
//! internationalised domain names (U-labels) and a trailing dot on the domain.
//! Anything else (an empty part, spaces, control characters, bytes that were never an
//! address such as `ÿþ@`) is not an address, and a mail whose sender is not one cannot
//! be answered.

/// True when `email` (as [`super::Address::email`] holds it) is a usable addr-spec.
pub fn is_usable(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    local_part(local) && domain_part(domain)
}

fn local_part(local: &str) -> bool {
    if local.len() > 64 * 4 {
        return false;
    }
    if let Some(inner) = local
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return quoted(inner);
    }
    !local.is_empty() && local.chars().all(|c| c == '.' || atext(c))
}

/// The content of a quoted string: printable ASCII and spaces; `"` and `\` only escaped.
fn quoted(inner: &str) -> bool {
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            if !(c == ' ' || c == '\t' || c.is_ascii_graphic()) {
                return false;
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' || !(c == ' ' || c == '\t' || c.is_ascii_graphic()) {
            return false;
        }
    }
    !escaped
}

/// RFC 5322 atext: ASCII letters, digits and ``!#$%&'*+-/=?^_`{|}~``.
fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn domain_part(domain: &str) -> bool {
    if let Some(literal) = domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return !literal.is_empty()
            && literal
                .chars()
                .all(|c| c.is_ascii_graphic() && !"[]\\".contains(c));
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.len() <= 255
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || idn_letter(c))
        })
}

/// A character of an internationalised label (a U-label): a letter or digit outside
/// ASCII. (Local parts stay ASCII: mail that needs SMTPUTF8 to answer is rare in
/// support, and raw 8-bit bytes there are far more often damage.)
fn idn_letter(c: char) -> bool {
    !c.is_ascii() && c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::is_usable;

    #[test]
    fn real_world_addresses_are_usable() {
        for ok in [
            "john.smith@customer.example.com",
            "a@b",
            "\"john doe\"@example.com",
            "\"a\\\"b\"@example.com",
            "taro..yamada.@docomo.ne.jp",
            ".x@ezweb.ne.jp",
            "user+tag@example.co.jp",
            "info@例え.jp",
            "info@bücher.example",
            "root@example.com.",
            "postmaster@[192.0.2.1]",
            "o'brien@example.ie",
        ] {
            assert!(is_usable(ok), "{ok}");
        }
    }

    #[test]
    fn things_that_are_not_addresses_are_not_usable() {
        for bad in [
            "ÿþ@",
            "ÿþ@example.com",
            "@example.com",
            "user@",
            "user",
            "",
            "a b@example.com",
            "user@exa mple.com",
            "user@.example.com",
            "user@example..com",
            "\"unterminated@example.com",
            "a\u{0}b@example.com",
            "user@[]",
            "<user@example.com>",
        ] {
            assert!(!is_usable(bad), "{bad}");
        }
    }
}
