use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};

use crate::config::contracts_csv;

/// Support contracts: who is entitled to support, for which products, until when.
#[derive(Debug, Subcommand)]
pub enum Contracts {
    /// Import (upsert) contracts from a CSV file with a header row: account, contract_id,
    /// tier, products, domains, contacts, country, start, end. All rows or none.
    Import(Import),
    /// List the contracts.
    List(List),
}

#[derive(Debug, Args)]
pub struct Import {
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl Contracts {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let store = super::open_store_only(path).await?;
        match self {
            Contracts::Import(i) => {
                let text = std::fs::read_to_string(&i.file)
                    .with_context(|| format!("cannot read {}", i.file.display()))?;
                let contracts = match contracts_csv::parse_contracts(&text) {
                    Ok(c) => c,
                    Err(rows) => {
                        for r in &rows {
                            println!("{}: {r}", i.file.display());
                        }
                        println!(
                            "nothing imported: fix the {} problem(s) above and import again",
                            rows.len()
                        );
                        return Ok(1);
                    }
                };
                let s = store.import_contracts(&contracts, Utc::now()).await?;
                println!(
                    "imported {} contract(s) from {}: {} new, {} updated, {} unchanged",
                    contracts.len(),
                    i.file.display(),
                    s.inserted,
                    s.updated,
                    s.unchanged
                );
                Ok(0)
            }
            Contracts::List(l) => {
                let contracts = store.list_contracts().await?;
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&contracts)?);
                    return Ok(0);
                }
                println!(
                    "{:<14}  {:<24}  {:<9}  {:<7}  {:<10}  {:<10}  PRODUCTS / DOMAINS",
                    "CONTRACT", "ACCOUNT", "TIER", "COUNTRY", "START", "END"
                );
                for c in &contracts {
                    println!(
                        "{:<14}  {:<24}  {:<9}  {:<7}  {:<10}  {:<10}  {} / {}",
                        c.contract_id,
                        c.account,
                        c.tier,
                        c.country,
                        c.start,
                        c.end,
                        c.products.join(","),
                        c.domains.join(",")
                    );
                }
                Ok(0)
            }
        }
    }
}
