//! Issue 19, the short form of fuzzing: every input the fuzzers kept (`fuzz/corpus/<target>/`,
//! the crashes and hangs they found among them, in `fuzz/findings/<target>/`) is run through
//! its target again: none may panic or take more than a few seconds. `scripts/fuzz` runs
//! the coverage-guided fuzzers themselves.

#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Per input, in a debug build on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(10);

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_kept_fuzz_input_runs_clean() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for &(name, target) in targets::TARGETS {
        let mut files = inputs(&root.join("corpus").join(name));
        assert!(!files.is_empty(), "no corpus for fuzz target {name}");
        files.extend(inputs(&root.join("findings").join(name)));
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let (tx, rx) = mpsc::channel();
            let started = Instant::now();
            let worker = std::thread::Builder::new()
                .name(format!("fuzz-{name}"))
                .spawn(move || {
                    target(&data);
                    let _ = tx.send(());
                })
                .unwrap();
            match rx.recv_timeout(LIMIT) {
                Ok(()) => worker.join().unwrap(),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{name}: {} panicked", file.display())
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{name}: {} still running after {LIMIT:?}", file.display())
                }
            }
            assert!(started.elapsed() < LIMIT);
            total += 1;
        }
    }
    eprintln!("{total} fuzz inputs replayed");
}
