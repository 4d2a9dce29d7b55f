//! Several statements of a unit of work sent to the database as one.
//!
//! Every statement sqlx runs on SQLite is a round trip to its worker thread: two thread
//! hand-offs, which the intake's profile found the largest cost per mail (about 40% of
//! its CPU, at ten statements for a new case). A plan's inserts need nothing back, so
//! they are collected here and sent as one multi-statement query on SQLite (its
//! `$N` placeholders renumbered into one argument list). PostgreSQL's extended
//! protocol takes one statement per query: there they run one by one, in the same
//! order, with the same effect.
//! Safe to run with `AssertSqlSafe`: every statement is a literal of the store (or
//! built from literals and placeholder counts), and every value is bound.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};

use super::StoreError;

/// A bound value, typed as its column is (PostgreSQL needs the type of a NULL).
#[derive(Debug, Clone)]
pub(super) enum Value<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<&'a [u8]>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(Some(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<Option<String>> for Value<'_> {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value<'_> {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}

impl From<Option<&str>> for Value<'_> {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_string))
    }
}

impl<'a> From<Option<&'a [u8]>> for Value<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Value::Blob(v)
    }
}

/// One statement: its SQL (placeholders `$1..` of its own) and its values.
#[derive(Debug)]
struct Statement<'a> {
    sql: String,
    values: Vec<Value<'a>>,
}

/// Statements to run in order in one transaction; rows of any that return some come
/// back together, in order.
#[derive(Debug, Default)]
pub(super) struct Batch<'a> {
    statements: Vec<Statement<'a>>,
}

impl<'a> Batch<'a> {
    pub(super) fn new() -> Self {
        Batch::default()
    }

    /// Add a statement whose placeholders `$1..$n` are `values`, in order.
    pub(super) fn push(&mut self, sql: impl Into<String>, values: Vec<Value<'a>>) {
        self.statements.push(Statement {
            sql: sql.into(),
            values,
        });
    }

    /// Run every statement; the rows they returned.
    pub(super) async fn run(
        self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        self.run_on(tx).await
    }

    /// [`Batch::run`] on a connection outside a transaction: each statement commits on
    /// its own, and the first that fails stops the rest.
    pub(super) async fn run_on(self, conn: &mut AnyConnection) -> Result<Vec<AnyRow>, StoreError> {
        if self.statements.is_empty() {
            return Ok(Vec::new());
        }
        if !is_sqlite(conn) {
            let mut rows = Vec::new();
            for s in &self.statements {
                let query = bind_all(sqlx::query(AssertSqlSafe(s.sql.as_str())), &s.values);
                rows.extend(query.fetch_all(&mut *conn).await?);
            }
            return Ok(rows);
        }
        let (sql, values) = self.joined();
        Ok(bind_all(sqlx::query(AssertSqlSafe(sql)), &values)
            .fetch_all(conn)
            .await?)
    }

    /// One SQL text of all statements, each placeholder moved past the values of the
    /// statements before it, and one list of all values.
    fn joined(self) -> (String, Vec<Value<'a>>) {
        let length = self.statements.iter().map(|s| s.sql.len() + 8).sum();
        let mut sql = String::with_capacity(length);
        let mut values = Vec::new();
        for s in self.statements {
            if !sql.is_empty() {
                sql.push_str("; ");
            }
            renumber(&s.sql, values.len(), &mut sql);
            values.extend(s.values);
        }
        (sql, values)
    }
}

/// The connection (or a transaction on it, by deref) is SQLite's: the store's helpers
/// take only the connection, not the store's `Backend`.
pub(super) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

fn bind_all<'q>(mut query: AnyQuery<'q>, values: &'q [Value<'_>]) -> AnyQuery<'q> {
    for v in values {
        query = match v {
            Value::Int(i) => query.bind(*i),
            Value::Real(f) => query.bind(*f),
            Value::Text(s) => query.bind(s.as_deref()),
            Value::Blob(b) => query.bind(*b),
        };
    }
    query
}

/// Append `sql` to `out` with every placeholder `$n` written as `$(n + offset)`.
/// The store's SQL has no `$` outside placeholders (no string literal holds one).
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// `($1, $2, ...), ($n, ...)`: placeholders for a multi-row VALUES list.
pub(super) fn values_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_join_with_their_placeholders_moved_past_the_values_before_them() {
        let mut batch = Batch::new();
        batch.push(
            "INSERT INTO a VALUES ($1, $2, $1)",
            vec![1_i64.into(), 2_i64.into()],
        );
        batch.push("SELECT changes()", Vec::new());
        batch.push(
            "INSERT INTO b VALUES ($2, $10, $1)",
            (0..10).map(|i: i64| i.into()).collect(),
        );
        let (sql, values) = batch.joined();
        assert_eq!(
            sql,
            "INSERT INTO a VALUES ($1, $2, $1); SELECT changes(); INSERT INTO b VALUES ($4, $12, $3)"
        );
        assert_eq!(values.len(), 12);
    }

    #[test]
    fn a_dollar_sign_without_digits_is_kept_as_it_is() {
        let mut out = String::new();
        renumber("x = $ AND y = $3$", 5, &mut out);
        assert_eq!(out, "x = $ AND y = $8$");
    }
}
