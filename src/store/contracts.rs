//! Support contracts, imported from CSV, and the candidates for one sender.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::outbox::{SentCounts, bind_sent_counts, recipient_key, sent_counts_sql};
use super::{Store, StoreError, Work, to_ms};
use crate::domain::CaseNumber;
use crate::domain::entitlement::{Contract, import_changes};
use crate::domain::outbound::SentCounting;
use crate::progress::Progress;

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

const COLUMNS: &str =
    "contract_id, account, tier, products, domains, contacts, country, start_date, end_date";

impl Store {
    /// Upsert every contract in one transaction: all or nothing, and importing the same
    /// file twice changes nothing.
    pub async fn import_contracts(
        &self,
        contracts: &[Contract],
        now: DateTime<Utc>,
    ) -> Result<ImportStats, StoreError> {
        let (stats, _) = self.apply_import(contracts, None, now, None).await?;
        Ok(stats)
    }

    /// The file is the whole list: upsert every contract in it, and end (last covered
    /// day `last_day`) every contract missing from it that still runs after that day.
    /// One transaction. Returns the import's counts and the ids of the ended contracts.
    pub async fn replace_contracts(
        &self,
        contracts: &[Contract],
        last_day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(ImportStats, Vec<String>), StoreError> {
        self.apply_import(contracts, Some(last_day), now, None)
            .await
    }

    /// [`Store::import_contracts`] (`replace` None) or [`Store::replace_contracts`],
    /// counting each contract written in `progress` (`contracts import` of a large file).
    pub async fn import_contracts_reporting(
        &self,
        contracts: &[Contract],
        replace: Option<NaiveDate>,
        now: DateTime<Utc>,
        progress: &mut Progress,
    ) -> Result<(ImportStats, Vec<String>), StoreError> {
        self.apply_import(contracts, replace, now, Some(progress))
            .await
    }

    /// Write what [`import_changes`] (the domain, as `--dry-run` shows it) decides, in
    /// one transaction.
    async fn apply_import(
        &self,
        contracts: &[Contract],
        replace: Option<NaiveDate>,
        now: DateTime<Utc>,
        mut progress: Option<&mut Progress>,
    ) -> Result<(ImportStats, Vec<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contracts ORDER BY contract_id"
        )))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| contract(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
        let changes = import_changes(&current, contracts, replace);
        if let Some(p) = progress.as_mut() {
            let ended = if replace.is_some() {
                changes.ended.len()
            } else {
                0
            };
            p.set_total((changes.new.len() + changes.updated.len() + ended) as u64);
        }
        for c in changes
            .new
            .iter()
            .chain(changes.updated.iter().map(|(_, c)| c))
        {
            upsert(&mut tx, c, now).await?;
            if let Some(p) = progress.as_mut() {
                p.advance(1);
            }
        }
        let mut ended = Vec::new();
        if let Some(last_day) = replace {
            for c in &changes.ended {
                end(&mut tx, &c.contract_id, last_day, now).await?;
                ended.push(c.contract_id.clone());
                if let Some(p) = progress.as_mut() {
                    p.advance(1);
                }
            }
        }
        tx.commit().await?;
        let stats = ImportStats {
            inserted: changes.new.len() as u64,
            updated: changes.updated.len() as u64,
            unchanged: changes.unchanged as u64,
        };
        Ok((stats, ended))
    }

    /// End one contract: `last_day` becomes its last covered day (unless it already ends
    /// earlier). `None` when there is no such contract; else the contract as it was.
    pub async fn end_contract(
        &self,
        contract_id: &str,
        last_day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Option<Contract>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contracts WHERE contract_id = $1"
        )))
        .bind(contract_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| contract(&r, 0))
        .transpose()?;
        if before.is_some() {
            end(&mut tx, contract_id, last_day, now).await?;
        }
        tx.commit().await?;
        Ok(before)
    }

    pub async fn list_contracts(&self) -> Result<Vec<Contract>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contracts ORDER BY account, contract_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| contract(r, 0)).collect()
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// `last_day` as the contract's end date, when it ends later now.
async fn end(
    tx: &mut Tx,
    contract_id: &str,
    last_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE contracts SET end_date = $1, updated_at = $2 WHERE contract_id = $3 AND end_date > $1",
    )
    .bind(last_day.to_string())
    .bind(to_ms(now))
    .bind(contract_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Insert or update one contract and its lookup keys.
async fn upsert(tx: &mut Tx, c: &Contract, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query(
                "INSERT INTO contracts (contract_id, account, tier, products, domains, contacts, country, start_date, end_date, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (contract_id) DO UPDATE SET \
                 account = excluded.account, tier = excluded.tier, products = excluded.products, domains = excluded.domains, \
                 contacts = excluded.contacts, country = excluded.country, start_date = excluded.start_date, \
                 end_date = excluded.end_date, updated_at = excluded.updated_at",
            )
            .bind(c.contract_id.clone())
            .bind(c.account.clone())
            .bind(c.tier.clone())
            .bind(c.products.join(";"))
            .bind(c.domains.join(";"))
            .bind(c.contacts.join(";"))
            .bind(c.country.clone())
            .bind(c.start.to_string())
            .bind(c.end.to_string())
            .bind(to_ms(now))
            .execute(&mut **tx)
            .await?;
    sqlx::query("DELETE FROM contract_keys WHERE contract_id = $1")
        .bind(c.contract_id.clone())
        .execute(&mut **tx)
        .await?;
    let keys = c
        .contacts
        .iter()
        .map(|a| format!("c:{}", a.to_lowercase()))
        .chain(c.domains.iter().map(|d| format!("d:{}", d.to_lowercase())));
    for key in keys {
        sqlx::query(
            "INSERT INTO contract_keys (key, contract_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(c.contract_id.clone())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What the store says about a customer mail and its sender, read in one round trip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SenderFacts {
    /// The case holding this mail already (same dedup key).
    pub duplicate: Option<CaseNumber>,
    pub sent: SentCounts,
    /// Contracts that could cover the sender: by contact address or by its domain or any
    /// parent domain. The pure entitlement rules then pick (and reject free-mail domains).
    pub contracts: Vec<Contract>,
}

impl Work {
    /// The facts about a customer mail that do not depend on its thread. The mail's
    /// dedup key counts as looked up (see [`Work::write_plan`]).
    pub async fn sender_facts(
        &mut self,
        dedup_key: &str,
        sender: &str,
        counting: &SentCounting,
    ) -> Result<SenderFacts, StoreError> {
        let email = sender.to_lowercase();
        let mut keys = vec![format!("c:{email}")];
        if let Some((_, domain)) = email.rsplit_once('@') {
            let labels: Vec<&str> = domain.split('.').collect();
            keys.extend(
                (0..labels.len().saturating_sub(1)).map(|i| format!("d:{}", labels[i..].join("."))),
            );
        }
        let placeholders: Vec<String> = (3..3 + keys.len()).map(|i| format!("${i}")).collect();
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect();
        // One row without contracts, else one per contract.
        let sql = format!(
            "SELECT (SELECT case_id FROM messages WHERE dedup_key = $1), {}, {} FROM (SELECT 1 AS one) d \
             LEFT JOIN contracts c ON c.contract_id IN (SELECT contract_id FROM contract_keys WHERE key IN ({})) \
             ORDER BY c.contract_id",
            sent_counts_sql(counting, 3 + keys.len()),
            columns.join(", "),
            placeholders.join(", ")
        );
        // Safe: only the number of `$N` placeholders varies; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dedup_key.to_string())
            .bind(recipient_key(sender));
        for k in keys {
            q = q.bind(k);
        }
        q = bind_sent_counts(q, counting);
        let rows = q.fetch_all(&mut *self.tx).await?;
        let mut facts = SenderFacts::default();
        if let Some(r) = rows.first() {
            facts.duplicate = r.get::<Option<i64>, _>(0).map(CaseNumber);
            facts.sent = SentCounts {
                auto_replies: r.get(1),
                refusals: r.get(2),
            };
        }
        for r in rows
            .iter()
            .filter(|r| r.get::<Option<String>, _>(3).is_some())
        {
            facts.contracts.push(contract(r, 3)?);
        }
        self.absent = facts.duplicate.is_none().then(|| dedup_key.to_string());
        Ok(facts)
    }
}

/// A contract from its [`COLUMNS`], the first at index `at`.
fn contract(r: &AnyRow, at: usize) -> Result<Contract, StoreError> {
    let list = |i: usize| -> Vec<String> {
        r.get::<String, _>(at + i)
            .split(';')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let date = |i: usize, column: &'static str| -> Result<NaiveDate, StoreError> {
        let s: String = r.get(at + i);
        s.parse()
            .map_err(|_| StoreError::Corrupt { column, value: s })
    };
    Ok(Contract {
        contract_id: r.get(at),
        account: r.get(at + 1),
        tier: r.get(at + 2),
        products: list(3),
        domains: list(4),
        contacts: list(5),
        country: r.get(at + 6),
        start: date(7, "contracts.start_date")?,
        end: date(8, "contracts.end_date")?,
    })
}
