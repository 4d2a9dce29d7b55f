//! Issue 15: several mailboxes and several instances on one PostgreSQL database, real
//! `casegate run` processes against the real Dovecot and SMTP sink. Every mail becomes
//! one case with one acknowledgement while an instance is killed (`kill -9`) mid-drain
//! and its mailbox is taken over within the takeover time; a holder paused (SIGSTOP)
//! past its lease has its late commit refused by the fencing check; three SLA timers
//! warn and breach exactly once; on SQLite a second daemon is refused; and threading and
//! dedup work across mailboxes.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{PgPool, Row};
use support::cli::ok;
use support::daemon::Daemon;
use support::pg::PgDatabase;
use support::routing::{import, mail_to};
use support::{TestCtx, TestEnv, count, unique_user};

/// Lease time in these tests: short, so that takeovers happen within seconds.
const TAKEOVER_MS: u64 = 2000;

const CONTRACTS: &str = "account,contract_id,tier,products,domains,contacts,country,start,end\n\
     Rheinwerk Automation GmbH,C-3001,premium,ansible;satellite,rheinwerk.de,,DE,2025-01-01,2030-12-31\n";

/// A config on `pg` with the `[imap]` mailbox (named INBOX, support@example.com) and,
/// with `jp`, a second account as `[[mailboxes]]` "jp" (support-jp@example.com).
/// Returns the context and the second account's user.
fn cluster_ctx(tag: &str, pg: &str, jp: bool, extra: &str) -> (TestCtx, String) {
    let env = TestEnv::get();
    let user2 = unique_user(&format!("{tag}-jp"));
    let second = if jp {
        format!(
            "[[mailboxes]]\nname = \"jp\"\nsupport_address = \"support-jp@example.com\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user2}\"\n\
             password = \"{}\"\nbatch_size = 50\n",
            env.imap_port, env.password
        )
    } else {
        String::new()
    };
    let ctx = TestCtx::with_config(
        tag,
        &format!(
            "[database]\nurl = \"{pg}\"\nmax_connections = 4\n\
             [cluster]\ntakeover_ms = {TAKEOVER_MS}\n\
             [imap]\nbatch_size = 50\n[smtp]\ntimeout_secs = 1\n{extra}\n{second}"
        ),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    (ctx, user2)
}

fn sender(ctx: &TestCtx, mailbox: &str, i: usize) -> String {
    format!("{mailbox}{i}-{}@rheinwerk.de", ctx.user)
}

/// `n` new-case mails from distinct senders (each gets its acknowledgement: the
/// per-sender rate limit never applies) to `to`.
fn mails(ctx: &TestCtx, mailbox: &str, to: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let from = sender(ctx, mailbox, i);
            mail_to(
                to,
                &format!("{mailbox}-{i}-{}@rheinwerk.de", ctx.user),
                None,
                &from,
                &format!("Agent stops after the upgrade ({mailbox} {i})"),
                "",
                "The agent stops every night after the upgrade.\nSeverity: 3\n",
            )
        })
        .collect()
}

/// APPEND every mail on one IMAP connection (a connection per mail is much slower).
async fn append_all(user: &str, raws: Vec<Vec<u8>>) {
    let mut s = support::imap::connect(user).await;
    for raw in raws {
        s.append("INBOX", None, None, &raw)
            .await
            .unwrap_or_else(|e| panic!("APPEND to {user}: {e}"));
    }
    let _ = s.logout().await;
}

async fn scalar(db: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// The live lease of `mailbox`: (holder, token), if held and unexpired.
async fn holder(db: &PgPool, mailbox: &str) -> Option<(String, i64)> {
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "SELECT holder, token FROM mailbox_leases WHERE mailbox = $1 AND holder IS NOT NULL AND expires_at > $2",
    )
    .bind(mailbox)
    .bind(now)
    .fetch_optional(db)
    .await
    .unwrap()
    .map(|r| (r.get(0), r.get(1)))
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which daemon an instance name (`<host>-<pid>`) is.
fn is_daemon(name: &str, d: &Daemon) -> bool {
    name.ends_with(&format!("-{}", d.child.id()))
}

/// Acknowledgements per sender at the sink (by file count).
fn acks_at_sink(ctx: &TestCtx, mailbox: &str, n: usize) -> BTreeMap<String, usize> {
    let sink = TestEnv::get().sink();
    (0..n)
        .map(|i| {
            let to = sender(ctx, mailbox, i);
            let files = sink.messages(&to).len();
            (to, files)
        })
        .collect()
}

/// Checks on the database: `n` cases, each with exactly one inbound message and one
/// acknowledgement row, every acknowledgement sent.
async fn assert_once_each(db: &PgPool, n: i64) {
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM cases").await, n);
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM messages WHERE direction = 'in'").await,
        n
    );
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM (SELECT case_id FROM messages WHERE direction = 'in' GROUP BY case_id HAVING COUNT(*) <> 1) x"
        )
        .await,
        0,
        "a case with more than one message"
    );
    let kinds: Vec<(String, String, i64)> = sqlx::query(
        "SELECT kind, recipients, COUNT(*) FROM outbox GROUP BY kind, recipients ORDER BY 3 DESC LIMIT 5",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'"
        )
        .await,
        n,
        "{kinds:?}"
    );
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(DISTINCT case_id) FROM outbox WHERE kind = 'acknowledgement'"
        )
        .await,
        n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_two_mailboxes_kill_9_mid_drain_nothing_lost_or_doubled() {
    const PER_MAILBOX: usize = 1500;
    let pg = PgDatabase::create().await;
    let (ctx, user2) = cluster_ctx("cluster", &pg.url, true, "");
    let total = (2 * PER_MAILBOX) as i64;
    let first = mails(&ctx, "en", "support@example.com", PER_MAILBOX);
    let second = mails(&ctx, "jp", "support-jp@example.com", PER_MAILBOX);
    tokio::join!(append_all(&ctx.user, first), append_all(&user2, second));
    let db = PgPool::connect(&pg.url).await.unwrap();

    let started = Instant::now();
    let mut daemons: Vec<Option<Daemon>> = ["a", "b", "c"]
        .iter()
        .map(|n| Some(Daemon::start(&ctx, &format!("{n}.log"))))
        .collect();
    // Spread: the two mailboxes are held by two different instances.
    wait_for(
        "both mailboxes held by different instances",
        Duration::from_secs(20),
        || async {
            match (holder(&db, "INBOX").await, holder(&db, "jp").await) {
                (Some((a, _)), Some((b, _))) => a != b,
                _ => false,
            }
        },
    )
    .await;
    // Mid-drain: some cases, far from all.
    wait_for("the drain to start", Duration::from_secs(60), || async {
        scalar(&db, "SELECT COUNT(*) FROM cases").await >= total / 10
    })
    .await;
    let (victim_name, token) = holder(&db, "jp").await.expect("jp is held");
    let victim = daemons
        .iter()
        .position(|d| d.as_ref().is_some_and(|d| is_daemon(&victim_name, d)))
        .expect("the holder is one of the three");
    let at_kill = scalar(&db, "SELECT COUNT(*) FROM cases").await;
    assert!(at_kill < total, "the drain ended before the kill");
    let mut killed = daemons[victim].take().unwrap();
    killed.child.kill().expect("kill -9");
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    wait_for(
        "another instance to take jp over",
        Duration::from_secs(15),
        || async {
            holder(&db, "jp")
                .await
                .is_some_and(|(h, _)| h != victim_name)
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    let (new_holder, new_token) = holder(&db, "jp").await.unwrap();
    assert!(new_token > token, "a takeover gets a new fencing token");
    // The lease time, plus one renewal round of the taker (a third of it), plus slack.
    let bound = Duration::from_millis(TAKEOVER_MS + TAKEOVER_MS / 3 + 1000);
    assert!(
        takeover <= bound,
        "takeover took {takeover:?} (bound {bound:?})"
    );

    wait_for("every mail filed", Duration::from_secs(240), || async {
        scalar(&db, "SELECT COUNT(*) FROM cases").await >= total
    })
    .await;
    let drained = started.elapsed();
    // The killed instance's one claimed row returns after its outbox lease (38 s here).
    wait_for(
        "every acknowledgement sent",
        Duration::from_secs(120),
        || async { scalar(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await == 0 },
    )
    .await;
    assert_once_each(&db, total).await;
    for (user, mailbox) in [(&ctx.user, "en"), (&user2, "jp")] {
        assert_eq!(
            count(user, "INBOX").await,
            0,
            "{mailbox}: inbox not drained"
        );
        assert_eq!(count(user, "Processed").await, PER_MAILBOX);
    }
    let mut doubled = 0;
    for mailbox in ["en", "jp"] {
        let acks = acks_at_sink(&ctx, mailbox, PER_MAILBOX);
        let missing: Vec<_> = acks.iter().filter(|(_, n)| **n == 0).collect();
        assert!(missing.is_empty(), "no acknowledgement: {missing:?}");
        doubled += acks.values().filter(|n| **n > 1).count();
        assert!(
            acks.values().all(|n| *n <= 2),
            "an acknowledgement arrived three times"
        );
    }
    // The outbox's documented window: at most the one mail on the wire at the kill.
    assert!(
        doubled <= 1,
        "{doubled} acknowledgements doubled after one kill"
    );

    // `casegate status` shows who holds what.
    let status: Value =
        serde_json::from_str(&ok(ctx.casegate(&["status", "--json"]).output().unwrap())).unwrap();
    let jp = status["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mailbox"] == "jp")
        .unwrap()
        .clone();
    assert_eq!(jp["holder"], new_holder.as_str(), "{status:#}");
    assert!(jp["last_commit_at"].is_string(), "{status:#}");
    assert_eq!(status["outbox"]["pending"], 0, "{status:#}");
    let alive: Vec<&Value> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["alive"] == true)
        .collect();
    assert_eq!(alive.len(), 2, "{status:#}");
    let text = ok(ctx.casegate(&["status"]).output().unwrap());
    assert!(
        text.contains("2 instance(s) alive") && text.contains("jp"),
        "{text}"
    );

    for d in daemons.iter_mut().filter_map(Option::take) {
        assert!(d.stop().await.success());
    }
    // A clean stop releases its leases and its instance row.
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM mailbox_leases WHERE holder IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM instances").await, 1);
    eprintln!(
        "cluster: {total} mails over 2 mailboxes and 3 instances filed in {:.1} s ({:.0} cases/s), \
         jp taken over {} ms after kill -9 (token {token} -> {new_token}); {doubled} acknowledgement(s) doubled",
        drained.as_secs_f64(),
        total as f64 / drained.as_secs_f64(),
        takeover.as_millis()
    );
    db.close().await;
    pg.drop().await;
}

/// Whether process `pid` is stopped (state `T` in /proc).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        == Some('T')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_has_its_late_commit_refused() {
    const MAILS: usize = 30;
    let pg = PgDatabase::create().await;
    let (ctx, _) = cluster_ctx("fencing", &pg.url, false, "");
    append_all(&ctx.user, mails(&ctx, "en", "support@example.com", MAILS)).await;
    let db = PgPool::connect(&pg.url).await.unwrap();

    // The first instance stops itself with its batch written, right before the fencing
    // check and the commit (as a pause of the whole machine would catch it).
    let mut a = Daemon::start_with_env(
        &ctx,
        "a.log",
        &[("CASEGATE_FAILPOINT", "stop:before_fence")],
    );
    let pid = a.child.id();
    wait_for(
        "the first instance to stop before its commit",
        Duration::from_secs(30),
        || async { stopped(pid) },
    )
    .await;
    let mut b = Daemon::start(&ctx, "b.log");
    wait_for(
        "the second instance to take the lease over",
        Duration::from_secs(15),
        || async {
            holder(&db, "INBOX")
                .await
                .is_some_and(|(h, _)| is_daemon(&h, &b))
        },
    )
    .await;
    let (_, token) = holder(&db, "INBOX").await.unwrap();
    assert!(token >= 2, "a takeover gets a new fencing token: {token}");
    a.signal("CONT");
    wait_for("every mail filed", Duration::from_secs(60), || async {
        scalar(&db, "SELECT COUNT(*) FROM cases").await >= MAILS as i64
    })
    .await;
    a.wait_log("was taken over by another instance; nothing committed", 1)
        .await;
    a.wait_log("lease lost to another instance", 1).await;
    wait_for(
        "every acknowledgement sent",
        Duration::from_secs(60),
        || async { scalar(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await == 0 },
    )
    .await;
    // Give a late commit every chance to show up: nothing may be doubled.
    tokio::time::sleep(Duration::from_millis(TAKEOVER_MS)).await;
    assert_once_each(&db, MAILS as i64).await;
    let acks = acks_at_sink(&ctx, "en", MAILS);
    assert!(acks.values().all(|n| *n == 1), "{acks:?}");
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
    b.assert_running();
    a.assert_running();
    assert!(b.stop().await.success());
    assert!(a.stop().await.success());
    db.close().await;
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sla_timers_warn_and_breach_exactly_once() {
    const CASES: usize = 12;
    let pg = PgDatabase::create().await;
    let user = unique_user("cluster-sla");
    let engineer = format!("{user}-eng@vendor.example");
    let leads = format!("{user}-leads@vendor.example");
    let extra = format!(
        "[sla]\nwarn_percent = 50\n\
         [sla.policies.premium]\nsev1 = {{ initial = \"2m\", clock = \"24x7\" }}\nsev2 = {{ initial = \"2m\", clock = \"24x7\" }}\n\
         sev3 = {{ initial = \"2m\", clock = \"24x7\" }}\nsev4 = {{ initial = \"2m\", clock = \"24x7\" }}\n\
         [staff]\ndefault_escalation = \"{leads}\"\n\
         [[staff.engineers]]\naddress = \"{engineer}\"\nname = \"Test Engineer\"\nregion = \"EMEA\"\nqueues = [\"ansible-emea\"]\n"
    );
    let (ctx, _) = cluster_ctx("cluster-sla", &pg.url, false, &extra);
    // Received 70 s ago: with a 2-minute clock the warning (at 60 s) is due at once and
    // the breach 50 s from now (a timer sleeps at most 30 s before it sees a new clock).
    let received = chrono::Utc::now() - chrono::Duration::seconds(70);
    let mut s = support::imap::connect(&ctx.user).await;
    for raw in mails(&ctx, "sla", "support@example.com", CASES) {
        s.append("INBOX", None, Some(&support::imap_date(received)), &raw)
            .await
            .unwrap();
    }
    let _ = s.logout().await;
    let db = PgPool::connect(&pg.url).await.unwrap();
    let daemons: Vec<Daemon> = ["a", "b", "c"]
        .iter()
        .map(|n| Daemon::start(&ctx, &format!("{n}.log")))
        .collect();
    wait_for("every breach", Duration::from_secs(90), || async {
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'sla_breached'",
        )
        .await
            >= CASES as i64
    })
    .await;
    // More timer rounds on all three: nothing may be recorded or sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts: Vec<String> = daemons
        .iter()
        .flat_map(|d| {
            d.log()
                .lines()
                .filter(|l| l.contains("SLA alert"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    wait_for("every alert sent", Duration::from_secs(60), || async {
        scalar(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await == 0
    })
    .await;
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'sla_warning'"
        )
        .await,
        CASES as i64,
        "{alerts:#?}"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'sla_breached'"
        )
        .await,
        CASES as i64
    );
    let sink = TestEnv::get().sink();
    let subjects = |rcpt: &str, word: &str| {
        sink.messages(rcpt)
            .iter()
            .filter(|m| String::from_utf8_lossy(m).to_lowercase().contains(word))
            .count()
    };
    assert_eq!(
        subjects(&engineer, "warning"),
        CASES,
        "warnings to the engineer"
    );
    assert_eq!(
        subjects(&leads, "breach"),
        CASES,
        "breaches to the escalation address"
    );
    // Each timer did part of the work or none; together exactly once each.
    let timers_that_alerted = daemons
        .iter()
        .filter(|d| d.log().contains("SLA alert"))
        .count();
    eprintln!(
        "cluster SLA: {CASES} warnings and {CASES} breaches, alerted by {timers_that_alerted} of 3 timers"
    );
    for d in daemons {
        assert!(d.stop().await.success());
    }
    db.close().await;
    pg.drop().await;
}

#[tokio::test]
async fn a_second_daemon_on_one_sqlite_file_is_refused_naming_the_file() {
    let ctx = TestCtx::new("cluster-sqlite");
    let mut first = Daemon::start(&ctx, "first.log");
    first.wait_log("casegate starting", 1).await;
    let out = ctx.casegate(&["run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second daemon ran: {err}");
    assert!(
        err.contains(&ctx.db_path.display().to_string())
            && err.contains("only one may run on a SQLite database"),
        "{err}"
    );
    first.assert_running();
    assert!(first.stop().await.success());
}

/// A customer who writes to two of our addresses about one case stays on one case, and
/// one mail delivered to two of our mailboxes is one case (SQLite: one instance reads
/// both mailboxes, no leases).
#[tokio::test]
async fn threading_and_dedup_work_across_mailboxes() {
    let env = TestEnv::get();
    let user2 = unique_user("cross-jp");
    let ctx = TestCtx::with_config(
        "cross",
        &format!(
            "[[mailboxes]]\nname = \"jp\"\nsupport_address = \"support-jp@example.com\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user2}\"\npassword = \"{}\"\n",
            env.imap_port, env.password
        ),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    let from = format!("kai-{}@rheinwerk.de", ctx.user);
    let first = mail_to(
        "support@example.com",
        &format!("q1-{}@rheinwerk.de", ctx.user),
        None,
        &from,
        "Agent stops after the upgrade",
        "",
        "The agent stops every night.\nSeverity: 3\n",
    );
    append_all(&ctx.user, vec![first]).await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    assert!(
        summary.contains("mailbox INBOX: processed 1 mail(s): 1 new case(s)"),
        "{summary}"
    );
    // The follow-up goes to the other address, with the case tag; and one more mail is
    // delivered to both mailboxes (one Message-ID).
    let follow_up = mail_to(
        "support-jp@example.com",
        &format!("q2-{}@rheinwerk.de", ctx.user),
        None,
        &from,
        "Re: [Case #00000001] Agent stops after the upgrade",
        "",
        "Here are the logs you asked for.\n",
    );
    let both = mail_to(
        "support@example.com, support-jp@example.com",
        &format!("q3-{}@rheinwerk.de", ctx.user),
        None,
        &format!("eva-{}@rheinwerk.de", ctx.user),
        "Satellite sync fails",
        "",
        "The capsule sync fails.\nSeverity: 3\n",
    );
    append_all(&user2, vec![follow_up, both.clone()]).await;
    append_all(&ctx.user, vec![both]).await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    let cases = support::cli::cases(&ctx);
    assert_eq!(cases.len(), 2, "{summary}\n{cases:#?}");
    let first_case = support::cli::show(&ctx, "00000001");
    let inbound = first_case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(
        inbound, 2,
        "the follow-up to the other address joins the case"
    );
    for user in [&ctx.user, &user2] {
        assert_eq!(count(user, "INBOX").await, 0);
    }
    assert!(summary.contains("1 duplicate(s)"), "{summary}");
}

/// Per-mailbox routing defaults: mail read from the "jp" mailbox (product satellite,
/// queue satellite-ja, language ja) that names no product and has no prose of its own
/// takes them; the same mail to the other mailbox takes the routing file's defaults; and
/// a mail that names its product and is written in English keeps both.
#[tokio::test(flavor = "multi_thread")]
async fn a_mailbox_default_product_queue_and_language_route_its_mail() {
    let env = TestEnv::get();
    let user2 = unique_user("defaults-jp");
    let ctx = TestCtx::with_config(
        "mbdefaults",
        &format!(
            "[[mailboxes]]\nname = \"jp\"\nsupport_address = \"support-jp@example.com\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user2}\"\npassword = \"{}\"\n\
             product = \"satellite\"\nqueue = \"satellite-ja\"\nlanguage = \"ja\"\n",
            env.imap_port, env.password
        ),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    let log = "ERROR 0x80004005\n/var/log/messages:42\n";
    let mail = |to: &str, n: u32, subject: &str, body: &str| {
        mail_to(
            to,
            &format!("d{n}-{}@rheinwerk.de", ctx.user),
            None,
            &format!("ops{n}-{}@rheinwerk.de", ctx.user),
            subject,
            "",
            body,
        )
    };
    append_all(
        &ctx.user,
        vec![mail("support@example.com", 1, "0x80004005", log)],
    )
    .await;
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    append_all(
        &user2,
        vec![mail("support-jp@example.com", 2, "0x80004005", log)],
    )
    .await;
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    append_all(
        &user2,
        vec![mail(
            "support-jp@example.com",
            3,
            "Playbook fails",
            "Our playbook fails on every host since Monday.\n",
        )],
    )
    .await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    let routed = |n: &str| {
        let c = support::cli::show(&ctx, n);
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        (s("product"), s("queue"), s("language"))
    };
    let owned = |p: &str, q: &str, l: &str| (p.to_string(), q.to_string(), l.to_string());
    assert_eq!(
        routed("00000001"),
        owned("ansible", "ansible-emea", "en"),
        "to support@: the routing file's defaults\n{summary}"
    );
    assert_eq!(
        routed("00000002"),
        owned("satellite", "satellite-ja", "ja"),
        "to support-jp@: the mailbox's defaults"
    );
    assert_eq!(
        routed("00000003"),
        owned("ansible", "ansible-emea", "en"),
        "a keyword and English prose are more specific than the mailbox's defaults"
    );
}

/// `quarantine replay` reads every mailbox's quarantine folder, not only `[imap]`'s: a
/// mail too large for the limit is held in the "jp" mailbox's Quarantine, and after the
/// admin raises the limit the replay files it with that mailbox's routing defaults and
/// moves it to that mailbox's Processed folder; the `[imap]` mailbox's held mail too.
#[tokio::test(flavor = "multi_thread")]
async fn quarantine_replay_reads_every_mailboxs_quarantine_folder() {
    let env = TestEnv::get();
    let user2 = unique_user("replay-jp");
    let jp = format!(
        "[[mailboxes]]\nname = \"jp\"\nsupport_address = \"support-jp@example.com\"\n\
         host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user2}\"\npassword = \"{}\"\n\
         product = \"satellite\"\nqueue = \"satellite-ja\"\nlanguage = \"ja\"\n",
        env.imap_port, env.password
    );
    let ctx = TestCtx::with_config(
        "replayjp",
        &format!("[gateway]\nmax_message_bytes = 2048\n{jp}"),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    let big = |to: &str, n: u32| {
        mail_to(
            to,
            &format!("big{n}-{}@rheinwerk.de", ctx.user),
            None,
            &format!("ops{n}-{}@rheinwerk.de", ctx.user),
            "0x80004005",
            "",
            &"ERROR 0x80004005 /var/log/messages:42\n".repeat(100),
        )
    };
    append_all(&ctx.user, vec![big("support@example.com", 1)]).await;
    append_all(&user2, vec![big("support-jp@example.com", 2)]).await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    assert!(
        summary.contains("mailbox INBOX: processed 1 mail(s): 0 new case(s), 0 added to existing cases, 0 duplicate(s), 1 quarantined")
            && summary.contains("mailbox jp: processed 1 mail(s): 0 new case(s), 0 added to existing cases, 0 duplicate(s), 1 quarantined"),
        "{summary}"
    );
    assert_eq!(count(&user2, "Quarantine").await, 1);

    support::write_config_with(
        ctx.dir.path(),
        &ctx.user,
        &ctx.db_path,
        &format!("[gateway]\nmax_message_bytes = 1048576\n{jp}"),
    );
    let replay = ok(ctx.casegate(&["quarantine", "replay"]).output().unwrap());
    assert!(replay.contains("2 released, 0 still held"), "{replay}");
    for user in [&ctx.user, &user2] {
        assert_eq!(count(user, "Quarantine").await, 0, "{user}");
        assert_eq!(count(user, "Processed").await, 1, "{user}");
    }
    let routed: Vec<(String, String)> = ["00000001", "00000002"]
        .iter()
        .map(|n| {
            let c = support::cli::show(&ctx, n);
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("customer"), s("queue"))
        })
        .collect();
    let queue_of = |who: &str| {
        routed
            .iter()
            .find(|(from, _)| from.starts_with(who))
            .map(|(_, q)| q.clone())
            .unwrap_or_else(|| panic!("no case from {who}: {routed:?}"))
    };
    assert_eq!(
        queue_of("ops1-"),
        "ansible-emea",
        "[imap]: the routing file's defaults"
    );
    assert_eq!(
        queue_of("ops2-"),
        "satellite-ja",
        "jp: the mailbox's defaults"
    );
}

/// The value of header `name` in a raw mail (first occurrence, unfolded).
fn header_of(raw: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ");
    let prefix = format!("{}:", name.to_lowercase());
    head.lines()
        .find(|l| l.to_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
        .unwrap_or_else(|| panic!("no {name} header in:\n{head}"))
}

/// A case opened from the "jp" mailbox remembers its address: the acknowledgement goes
/// out From `support-jp@`, and the customer's reply to it threads onto the case. A case
/// opened from `[imap]` is still acknowledged from `gateway.support_address`.
#[tokio::test(flavor = "multi_thread")]
async fn a_case_opened_via_another_mailbox_is_answered_from_its_address() {
    let env = TestEnv::get();
    let user2 = unique_user("from-jp");
    let ctx = TestCtx::with_config(
        "mbfrom",
        &format!(
            "[[mailboxes]]\nname = \"jp\"\nsupport_address = \"support-jp@example.com\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user2}\"\npassword = \"{}\"\n",
            env.imap_port, env.password
        ),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    let jp_customer = format!("aiko-{}@rheinwerk.de", ctx.user);
    let en_customer = format!("ben-{}@rheinwerk.de", ctx.user);
    let question = |to: &str, from: &str, n: u32| {
        mail_to(
            to,
            &format!("f{n}-{}@rheinwerk.de", ctx.user),
            None,
            from,
            "Agent stops after the upgrade",
            "",
            "The agent stops every night since the upgrade.\nSeverity: 3\n",
        )
    };
    append_all(
        &user2,
        vec![question("support-jp@example.com", &jp_customer, 1)],
    )
    .await;
    append_all(
        &ctx.user,
        vec![question("support@example.com", &en_customer, 2)],
    )
    .await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    let sink = env.sink();
    let jp_acks = sink.messages(&jp_customer);
    let en_acks = sink.messages(&en_customer);
    assert_eq!((jp_acks.len(), en_acks.len()), (1, 1), "{summary}");
    assert!(
        header_of(&jp_acks[0], "From").contains("<support-jp@example.com>"),
        "{}",
        header_of(&jp_acks[0], "From")
    );
    assert!(
        header_of(&en_acks[0], "From").contains("<support@example.com>"),
        "{}",
        header_of(&en_acks[0], "From")
    );
    let jp_case = support::cli::cases(&ctx)
        .into_iter()
        .find(|c| c["customer"] == jp_customer.as_str())
        .expect("the jp customer's case");
    let number = jp_case["number"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| jp_case["number"].to_string());
    // The customer answers the acknowledgement, to the address it came from.
    let ack_id = header_of(&jp_acks[0], "Message-ID");
    let reply = mail_to(
        "support-jp@example.com",
        &format!("f3-{}@rheinwerk.de", ctx.user),
        None,
        &jp_customer,
        &format!("Re: {}", header_of(&jp_acks[0], "Subject")),
        &format!("In-Reply-To: {ack_id}\r\nReferences: {ack_id}\r\n"),
        "Here are the logs you asked for.\n",
    );
    append_all(&user2, vec![reply]).await;
    let summary = ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    assert!(
        summary
            .contains("mailbox jp: processed 1 mail(s): 0 new case(s), 1 added to existing cases"),
        "{summary}"
    );
    assert_eq!(support::cli::cases(&ctx).len(), 2, "{summary}");
    let inbound = support::cli::show(&ctx, &number)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(inbound, 2, "the reply joins case {number}");
}

/// `run --once` on PostgreSQL renews its lease while it drains: with a 600 ms takeover
/// time and a drain of several seconds, a daemon started mid-drain never takes the
/// mailbox over, and the run files every mail itself.
#[tokio::test(flavor = "multi_thread")]
async fn run_once_renews_its_lease_through_a_drain_longer_than_the_takeover_time() {
    const MAILS: usize = 1000;
    let pg = PgDatabase::create().await;
    let ctx = TestCtx::with_config(
        "oncelease",
        &format!(
            "[database]\nurl = \"{}\"\nmax_connections = 4\n\
             [cluster]\ntakeover_ms = 600\n[imap]\nbatch_size = 20\n[smtp]\ntimeout_secs = 1\n",
            pg.url
        ),
    );
    ok(import(&ctx, "contracts.csv", CONTRACTS));
    append_all(&ctx.user, mails(&ctx, "once", "support@example.com", MAILS)).await;
    let db = PgPool::connect(&pg.url).await.unwrap();
    let once = ctx
        .casegate(&["run", "--once"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let once_pid = once.id();
    wait_for(
        "run --once to take the lease",
        Duration::from_secs(30),
        || {
            let db = db.clone();
            async move {
                holder(&db, "INBOX")
                    .await
                    .is_some_and(|(h, _)| h.ends_with(&format!("-{once_pid}")))
            }
        },
    )
    .await;
    let leased_at = Instant::now();
    let daemon = Daemon::start(&ctx, "daemon.log");
    let out = tokio::task::spawn_blocking(move || once.wait_with_output().unwrap())
        .await
        .unwrap();
    let drain = leased_at.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    daemon.stop().await;
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("processed {MAILS} mail(s): {MAILS} new case(s)")),
        "run --once kept the mailbox through its drain:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("lease lost"), "{stderr}");
    // Else the test proves nothing: the lease would not have expired anyway.
    assert!(
        drain > Duration::from_millis(3 * 600),
        "the drain ({drain:?}) must outlast the takeover time several times over"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM cases").await,
        MAILS as i64
    );
    db.close().await;
    pg.drop().await;
}
