//! SLA clocks end to end: one warning and one breach mail for a case, exactly once
//! each, with the daemon restarted in between (real Dovecot, SMTP sink and SQLite).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::ok;
use support::mail::mail_to_support;
use support::{TestCtx, append, smtp_received};

struct Daemon(Child);

impl Daemon {
    fn start(ctx: &TestCtx) -> Daemon {
        Daemon(
            ctx.casegate(&["run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                assert!(s.success(), "daemon exit {s:?}");
                return;
            }
            assert!(Instant::now() < deadline, "daemon did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alerts(rcpt: &str, kind: &str) -> usize {
    smtp_received(rcpt)
        .iter()
        .filter(|m| {
            let text = String::from_utf8_lossy(&m.raw);
            text.contains("[Case #00000001]") && text.to_lowercase().contains(kind)
        })
        .count()
}

async fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_warning_and_a_breach_arrive_exactly_once_across_a_restart() {
    let user = support::unique_user("sla");
    let engineer = format!("{user}-eng@vendor.example");
    let leads = format!("{user}-leads@vendor.example");
    let extra = format!(
        "[sla]\nwarn_percent = 50\n\
         [sla.policies.premium]\nsev1 = {{ initial = \"1m\", clock = \"24x7\" }}\nsev2 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
         sev3 = {{ initial = \"1m\", clock = \"24x7\" }}\nsev4 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
         [staff]\ndefault_escalation = \"{leads}\"\n\
         [[staff.engineers]]\naddress = \"{engineer}\"\nname = \"Test Engineer\"\nregion = \"NA\"\nqueues = [\"ansible-na\"]\n"
    );
    let ctx = TestCtx::with_config("sla", &extra);
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(&csv, "account,contract_id,tier,products,domains,contacts,country,start,end\nAcme,C-1,premium,ansible,acme.example,,US,2025-01-01,2030-12-31\n").unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    let mail = mail_to_support(
        format!("{user}@acme.example"),
        "Controller down",
        format!("{user}@acme.example"),
    )
    .body("Severity: 1\nThe controller is down.\n");
    append(&ctx.user, "INBOX", &mail, None).await;

    let daemon = Daemon::start(&ctx);
    wait_until("the warning", Duration::from_secs(60), || {
        alerts(&engineer, "warning") >= 1
    })
    .await;
    daemon.stop();

    let daemon = Daemon::start(&ctx);
    wait_until("the breach", Duration::from_secs(60), || {
        alerts(&leads, "breach") >= 1
    })
    .await;
    // Let a few more timer rounds pass: nothing may be sent twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop();
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());

    assert_eq!(alerts(&engineer, "warning"), 1);
    assert_eq!(alerts(&leads, "breach"), 1);
    let case: Value = serde_json::from_str(&ok(ctx
        .casegate(&["cases", "show", "1", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(case["sla"]["breached"], true);
    let kinds: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "sla_warning").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "sla_breached").count(),
        1,
        "{kinds:?}"
    );
    let report: Value = serde_json::from_str(&ok(ctx
        .casegate(&["sla", "report", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(report["attainment"][0]["missed"], 1);
    assert_eq!(report["breached"].as_array().unwrap().len(), 1);
}

/// Issue 12: the Japanese SLA mails printed `お客様　： 様 <...>` (the timer gave them
/// no display name and the templates no account), and engineer notifications showed only
/// the region's zone for a customer in another one (and `UTC (UTC)`, issue 20).
#[tokio::test]
async fn japanese_sla_alerts_show_the_account_and_notifications_both_zones() {
    use casegate::mail::parse::{ParseLimits, parse};
    let user = support::unique_user("sla-ja");
    let engineer = format!("{user}-eng@vendor.example");
    let leads = format!("{user}-leads@vendor.example");
    let extra = format!(
        "[sla]\nwarn_percent = 50\n\
         [sla.policies.premium]\nsev1 = {{ initial = \"1m\", clock = \"24x7\" }}\nsev2 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
         sev3 = {{ initial = \"1m\", clock = \"24x7\" }}\nsev4 = {{ initial = \"1m\", clock = \"24x7\" }}\n\
         [staff]\ndefault_escalation = \"{leads}\"\n\
         [[staff.engineers]]\naddress = \"{engineer}\"\nname = \"Sato\"\nregion = \"APAC\"\nqueues = [\"ansible-ja\"]\n"
    );
    let ctx = TestCtx::with_config("sla-ja", &extra);
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(&csv, "account,contract_id,tier,products,domains,contacts,country,start,end\n株式会社アクメ,C-1,premium,ansible,acme.co.jp,,JP,2025-01-01,2030-12-31\n").unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    let customer = format!("yamada-{user}@acme.co.jp");
    let mail = mail_to_support(
        format!("=?UTF-8?B?5bGx55SwIOWkqumDjg==?= <{customer}>"),
        "=?UTF-8?B?44K444On44OW44GM5YGc5q2i44GX44G+44GZ?=",
        format!("{user}@acme.co.jp"),
    )
    .utf8_text()
    .header("Content-Transfer-Encoding", "8bit")
    .body("重大度：2\nジョブが停止しています。ご確認をお願いいたします。\n");
    let ten_minutes_ago = chrono::Utc::now() - chrono::Duration::minutes(10);
    append(&ctx.user, "INBOX", &mail, Some(ten_minutes_ago)).await;
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());

    let text_of = |rcpt: &str, needle: &str| -> String {
        smtp_received(rcpt)
            .iter()
            .map(|m| parse(&m.raw, &ParseLimits::default()).expect("parses"))
            .find(|m| m.subject.contains(needle))
            .unwrap_or_else(|| panic!("no mail with {needle:?} to {rcpt}"))
            .text
    };
    let breach = text_of(&leads, "SLA超過");
    assert!(
        breach.contains(&format!(
            "お客様　：株式会社アクメ 山田 太郎 様 <{customer}>"
        )),
        "{breach}"
    );
    let notification = text_of(&engineer, "ジョブが停止します");
    assert!(
        notification.contains(&format!(
            "お客様　　：株式会社アクメ 山田 太郎 様 <{customer}>"
        )),
        "{notification}"
    );
    let due_line = notification
        .lines()
        .skip_while(|l| !l.contains("回答期限"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    // The test config gives APAC no zone of its own: UTC, printed once (issue 20 saw
    // `UTC (UTC)`); the customer's Tokyo time beside it.
    assert!(
        due_line.lines().next().is_some_and(|l| l.ends_with(" UTC"))
            && due_line.contains("お客様の現地時間")
            && due_line.contains("JST (Asia/Tokyo)"),
        "{due_line}"
    );
}
