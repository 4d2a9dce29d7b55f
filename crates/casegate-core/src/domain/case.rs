//! Case identity and life cycle.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A case number: shown as 8 digits (`00001234`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseNumber(pub i64);

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

impl FromStr for CaseNumber {
    type Err = String;
    /// Accepts `1234`, `00001234` and `#00001234`.
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.trim().trim_start_matches('#');
        match digits.parse::<i64>() {
            Ok(n) if n > 0 && digits.chars().all(|c| c.is_ascii_digit()) => Ok(CaseNumber(n)),
            _ => Err(format!("not a case number: \"{s}\"")),
        }
    }
}

impl Serialize for CaseNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a case stands. `Open` means waiting on an engineer, `Waiting` on the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Open,
    Waiting,
    Closed,
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Waiting => "waiting",
            Status::Closed => "closed",
            Status::Refused => "refused",
        }
    }

    /// Status after a customer writes again on a case that is still live.
    pub fn after_customer_update(self) -> Status {
        match self {
            Status::New => Status::New,
            Status::Open | Status::Waiting | Status::Closed => Status::Open,
            Status::Refused => Status::Refused,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "new" => Status::New,
            "open" => Status::Open,
            "waiting" => Status::Waiting,
            "closed" => Status::Closed,
            "refused" => Status::Refused,
            other => return Err(format!("unknown status \"{other}\"")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_eight_digits_and_parse_back() {
        assert_eq!(CaseNumber(1234).to_string(), "00001234");
        assert_eq!("#00001234".parse::<CaseNumber>(), Ok(CaseNumber(1234)));
        assert!("12a".parse::<CaseNumber>().is_err());
        assert!("0".parse::<CaseNumber>().is_err());
    }

    #[test]
    fn customer_update_reopens_but_keeps_new_and_refused() {
        assert_eq!(Status::Waiting.after_customer_update(), Status::Open);
        assert_eq!(Status::Closed.after_customer_update(), Status::Open);
        assert_eq!(Status::New.after_customer_update(), Status::New);
        assert_eq!(Status::Refused.after_customer_update(), Status::Refused);
    }
}
