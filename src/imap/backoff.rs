//! Capped exponential backoff between reconnect attempts.

use std::time::Duration;

/// Delays that double from `initial` up to `cap`: 1 s, 2 s, 4 s ... 60 s by default.
///
/// No jitter: one daemon talks to one mailbox, so there is no herd to spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        let initial = initial.min(cap);
        Backoff {
            initial,
            cap,
            next: initial,
        }
    }

    /// The delay to wait before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        delay
    }

    /// Back to `initial`, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(b: &mut Backoff, n: usize) -> Vec<u64> {
        (0..n).map(|_| b.next_delay().as_secs()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap_and_stays_there() {
        let mut b = Backoff::default();
        assert_eq!(secs(&mut b, 9), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        secs(&mut b, 5);
        b.reset();
        assert_eq!(secs(&mut b, 3), [1, 2, 4]);
    }

    #[test]
    fn initial_above_cap_is_clamped() {
        let mut b = Backoff::new(Duration::from_secs(90), Duration::from_secs(60));
        assert_eq!(secs(&mut b, 2), [60, 60]);
    }

    #[test]
    fn huge_cap_does_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::MAX);
    }
}
