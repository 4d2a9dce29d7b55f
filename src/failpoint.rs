//! Crash injection for the tests that prove "nothing lost, nothing doubled".
//!
//! `CASEGATE_FAILPOINT=after_commit` aborts the process right after the first mail is
//! committed and before it is moved out of the inbox: the exact window a power cut or
//! `kill -9` can hit. `CASEGATE_FAILPOINT=NAME:N` makes the fallible step `NAME` fail its
//! first `N` times instead ([`fails`]); `CASEGATE_FAILPOINT=stop:NAME` stops the process
//! (SIGSTOP) at `NAME` once ([`pause`]). Compiled in only with the cargo feature
//! `failpoints`, which the tests enable (the package's dev-dependency on itself); a
//! release build has none.

#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "failpoints")]
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("CASEGATE_FAILPOINT").ok())
        .as_deref()
}

/// Abort the process if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("casegate: failpoint {name} hit, aborting");
        std::process::abort();
    }
}

/// True for the first `N` calls when `NAME:N` is armed (the caller then fails as if its
/// I/O had failed); false otherwise.
#[cfg(feature = "failpoints")]
pub fn fails(name: &str) -> bool {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let Some((armed, times)) = armed().and_then(|a| a.split_once(':')) else {
        return false;
    };
    let times: u64 = times.parse().unwrap_or(0);
    armed == name && CALLS.fetch_add(1, Ordering::Relaxed) < times
}

/// Stop the process (SIGSTOP, as `kill -STOP` would) the first time `name` is reached
/// when `stop:NAME` is armed: a test pauses it exactly there and resumes it with SIGCONT.
#[cfg(feature = "failpoints")]
pub fn pause(name: &str) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let armed_here = armed().and_then(|a| a.strip_prefix("stop:")) == Some(name);
    if armed_here && !DONE.swap(true, Ordering::Relaxed) {
        eprintln!("casegate: failpoint stop:{name} hit, stopping");
        // SAFETY: raise() only sends a signal to this process.
        unsafe {
            libc::raise(libc::SIGSTOP);
        }
    }
}

/// Without the `failpoints` feature no failpoint exists.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn pause(_name: &str) {}

/// Without the `failpoints` feature no failpoint exists.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Without the `failpoints` feature no step fails on purpose.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fails(_name: &str) -> bool {
    false
}
