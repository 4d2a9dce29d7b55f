//! Progress of long work (`quarantine replay`, `contracts import` of a large file,
//! `run --once` over a large backlog): a bar (indicatif) when stderr is a terminal,
//! else a plain log line at every tenth of the work and at its end, so that a log file
//! or the journal shows how far it got. Work under [`LARGE`] items shows nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// From this many items on, work reports its progress.
pub const LARGE: u64 = 100;

/// How far one long task is.
#[derive(Debug)]
pub struct Progress {
    task: String,
    total: u64,
    done: u64,
    /// The next count at which the plain form logs a line.
    next_line: u64,
    /// The terminal's bar (none when stderr is not a terminal, or before the work is large).
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Progress {
    /// `task` names the work in the bar and in the log lines (`contracts import`).
    pub fn new(task: impl Into<String>, total: u64) -> Progress {
        Progress::with_terminal(task, total, std::io::stderr().is_terminal())
    }

    fn with_terminal(task: impl Into<String>, total: u64, terminal: bool) -> Progress {
        let mut p = Progress {
            task: task.into(),
            total: 0,
            done: 0,
            next_line: 0,
            bar: None,
            terminal,
        };
        p.set_total(total);
        p
    }

    /// More work was found (a backlog that grows while it drains).
    pub fn set_total(&mut self, total: u64) {
        self.total = total.max(self.done);
        if self.total < LARGE {
            return;
        }
        if self.terminal {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(self.total);
                let style = ProgressStyle::with_template(
                    "{msg}: [{bar:40}] {pos}/{len} ({percent}%, {per_sec}, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_message(self.task.clone());
                bar.set_position(self.done);
                bar
            });
            bar.set_length(self.total);
        } else if self.next_line == 0 {
            info!(
                task = self.task.as_str(),
                total = self.total,
                "progress: started"
            );
            self.next_line = self.done + self.step();
        }
    }

    fn step(&self) -> u64 {
        self.total.div_ceil(10).max(1)
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// `n` more items done.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        } else if self.next_line > 0 && self.done >= self.next_line && self.done < self.total {
            info!(
                task = self.task.as_str(),
                done = self.done,
                total = self.total,
                percent = self.done * 100 / self.total.max(1),
                "progress"
            );
            self.next_line = self.done + self.step();
        }
    }

    /// The work is over (all of it, or as far as it got).
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.total >= LARGE && !self.terminal {
            info!(
                task = self.task.as_str(),
                done = self.done,
                total = self.total,
                "progress: finished"
            );
        }
    }

    #[cfg(test)]
    fn lines_due(&self) -> u64 {
        self.next_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_work_reports_nothing_and_large_work_every_tenth() {
        let mut small = Progress::with_terminal("x", LARGE - 1, false);
        small.advance(LARGE - 1);
        assert_eq!(small.lines_due(), 0);
        let mut large = Progress::with_terminal("x", 1000, false);
        assert_eq!(large.lines_due(), 100);
        large.advance(99);
        assert_eq!(large.lines_due(), 100);
        large.advance(1);
        assert_eq!(large.lines_due(), 200);
        // A backlog that grows: the step grows with it.
        large.set_total(2000);
        large.advance(100);
        assert_eq!(large.lines_due(), 400);
    }

    #[test]
    fn a_terminal_gets_a_bar_once_the_work_is_large() {
        let mut p = Progress::with_terminal("x", 10, true);
        assert!(p.bar.is_none());
        p.set_total(500);
        p.advance(5);
        assert_eq!(p.bar.as_ref().map(|b| b.position()), Some(5));
        assert_eq!(p.bar.as_ref().and_then(|b| b.length()), Some(500));
        p.finish();
    }
}
