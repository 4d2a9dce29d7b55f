//! Machine output inside a customer's prose: stack traces, logs, command output.
//!
//! An article must show a pasted trace exactly as it was (a reader searches for its
//! lines), so such lines are kept verbatim in a fenced block instead of being re-flowed,
//! scrubbed of numbers or merged with the prose around them.

use crate::domain::language::looks_like_log;

/// A run of lines: prose to edit and scrub, or machine output to keep as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Prose(Vec<String>),
    Code(Vec<String>),
}

/// Split `text` into prose and machine-output runs. A blank line inside machine
/// output stays in its block when more machine output follows it.
pub fn segments(text: &str) -> Vec<Segment> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_machine(&lines, i) {
            let mut block = Vec::new();
            // A command's output follows its prompt up to the next blank line.
            let mut output = false;
            while i < lines.len() {
                if is_machine(&lines, i) || (output && !lines[i].trim().is_empty()) {
                    output = is_prompt(lines[i]) || (output && !lines[i].trim().is_empty());
                    block.push(lines[i].to_string());
                    i += 1;
                } else if lines[i].trim().is_empty()
                    && i + 1 < lines.len()
                    && is_machine(&lines, i + 1)
                {
                    output = false;
                    block.push(String::new());
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Segment::Code(dedent(block)));
        } else {
            match out.last_mut() {
                Some(Segment::Prose(p)) => p.push(lines[i].to_string()),
                _ => out.push(Segment::Prose(vec![lines[i].to_string()])),
            }
            i += 1;
        }
    }
    out
}

/// Whether line `i` is machine output: a stack frame, a traceback, a prompt, a log line,
/// or an indented line next to one of those (a block indented by the mail client).
fn is_machine(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.trim().is_empty() {
        return false;
    }
    if is_trace_line(line) || is_prompt(line) {
        return true;
    }
    if is_indented(line) {
        // An indented line counts when it is code-like itself or sits in a run of
        // indented lines at least one of which is (a traceback's source line, a
        // command's output under the prompt).
        return looks_like_log(line) || indented_run_has_machine(lines, i);
    }
    looks_like_log(line) && !is_sentence(line)
}

/// Lines of Java, Python, .NET and Ansible output that are unmistakable.
fn is_trace_line(line: &str) -> bool {
    let t = line.trim();
    let java_frame = t.starts_with("at ") && t.contains('(') && t.ends_with(')');
    let java_more = t.starts_with("... ") && t.ends_with(" more");
    let exception = {
        let head = t.split([':', ' ']).next().unwrap_or("");
        (head.ends_with("Exception") || head.ends_with("Error"))
            && head.contains('.')
            && !head.contains(char::is_whitespace)
    };
    java_frame
        || java_more
        || exception
        || t.starts_with("Caused by: ")
        || t.starts_with("Exception in thread ")
        || t.starts_with("Traceback (most recent call last)")
        || (t.starts_with("File \"") && t.contains("\", line "))
        || t.starts_with("fatal: [")
        || t.starts_with("TASK [")
        || t.starts_with("PLAY [")
        || t.starts_with("PLAY RECAP")
        || t.starts_with("ok: [")
        || t.starts_with("changed: [")
        || t.starts_with("failed: [")
}

/// A shell prompt: `$ cmd`, `# cmd` after a host prompt, `[root@host ~]# cmd`, `PS C:\> cmd`.
fn is_prompt(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("$ ")
        || t.starts_with("PS C:\\")
        || (t.starts_with('[') && (t.contains("]# ") || t.contains("]$ ")))
        || t.starts_with(">>> ")
}

fn is_indented(line: &str) -> bool {
    line.starts_with('\t') || line.starts_with("  ")
}

fn indented_run_has_machine(lines: &[&str], i: usize) -> bool {
    let in_run = |j: usize| is_indented(lines[j]) && !lines[j].trim().is_empty();
    let mut start = i;
    while start > 0 && in_run(start - 1) {
        start -= 1;
    }
    let mut end = i;
    while end + 1 < lines.len() && in_run(end + 1) {
        end += 1;
    }
    let run_machine = (start..=end).any(|j| is_trace_line(lines[j]) || looks_like_log(lines[j]));
    // The line just above an indented run (`Traceback ...`, a prompt) also makes it output.
    let above = start > 0 && (is_trace_line(lines[start - 1]) || is_prompt(lines[start - 1]));
    run_machine || above
}

/// A line of written English ("We get this Error: since the upgrade.") that happens to
/// hold a log marker: it ends a sentence and has mostly plain words.
fn is_sentence(line: &str) -> bool {
    let t = line.trim();
    let words: Vec<&str> = t.split_whitespace().collect();
    let plain = words
        .iter()
        .filter(|w| w.chars().all(|c| c.is_alphabetic() || ",.'?!".contains(c)))
        .count();
    words.len() >= 6 && plain * 10 >= words.len() * 8 && t.ends_with(['.', '?', '!'])
}

/// The common indentation of a block goes (the mail client added it); relative
/// indentation (a trace's frames) stays.
fn dedent(block: Vec<String>) -> Vec<String> {
    let indent = block
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    // Only where every line starts with the same whitespace: a tab and an ideographic
    // space are not the same indentation (and cutting inside one would split a char).
    let prefix = block
        .iter()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.get(..indent))
        .unwrap_or("")
        .to_string();
    let shared = block
        .iter()
        .all(|l| l.trim().is_empty() || l.starts_with(&prefix));
    if !shared || prefix.is_empty() {
        return block;
    }
    block
        .into_iter()
        .map(|l| l.strip_prefix(&prefix).map(str::to_string).unwrap_or(l))
        .collect()
}

/// A fence longer than any backtick run in the block, so the block cannot end early.
pub fn fence(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .map(|l| {
            let mut best = 0;
            let mut run = 0;
            for c in l.chars() {
                run = if c == '`' { run + 1 } else { 0 };
                best = best.max(run);
            }
            best
        })
        .max()
        .unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_blocks(text: &str) -> Vec<Vec<String>> {
        segments(text)
            .into_iter()
            .filter_map(|s| match s {
                Segment::Code(c) => Some(c),
                Segment::Prose(_) => None,
            })
            .collect()
    }

    #[test]
    fn java_trace_is_one_block() {
        let text = "The job fails with:\n\
                    java.lang.IllegalStateException: pool closed\n\
                    \tat org.example.pool.Pool.get(Pool.java:42)\n\
                    \tat org.example.app.Main.run(Main.java:7)\n\
                    \t... 12 more\n\
                    Caused by: java.io.IOException: broken pipe\n\
                    \tat org.example.io.Sock.write(Sock.java:99)\n\
                    \n\
                    It started after the upgrade.";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(blocks[0].len(), 6);
        assert_eq!(blocks[0][0], "java.lang.IllegalStateException: pool closed");
        assert_eq!(blocks[0][1], "\tat org.example.pool.Pool.get(Pool.java:42)");
    }

    #[test]
    fn python_traceback_keeps_source_lines() {
        let text = "Traceback (most recent call last):\n  File \"/usr/lib/x.py\", line 3, in <module>\n    main()\nValueError: bad value\nThat is all.";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(blocks[0].len(), 4);
        assert_eq!(blocks[0][2], "    main()");
    }

    #[test]
    fn prompt_and_log_lines() {
        let text = "Here is the version:\n$ ansible --version\n  ansible [core 2.15.3]\n  python version = 3.11.2\n\n2026-11-30 10:00:01 ERROR [worker] job 42 failed\nThanks.";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(blocks[0][0], "$ ansible --version");
        assert_eq!(
            blocks[0].last().unwrap(),
            "2026-11-30 10:00:01 ERROR [worker] job 42 failed"
        );
    }

    #[test]
    fn prose_stays_prose() {
        for text in [
            "We upgraded last week and now nothing works.",
            "本番環境でジョブが失敗します。",
            "Since the upgrade we see an Error: every night.",
        ] {
            assert!(code_blocks(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn japanese_prose_around_a_trace() {
        let text = "ジョブ実行時に以下のエラーが発生します。\nException in thread \"main\" java.lang.NullPointerException\n\tat com.example.Foo.bar(Foo.java:10)\nご確認をお願いいたします。";
        let segs = segments(text);
        assert_eq!(segs.len(), 3, "{segs:?}");
        assert!(matches!(&segs[1], Segment::Code(c) if c.len() == 2));
    }

    #[test]
    fn ansible_output_is_one_block() {
        let text = "Playbook output:\nTASK [Gathering Facts] *****\nfatal: [web01]: FAILED! => {\"msg\": \"timeout\"}\nPLAY RECAP *****\nweb01 : ok=0 changed=0 failed=1\nWhat should we do?";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(blocks[0].len(), 4, "{blocks:?}");
    }

    #[test]
    fn a_root_prompt_and_its_output() {
        let text = "[root@node1 ~]# systemctl status automation-controller\n● automation-controller.service - Automation Controller\n   Active: failed\n\nいかがでしょうか。";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(blocks[0].len(), 3, "{blocks:?}");
        assert_eq!(blocks[0][2], "   Active: failed");
    }

    #[test]
    fn mixed_indentation_is_kept_as_it_is() {
        let text = "\u{3000}at a.B.c(D.java:1)\n\t\u{3000}at a.B.d(D.java:2)";
        let blocks = code_blocks(text);
        assert_eq!(blocks[0][0], "\u{3000}at a.B.c(D.java:1)");
        let text = "    at a.B.c(D.java:1)\n      at a.B.d(D.java:2)";
        assert_eq!(
            code_blocks(text)[0],
            vec!["at a.B.c(D.java:1)", "  at a.B.d(D.java:2)"]
        );
    }

    #[test]
    fn fence_outgrows_backticks_inside() {
        assert_eq!(fence(&["plain".into()]), "```");
        assert_eq!(fence(&["a ```` b".into()]), "`````");
    }
}
