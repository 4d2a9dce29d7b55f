//! `casegate oauth2 login` (device code, and browser with PKCE on a loopback redirect)
//! and the OAuth2 lines of `casegate check-config`, against the test token server.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::cli::ok;
use support::mail::mail_to_support;
use support::oauth;
use support::{TestCtx, TestEnv, append, count, unique_user};

/// A public client (no secret, as Microsoft's and Google's desktop apps are) and a
/// config that signs in to IMAP with its tokens; no refresh token yet.
fn login_ctx(tag: &str) -> TestCtx {
    let client = unique_user("public-client");
    oauth::register_client(&client, "", 30, None);
    let url = oauth::base_url();
    TestCtx::with_config(
        tag,
        &format!(
            r#"[imap]
auth = "oauth2"
password = "not-the-password"
[oauth2]
token_url = "{url}/token"
device_authorization_url = "{url}/device"
authorization_url = "{url}/authorize"
client_id = "{client}"
scopes = ["imap"]
refresh_token_file = "secrets/refresh-token"
"#
        ),
    )
}

/// Starts `casegate oauth2 login ARGS`; its stdout lines arrive on the channel.
fn start_login(ctx: &TestCtx, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    std::fs::create_dir_all(ctx.dir.path().join("secrets")).unwrap();
    let mut all = vec!["oauth2", "login"];
    all.extend_from_slice(args);
    let mut child = ctx
        .casegate(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The first line for which `pick` says something, and every line read so far.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    pick: impl Fn(&str) -> Option<String>,
) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no such line; got:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if let Some(v) = pick(&line) {
            return v;
        }
    }
}

fn finish(mut child: Child, rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) -> String {
    let status = child.wait().unwrap();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(l);
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let out = seen.join("\n");
    assert!(status.success(), "login failed ({status}):\n{out}\n{err}");
    oauth::assert_no_token_in("the login's output", &format!("{out}\n{err}"));
    out
}

fn check_config(ctx: &TestCtx, online: bool) -> (bool, String) {
    let mut args = vec!["check-config"];
    if online {
        args.push("--online");
    }
    let out = ctx.casegate(&args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn device_code_login_stores_the_refresh_token_and_check_config_passes() {
    let ctx = login_ctx("login-device");
    let (passed, text) = check_config(&ctx, false);
    assert!(!passed);
    assert!(
        text.contains("oauth2.refresh_token_file: cannot read the refresh token file")
            && text.contains("sign in with `casegate oauth2 login`"),
        "{text}"
    );

    let (child, rx) = start_login(&ctx, &["--device"]);
    let mut seen = Vec::new();
    let code = wait_line(&rx, &mut seen, |l| {
        l.trim()
            .strip_prefix("2. enter the code ")
            .map(str::to_string)
    });
    wait_line(&rx, &mut seen, |l| {
        l.starts_with("Waiting").then_some(String::new())
    });
    assert!(
        seen.iter().any(|l| l.contains("/device/verify")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains(&format!("sign in as {}", ctx.user))),
        "{seen:?}"
    );
    oauth::approve_device(&code, &ctx.user);
    let out = finish(child, &rx, &mut seen);
    assert!(out.contains("Signed in."), "{out}");
    assert!(out.contains("check-config --online"), "{out}");

    use std::os::unix::fs::PermissionsExt;
    let file = ctx.dir.path().join("secrets/refresh-token");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (passed, text) = check_config(&ctx, true);
    assert!(passed, "{text}");
    assert!(
        text.contains("oauth2: the refresh_token grant gives an access token"),
        "{text}"
    );
    let imap_line = format!(
        "imap: signed in to 127.0.0.1:{} as {} (OAuth2)",
        TestEnv::get().imap_port,
        ctx.user
    );
    assert!(text.contains(&imap_line), "{text}");
    oauth::assert_no_token_in("check-config", &text);

    // Revoked: --online says so, and fails.
    oauth::revoke_user(&ctx.user);
    let (passed, text) = check_config(&ctx, true);
    assert!(!passed, "{text}");
    assert!(
        text.contains("oauth2: the refresh_token grant failed: the refresh token was refused"),
        "{text}"
    );
}

#[tokio::test]
async fn browser_login_with_pkce_on_a_loopback_redirect_gives_a_working_refresh_token() {
    let ctx = login_ctx("login-pkce");
    let (child, rx) = start_login(&ctx, &["--browser"]);
    let mut seen = Vec::new();
    let base = oauth::base_url();
    let url = wait_line(&rx, &mut seen, |l| {
        l.trim().starts_with(&base).then(|| l.trim().to_string())
    });
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("login_hint="), "{url}");
    // The "browser": the token server signs the login_hint user in and redirects.
    let path = url.strip_prefix(&base).unwrap().to_string();
    let (status, head, _) = tokio::task::spawn_blocking(move || oauth::http("GET", &path, ""))
        .await
        .unwrap();
    assert_eq!(status, 302, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap()
        .trim()
        .to_string();
    let rest = location.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, target) = rest.split_once('/').unwrap();
    let port: u16 = port.parse().unwrap();
    let target = format!("/{target}");
    let page = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut page = String::new();
        s.read_to_string(&mut page).unwrap();
        page
    })
    .await
    .unwrap();
    assert!(page.contains("casegate is signed in"), "{page}");
    let out = finish(child, &rx, &mut seen);
    assert!(out.contains("Signed in."), "{out}");

    append(
        &ctx.user,
        "INBOX",
        &mail_to_support("a@example.net", "after login", "after-login@example.net").body("hello\n"),
        None,
    )
    .await;
    ok(ctx.casegate(&["run", "--once"]).output().unwrap());
    assert_eq!(count(&ctx.user, "INBOX").await, 0);
}

#[test]
fn check_config_names_a_missing_client_id_and_a_scope_that_cannot_reach_imap() {
    let ctx = TestCtx::with_config(
        "login-bad-config",
        "[imap]\nauth = \"oauth2\"\n[oauth2]\nprovider = \"microsoft\"\nscopes = [\"https://outlook.office.com/SMTP.Send\", \"offline_access\"]\n",
    );
    let (passed, text) = check_config(&ctx, false);
    assert!(!passed);
    let f = ctx.config.display().to_string();
    assert!(
        text.contains(&format!("{f}: oauth2.client_id: missing")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{f}: oauth2.scopes: no scope reaches IMAP: add https://outlook.office.com/IMAP.AccessAsUser.All"
        )),
        "{text}"
    );
}
