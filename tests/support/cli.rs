//! Running the casegate binary in a test: exit status checked, JSON parsed.

use std::process::Output;

use serde_json::Value;

use super::TestCtx;

/// Stdout of a command that must have succeeded (stdout and stderr shown otherwise).
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `casegate run --once`; returns its summary.
pub fn run_once(ctx: &TestCtx) -> String {
    ok(ctx.casegate(&["run", "--once"]).output().unwrap())
}

/// `cases list --json`, oldest first.
pub fn cases(ctx: &TestCtx) -> Vec<Value> {
    let out = ok(ctx
        .casegate(&["cases", "list", "--json", "--limit", "1000"])
        .output()
        .unwrap());
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut list = v.as_array().unwrap().clone();
    list.reverse();
    list
}

/// `cases show NUMBER --json`.
pub fn show(ctx: &TestCtx, number: &str) -> Value {
    serde_json::from_str(&ok(ctx
        .casegate(&["cases", "show", number, "--json"])
        .output()
        .unwrap()))
    .unwrap()
}
