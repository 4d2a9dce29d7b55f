//! `Authentication-Results` (RFC 8601): did our own receiving MTA authenticate the
//! sender's domain?
//!
//! A From header proves nothing; a DKIM signature or DMARC pass verified by *our* MTA
//! does. Anyone can put an Authentication-Results header into a mail, so only headers
//! whose authserv-id is configured as trusted count (and that MTA must remove
//! incoming headers carrying its own id, as RFC 8601 §5 requires).
//!
//! Accepted: `dkim=pass` with `header.d` **equal** to the From domain, or `dmarc=pass`
//! with `header.from` equal to it (case-insensitive, trailing dot ignored). A parent
//! domain's DKIM signature is not accepted: relaxed alignment is what DMARC decides,
//! and a `dmarc=pass` already covers it. `header.i` is not used.

/// One `method=result` with its properties, e.g. `dkim=pass header.d=example.com`.
#[derive(Debug, Default, PartialEq, Eq)]
struct MethodResult {
    method: String,
    result: String,
    props: Vec<(String, String)>,
}

impl MethodResult {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// True when a trusted `Authentication-Results` header shows the From domain passed
/// DKIM or DMARC. `auth_results` are header values (the `Authentication-Results:`
/// name may be included); untrusted authserv-ids are ignored.
pub fn authenticated(
    auth_results: &[String],
    trusted_authserv_ids: &[String],
    from_domain: &str,
) -> bool {
    let from = normalize_domain(from_domain);
    if from.is_empty() {
        return false;
    }
    auth_results
        .iter()
        .filter_map(|h| parse_header(h))
        .filter(|(id, _)| {
            trusted_authserv_ids
                .iter()
                .any(|t| t.trim().eq_ignore_ascii_case(id))
        })
        .flat_map(|(_, results)| results)
        .any(|r| passes_for(&r, &from))
}

fn passes_for(r: &MethodResult, from: &str) -> bool {
    let prop = match (r.method.as_str(), r.result.as_str()) {
        ("dkim", "pass") => "header.d",
        ("dmarc", "pass") => "header.from",
        _ => return false,
    };
    r.prop(prop).is_some_and(|d| normalize_domain(d) == from)
}

fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The authserv-id (lower-case) and the method results of one header value.
fn parse_header(value: &str) -> Option<(String, Vec<MethodResult>)> {
    let value = strip_header_name(value);
    let text = strip_comments(value);
    let mut segments = split_unquoted(&text, ';').into_iter();
    let first = segments.next()?;
    let id = unquote(first.split_whitespace().next()?).to_ascii_lowercase();
    let results = segments.flat_map(|s| parse_results(&s)).collect();
    Some((id, results))
}

fn strip_header_name(value: &str) -> &str {
    const NAME: &str = "authentication-results:";
    match value.trim_start().get(..NAME.len()) {
        Some(head) if head.eq_ignore_ascii_case(NAME) => &value.trim_start()[NAME.len()..],
        _ => value,
    }
}

/// Removes `(comments)`, nested ones too, but not parentheses inside quoted strings;
/// folding whitespace becomes spaces.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in s.chars() {
        let keep = match c {
            _ if escaped => {
                escaped = false;
                depth == 0
            }
            '\\' => {
                escaped = true;
                depth == 0
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                true
            }
            '(' if !quoted => {
                depth += 1;
                false
            }
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                out.push(' ');
                false
            }
            _ => depth == 0,
        };
        if keep {
            out.push(if c.is_whitespace() { ' ' } else { c });
        }
    }
    out
}

fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("never empty").push(c);
    }
    parts
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The `name=value` pairs of one `;`-segment grouped into results. A name without a
/// dot (other than `reason`, `action`) starts a new result, so results whose `;` a
/// sloppy MTA left out are still told apart.
fn parse_results(segment: &str) -> Vec<MethodResult> {
    let mut results: Vec<MethodResult> = Vec::new();
    for (name, value) in pairs(segment) {
        let starts_result = !name.contains('.') && name != "reason" && name != "action";
        if starts_result {
            let method = name.split('/').next().unwrap_or("").to_owned();
            results.push(MethodResult {
                method,
                result: value.to_ascii_lowercase(),
                props: vec![],
            });
        } else if let Some(last) = results.last_mut() {
            last.props.push((name, value));
        }
    }
    results
}

/// `name = value` pairs; spaces around `=` allowed; a value is a quoted string or
/// runs to the next space (so base64 `=` padding stays in the value). Words that are
/// not part of a pair (`none`, a version number) are skipped.
fn pairs(segment: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = segment.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        i = skip_spaces(&chars, i);
        let name_end = scan(&chars, i, |c| c == '=' || c == ' ');
        let name: String = chars[i..name_end].iter().collect();
        let eq = skip_spaces(&chars, name_end);
        if name.is_empty() || chars.get(eq) != Some(&'=') {
            i = name_end.max(i + 1);
            continue;
        }
        let (value, next) = read_value(&chars, skip_spaces(&chars, eq + 1));
        out.push((name.to_ascii_lowercase(), value));
        i = next;
    }
    out
}

fn read_value(chars: &[char], start: usize) -> (String, usize) {
    if chars.get(start) == Some(&'"') {
        let end = scan(chars, start + 1, |c| c == '"');
        let value = chars[start + 1..end].iter().collect();
        return (value, end + 1);
    }
    let end = scan(chars, start, |c| c == ' ');
    (chars[start..end].iter().collect(), end)
}

fn skip_spaces(chars: &[char], i: usize) -> usize {
    scan(chars, i, |c| c != ' ')
}

/// The first index at or after `i` whose char satisfies `stop`, or the end.
fn scan(chars: &[char], i: usize, stop: impl Fn(char) -> bool) -> usize {
    (i..chars.len())
        .find(|&j| stop(chars[j]))
        .unwrap_or(chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(headers: &[&str], from: &str) -> bool {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        authenticated(&headers, &["mx.vendor.example".to_string()], from)
    }

    const OPENDKIM: &str = "mx.vendor.example; dkim=pass (2048-bit key; unprotected)\r\n \
         header.d=vendor.example header.i=@vendor.example header.a=rsa-sha256 header.s=s1 header.b=AbCd+e=";

    #[test]
    fn trusted_dkim_pass_with_comments_and_folding() {
        assert!(ok(&[OPENDKIM], "vendor.example"));
        assert!(ok(&[OPENDKIM], "Vendor.Example."));
    }

    #[test]
    fn untrusted_authserv_id_is_ignored() {
        let forged = OPENDKIM.replace("mx.vendor.example;", "mx.attacker.example;");
        assert!(!ok(&[&forged], "vendor.example"));
    }

    #[test]
    fn failures_and_other_domains() {
        assert!(!ok(
            &["mx.vendor.example; dkim=fail header.d=vendor.example"],
            "vendor.example"
        ));
        assert!(!ok(
            &["mx.vendor.example; dkim=pass header.d=other.example"],
            "vendor.example"
        ));
        assert!(!ok(
            &["mx.vendor.example; dkim=pass header.d=vendor.example"],
            "sub.vendor.example"
        ));
        assert!(!ok(
            &["mx.vendor.example; spf=pass smtp.mailfrom=vendor.example"],
            "vendor.example"
        ));
        assert!(!ok(&["mx.vendor.example; none"], "vendor.example"));
        assert!(!ok(
            &["mx.vendor.example; dkim=pass header.d=vendor.example"],
            ""
        ));
        assert!(!ok(&["garbage (((", ""], "vendor.example"));
    }

    #[test]
    fn dmarc_pass_microsoft_style() {
        let h = "Authentication-Results: spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=vendor.example; \
                 dkim=none (message not signed) header.d=none;dmarc=pass action=none \
                 header.from=vendor.example;compauth=pass reason=100";
        // Exchange Online writes no authserv-id: such a header can never be trusted.
        assert!(!ok(&[h], "vendor.example"));
        let with_id =
            "mx.vendor.example; dmarc=pass action=none header.from=vendor.example;compauth=pass";
        assert!(ok(&[with_id], "vendor.example"));
    }

    #[test]
    fn several_results_and_headers() {
        let h = "MX.Vendor.Example 1; spf=pass smtp.mailfrom=x; DKIM = Pass header.d = \"vendor.example\" \
                 dmarc=fail header.from=vendor.example";
        assert!(ok(
            &["other.example; dkim=pass header.d=vendor.example", h],
            "vendor.example"
        ));
    }

    #[test]
    fn parse_pairs() {
        let r = parse_results(" dkim=pass reason=\"a b; c\" header.d=x.example header.b=abc=");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].prop("header.b"), Some("abc="));
        assert_eq!(r[0].prop("reason"), Some("a b; c"));
    }
}
