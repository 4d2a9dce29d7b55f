//! Mail in: raw RFC 5322 bytes -> [`Inbound`] (the outbound side, which needs lettre,
//! is `casegate::mail::compose` in the main crate).

pub mod addr_spec;
pub mod parse;
pub mod quote;

mod body;
mod bounded;
mod charset;
mod header;
mod html;
mod skeleton;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One mailbox address. `email` is trimmed; the domain part is lower-cased so that
/// comparisons and domain matching are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub name: Option<String>,
    pub email: String,
}

impl Address {
    /// The domain part, lower-case, or "" when the address has none.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// An attachment as received. Its content stays in the raw mail (see `span`); only a
/// forwarded original (see [`is_forwarded_original`]) is decoded here, for bounce
/// handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub filename: Option<String>,
    pub content_type: String,
    /// Decoded bytes.
    pub size: usize,
    /// Within the configured cap: the content is kept (in the raw mail). Otherwise only
    /// name, type and size are.
    #[serde(skip)]
    pub kept: bool,
    /// The decoded content of a kept forwarded original; `None` for every other part.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
    /// Where the part (its MIME headers and body) lies in the raw mail: the store keeps
    /// only the raw mail, and [`crate::mail::parse::attachment_content`] decodes the
    /// part again from this range.
    #[serde(skip)]
    pub span: (usize, usize),
}

/// The parts of a delivery report that carry the original message or its header
/// (RFC 3462 §2, RFC 6533 §6 for the internationalised `message/global*` forms).
pub fn is_forwarded_original(content_type: &str) -> bool {
    matches!(
        content_type,
        "message/rfc822" | "text/rfc822-headers" | "message/global" | "message/global-headers"
    )
}

/// The header facts later stages (classification, etiquette) need, kept raw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MailHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    /// `Some("")` for an empty `Return-Path: <>` (a bounce), `None` when absent.
    pub return_path: Option<String>,
    /// Top-level `Content-Type`, e.g. `multipart/report; report-type=delivery-status`.
    pub content_type: Option<String>,
    pub authentication_results: Vec<String>,
}

/// A parsed inbound mail: the "parse" stage's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inbound {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Decoded subject, "" when missing.
    pub subject: String,
    pub from: Address,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// The sender's Date header; informational only (receipt time is INTERNALDATE).
    pub date: Option<DateTime<Utc>>,
    /// Readable body text, `\n` line endings, decoded to UTF-8 (HTML converted).
    pub text: String,
    /// True when the mail carried no text/plain part and `text` came from HTML.
    pub html_only: bool,
    pub attachments: Vec<Attachment>,
    pub headers: MailHeaders,
}
