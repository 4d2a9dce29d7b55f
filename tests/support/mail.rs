//! Test mails built byte by byte, as particular clients send them.

pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A Japanese mail as Japanese mail clients still send it: ISO-2022-JP, 7bit.
pub fn iso2022jp_mail(
    mid: &str,
    from_name: &str,
    from: &str,
    subject: &str,
    body: &str,
) -> Vec<u8> {
    let enc = |s: &str| encoding_rs::ISO_2022_JP.encode(s).0.into_owned();
    let word = |s: &str| format!("=?ISO-2022-JP?B?{}?=", b64(&enc(s)));
    let mut raw = format!(
        "From: {} <{from}>\r\nTo: support@example.com\r\nSubject: {}\r\nDate: Fri, 27 Nov 2026 18:00:00 +0900\r\n\
         Message-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n",
        word(from_name),
        word(subject)
    )
    .into_bytes();
    raw.extend(enc(&body.replace('\n', "\r\n")));
    raw.extend(b"\r\n");
    raw
}

/// A delivery status notification (RFC 3464) from the MTA `host`, sent to `to`, that
/// reports `original` (carried as `report_part`, e.g. `message/rfc822`) as undeliverable.
/// It starts with `Delivered-To: {to}`, as Dovecot LMTP prepends it on delivery.
pub fn dsn(host: &str, tag: &str, to: &str, original: &[u8], report_part: &str) -> Vec<u8> {
    let boundary = format!("dsn-{tag}");
    let mut raw = format!(
        "Delivered-To: {to}\r\nReturn-Path: <>\r\nFrom: MAILER-DAEMON@{host} (Mail Delivery System)\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nDate: Fri, 27 Nov 2026 09:05:00 +0000\r\n\
         Message-ID: <bounce-{tag}@{host}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Your message could not be delivered to one or more recipients.\r\n\r\n\
         --{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {host}\r\n\r\nFinal-Recipient: rfc822; gone@{host}\r\nAction: failed\r\n\
         Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --{boundary}\r\nContent-Type: {report_part}\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(original);
    raw.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    raw
}

/// A plain customer mail: `From`, `Subject` and `Message-ID` as given, one line of body.
pub fn plain_mail(from: &str, subject: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\nThe playbook fails on every host.\r\n"
    )
    .into_bytes()
}

/// A test mail built header by header, in the order given, then its body: the one way
/// the tests write a mail that no particular client shape matters for.
/// `mail_to_support(from, subject, id).body("text")` is the common case.
#[derive(Debug, Clone, Default)]
pub struct MailBuilder {
    head: Vec<u8>,
}

impl MailBuilder {
    pub fn new() -> MailBuilder {
        MailBuilder::default()
    }

    /// One header line `name: value`.
    pub fn header(self, name: &str, value: impl std::fmt::Display) -> MailBuilder {
        self.header_bytes(name, value.to_string().as_bytes())
    }

    /// One header line whose value is raw bytes (not UTF-8, or not an address at all).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> MailBuilder {
        self.head.extend_from_slice(name.as_bytes());
        self.head.extend_from_slice(b": ");
        self.head.extend_from_slice(value);
        self.head.extend_from_slice(b"\r\n");
        self
    }

    /// `Message-ID: <id>` (the brackets added).
    pub fn message_id(self, id: impl std::fmt::Display) -> MailBuilder {
        self.header("Message-ID", format!("<{id}>"))
    }

    /// `MIME-Version: 1.0` and `Content-Type: text/plain; charset=utf-8`.
    pub fn utf8_text(self) -> MailBuilder {
        self.header("MIME-Version", "1.0")
            .header("Content-Type", "text/plain; charset=utf-8")
    }

    /// Header lines already written out, each ending in CRLF (e.g. a test's extra ones).
    pub fn headers(mut self, block: &str) -> MailBuilder {
        self.head.extend_from_slice(block.as_bytes());
        self
    }

    /// The raw mail: the headers, a blank line, then `body` exactly as given (a test of
    /// line endings or of bytes in a legacy charset).
    pub fn body_verbatim(self, body: impl AsRef<[u8]>) -> Vec<u8> {
        let mut raw = self.head;
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body.as_ref());
        raw
    }

    /// The raw mail: the headers, a blank line, then `text` with CRLF line ends.
    pub fn body(self, text: &str) -> Vec<u8> {
        let mut raw = self.head;
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes());
        raw
    }
}

/// `From: from`, `To: support@example.com`, `Subject`, `Message-ID: <id>`; more headers
/// may follow.
pub fn mail_to_support(
    from: impl std::fmt::Display,
    subject: impl std::fmt::Display,
    message_id: impl std::fmt::Display,
) -> MailBuilder {
    MailBuilder::new()
        .header("From", from)
        .header("To", "support@example.com")
        .header("Subject", subject)
        .message_id(message_id)
}
