//! Issue 3, admins editing the routing scenario's files while the daemon runs: SIGHUP
//! and file changes reload the routing file, the templates and the contracts file; a
//! broken edit is refused and the last good configuration keeps working.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use casegate::mail::parse::{ParseLimits, parse};
use serde_json::Value;
use support::cli::{cases, ok};
use support::daemon::Daemon;
use support::routing::{HEADER, import, mail, scenario_contracts};
use support::{TestCtx, append};

/// Waits until `customer` has a case and returns it.
async fn wait_for_case(ctx: &TestCtx, customer: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(c) = cases(ctx).into_iter().find(|c| c["customer"] == customer) {
            return c;
        }
        assert!(Instant::now() < deadline, "no case from {customer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn check_config(config: &Path) -> Output {
    support::casegate()
        .arg("--config")
        .arg(config)
        .arg("check-config")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Writes `text` over `path` without changing its size or modification time, so that
/// the daemon's file watcher (which compares both) cannot see the edit: only SIGHUP can
/// make the daemon read it.
fn edit_unseen(path: &Path, text: &str) {
    let before = std::fs::metadata(path).unwrap();
    assert_eq!(
        before.len(),
        text.len() as u64,
        "an unseen edit keeps the size of {}",
        path.display()
    );
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
}

/// The routing file with the English NA ansible queue renamed to `name` (queue and rule).
fn rename_na_queue(original: &str, name: &str) -> String {
    let edited = original
        .replace("name = \"ansible-na\"", &format!("name = \"{name}\""))
        .replace(
            "region = \"NA\"\nqueue = \"ansible-na\"",
            &format!("region = \"NA\"\nqueue = \"{name}\""),
        );
    assert_eq!(
        edited.matches(&format!("\"{name}\"")).count(),
        2,
        "queue and rule renamed"
    );
    edited
}

#[tokio::test]
async fn sighup_reloads_routing_and_templates_refuses_broken_edits_and_applies_good_ones() {
    // The daemon reads copies of the routing file and the templates that the test edits.
    // Every edit keeps size and mtime (see `edit_unseen`): what changes, SIGHUP did.
    let admin = support::tempdir();
    let routing = admin.path().join("routing.toml");
    let templates = admin.path().join("templates");
    let original =
        std::fs::read_to_string(support::repo_dir().join("config/routing.toml")).unwrap();
    std::fs::write(&routing, &original).unwrap();
    copy_dir(&support::repo_dir().join("templates"), &templates);
    let ack = templates.join("en/acknowledgement.txt");
    let ack_original = std::fs::read_to_string(&ack).unwrap();
    let extra = format!(
        "[gateway]\nrouting_file = \"{}\"\ntemplates_dir = \"{}\"\n[imap]\npoll_interval_secs = 2\n",
        routing.display(),
        templates.display()
    );
    let ctx = TestCtx::with_config("reload", &extra);
    let u = ctx.user.clone();
    ok(import(&ctx, "contracts.csv", &scenario_contracts(&u)));
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon::start(&ctx, "daemon.log");

    let customer = |i: u32| format!("nurse{i}-{u}@prairiehealth.com");
    let send = |i: u32| {
        let m = mail(
            &format!("reload{i}-{u}@prairiehealth.com"),
            None,
            &customer(i),
            "Playbook hangs on gathering facts",
            "",
            "Hello,\nour playbook hangs.\n",
        );
        let user = ctx.user.clone();
        async move { append(&user, "INBOX", &m, None).await }
    };
    let ack_text = |i: u32| async move {
        let got = support::wait_for_smtp(&customer(i), 1, Duration::from_secs(15)).await;
        assert_eq!(got.len(), 1);
        parse(&got[0], &ParseLimits::default()).unwrap().text
    };

    // 1. The original routing: a US customer's English ansible mail goes to ansible-na.
    send(1).await;
    let c = wait_for_case(&ctx, &customer(1)).await;
    assert_eq!(
        (c["queue"].as_str(), c["region"].as_str()),
        (Some("ansible-na"), Some("NA")),
        "{c:#}"
    );
    assert!(
        ack_text(1)
            .await
            .contains("Thank you for contacting Example Support")
    );

    // 2. A broken routing edit: the NA rule names a queue that does not exist.
    let broken = original.replace(
        "region = \"NA\"\nqueue = \"ansible-na\"",
        "region = \"NA\"\nqueue = \"ansible-xx\"",
    );
    assert_ne!(
        broken, original,
        "the edit must change the ansible/en/NA rule"
    );
    edit_unseen(&routing, &broken);
    let checked = check_config(&ctx.config);
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&checked.stdout)
            .contains("rules[2].queue: unknown queue \"ansible-xx\""),
        "{checked:?}"
    );
    daemon.signal("HUP");
    let log = daemon
        .wait_log("rules[2].queue: unknown queue \"ansible-xx\"", 1)
        .await;
    assert!(
        log.contains("reload refused: keeping the last good configuration"),
        "{log}"
    );
    send(2).await;
    let c = wait_for_case(&ctx, &customer(2)).await;
    assert_eq!(
        c["queue"], "ansible-na",
        "still routed by the last good rules (read commands work meanwhile): {c:#}"
    );
    assert!(ack_text(2).await.contains("Thank you for contacting"));
    daemon.assert_running();

    // 3. Routing repaired, but a template now names an unknown variable: refused too.
    edit_unseen(&routing, &original);
    edit_unseen(
        &ack,
        &ack_original.replace("{{ case_number }}", "{{ case_nunber }}"),
    );
    assert_eq!(check_config(&ctx.config).status.code(), Some(1));
    daemon.signal("HUP");
    daemon.wait_log("unknown variable `case_nunber`", 1).await;
    send(3).await;
    let c = wait_for_case(&ctx, &customer(3)).await;
    assert_eq!(c["queue"], "ansible-na", "{c:#}");
    let text = ack_text(3).await;
    assert!(
        text.contains(&format!("case {}", c["number"].as_str().unwrap()))
            && text.contains("Thank you for contacting"),
        "answered with the last good template: {text}"
    );
    daemon.assert_running();

    // 4. Good edits: the NA team gets a new queue name, the acknowledgement new wording.
    //    Applied on SIGHUP, without a restart.
    let before = daemon
        .log()
        .matches("reload: configuration, routing and templates applied")
        .count();
    edit_unseen(&routing, &rename_na_queue(&original, "ansible-am"));
    edit_unseen(
        &ack,
        &ack_original.replace("Thank you for contacting", "Many thanks for emailing"),
    );
    assert!(check_config(&ctx.config).status.success());
    daemon.signal("HUP");
    daemon
        .wait_log(
            "reload: configuration, routing and templates applied",
            before + 1,
        )
        .await;
    send(4).await;
    let c = wait_for_case(&ctx, &customer(4)).await;
    assert_eq!(c["queue"], "ansible-am", "routed by the new rules: {c:#}");
    assert!(
        ack_text(4)
            .await
            .contains("Many thanks for emailing Example Support"),
        "the new template is used"
    );
    assert_eq!(cases(&ctx).len(), 4);
    assert!(
        !daemon.log().contains("configuration files changed"),
        "every reload here came from SIGHUP"
    );
    let status = daemon.stop().await;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

/// Issue 3 item 7: a change of the routing file reloads it without SIGHUP, and a broken
/// one is refused the same way.
#[tokio::test]
async fn a_changed_routing_file_is_reloaded_without_sighup() {
    let admin = support::tempdir();
    let routing = admin.path().join("routing.toml");
    let original =
        std::fs::read_to_string(support::repo_dir().join("config/routing.toml")).unwrap();
    std::fs::write(&routing, &original).unwrap();
    let extra = format!(
        "[gateway]\nrouting_file = \"{}\"\n[imap]\npoll_interval_secs = 2\n",
        routing.display()
    );
    let ctx = TestCtx::with_config("filewatch", &extra);
    let u = ctx.user.clone();
    ok(import(&ctx, "contracts.csv", &scenario_contracts(&u)));
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    daemon.wait_log("IMAP connected", 1).await;
    let send = |i: u32| {
        let m = mail(
            &format!("fw{i}-{u}@prairiehealth.com"),
            None,
            &format!("nurse{i}-{u}@prairiehealth.com"),
            "Playbook hangs",
            "",
            "x\n",
        );
        let user = ctx.user.clone();
        async move { append(&user, "INBOX", &m, None).await }
    };

    std::fs::write(
        &routing,
        original.replace(
            "region = \"NA\"\nqueue = \"ansible-na\"",
            "region = \"NA\"\nqueue = \"no-such-queue\"",
        ),
    )
    .unwrap();
    daemon.wait_log("unknown queue \"no-such-queue\"", 1).await;
    send(1).await;
    let c = wait_for_case(&ctx, &format!("nurse1-{u}@prairiehealth.com")).await;
    assert_eq!(
        c["queue"], "ansible-na",
        "the broken file was refused: {c:#}"
    );

    std::fs::write(&routing, rename_na_queue(&original, "ansible-americas")).unwrap();
    daemon
        .wait_log("reload: configuration, routing and templates applied", 1)
        .await;
    send(2).await;
    let c = wait_for_case(&ctx, &format!("nurse2-{u}@prairiehealth.com")).await;
    assert_eq!(
        c["queue"], "ansible-americas",
        "the edited routing file was picked up: {c:#}"
    );
    assert!(daemon.log().contains("configuration files changed"));
    assert_eq!(daemon.stop().await.code(), Some(0));
}

/// Issue 3 item 7, contracts: `gateway.contracts_file` is imported at start-up and
/// again when it changes; a broken edit imports nothing and is reported.
#[tokio::test]
async fn an_edited_contracts_file_is_imported_by_the_running_daemon() {
    let admin = support::tempdir();
    let csv = admin.path().join("contracts.csv");
    std::fs::write(&csv, format!("{HEADER}Prairie Health Inc,C-4001,standard,ansible,prairiehealth.com,,US,2025-10-01,2030-09-30\n")).unwrap();
    let extra = format!(
        "[gateway]\ncontracts_file = \"{}\"\n[imap]\npoll_interval_secs = 2\n",
        csv.display()
    );
    let ctx = TestCtx::with_config("contracts-file", &extra);
    let u = ctx.user.clone();
    support::create(&ctx.user, "INBOX").await;
    let mut daemon = Daemon::start(&ctx, "daemon.log");
    daemon.wait_log("contracts imported", 1).await;
    let send = |i: u32, from: String| {
        let m = mail(
            &format!("cf{i}-{u}@x.example"),
            None,
            &from,
            "Playbook hangs",
            "",
            "x\n",
        );
        let user = ctx.user.clone();
        async move { append(&user, "INBOX", &m, None).await }
    };
    let kangaroo = |i: u32| format!("bruce{i}-{u}@kangaroo-logistics.com.au");

    send(1, kangaroo(1)).await;
    assert_eq!(
        wait_for_case(&ctx, &kangaroo(1)).await["entitlement"],
        "no_contract"
    );

    // A broken edit (bad date) imports nothing: still no contract.
    std::fs::write(
        &csv,
        format!("{HEADER}Kangaroo Logistics Pty Ltd,C-2001,standard,ansible,kangaroo-logistics.com.au,,AU,2025-07-01,2030-02-30\n"),
    )
    .unwrap();
    daemon.wait_log("2030-02-30", 1).await;
    send(2, kangaroo(2)).await;
    assert_eq!(
        wait_for_case(&ctx, &kangaroo(2)).await["entitlement"],
        "no_contract"
    );

    // Fixed: imported, and the next mail from that company is entitled and routed to APAC.
    std::fs::write(
        &csv,
        format!("{HEADER}Kangaroo Logistics Pty Ltd,C-2001,standard,ansible,kangaroo-logistics.com.au,,AU,2025-07-01,2030-06-30\n"),
    )
    .unwrap();
    daemon.wait_log("contracts imported", 2).await;
    send(3, kangaroo(3)).await;
    let c = wait_for_case(&ctx, &kangaroo(3)).await;
    assert_eq!(
        (c["entitlement"].as_str(), c["queue"].as_str()),
        (Some("entitled"), Some("ansible-apac")),
        "{c:#}"
    );
    let listed: Value = serde_json::from_str(&ok(ctx
        .casegate(&["contracts", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "an upsert: the first file's contract stays: {listed:#}"
    );
    assert_eq!(daemon.stop().await.code(), Some(0));
}
