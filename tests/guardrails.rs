//! Admin guardrails through the real binary: a typo in the configuration, the contracts
//! or the database URL is an error naming the file, line or key, never a silent change
//! of the service a customer gets; errors print each cause once.

mod support;

use support::cli::{import_contracts, ingest, ok, text};
use support::mail::mail_to_support;
use support::{TestCtx, casegate, repo_dir, smtp_received};

/// `ingest` one new customer mail from `from`, which must succeed.
fn ingest_customer_mail(ctx: &TestCtx, from: &str) {
    let mail = mail_to_support(
        from,
        "Playbook fails",
        format!("m-{}@acme.example", ctx.user),
    )
    .utf8_text()
    .body("The playbook fails.\nSeverity: 2\n");
    let out = ingest(ctx, &mail);
    assert!(out.status.success(), "{}", text(&out));
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const HEADER: &str = "account,contract_id,tier,products,domains,contacts,country,start,end\n";

#[test]
fn contracts_nobody_can_serve_are_refused_by_line_in_import_and_check_config() {
    let ctx = TestCtx::new("guard-contracts");
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(
        &csv,
        format!(
            "{HEADER}\
             Good,C-1,premium,ansible,good.example,,US,2025-01-01,2030-12-31\n\
             Platinum,C-2,platinum,ansible,platinum.example,,US,2025-01-01,2030-12-31\n\
             Typo,C-3,standard,ansibel,typo.example,,US,2025-01-01,2030-12-31\n\
             Nowhere,C-4,standard,ansible,nowhere.example,,XX,2025-01-01,2030-12-31\n\
             Freemail,C-5,standard,ansible,gmail.com,,US,2025-01-01,2030-12-31\n"
        ),
    )
    .unwrap();
    let out = ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = csv.display().to_string();
    let expected = [
        format!("{f}: line 3: tier \"platinum\" has no SLA policy"),
        format!("{f}: line 4: unknown product \"ansibel\""),
        format!("{f}: line 5: unknown country code \"XX\""),
        format!("{f}: line 6: domain \"gmail.com\" is a free-mail provider"),
    ];
    let t = text(&out);
    for e in &expected {
        assert!(t.contains(e), "missing {e:?} in {t}");
    }
    assert!(!t.contains("line 2:"), "the good row is fine: {t}");
    // Nothing reached the database: it was not even created.
    assert!(!ctx.db_path.exists());

    // The same file as gateway.contracts_file: check-config names the same rows.
    let with_file = TestCtx::with_config(
        "guard-contracts-file",
        &format!("[gateway]\ncontracts_file = \"{f}\"\n"),
    );
    let out = with_file.casegate(&["check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    for e in &expected {
        assert!(t.contains(e), "check-config: missing {e:?} in {t}");
    }
    assert!(!t.contains("line 2:"), "the good row is fine: {t}");
}

#[test]
fn queues_nobody_watches_are_a_warning_that_strict_refuses() {
    // The test config has no engineers: every routed queue notifies nobody.
    let ctx = TestCtx::new("guard-queues");
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("warning: ")
            && t.contains("staff.engineers: queue \"satellite-na\" gets mail from the routing rules but no engineer works it"),
        "{t}"
    );
    let strict = ctx
        .casegate(&["check-config", "--strict"])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    assert!(text(&strict).contains("error: "), "{}", text(&strict));

    // An engineer for some queues and an escalation address for the rest: clean.
    let watched = TestCtx::with_config(
        "guard-queues-ok",
        "[staff]\n[staff.escalation]\nsatellite-ja = \"leads@vendor.example\"\nsatellite-apac = \"leads@vendor.example\"\n\
         satellite-emea = \"leads@vendor.example\"\nsatellite-na = \"leads@vendor.example\"\n\
         [[staff.engineers]]\naddress = \"sato@vendor.example\"\nname = \"Sato\"\nregion = \"APAC\"\n\
         queues = [\"ansible-ja\", \"ansible-apac\", \"ansible-emea\", \"ansible-na\"]\n",
    );
    let out = watched
        .casegate(&["check-config", "--strict"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_queue_nobody_works_tells_its_escalation_address_about_new_cases() {
    let leads = format!("leads-{}@vendor.example", support::unique_user("guard-esc"));
    let ctx = TestCtx::with_config(
        "guard-escalation",
        &format!("[staff]\n[staff.escalation]\nansible-na = \"{leads}\"\n"),
    );
    ok(import_contracts(
        &ctx,
        "c.csv",
        &format!("{HEADER}Acme,C-1,premium,ansible,acme.example,,US,2025-01-01,2030-12-31\n"),
        &[],
    ));
    ingest_customer_mail(&ctx, &format!("{}@acme.example", ctx.user));
    assert_eq!(support::cli::show(&ctx, "1")["queue"], "ansible-na");
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    let told = smtp_received(&leads);
    assert_eq!(
        told.len(),
        1,
        "the new case is told to the queue's escalation address"
    );
    assert!(String::from_utf8_lossy(&told[0].raw).contains("Case #00000001"));
}

#[test]
fn the_shipped_configuration_passes_strict() {
    let out = casegate()
        .arg("--config")
        .arg(repo_dir().join("config/casegate.toml"))
        .args(["check-config", "--strict"])
        .env("CASEGATE__IMAP__PASSWORD", "x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}

#[test]
fn values_that_were_accepted_without_a_word_are_errors() {
    let ctx = TestCtx::new("guard-values");
    // A template folder whose English acknowledgement has a bare `Subject:`.
    let templates = ctx.dir.path().join("templates");
    for lang in ["en", "ja"] {
        std::fs::create_dir_all(templates.join(lang)).unwrap();
        for entry in std::fs::read_dir(repo_dir().join("templates").join(lang)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, templates.join(lang).join(p.file_name().unwrap())).unwrap();
        }
    }
    let ack = templates.join("en/acknowledgement.txt");
    let body = std::fs::read_to_string(&ack).unwrap();
    let rest = body.split_once('\n').unwrap().1;
    std::fs::write(&ack, format!("Subject:\n{rest}")).unwrap();
    std::fs::write(ctx.dir.path().join("pw.txt"), "secret\n").unwrap();
    let config = support::merge_toml(
        &std::fs::read_to_string(&ctx.config).unwrap(),
        &format!(
            "[gateway]\ntemplates_dir = \"{}\"\nfree_mail_domains = \"gmail.com,,yahoo.co.jp\"\n\
             [imap]\npassword_file = \"pw.txt\"\n\
             [sla.regions.EMAE]\ntime_zone = \"Europe/London\"\n",
            templates.display()
        ),
    );
    std::fs::write(&ctx.config, config).unwrap();
    let out = ctx.casegate(&["check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    let f = ctx.config.display().to_string();
    for expected in [
        format!(
            "{f}: imap.password_file: both imap.password and imap.password_file are set: keep one of them"
        ),
        format!("{f}: gateway.free_mail_domains[1]: empty item"),
        format!(
            "{f}: sla.regions.EMAE: unknown region \"EMAE\": the routing file has APAC, EMEA, NA"
        ),
    ] {
        assert!(t.contains(&expected), "missing {expected:?} in {t}");
    }
    assert!(
        t.contains(&ack.display().to_string()) && t.contains("the subject is empty"),
        "{t}"
    );
}

#[test]
fn environment_overrides_of_list_keys_are_blamed_on_the_environment() {
    let ctx = TestCtx::new("guard-env-list");
    let out = ctx
        .casegate(&["check-config"])
        .env("CASEGATE__SLA__WEEKEND_CREW_SEVERITIES", "1,7")
        .env("CASEGATE__GATEWAY__FREE_MAIL_DOMAINS", "gmail.com,")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(
            "the environment: sla.weekend_crew_severities: expected severities 1 to 4, found \"7\""
        ),
        "{t}"
    );
    assert!(
        t.contains("the environment: gateway.free_mail_domains[1]: empty item"),
        "{t}"
    );
    assert!(!t.contains("casegate.toml: sla."), "{t}");
}

#[test]
fn a_mistyped_sqlite_path_creates_nothing_and_read_commands_say_the_database_is_missing() {
    let ctx = TestCtx::new("guard-sqlite");
    // Read commands on a database that was never created: an error naming it, and no
    // empty database left behind.
    let db = ctx.db_path.display().to_string();
    for args in [
        &["cases", "list"][..],
        &["contracts", "list"],
        &["sla", "report"],
        &["report"],
        &["quarantine", "list"],
        &["quarantine", "show", "1"],
        &["quarantine", "discard", "1"],
        &["quarantine", "replay"],
        &["cases", "show", "1"],
        &["cases", "attachment", "1"],
        &["cases", "close", "1"],
        &["contracts", "end", "C-1"],
    ] {
        let out = ctx.casegate(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("the database {db} does not exist")),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!ctx.db_path.exists(), "{args:?} created the database");
    }
    // A dry run changes nothing, so it creates no database either: everything is new.
    let dry = ok(import_contracts(
        &ctx,
        "c.csv",
        &format!("{HEADER}Acme,C-1,premium,ansible,acme.example,,US,2025-01-01,2030-12-31\n"),
        &["--replace", "--dry-run"],
    ));
    assert!(dry.contains("+ new: C-1 (Acme)"), "{dry}");
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    assert!(
        !ctx.db_path.exists(),
        "contracts import --dry-run created the database"
    );
    // A typo in the folder: not even `run` creates it.
    let typo = ctx.dir.path().join("nonexistent-dir").join("x.db");
    let out = ctx
        .casegate(&["run", "--once"])
        .env(
            "CASEGATE__DATABASE__URL",
            format!("sqlite://{}", typo.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the folder {} of the database does not exist",
            typo.parent().unwrap().display()
        )),
        "{}",
        text(&out)
    );
    assert!(!typo.parent().unwrap().exists());
    // `ingest` creates the database in a folder that exists; then reads work.
    ingest_customer_mail(&ctx, "a@acme.example");
    assert!(ctx.db_path.exists());
    ok(ctx.casegate(&["cases", "list"]).output().unwrap());
}

#[test]
fn run_once_with_imap_down_still_sends_the_outbox_and_names_the_cause_once() {
    let port = closed_port();
    let ctx = TestCtx::with_config("guard-imap-down", &format!("[imap]\nport = {port}\n"));
    let customer = format!("{}@acme.example", ctx.user);
    ingest_customer_mail(&ctx, &customer);
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The outbox still went out: the customer has the refusal (no contract).
    assert_eq!(smtp_received(&customer).len(), 1, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outbox: 1 sent"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("casegate: run --once: mailbox: "))
        .unwrap_or_else(|| panic!("no line naming the mailbox: {stderr}"));
    assert!(
        line.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{line}"
    );
    assert_eq!(
        stderr.matches("Connection refused").count(),
        1,
        "each cause once (also not in a log line besides): {stderr}"
    );
}

#[test]
fn a_database_that_is_down_names_the_server_and_what_refused() {
    let port = closed_port();
    let ctx = TestCtx::with_config(
        "guard-pg-down",
        &format!("[database]\nurl = \"postgres://postgres@127.0.0.1:{port}/test\"\n"),
    );
    let out = ctx.casegate(&["cases", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "cannot reach PostgreSQL at 127.0.0.1:{port}: the connection was refused or failed: Connection refused"
        )),
        "{t}"
    );
    assert!(!t.contains("pool timed out"), "{t}");
    assert_eq!(t.matches("Connection refused").count(), 1, "{t}");
}

#[test]
fn sla_report_at_takes_a_time_or_a_date_and_says_so() {
    let ctx = TestCtx::new("guard-sla-at");
    ingest_customer_mail(&ctx, "a@acme.example");
    let bad = ctx
        .casegate(&["sla", "report", "--at", "tomorrow"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("expected an RFC 3339 time such as 2026-12-01T09:30:00Z, or a date such as 2026-12-01 (midnight UTC)"),
        "{}",
        text(&bad)
    );
    let date = ok(ctx
        .casegate(&["sla", "report", "--at", "2026-12-01"])
        .output()
        .unwrap());
    assert!(
        date.starts_with(
            "SLA report at 2026-12-01T00:00:00+00:00 (a date is taken as midnight UTC)"
        ),
        "{date}"
    );
    let time = ok(ctx
        .casegate(&["sla", "report", "--at", "2026-12-01T09:30:00+09:00"])
        .output()
        .unwrap());
    assert!(
        time.starts_with("SLA report at 2026-12-01T00:30:00+00:00\n"),
        "{time}"
    );
}

#[test]
fn log_lines_name_cases_by_their_number() {
    let ctx = TestCtx::new("guard-log-case");
    ingest_customer_mail(&ctx, &format!("{}@acme.example", ctx.user));
    let out = ctx.casegate(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let sent = stderr
        .lines()
        .find(|l| l.contains("mail sent"))
        .unwrap_or_else(|| panic!("no 'mail sent' line: {stderr}"));
    assert!(sent.contains("case=00000001"), "{sent}");
    assert!(!stderr.contains("case=Some("), "{stderr}");
}
