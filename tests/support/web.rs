//! The status pages from the outside: headless Chromium (Debian's `chromium`) for the
//! rendered DOM, console messages and screenshots; plain HTTP/1.1 for the access rules.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where screenshots are kept as test artifacts.
pub fn screenshot_dir() -> PathBuf {
    let d = super::repo_dir().join("target/web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The page's DOM after load (`--dump-dom`) and every console line Chromium logged.
pub struct Dump {
    pub dom: String,
    pub console: Vec<String>,
}

fn chromium(lang: &str, profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--lang={lang}"))
    .arg(format!("--accept-lang={lang}"))
    .stdin(Stdio::null());
    c
}

/// Load `url` with `Accept-Language: lang`; `extra` flags such as
/// `--virtual-time-budget=16000`.
pub fn dump(url: &str, lang: &str, extra: &[&str]) -> Dump {
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(lang, profile.path())
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium (scripts/install-deps installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    Dump {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect(),
    }
}

/// A screenshot of `url` at `width` x `height`, saved as `target/web-screenshots/NAME.png`.
pub fn screenshot(url: &str, lang: &str, width: u32, height: u32, name: &str) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let file = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    let out = chromium(lang, profile.path())
        .arg("--hide-scrollbars")
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        file.exists(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

/// An HTTP/1.1 response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value a `Set-Cookie` header gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .find_map(|(_, v)| {
                let first = v.split(';').next()?;
                let (k, val) = first.split_once('=')?;
                (k == name).then(|| val.to_string())
            })
    }
}

/// One request to `addr` (`host:port`): `method path` with `headers` and `body`.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Http {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = Vec::new();
    write!(
        req,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n"
    )
    .unwrap();
    for (k, v) in headers {
        write!(req, "{k}: {v}\r\n").unwrap();
    }
    if method == "POST" {
        write!(
            req,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        )
        .unwrap();
    }
    write!(req, "\r\n{body}").unwrap();
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_string(),
    }
}

/// An argon2 hash of `password` from `casegate web-password`.
pub fn password_hash(password: &str) -> String {
    let mut child = super::casegate()
        .arg("web-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A free TCP port on all addresses.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

/// This machine's first non-loopback IPv4 address, to reach the listener from an
/// address that is not loopback.
pub fn outside_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}
