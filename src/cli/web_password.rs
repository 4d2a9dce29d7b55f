use std::io::Read;
use std::path::Path;

use clap::Args;

/// Print an argon2id hash of a password read from stdin (one line), for
/// `[web.users.NAME] password_hash` in the configuration. The password itself is never
/// stored or printed.
#[derive(Debug, Args)]
pub struct WebPassword {}

impl WebPassword {
    pub async fn execute(self, _path: &Path) -> anyhow::Result<i32> {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        let password = input.lines().next().unwrap_or("");
        if password.chars().count() < 10 {
            eprintln!("casegate: use a password of at least 10 characters");
            return Ok(1);
        }
        let hash = crate::web::access::hash_password(password).map_err(anyhow::Error::msg)?;
        println!("{hash}");
        Ok(0)
    }
}
