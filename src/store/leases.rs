//! Instances and mailbox leases: several `casegate run` processes on one PostgreSQL
//! database, each mailbox read by exactly one of them at a time.
//!
//! An instance keeps its `instances` row alive with a heartbeat. A mailbox's lease row
//! names its holder, a fencing token and an expiry the holder renews. An instance takes
//! a lease that is free or expired, and every taking increments the token. Every intake
//! commit checks (holder, token) inside its own transaction ([`Work::fence`]): a holder
//! that was paused or cut off past its expiry, whose lease another instance took
//! meanwhile, finds no row and rolls back. The check's UPDATE also locks the lease row
//! until the commit ends, so a takeover waits for a commit in flight instead of
//! overlapping it. Times come from the instances' clocks (`now` is an input, as
//! everywhere): keep them synchronised (NTP) to well under the lease time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, Work, from_ms, to_ms};

/// A lease this instance holds: what it proves in every commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mailbox: String,
    pub holder: String,
    /// The fencing token: incremented by every taking of the lease.
    pub token: i64,
}

/// An instance as `casegate status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRow {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// A mailbox's lease as `casegate status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    pub mailbox: String,
    /// `None` once released (a clean shutdown, or handed over to spread the load).
    pub holder: Option<String>,
    pub token: i64,
    /// Since when the holder holds it.
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_commit_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Record this instance as alive (at start-up, and as its heartbeat).
    pub async fn heartbeat_instance(
        &self,
        name: &str,
        host: &str,
        pid: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (name, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(name.to_string())
        .bind(host.to_string())
        .bind(i64::from(pid))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A clean shutdown: the instance no longer counts as alive.
    pub async fn remove_instance(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE name = $1")
            .bind(name.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Instances whose last heartbeat is at `since` or later.
    pub async fn alive_instances(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE heartbeat_at >= $1")
            .bind(to_ms(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Take `mailbox`'s lease for `holder` until `until` when it is free or expired at
    /// `now`; `None` when another instance holds it.
    pub async fn acquire_lease(
        &self,
        mailbox: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let lease = |token| Lease {
            mailbox: mailbox.to_string(),
            holder: holder.to_string(),
            token,
        };
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO mailbox_leases (mailbox, holder, token, acquired_at, expires_at) \
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (mailbox) DO NOTHING RETURNING token",
        )
        .bind(mailbox.to_string())
        .bind(holder.to_string())
        .bind(to_ms(now))
        .bind(to_ms(until))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(token) = inserted {
            return Ok(Some(lease(token)));
        }
        let taken: Option<i64> = sqlx::query_scalar(
            "UPDATE mailbox_leases SET holder = $2, token = token + 1, acquired_at = $3, expires_at = $4 \
             WHERE mailbox = $1 AND (holder IS NULL OR expires_at <= $3) RETURNING token",
        )
        .bind(mailbox.to_string())
        .bind(holder.to_string())
        .bind(to_ms(now))
        .bind(to_ms(until))
        .fetch_optional(&self.pool)
        .await?;
        Ok(taken.map(lease))
    }

    /// Extend a held lease to `until`; false when it was lost (taken over or released).
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE mailbox_leases SET expires_at = $1 WHERE mailbox = $2 AND holder = $3 AND token = $4",
        )
        .bind(to_ms(until))
        .bind(lease.mailbox.clone())
        .bind(lease.holder.clone())
        .bind(lease.token)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Give a held lease up at once (shutdown, or to spread the mailboxes): another
    /// instance may take it without waiting for it to expire.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mailbox_leases SET holder = NULL, expires_at = 0 WHERE mailbox = $1 AND holder = $2 AND token = $3",
        )
        .bind(lease.mailbox.clone())
        .bind(lease.holder.clone())
        .bind(lease.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every instance row and every lease, by name.
    pub async fn cluster_state(&self) -> Result<(Vec<InstanceRow>, Vec<LeaseRow>), StoreError> {
        let instances = sqlx::query(
            "SELECT name, host, pid, started_at, heartbeat_at FROM instances ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| InstanceRow {
            name: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            started_at: from_ms(r.get(3)),
            heartbeat_at: from_ms(r.get(4)),
        })
        .collect();
        let leases = sqlx::query(
            "SELECT mailbox, holder, token, acquired_at, expires_at, last_commit_at FROM mailbox_leases ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| LeaseRow {
            mailbox: r.get(0),
            holder: r.get(1),
            token: r.get(2),
            acquired_at: from_ms(r.get(3)),
            expires_at: from_ms(r.get(4)),
            last_commit_at: r.get::<Option<i64>, _>(5).map(from_ms),
        })
        .collect();
        Ok((instances, leases))
    }

    /// SLA clocks still running, and how many of them are due at `now` (the timer's backlog).
    pub async fn clock_backlog(&self, now: DateTime<Utc>) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN next_check_at <= $1 THEN 1 ELSE 0 END), 0) \
             FROM sla_clocks WHERE next_check_at IS NOT NULL",
        )
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1)))
    }
}

impl Work {
    /// The fencing check: this unit of work commits only while `lease` is still the
    /// mailbox's current lease. Run it last, just before the commit: its row lock makes
    /// a takeover wait until the commit ends.
    pub async fn fence(&mut self, lease: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE mailbox_leases SET last_commit_at = $1 WHERE mailbox = $2 AND holder = $3 AND token = $4",
        )
        .bind(to_ms(now))
        .bind(lease.mailbox.clone())
        .bind(lease.holder.clone())
        .bind(lease.token)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost {
                mailbox: lease.mailbox.clone(),
                token: lease.token,
            })
        }
    }
}
