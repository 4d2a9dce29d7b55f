use std::path::Path;

use clap::Args;

/// Validate the configuration: exit 0, or 1 with one line per problem (file, key, what).
/// Warnings (valid settings likely to give worse service, such as a queue nobody is told
/// about) are printed too; with `--strict` they count as problems.
#[derive(Debug, Args)]
pub struct CheckConfig {
    /// Treat warnings as problems (exit 1).
    #[arg(long)]
    strict: bool,
    /// Also sign in: get an OAuth2 access token, log in to IMAP, connect to SMTP.
    #[arg(long)]
    online: bool,
}

impl CheckConfig {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        match crate::config::load(path) {
            Ok(config) => {
                let mut problems = super::oauth2::offline_problems(&config);
                // The status pages are served only with the admin listener.
                if config.admin.listen.is_some()
                    && let Err(found) = crate::web::render::Pages::load(&config.web.templates_dir)
                {
                    problems.extend(found.iter().map(ToString::to_string));
                }
                for p in &problems {
                    println!("{p}");
                }
                let mut failed = !problems.is_empty();
                if self.online && !failed {
                    for (line, ok) in super::oauth2::online_checks(&config).await {
                        println!("{line}");
                        failed |= !ok;
                    }
                }
                if failed {
                    return Ok(1);
                }
                if config.warnings.is_empty() {
                    println!("{}: OK", path.display());
                    return Ok(0);
                }
                let label = if self.strict { "error" } else { "warning" };
                for w in &config.warnings {
                    println!("{label}: {w}");
                }
                if self.strict {
                    Ok(1)
                } else {
                    println!(
                        "{}: OK with {} warning(s) (--strict refuses them)",
                        path.display(),
                        config.warnings.len()
                    );
                    Ok(0)
                }
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
