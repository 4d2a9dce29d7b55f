//! HTML body -> readable text.
//!
//! mail-parser's `html_to_text` breaks lines only at `<br>` and `</p>` and keeps `&nbsp;`
//! as U+00A0, so `<div>` lines and list items run together. Engineers read (and later
//! stages analyse) this text, so block elements become line breaks, list items get their
//! own bulleted line, `<pre>` keeps its layout and everything else collapses to single
//! spaces. Entities are decoded with mail-parser's table.

use mail_parser::decoders::html::add_html_token;

/// Converts an HTML document or fragment to text with `\n` line breaks.
pub fn to_text(html: &str) -> String {
    let mut out = Output::default();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.text(&rest[..lt]);
        rest = markup(&rest[lt..], &mut out);
    }
    out.text(rest);
    out.finish()
}

/// Consumes the markup at the start of `s` (which starts with `<`), returns the rest.
fn markup<'a>(s: &'a str, out: &mut Output) -> &'a str {
    if let Some(comment) = s.strip_prefix("<!--") {
        return comment.find("-->").map_or("", |end| &comment[end + 3..]);
    }
    if s.starts_with("<!") || s.starts_with("<?") {
        return s.find('>').map_or("", |end| &s[end + 1..]);
    }
    let Some(tag) = Tag::parse(s) else {
        out.text("<");
        return &s[1..];
    };
    let rest = &s[tag.len..];
    if !tag.closing && matches!(tag.name.as_str(), "style" | "script" | "title" | "template") {
        return skip_element(rest, &tag.name);
    }
    out.tag(&tag);
    rest
}

/// Skips to after `</name>`; when there is none, only the opening tag is dropped.
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    let close = format!("</{name}");
    match lower.find(&close) {
        Some(start) => rest[start..]
            .find('>')
            .map_or("", |end| &rest[start + end + 1..]),
        None => rest,
    }
}

struct Tag {
    name: String,
    closing: bool,
    /// Outlook/Word markup (`class=MsoNormal`): its paragraphs have no margins.
    outlook: bool,
    /// Bytes up to and including the closing `>`.
    len: usize,
}

impl Tag {
    /// `None` when the `<` does not open a tag (a literal `<` in sloppy HTML).
    fn parse(s: &str) -> Option<Tag> {
        let after = s.get(1..)?;
        let closing = after.starts_with('/');
        let name_start = 1 + usize::from(closing);
        let name: String = s[name_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
            .collect();
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let len = tag_end(s, name_start + name.len());
        let outlook = s[..len].contains("Mso");
        Some(Tag {
            name: name.to_ascii_lowercase(),
            closing,
            outlook,
            len,
        })
    }
}

/// Position after the `>` that ends a tag, skipping `>` inside quoted attribute values.
fn tag_end(s: &str, from: usize) -> usize {
    let mut quote = None;
    for (i, c) in s[from..].char_indices() {
        match (quote, c) {
            (None, '>') => return from + i + 1,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    s.len()
}

/// The text being built, with the whitespace state HTML rendering needs.
#[derive(Default)]
struct Output {
    buf: String,
    pending_space: bool,
    pre: bool,
    /// One entry per open list: `None` for `<ul>`, the next number for `<ol>`.
    lists: Vec<Option<u32>>,
    /// Nothing but indentation or a bullet on the current line yet.
    line_empty: bool,
    /// Length of `buf` when the current `<p>` opened, to keep empty paragraphs (Outlook
    /// writes blank lines as `<p>&nbsp;</p>`), and whether it was an Outlook one.
    paragraph: Option<(usize, bool)>,
}

impl Output {
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        for c in decode_entities(raw).chars() {
            if self.pre {
                self.pre_char(c);
            } else if c.is_ascii_whitespace() || c == '\u{a0}' {
                // U+3000 is not collapsed: Japanese text indents and aligns with it.
                self.pending_space = true;
            } else {
                if self.pending_space && !self.at_line_start() {
                    self.buf.push(' ');
                }
                self.pending_space = false;
                self.line_empty = false;
                self.buf.push(c);
            }
        }
    }

    fn pre_char(&mut self, c: char) {
        self.line_empty = c == '\n';
        match c {
            '\r' => {}
            '\u{a0}' => self.buf.push(' '),
            c => self.buf.push(c),
        }
    }

    fn tag(&mut self, tag: &Tag) {
        match (tag.name.as_str(), tag.closing) {
            ("br", _) => self.newline(),
            ("p", false) => {
                if tag.outlook {
                    self.block()
                } else {
                    self.paragraph_break()
                }
                self.paragraph = Some((self.buf.len(), tag.outlook));
            }
            ("p", true) => self.end_paragraph(),
            ("ul", false) => self.open_list(None),
            ("ol", false) => self.open_list(Some(1)),
            ("ul" | "ol", true) => {
                self.lists.pop();
                self.block();
            }
            ("li", false) => self.list_item(),
            ("pre", closing) => {
                self.block();
                self.pre = !closing;
            }
            ("td" | "th", false) => self.pending_space = true,
            (name, _) if is_block(name) => self.block(),
            _ => {}
        }
    }

    /// Paragraphs are separated by a blank line, as browsers show them, except
    /// Outlook's, which are single lines with zero margins.
    fn end_paragraph(&mut self) {
        match self.paragraph.take() {
            Some((start, _)) if start == self.buf.len() => self.newline(),
            Some((_, true)) => self.block(),
            _ => self.paragraph_break(),
        }
    }

    fn paragraph_break(&mut self) {
        if self.line_empty && !self.buf.ends_with('\n') {
            return; // right after a list bullet
        }
        self.block();
        if !self.buf.is_empty() && !self.buf.ends_with("\n\n") {
            self.buf.push('\n');
        }
    }

    fn open_list(&mut self, numbering: Option<u32>) {
        self.block();
        self.lists.push(numbering);
    }

    fn list_item(&mut self) {
        self.block();
        let depth = self.lists.len().saturating_sub(1);
        self.buf.push_str(&"  ".repeat(depth));
        match self.lists.last_mut() {
            Some(Some(n)) => {
                self.buf.push_str(&format!("{n}. "));
                *n += 1;
            }
            _ => self.buf.push_str("- "),
        }
        self.pending_space = false;
        self.line_empty = true;
    }

    fn newline(&mut self) {
        self.trim_line_end();
        self.buf.push('\n');
        self.pending_space = false;
        self.line_empty = true;
    }

    /// Starts a new line unless already at the start of one.
    fn block(&mut self) {
        if !self.at_line_start() {
            self.newline();
        }
        self.pending_space = false;
    }

    fn at_line_start(&self) -> bool {
        self.buf.is_empty() || self.line_empty
    }

    fn trim_line_end(&mut self) {
        let trimmed = self.buf.trim_end_matches([' ', '\t']).len();
        self.buf.truncate(trimmed);
    }

    fn finish(self) -> String {
        let mut out = String::with_capacity(self.buf.len());
        let mut blank_lines = 0;
        for line in self.buf.trim().lines() {
            let line = line.trim_end();
            blank_lines = if line.is_empty() { blank_lines + 1 } else { 0 };
            if blank_lines <= 1 {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.truncate(out.trim_end().len());
        out
    }
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "div"
            | "p"
            | "tr"
            | "table"
            | "tbody"
            | "thead"
            | "tfoot"
            | "blockquote"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "nav"
            | "aside"
            | "main"
            | "hr"
            | "dl"
            | "dt"
            | "dd"
            | "form"
            | "center"
            | "address"
            | "figure"
            | "figcaption"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "li"
            | "body"
            | "caption"
            | "fieldset"
            | "details"
            | "summary"
    )
}

/// Decodes `&name;`, `&#nn;` and `&#xhh;`; anything else stays literal.
fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .skip(1)
            .take(32)
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '#'))
            .filter(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        match end {
            Some(end) => {
                add_html_token(&mut out, &rest.as_bytes()[..=end], false);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_lists_and_entities() {
        let html = "<style>p{}</style><p>Hello&nbsp;team,</p><div>a &amp; b</div>\
                    <ul><li>one</li><li>two <b>bold</b></li></ul><ol><li>x</li><li>y</li></ol>end";
        assert_eq!(
            to_text(html),
            "Hello team,\n\na & b\n- one\n- two bold\n1. x\n2. y\nend"
        );
    }

    #[test]
    fn whitespace_collapses_and_br_breaks() {
        assert_eq!(to_text("  a\n   b\t<br>c<br><br>d  "), "a b\nc\n\nd");
    }

    #[test]
    fn outlook_empty_paragraphs_are_blank_lines() {
        let html = "<p class=MsoNormal>one<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p>two</p>";
        assert_eq!(to_text(html), "one\n\ntwo");
    }

    #[test]
    fn paragraphs_are_separated_by_a_blank_line() {
        assert_eq!(
            to_text("<p>one</p><p>two<br></p><ul><li><p>item</p></li></ul>"),
            "one\n\ntwo\n\n- item"
        );
    }

    #[test]
    fn pre_keeps_layout() {
        assert_eq!(
            to_text("<pre>at x\n\tat y</pre>after"),
            "at x\n\tat y\nafter"
        );
    }

    #[test]
    fn comments_scripts_and_stray_brackets() {
        let html = "<!-- <p>no</p> --><script>if (a < b) {}</script>1 < 2 &unknown; &#x41;&#66;";
        assert_eq!(to_text(html), "1 < 2 &unknown; AB");
    }

    #[test]
    fn unterminated_markup_does_not_lose_text() {
        assert_eq!(to_text("text <style>no end"), "text no end");
        assert_eq!(to_text("a <b"), "a");
        assert_eq!(to_text("<!-- open"), "");
    }
}
