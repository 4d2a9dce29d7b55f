//! Admins edit files; the running daemon picks the change up without a restart, and a
//! broken edit is refused while the daemon keeps working with the last good one.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::ok;
use support::mail::mail_to_support;
use support::{TestCtx, append};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn queue_of(ctx: &TestCtx, n: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = ctx
            .casegate(&["cases", "show", n, "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            return v["queue"].clone();
        }
        assert!(Instant::now() < deadline, "case {n} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mail(user: &str, n: u32) -> Vec<u8> {
    mail_to_support(
        format!("ops{n}@globex.example"),
        format!("Playbook fails {n}"),
        format!("{user}-{n}@globex.example"),
    )
    .body("The playbook fails.\n")
}

#[tokio::test]
async fn an_edited_routing_file_takes_effect_and_a_broken_one_is_refused() {
    let user = support::unique_user("reload");
    let dir = support::tempdir();
    let routing = dir.path().join("routing.toml");
    let original =
        std::fs::read_to_string(support::repo_dir().join("config/routing.toml")).unwrap();
    std::fs::write(&routing, &original).unwrap();
    let extra = format!("[gateway]\nrouting_file = \"{}\"\n", routing.display());
    let ctx = TestCtx::with_config("reload", &extra);
    let csv = ctx.dir.path().join("contracts.csv");
    std::fs::write(&csv, "account,contract_id,tier,products,domains,contacts,country,start,end\nGlobex,C-G,premium,ansible,globex.example,,US,2025-01-01,2030-12-31\n").unwrap();
    ok(ctx
        .casegate(&["contracts", "import", csv.to_str().unwrap()])
        .output()
        .unwrap());
    support::create(&ctx.user, "INBOX").await;
    let _daemon = Daemon(
        ctx.casegate(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    append(&ctx.user, "INBOX", &mail(&user, 1), None).await;
    assert_eq!(queue_of(&ctx, "1").await, "ansible-na");

    // A broken edit (a rule naming a queue that does not exist) is refused; read
    // commands keep working meanwhile.
    std::fs::write(
        &routing,
        original.replace("queue = \"ansible-na\"", "queue = \"no-such-queue\""),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    append(&ctx.user, "INBOX", &mail(&user, 2), None).await;
    assert_eq!(
        queue_of(&ctx, "2").await,
        "ansible-na",
        "the last good rules stay"
    );

    // A good edit: English NA ansible mail goes to the EMEA queue now.
    std::fs::write(
        &routing,
        original.replace("queue = \"ansible-na\"", "queue = \"ansible-emea\""),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    append(&ctx.user, "INBOX", &mail(&user, 3), None).await;
    assert_eq!(
        queue_of(&ctx, "3").await,
        "ansible-emea",
        "the edit took effect without a restart"
    );
}
