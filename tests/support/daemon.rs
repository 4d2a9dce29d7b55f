//! The daemon (`casegate run`) as a child process, its log in the test's folder: wait
//! for log lines, send signals, stop cleanly; killed if a test fails half-way.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestCtx;

pub struct Daemon {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    /// Starts `casegate run` with stderr (the log) in `<test dir>/<log_name>`.
    pub fn start(ctx: &TestCtx, log_name: &str) -> Daemon {
        Daemon::start_with_env(ctx, log_name, &[])
    }

    /// [`Daemon::start`] with extra environment variables (e.g. `CASEGATE_FAILPOINT`).
    pub fn start_with_env(ctx: &TestCtx, log_name: &str, env: &[(&str, &str)]) -> Daemon {
        let log = ctx.dir.path().join(log_name);
        let err = std::fs::File::create(&log).unwrap();
        let child = ctx
            .casegate(&["run"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -SIG`, e.g. "HUP" or "TERM".
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Panics with the log if the daemon has exited.
    pub fn assert_running(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!("the daemon exited ({st}):\n{}", self.log());
        }
    }

    /// Waits until the log holds `n` lines containing `needle`; returns the log.
    pub async fn wait_log(&mut self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if log.matches(needle).count() >= n {
                return log;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{n}) in the daemon log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then wait (at most 15 s) for the exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop on SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
