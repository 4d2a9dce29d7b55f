//! Golden tests of the parse stage, in the style of mail-parser's own: every
//! `tests/fixtures/eml/NAME.eml` is parsed and compared with `NAME.json` (the
//! pretty-printed serde_json of the `Inbound`) or, for mail that must be rejected,
//! `NAME.err` (the Display text of the error). With `CASEGATE_BLESS=1` the expected
//! files are (re)written instead; review them by eye before committing.
//! `tests/fixtures/make_eml.py` documents how the .eml files were made.

use std::{
    fs,
    path::{Path, PathBuf},
};

use casegate::mail::parse::{
    ParseLimits, attachment_content, dedup_key, parse, sniff_headers, sniff_message_id,
};

const LIMITS: ParseLimits = ParseLimits {
    max_attachment_bytes: 1024 * 1024,
    max_header_bytes: casegate::mail::parse::DEFAULT_MAX_HEADER_BYTES,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "fixtures missing in {}",
        fixture_dir().display()
    );
    files
}

fn read(name: &str) -> Vec<u8> {
    fs::read(fixture_dir().join(name)).expect("fixture")
}

/// The expected file's extension and content for one parse result.
fn render(raw: &[u8]) -> (&'static str, String) {
    match parse(raw, &LIMITS) {
        Ok(inbound) => (
            "json",
            serde_json::to_string_pretty(&inbound).expect("serialise") + "\n",
        ),
        Err(err) => ("err", format!("{err}\n")),
    }
}

fn first_difference(expected: &str, actual: &str) -> String {
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a);
    let line = line.unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    format!(
        "line {}:\n  expected: {}\n  actual:   {}",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>")
    )
}

#[test]
fn golden_files() {
    let bless = std::env::var("CASEGATE_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for eml in fixtures() {
        let (ext, actual) = render(&fs::read(&eml).expect("read fixture"));
        let expected_path = eml.with_extension(ext);
        let other_path = eml.with_extension(if ext == "json" { "err" } else { "json" });
        if bless {
            fs::write(&expected_path, &actual).expect("write expected file");
            let _ = fs::remove_file(&other_path);
            continue;
        }
        let name = eml
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                failures.push(format!("{name}: {}", first_difference(&expected, &actual)))
            }
            Err(_) if other_path.exists() => failures.push(format!(
                "{name}: expected {}, got {ext}:\n{actual}",
                other_path.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no {} (run with CASEGATE_BLESS=1)",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dedup_key_and_sniffing_agree_with_the_parse() {
    for eml in fixtures() {
        let raw = fs::read(&eml).expect("read fixture");
        let key = dedup_key(&raw);
        let head = sniff_headers(&raw);
        assert_eq!(head.message_id, sniff_message_id(&raw));
        match (parse(&raw, &LIMITS), &head.message_id) {
            (Ok(inbound), _) => {
                assert_eq!(inbound.message_id, head.message_id, "{}", eml.display());
                assert_eq!(
                    Some(inbound.subject).filter(|s| !s.is_empty()),
                    head.subject
                );
            }
            (Err(_), None) => assert!(key.starts_with("sha256:"), "{key}"),
            (Err(_), Some(id)) => assert_eq!(key, format!("mid:{id}")),
        }
    }
    let raw = read("no_message_id.eml");
    assert!(dedup_key(&raw).starts_with("sha256:"));
    let raw = read("reply_references.eml");
    assert_eq!(dedup_key(&raw), "mid:reply-2@mail.customer.example.com");
}

#[test]
fn attachment_content_is_the_decoded_bytes_as_sent() {
    let raw = read("attachment_rfc2231.eml");
    let mail = parse(&raw, &LIMITS).expect("parses");
    let pdf = mail
        .attachments
        .first()
        .and_then(|a| attachment_content(&raw, a.span))
        .unwrap_or_default();
    assert!(pdf.starts_with(b"%PDF-1.4\n"));

    // A Shift_JIS text attachment keeps its bytes; only body text is converted.
    let raw = read("attachment_encoded_word.eml");
    let mail = parse(&raw, &LIMITS).expect("parses");
    let log = mail
        .attachments
        .iter()
        .find(|a| a.filename.as_deref() == Some("server.log"));
    let content = log
        .and_then(|a| attachment_content(&raw, a.span))
        .unwrap_or_default();
    assert!(
        content.starts_with(b"2024-05-27 10:00:01 \x83G\x83\x89\x81["),
        "{content:?}"
    );

    let small = ParseLimits {
        max_attachment_bytes: 10,
        max_header_bytes: casegate::mail::parse::DEFAULT_MAX_HEADER_BYTES,
    };
    let mail = parse(&read("attachment_rfc2231.eml"), &small).expect("parses");
    assert!(
        mail.attachments
            .iter()
            .all(|a| !a.kept && a.content.is_none() && a.size > 10)
    );
}

/// The store keeps only the raw mail and where each attachment lies in it: every kept
/// attachment of every fixture decodes again from its span to as many bytes as the
/// parse counted (and a forwarded original to the very bytes it read), also behind an
/// mbox "From " line (which shifts every offset).
#[test]
fn attachments_decode_again_from_their_span_in_the_raw_mail() {
    let mut checked = 0;
    for entry in fs::read_dir(fixture_dir()).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let plain = fs::read(&path).expect("fixture");
        let mut mbox = b"From someone@example.com Mon May 27 10:00:00 2024\r\n".to_vec();
        mbox.extend_from_slice(&plain);
        for raw in [plain, mbox] {
            let Ok(mail) = parse(&raw, &LIMITS) else {
                continue;
            };
            for a in mail.attachments.iter().filter(|a| a.kept) {
                let decoded = attachment_content(&raw, a.span);
                assert_eq!(
                    decoded.as_ref().map(Vec::len),
                    Some(a.size),
                    "{} {:?}",
                    path.display(),
                    a.filename
                );
                if a.content.is_some() {
                    assert_eq!(decoded, a.content, "{} {:?}", path.display(), a.filename);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} attachments checked");
}

/// A small deterministic generator, so that a failure can be reproduced.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Damaged variants of one mail: truncations, flipped and overwritten bytes, cut-out
/// and duplicated ranges, with and without CRs.
fn damaged(raw: &[u8], rng: &mut XorShift) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in (0..raw.len()).step_by((raw.len() / 40).max(1)) {
        out.push(raw[..cut].to_vec());
    }
    for _ in 0..60 {
        let mut bytes = raw.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(bytes.len());
            if let Some(b) = bytes.get_mut(i) {
                *b = [0, b'\n', b'-', b'=', b'?', b'<', b'\x1b', 0xff][rng.below(8)]
                    .max(rng.next() as u8 & rng.next() as u8);
            }
        }
        let (a, b) = (rng.below(bytes.len()), rng.below(bytes.len()));
        let (lo, hi) = (a.min(b), a.max(b));
        match rng.below(3) {
            0 => drop(bytes.drain(lo..hi)),
            1 => {
                let copy = bytes[lo..hi].to_vec();
                bytes.splice(lo..lo, copy);
            }
            _ => bytes.retain(|&b| b != b'\r'),
        }
        out.push(bytes);
    }
    out
}

#[test]
fn parse_survives_damaged_and_random_input() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for eml in fixtures() {
        let raw = fs::read(&eml).expect("read fixture");
        inputs.extend(damaged(&raw, &mut rng));
    }
    for len in 0..200 {
        inputs.push((0..len).map(|_| rng.next() as u8).collect());
    }
    assert!(inputs.len() > 2000, "only {} inputs", inputs.len());
    for input in &inputs {
        // Any result is fine; a panic is not.
        let _ = parse(input, &LIMITS);
        let _ = dedup_key(input);
        let _ = sniff_headers(input);
    }
}
