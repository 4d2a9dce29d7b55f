//! The fuzz targets: what casegate does with bytes nobody checked. Each takes the raw
//! input and must return without a panic, a hang or unbounded memory, whatever the bytes.
//!
//! Shared by the coverage-guided fuzzers (`fuzz/src/bin/*.rs`, `cargo afl`) and by
//! `tests/fuzz_corpus.rs`, which replays the kept corpus (`fuzz/corpus/<target>/`) in the
//! normal test suite.

use casegate::config;
use casegate::domain::{classify, commands, language, thread};
use casegate::mail::{parse, quote};

/// A fuzz target: takes any bytes.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus folder (and the fuzzer's argument).
pub const TARGETS: &[(&str, Target)] = &[
    ("mail", mail),
    ("header", header_field),
    ("charset", charset_text),
    ("html", html_text),
    ("thread", thread_subject),
    ("quote", quote_strip),
    ("commands", engineer_commands),
    ("config", config_file),
    ("contracts", contracts_csv),
    ("routing", routing_file),
];

/// A whole mail: parse, then what the pipeline reads off it.
pub fn mail(data: &[u8]) {
    let _ = parse::dedup_key(data);
    let _ = parse::sniff_headers(data);
    if let Ok(inbound) = parse::parse(data, &parse::ParseLimits::default()) {
        let _ = classify::classify(&inbound, data, &["support@example.com".to_string()]);
        let _ = language::detect(&inbound.subject, &inbound.text);
        let _ = quote::strip_reply(&inbound.text);
        for a in &inbound.attachments {
            let _ = parse::attachment_content(data, a.span);
        }
    }
}

/// One header field's value (encoded words, Message-ID lists, addresses, folding), put
/// into every field the parser decodes.
pub fn header_field(data: &[u8]) {
    let mut raw = Vec::with_capacity(data.len() * 6 + 64);
    for name in [
        "Subject",
        "From",
        "To",
        "Cc",
        "Reply-To",
        "References",
        "In-Reply-To",
    ] {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(data);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"Message-ID: <fuzz@example.com>\r\n\r\nbody\r\n");
    mail(&raw);
}

/// Text in a declared charset: the first line is the label, the rest the bytes, as a
/// plain text body and as an encoded-word subject in that charset.
pub fn charset_text(data: &[u8]) {
    let (label, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"utf-8"[..], data),
    };
    let label: Vec<u8> = label
        .iter()
        .copied()
        .filter(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'?' | b';'))
        .collect();
    let mut raw = b"From: a@example.com\r\nSubject: =?".to_vec();
    raw.extend_from_slice(&label);
    raw.extend_from_slice(b"?B?");
    raw.extend_from_slice(base64(bytes).as_bytes());
    raw.extend_from_slice(b"?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"");
    raw.extend_from_slice(&label);
    raw.extend_from_slice(b"\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    raw.extend_from_slice(bytes);
    mail(&raw);
}

/// An HTML-only mail: its text comes from the HTML.
pub fn html_text(data: &[u8]) {
    let mut raw = b"From: a@example.com\r\nSubject: html\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(data);
    mail(&raw);
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A subject: the case tag found, cleaned, and the reply's subject built from it.
pub fn thread_subject(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = thread::find_tag(&s, "Case");
    let clean = thread::clean_subject(&s, "Case");
    let _ = thread::reply_subject("[Case #00000001]", &clean);
}

pub fn quote_strip(data: &[u8]) {
    let _ = quote::strip_reply(&String::from_utf8_lossy(data));
}

pub fn engineer_commands(data: &[u8]) {
    let _ = commands::parse(&String::from_utf8_lossy(data));
}

/// A config file as an admin might write it (loaded from a file, as the daemon does;
/// the environment left out so the machine's cannot change the outcome).
pub fn config_file(data: &[u8]) {
    thread_local! {
        static FILE: tempfile::NamedTempFile = tempfile::Builder::new()
            .prefix("casegate-fuzz-")
            .suffix(".toml")
            .tempfile_in(std::env::temp_dir())
            .expect("a temp file for the config target");
    }
    FILE.with(|f| {
        if std::fs::write(f.path(), data).is_ok() {
            let _ = config::load_with_env(f.path(), Some(Default::default()));
        }
    });
}

pub fn contracts_csv(data: &[u8]) {
    let _ = config::contracts_csv::parse_contracts(&String::from_utf8_lossy(data));
}

pub fn routing_file(data: &[u8]) {
    let _ = config::routing::parse_routing(&String::from_utf8_lossy(data), "routing.toml");
}
