use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Days, NaiveDate, Utc};
use clap::{Args, Subcommand};

use crate::config::contracts_csv::{self, Known};
use crate::domain::entitlement::{Contract, ImportChanges, Standing, import_changes};
use crate::progress::Progress;
use crate::store::{OpenMode, StoreError};

/// Support contracts: who is entitled to support, for which products, until when.
#[derive(Debug, Subcommand)]
pub enum Contracts {
    /// Import (upsert) contracts from a CSV file with a header row: account, contract_id,
    /// tier, products, domains, contacts, country, start, end. All rows or none; every
    /// row is checked against the SLA policies (tier), the routing file (products) and
    /// the free-mail list (domains).
    Import(Import),
    /// List the contracts (expired ones are marked).
    List(List),
    /// End a contract: yesterday (UTC) becomes its last covered day, or the day given.
    End(End),
}

#[derive(Debug, Args)]
pub struct Import {
    file: PathBuf,
    /// The file is the whole list: contracts missing from it end (yesterday is their
    /// last covered day). Prints what changes.
    #[arg(long)]
    replace: bool,
    /// Print what the import would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct End {
    /// The contract id (as in the CSV's contract_id column).
    id: String,
    /// The last covered day (YYYY-MM-DD); default yesterday (UTC), so it no longer
    /// covers mail from today.
    #[arg(long)]
    last_day: Option<NaiveDate>,
}

impl Contracts {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        match self {
            Contracts::Import(i) => import(path, i).await,
            Contracts::List(l) => {
                let store = super::open_store_only(path).await?;
                let contracts = store.list_contracts().await?;
                let today = Utc::now().date_naive();
                if l.json {
                    let listed: Vec<Listed<'_>> = contracts
                        .iter()
                        .map(|c| Listed {
                            contract: c,
                            status: c.standing(today),
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&listed)?);
                } else {
                    print_table(&contracts, today);
                }
                Ok(0)
            }
            Contracts::End(e) => {
                let store = super::open_store_only(path).await?;
                let last_day = e.last_day.unwrap_or_else(yesterday);
                match store.end_contract(&e.id, last_day, Utc::now()).await? {
                    None => {
                        eprintln!("casegate: no contract {}", e.id);
                        Ok(1)
                    }
                    Some(c) if !c.runs_after(last_day) => {
                        println!(
                            "contract {} ({}) already ends on {}: unchanged",
                            c.contract_id, c.account, c.end
                        );
                        Ok(0)
                    }
                    Some(c) => {
                        println!(
                            "contract {} ({}) ended: last covered day {} (was {})",
                            c.contract_id, c.account, last_day, c.end
                        );
                        Ok(0)
                    }
                }
            }
        }
    }
}

/// A contract in `contracts list --json`: its fields and `status` (active, expired or
/// future, today in UTC).
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    contract: &'a Contract,
    status: Standing,
}

fn yesterday() -> NaiveDate {
    let today = Utc::now().date_naive();
    today.checked_sub_days(Days::new(1)).unwrap_or(today)
}

async fn import(path: &Path, i: Import) -> anyhow::Result<i32> {
    // The contracts are checked against the whole configuration (SLA tiers, products).
    let config = super::load_config(path)?;
    // Progress lines of a large import, when stderr is not a terminal.
    super::init_tracing(&config);
    let text = std::fs::read_to_string(&i.file)
        .with_context(|| format!("cannot read {}", i.file.display()))?;
    let contracts = match contracts_csv::check_contracts(&text, &Known::of(&config)) {
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
    let last_day = yesterday();
    if i.dry_run {
        // A dry run changes nothing, so it creates no database: a missing one has no
        // contracts yet.
        let current = match super::open_store_only(path).await {
            Ok(store) => store.list_contracts().await?,
            Err(e) if matches!(e.downcast_ref(), Some(StoreError::NoDatabase(_))) => Vec::new(),
            Err(e) => return Err(e),
        };
        print_changes(
            &import_changes(&current, &contracts, i.replace.then_some(last_day)),
            last_day,
        );
        println!("dry run: nothing changed");
        return Ok(0);
    }
    // Importing is how an admin sets up a new database, so it may create one.
    let store = super::open_store_only_with(path, OpenMode::Create).await?;
    if i.replace {
        let current = store.list_contracts().await?;
        print_changes(
            &import_changes(&current, &contracts, Some(last_day)),
            last_day,
        );
    }
    let mut progress = Progress::new("contracts import", 0);
    let (s, ended) = store
        .import_contracts_reporting(
            &contracts,
            i.replace.then_some(last_day),
            Utc::now(),
            &mut progress,
        )
        .await?;
    progress.finish();
    if i.replace {
        println!(
            "imported {} contract(s) from {}: {} new, {} updated, {} unchanged; {} ended (missing from the file)",
            contracts.len(),
            i.file.display(),
            s.inserted,
            s.updated,
            s.unchanged,
            ended.len()
        );
    } else {
        println!(
            "imported {} contract(s) from {}: {} new, {} updated, {} unchanged",
            contracts.len(),
            i.file.display(),
            s.inserted,
            s.updated,
            s.unchanged
        );
    }
    Ok(0)
}

/// Print what an import changes (decided by [`import_changes`]).
fn print_changes(changes: &ImportChanges<'_>, last_day: NaiveDate) {
    for c in &changes.new {
        println!("+ new: {} ({})", c.contract_id, c.account);
    }
    for (old, c) in &changes.updated {
        println!(
            "~ updated: {} ({}): {}",
            c.contract_id,
            c.account,
            differences(old, c).join(", ")
        );
    }
    for c in &changes.ended {
        println!(
            "- ends: {} ({}): last covered day {} (was {})",
            c.contract_id, c.account, last_day, c.end
        );
    }
    println!(
        "{} new, {} updated, {} unchanged, {} to end",
        changes.new.len(),
        changes.updated.len(),
        changes.unchanged,
        changes.ended.len()
    );
}

/// The fields that differ, as `tier premium -> standard`.
fn differences(old: &Contract, new: &Contract) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    field("account", old.account.clone(), new.account.clone());
    field("tier", old.tier.clone(), new.tier.clone());
    field("products", old.products.join(";"), new.products.join(";"));
    field("domains", old.domains.join(";"), new.domains.join(";"));
    field("contacts", old.contacts.join(";"), new.contacts.join(";"));
    field("country", old.country.clone(), new.country.clone());
    field("start", old.start.to_string(), new.start.to_string());
    field("end", old.end.to_string(), new.end.to_string());
    out
}

/// A table whose columns are as wide as their longest value (wide characters count
/// twice), expired contracts marked.
fn print_table(contracts: &[Contract], today: NaiveDate) {
    if contracts.is_empty() {
        println!("no contracts");
        return;
    }
    let header = [
        "CONTRACT", "ACCOUNT", "TIER", "COUNTRY", "START", "END", "STATUS",
    ];
    let rows: Vec<[String; 7]> = contracts
        .iter()
        .map(|c| {
            [
                c.contract_id.clone(),
                c.account.clone(),
                c.tier.clone(),
                c.country.clone(),
                c.start.to_string(),
                c.end.to_string(),
                c.standing(today).as_str().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(width);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: Vec<&str>, tail: &str| {
        let mut out = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w - width(cell) + 2));
        }
        out.push_str(tail);
        out
    };
    println!("{}", line(header.to_vec(), "PRODUCTS / DOMAINS"));
    for (r, c) in rows.iter().zip(contracts) {
        let tail = format!("{} / {}", c.products.join(","), c.domains.join(","));
        println!("{}", line(r.iter().map(String::as_str).collect(), &tail));
    }
}

/// Terminal columns of `s`: East Asian wide and full-width characters take two.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            let wide = matches!(c,
                0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}
