//! IMAP checkpoints: per mailbox, the UIDVALIDITY seen and the highest UID settled.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, Work, to_ms};

/// Where reading a mailbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uid_validity: u32,
    /// Every message with a UID up to this one has been settled.
    pub last_uid: u32,
}

impl Store {
    pub async fn checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row =
            sqlx::query("SELECT uid_validity, last_uid FROM mailbox_state WHERE mailbox = $1")
                .bind(mailbox.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| Checkpoint {
            uid_validity: r.get::<i64, _>(0) as u32,
            last_uid: r.get::<i64, _>(1) as u32,
        }))
    }

    pub async fn save_checkpoint(
        &self,
        mailbox: &str,
        cp: Checkpoint,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        save(&mut conn, mailbox, cp, now).await
    }
}

impl Work {
    /// Record the checkpoint with the rest of the unit of work.
    pub async fn save_checkpoint(
        &mut self,
        mailbox: &str,
        cp: Checkpoint,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        save(&mut self.tx, mailbox, cp, now).await
    }
}

async fn save(
    conn: &mut AnyConnection,
    mailbox: &str,
    cp: Checkpoint,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mailbox_state (mailbox, uid_validity, last_uid, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, \
         last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(mailbox.to_string())
    .bind(i64::from(cp.uid_validity))
    .bind(i64::from(cp.last_uid))
    .bind(to_ms(now))
    .execute(conn)
    .await?;
    Ok(())
}
