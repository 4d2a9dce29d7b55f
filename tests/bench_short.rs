//! The short form of `scripts/bench` (issue 21): the drain with its raw limits (UID
//! FETCH, UID FETCH + UID MOVE in batches, SMTP acceptance), the CPU split (intake with
//! delivery held back, then the outbox) for text mail and for the attachment mix, and
//! latency under load, on a few mails against the real test servers and the binary
//! `cargo test` built. It checks that the benchmark runs and that every scenario's
//! correctness check holds (each mail one case, one acknowledgement); speeds are not
//! judged here (they come from `scripts/bench` on a release build).

mod support;

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;
use support::{TestEnv, repo_dir, tempdir};

#[test]
fn bench_short_form_runs_every_new_scenario_correctly() {
    let env = TestEnv::get();
    let work = tempdir();
    let out = Command::new("/usr/bin/python3")
        .arg(repo_dir().join("scripts/bench.d/bench.py"))
        .args(["--repo".as_ref(), repo_dir().as_os_str()])
        .args(["--bin", env!("CARGO_BIN_EXE_casegate")])
        .args(["--servers".as_ref(), env.dir.as_os_str()])
        .args(["--work".as_ref(), work.path().as_os_str()])
        .args([
            "--only",
            "drain,load",
            "--mails",
            "24",
            "--raw-move-batch",
            "10",
        ])
        .args([
            "--load-rate",
            "20",
            "--load-seconds",
            "1.5",
            "--latency-wait",
            "30",
        ])
        .output()
        .expect("python3 runs scripts/bench.d/bench.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let mut seen: HashMap<(String, String), Value> = HashMap::new();
    for v in lines {
        let scenario = v["scenario"].as_str().unwrap_or_default().to_owned();
        let mix = v["mix_name"].as_str().unwrap_or_default().to_owned();
        seen.insert((scenario, mix), v);
    }
    for mix in ["text", "attachments"] {
        let get = |s: &str| {
            seen.get(&(s.to_owned(), mix.to_owned()))
                .unwrap_or_else(|| panic!("no {s} line for the {mix} mix:\n{stderr}"))
        };
        let drain = get("drain");
        assert_eq!(drain["correct"], true, "{drain:#}");
        assert_eq!(drain["checks"]["processed_folder"], 24, "{drain:#}");
        let limits = get("limits");
        for key in [
            "drain_fraction_of_raw_fetch_move",
            "outbox_fraction_of_raw_smtp",
        ] {
            assert!(
                limits[key].as_f64().is_some_and(|f| f > 0.0),
                "{key}: {limits:#}"
            );
        }
        assert!(
            limits["raw_imap_fetch_move"]["mails_per_second"]
                .as_f64()
                .is_some()
        );
        // Every outgoing mail (acknowledgements and notifications) went through the raw client too.
        assert_eq!(
            limits["raw_smtp_accept"]["messages"], drain["outgoing_mails"],
            "{limits:#}"
        );
        let cpu = get("cpu_split");
        assert_eq!(cpu["correct"], true, "{cpu:#}");
        for key in ["intake_cpu_ms_per_mail", "outbox_cpu_ms_per_mail"] {
            assert!(cpu[key].is_number(), "{key}: {cpu:#}");
        }
    }
    let attachments = &seen[&("drain".to_owned(), "attachments".to_owned())];
    assert!(attachments["mix"]["with_1mib_attachment"].as_u64() > Some(0));
    let text = &seen[&("drain".to_owned(), "text".to_owned())];
    assert_eq!(text["mix"]["with_1mib_attachment"], 0);
    let load = seen
        .iter()
        .find(|((s, _), _)| s == "latency_under_load")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no latency_under_load line:\n{stderr}"));
    assert_eq!(load["correct"], true, "{load:#}");
    assert_eq!(load["mails"], 30);
    assert!(load["append_to_ack_ms"]["p99"].is_number(), "{load:#}");
}
