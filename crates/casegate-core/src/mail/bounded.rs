//! What one header field may cost: a top-level field longer than the limit is cut there
//! and marked, before mail-parser and our decoders see it. They keep several copies of
//! every value (raw, unfolded, decoded, lower-cased), so a 20 MiB Subject used to cost
//! about 30 times its size in memory.
//!
//! Only the copy that is parsed is cut; the stored raw mail stays as received.

/// What a cut field ends with (after the first `limit` bytes of the field).
pub const TRUNCATED_MARK: &str = " [truncated]";

/// The mail with every top-level header field longer than `limit` bytes (name, colon and
/// folded continuation lines included) cut to `limit` bytes plus [`TRUNCATED_MARK`];
/// `None` when no field is that long (the usual case: nothing is copied).
pub fn cut_long_fields(raw: &[u8], limit: usize) -> Option<Vec<u8>> {
    let fields = fields(raw);
    if !fields.iter().any(|f| f.end - f.start > limit) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len().min(fields.len() * limit + 4096));
    let mut at = 0;
    for f in fields.iter().filter(|f| f.end - f.start > limit) {
        out.extend_from_slice(&raw[at..f.start]);
        let mut cut = f.start + limit;
        // Never leave half a line break, nor end inside a multi-byte UTF-8 sequence.
        while cut > f.start && matches!(raw[cut - 1], b'\r' | b'\n') {
            cut -= 1;
        }
        while cut > f.start && cut < raw.len() && (raw[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        out.extend_from_slice(&raw[f.start..cut]);
        out.extend_from_slice(TRUNCATED_MARK.as_bytes());
        out.extend_from_slice(if f.crlf { b"\r\n" } else { b"\n" });
        at = (f.end + if f.crlf { 2 } else { 1 }).min(raw.len());
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

/// One field of the top-level header block: `start..end` without its final line break.
struct Field {
    start: usize,
    /// Where the field's final line break starts.
    end: usize,
    crlf: bool,
}

/// The top-level header fields, up to the first empty line.
fn fields(raw: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i);
        let crlf = line_end > pos && raw[line_end - 1] == b'\r';
        let content_end = if crlf { line_end - 1 } else { line_end };
        if content_end == pos {
            break; // the empty line: the body follows
        }
        let continuation = matches!(raw[pos], b' ' | b'\t');
        match out.last_mut() {
            Some(last) if continuation => {
                last.end = content_end;
                last.crlf = crlf;
            }
            _ => out.push(Field {
                start: pos,
                end: content_end,
                crlf,
            }),
        }
        pos = line_end + 1;
    }
    out
}

fn memchr(byte: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fields_are_not_copied() {
        assert!(cut_long_fields(b"Subject: hi\r\nFrom: a@b\r\n\r\nbody", 64).is_none());
    }

    #[test]
    fn a_long_folded_field_is_cut_and_marked_and_the_rest_stays() {
        let long = format!("Subject: {}\r\n {}\r\n", "a".repeat(100), "b".repeat(100));
        let raw = format!(
            "From: x@y\r\n{long}To: z@w\r\n\r\nbody {}\r\n",
            "c".repeat(300)
        );
        let cut = String::from_utf8(cut_long_fields(raw.as_bytes(), 60).unwrap()).unwrap();
        assert_eq!(
            cut,
            format!(
                "From: x@y\r\nSubject: {} [truncated]\r\nTo: z@w\r\n\r\nbody {}\r\n",
                "a".repeat(51),
                "c".repeat(300)
            )
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let raw = format!("Subject: {}\n\nx", "あ".repeat(50));
        let cut = cut_long_fields(raw.as_bytes(), 20).unwrap();
        assert!(String::from_utf8(cut).is_ok());
    }
}
