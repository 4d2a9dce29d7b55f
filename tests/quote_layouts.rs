//! Quote stripping on real-world reply layouts: every `NAME.txt` under
//! `tests/fixtures/replies/` must strip to `NAME.expected.txt` (its final newline aside).

use std::fs;
use std::path::{Path, PathBuf};

use casegate::mail::quote::strip_reply;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| !p.to_string_lossy().ends_with(".expected.txt"))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn every_layout_strips_to_its_expected_text() {
    let inputs = fixtures();
    assert!(inputs.len() >= 15, "only {} reply layouts", inputs.len());
    let mut failures = Vec::new();
    for input in &inputs {
        let expected_path = input.with_extension("expected.txt");
        let text = fs::read_to_string(input).expect("fixture");
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        let got = strip_reply(&text);
        if got != expected.strip_suffix('\n').unwrap_or(&expected) {
            failures.push(format!(
                "== {}\n-- got:\n{got}\n-- expected:\n{expected}",
                input.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} layouts differ:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

#[test]
fn stripping_is_idempotent() {
    for input in fixtures() {
        let once = strip_reply(&fs::read_to_string(&input).expect("fixture"));
        assert_eq!(strip_reply(&once), once, "{}", input.display());
    }
}
