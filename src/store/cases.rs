//! Committing plans and gathering the facts the decision step needs.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::batch::{Batch, Value, is_sqlite, values_rows};
use super::outbox::{INSERT_OUTBOX, outbox_values};
use super::raw_files::{FILE_BYTES, RawFiles};
use super::{Backend, StoreError, Work, from_ms, to_ms};
use crate::domain::decide::{
    self, CaseUpdate, EventOn, NewCase, Plan, PlannedEvent, Role, RunningClock, Target,
};
use crate::domain::entitlement::Entitlement;
use crate::domain::event::EventKind;
use crate::domain::language::Language;
use crate::domain::outbound::OutboundKind;
use crate::domain::thread::{CaseDetails, CaseFacts, ThreadFacts};
use crate::domain::triage::{ClockKind, ClockStart};
use crate::domain::{CaseNumber, Status};

/// A message row to store with a plan.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub direction: &'static str,
    pub dedup_key: String,
    pub message_id: Option<String>,
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub received_at: DateTime<Utc>,
    pub text: String,
    pub html_only: bool,
    pub size: u64,
    /// The mail as received, kept for audit and replay.
    pub raw: Option<Vec<u8>>,
    pub attachments: Vec<NewAttachment>,
    /// The support address of our mailbox it was read from: a case it opens remembers
    /// it, and its customer mail goes out from it. `None`: `gateway.support_address`.
    pub mailbox_address: Option<String>,
}

/// An attachment's row: its content stays in the message's raw mail (stored once).
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// Where the part lies in the raw mail (bytes), when its content is kept (it was
    /// within the size cap).
    pub raw_span: Option<(u64, u64)>,
}

/// A composed outbound mail to queue with a plan.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// A template for automatic mail (counted by the rate limit), else a forward or an
    /// engineer's reply.
    pub kind: OutboundKind,
    pub role: Role,
    pub message_id: String,
    /// Envelope sender and the From address.
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub raw: Vec<u8>,
}

/// The plan's mails, composed; a mail that could not be composed is a failure, with the
/// event ([`crate::domain::decide::notice_failed`]) that the commit records.
#[derive(Debug, Clone, Default)]
pub struct Composed {
    pub mails: Vec<Outbound>,
    pub failures: Vec<PlannedEvent>,
}

/// The result of committing one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Stored; `opened` when it opened the case.
    Stored { case: CaseNumber, opened: bool },
    /// This mail (same dedup key) was stored before: nothing was written.
    Duplicate { case: CaseNumber },
}

impl Work {
    /// The case holding a message with this dedup key, if it was stored before.
    pub async fn find_duplicate(
        &mut self,
        dedup_key: &str,
    ) -> Result<Option<CaseNumber>, StoreError> {
        let row = sqlx::query("SELECT case_id FROM messages WHERE dedup_key = $1")
            .bind(dedup_key.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        let found = row.map(|r| CaseNumber(r.get::<i64, _>(0)));
        self.absent = found.is_none().then(|| dedup_key.to_string());
        Ok(found)
    }

    /// Candidate cases for threading: the most recent referenced message we know
    /// (In-Reply-To first, then References from newest to oldest) and the tagged case.
    pub async fn thread_facts(
        &mut self,
        references: &[String],
        tag: Option<CaseNumber>,
        sender: &str,
    ) -> Result<ThreadFacts, StoreError> {
        let mut facts = ThreadFacts::default();
        for mid in references.iter().take(50) {
            let row = sqlx::query(
                "SELECT case_id FROM messages WHERE message_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(mid.clone())
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(r) = row {
                facts.by_reference = self.case_facts(CaseNumber(r.get(0)), sender).await?;
                break;
            }
        }
        if let Some(n) = tag {
            facts.by_tag = self.case_facts(n, sender).await?;
        }
        Ok(facts)
    }

    /// The running SLA clocks of a case.
    pub async fn running_clocks(
        &mut self,
        case: CaseNumber,
    ) -> Result<Vec<RunningClock>, StoreError> {
        let rows = sqlx::query("SELECT id, kind, started_at FROM sla_clocks WHERE case_id = $1 AND state = 'running' ORDER BY id")
            .bind(case.0)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .iter()
            .map(|r| RunningClock {
                id: r.get(0),
                kind: if r.get::<String, _>(1) == "next_response" {
                    ClockKind::NextResponse
                } else {
                    ClockKind::FirstResponse
                },
                started_at: from_ms(r.get(2)),
            })
            .collect())
    }

    /// The latest customer message of a case: (Message-ID, row id).
    pub async fn last_customer_message(
        &mut self,
        case: CaseNumber,
    ) -> Result<Option<(Option<String>, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT message_id, id FROM messages WHERE case_id = $1 AND direction = 'in' AND role = 'customer' \
             ORDER BY received_at DESC, id DESC LIMIT 1",
        )
        .bind(case.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The facts about one case, for a mail that names it.
    pub async fn case_facts(
        &mut self,
        n: CaseNumber,
        sender: &str,
    ) -> Result<Option<CaseFacts>, StoreError> {
        let row = sqlx::query(
            "SELECT status, closed_at, customer, \
             (SELECT COUNT(*) FROM case_participants p WHERE p.case_id = c.id AND p.email = $2), \
             subject, customer_name, account, language, entitlement, tier, severity, region, country, \
             queue, owner, product, COALESCE(next_response_due, first_response_due), \
             CAST(CASE WHEN feedback_asked_at IS NULL AND feedback_rating IS NULL THEN 0 ELSE 1 END AS BIGINT) FROM cases c WHERE id = $1",
        )
        .bind(n.0)
        .bind(sender.to_lowercase())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let customer: String = r.get(2);
        let status = parse_status(&r.get::<String, _>(0))?;
        Ok(Some(CaseFacts {
            number: n,
            status,
            closed_at: r.get::<Option<i64>, _>(1).map(from_ms),
            customer_domain: customer
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
            sender_participates: r.get::<i64, _>(3) > 0,
            details: CaseDetails {
                subject: r.get(4),
                customer,
                customer_name: r.get(5),
                account: r.get(6),
                language: parse_column("cases.language", r.get(7), Language::parse)?,
                entitlement: parse_column("cases.entitlement", r.get(8), Entitlement::parse)?,
                tier: r.get(9),
                severity: r
                    .get::<Option<i64>, _>(10)
                    .and_then(|s| u8::try_from(s).ok()),
                region: r.get(11),
                country: r.get(12),
                queue: r.get(13),
                owner: r.get(14),
                product: r.get(15),
                status: Some(status),
                response_due: r.get::<Option<i64>, _>(16).map(from_ms),
                feedback_asked: r.get::<i64, _>(17) != 0,
            },
        }))
    }

    /// Write a plan and its message. A concurrent or earlier copy of the same mail (same
    /// dedup key) writes nothing: never two cases. On PostgreSQL the writes run in a
    /// savepoint, since another instance may commit the same mail meanwhile and only
    /// this mail's writes must be undone. On SQLite the unit of work holds the write
    /// lock, so a key looked up here before cannot appear meanwhile: no savepoint (each
    /// costs two round trips and a journal of every page it touches).
    /// `render` composes the plan's mails once the case number is known; its second
    /// argument numbers the case's outbound mails (for stable Message-IDs).
    pub async fn write_plan<F>(
        &mut self,
        plan: &Plan,
        msg: &NewMessage,
        now: DateTime<Utc>,
        render: F,
    ) -> Result<Committed, StoreError>
    where
        F: FnOnce(CaseNumber, i64, Option<String>) -> Composed,
    {
        let written = match self.backend {
            Backend::Postgres => {
                let mut savepoint = sqlx::Acquire::begin(&mut self.tx).await?;
                let written =
                    write_plan(&mut savepoint, plan, Some(msg), None, now, render, None).await?;
                match written {
                    Some(_) => savepoint.commit().await?,
                    None => savepoint.rollback().await?,
                }
                written
            }
            Backend::Sqlite => {
                let checked = self.absent.as_deref() == Some(msg.dedup_key.as_str());
                if !checked && let Some(case) = self.find_duplicate(&msg.dedup_key).await? {
                    return Ok(Committed::Duplicate { case });
                }
                // A large raw mail goes to a file named in its row.
                let file = match (&self.raw_files, &msg.raw) {
                    (Some(files), Some(raw)) if raw.len() >= FILE_BYTES => {
                        Some((files, RawFiles::name_for(&msg.dedup_key), raw))
                    }
                    _ => None,
                };
                let numbered = self.next_case.filter(|_| numbers_its_case(plan));
                match write_plan(
                    &mut self.tx,
                    plan,
                    Some(msg),
                    file.as_ref().map(|(_, name, _)| name.as_str()),
                    now,
                    render,
                    numbered,
                )
                .await?
                {
                    Some(w) => {
                        if let Some((files, name, raw)) = file {
                            self.writing.push(files.write(name, raw));
                        }
                        self.next_case = next_case(self.next_case, plan, &w);
                        Some(w)
                    }
                    // The write lock makes this impossible; if it happens anyway, this
                    // mail's partial writes are in the transaction: give it all up.
                    None => return Err(StoreError::Conflict(msg.dedup_key.clone())),
                }
            }
        };
        self.absent = None;
        match written {
            Some((case, opened, queued)) => {
                self.mails += 1;
                self.queued_mail |= queued;
                Ok(Committed::Stored { case, opened })
            }
            // PostgreSQL: another writer stored the mail first; its savepoint is undone.
            None => {
                let existing = self.find_duplicate(&msg.dedup_key).await?;
                Ok(Committed::Duplicate {
                    case: existing.unwrap_or(plan_case(plan)),
                })
            }
        }
    }
}

impl Work {
    /// Write a plan that no mail brought (an admin's command on an existing case): the
    /// case changes, events and outbound mail, no message.
    pub async fn write_plan_without_message<F>(
        &mut self,
        plan: &Plan,
        now: DateTime<Utc>,
        render: F,
    ) -> Result<CaseNumber, StoreError>
    where
        F: FnOnce(CaseNumber, i64, Option<String>) -> Composed,
    {
        match write_plan(&mut self.tx, plan, None, None, now, render, None).await? {
            Some(written @ (case, _, queued)) => {
                self.queued_mail |= queued;
                self.next_case = next_case(self.next_case, plan, &written);
                Ok(case)
            }
            None => Err(StoreError::Conflict(format!("case {}", plan_case(plan)))),
        }
    }
}

/// A plan that opens a case and changes nothing else on it ([`apply_update`] runs
/// before the batch that inserts a numbered case).
fn numbers_its_case(plan: &Plan) -> bool {
    matches!(plan.target, Target::New(_)) && plan.update == CaseUpdate::default()
}

/// The number the next case opened in this unit of work gets, when known: after a case
/// this unit of work opened, on SQLite, whose write lock keeps every other writer out.
/// A `#split` opens a case on its own: the number is read again from the next insert.
fn next_case(
    known: Option<i64>,
    plan: &Plan,
    (case, opened, _): &(CaseNumber, bool, bool),
) -> Option<i64> {
    if plan.update.split_message.is_some() {
        None
    } else if *opened {
        Some(case.0 + 1)
    } else {
        known
    }
}

/// The case a plan targets, when it exists already.
fn plan_case(plan: &Plan) -> CaseNumber {
    match &plan.target {
        Target::Existing { number, .. } => *number,
        Target::New(_) => CaseNumber(0),
    }
}

/// The writes of one plan: `None` (and partial writes to roll back) when the message's
/// dedup key exists already; else the case, whether it opened, and whether mail was queued.
/// Everything after the case row goes to the database as one [`Batch`]; with `numbered`
/// (SQLite: the number a new case gets, see [`next_case`]) the case row too.
async fn write_plan<F>(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    msg: Option<&NewMessage>,
    raw_file: Option<&str>,
    now: DateTime<Utc>,
    render: F,
    numbered: Option<i64>,
) -> Result<Option<(CaseNumber, bool, bool)>, StoreError>
where
    F: FnOnce(CaseNumber, i64, Option<String>) -> Composed,
{
    let address = msg.and_then(|m| m.mailbox_address.as_deref());
    let mut batch = Batch::new();
    let (case, opened) = match &plan.target {
        Target::New(c) if let Some(number) = numbered => {
            let mut values = case_values(c, address, &plan.clocks, now);
            values.push(number.into());
            batch.push(INSERT_CASE_NUMBERED.as_str(), values);
            (CaseNumber(number), true)
        }
        Target::New(c) => (insert_case(tx, c, address, &plan.clocks, now).await?, true),
        Target::Existing { number, status, .. } => {
            touch_case(tx, *number, *status, now).await?;
            (*number, false)
        }
    };
    apply_update(tx, case, &plan.update, now).await?;
    // The mails are composed before the batch borrows them.
    let composed = if plan.mails.is_empty() {
        None
    } else {
        // A case opened by this plan has sent nothing yet, from the address just stored.
        let (sent, from) = if opened {
            (0, address.map(str::to_string))
        } else {
            outbound_facts(tx, case).await?
        };
        Some(render(case, sent + 1, from))
    };
    // SQLite: the message goes with the rest, and `changes()` tells whether it was
    // stored (the write lock leaves no room for a concurrent copy). PostgreSQL: another
    // instance may have committed the same mail meanwhile; its insert runs first, alone.
    let mut check_in_batch = false;
    if let Some(msg) = msg {
        if is_sqlite(tx) {
            batch.push(
                INSERT_MESSAGE,
                message_values(case, msg, plan.role.as_str(), raw_file),
            );
            batch.push("SELECT changes()", Vec::new());
            check_in_batch = true;
        } else if insert_message(tx, case, msg, plan.role.as_str(), raw_file)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        push_attachments(&mut batch, &msg.dedup_key, &msg.attachments);
    }
    push_participants(&mut batch, case, &plan.participants);
    super::sla::push_clocks(&mut batch, case, &plan.clocks, opened);
    let events: Vec<_> = plan
        .events
        .iter()
        .map(|e| (event_case(e.on, case), e.actor.as_str(), e.kind, &e.detail))
        .collect();
    push_events(&mut batch, now, &events);
    let mut queued = false;
    if let Some(composed) = &composed {
        for out in &composed.mails {
            push_outbound(&mut batch, case, out, now);
            queued = true;
        }
        let failures: Vec<_> = composed
            .failures
            .iter()
            .map(|e| (event_case(e.on, case), e.actor.as_str(), e.kind, &e.detail))
            .collect();
        push_events(&mut batch, now, &failures);
    }
    let rows = batch.run(tx).await?;
    if check_in_batch && rows.first().map(|r| r.get::<i64, _>(0)) != Some(1) {
        return Ok(None);
    }
    Ok(Some((case, opened, queued)))
}

/// The case an event of a plan for `target` goes to.
fn event_case(on: EventOn, target: CaseNumber) -> CaseNumber {
    match on {
        EventOn::Target => target,
        EventOn::Case(n) => n,
    }
}

async fn touch_case(
    tx: &mut Transaction<'_, Any>,
    n: CaseNumber,
    status: Option<Status>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match status {
        Some(Status::Closed) => {
            sqlx::query(
                "UPDATE cases SET status = 'closed', updated_at = $1, closed_at = $1 WHERE id = $2",
            )
            .bind(to_ms(now))
            .bind(n.0)
            .execute(&mut **tx)
            .await?;
        }
        Some(s) => {
            sqlx::query(
                "UPDATE cases SET status = $1, updated_at = $2, closed_at = NULL WHERE id = $3",
            )
            .bind(s.as_str())
            .bind(to_ms(now))
            .bind(n.0)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
                .bind(to_ms(now))
                .bind(n.0)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// For a plan's mails on an existing case: the mails queued for it so far (the next is
/// numbered after them, for stable Message-IDs) and the support address its customer
/// mail goes out from, when not the gateway's.
async fn outbound_facts(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
) -> Result<(i64, Option<String>), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE case_id = $1), support_address FROM cases WHERE id = $1",
    )
    .bind(case.0)
    .fetch_one(&mut **tx)
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// A new case, showing the due times of the clocks its plan starts.
async fn insert_case(
    tx: &mut Transaction<'_, Any>,
    c: &NewCase,
    support_address: Option<&str>,
    clocks: &[ClockStart],
    now: DateTime<Utc>,
) -> Result<CaseNumber, StoreError> {
    let mut batch = Batch::new();
    batch.push(
        returning_id(tx, INSERT_CASE),
        case_values(c, support_address, clocks, now),
    );
    inserted_id(&batch.run(tx).await?)
        .map(CaseNumber)
        .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
}

const INSERT_CASE: &str = "INSERT INTO cases (subject, status, customer, customer_name, related_case, created_at, \
     updated_at, queue, product, language, language_confidence, region, severity, account, entitlement, tier, \
     country, contract_id, time_zone, first_response_due, next_response_due, support_address) \
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

/// [`INSERT_CASE`] with the case number given (`$22`): see [`Work::write_plan`].
static INSERT_CASE_NUMBERED: LazyLock<String> = LazyLock::new(|| {
    INSERT_CASE
        .replacen("INSERT INTO cases (", "INSERT INTO cases (id, ", 1)
        .replacen("VALUES (", "VALUES ($22, ", 1)
});

/// The values of [`INSERT_CASE`].
fn case_values<'a>(
    c: &NewCase,
    support_address: Option<&str>,
    clocks: &[ClockStart],
    now: DateTime<Utc>,
) -> Vec<Value<'a>> {
    let t = &c.triage;
    let contract = t.contract.as_ref();
    let due = |kind: ClockKind| {
        clocks
            .iter()
            .rev()
            .find(|k| k.kind == kind)
            .map(|k| to_ms(k.due_at))
    };
    vec![
        c.subject.as_str().into(),
        c.status.as_str().into(),
        c.customer.as_str().into(),
        c.customer_name.as_deref().into(),
        c.related.map(|n| n.0).into(),
        to_ms(now).into(),
        t.queue.as_deref().into(),
        t.product.as_str().into(),
        t.language.as_str().into(),
        t.language_confidence.into(),
        t.region.as_str().into(),
        i64::from(t.severity).into(),
        contract.map(|k| k.account.as_str()).into(),
        t.entitlement.as_str().into(),
        contract.map(|k| k.tier.as_str()).into(),
        contract.map(|k| k.country.as_str()).into(),
        contract.map(|k| k.contract_id.as_str()).into(),
        t.time_zone.name().into(),
        due(ClockKind::FirstResponse).into(),
        due(ClockKind::NextResponse).into(),
        support_address.into(),
    ]
}

/// An INSERT that also gives back the id of its new row, in one round trip; no row when
/// its conflict clause skipped the insert (read it with [`inserted_id`]). SQLite runs a
/// `RETURNING` clause as a trigger, and a statement with a trigger keeps a statement
/// journal, a second copy of every page it touches (16 KiB each): a twentieth of the
/// intake's CPU. There a second statement of the same query reads the id instead.
/// Safe to run with `AssertSqlSafe`: `insert` is a literal of the store, every value is
/// bound, and the suffix is fixed.
pub(super) fn returning_id(tx: &Transaction<'_, Any>, insert: &str) -> String {
    if is_sqlite(tx) {
        format!("{insert}; SELECT last_insert_rowid() WHERE changes() > 0")
    } else {
        format!("{insert} RETURNING id")
    }
}

/// The id a [`returning_id`] query gave back.
pub(super) fn inserted_id(rows: &[AnyRow]) -> Option<i64> {
    rows.first().map(|r| r.get(0))
}

/// Everything an engineer's reply (or a rating) changes besides the status.
async fn apply_update(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    u: &CaseUpdate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(owner) = &u.owner {
        sqlx::query("UPDATE cases SET owner = $1 WHERE id = $2")
            .bind(owner.clone())
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(sev) = u.severity {
        sqlx::query("UPDATE cases SET severity = $1 WHERE id = $2")
            .bind(i64::from(sev))
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(queue) = &u.queue {
        sqlx::query("UPDATE cases SET queue = $1 WHERE id = $2")
            .bind(queue.clone())
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    for (id, due, warn) in &u.reclocked {
        sqlx::query(
            "UPDATE sla_clocks SET due_at = $1, warn_at = $2, \
             next_check_at = CASE WHEN warned_at IS NULL THEN $2 ELSE $1 END WHERE id = $3 AND state = 'running'",
        )
        .bind(to_ms(*due))
        .bind(to_ms(*warn))
        .bind(*id)
        .execute(&mut **tx)
        .await?;
    }
    if !u.reclocked.is_empty() {
        refresh_due_times(tx, case).await?;
    }
    if u.responded {
        sqlx::query(
            "UPDATE cases SET first_response_at = COALESCE(first_response_at, $1) WHERE id = $2",
        )
        .bind(to_ms(now))
        .bind(case.0)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE sla_clocks SET state = 'met', met_at = $1, next_check_at = NULL WHERE case_id = $2 AND state = 'running'")
            .bind(to_ms(now))
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    // Issue 18b: article drafts and publications.
    super::kb::apply_kb(tx, case, &u.kb, now).await?;
    for (kind, target) in &u.links {
        sqlx::query("INSERT INTO case_links (case_id, kind, target) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(case.0)
            .bind(kind.clone())
            .bind(target.clone())
            .execute(&mut **tx)
            .await?;
    }
    if let Some(rating) = u.feedback {
        sqlx::query("UPDATE cases SET feedback_rating = $1, feedback_at = $2, feedback_comment = $3 WHERE id = $4")
            .bind(i64::from(rating))
            .bind(to_ms(now))
            .bind(u.feedback_comment.clone())
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    if u.feedback_asked {
        sqlx::query(
            "UPDATE cases SET feedback_asked_at = COALESCE(feedback_asked_at, $1) WHERE id = $2",
        )
        .bind(to_ms(now))
        .bind(case.0)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(resolution) = u.resolution {
        sqlx::query("UPDATE cases SET resolution = $1 WHERE id = $2")
            .bind(resolution.as_str())
            .bind(case.0)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(row) = u.split_message {
        split(tx, case, row, now).await?;
    }
    if let Some((message_id, detail)) = &u.bounced {
        super::outbox::record_bounce(tx, message_id, detail, now).await?;
    }
    Ok(())
}

/// The case shows the due times of its latest clocks.
async fn refresh_due_times(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET \
         first_response_due = (SELECT MAX(due_at) FROM sla_clocks WHERE case_id = $1 AND kind = 'first_response'), \
         next_response_due = (SELECT MAX(due_at) FROM sla_clocks WHERE case_id = $1 AND kind = 'next_response') \
         WHERE id = $1",
    )
    .bind(case.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `#split`: a new problem raised in an old thread becomes its own case, with the same
/// customer and triage, holding a copy of that customer message; both cases link.
async fn split(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    message_row: i64,
    now: DateTime<Utc>,
) -> Result<CaseNumber, StoreError> {
    let new: i64 = sqlx::query(
        "INSERT INTO cases (subject, status, customer, customer_name, related_case, created_at, updated_at, queue, product, \
         language, language_confidence, region, severity, account, entitlement, tier, country, contract_id, time_zone) \
         SELECT m.subject, 'new', c.customer, c.customer_name, c.id, $1, $1, c.queue, c.product, c.language, \
         c.language_confidence, c.region, c.severity, c.account, c.entitlement, c.tier, c.country, c.contract_id, c.time_zone \
         FROM cases c JOIN messages m ON m.id = $2 WHERE c.id = $3 RETURNING id",
    )
    .bind(to_ms(now))
    .bind(message_row)
    .bind(case.0)
    .fetch_one(&mut **tx)
    .await?
    .get(0);
    sqlx::query(
        "INSERT INTO messages (case_id, direction, role, dedup_key, message_id, from_addr, from_name, to_addrs, cc_addrs, \
         subject, received_at, text, html_only, size, raw, raw_file) \
         SELECT $1, direction, role, 'split:' || $1 || ':' || dedup_key, NULL, from_addr, from_name, to_addrs, cc_addrs, \
         subject, received_at, text, html_only, size, raw, raw_file FROM messages WHERE id = $2",
    )
    .bind(new)
    .bind(message_row)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO case_participants (case_id, email) SELECT $1, email FROM case_participants WHERE case_id = $2")
        .bind(new)
        .bind(case.0)
        .execute(&mut **tx)
        .await?;
    let new = CaseNumber(new);
    let events = decide::split_events(case, new);
    let events: Vec<_> = events
        .iter()
        .map(|e| (event_case(e.on, case), e.actor.as_str(), e.kind, &e.detail))
        .collect();
    insert_events(tx, now, &events).await?;
    Ok(new)
}

/// Mails queued for a case so far: the next one is numbered after them (stable
/// Message-IDs).
pub(super) async fn sent_count(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM outbox WHERE case_id = $1")
            .bind(case.0)
            .fetch_one(&mut **tx)
            .await?
            .get(0),
    )
}

/// An outbound mail: queued for delivery, and kept on the case so that replies to it
/// thread by References and the case shows what the customer was told.
pub(super) async fn queue_outbound(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    out: &Outbound,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    push_outbound(&mut batch, case, out, now);
    batch.run(tx).await?;
    Ok(())
}

/// The outbox row and the case's message of an outbound mail. Both are written together
/// or not at all, so a Message-ID queued before has both already: each insert skips
/// on its own conflict.
fn push_outbound<'a>(
    batch: &mut Batch<'a>,
    case: CaseNumber,
    out: &'a Outbound,
    now: DateTime<Utc>,
) {
    batch.push(
        INSERT_OUTBOX,
        outbox_values(
            Some(case),
            out.kind,
            &out.message_id,
            &out.sender,
            &out.recipients,
            &out.raw,
            now,
        ),
    );
    let msg = NewMessage {
        direction: "out",
        dedup_key: format!("out:{}", out.message_id),
        message_id: Some(out.message_id.clone()),
        from: out.sender.clone(),
        from_name: None,
        to: out.recipients.clone(),
        cc: Vec::new(),
        subject: out.subject.clone(),
        received_at: now,
        text: out.text.clone(),
        html_only: false,
        size: out.raw.len() as u64,
        raw: None,
        attachments: Vec::new(),
        mailbox_address: None,
    };
    let mut values = message_fields(case, &msg, out.role.as_str());
    values.extend([Value::Blob(None), Value::Text(None)]);
    batch.push(INSERT_MESSAGE, values);
}

const INSERT_MESSAGE: &str = "INSERT INTO messages (case_id, direction, role, dedup_key, message_id, from_addr, from_name, \
     to_addrs, cc_addrs, subject, received_at, text, html_only, size, raw, raw_file) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (dedup_key) DO NOTHING";

/// The values of [`INSERT_MESSAGE`]. With `raw_file`, the raw mail is kept in that file
/// (written by the caller), not the row.
fn message_values<'a>(
    case: CaseNumber,
    m: &'a NewMessage,
    role: &str,
    raw_file: Option<&str>,
) -> Vec<Value<'a>> {
    let raw = if raw_file.is_some() {
        None
    } else {
        m.raw.as_deref()
    };
    let mut values = message_fields(case, m, role);
    values.extend([raw.into(), raw_file.into()]);
    values
}

/// The values of [`INSERT_MESSAGE`] but the last two (the raw mail, its file).
fn message_fields<'a>(case: CaseNumber, m: &NewMessage, role: &str) -> Vec<Value<'a>> {
    vec![
        case.0.into(),
        m.direction.into(),
        role.into(),
        m.dedup_key.as_str().into(),
        m.message_id.as_deref().into(),
        m.from.as_str().into(),
        m.from_name.as_deref().into(),
        m.to.join(", ").into(),
        m.cc.join(", ").into(),
        m.subject.as_str().into(),
        to_ms(m.received_at).into(),
        m.text.as_str().into(),
        i64::from(m.html_only).into(),
        (m.size as i64).into(),
    ]
}

/// Returns the new row id, or `None` when the dedup key exists already.
async fn insert_message(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    m: &NewMessage,
    role: &str,
    raw_file: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let mut batch = Batch::new();
    batch.push(
        returning_id(tx, INSERT_MESSAGE),
        message_values(case, m, role, raw_file),
    );
    Ok(inserted_id(&batch.run(tx).await?))
}

/// The attachments of the message stored under `dedup_key` (found by it: on SQLite its
/// row id is not known before the batch runs).
fn push_attachments(batch: &mut Batch<'_>, dedup_key: &str, attachments: &[NewAttachment]) {
    for chunk in attachments.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let cells: Vec<String> = (0..5).map(|c| format!("${}", 2 + r * 5 + c)).collect();
                format!(
                    "((SELECT id FROM messages WHERE dedup_key = $1), {})",
                    cells.join(", ")
                )
            })
            .collect();
        let mut values: Vec<Value> = vec![dedup_key.into()];
        for a in chunk {
            values.extend([
                a.filename.as_deref().into(),
                a.content_type.as_str().into(),
                (a.size as i64).into(),
                a.raw_span.map(|s| s.0 as i64).into(),
                a.raw_span.map(|s| s.1 as i64).into(),
            ]);
        }
        batch.push(
            format!(
                "INSERT INTO attachments (message_row, filename, content_type, size, raw_start, raw_end) VALUES {}",
                rows.join(", ")
            ),
            values,
        );
    }
}

/// Rows per multi-row INSERT: far below the bound-parameter limits (SQLite 32,766,
/// PostgreSQL 65,535) whatever a mail carries (thousands of attachments or Cc addresses).
const ROWS_PER_INSERT: usize = 500;

/// `INSERT INTO {table_columns} VALUES (...), (...) {suffix}` for `rows`, in statements
/// of at most [`ROWS_PER_INSERT`] rows; `values` gives one row's `columns` values.
pub(super) fn push_rows<'a, T>(
    batch: &mut Batch<'a>,
    table_columns: &str,
    columns: usize,
    suffix: &str,
    rows: &[T],
    values: impl Fn(&T) -> Vec<Value<'a>>,
) {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO {table_columns} VALUES {} {suffix}",
            values_rows(chunk.len(), columns)
        );
        batch.push(sql, chunk.iter().flat_map(&values).collect());
    }
}

fn push_participants(batch: &mut Batch<'_>, case: CaseNumber, emails: &[String]) {
    push_rows(
        batch,
        "case_participants (case_id, email)",
        2,
        "ON CONFLICT DO NOTHING",
        emails,
        |e| vec![case.0.into(), e.as_str().into()],
    );
}

type EventRow<'e> = (CaseNumber, &'e str, EventKind, &'e serde_json::Value);

/// Audit events of one plan in one statement: (case, actor, kind, detail).
fn push_events(batch: &mut Batch<'_>, now: DateTime<Utc>, events: &[EventRow<'_>]) {
    push_rows(
        batch,
        "events (case_id, at, actor, kind, detail)",
        5,
        "",
        events,
        |(case, actor, kind, detail)| {
            vec![
                case.0.into(),
                to_ms(now).into(),
                (*actor).into(),
                kind.as_str().into(),
                detail.to_string().into(),
            ]
        },
    );
}

async fn insert_events(
    tx: &mut Transaction<'_, Any>,
    now: DateTime<Utc>,
    events: &[EventRow<'_>],
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    push_events(&mut batch, now, events);
    batch.run(tx).await?;
    Ok(())
}

pub(super) async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    case: Option<CaseNumber>,
    now: DateTime<Utc>,
    actor: &str,
    kind: EventKind,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (case_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case.map(|n| n.0))
    .bind(to_ms(now))
    .bind(actor.to_string())
    .bind(kind.as_str())
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt {
        column: "cases.status",
        value: s.to_string(),
    })
}

/// A stored name of a fixed set (`language`, `entitlement`), parsed once here: a value
/// the code does not know is corrupt, not a default.
pub(super) fn parse_column<T>(
    column: &'static str,
    value: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    match value {
        None => Ok(None),
        Some(v) => parse(&v)
            .map(Some)
            .ok_or(StoreError::Corrupt { column, value: v }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_language_or_entitlement_the_code_does_not_know_is_corrupt() {
        assert_eq!(
            parse_column("cases.language", Some("ja".into()), Language::parse).unwrap(),
            Some(Language::Ja)
        );
        assert_eq!(
            parse_column("cases.entitlement", None, Entitlement::parse).unwrap(),
            None
        );
        let err =
            parse_column("cases.entitlement", Some("gold".into()), Entitlement::parse).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { column: "cases.entitlement", value } if value == "gold"),
            "{err}"
        );
    }
}
