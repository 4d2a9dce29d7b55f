use std::io::Read;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use clap::Args;

use crate::pipeline::{Origin, Outcome, Received};

/// Take one RFC 5322 mail on stdin (MTA pipe mode) and file it.
///
/// Exit 0 when the mail is stored, was already stored, or was quarantined (it is
/// accounted for either way); 75 (EX_TEMPFAIL) when the database failed, so the MTA
/// keeps the mail and retries.
#[derive(Debug, Args)]
pub struct Ingest {
    /// The envelope recipient (what the MTA passes as `${recipient}`); it proves a
    /// bounce or an automatic reply came to one of our signed return paths, instead of
    /// the topmost `Delivered-To`/`X-Original-To` field.
    #[arg(long, value_name = "ADDRESS")]
    recipient: Option<String>,
}

impl Ingest {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let config = super::load_config(path)?;
        super::init_tracing(&config);
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read the mail from stdin")?;
        let pipeline = match super::pipeline(&config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("casegate: {e:#}");
                return Ok(EX_TEMPFAIL);
            }
        };
        let now = Utc::now();
        let mut received = Received::whole(raw, now, Origin::Stdin);
        received.recipient = self.recipient;
        match pipeline.process(received, now).await {
            Ok(Outcome::Stored { case, opened, .. }) => {
                println!("{} case {case}", if opened { "opened" } else { "added to" });
                Ok(0)
            }
            Ok(Outcome::Duplicate { case }) => {
                println!("duplicate of a mail on case {case}");
                Ok(0)
            }
            Ok(Outcome::Quarantined { reason }) => {
                println!("quarantined: {reason}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("casegate: {e}; the mail was not stored");
                Ok(EX_TEMPFAIL)
            }
        }
    }
}

/// sysexits.h: temporary failure, the MTA will retry.
const EX_TEMPFAIL: i32 = 75;
