//! The `casegate` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = casegate::Cli::parse();
    if cli.command.is_report() {
        end_quietly_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("casegate: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.execute()) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("casegate: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// `casegate cases show 12 | head` ends quietly when `head` stops reading, as other
/// command-line tools do. Rust ignores SIGPIPE, so printing would fail with a panic
/// instead. Only for commands that print and exit: the daemon and `ingest` keep
/// treating a closed pipe as an error (sockets never raise SIGPIPE in Rust).
fn end_quietly_on_closed_pipe() {
    // SAFETY: runs before any other thread exists and only restores the default action
    // of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
