//! The draft itself: title, symptom, environment, cause, resolution, related issue.

use super::scrub::{Scrubber, is_postal_address};
use super::verbatim::{Segment, fence, segments};
use crate::domain::commands::{self, Command};
use crate::domain::language::Language;
use crate::domain::thread::clean_subject;
use crate::mail::quote::strip_reply;

/// Who wrote a message of the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    Customer,
    Engineer,
}

/// One message of the case, its text as stored (quotes, signature and, for engineers,
/// commands still in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryMessage {
    pub author: Author,
    pub text: String,
}

/// A bug or article the case links to (`#link bug:ID`, `#kb URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `bug` or `kb`.
    pub kind: String,
    pub target: String,
}

/// What a draft is made from, gathered by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseStory {
    pub language: Language,
    pub subject: String,
    /// The word of our subject tag (`Case`), to take the tag out of the title.
    pub case_tag_word: String,
    pub product: Option<String>,
    pub customer_email: String,
    pub customer_name: Option<String>,
    /// The account's name from the contract.
    pub company: Option<String>,
    /// The customer's domain is a free-mail provider's: it names nobody's company.
    pub free_mail: bool,
    /// In the order received.
    pub messages: Vec<StoryMessage>,
    pub references: Vec<Reference>,
}

/// A draft article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub markdown: String,
}

/// The headings and fixed phrases, as a writer of each language would put them.
struct Words {
    symptom: &'static str,
    environment: &'static str,
    cause: &'static str,
    resolution: &'static str,
    related: &'static str,
    missing: &'static str,
    bug: &'static str,
    article: &'static str,
    untitled: &'static str,
}

const EN: Words = Words {
    symptom: "Symptom",
    environment: "Environment",
    cause: "Cause",
    resolution: "Resolution",
    related: "Related issue",
    missing: "_Not stated in the case; add it before publishing._",
    bug: "Bug",
    article: "See also",
    untitled: "Untitled problem",
};

const JA: Words = Words {
    symptom: "現象",
    environment: "環境",
    cause: "原因",
    resolution: "解決方法",
    related: "関連情報",
    missing: "_ケース内に記載がありません。公開前に追記してください。_",
    bug: "不具合",
    article: "関連記事",
    untitled: "件名なし",
};

/// Build the draft for `story` (see the module docs of [`super`]).
pub fn draft(story: &CaseStory) -> Draft {
    let words = match story.language {
        Language::En => &EN,
        Language::Ja => &JA,
    };
    let scrubber = scrubber_for(story);
    let customer: Vec<Vec<String>> = story
        .messages
        .iter()
        .filter(|m| m.author == Author::Customer)
        .map(|m| own_words(&m.text, Author::Customer, &scrubber))
        .collect();
    let engineer: Vec<Vec<String>> = story
        .messages
        .iter()
        .filter(|m| m.author == Author::Engineer && !is_internal(&m.text))
        .map(|m| own_words(&m.text, Author::Engineer, &scrubber))
        .collect();

    let title = title(story, &scrubber, words);
    let mut md = format!("# {title}\n\n");
    let (symptom, first_env) = match customer.first() {
        Some(first) => split_environment(first),
        None => (Vec::new(), Vec::new()),
    };
    section(&mut md, words.symptom, &render(&symptom, &scrubber), words);

    let mut environment = first_env;
    for answer in customer.iter().skip(1) {
        environment.extend(answer_facts(answer));
    }
    section(
        &mut md,
        words.environment,
        &render(&environment, &scrubber),
        words,
    );

    let (cause, resolution) = cause_and_resolution(&engineer);
    section(&mut md, words.cause, &render(&cause, &scrubber), words);
    section(
        &mut md,
        words.resolution,
        &render(&resolution, &scrubber),
        words,
    );
    section(&mut md, words.related, &related(story, words), words);
    Draft {
        title,
        markdown: md.trim_end().to_string() + "\n",
    }
}

/// Everything known about the customer, including what only their signatures and
/// greetings tell (the engineers' "Dear Mr Tanaka", the customer's "田中です").
fn scrubber_for(story: &CaseStory) -> Scrubber {
    let mut s = Scrubber::new(story.language);
    if let Some(name) = &story.customer_name {
        s.add_name(name);
    }
    if let Some(company) = &story.company {
        s.add_company(company);
    }
    if let Some((_, domain)) = story.customer_email.rsplit_once('@')
        && !story.free_mail
    {
        s.add_domain(domain);
    }
    if let Some((local, _)) = story.customer_email.split_once('@') {
        // taro.tanaka@ -> "taro", "tanaka" are likely the name's parts; a role address
        // (ops@, it-support@) names nobody.
        let generic = [
            "admin", "info", "support", "ops", "it", "root", "helpdesk", "noreply", "contact",
            "sales", "team", "dev", "infra", "system", "sysadmin", "service", "mail", "user",
        ];
        let parts: Vec<&str> = local.split(['.', '_', '-']).collect();
        for part in parts.iter().filter(|_| parts.len() >= 2) {
            let lower = part.to_ascii_lowercase();
            if part.len() >= 3
                && part.chars().all(|c| c.is_ascii_alphabetic())
                && !generic.contains(&lower.as_str())
            {
                s.add_name(part);
            }
        }
    }
    for m in &story.messages {
        let text = normalise(&m.text);
        match m.author {
            Author::Customer => {
                for line in signature_lines(&text) {
                    learn_from_signature(&mut s, &line);
                }
                for line in text.lines().take(6) {
                    learn_from_introduction(&mut s, line);
                }
            }
            Author::Engineer => {
                let stripped = strip_reply(&text);
                let body = commands::parse(&stripped).body;
                if let Some(name) = body
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .and_then(greeting_name)
                {
                    s.add_name(&name);
                }
            }
        }
    }
    s
}

fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The lines after a closing phrase or a signature delimiter: where a signature is.
fn signature_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == "--" || *l == "-- " || is_closing(l) || is_rule(l));
    match start {
        Some(i) => lines[i + 1..]
            .iter()
            .take_while(|l| {
                !l.starts_with('>') && !l.contains("wrote:") && !l.contains("のメール:")
            })
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !is_rule(l))
            .take(10)
            .collect(),
        None => Vec::new(),
    }
}

/// A signature line names a company (a legal form), or the person (a short line of
/// letters only, the first such line), or is contact data (left to the patterns).
fn learn_from_signature(s: &mut Scrubber, line: &str) {
    let has_form = [
        "株式会社",
        "有限会社",
        "合同会社",
        "Inc",
        "Corp",
        "Ltd",
        "LLC",
        "GmbH",
        "K.K.",
    ]
    .iter()
    .any(|f| line.contains(f));
    if has_form {
        // "株式会社サンプル商事 情報システム部": the first word is the company.
        let company = if line.starts_with("株式会社") || line.contains(' ') && !line.is_ascii()
        {
            line.split([' ', '\u{3000}']).next().unwrap_or(line)
        } else {
            line
        };
        s.add_company(company);
        return;
    }
    let contact = line.contains('@')
        || line.chars().filter(char::is_ascii_digit).count() >= 4
        || is_postal_address(line)
        || line.contains(':')
        || line.contains('：');
    if contact {
        return;
    }
    // "田中 太郎 (Taro Tanaka)" / "John Smith | Platform team"
    let name_part = line.split(['|', '/', '／']).next().unwrap_or(line).trim();
    let (name, alias) = match name_part.split_once(['(', '（']) {
        Some((n, a)) => (n.trim(), Some(a.trim_end_matches([')', '）']).trim())),
        None => (name_part, None),
    };
    let words = name.split_whitespace().count();
    let letters = name
        .chars()
        .all(|c| c.is_alphabetic() || c == ' ' || c == '\u{3000}' || c == '.');
    if letters && (1..=3).contains(&words) && name.chars().count() <= 20 && !is_team_word(name) {
        s.add_name(name);
        if let Some(a) = alias {
            s.add_name(a);
        }
    }
}

/// Words that make a signature line a department, not a person.
fn is_team_word(line: &str) -> bool {
    let lower = line.to_lowercase();
    [
        "team",
        "department",
        "dept",
        "division",
        "部",
        "課",
        "室",
        "グループ",
        "センター",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// 「サンプル商事の田中です。」「株式会社サンプル商事の田中と申します。」: (company,
/// name). The name is short and has no particle, so 「原因は設定の誤りによるものです。」
/// is no introduction.
/// Only a company that is one (a legal form, or the customer's known company) makes
/// 「本番環境の問題です。」 no introduction either.
fn introduction<'a>(line: &'a str, s: &Scrubber) -> Option<(Option<&'a str>, &'a str)> {
    let t = line.trim().trim_end_matches(['。', '.']);
    let head = t
        .strip_suffix("と申します")
        .or_else(|| t.strip_suffix("です"))?;
    if head.chars().count() > 30 {
        return None;
    }
    let (company, name) = match head.rsplit_once('の') {
        Some((c, n)) => (Some(c.trim()), n.trim()),
        None if t.ends_with("と申します") => (None, head.trim()),
        None => return None,
    };
    let particle = name.chars().any(|c| "はがをにでともへや、".contains(c));
    let count = name.chars().count();
    let company_ok = company.is_none_or(|c| {
        let form = ["株式会社", "有限会社", "合同会社", "(株)", "（株）", "㈱"]
            .iter()
            .any(|f| c.contains(f));
        !c.is_empty() && (form || s.names_customer(c))
    });
    ((2..=6).contains(&count) && !particle && company_ok).then_some((company, name))
}

fn learn_from_introduction(s: &mut Scrubber, line: &str) {
    if let Some((company, name)) = introduction(line, s) {
        let (company, name) = (company.map(str::to_string), name.to_string());
        if let Some(c) = company {
            s.add_company(&c);
        }
        s.add_name(&name);
    }
}

/// The name in an engineer's greeting: "Dear Mr Tanaka," "Hello John," 「田中様」.
fn greeting_name(line: &str) -> Option<String> {
    let t = line.trim().trim_end_matches([',', '，', '、', '。']);
    for lead in ["Dear ", "Hello ", "Hi "] {
        if let Some(rest) = t.strip_prefix(lead) {
            let rest = ["Mr. ", "Mr ", "Mrs. ", "Mrs ", "Ms. ", "Ms ", "Dr. ", "Dr "]
                .iter()
                .find_map(|p| rest.strip_prefix(p))
                .unwrap_or(rest);
            let generic = ["customer", "team", "all", "support", "sir", "madam"];
            let lower = rest.to_lowercase();
            if !rest.is_empty() && !generic.iter().any(|g| lower.contains(g)) {
                return Some(rest.to_string());
            }
            return None;
        }
    }
    let name = t.strip_suffix("様").or_else(|| t.strip_suffix("さん"))?;
    let name = name.rsplit([' ', '\u{3000}']).next().unwrap_or(name);
    (name.chars().count() <= 10 && !name.contains("担当") && !name.is_empty())
        .then(|| name.to_string())
}

fn is_internal(text: &str) -> bool {
    commands::parse(&strip_reply(&normalise(text)))
        .commands
        .contains(&Command::Internal)
}

/// What this person wrote now, without quotes, commands, greeting, closing and
/// signature, trailing blank lines trimmed.
fn own_words(text: &str, author: Author, s: &Scrubber) -> Vec<String> {
    let stripped = strip_reply(&normalise(text));
    let body = match author {
        Author::Engineer => commands::parse(&stripped).body,
        Author::Customer => stripped,
    };
    let mut lines: Vec<String> = Vec::new();
    let mut started = false;
    for line in body.lines() {
        if is_closing(line) || (is_rule(line) && started) {
            break;
        }
        if !started && (line.trim().is_empty() || is_greeting(line, s)) {
            continue;
        }
        if is_pleasantry(line) || is_severity_line(line) {
            continue;
        }
        started = true;
        lines.push(line.to_string());
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

fn is_greeting(line: &str, s: &Scrubber) -> bool {
    let t = line.trim();
    let en = [
        "Dear ",
        "Hello",
        "Hi ",
        "Hi,",
        "Good morning",
        "Good afternoon",
        "To whom",
    ]
    .iter()
    .any(|g| t.starts_with(g))
        && t.chars().count() <= 60;
    let ja =
        (t.ends_with("様") || t.ends_with("様、") || t.ends_with("御中") || t.ends_with("さん"))
            && t.chars().count() <= 30;
    en || ja || introduction(t, s).is_some()
}

/// `Severity: 2` / `重大度：2`: about this case, not about the problem.
fn is_severity_line(line: &str) -> bool {
    let t = line.trim();
    let rest = [
        "Severity:",
        "severity:",
        "Severity :",
        "重大度：",
        "重大度:",
    ]
    .iter()
    .find_map(|p| t.strip_prefix(p));
    rest.is_some_and(|r| {
        let r = r.trim();
        !r.is_empty()
            && r.chars().count() <= 3
            && r.chars()
                .all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
    })
}

/// Set phrases that carry nothing for a reader of the article.
fn is_pleasantry(line: &str) -> bool {
    let t = line.trim();
    [
        "お世話になっております",
        "お世話になります",
        "いつもお世話に",
        "お疲れ様です",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        && t.chars().count() <= 40
}

fn is_closing(line: &str) -> bool {
    let t = line.trim().trim_end_matches([',', '!', '.']);
    let en = [
        "Best regards",
        "Kind regards",
        "Regards",
        "Best",
        "Thanks",
        "Thank you",
        "Many thanks",
        "Sincerely",
        "Cheers",
        "BR",
        "Warm regards",
        "Thanks and regards",
        "Thanks in advance",
    ]
    .iter()
    .any(|c| t.eq_ignore_ascii_case(c));
    // 「ご確認のほど、よろしくお願いいたします。」 closes a mail as "Regards" does.
    let ja = (["よろしくお願い", "宜しくお願い", "よろしくご確認"]
        .iter()
        .any(|c| t.contains(c))
        || ["何卒", "以上、", "以上です"]
            .iter()
            .any(|c| t.starts_with(c)))
        && t.chars().count() <= 40;
    en || ja
}

/// A line drawn with one repeated character (─, ━, =, *, -, _), as signatures start with.
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    let mut chars = t.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    t.chars().count() >= 5 && "─━=*-_＝~".contains(first) && chars.all(|c| c == first)
}

/// Environment facts the customer wrote as `Key: value` in their first mail leave the
/// symptom for the environment section.
fn split_environment(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let mut symptom = Vec::new();
    let mut env = Vec::new();
    let mut in_code = false;
    for seg in segments(&lines.join("\n")) {
        match seg {
            Segment::Code(c) => {
                in_code = true;
                symptom.extend(c.into_iter().map(CodeLine::mark));
            }
            Segment::Prose(p) => {
                for line in p {
                    if is_environment_fact(&line) {
                        env.push(bullet(&line));
                    } else {
                        symptom.push(line);
                    }
                }
            }
        }
    }
    let _ = in_code;
    (symptom, env)
}

/// Code lines travel between the steps marked, so that [`render`] fences them again
/// without detecting them twice.
struct CodeLine;

impl CodeLine {
    const MARK: char = '\u{1}';

    fn mark(line: String) -> String {
        format!("{}{line}", Self::MARK)
    }

    fn unmark(line: &str) -> Option<&str> {
        line.strip_prefix(Self::MARK)
    }
}

/// `OS: RHEL 9.2`, `バージョン：2.15`, `- Controller 4.4`: a version, a platform or a
/// configuration stated as a fact.
fn is_environment_fact(line: &str) -> bool {
    let t = line.trim().trim_start_matches(['-', '*', '・', '•']).trim();
    let lower = t.to_lowercase();
    let keys = [
        "version",
        "os",
        "operating system",
        "kernel",
        "platform",
        "rhel",
        "red hat",
        "ubuntu",
        "windows",
        "python",
        "java",
        "jdk",
        "ansible",
        "controller",
        "configuration",
        "inventory",
        "database",
        "browser",
        "バージョン",
        "構成",
        "環境",
        "設定",
        "ＯＳ",
    ];
    let has_key = |s: &str| {
        let s = s.to_lowercase();
        keys.iter().any(|k| {
            s.split(|c: char| !c.is_alphanumeric()).any(|w| w == *k)
                || (!k.is_ascii() && s.contains(k))
                || (k.contains(' ') && s.contains(k))
        })
    };
    match t.split_once([':', '：']) {
        Some((key, value)) => key.chars().count() <= 30 && !value.trim().is_empty() && has_key(key),
        None => lower.chars().count() <= 80 && has_key(&lower) && has_version(t),
    }
}

fn has_version(t: &str) -> bool {
    let b = t.as_bytes();
    b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
}

fn bullet(line: &str) -> String {
    let t = line.trim().trim_start_matches(['-', '*', '・', '•']).trim();
    format!("- {}", strip_number(t))
}

/// `1. RHEL 9` / `2) 4.2` / `３．…`: the answer without the question's number.
fn strip_number(t: &str) -> &str {
    match t.split_once(['.', ')', '）', '．']) {
        Some((n, rest))
            if !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
                && !rest.trim().is_empty()
                && !rest.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            rest.trim()
        }
        _ => t,
    }
}

/// The facts in a later answer: stated facts as bullets, numbered answers as given,
/// pasted output verbatim; thanks and chatter left out.
fn answer_facts(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for seg in segments(&lines.join("\n")) {
        match seg {
            Segment::Code(c) => {
                out.extend(c.into_iter().map(CodeLine::mark));
                out.push(String::new());
            }
            Segment::Prose(p) => {
                for line in p {
                    let t = line.trim();
                    let numbered = strip_number(t) != t;
                    let listed = t.starts_with(['-', '*', '・', '•']);
                    if is_environment_fact(t) || listed || numbered {
                        out.push(bullet(t));
                    }
                }
            }
        }
    }
    out
}

/// The engineers' paragraphs: those that explain why go to the cause, the rest to the
/// resolution; a code block follows the paragraph before it.
fn cause_and_resolution(replies: &[Vec<String>]) -> (Vec<String>, Vec<String>) {
    let mut cause = Vec::new();
    let mut resolution = Vec::new();
    for reply in replies {
        let mut into_cause = false;
        for para in paragraphs(reply) {
            let code = para
                .iter()
                .all(|l| CodeLine::unmark(l).is_some() || l.trim().is_empty());
            if !code {
                into_cause = explains_cause(&para.join(" "));
            }
            let target = if into_cause {
                &mut cause
            } else {
                &mut resolution
            };
            target.extend(para);
            target.push(String::new());
        }
    }
    (cause, resolution)
}

/// Paragraphs (blank-line separated), machine output marked and kept as one paragraph.
fn paragraphs(lines: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for seg in segments(&lines.join("\n")) {
        match seg {
            Segment::Code(c) => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                out.push(c.into_iter().map(CodeLine::mark).collect());
            }
            Segment::Prose(p) => {
                for line in p {
                    if line.trim().is_empty() {
                        if !current.is_empty() {
                            out.push(std::mem::take(&mut current));
                        }
                    } else {
                        current.push(line);
                    }
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn explains_cause(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "cause",
        "because",
        "due to",
        "the reason",
        "this happens",
        "this is a known",
        "原因",
        "起因",
        "によるもの",
        "ことによ",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

/// Lines to Markdown: prose scrubbed, marked machine output fenced and kept verbatim
/// (bar e-mail addresses and the customer's known names).
fn render(lines: &[String], s: &Scrubber) -> String {
    let mut out = String::new();
    let mut code: Vec<String> = Vec::new();
    let flush = |out: &mut String, code: &mut Vec<String>| {
        while code.last().is_some_and(|l| l.is_empty()) {
            code.pop();
        }
        if code.is_empty() {
            return;
        }
        let f = fence(code);
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&format!("{f}text\n"));
        for l in code.iter() {
            out.push_str(&s.code(l));
            out.push('\n');
        }
        out.push_str(&f);
        out.push_str("\n\n");
        code.clear();
    };
    for line in lines {
        match CodeLine::unmark(line) {
            Some(c) => code.push(c.to_string()),
            None if line.trim().is_empty() && !code.is_empty() => code.push(String::new()),
            None => {
                flush(&mut out, &mut code);
                if line.trim().is_empty() && (out.is_empty() || out.ends_with("\n\n")) {
                    continue;
                }
                let scrubbed = s.prose(line);
                // A line that was only a name (a signature left over) says nothing.
                if !line.trim().is_empty() && s.only_placeholders(&scrubbed) {
                    continue;
                }
                out.push_str(&scrubbed);
                out.push('\n');
            }
        }
    }
    flush(&mut out, &mut code);
    out.trim_end().to_string()
}

fn section(md: &mut String, heading: &str, body: &str, words: &Words) {
    md.push_str("## ");
    md.push_str(heading);
    md.push_str("\n\n");
    md.push_str(if body.trim().is_empty() {
        words.missing
    } else {
        body
    });
    md.push_str("\n\n");
}

fn title(story: &CaseStory, s: &Scrubber, words: &Words) -> String {
    let cleaned = clean_subject(&story.subject, &story.case_tag_word);
    let cleaned = strip_severity(&cleaned);
    let t = s.prose(&cleaned).trim().to_string();
    if t.is_empty() {
        words.untitled.to_string()
    } else {
        t
    }
}

/// `[SEV 2]`, `Severity: 2`, `重大度：2` are about this case, not the problem.
fn strip_severity(subject: &str) -> String {
    let mut s = subject.to_string();
    for marker in [
        "[SEV ",
        "[sev ",
        "[Sev ",
        "Severity: ",
        "severity: ",
        "重大度：",
        "重大度:",
    ] {
        while let Some(start) = s.find(marker) {
            let rest = &s[start + marker.len()..];
            let digits = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || ('０'..='９').contains(c))
                .map(char::len_utf8)
                .sum::<usize>();
            if digits == 0 {
                break;
            }
            let mut end = start + marker.len() + digits;
            if s[end..].starts_with(']') {
                end += 1;
            }
            s.replace_range(start..end, "");
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn related(story: &CaseStory, words: &Words) -> String {
    story
        .references
        .iter()
        .map(|r| {
            let label = if r.kind == "bug" {
                words.bug
            } else {
                words.article
            };
            if r.target.starts_with("http://") || r.target.starts_with("https://") {
                format!("- {label}: <{}>", r.target)
            } else {
                format!("- {label}: {}", r.target)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
