//! Pure IMAP grammar helpers: UID sets, quoted strings, INTERNALDATE, FETCH responses.
//! No I/O here, so every rule is unit-tested without a server.

use std::collections::BTreeMap;

use async_imap::imap_proto::{AttributeValue, MessageSection, Outcome, Response, SectionPath};
use chrono::{DateTime, Utc};

use super::error::ImapError;

/// A compact UID set (RFC 3501 §9 `sequence-set`): `[9, 5, 7, 8]` gives `5,7:9`.
/// The caller makes sure `uids` is not empty (an empty set is not valid IMAP).
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        match sorted[i] {
            end if end == start => out.push_str(&start.to_string()),
            end => out.push_str(&format!("{start}:{end}")),
        }
        i += 1;
    }
    out
}

/// A mailbox name as an IMAP quoted string.
///
/// Non-ASCII names would need modified UTF-7 (RFC 3501 §5.1.3); rather than send bytes the
/// server may misread, they are refused with a clear error.
pub(crate) fn quote_mailbox(name: &str) -> Result<String, ImapError> {
    if name.is_empty() || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ImapError::Invalid(format!(
            "mailbox name {name:?} must be non-empty printable ASCII"
        )));
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Parses an INTERNALDATE (`" 5-Jan-2024 09:03:07 +0900"`, RFC 3501 `date-time`) into UTC.
pub(crate) fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    // The day is space-padded to two characters; chrono wants digits only.
    DateTime::parse_from_str(text.trim_start(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The text of a tagged NO/BAD for error messages: response code (if parsed) and text.
pub(crate) fn outcome_detail(outcome: &Outcome<'_>) -> String {
    let text = outcome.information.as_deref().unwrap_or("");
    match &outcome.code {
        Some(code) => format!("{code:?} {text}"),
        None => text.to_owned(),
    }
}

/// What the server sent about one message, gathered across FETCH responses.
#[derive(Debug, Default)]
pub(crate) struct MessageParts {
    pub size: Option<u32>,
    pub internal_date: Option<DateTime<Utc>>,
    pub body: Option<Vec<u8>>,
    pub header: Option<Vec<u8>>,
}

/// Collects FETCH responses by UID.
///
/// A server may split one message's data over several FETCH responses and may slip in
/// unsolicited ones (another client changed flags), so data is merged per UID and
/// responses that carry none of the requested items are ignored.
#[derive(Debug, Default)]
pub(crate) struct FetchCollector {
    pub parts: BTreeMap<u32, MessageParts>,
}

impl FetchCollector {
    /// Takes one untagged response; keeps it only when `wanted(uid)` is true.
    pub fn absorb(
        &mut self,
        response: &Response<'_>,
        wanted: impl Fn(u32) -> bool,
    ) -> Result<(), String> {
        let Response::Fetch(_, attrs) = response else {
            return Ok(());
        };
        let uid = attrs.iter().find_map(|a| match a {
            AttributeValue::Uid(uid) => Some(*uid),
            _ => None,
        });
        let Some(uid) = uid.filter(|uid| wanted(*uid)) else {
            return Ok(());
        };
        for attr in attrs {
            self.absorb_attr(uid, attr)?;
        }
        Ok(())
    }

    fn absorb_attr(&mut self, uid: u32, attr: &AttributeValue<'_>) -> Result<(), String> {
        match attr {
            AttributeValue::Rfc822Size(size) => self.entry(uid).size = Some(*size),
            AttributeValue::InternalDate(text) => {
                let date = parse_internal_date(text)
                    .ok_or_else(|| format!("UID {uid}: unreadable INTERNALDATE {text:?}"))?;
                self.entry(uid).internal_date = Some(date);
            }
            AttributeValue::BodySection {
                section: None,
                data: Some(data),
                ..
            }
            | AttributeValue::Rfc822(Some(data)) => self.entry(uid).body = Some(data.to_vec()),
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                data: Some(data),
                ..
            }
            | AttributeValue::Rfc822Header(Some(data)) => {
                self.entry(uid).header = Some(data.to_vec())
            }
            _ => {}
        }
        Ok(())
    }

    fn entry(&mut self, uid: u32) -> &mut MessageParts {
        self.parts.entry(uid).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn uid_sets_are_sorted_deduplicated_ranges() {
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[9, 5, 7, 8, 7]), "5,7:9");
        assert_eq!(uid_set(&[1, 2, 3, 10, 12, 13]), "1:3,10,12:13");
        assert_eq!(
            uid_set(&[u32::MAX, u32::MAX - 1]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn mailbox_names_are_quoted_and_escaped() {
        assert_eq!(
            quote_mailbox("INBOX.Processed").unwrap(),
            "\"INBOX.Processed\""
        );
        assert_eq!(quote_mailbox(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(quote_mailbox("a\r\nb").is_err());
        assert!(quote_mailbox("").is_err());
        assert!(quote_mailbox("処理済み").is_err());
    }

    #[test]
    fn internal_date_is_converted_to_utc() {
        let expected = Utc.with_ymd_and_hms(2024, 1, 5, 0, 3, 7).unwrap();
        assert_eq!(
            parse_internal_date(" 5-Jan-2024 09:03:07 +0900"),
            Some(expected)
        );
        assert_eq!(
            parse_internal_date("05-Jan-2024 09:03:07 +0900"),
            Some(expected)
        );
        assert_eq!(
            parse_internal_date("04-Jan-2024 19:03:07 -0500"),
            Some(expected)
        );
        assert_eq!(parse_internal_date("yesterday"), None);
    }

    fn parse(line: &[u8]) -> Response<'_> {
        Response::parse(line).unwrap().1
    }

    #[test]
    fn fetch_responses_merge_by_uid_and_ignore_unwanted_or_empty_ones() {
        let mut c = FetchCollector::default();
        let wanted = |uid: u32| uid > 3;
        c.absorb(&parse(b"* 1 FETCH (UID 4 RFC822.SIZE 12)\r\n"), wanted)
            .unwrap();
        c.absorb(
            &parse(b"* 1 FETCH (UID 4 INTERNALDATE \"05-Jan-2024 09:03:07 +0900\")\r\n"),
            wanted,
        )
        .unwrap();
        c.absorb(&parse(b"* 2 FETCH (UID 3 RFC822.SIZE 99)\r\n"), wanted)
            .unwrap();
        c.absorb(&parse(b"* 3 FETCH (UID 9 FLAGS (\\Seen))\r\n"), wanted)
            .unwrap();
        c.absorb(&parse(b"* 4 FETCH (FLAGS (\\Seen))\r\n"), wanted)
            .unwrap();
        c.absorb(&parse(b"* 5 FETCH (UID 10 BODY[] {2}\r\nhi)\r\n"), wanted)
            .unwrap();
        c.absorb(
            &parse(b"* 6 FETCH (UID 11 BODY[HEADER] {4}\r\nA: b)\r\n"),
            wanted,
        )
        .unwrap();
        assert_eq!(c.parts.keys().copied().collect::<Vec<_>>(), vec![4, 10, 11]);
        assert_eq!(c.parts[&11].header.as_deref(), Some(&b"A: b"[..]));
        assert_eq!(c.parts[&4].size, Some(12));
        assert!(c.parts[&4].internal_date.is_some());
        assert_eq!(c.parts[&10].body.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn unreadable_internal_date_is_an_error() {
        let mut c = FetchCollector::default();
        let line = b"* 1 FETCH (UID 4 INTERNALDATE \"someday\")\r\n";
        assert!(c.absorb(&parse(line), |_| true).is_err());
    }
}
