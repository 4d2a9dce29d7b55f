//! The labelled language corpus (tests/fixtures/language/, see its README): every
//! mail must be classified right, 100%, and every confidence must lie in 0..=1.

use std::path::{Path, PathBuf};

use casegate::domain::language::{Language, detect};

struct Sample {
    name: String,
    expected: Language,
    subject: String,
    body: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/language")
}

/// `NN-name.ja.txt`: label from the name; `Subject: ...`, a blank line, the body.
fn load(path: &Path) -> Sample {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let label = name.trim_end_matches(".txt").rsplit('.').next().unwrap();
    let expected =
        Language::parse(label).unwrap_or_else(|| panic!("{name}: label must be ja or en"));
    let text = std::fs::read_to_string(path).unwrap();
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .unwrap_or_else(|| panic!("{name}: first line must be Subject:"));
    let body = rest
        .strip_prefix('\n')
        .unwrap_or_else(|| panic!("{name}: a blank line must follow the subject"));
    Sample {
        name,
        expected,
        subject: subject.trim().to_string(),
        body: body.to_string(),
    }
}

fn corpus() -> Vec<Sample> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

#[test]
fn corpus_is_large_enough_and_has_both_labels() {
    let c = corpus();
    assert!(c.len() >= 30, "only {} samples", c.len());
    assert!(c.iter().filter(|s| s.expected == Language::Ja).count() >= 10);
    assert!(c.iter().filter(|s| s.expected == Language::En).count() >= 10);
}

#[test]
fn every_sample_is_classified_right() {
    let wrong: Vec<String> = corpus()
        .iter()
        .filter_map(|s| {
            let d = detect(&s.subject, &s.body);
            assert!(
                (0.0..=1.0).contains(&d.confidence),
                "{}: confidence {}",
                s.name,
                d.confidence
            );
            (d.language != s.expected)
                .then(|| format!("{}: detected {} ({:.2})", s.name, d.language, d.confidence))
        })
        .collect();
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}
