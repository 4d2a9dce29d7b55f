//! Taking the customer out of the text: names, e-mail addresses, phone numbers, postal
//! addresses and the company become neutral placeholders.
//!
//! A knowledge-base article is read by every customer; the case it came from belongs
//! to one. What is known about that customer (the From display name, the names in the
//! greeting and signature, the account's name and the mail domain) is replaced wherever
//! it appears; what has a recognisable shape (addresses, phone numbers, postal
//! addresses) is replaced whoever it belongs to.

use crate::domain::language::Language;

/// What to replace, learnt from the case.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Person names and their parts, longest first.
    names: Vec<String>,
    /// Company names and their core words, longest first.
    companies: Vec<String>,
    placeholders: Placeholders,
}

#[derive(Debug, Clone, Default)]
struct Placeholders {
    name: &'static str,
    company: &'static str,
    email: &'static str,
    phone: &'static str,
    address: &'static str,
}

impl Placeholders {
    fn of(language: Language) -> Placeholders {
        match language {
            Language::En => Placeholders {
                name: "[name]",
                company: "[company]",
                email: "[email address]",
                phone: "[phone number]",
                address: "[postal address]",
            },
            Language::Ja => Placeholders {
                name: "[お客様名]",
                company: "[会社名]",
                email: "[メールアドレス]",
                phone: "[電話番号]",
                address: "[住所]",
            },
        }
    }
}

/// Company forms that are not part of the name itself.
const COMPANY_FORMS: &[&str] = &[
    "株式会社",
    "有限会社",
    "合同会社",
    "(株)",
    "（株）",
    "㈱",
    "Corporation",
    "Corp.",
    "Corp",
    "Incorporated",
    "Inc.",
    "Inc",
    "Co., Ltd.",
    "Co.,Ltd.",
    "Co. Ltd.",
    "Ltd.",
    "Ltd",
    "LLC",
    "GmbH",
    "K.K.",
    "S.A.",
    "plc",
];

/// Honorifics written before (English) or after (Japanese) a name.
const TITLES_BEFORE: &[&str] = &["Mr. ", "Mr ", "Mrs. ", "Mrs ", "Ms. ", "Ms ", "Dr. ", "Dr "];
const TITLES_AFTER: &[&str] = &["様", "さま", "さん", "殿"];

impl Scrubber {
    pub fn new(language: Language) -> Scrubber {
        Scrubber {
            placeholders: Placeholders::of(language),
            ..Scrubber::default()
        }
    }

    /// A person's name as written (display name, signature line, greeting): the whole
    /// and each part of two or more letters.
    pub fn add_name(&mut self, name: &str) {
        let name = name
            .trim()
            .trim_matches(|c: char| c == ',' || c == '"' || c == '\'');
        if name.chars().count() < 2 || name.contains('@') {
            return;
        }
        push_unique(&mut self.names, name);
        for part in name.split(|c: char| c.is_whitespace() || c == '\u{3000}' || c == ',') {
            let part = part.trim_matches('.');
            if part.chars().count() >= 2 && !is_title(part) {
                push_unique(&mut self.names, part);
            }
        }
        sort_longest_first(&mut self.names);
    }

    /// A company's name (the account, a signature line, the mail domain's label): the
    /// whole, and the name without its legal form.
    pub fn add_company(&mut self, company: &str) {
        let company = company.trim();
        if company.chars().count() < 2 {
            return;
        }
        push_unique(&mut self.companies, company);
        let mut core = company.to_string();
        for form in COMPANY_FORMS {
            core = core.replace(form, " ");
        }
        let core = core.trim().trim_matches(',').trim();
        if core.chars().count() >= 2 {
            push_unique(&mut self.companies, core);
        }
        sort_longest_first(&mut self.companies);
    }

    /// The customer's mail domain: `tanaka@mail.acme.co.jp` gives `acme`.
    pub fn add_domain(&mut self, domain: &str) {
        let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
        let generic = [
            "co", "com", "ne", "or", "ac", "go", "net", "org", "mail", "www",
        ];
        let name = labels
            .iter()
            .rev()
            .skip(1)
            .find(|l| !generic.contains(l) && l.len() >= 3);
        if let Some(name) = name {
            push_unique(&mut self.companies, name);
            sort_longest_first(&mut self.companies);
        }
    }

    /// Written text: every kind of personal data replaced.
    pub fn prose(&self, line: &str) -> String {
        if is_postal_address(line) {
            return self.placeholders.address.to_string();
        }
        let line = replace_emails(line, self.placeholders.email);
        let line = replace_phones(&line, self.placeholders.phone);
        self.known(&line)
    }

    /// Machine output, kept verbatim but for e-mail addresses and the names known from
    /// the case (a log may print the user or the company's host names).
    pub fn code(&self, line: &str) -> String {
        let line = replace_emails(line, self.placeholders.email);
        self.known(&line)
    }

    /// Whether `line` holds nothing but placeholders (and punctuation).
    pub fn only_placeholders(&self, line: &str) -> bool {
        let p = &self.placeholders;
        let mut rest = line.to_string();
        for ph in [p.name, p.company, p.email, p.phone, p.address] {
            rest = rest.replace(ph, "");
        }
        rest.len() < line.len() && rest.chars().all(|c| !c.is_alphanumeric())
    }

    /// Whether `line` names the customer or their company (for dropping signature lines).
    pub fn names_customer(&self, line: &str) -> bool {
        self.names
            .iter()
            .chain(&self.companies)
            .any(|n| find_word(line, n, 0).is_some())
    }

    fn known(&self, line: &str) -> String {
        let mut s = line.to_string();
        for company in &self.companies {
            s = replace_word(&s, company, self.placeholders.company, &[], &[]);
        }
        for name in &self.names {
            s = replace_word(
                &s,
                name,
                self.placeholders.name,
                TITLES_BEFORE,
                TITLES_AFTER,
            );
        }
        // "田中太郎" is two known parts: one placeholder, not two.
        for p in [self.placeholders.name, self.placeholders.company] {
            for gap in ["", " ", "\u{3000}"] {
                let twice = format!("{p}{gap}{p}");
                while s.contains(&twice) {
                    s = s.replace(&twice, p);
                }
            }
        }
        s
    }
}

fn is_title(part: &str) -> bool {
    TITLES_BEFORE
        .iter()
        .any(|t| t.trim().trim_end_matches('.') == part)
}

fn push_unique(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x.eq_ignore_ascii_case(s)) {
        list.push(s.to_string());
    }
}

fn sort_longest_first(list: &mut [String]) {
    list.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
}

/// A word boundary for Latin names; any position for CJK names (no spaces there).
fn is_boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| !c.is_alphanumeric() || !c.is_ascii())
}

/// The byte offset of `word` in `s` from `from`, case-insensitive for ASCII, on word
/// boundaries when the word is ASCII.
fn find_word(s: &str, word: &str, from: usize) -> Option<usize> {
    let ascii = word.is_ascii();
    let lower = s.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let mut at = from;
    while let Some(pos) = lower.get(at..).and_then(|t| t.find(&needle)) {
        let start = at + pos;
        let end = start + needle.len();
        let before = s[..start].chars().next_back();
        let after = s[end..].chars().next();
        if !ascii || (is_boundary(before) && is_boundary(after)) {
            return Some(start);
        }
        at = start + needle.len().max(1);
    }
    None
}

/// Replace each occurrence of `word` (with a title directly before or after it) by
/// `placeholder`.
fn replace_word(s: &str, word: &str, placeholder: &str, before: &[&str], after: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = find_word(rest, word, 0) {
        let end = start + word.len();
        let mut head = &rest[..start];
        if let Some(t) = before.iter().find(|t| head.ends_with(*t)) {
            head = &head[..head.len() - t.len()];
        }
        let mut tail = &rest[end..];
        if let Some(t) = after.iter().find(|t| tail.starts_with(*t)) {
            tail = &tail[t.len()..];
        }
        out.push_str(head);
        out.push_str(placeholder);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// `local@domain.tld` (also in `<...>` or `mailto:`) -> the placeholder.
fn replace_emails(s: &str, placeholder: &str) -> String {
    let is_addr_char = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let mut out = String::new();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    let mut copied = 0;
    while i < chars.len() {
        if chars[i].1 == '@' {
            let mut a = i;
            while a > 0 && is_addr_char(chars[a - 1].1) {
                a -= 1;
            }
            let mut b = i + 1;
            while b < chars.len()
                && (chars[b].1.is_ascii_alphanumeric() || ".-".contains(chars[b].1))
            {
                b += 1;
            }
            while b > i + 1 && chars[b - 1].1 == '.' {
                b -= 1;
            }
            let domain: String = chars[i + 1..b].iter().map(|(_, c)| *c).collect();
            if a < i && domain.contains('.') {
                let start = chars[a].0;
                let end = chars.get(b).map_or(s.len(), |(o, _)| *o);
                out.push_str(&s[copied..start]);
                out.push_str(placeholder);
                copied = end;
                i = b;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// Phone numbers: a run of digits and separators with 9 to 15 digits that is not a date,
/// a time, a version or an IP address. A label (`Tel:`, `電話:`) makes shorter runs count.
fn replace_phones(s: &str, placeholder: &str) -> String {
    let folded = fold_digits(s);
    let chars: Vec<(usize, char)> = folded.char_indices().collect();
    let is_sep = |c: char| " -().+/".contains(c);
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let starts = (c.is_ascii_digit() || c == '+' || c == '(')
            && (i == 0 || !chars[i - 1].1.is_ascii_alphanumeric() && chars[i - 1].1 != '.');
        if starts {
            let mut j = i;
            let mut digits = 0;
            let mut last_digit = i;
            while j < chars.len() && (chars[j].1.is_ascii_digit() || is_sep(chars[j].1)) {
                if chars[j].1.is_ascii_digit() {
                    digits += 1;
                    last_digit = j;
                }
                j += 1;
            }
            let end_i = last_digit + 1;
            let followed_ok = chars
                .get(end_i)
                .is_none_or(|(_, c)| !c.is_ascii_alphanumeric() && *c != ':' && *c != '.');
            let run: String = chars[i..end_i].iter().map(|(_, c)| *c).collect();
            let labelled = has_phone_label(&folded[..chars[i].0]);
            let min = if labelled { 6 } else { 9 };
            if digits >= min && digits <= 15 && followed_ok && !looks_like_date(&run) {
                let start = chars[i].0;
                let end = chars.get(end_i).map_or(folded.len(), |(o, _)| *o);
                out.push_str(&folded[copied..start]);
                out.push_str(placeholder);
                copied = end;
                i = end_i;
                continue;
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return s.to_string();
    }
    out.push_str(&folded[copied..]);
    out
}

/// Full-width digits and hyphens (`０３－１２３４－５６７８`) to ASCII.
fn fold_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '－' => '-',
            '（' => '(',
            '）' => ')',
            '＋' => '+',
            c => c,
        })
        .collect()
}

fn has_phone_label(before: &str) -> bool {
    let tail: String = before
        .chars()
        .rev()
        .take(14)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let lower = tail.to_lowercase();
    ["tel", "phone", "mobile", "fax", "電話", "携帯", "直通"]
        .iter()
        .any(|l| lower.contains(l))
}

fn looks_like_date(run: &str) -> bool {
    let b = run.trim().as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b[4] == b'-' || b[4] == b'/')
        && b[5..7].iter().all(u8::is_ascii_digit)
}

/// A line of a postal address: a Japanese postcode (〒123-4567), a prefecture with a
/// city and a block number, or a street line / ZIP line in English.
pub fn is_postal_address(line: &str) -> bool {
    let t = line.trim();
    if t.contains('〒') {
        return true;
    }
    let prefecture = ["都", "道", "府", "県"].iter().any(|p| t.contains(p));
    let city = ["市", "区", "町", "村", "郡"].iter().any(|p| t.contains(p));
    let block = t.contains("丁目")
        || t.contains("番地")
        || t.chars()
            .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c));
    if prefecture && city && block && t.chars().count() <= 60 && !t.contains('。') {
        return true;
    }
    let words: Vec<&str> = t.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let street = [
        "Street",
        "St.",
        "Avenue",
        "Ave.",
        "Road",
        "Rd.",
        "Boulevard",
        "Blvd.",
        "Lane",
        "Drive",
        "Suite",
        "Floor",
    ];
    let numbered = words
        .first()
        .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()));
    if numbered && words.len() <= 8 && words.iter().any(|w| street.contains(w)) {
        return true;
    }
    // "Springfield, IL 62704" / "Austin TX 78701-1234"
    let zip = words.last().is_some_and(|w| {
        let d = w.split('-').next().unwrap_or("");
        d.len() == 5 && d.chars().all(|c| c.is_ascii_digit())
    });
    let state = words.len() >= 2 && {
        let s = words[words.len() - 2];
        s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase())
    };
    zip && state && words.len() <= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> Scrubber {
        let mut s = Scrubber::new(Language::En);
        s.add_name("John Smith");
        s.add_company("Acme Widgets Inc.");
        s.add_domain("mail.acmewidgets.com");
        s
    }

    #[test]
    fn names_with_titles() {
        let s = en();
        assert_eq!(s.prose("Dear Mr. Smith, thanks"), "Dear [name], thanks");
        assert_eq!(s.prose("John said so"), "[name] said so");
        assert_eq!(s.prose("John Smith"), "[name]");
        // A name inside another word is not a name.
        assert_eq!(s.prose("Johnson & Smithers"), "Johnson & Smithers");
    }

    #[test]
    fn company_forms_and_domain() {
        let s = en();
        assert_eq!(
            s.prose("We at Acme Widgets Inc. run it"),
            "We at [company] run it"
        );
        assert_eq!(s.prose("our Acme Widgets cluster"), "our [company] cluster");
        assert_eq!(
            s.prose("host db1.acmewidgets.com is down"),
            "host db1.[company].com is down"
        );
    }

    #[test]
    fn emails() {
        let s = en();
        assert_eq!(
            s.prose("write to <ops-team@example.org>."),
            "write to <[email address]>."
        );
        assert_eq!(s.prose("a@b"), "a@b");
        assert_eq!(
            s.code("user=x.y@z.example.net id=1"),
            "user=[email address] id=1"
        );
    }

    #[test]
    fn phones_but_not_dates_versions_or_ips() {
        let s = en();
        assert_eq!(s.prose("Phone: +1 (555) 123-4567"), "Phone: [phone number]");
        assert_eq!(
            s.prose("call 03-1234-5678 today"),
            "call [phone number] today"
        );
        assert_eq!(s.prose("Tel: 1234-5678"), "Tel: [phone number]");
        for keep in [
            "since 2026-11-30 10:00:01",
            "version 4.2.1.12345",
            "on 10.20.30.40 port 8443",
            "case 00001234",
            "build 20261130",
        ] {
            assert_eq!(s.prose(keep), keep);
        }
    }

    #[test]
    fn postal_addresses() {
        for line in [
            "〒100-0005 東京都千代田区丸の内1-1-1",
            "東京都千代田区丸の内一丁目1番地",
            "123 Main Street, Suite 400",
            "Springfield, IL 62704",
        ] {
            assert!(is_postal_address(line), "{line}");
            assert_eq!(en().prose(line), "[postal address]");
        }
        for line in [
            "東京都内のお客様向けです。",
            "We run 3 nodes in 2 regions",
            "ERROR 500",
        ] {
            assert!(!is_postal_address(line), "{line}");
        }
    }

    #[test]
    fn japanese_names_and_company() {
        let mut s = Scrubber::new(Language::Ja);
        s.add_name("田中 太郎");
        s.add_company("株式会社サンプル商事");
        assert_eq!(
            s.prose("田中様、お世話になっております。"),
            "[お客様名]、お世話になっております。"
        );
        assert_eq!(
            s.prose("サンプル商事の田中です。"),
            "[会社名]の[お客様名]です。"
        );
        assert_eq!(
            s.prose("株式会社サンプル商事 情報システム部"),
            "[会社名] 情報システム部"
        );
        assert_eq!(
            s.prose("電話：０３－１２３４－５６７８"),
            "電話：[電話番号]"
        );
        assert_eq!(s.prose("田中太郎"), "[お客様名]");
    }

    #[test]
    fn japanese_mobile_and_address_without_postcode() {
        let s = Scrubber::new(Language::Ja);
        assert_eq!(
            s.prose("携帯 090-1234-5678 までご連絡ください"),
            "携帯 [電話番号] までご連絡ください"
        );
        assert_eq!(
            s.prose("大阪府大阪市北区梅田3-1-1 サンプルビル5F"),
            "[住所]"
        );
        assert_eq!(
            s.prose("mailto:taro@example.co.jp"),
            "mailto:[メールアドレス]"
        );
        assert_eq!(
            s.prose("Ansible 2.15.3 を使用しています"),
            "Ansible 2.15.3 を使用しています"
        );
    }

    #[test]
    fn romaji_and_kanji_forms_of_one_customer() {
        let mut s = Scrubber::new(Language::Ja);
        s.add_name("Taro Tanaka");
        s.add_name("田中");
        assert_eq!(
            s.prose("Tanaka-san と田中さん"),
            "[お客様名]-san と[お客様名]"
        );
    }

    #[test]
    fn code_keeps_numbers() {
        let s = en();
        let line = "\tat com.example.Pool.get(Pool.java:1234567890)";
        assert_eq!(s.code(line), line);
        assert!(s.names_customer("Acme Widgets Inc."));
        assert!(!s.names_customer("Support team"));
    }
}
