//! Crash injection for the tests that prove "nothing lost, nothing doubled".
//!
//! `CASEGATE_FAILPOINT=after_commit` aborts the process right after the first mail is
//! committed and before it is moved out of the inbox: the exact window a power cut or
//! `kill -9` can hit. Compiled in only with the cargo feature `failpoints`, which the
//! tests enable (the package's dev-dependency on itself); a release build has none.

#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

/// Abort the process if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("CASEGATE_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("casegate: failpoint {name} hit, aborting");
        std::process::abort();
    }
}

/// Without the `failpoints` feature no failpoint exists.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
