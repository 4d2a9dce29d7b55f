//! An engineer's reply, PURE: strip the quoted history, run the commands at the top,
//! relay the rest to the customer. A reply whose commands do not all parse and apply
//! changes nothing and sends nothing to the customer: the engineer gets the errors.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::case::Status;
use super::commands::{self, Command, KnownAnswer, StatusArg};
use super::decide::{
    CaseUpdate, EventOn, Facts, KbChange, Notice, Plan, PlannedEvent, PlannedMail, Role, Settings,
    Target, notify_staff,
};
use super::event::EventKind;
use super::kb;
use super::known_issue::Resolution;
use super::language::Language;
use super::sla;
use super::staff::{Engineer, StaffSettings};
use super::thread::CaseFacts;
use super::triage::ClockKind;
use crate::mail::{Inbound, quote};

/// Decide what an engineer's reply to case `case` does.
pub fn reply(
    mail: &Inbound,
    engineer: &Engineer,
    case: &CaseFacts,
    facts: &Facts,
    cfg: Settings<'_>,
) -> Plan {
    let text = quote::strip_reply(&mail.text);
    let parsed = commands::parse(&text);
    let details = &case.details;
    let (mut plan, customer_lang) = engineer_plan(case, super::decide::shorten(&parsed.body, 4000));
    let mut errors: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("line {}: {}: {}", e.line, e.text, e.message))
        .collect();
    let mut status = None;
    let mut internal = false;
    let body = parsed.body.trim().to_string();
    for command in &parsed.commands {
        match apply(
            command,
            engineer,
            case,
            facts,
            cfg,
            &mut plan,
            (customer_lang, &body),
        ) {
            Ok(Effect::Status(s)) => status = Some(s),
            Ok(Effect::Internal) => internal = true,
            Ok(Effect::None) => {}
            Err(e) => errors.push(e),
        }
    }
    // Issue 18b: a reply to a draft mail is about the article, never for the customer.
    if facts.kb.answers_draft {
        internal = true;
    }
    if let Err(e) = kb_work(&parsed, internal, engineer, facts, &mut plan) {
        errors.push(e);
    }
    let actor = engineer.address.clone();
    if !errors.is_empty() {
        let language = engineer_language(cfg, details.queue.as_deref());
        return Plan {
            target: Target::Existing {
                number: case.number,
                status: None,
                details: details.clone(),
            },
            update: CaseUpdate::default(),
            events: vec![PlannedEvent {
                on: EventOn::Target,
                actor,
                kind: EventKind::CommandsRefused,
                detail: json!({ "errors": errors }),
            }],
            mails: vec![PlannedMail {
                notice: Notice::CommandError { errors },
                to: engineer.address.clone(),
                language,
            }],
            ..plan
        };
    }
    let answers = answers_known_issue(&plan, &details.customer);
    if internal {
        plan.events.push(event(
            &actor,
            EventKind::InternalNote,
            json!({ "text": body }),
        ));
    } else if !body.is_empty() || answers {
        // A reply that also answers a known issue or changes the severity is one mail
        // carrying both (a workaround already carries the reply's text).
        match carrier_of_reply(&mut plan, &details.customer) {
            Some(Carrier::Workaround) => {}
            Some(Carrier::Reply(reply)) => *reply = Some(body).filter(|b| !b.is_empty()),
            None => plan.mails.push(PlannedMail {
                notice: Notice::EngineerReply {
                    text: body,
                    engineer: engineer.name.clone(),
                },
                to: details.customer.clone(),
                language: customer_lang,
            }),
        }
        plan.update.responded = true;
        plan.events.push(event(
            &actor,
            EventKind::EngineerReply,
            json!({ "first_response": facts_first_response_pending(facts) }),
        ));
        status = status.or(Some(Status::Waiting));
    }
    if let Target::Existing { status: s, .. } = &mut plan.target {
        *s = status.filter(|s| *s != case.status);
    }
    plan
}

/// The plan sends the customer an upgrade or workaround mail (`#known`).
fn answers_known_issue(plan: &Plan, customer: &str) -> bool {
    plan.mails.iter().any(|m| {
        m.to == customer && matches!(m.notice, Notice::Upgrade { .. } | Notice::Workaround { .. })
    })
}

/// The customer mail of the plan that carries the engineer's reply text.
enum Carrier<'a> {
    /// The workaround mail: its text is the reply's already.
    Workaround,
    Reply(&'a mut Option<String>),
}

fn carrier_of_reply<'a>(plan: &'a mut Plan, customer: &str) -> Option<Carrier<'a>> {
    let mut severity = None;
    for m in plan.mails.iter_mut().filter(|m| m.to == customer) {
        match &mut m.notice {
            Notice::Workaround { .. } => return Some(Carrier::Workaround),
            Notice::Upgrade { reply, .. } => return Some(Carrier::Reply(reply)),
            Notice::SeverityChanged { reply, .. } => severity = Some(reply),
            _ => {}
        }
    }
    severity.map(Carrier::Reply)
}

/// What an admin can do to a case from the command line: the mail commands, by the
/// same rules, with the same audit events and customer mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Close,
    Reopen,
    Assign(String),
    Transfer(String),
    Severity { level: u8, reason: String },
}

/// Who an admin's command acts as: the engineer with address `actor`, else someone
/// named only for the audit trail, whose customer mail is signed `signature` (the
/// support name).
pub fn acting_as(staff: &StaffSettings, actor: &str, signature: &str) -> Engineer {
    staff.engineer(actor).cloned().unwrap_or_else(|| Engineer {
        address: actor.to_string(),
        name: signature.to_string(),
        region: String::new(),
        queues: Vec::new(),
    })
}

/// Decide what an admin's command does to `case`, acting as `actor` (an engineer, or
/// someone named for the audit trail). `Err` says why the command does not apply;
/// nothing is changed then.
pub fn admin(
    command: &AdminCommand,
    actor: &Engineer,
    case: &CaseFacts,
    facts: &Facts,
    cfg: Settings<'_>,
) -> Result<Plan, String> {
    let details = &case.details;
    let (mut plan, customer_lang) = engineer_plan(case, String::new());
    let closed = case.status == Status::Closed;
    if case.status == Status::Refused {
        return Err(format!(
            "case {} was refused (no entitlement): it is not worked",
            case.number
        ));
    }
    let command = match command {
        AdminCommand::Close if closed => {
            return Err(format!("case {} is already closed", case.number));
        }
        AdminCommand::Reopen if !closed => {
            return Err(format!(
                "case {} is not closed (it is {})",
                case.number,
                case.status.as_str()
            ));
        }
        AdminCommand::Reopen => {
            // The audit event of a reopening by mail (decide::inbound).
            plan.events.push(event(
                &actor.address,
                EventKind::CaseReopened,
                json!({ "from": case.status.as_str() }),
            ));
            plan.mails.extend(notify_staff(
                cfg,
                details.queue.as_deref(),
                details.owner.as_deref(),
                "reopened",
            ));
            Command::Status(StatusArg::Open)
        }
        AdminCommand::Close => Command::Close,
        AdminCommand::Assign(a) => Command::Assign(a.clone()),
        AdminCommand::Transfer(q) => {
            if details.queue.as_deref() == Some(q.as_str()) {
                return Err(format!("case {} is in queue {q} already", case.number));
            }
            Command::Queue(q.clone())
        }
        AdminCommand::Severity { level, reason } => {
            if !(1..=4).contains(level) {
                return Err(format!("severity {level} is not 1 to 4"));
            }
            if reason.trim().is_empty() {
                return Err("a severity change needs a reason: the customer is told why".into());
            }
            let old = details.severity.unwrap_or(cfg.sla.default_severity);
            if *level == old {
                return Err(format!("case {} has severity {old} already", case.number));
            }
            Command::Severity {
                level: *level,
                reason: reason.trim().to_string(),
            }
        }
    };
    match apply(
        &command,
        actor,
        case,
        facts,
        cfg,
        &mut plan,
        (customer_lang, ""),
    )? {
        Effect::Status(s) => {
            if let Target::Existing { status, .. } = &mut plan.target {
                *status = Some(s).filter(|s| *s != case.status);
            }
        }
        Effect::None | Effect::Internal => {}
    }
    Ok(plan)
}

/// An empty plan of staff work on an existing case, and the customer's language.
fn engineer_plan(case: &CaseFacts, notification_text: String) -> (Plan, Language) {
    let details = &case.details;
    let customer_lang = details.language.unwrap_or(Language::En);
    let plan = Plan {
        target: Target::Existing {
            number: case.number,
            status: None,
            details: details.clone(),
        },
        update: CaseUpdate::default(),
        role: Role::Engineer,
        participants: Vec::new(),
        events: Vec::new(),
        clocks: Vec::new(),
        mails: Vec::new(),
        notification_text,
    };
    (plan, customer_lang)
}

enum Effect {
    None,
    Status(Status),
    Internal,
}

fn apply(
    command: &Command,
    engineer: &Engineer,
    case: &CaseFacts,
    facts: &Facts,
    cfg: Settings<'_>,
    plan: &mut Plan,
    (customer_lang, body): (Language, &str),
) -> Result<Effect, String> {
    let actor = &engineer.address;
    let details = &case.details;
    match command {
        Command::Take => {
            plan.update.owner = Some(actor.clone());
            plan.events.push(event(
                actor,
                EventKind::OwnerChanged,
                json!({ "owner": actor }),
            ));
        }
        Command::Assign(to) => {
            let Some(e) = cfg.staff.engineer(to) else {
                return Err(format!(
                    "#assign {to}: not an engineer in the staff configuration"
                ));
            };
            plan.update.owner = Some(e.address.clone());
            plan.events.push(event(
                actor,
                EventKind::OwnerChanged,
                json!({ "owner": e.address }),
            ));
        }
        Command::Severity { level, reason } => {
            let old = details.severity.unwrap_or(cfg.sla.default_severity);
            if *level != old {
                plan.update.severity = Some(*level);
                plan.update.reclocked = reclock(details, facts, cfg, *level);
                let next_due = plan.update.reclocked.iter().map(|(_, due, _)| *due).min();
                plan.events.push(event(
                    actor,
                    EventKind::SeverityChanged,
                    json!({ "old": old, "new": level, "reason": reason }),
                ));
                plan.mails.push(PlannedMail {
                    notice: Notice::SeverityChanged {
                        old,
                        new: *level,
                        reason: reason.clone(),
                        engineer: engineer.name.clone(),
                        next_due,
                        reply: None,
                    },
                    to: details.customer.clone(),
                    language: customer_lang,
                });
            }
        }
        Command::Queue(name) => {
            if cfg.routing.queue(name).is_none() {
                return Err(format!(
                    "#queue {name}: no such queue in the routing configuration"
                ));
            }
            plan.update.queue = Some(name.clone());
            plan.events.push(event(
                actor,
                EventKind::Transferred,
                json!({ "from": details.queue, "to": name }),
            ));
            plan.mails
                .extend(notify_staff(cfg, Some(name), None, "transferred"));
        }
        Command::Status(StatusArg::Waiting) => return Ok(Effect::Status(Status::Waiting)),
        Command::Status(StatusArg::Open) => return Ok(Effect::Status(Status::Open)),
        Command::Close => {
            plan.events
                .push(event(actor, EventKind::CaseClosed, json!({})));
            // Feedback is asked once: a case closed again after a reopening is not.
            let ask_feedback = !details.feedback_asked;
            plan.update.feedback_asked = ask_feedback;
            plan.mails.push(PlannedMail {
                notice: Notice::CaseClosed {
                    engineer: engineer.name.clone(),
                    ask_feedback,
                },
                to: details.customer.clone(),
                language: customer_lang,
            });
            return Ok(Effect::Status(Status::Closed));
        }
        Command::Internal => return Ok(Effect::Internal),
        Command::Split => {
            let Some((_, row)) = facts.last_customer_message else {
                return Err("#split: the case has no customer message to split off".into());
            };
            plan.update.split_message = Some(row);
        }
        Command::LinkBug(id) => link(plan, actor, "bug", id),
        Command::Kb(url) => link(plan, actor, "kb", url),
        // --- issue 18a: known issues and resolution paths ---
        Command::Known { issue, answer } => {
            return known(
                issue,
                answer,
                engineer,
                details,
                cfg,
                plan,
                (customer_lang, body),
            );
        }
        Command::Bug(id) => {
            if let Some(known) = cfg.known_issues.get(id) {
                return Err(format!(
                    "#bug {id}: {} is a known issue already; answer with \"#known {} fixed-in VERSION\" or \"#known {} workaround\"",
                    known.id, known.id, known.id
                ));
            }
            link(plan, actor, "bug", id);
            set_resolution(plan, actor, Resolution::NewBug, json!({ "issue": id }));
        }
        Command::Resolution(r) => set_resolution(plan, actor, *r, json!({})),
        // Mail only: they need the reply itself (see `kb_work`).
        Command::KbDraft | Command::KbPublish(_) => {}
    }
    Ok(Effect::None)
}

/// `#known ISSUE fixed-in VERSION` (ask to upgrade) or `#known ISSUE workaround` (the
/// reply's text, else the file's, as the workaround; the case stays open for the fix).
fn known(
    id: &str,
    answer: &KnownAnswer,
    engineer: &Engineer,
    details: &super::thread::CaseDetails,
    cfg: Settings<'_>,
    plan: &mut Plan,
    (customer_lang, body): (Language, &str),
) -> Result<Effect, String> {
    let Some(issue) = cfg.known_issues.get(id) else {
        return Err(format!("#known {}", cfg.known_issues.unknown(id)));
    };
    let actor = &engineer.address;
    let (notice, effect, detail) = match answer {
        KnownAnswer::FixedIn(version) => {
            let Some(fixed) = &issue.fixed_in else {
                return Err(format!(
                    "#known {id} fixed-in {version}: the known issues file lists no fix for {} yet; answer with \"#known {} workaround\"",
                    issue.id, issue.id
                ));
            };
            if version < fixed {
                return Err(format!(
                    "#known {id} fixed-in {version}: {} is fixed in {fixed}, and {version} is older; ask for {fixed} or later",
                    issue.id
                ));
            }
            let notice = Notice::Upgrade {
                issue: issue.id.clone(),
                title: issue.title.clone(),
                link: issue.link.clone(),
                version: version.to_string(),
                engineer: engineer.name.clone(),
                reply: None,
            };
            let detail = json!({ "issue": issue.id, "version": version.as_str() });
            (notice, Effect::None, (Resolution::Upgrade, detail))
        }
        KnownAnswer::Workaround => {
            let text = match (body.is_empty(), &issue.workaround) {
                (false, _) => body.to_string(),
                (true, Some(w)) => w.text(customer_lang).to_string(),
                (true, None) => {
                    return Err(format!(
                        "#known {id} workaround: write the workaround below the command (the known issues file has no workaround text for {})",
                        issue.id
                    ));
                }
            };
            let notice = Notice::Workaround {
                issue: issue.id.clone(),
                title: issue.title.clone(),
                link: issue.link.clone(),
                text,
                engineer: engineer.name.clone(),
            };
            let detail = json!({ "issue": issue.id });
            (
                notice,
                Effect::Status(Status::Open),
                (Resolution::Workaround, detail),
            )
        }
    };
    plan.mails.push(PlannedMail {
        notice,
        to: details.customer.clone(),
        language: customer_lang,
    });
    set_resolution(plan, actor, detail.0, detail.1);
    Ok(effect)
}

fn set_resolution(plan: &mut Plan, actor: &str, r: Resolution, mut detail: serde_json::Value) {
    plan.update.resolution = Some(r);
    if let Some(d) = detail.as_object_mut() {
        d.insert("resolution".into(), r.as_str().into());
    }
    plan.events
        .push(event(actor, EventKind::ResolutionSet, detail));
}

// --- issue 18b: knowledge-base drafts ---

/// Whether an engineer's mail asks for a draft: the shell then gathers the case's story.
pub fn asks_for_draft(mail: &Inbound) -> bool {
    commands::parse(&quote::strip_reply(&mail.text))
        .commands
        .contains(&Command::KbDraft)
}

/// Whether `mail` answers one of our mails with these Message-IDs (a draft mail).
pub fn answers(mail: &Inbound, message_ids: &[String]) -> bool {
    mail.in_reply_to
        .iter()
        .chain(&mail.references)
        .any(|id| message_ids.iter().any(|m| m == id))
}

/// `#kb draft` and `#kb publish`, and the edited article attached to a reply to a
/// draft mail (a publication by itself).
fn kb_work(
    parsed: &commands::Parsed,
    internal: bool,
    engineer: &Engineer,
    facts: &Facts,
    plan: &mut Plan,
) -> Result<(), String> {
    let actor = &engineer.address;
    let mut published = false;
    for command in &parsed.commands {
        match command {
            Command::KbDraft => {
                let Some(mut story) = facts.kb.story.clone() else {
                    return Err(
                        "#kb draft: the case has no customer mail to make a draft from".into(),
                    );
                };
                if !internal && !parsed.body.trim().is_empty() {
                    story.messages.push(kb::StoryMessage {
                        author: kb::Author::Engineer,
                        text: parsed.body.clone(),
                    });
                }
                // `#link bug:ID` in this same reply is not in the store yet.
                for (kind, target) in &plan.update.links {
                    let known = story
                        .references
                        .iter()
                        .any(|r| &r.kind == kind && &r.target == target);
                    if !known {
                        story.references.push(kb::Reference {
                            kind: kind.clone(),
                            target: target.clone(),
                        });
                    }
                }
                let draft = kb::draft(&story);
                plan.events.push(event(
                    actor,
                    EventKind::KbDrafted,
                    json!({ "title": draft.title }),
                ));
                plan.mails.push(PlannedMail {
                    notice: Notice::KbDraft {
                        title: draft.title.clone(),
                        markdown: draft.markdown.clone(),
                    },
                    to: actor.clone(),
                    language: story.language,
                });
                plan.update.kb.push(KbChange::Draft {
                    language: story.language,
                    title: draft.title,
                    markdown: draft.markdown,
                    requested_by: actor.clone(),
                });
            }
            Command::KbPublish(url) => {
                publish(actor, url.clone(), facts, plan)?;
                published = true;
            }
            _ => {}
        }
    }
    if !published && facts.kb.edited.is_some() {
        publish(actor, None, facts, plan)?;
    }
    Ok(())
}

fn publish(actor: &str, url: Option<String>, facts: &Facts, plan: &mut Plan) -> Result<(), String> {
    let edited = facts.kb.edited.as_deref();
    if !facts.kb.has_article && edited.is_none() {
        return Err(
            "#kb publish: the case has no draft; write \"#kb draft\" first, or \
                    \"#kb URL\" to link an article published elsewhere"
                .into(),
        );
    }
    plan.update.kb.push(KbChange::Publish {
        author: actor.to_string(),
        url: url.clone(),
        title: edited.and_then(kb::title_of),
        markdown: edited.map(str::to_string),
    });
    plan.events.push(event(
        actor,
        EventKind::KbPublished,
        json!({ "url": url, "edited": edited.is_some() }),
    ));
    if let Some(url) = url {
        link(plan, actor, "kb", &url);
    }
    Ok(())
}
// --- end issue 18b ---

fn link(plan: &mut Plan, actor: &str, kind: &str, target: &str) {
    plan.update
        .links
        .push((kind.to_string(), target.to_string()));
    plan.events.push(event(
        actor,
        EventKind::LinkedReference,
        json!({ "kind": kind, "target": target }),
    ));
}

/// The running clocks, recomputed from their start for the new severity.
fn reclock(
    details: &super::thread::CaseDetails,
    facts: &Facts,
    cfg: Settings<'_>,
    severity: u8,
) -> Vec<(i64, DateTime<Utc>, DateTime<Utc>)> {
    let Some(policy) = cfg
        .sla
        .policies
        .get(details.tier.as_deref().unwrap_or_default(), severity)
    else {
        return Vec::new();
    };
    let calendar = cfg.sla.calendar(
        details.region.as_deref().unwrap_or_default(),
        details.country.as_deref(),
    );
    let crew = &cfg.sla.weekend_crew;
    facts
        .running_clocks
        .iter()
        .map(|c| {
            let spec = match c.kind {
                ClockKind::FirstResponse => &policy.initial,
                ClockKind::NextResponse => &policy.next,
            };
            let due = sla::due(c.started_at, spec, severity, &calendar, crew);
            (
                c.id,
                due,
                sla::warn_at(
                    c.started_at,
                    due,
                    cfg.sla.warn_share,
                    spec,
                    severity,
                    &calendar,
                    crew,
                ),
            )
        })
        .collect()
}

fn facts_first_response_pending(facts: &Facts) -> bool {
    facts
        .running_clocks
        .iter()
        .any(|c| c.kind == ClockKind::FirstResponse)
}

fn engineer_language(cfg: Settings<'_>, queue: Option<&str>) -> Language {
    queue
        .and_then(|q| cfg.routing.queue(q))
        .map(|q| q.language)
        .unwrap_or(Language::En)
}

fn event(actor: &str, kind: EventKind, detail: serde_json::Value) -> PlannedEvent {
    PlannedEvent {
        on: EventOn::Target,
        actor: actor.to_string(),
        kind,
        detail,
    }
}
