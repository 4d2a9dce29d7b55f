//! Running the casegate binary in a test: exit status checked, JSON parsed.

use std::io::Write;
use std::process::{Output, Stdio};

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

/// Stdout and stderr of a command, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `casegate ingest` with `raw` on stdin (MTA pipe mode).
pub fn ingest(ctx: &TestCtx, raw: &[u8]) -> Output {
    ingest_with_env(ctx, raw, &[])
}

/// `casegate ingest` with `raw` on stdin and extra environment variables.
pub fn ingest_with_env(ctx: &TestCtx, raw: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = ctx.casegate(&["ingest"]);
    cmd.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    child.wait_with_output().unwrap()
}

/// `casegate contracts import FILE [flags]`, FILE being `csv` written to `name` in the
/// test's folder.
pub fn import_contracts(ctx: &TestCtx, name: &str, csv: &str, flags: &[&str]) -> Output {
    let path = ctx.dir.path().join(name);
    std::fs::write(&path, csv).unwrap();
    let mut args = vec!["contracts", "import", path.to_str().unwrap()];
    args.extend_from_slice(flags);
    ctx.casegate(&args).output().unwrap()
}

/// The JSON a command that must succeed prints (`contracts list --json`, ...).
pub fn json(ctx: &TestCtx, args: &[&str]) -> Value {
    serde_json::from_str(&ok(ctx.casegate(args).output().unwrap())).unwrap()
}
