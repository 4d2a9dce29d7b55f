use std::path::Path;

use clap::Args;

/// Validate the configuration: exit 0, or 1 with one line per problem (file, key, what).
#[derive(Debug, Args)]
pub struct CheckConfig {}

impl CheckConfig {
    pub fn execute(self, path: &Path) -> anyhow::Result<i32> {
        match crate::config::load(path) {
            Ok(_) => {
                println!("{}: OK", path.display());
                Ok(0)
            }
            Err(problems) => {
                for p in &problems.0 {
                    println!("{p}");
                }
                Ok(1)
            }
        }
    }
}
