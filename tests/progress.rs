//! Progress of long work when stderr is not a terminal (a log file, the journal): plain
//! log lines at every tenth and at the end, for `contracts import` of a large file,
//! `run --once` over a large backlog in Dovecot and `quarantine replay` of many held
//! mails; small work prints none.

mod support;

use support::cli::ok;
use support::mail::plain_mail;
use support::{TestCtx, append};

/// The `progress` log lines of `task` in `stderr`: (message, done, total).
fn lines(stderr: &str, task: &str) -> Vec<(String, u64, u64)> {
    let field = |line: &str, name: &str| -> u64 {
        line.split(&format!(" {name}="))
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    stderr
        .lines()
        .filter(|l| l.contains(&format!("task=\"{task}\"")))
        .map(|l| {
            let message = l
                .split("casegate::progress: ")
                .nth(1)
                .and_then(|m| m.split(" task=").next())
                .unwrap_or_default()
                .to_string();
            (message, field(l, "done"), field(l, "total"))
        })
        .collect()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_large_contracts_import_logs_its_progress_and_a_small_one_does_not() {
    let ctx = TestCtx::new("progress-import");
    let csv = ctx.dir.path().join("contracts.csv");
    let mut text =
        String::from("account,contract_id,tier,products,domains,contacts,country,start,end\n");
    for n in 0..1000 {
        text.push_str(&format!(
            "Account {n},C-{n},premium,ansible,a{n}.example,,US,2025-01-01,2030-12-31\n"
        ));
    }
    std::fs::write(&csv, &text).unwrap();
    let out = ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(ok(out).contains("1000 new"));
    let got = lines(&err, "contracts import");
    let mut want = vec![("progress: started".to_string(), 0, 1000)];
    want.extend((1..10).map(|t| ("progress".to_string(), t * 100, 1000)));
    want.push(("progress: finished".to_string(), 1000, 1000));
    assert_eq!(got, want, "{err}");

    // Ten rows into a new database: no progress lines.
    let small = TestCtx::new("progress-small");
    std::fs::write(&csv, text.lines().take(11).collect::<Vec<_>>().join("\n")).unwrap();
    let out = small
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    ok(out);
    assert!(!err.contains("progress"), "{err}");
}

#[tokio::test]
async fn run_once_over_a_backlog_and_quarantine_replay_log_their_progress() {
    const GOOD: usize = 60;
    const BROKEN: usize = 110;
    let ctx = TestCtx::with_config("progress-run", "[imap]\nbatch_size = 25\n");
    let u = ctx.user.clone();
    support::create(&u, "INBOX").await;
    for n in 0..GOOD {
        let from = format!("{u}-c{n}@globex.example");
        let id = format!("{u}-{n}@globex.example");
        append(&u, "INBOX", &plain_mail(&from, "Playbook fails", &id), None).await;
    }
    for n in 0..BROKEN {
        // No sender: quarantined, and still held when replayed.
        let raw =
            format!("Subject: broken {n}\r\nMessage-ID: <{u}-b{n}@x.example>\r\n\r\nhello\r\n");
        append(&u, "INBOX", raw.as_bytes(), None).await;
    }
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let err = stderr_of(&out);
    ok(out);
    let total = (GOOD + BROKEN) as u64;
    let got = lines(&err, "run --once");
    assert_eq!(
        got.first(),
        Some(&("progress: started".into(), 0, total)),
        "{err}"
    );
    assert_eq!(
        got.last(),
        Some(&("progress: finished".into(), total, total)),
        "{err}"
    );
    // Batches of 25: a line at each batch that crosses a tenth.
    let middle: Vec<u64> = got[1..got.len() - 1].iter().map(|l| l.1).collect();
    assert!(middle.len() >= 5, "{err}");
    assert!(middle.windows(2).all(|w| w[0] < w[1]), "{middle:?}");
    assert!(
        middle.iter().all(|d| d % 25 == 0 && *d < total),
        "{middle:?}"
    );

    let out = ctx.casegate(&["quarantine", "replay"]).output().unwrap();
    let err = stderr_of(&out);
    let said = ok(out);
    assert!(said.contains(&format!("{BROKEN} still held")), "{said}");
    let got = lines(&err, "quarantine replay (IMAP)");
    let mut want = vec![("progress: started".to_string(), 0, BROKEN as u64)];
    want.extend((1..10).map(|t| ("progress".to_string(), t * 11, BROKEN as u64)));
    want.push((
        "progress: finished".to_string(),
        BROKEN as u64,
        BROKEN as u64,
    ));
    assert_eq!(got, want, "{err}");
}
