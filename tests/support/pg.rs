//! A throwaway PostgreSQL database per test on the server `scripts/test` makes sure is
//! up (127.0.0.1:5432, trust auth); `CASEGATE_TEST_PG` overrides the server URL.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

pub struct PgDatabase {
    admin: String,
    name: String,
    /// The URL of the new, empty database.
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin = std::env::var("CASEGATE_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!(
            "casegate_t{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test starts it)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    pub async fn drop(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}
