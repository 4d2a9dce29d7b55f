//! A problem found in the configuration, by file and key. Its own module so that the
//! parts `config` loads (templates, contracts) can report problems without importing
//! `config`.

use std::fmt;

/// One thing wrong with the configuration, e.g.
/// `config/casegate.toml: imap.port: expected an integer from 1 to 65535, found "abc"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or "the environment") the value came from.
    pub file: String,
    /// Dotted key path, e.g. `imap.port`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// Every problem found; `Display` prints one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
