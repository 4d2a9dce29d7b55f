//! `casegate generate man|completions DIR` (hidden): the manual pages and shell
//! completions, made from the command line definition itself so they never go stale.
//! `scripts/package` runs it before `cargo deb`; nothing it writes is committed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Subcommand, ValueEnum};
use clap_complete::Shell;

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Manual pages: casegate.1 and one per subcommand (casegate-cases-list.1 ...).
    Man { dir: PathBuf },
    /// Completions for bash (casegate.bash), zsh (_casegate) and fish (casegate.fish).
    Completions { dir: PathBuf },
}

impl Generate {
    pub fn execute(self) -> anyhow::Result<i32> {
        let cmd = super::Cli::command();
        match self {
            Generate::Man { dir } => {
                create(&dir)?;
                clap_mangen::generate_to(cmd, &dir).with_context(|| {
                    format!("cannot write the manual pages to {}", dir.display())
                })?;
                println!("manual pages written to {}", dir.display());
            }
            Generate::Completions { dir } => {
                create(&dir)?;
                let mut cmd = cmd;
                for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                    let path = clap_complete::generate_to(shell, &mut cmd, "casegate", &dir)
                        .with_context(|| {
                            format!(
                                "cannot write the {} completions to {}",
                                shell
                                    .to_possible_value()
                                    .map(|v| v.get_name().to_string())
                                    .unwrap_or_default(),
                                dir.display()
                            )
                        })?;
                    println!("{}", path.display());
                }
            }
        }
        Ok(0)
    }
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
