use std::path::Path;

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};

use chrono::Utc;

use crate::domain::engineer::AdminCommand;
use crate::domain::{CaseNumber, Status};
use crate::pipeline::AdminOutcome;
use crate::store::OpenMode;
use crate::store::{AttachmentSource, CaseSummary, CaseView};

/// Look at cases.
#[derive(Debug, Subcommand)]
pub enum Cases {
    /// List cases, newest first.
    List(List),
    /// Show one case with its messages and audit trail.
    Show(Show),
    /// Write an attachment's content (its id is in `cases show`) to a file or stdout.
    Attachment(Attachment),
    /// Close a case (as `#close`: the customer gets the closure mail).
    Close(Act),
    /// Reopen a closed case.
    Reopen(Act),
    /// Make an engineer the owner (as `#assign ADDRESS`).
    Assign(AssignArgs),
    /// Move a case to another queue (as `#queue NAME`; the queue's engineers are told).
    Transfer(TransferArgs),
    /// Change the severity (as `#severity N REASON`: the SLA is recomputed and the
    /// customer told why).
    Severity(SeverityArgs),
}

#[derive(Debug, Args)]
pub struct Act {
    /// The case number.
    number: CaseNumber,
    /// Who does it, for the audit trail: an engineer's address signs the customer mail
    /// with their name; anything else signs with gateway.support_name.
    #[arg(long, default_value = "admin")]
    actor: String,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    #[command(flatten)]
    case: Act,
    /// The new owner: an engineer's address from staff.engineers.
    engineer: String,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    #[command(flatten)]
    case: Act,
    /// The queue (from the routing file).
    queue: String,
}

#[derive(Debug, Args)]
pub struct SeverityArgs {
    #[command(flatten)]
    case: Act,
    /// The new severity, 1 to 4.
    level: u8,
    /// Why (told to the customer).
    #[arg(required = true, num_args = 1..)]
    reason: Vec<String>,
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only cases with this status (new, open, waiting, closed, refused).
    #[arg(long)]
    status: Option<Status>,
    /// At most this many cases.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
}

#[derive(Debug, Args)]
pub struct Show {
    /// The case number (00001234, 1234 or #00001234).
    number: CaseNumber,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Attachment {
    /// The attachment's id, as `cases show` prints it.
    id: i64,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
}

/// The read-only subcommands.
enum View {
    List(List),
    Show(Show),
    Attachment(Attachment),
}

impl Cases {
    /// A change to a case, or what to look at.
    fn split(self) -> Result<(Act, AdminCommand), View> {
        Ok(match self {
            Cases::Close(a) => (a, AdminCommand::Close),
            Cases::Reopen(a) => (a, AdminCommand::Reopen),
            Cases::Assign(a) => (a.case, AdminCommand::Assign(a.engineer)),
            Cases::Transfer(t) => (t.case, AdminCommand::Transfer(t.queue)),
            Cases::Severity(s) => (
                s.case,
                AdminCommand::Severity {
                    level: s.level,
                    reason: s.reason.join(" "),
                },
            ),
            Cases::List(l) => return Err(View::List(l)),
            Cases::Show(s) => return Err(View::Show(s)),
            Cases::Attachment(a) => return Err(View::Attachment(a)),
        })
    }

    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let view = match self.split() {
            Ok((act, command)) => return act_on(path, act, command).await,
            Err(view) => view,
        };
        let store = super::open_store_only(path).await?;
        match view {
            View::List(l) => {
                let cases = store.list_cases(l.status, l.limit).await?;
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&cases)?);
                } else {
                    print_table(&cases);
                }
                Ok(0)
            }
            View::Show(s) => match store.show_case(s.number).await? {
                Some(view) if s.json => {
                    println!("{}", serde_json::to_string_pretty(&view)?);
                    Ok(0)
                }
                Some(view) => {
                    print_case(&view);
                    Ok(0)
                }
                None => {
                    eprintln!("casegate: no case {}", s.number);
                    Ok(1)
                }
            },
            View::Attachment(a) => {
                let content = match store.attachment_source(a.id).await? {
                    None => {
                        eprintln!("casegate: no attachment {}", a.id);
                        return Ok(1);
                    }
                    Some(AttachmentSource::NotKept) => {
                        eprintln!(
                            "casegate: attachment {} was over gateway.max_attachment_bytes: its content was not kept",
                            a.id
                        );
                        return Ok(1);
                    }
                    Some(AttachmentSource::Decoded(content)) => content,
                    Some(AttachmentSource::InRaw { raw, span }) => {
                        match crate::mail::parse::attachment_content(&raw, span) {
                            Some(content) => content,
                            None => anyhow::bail!(
                                "attachment {} cannot be decoded from its raw mail",
                                a.id
                            ),
                        }
                    }
                };
                match &a.out {
                    Some(path) => std::fs::write(path, &content)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                    None => std::io::stdout()
                        .write_all(&content)
                        .context("cannot write to stdout")?,
                }
                Ok(0)
            }
        }
    }
}

/// A change to a case: decided by the engineers' command rules (`domain`, in the core crate), written with
/// its audit events and customer mail (sent by the daemon's outbox, or `run --once`).
async fn act_on(path: &Path, act: Act, command: AdminCommand) -> anyhow::Result<i32> {
    let config = super::load_config(path)?;
    let pipeline = super::pipeline_with(&config, OpenMode::Existing).await?;
    let outcome = pipeline
        .admin_command(act.number, &command, &act.actor, Utc::now())
        .await?;
    pipeline.store().close().await;
    match outcome {
        AdminOutcome::NoSuchCase => {
            eprintln!("casegate: no case {}", act.number);
            Ok(1)
        }
        AdminOutcome::Refused(why) => {
            eprintln!("casegate: {why}; nothing changed");
            Ok(1)
        }
        AdminOutcome::Done { queued_mail } => {
            let done = match &command {
                AdminCommand::Close => "closed".to_string(),
                AdminCommand::Reopen => "reopened".to_string(),
                AdminCommand::Assign(a) => format!("assigned to {a}"),
                AdminCommand::Transfer(q) => format!("transferred to {q}"),
                AdminCommand::Severity { level, .. } => format!("set to severity {level}"),
            };
            let mail = if queued_mail {
                "; its mail is queued (sent by the running daemon or the next `casegate run --once`)"
            } else {
                ""
            };
            println!("case {} {done} by {}{mail}", act.number, act.actor);
            Ok(0)
        }
    }
}

fn print_table(cases: &[CaseSummary]) {
    if cases.is_empty() {
        println!("no cases");
        return;
    }
    println!(
        "{:<8}  {:<8}  {:<16}  {:<30}  {:>4}  SUBJECT",
        "CASE", "STATUS", "CREATED (UTC)", "CUSTOMER", "MSGS"
    );
    for c in cases {
        println!(
            "{:<8}  {:<8}  {:<16}  {:<30}  {:>4}  {}",
            c.number.to_string(),
            c.status.as_str(),
            c.created_at.format("%Y-%m-%d %H:%M"),
            truncate(&c.customer, 30),
            c.message_count,
            c.subject
        );
    }
}

fn print_case(v: &CaseView) {
    let c = &v.summary;
    println!("Case {}  [{}]  {}", c.number, c.status, c.subject);
    println!(
        "Customer: {}{}",
        c.customer,
        c.account
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default()
    );
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!(
        "Queue: {}  Product: {}  Language: {}  Region: {}  Severity: {}  Owner: {}",
        opt(&c.queue),
        opt(&c.product),
        opt(&c.language),
        opt(&c.region),
        c.severity
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        opt(&c.owner)
    );
    if let Some(r) = c.related_case {
        println!("Related case: {r}");
    }
    if let Some(r) = c.resolution {
        println!("Resolution: {r}");
    }
    if let Some(f) = &c.feedback {
        let comment = f
            .comment
            .as_deref()
            .map(|t| format!("  \"{t}\""))
            .unwrap_or_default();
        println!("Feedback: {}/5{comment}", f.rating);
    }
    for m in &v.messages {
        println!(
            "\n--- {} {} {} <{}> {}",
            m.received_at.format("%Y-%m-%d %H:%M:%S"),
            m.direction,
            m.role,
            m.from,
            m.subject
        );
        println!("{}", m.text.trim_end());
        for a in &m.attachments {
            let kept = if a.content_kept {
                ""
            } else {
                ", content not kept"
            };
            println!(
                "[attachment {}] {} ({}, {} bytes{kept})",
                a.id,
                a.filename.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                a.size
            );
        }
    }
    println!("\nEvents:");
    for e in &v.events {
        println!(
            "  {}  {:<24} {}  {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.actor,
            e.detail
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
