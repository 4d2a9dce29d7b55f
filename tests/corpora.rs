//! Issue 19: mail test collections nobody here wrote, run through `casegate ingest`.
//!
//! - the published test resources of the mail-parser crate (the `resources/eml` folder of
//!   the version in `Cargo.lock`, found through `cargo metadata`): RFC examples, legacy
//!   mail, third-party samples and deliberately malformed mail;
//! - the email test data of Debian's Python (`libpython3.X-testsuite`, installed by
//!   `scripts/install-deps`): `test_email/data/msg_*.txt`.
//!
//! Every mail must end as a case (opened or added to), a duplicate, or a quarantined mail
//! with a reason; none may crash the process, hang, or vanish: the store's own counts
//! must add up to what was fed (a byte-identical mail quarantined twice is one held mail).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::TestCtx;
use support::cli::{ingest, ok, text};

/// The `.eml` files of the mail-parser crate this build uses: the version in `Cargo.lock`,
/// as cargo unpacked it into its registry (`$CARGO_HOME/registry/src/*/`) to build it.
fn mail_parser_resources() -> Vec<PathBuf> {
    let lock = std::fs::read_to_string(support::repo_dir().join("Cargo.lock")).unwrap();
    let lock: toml::Table = lock.parse().expect("Cargo.lock is TOML");
    let version = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("mail-parser"))
        .and_then(|p| p["version"].as_str())
        .expect("mail-parser in Cargo.lock")
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let mut files = Vec::new();
    for index in std::fs::read_dir(cargo_home.join("registry/src"))
        .expect("cargo's registry sources")
        .flatten()
    {
        let root = index
            .path()
            .join(format!("mail-parser-{version}/resources/eml"));
        if root.is_dir() {
            collect(
                &root,
                &mut |p| p.extension().is_some_and(|e| e == "eml"),
                &mut files,
            );
            break;
        }
    }
    files
}

/// `test_email/data/msg_*.txt` of every Python test suite installed under /usr/lib.
fn python_email_data() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir("/usr/lib").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("python3") {
            continue;
        }
        let data = entry.path().join("test/test_email/data");
        collect(
            &data,
            &mut |p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("msg_") && n.ends_with(".txt"))
            },
            &mut files,
        );
    }
    files
}

fn collect(dir: &Path, keep: &mut dyn FnMut(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, keep, out);
        } else if keep(&p) {
            out.push(p);
        }
    }
}

/// What `ingest` said about one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Opened,
    Added,
    Duplicate,
    Quarantined,
}

fn fate(stdout: &str) -> Option<Fate> {
    let line = stdout.trim();
    if line.lines().count() != 1 {
        return None;
    }
    if line.starts_with("opened case ") {
        Some(Fate::Opened)
    } else if line.starts_with("added to case ") {
        Some(Fate::Added)
    } else if line.starts_with("duplicate of a mail on case ") {
        Some(Fate::Duplicate)
    } else if let Some(reason) = line.strip_prefix("quarantined: ") {
        (!reason.trim().is_empty()).then_some(Fate::Quarantined)
    } else {
        None
    }
}

/// Feeds `files` to one database and checks every mail is accounted for.
fn run_corpus(tag: &str, files: &[PathBuf]) -> BTreeMap<Fate, usize> {
    let ctx = TestCtx::new(tag);
    let mut tally: BTreeMap<Fate, usize> = BTreeMap::new();
    // A byte-identical mail quarantined again is the same held mail (one row).
    let mut held_contents = std::collections::BTreeSet::new();
    for f in files {
        let raw = std::fs::read(f).unwrap();
        let out = ingest(&ctx, &raw);
        let all = text(&out);
        assert!(
            out.status.success(),
            "{}: ingest exited {:?}\n{all}",
            f.display(),
            out.status
        );
        assert!(!all.contains("panicked"), "{}: {all}", f.display());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let fate =
            fate(&stdout).unwrap_or_else(|| panic!("{}: no outcome in {all:?}", f.display()));
        if fate == Fate::Quarantined {
            held_contents.insert(Sha256::digest(&raw).to_vec());
        }
        *tally.entry(fate).or_default() += 1;
    }
    let count = |f: Fate| tally.get(&f).copied().unwrap_or(0);
    assert_eq!(
        tally.values().sum::<usize>(),
        files.len(),
        "every mail has a fate"
    );

    // The store agrees: one case per "opened", an inbound message per stored mail, a
    // held mail per "quarantined".
    let cases: Value = serde_json::from_str(&ok(ctx
        .casegate(&["cases", "list", "--json", "--limit", "100000"])
        .output()
        .unwrap()))
    .unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), count(Fate::Opened), "{tally:?}");
    let mut inbound = 0;
    for c in cases {
        let number = c["number"].as_str().unwrap();
        let shown: Value = serde_json::from_str(&ok(ctx
            .casegate(&["cases", "show", number, "--json"])
            .output()
            .unwrap()))
        .unwrap();
        inbound += shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .count();
    }
    assert_eq!(
        inbound,
        count(Fate::Opened) + count(Fate::Added),
        "{tally:?}"
    );
    let held: Value = serde_json::from_str(&ok(ctx
        .casegate(&["quarantine", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), held_contents.len(), "{tally:?}");
    for h in held {
        assert!(
            h["reason"].as_str().is_some_and(|r| !r.trim().is_empty()),
            "{h:#}"
        );
    }
    eprintln!("{tag}: {} mails: {tally:?}", files.len());
    tally
}

#[test]
fn the_mail_parser_test_resources_are_all_accounted_for() {
    let files = mail_parser_resources();
    assert!(
        files.len() >= 100,
        "expected mail-parser's published eml resources, found {}",
        files.len()
    );
    let tally = run_corpus("corpus-mail-parser", &files);
    // Most of it is ordinary mail; the malformed folder may end in quarantine.
    assert!(tally.get(&Fate::Opened).copied().unwrap_or(0) >= files.len() / 2);
}

#[test]
fn the_python_email_test_data_is_all_accounted_for() {
    let files = python_email_data();
    assert!(
        files.len() >= 40,
        "expected Debian's libpython3.X-testsuite (scripts/install-deps installs it) \
         with test_email/data/msg_*.txt, found {} files",
        files.len()
    );
    let tally = run_corpus("corpus-python", &files);
    assert!(tally.get(&Fate::Opened).copied().unwrap_or(0) >= files.len() / 2);
}
