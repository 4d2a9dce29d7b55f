//! Engineer commands: one per line at the top of a reply (`#take`, `#severity 3 ...`).
//!
//! Engineers steer a case from their mail client, so the syntax has to survive
//! phones and Japanese IMEs (full-width `＃` and digits) and typos must never leak
//! to the customer: a reply with any [`CommandError`] runs nothing and relays nothing;
//! the engineer gets the errors back, each with a suggested fix.
//!
//! Grammar: leading blank lines are skipped; then every line that starts with `#`
//! (or `＃`) is a command, blank lines between them allowed; the first other line
//! starts the body. A `#` line further down ("#1 priority is ...") is body text.

use std::fmt;

use super::known_issue::{Resolution, Version};

/// One parsed command. Addresses are lower-cased; free text (reasons) is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Take ownership (the sender becomes the owner).
    Take,
    /// Make another engineer the owner.
    Assign(String),
    /// Renegotiate the severity (1..=4); the reason is told to the customer.
    Severity {
        level: u8,
        reason: String,
    },
    /// Transfer to another queue (a misrouted case).
    Queue(String),
    Status(StatusArg),
    /// Close the case; the customer gets the closure mail with the feedback request.
    Close,
    /// Staff-only note: nothing goes to the customer.
    Internal,
    /// The last customer message becomes a new case.
    Split,
    /// A bug reference, the ID as written (`[A-Za-z0-9._-]+`).
    LinkBug(String),
    /// A knowledge-base URL (http or https).
    Kb(String),
    // --- issue 18b: knowledge-base drafts ---
    /// `#kb draft`: make an article draft from the case and mail it to the sender.
    KbDraft,
    /// `#kb publish [URL]`: the case's draft (or the attached edited file) is published
    /// by the sender, at URL when given.
    KbPublish(Option<String>),
    // --- issue 18a: known issues and resolution paths ---
    /// Answer with a known issue of the known-issues file (id as written).
    Known {
        issue: String,
        answer: KnownAnswer,
    },
    /// A new problem, filed with the development team under this id.
    Bug(String),
    /// A resolution path no other command records (`advice`, `no-fault-found`).
    Resolution(Resolution),
}

/// How `#known` answers: the fix (ask to upgrade) or the workaround.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownAnswer {
    /// `fixed-in VERSION`: the customer is asked to upgrade to this version.
    FixedIn(Version),
    /// `workaround`: the reply's text (else the file's) is the workaround.
    Workaround,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusArg {
    /// Waiting on the customer.
    Waiting,
    /// Waiting on an engineer.
    Open,
}

/// A command line that was not understood, or that conflicts with another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// 1-based line number in the text given to [`parse`].
    pub line: usize,
    /// The offending line, trimmed.
    pub text: String,
    /// What is wrong and how to fix it, for the error mail.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// In order of appearance, exact duplicates removed.
    pub commands: Vec<Command>,
    /// When not empty, run none of `commands` and relay nothing.
    pub errors: Vec<CommandError>,
    /// The reply text after the command lines, leading blank lines trimmed.
    pub body: String,
}

impl Parsed {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The command help, one line per command, as shown in notifications and error mails.
pub const HELP: &[&str] = &[
    "#take",
    "#assign ADDRESS",
    "#severity N REASON",
    "#queue NAME",
    "#status waiting|open",
    "#close",
    "#internal",
    "#split",
    "#link bug:ID",
    "#kb URL",
    "#kb draft",
    "#kb publish [URL]",
    "#known ISSUE fixed-in VERSION",
    "#known ISSUE workaround",
    "#bug ISSUE",
    "#resolution advice|no-fault-found",
];

const NAMES: &[&str] = &[
    "take",
    "assign",
    "severity",
    "queue",
    "status",
    "close",
    "internal",
    "split",
    "link",
    "kb",
    "known",
    "bug",
    "resolution",
];

/// Parse the command block at the top of `text` and split off the body.
pub fn parse(text: &str) -> Parsed {
    let lines: Vec<&str> = text.lines().collect();
    let mut parsed = Parsed::default();
    let mut body_start = lines.len();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix('#').or_else(|| line.strip_prefix('＃')) else {
            body_start = i;
            break;
        };
        match parse_command(rest) {
            Ok(cmd) => add(&mut parsed, cmd, i + 1, line),
            Err(message) => parsed.errors.push(error(i + 1, line, message)),
        }
    }
    parsed.body = body(&lines[body_start..]);
    parsed
}

fn body(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    lines[start..].join("\n")
}

fn error(line: usize, text: &str, message: String) -> CommandError {
    CommandError {
        line,
        text: text.to_owned(),
        message,
    }
}

/// Adds a command unless it repeats an earlier one exactly; a contradicting
/// command is an error, since guessing which one was meant could mislead a customer.
fn add(parsed: &mut Parsed, cmd: Command, line: usize, text: &str) {
    if parsed.commands.contains(&cmd) {
        return;
    }
    if let Some(earlier) = parsed.commands.iter().find(|c| conflicts(c, &cmd)) {
        let message = format!("\"{cmd}\" contradicts \"{earlier}\" above; keep only one of them");
        parsed.errors.push(error(line, text, message));
        return;
    }
    parsed.commands.push(cmd);
}

/// Single-valued settings conflict when repeated with other values; `#link` and `#kb`
/// may name several references. Ownership (`#take`/`#assign`) and status
/// (`#status`/`#close`) are one setting each, and so is the resolution path
/// (`#known`/`#bug`/`#resolution`). A workaround keeps the case open for the fix, so it
/// contradicts `#close`.
fn conflicts(a: &Command, b: &Command) -> bool {
    use Command::*;
    let slot = |c: &Command| match c {
        Take | Assign(_) => Some(0),
        Severity { .. } => Some(1),
        Queue(_) => Some(2),
        Status(_) | Close => Some(3),
        KbDraft | KbPublish(_) => Some(4),
        Known { .. } | Bug(_) | Resolution(_) => Some(5),
        Internal | Split | LinkBug(_) | Kb(_) => None,
    };
    let workaround = |c: &Command| {
        matches!(
            c,
            Known {
                answer: KnownAnswer::Workaround,
                ..
            }
        )
    };
    let workaround_and_close = (workaround(a) && *b == Close) || (workaround(b) && *a == Close);
    // `#internal` sends the customer nothing; `#known` answers them.
    let known = |c: &Command| matches!(c, Known { .. });
    let internal_and_known = (known(a) && *b == Internal) || (known(b) && *a == Internal);
    workaround_and_close || internal_and_known || (slot(a).is_some() && slot(a) == slot(b))
}

/// Parses one command line after its `#`.
fn parse_command(rest: &str) -> Result<Command, String> {
    let (word, args) = split_word(rest);
    let name = fold_width(word).to_lowercase();
    let args = args.trim_matches(is_space);
    match name.as_str() {
        "take" => no_args(Command::Take, args),
        "close" => no_args(Command::Close, args),
        "internal" => no_args(Command::Internal, args),
        "split" => no_args(Command::Split, args),
        "assign" => assign(args),
        "severity" => severity(args),
        "queue" => queue(args),
        "status" => status(args),
        "link" => link(args),
        "kb" => kb(args),
        "known" => known(args),
        "bug" => bug(args),
        "resolution" => resolution(args),
        _ => Err(unknown(word)),
    }
}

/// Whitespace including the ideographic space Japanese IMEs type.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

fn split_word(s: &str) -> (&str, &str) {
    s.split_once(is_space).unwrap_or((s, ""))
}

/// Full-width ASCII forms (`＃ｔａｋｅ`, `３`) to ASCII, the ideographic space to a space.
pub(crate) fn fold_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

fn no_args(cmd: Command, args: &str) -> Result<Command, String> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(format!("\"#{cmd}\" takes no argument; remove \"{args}\""))
    }
}

fn assign(args: &str) -> Result<Command, String> {
    let addr = fold_width(args);
    let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let valid = addr.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !addr.contains(is_space)
            && !domain.contains('@')
    });
    if valid {
        Ok(Command::Assign(addr.to_lowercase()))
    } else {
        Err("\"#assign\" needs one engineer's address, e.g. \"#assign kenji@example.com\"".into())
    }
}

fn severity(args: &str) -> Result<Command, String> {
    const USAGE: &str = "\"#severity\" needs a level 1-4 and a reason for the customer, \
                         e.g. \"#severity 3 a workaround is in place\"";
    let (level, reason) = split_word(args);
    let reason = reason.trim_matches(is_space);
    match fold_width(level).parse::<u8>() {
        Ok(level @ 1..=4) if !reason.is_empty() => Ok(Command::Severity {
            level,
            reason: reason.to_owned(),
        }),
        _ => Err(USAGE.into()),
    }
}

fn queue(args: &str) -> Result<Command, String> {
    let name = fold_width(args);
    if !name.is_empty() && !name.contains(is_space) {
        Ok(Command::Queue(name))
    } else {
        Err("\"#queue\" needs one queue name, e.g. \"#queue ansible-ja\"".into())
    }
}

fn status(args: &str) -> Result<Command, String> {
    match fold_width(args).to_lowercase().as_str() {
        "waiting" => Ok(Command::Status(StatusArg::Waiting)),
        "open" => Ok(Command::Status(StatusArg::Open)),
        "closed" | "close" => Err("to close the case write \"#close\"".into()),
        _ => Err("\"#status\" takes \"waiting\" (on the customer) or \"open\" (on us)".into()),
    }
}

// --- issue 18a: known issues and resolution paths ---

/// An issue id: the characters `#link bug:` accepts.
fn issue_id(id: &str) -> Option<&str> {
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    valid.then_some(id)
}

fn known(args: &str) -> Result<Command, String> {
    const USAGE: &str = "\"#known\" takes an issue id and the answer: \
                         \"#known AAP-1234 fixed-in 2.14.2\" or \"#known AAP-1234 workaround\"";
    let folded = fold_width(args);
    let words: Vec<&str> = folded.split(is_space).filter(|w| !w.is_empty()).collect();
    let Some(issue) = words.first().and_then(|w| issue_id(w)) else {
        return Err(USAGE.into());
    };
    let issue = issue.to_string();
    match words[1..] {
        [w] if w.eq_ignore_ascii_case("workaround") => Ok(Command::Known {
            issue,
            answer: KnownAnswer::Workaround,
        }),
        [w, v] if w.eq_ignore_ascii_case("fixed-in") => match Version::parse(v) {
            Some(version) => Ok(Command::Known {
                issue,
                answer: KnownAnswer::FixedIn(version),
            }),
            None => Err(format!(
                "\"#known {issue} fixed-in\": \"{v}\" is not a version such as 2.14.2"
            )),
        },
        [w] if w.eq_ignore_ascii_case("fixed-in") => Err(format!(
            "\"#known {issue} fixed-in\" needs the version to upgrade to, e.g. \"#known {issue} fixed-in 2.14.2\""
        )),
        _ => Err(USAGE.into()),
    }
}

fn bug(args: &str) -> Result<Command, String> {
    let folded = fold_width(args);
    let id = folded.trim().trim_start_matches("bug:");
    match issue_id(id) {
        Some(id) => Ok(Command::Bug(id.to_string())),
        None => Err(
            "\"#bug\" takes the id the development team filed it under, e.g. \"#bug AAP-3001\""
                .into(),
        ),
    }
}

fn resolution(args: &str) -> Result<Command, String> {
    match Resolution::parse(&fold_width(args)) {
        Some(r @ (Resolution::Advice | Resolution::NoFaultFound)) => Ok(Command::Resolution(r)),
        Some(Resolution::Upgrade) => {
            Err("an upgrade is answered with \"#known ISSUE fixed-in VERSION\"".into())
        }
        Some(Resolution::Workaround) => {
            Err("a workaround is answered with \"#known ISSUE workaround\"".into())
        }
        Some(Resolution::NewBug) => Err("a new bug is recorded with \"#bug ISSUE\"".into()),
        None => Err(
            "\"#resolution\" takes \"advice\" or \"no-fault-found\" (known issues: #known, new bugs: #bug)".into(),
        ),
    }
}

fn link(args: &str) -> Result<Command, String> {
    let arg = fold_width(args);
    let lower = arg.to_lowercase();
    if lower.starts_with("kb:") {
        return Err("knowledge-base articles are linked with \"#kb URL\"".into());
    }
    let id = lower.strip_prefix("bug:").map(|_| &arg[4..]).unwrap_or("");
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(Command::LinkBug(id.to_owned()))
    } else {
        Err("\"#link\" takes a bug reference, e.g. \"#link bug:12345\"".into())
    }
}

/// `#kb URL`, `#kb draft`, `#kb publish [URL]`: a word that is not a URL names the
/// draft action, so the three never overlap (a URL starts with its scheme).
fn kb(args: &str) -> Result<Command, String> {
    let (word, rest) = split_word(args);
    let rest = rest.trim_matches(is_space);
    match fold_width(word).to_lowercase().as_str() {
        "draft" if rest.is_empty() => return Ok(Command::KbDraft),
        "draft" => {
            return Err(format!(
                "\"#kb draft\" takes no argument; remove \"{rest}\""
            ));
        }
        "publish" if rest.is_empty() => return Ok(Command::KbPublish(None)),
        "publish" => {
            return match kb_url(rest) {
                Ok(Command::Kb(url)) => Ok(Command::KbPublish(Some(url))),
                _ => Err("\"#kb publish\" takes nothing or one http(s) URL, \
                          e.g. \"#kb publish https://kb.example.com/1234\""
                    .into()),
            };
        }
        _ => {}
    }
    kb_url(args)
}

fn kb_url(args: &str) -> Result<Command, String> {
    let url = args.trim_start_matches('<').trim_end_matches('>');
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        r.split(['/', '?', '#'])
            .next()
            .is_some_and(|h| !h.is_empty())
    });
    if host_ok && !url.contains(is_space) {
        Ok(Command::Kb(url.to_owned()))
    } else {
        Err(
            "\"#kb\" takes one http(s) URL (\"#kb https://kb.example.com/1234\"), \
             \"draft\" or \"publish [URL]\""
                .into(),
        )
    }
}

/// The message for an unknown command word: the nearest command when it is a
/// likely typo or abbreviation, else the list of valid commands.
fn unknown(word: &str) -> String {
    let folded = fold_width(word).to_lowercase();
    match suggestion(&folded) {
        Some(name) => format!("unknown command \"#{word}\" — did you mean \"#{name}\"?"),
        None => format!(
            "unknown command \"#{word}\"; valid commands: {}",
            HELP.join(", ")
        ),
    }
}

fn suggestion(word: &str) -> Option<&'static str> {
    let abbreviation = NAMES
        .iter()
        .find(|n| word.chars().count() >= 3 && n.starts_with(word));
    if let Some(name) = abbreviation {
        return Some(name);
    }
    let max = if word.chars().count() <= 4 { 1 } else { 2 };
    NAMES
        .iter()
        .map(|n| (edit_distance(word, n), *n))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions,
/// the typo engineers make most ("#clsoe").
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    (0..=a.len()).for_each(|i| d[i][0] = i);
    (0..=b.len()).for_each(|j| d[0][j] = j);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The canonical form, as echoed in events and error mails.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Take => f.write_str("take"),
            Command::Assign(a) => write!(f, "assign {a}"),
            Command::Severity { level, reason } => write!(f, "severity {level} {reason}"),
            Command::Queue(q) => write!(f, "queue {q}"),
            Command::Status(StatusArg::Waiting) => f.write_str("status waiting"),
            Command::Status(StatusArg::Open) => f.write_str("status open"),
            Command::Close => f.write_str("close"),
            Command::Internal => f.write_str("internal"),
            Command::Split => f.write_str("split"),
            Command::LinkBug(id) => write!(f, "link bug:{id}"),
            Command::Kb(url) => write!(f, "kb {url}"),
            Command::Known {
                issue,
                answer: KnownAnswer::FixedIn(v),
            } => write!(f, "known {issue} fixed-in {v}"),
            Command::Known {
                issue,
                answer: KnownAnswer::Workaround,
            } => write!(f, "known {issue} workaround"),
            Command::Bug(id) => write!(f, "bug {id}"),
            Command::Resolution(Resolution::NoFaultFound) => {
                f.write_str("resolution no-fault-found")
            }
            Command::Resolution(r) => write!(f, "resolution {r}"),
            Command::KbDraft => f.write_str("kb draft"),
            Command::KbPublish(None) => f.write_str("kb publish"),
            Command::KbPublish(Some(url)) => write!(f, "kb publish {url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_error(text: &str) -> CommandError {
        let p = parse(text);
        assert_eq!(p.errors.len(), 1, "{p:?}");
        p.errors[0].clone()
    }

    #[test]
    fn commands_then_body() {
        let p =
            parse("\n#take\n#severity 3 workaround in place\n\nHello Dana,\n\n#1 priority is x\n");
        assert!(p.is_ok());
        let sev = Command::Severity {
            level: 3,
            reason: "workaround in place".into(),
        };
        assert_eq!(p.commands, vec![Command::Take, sev]);
        assert_eq!(p.body, "Hello Dana,\n\n#1 priority is x");
    }

    #[test]
    fn no_commands_body_is_text() {
        let p = parse("\n\nHello,\n# not a command after text\n");
        assert!(p.commands.is_empty() && p.is_ok());
        assert_eq!(p.body, "Hello,\n# not a command after text");
    }

    #[test]
    fn every_command() {
        let text = "#TAKE\n#queue ansible-ja\n#status Waiting\n#internal\n#split\n\
                    #link bug:RH-123.4\n#link bug:99\n#kb https://kb.example.com/a?b=1";
        let p = parse(text);
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(p.commands.len(), 8);
        assert_eq!(p.commands[2], Command::Status(StatusArg::Waiting));
        assert_eq!(p.commands[5], Command::LinkBug("RH-123.4".into()));
        assert_eq!(
            parse("#assign <Kenji@Example.com>").commands,
            vec![Command::Assign("kenji@example.com".into())]
        );
        assert_eq!(
            parse("#status open").commands,
            vec![Command::Status(StatusArg::Open)]
        );
    }

    #[test]
    fn full_width_commands() {
        let p = parse("＃ｔａｋｅ\n＃severity　２　本番は回避策で稼働中");
        assert!(p.is_ok(), "{:?}", p.errors);
        let sev = Command::Severity {
            level: 2,
            reason: "本番は回避策で稼働中".into(),
        };
        assert_eq!(p.commands, vec![Command::Take, sev]);
    }

    #[test]
    fn misspelt_command_suggests_the_right_one() {
        let e = one_error("#sevrity 2 x\nbody");
        assert_eq!(e.line, 1);
        assert_eq!(
            e.message,
            "unknown command \"#sevrity\" — did you mean \"#severity\"?"
        );
        assert!(one_error("#clsoe").message.contains("\"#close\""));
        assert!(one_error("#sev 2 x").message.contains("\"#severity\""));
    }

    #[test]
    fn unknown_command_lists_valid_ones() {
        let e = one_error("\n#frobnicate");
        assert_eq!(e.line, 2);
        assert_eq!(e.text, "#frobnicate");
        assert!(
            e.message.contains("#take, #assign ADDRESS"),
            "{}",
            e.message
        );
        assert!(
            one_error("#1 priority is uptime")
                .message
                .contains("valid commands")
        );
    }

    #[test]
    fn invalid_arguments() {
        for bad in [
            "#severity 5 x",
            "#severity 2",
            "#severity two x",
            "#assign kenji",
            "#queue",
            "#status closed",
            "#link kb:1",
            "#link bug:",
            "#link bug:a/b",
            "#kb ftp://x",
            "#kb https://",
            "#take now",
        ] {
            assert!(!parse(bad).is_ok(), "{bad}");
        }
    }

    #[test]
    fn repeated_same_command_is_deduplicated() {
        let p = parse("#take\n#TAKE\n#link bug:1\n#link bug:1\n#link bug:2");
        assert!(p.is_ok());
        assert_eq!(p.commands.len(), 3);
    }

    #[test]
    fn conflicting_repeats_are_errors() {
        let e = one_error("#severity 2 a\n#severity 3 b");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("contradicts"), "{}", e.message);
        assert_eq!(one_error("#status open\n#close").line, 2);
        assert_eq!(one_error("#take\n#assign a@b.c").line, 2);
        assert!(parse("#internal\n#close").is_ok());
    }

    // --- issue 18b ---
    #[test]
    fn kb_draft_publish_and_url_do_not_overlap() {
        assert_eq!(parse("#kb draft").commands, vec![Command::KbDraft]);
        assert_eq!(parse("＃ｋｂ　ＤＲＡＦＴ").commands, vec![Command::KbDraft]);
        assert_eq!(
            parse("#kb publish").commands,
            vec![Command::KbPublish(None)]
        );
        assert_eq!(
            parse("#kb publish <https://kb.example.com/42>").commands,
            vec![Command::KbPublish(Some("https://kb.example.com/42".into()))]
        );
        assert_eq!(
            parse("#kb https://kb.example.com/draft").commands,
            vec![Command::Kb("https://kb.example.com/draft".into())]
        );
        let p = parse("#kb draft\n#close\n#kb https://kb.example.com/1");
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(p.commands.len(), 3);
        for bad in [
            "#kb draft now",
            "#kb publish ftp://x",
            "#kb publish a b",
            "#kb drafts",
        ] {
            assert!(!parse(bad).is_ok(), "{bad}");
        }
        assert!(
            one_error("#kb draft\n#kb publish")
                .message
                .contains("contradicts")
        );
        assert_eq!(
            Command::KbPublish(Some("https://k/1".into())).to_string(),
            "kb publish https://k/1"
        );
    }

    #[test]
    fn known_issue_commands() {
        let p = parse("#known AAP-1234 fixed-in 2.14.2\n#take\nPlease upgrade.");
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(
            p.commands[0],
            Command::Known {
                issue: "AAP-1234".into(),
                answer: KnownAnswer::FixedIn(Version::parse("2.14.2").unwrap()),
            }
        );
        assert_eq!(p.commands[0].to_string(), "known AAP-1234 fixed-in 2.14.2");
        let p = parse("＃ｋｎｏｗｎ　AAP-2001　ＷＯＲＫＡＲＯＵＮＤ\n\n回避策です。");
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(p.body, "回避策です。");
        assert_eq!(
            parse("#bug AAP-3001").commands,
            vec![Command::Bug("AAP-3001".into())]
        );
        assert_eq!(
            parse("#resolution No-Fault-Found\n#close").commands,
            vec![
                Command::Resolution(Resolution::NoFaultFound),
                Command::Close
            ]
        );
        assert_eq!(
            parse("#resolution advice").commands[0].to_string(),
            "resolution advice"
        );
    }

    #[test]
    fn known_issue_command_errors() {
        for bad in [
            "#known",
            "#known AAP-1",
            "#known AAP-1 fixed-in",
            "#known AAP-1 fixed-in 2.x",
            "#known AAP-1 fixed in 2.1",
            "#known AAP/1 workaround",
            "#bug",
            "#bug a b",
            "#resolution",
            "#resolution upgrade",
            "#resolution fixed",
        ] {
            assert!(!parse(bad).is_ok(), "{bad}");
        }
        assert!(
            one_error("#known A-1 fixed-in 2.x")
                .message
                .contains("\"2.x\" is not a version")
        );
        assert!(
            one_error("#knwon A-1 workaround")
                .message
                .contains("\"#known\"")
        );
        // One resolution path per reply; a workaround keeps the case open.
        assert!(
            one_error("#known A-1 workaround\n#bug B-2")
                .message
                .contains("contradicts")
        );
        assert_eq!(one_error("#known A-1 workaround\n#close").line, 2);
        assert!(parse("#known A-1 fixed-in 2.1\n#close").is_ok());
        assert!(parse("#resolution advice\n#close").is_ok());
        assert!(!parse("#internal\n#known A-1 fixed-in 2.1").is_ok());
        assert!(parse("#internal\n#bug B-1").is_ok());
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("sevrity", "severity"), 1);
        assert_eq!(edit_distance("clsoe", "close"), 1);
        assert_eq!(edit_distance("", "kb"), 2);
    }
}
