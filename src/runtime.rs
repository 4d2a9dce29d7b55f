//! Shutdown signalling and task supervision.
//!
//! Shutdown is injected (as in mini-redis): each task holds a [`Shutdown`] and checks it
//! between units of work, so a mail in hand is finished (committed or rolled back whole)
//! before the task returns. Tests trigger it through their own [`ShutdownTrigger`].

use tokio::sync::watch;

/// Fires shutdown for every [`Shutdown`] made from it.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A task's view of the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger/listener pair.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// True once shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown is requested (at once if it already was). Cancel-safe.
    pub async fn recv(&mut self) {
        // An Err means every trigger is gone: nobody can ask any more, treat as shutdown.
        let _ = self.0.wait_for(|v| *v).await;
    }
}
