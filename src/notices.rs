//! Planned notices -> composed mails: fills the template contexts from the case and the
//! configuration, renders in the customer's language, composes with threading headers.
//! Runs inside the commit (once the case number is known); pure apart from formatting.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Config, GatewaySettings};
use crate::domain::decide::{self, NewCase, Notice, Plan, PlannedMail, Role, Target};
use crate::domain::entitlement::Entitlement;
use crate::domain::outbound::OutboundKind;
use crate::domain::scope::Scope;
use crate::domain::thread::{self, CaseDetails, subject_tag};
use crate::domain::triage::ClockKind;
use crate::domain::{CaseNumber, Status};
use crate::domain::{commands, signed, token};
use crate::mail::compose::{self, Outgoing};
use crate::mail::{Address, Inbound};
use crate::store::{CaseSummary, Composed, Outbound};
use crate::templates::context::KbDraft;
use crate::templates::context::{
    Acknowledgement, CaseClosed, Common, EngineerCommandError, EngineerNotification,
    ForwardOutOfScope, KnownIssueUpgrade, KnownIssueWorkaround, LowRating,
    RedirectProfessionalServices, RedirectSales, RefusalExpired, RefusalNoContract,
    RefusalNotCovered, SeverityChanged,
};
use crate::templates::{Rendered, TemplateContext, TemplateError, TemplateKind};

/// Why a notice could not be composed (recorded as an event; the mail is still filed).
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("template: {0}")]
    Template(TemplateError),
    #[error("compose: {0}")]
    Compose(compose::ComposeError),
}

// The variants above print their cause in their own message, so they do not also
// return it as `source()`: `{:#}` (anyhow) would print it twice.
impl From<TemplateError> for NoticeError {
    fn from(e: TemplateError) -> Self {
        NoticeError::Template(e)
    }
}

impl From<compose::ComposeError> for NoticeError {
    fn from(e: compose::ComposeError) -> Self {
        NoticeError::Compose(e)
    }
}

/// The customer message that mail to the customer answers (RFC 5322 §3.6.4).
#[derive(Debug, Clone, Default)]
pub struct Parent {
    pub message_id: Option<String>,
    pub references: Vec<String>,
    pub in_reply_to: Vec<String>,
}

impl Parent {
    pub fn of(mail: &Inbound) -> Parent {
        Parent {
            message_id: mail.message_id.clone(),
            references: mail.references.clone(),
            in_reply_to: mail.in_reply_to.clone(),
        }
    }
}

/// Compose every mail of `plan` for `case`, numbering Message-IDs from `first_n`.
/// `mail` is the inbound mail being processed (`raw` its bytes, which a forward
/// attaches); `parent` the customer message answered; `site_key` signs the Message-IDs
/// and return paths (`Store::site_key`).
#[allow(clippy::too_many_arguments)]
pub fn compose_all(
    config: &Config,
    site_key: &[u8],
    plan: &Plan,
    mail: &Inbound,
    raw: &[u8],
    parent: &Parent,
    case: CaseNumber,
    first_n: i64,
    support_address: Option<&str>,
    now: DateTime<Utc>,
) -> Composed {
    let mut n = first_n;
    let mut out = Composed::default();
    for planned in &plan.mails {
        match compose_one(
            config,
            site_key,
            plan,
            (mail, raw),
            parent,
            planned,
            (case, support_address),
            n,
            now,
        ) {
            Ok(o) => {
                out.mails.push(o);
                n += 1;
            }
            Err(e) => {
                tracing::error!(case = %case, error = %e, "cannot compose a notice; the mail is filed without it");
                out.failures
                    .push(decide::notice_failed(planned, &e.to_string()));
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn compose_one(
    config: &Config,
    site_key: &[u8],
    plan: &Plan,
    (mail, raw): (&Inbound, &[u8]),
    parent: &Parent,
    planned: &PlannedMail,
    (case, support_address): (CaseNumber, Option<&str>),
    n: i64,
    now: DateTime<Utc>,
) -> Result<Outbound, NoticeError> {
    let g = &config.gateway;
    let staff = planned.is_staff();
    // Customer mail of a case opened from another of our mailboxes comes from that
    // mailbox's address (the one the customer wrote to); staff mail from the gateway's.
    let from = support_address.filter(|_| !staff);
    let mut facts = CaseText::of(config, plan, case);
    if let Some(address) = from {
        facts.common.support_address = address.to_string();
    }
    let lang = planned.language.as_str();
    let (kind, role, rendered) = match &planned.notice {
        Notice::Forward(scope) => {
            let ctx = ForwardOutOfScope {
                common: facts.common.clone(),
                scope: scope.as_str().to_string(),
                desk: planned.to.clone(),
            };
            let (_, rendered) = typed(&config.templates, lang, &ctx)?;
            (OutboundKind::Forward, Role::System, rendered)
        }
        Notice::EngineerReply { text, engineer } => (
            OutboundKind::EngineerReply,
            Role::Engineer,
            relay(&facts, text, engineer),
        ),
        // A person's answer with the severity notice: the engineer's mail, not an
        // automatic one (no rate limit).
        notice @ Notice::SeverityChanged { reply: Some(_), .. } => {
            let (_, rendered) = render(config, notice, &facts, lang, plan, mail, &planned.to)?;
            (OutboundKind::EngineerReply, Role::Engineer, rendered)
        }
        // An engineer's answer to a known issue, written from the reviewed template.
        notice @ (Notice::Upgrade { .. } | Notice::Workaround { .. }) => {
            let (kind, rendered) = render(config, notice, &facts, lang, plan, mail, &planned.to)?;
            (kind.into(), Role::Engineer, rendered)
        }
        notice => {
            let (kind, rendered) = render(config, notice, &facts, lang, plan, mail, &planned.to)?;
            (kind.into(), Role::System, rendered)
        }
    };
    let (in_reply_to, references) = if staff {
        (None, Vec::new())
    } else {
        compose::thread_references(
            parent.message_id.as_deref(),
            &parent.references,
            &parent.in_reply_to,
        )
    };
    let reply_to = match &planned.notice {
        Notice::Forward(_) => Some(mail.from.clone()),
        Notice::EngineerNotification { .. }
        | Notice::CommandError { .. }
        | Notice::KbDraft { .. } => config.staff.reply_key.as_ref().map(|k| Address {
            name: Some(g.support_name.clone()),
            email: token::reply_address(&g.support_address, case.0, k.expose().as_bytes()),
        }),
        _ => None,
    };
    // Mail to engineers is machine-made (RFC 3834 §5): their out-of-office and other
    // responders (Exchange with the second field) should not answer it at all.
    let extra: &[(&'static str, &str)] = match &planned.notice {
        Notice::EngineerNotification { .. }
        | Notice::CommandError { .. }
        | Notice::LowRating { .. }
        | Notice::KbDraft { .. } => &[
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ],
        _ => &[],
    };
    let letter = Letter {
        reply_to,
        in_reply_to,
        references,
        automatic: planned.is_automatic(),
        extra,
        original: match &planned.notice {
            Notice::Forward(_) => Some(raw),
            _ => None,
        },
        text_file: match &planned.notice {
            Notice::KbDraft { markdown, .. } => {
                Some((kb_draft_file_name(&case.to_string()), markdown.clone()))
            }
            _ => None,
        },
        from,
        ..Letter::new(site_key, g, case, n, now, vec![planned.to.clone()])
    };
    Ok(letter.outbound(kind, role, rendered)?)
}

/// One mail from the support address about a case, before it is composed: the one way
/// a notice ([`compose_all`]) and an SLA alert ([`sla_alert`]) become an [`Outbound`].
struct Letter<'a> {
    site_key: &'a [u8],
    g: &'a GatewaySettings,
    case: CaseNumber,
    /// The mail's number within the case: names its Message-ID and return path.
    n: i64,
    now: DateTime<Utc>,
    recipients: Vec<String>,
    reply_to: Option<Address>,
    in_reply_to: Option<String>,
    references: Vec<String>,
    /// Auto-Submitted: auto-replied (RFC 3834).
    automatic: bool,
    extra: &'a [(&'static str, &'a str)],
    /// The customer's original, attached whole (a forward).
    original: Option<&'a [u8]>,
    /// The From address when not `g.support_address` (a case from another mailbox).
    from: Option<&'a str>,
    /// A Markdown file attached (file name, text): the `#kb draft` article (issue 18b).
    text_file: Option<(String, String)>,
}

impl<'a> Letter<'a> {
    fn new(
        site_key: &'a [u8],
        g: &'a GatewaySettings,
        case: CaseNumber,
        n: i64,
        now: DateTime<Utc>,
        recipients: Vec<String>,
    ) -> Letter<'a> {
        Letter {
            site_key,
            g,
            case,
            n,
            now,
            recipients,
            reply_to: None,
            in_reply_to: None,
            references: Vec::new(),
            automatic: false,
            extra: &[],
            original: None,
            from: None,
            text_file: None,
        }
    }

    fn outbound(
        self,
        kind: OutboundKind,
        role: Role,
        rendered: Rendered,
    ) -> Result<Outbound, compose::ComposeError> {
        let g = self.g;
        let message_id = signed::message_id(self.site_key, self.case.0, self.n, support_domain(g));
        let outgoing = Outgoing {
            from: Address {
                name: Some(g.support_name.clone()),
                email: self.from.unwrap_or(&g.support_address).to_string(),
            },
            to: self
                .recipients
                .iter()
                .map(|a| Address {
                    name: None,
                    email: a.clone(),
                })
                .collect(),
            cc: Vec::new(),
            reply_to: self.reply_to,
            subject: rendered.subject.clone(),
            body: rendered.body.clone(),
            message_id: message_id.clone(),
            in_reply_to: self.in_reply_to,
            references: self.references,
            auto_submitted: self.automatic,
            date: self.now,
        };
        let raw = match (self.original, &self.text_file) {
            (Some(original), _) => compose::compose_with_original(&outgoing, self.extra, original)?,
            (None, Some((name, text))) => compose::compose_with_text_file(
                &outgoing,
                self.extra,
                name,
                "text/markdown; charset=utf-8",
                text,
            )?,
            (None, None) => compose::compose_with(&outgoing, self.extra)?,
        };
        Ok(Outbound {
            kind,
            role,
            message_id,
            sender: signed::bounce_address(self.site_key, &g.support_address, self.case.0, self.n),
            recipients: self.recipients,
            subject: rendered.subject,
            text: rendered.body,
            raw,
        })
    }
}

/// An SLA warning or breach about `case` to `recipients`, composed: automatic, outside
/// any thread.
#[allow(clippy::too_many_arguments)]
pub fn sla_alert(
    site_key: &[u8],
    g: &GatewaySettings,
    case: CaseNumber,
    n: i64,
    now: DateTime<Utc>,
    recipients: Vec<String>,
    kind: TemplateKind,
    rendered: Rendered,
) -> Result<Outbound, compose::ComposeError> {
    let letter = Letter {
        automatic: true,
        ..Letter::new(site_key, g, case, n, now, recipients)
    };
    letter.outbound(kind.into(), Role::System, rendered)
}

/// The variables every template has, for case `case`.
pub fn common(
    g: &GatewaySettings,
    case: CaseNumber,
    subject: String,
    customer_email: String,
    customer_name: String,
    company: String,
) -> Common {
    let tag = subject_tag(&g.case_tag_word, case);
    Common {
        case_number: case.to_string(),
        reply_subject: thread::reply_subject(&tag, &subject),
        case_tag: tag,
        customer_name,
        customer_company: company,
        customer_email,
        subject,
        support_name: g.support_name.clone(),
        support_address: g.support_address.clone(),
    }
}

/// The variables every template has, from a stored case (the SLA timer's mails): the
/// same facts as the mails composed with the case's commit, display name included.
pub fn case_common(g: &GatewaySettings, case: &CaseSummary) -> Common {
    common(
        g,
        case.number,
        case.subject.clone(),
        case.customer.clone(),
        case.customer_name.clone().unwrap_or_default(),
        case.account.clone().unwrap_or_default(),
    )
}

/// `Name <address>` of who wrote `mail` (the address alone without a name).
fn written_by(mail: &Inbound) -> String {
    match mail
        .from
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(name) => format!("{name} <{}>", mail.from.email),
        None => mail.from.email.clone(),
    }
}

/// The domain of our Message-IDs: the support address's.
pub fn support_domain(g: &GatewaySettings) -> &str {
    g.support_address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost")
}

/// The case facts every template shows.
struct CaseText {
    common: Common,
    product: String,
    severity: u8,
    time_zone: Tz,
    contract_end: String,
    queue: String,
    owner: String,
    status: String,
    entitlement: String,
    tier: String,
    language: String,
}

impl CaseText {
    fn of(config: &Config, plan: &Plan, case: CaseNumber) -> CaseText {
        match &plan.target {
            Target::New(c) => CaseText::of_new(config, c, case),
            Target::Existing {
                details, status, ..
            } => CaseText::of_existing(config, plan, details, *status, case),
        }
    }

    /// A case this mail opens: everything comes from its triage.
    fn of_new(config: &Config, c: &NewCase, case: CaseNumber) -> CaseText {
        let t = &c.triage;
        let contract = t.contract.as_ref();
        CaseText {
            common: common(
                &config.gateway,
                case,
                c.subject.clone(),
                c.customer.clone(),
                c.customer_name.clone().unwrap_or_default(),
                contract.map(|k| k.account.clone()).unwrap_or_default(),
            ),
            product: t.product.clone(),
            severity: t.severity,
            time_zone: t.time_zone,
            contract_end: contract.map(|k| k.end.to_string()).unwrap_or_default(),
            queue: t.queue.clone().unwrap_or_default(),
            owner: String::new(),
            status: c.status.as_str().to_string(),
            entitlement: t.entitlement.as_str().to_string(),
            tier: t.tier().unwrap_or_default().to_string(),
            language: t.language.as_str().to_string(),
        }
    }

    /// A case the mail joins: what is stored, with this plan's changes over it.
    fn of_existing(
        config: &Config,
        plan: &Plan,
        d: &CaseDetails,
        status: Option<Status>,
        case: CaseNumber,
    ) -> CaseText {
        CaseText {
            common: common(
                &config.gateway,
                case,
                d.subject.clone(),
                d.customer.clone(),
                d.customer_name.clone().unwrap_or_default(),
                d.account.clone().unwrap_or_default(),
            ),
            product: d.product.clone().unwrap_or_default(),
            severity: plan
                .update
                .severity
                .or(d.severity)
                .unwrap_or(config.sla.default_severity),
            time_zone: config.sla.time_zone(
                d.region.as_deref().unwrap_or_default(),
                d.country.as_deref(),
            ),
            contract_end: String::new(),
            queue: plan
                .update
                .queue
                .clone()
                .or(d.queue.clone())
                .unwrap_or_default(),
            owner: plan
                .update
                .owner
                .clone()
                .or(d.owner.clone())
                .unwrap_or_default(),
            status: status
                .or(d.status)
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            entitlement: d
                .entitlement
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            tier: d.tier.clone().unwrap_or_default(),
            language: d
                .language
                .map(|l| l.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}

fn render(
    config: &Config,
    notice: &Notice,
    f: &CaseText,
    lang: &str,
    plan: &Plan,
    mail: &Inbound,
    to: &str,
) -> Result<(TemplateKind, Rendered), TemplateError> {
    let t = &config.templates;
    let common = f.common.clone();
    let sales = config.routing.sales_address.clone();
    match notice {
        Notice::Acknowledgement => {
            let due = plan
                .clocks
                .iter()
                .find(|c| c.kind == ClockKind::FirstResponse)
                .map(|c| format_due(c.due_at, f.time_zone))
                .unwrap_or_default();
            let ctx = Acknowledgement {
                common,
                product: f.product.clone(),
                severity: f.severity,
                first_response_due: due,
                product_info_needed: config.product_info.needed(&f.product, lang),
            };
            typed(t, lang, &ctx)
        }
        Notice::Refusal(Entitlement::Expired) => typed(
            t,
            lang,
            &RefusalExpired {
                common,
                contract_end: f.contract_end.clone(),
                sales_contact: sales,
            },
        ),
        Notice::Refusal(Entitlement::NotCovered) => typed(
            t,
            lang,
            &RefusalNotCovered {
                common,
                product: f.product.clone(),
                sales_contact: sales,
            },
        ),
        Notice::Refusal(_) => typed(
            t,
            lang,
            &RefusalNoContract {
                common,
                sales_contact: sales,
            },
        ),
        Notice::Redirect(Scope::Sales) => typed(
            t,
            lang,
            &RedirectSales {
                common,
                sales_contact: sales,
            },
        ),
        Notice::Redirect(Scope::ProfessionalServices) => {
            let services_contact = config.routing.ps_address.clone();
            typed(
                t,
                lang,
                &RedirectProfessionalServices {
                    common,
                    services_contact,
                },
            )
        }
        Notice::SeverityChanged {
            old,
            new,
            reason,
            engineer,
            next_due,
            reply,
        } => {
            let next_response_due = next_due
                .map(|d| format_due(d, f.time_zone))
                .unwrap_or_default();
            let ctx = SeverityChanged {
                common,
                old_severity: *old,
                new_severity: *new,
                reason: reason.clone(),
                engineer_name: engineer.clone(),
                next_response_due,
                reply: reply.clone(),
            };
            typed(t, lang, &ctx)
        }
        Notice::LowRating { rating, comment } => typed(
            t,
            lang,
            &LowRating {
                common,
                rating: *rating,
                comment: comment.clone().unwrap_or_default(),
                queue: f.queue.clone(),
                owner: f.owner.clone(),
            },
        ),
        Notice::CaseClosed {
            engineer,
            ask_feedback,
        } => {
            let reopen_days = (config.gateway.reopen_window.as_secs() / 86_400) as u32;
            typed(
                t,
                lang,
                &CaseClosed {
                    common,
                    engineer_name: engineer.clone(),
                    ask_feedback: *ask_feedback,
                    reopen_days,
                },
            )
        }
        Notice::EngineerNotification { event } => {
            let engineer = config.staff.engineer(to);
            let queue_tz = config
                .routing
                .queue(&f.queue)
                .map(|q| config.sla.time_zone(&q.region, None))
                .unwrap_or(f.time_zone);
            let existing_due = match &plan.target {
                Target::Existing { details, .. } => details.response_due,
                Target::New(_) => None,
            };
            let due_at = plan.clocks.iter().map(|c| c.due_at).min().or(existing_due);
            let due = due_at.map(|d| format_due(d, queue_tz)).unwrap_or_default();
            // Engineers read their region's time; the customer's is shown when it differs.
            let customer_due = due_at
                .filter(|_| f.time_zone != queue_tz)
                .map(|d| format_due(d, f.time_zone))
                .unwrap_or_default();
            let ctx = EngineerNotification {
                common,
                engineer_name: engineer.map(|e| e.name.clone()).unwrap_or_default(),
                event: event.to_string(),
                queue: f.queue.clone(),
                product: f.product.clone(),
                severity: f.severity,
                status: f.status.clone(),
                owner: f.owner.clone(),
                entitlement: f.entitlement.clone(),
                response_due: due,
                customer_response_due: customer_due,
                message_text: plan_text(plan),
                message_from: written_by(mail),
                tier: f.tier.clone(),
                language: f.language.clone(),
                command_help: commands::HELP.iter().map(|s| s.to_string()).collect(),
            };
            typed(t, lang, &ctx)
        }
        Notice::CommandError { errors } => {
            let engineer = config
                .staff
                .engineer(to)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            let ctx = EngineerCommandError {
                common,
                engineer_name: engineer,
                command: String::new(),
                error: errors.join("\n"),
            };
            typed(t, lang, &ctx)
        }
        // --- issue 18a: known issues ---
        Notice::Upgrade {
            issue,
            title,
            link,
            version,
            engineer,
            reply,
        } => typed(
            t,
            lang,
            &KnownIssueUpgrade {
                common,
                engineer_name: engineer.clone(),
                issue_id: issue.clone(),
                issue_title: title.clone(),
                issue_link: link.clone(),
                version: version.clone(),
                reply: reply.clone(),
            },
        ),
        Notice::Workaround {
            issue,
            title,
            link,
            text,
            engineer,
        } => typed(
            t,
            lang,
            &KnownIssueWorkaround {
                common,
                engineer_name: engineer.clone(),
                issue_id: issue.clone(),
                issue_title: title.clone(),
                issue_link: link.clone(),
                workaround: text.clone(),
            },
        ),
        Notice::KbDraft { title, .. } => {
            let engineer = config
                .staff
                .engineer(to)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            let ctx = KbDraft {
                common,
                engineer_name: engineer,
                title: title.clone(),
                attachment_name: kb_draft_file_name(&f.common.case_number),
            };
            typed(t, lang, &ctx)
        }
        Notice::EngineerReply { .. } | Notice::Forward(_) => unreachable_reply(),
    }
}

/// The draft's file name: `case-00001234-kb-draft.md` (issue 18b).
fn kb_draft_file_name(case_number: &str) -> String {
    format!("case-{case_number}-kb-draft.md")
}

/// Engineer replies are relayed as written, never through a template, and forwards
/// carry their own context; `compose_one` handles both before rendering.
fn unreachable_reply() -> Result<(TemplateKind, Rendered), TemplateError> {
    Err(TemplateError::NotATemplate("engineer_reply"))
}

/// The text of the mail a notification is about (shortened for the notification).
fn plan_text(plan: &Plan) -> String {
    plan.notification_text.clone()
}

/// An engineer's answer as the customer sees it: their words, signed.
fn relay(f: &CaseText, text: &str, engineer: &str) -> Rendered {
    let body = format!(
        "{}\n\n-- \n{engineer}\n{}\n",
        text.trim_end(),
        f.common.support_name
    );
    Rendered {
        subject: f.common.reply_subject.clone(),
        body,
    }
}

fn typed<C: TemplateContext>(
    t: &crate::templates::Templates,
    lang: &str,
    ctx: &C,
) -> Result<(TemplateKind, Rendered), TemplateError> {
    Ok((C::KIND, t.render_typed(lang, ctx)?))
}

/// `2026-11-30 10:00 JST (Asia/Tokyo)`: the reader's local time and zone; a zone whose
/// name is its abbreviation is printed once (`2026-11-30 01:00 UTC`, not `UTC (UTC)`).
pub fn format_due(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let abbreviation = local.format("%Z").to_string();
    let time = local.format("%Y-%m-%d %H:%M");
    if abbreviation == tz.name() {
        format!("{time} {abbreviation}")
    } else {
        format!("{time} {abbreviation} ({})", tz.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn due_times_are_shown_in_the_customers_zone() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
        assert_eq!(
            format_due(t, chrono_tz::Asia::Tokyo),
            "2026-11-30 10:00 JST (Asia/Tokyo)"
        );
    }

    /// Issue 20: engineer notifications said `... UTC (UTC)`.
    #[test]
    fn a_zone_named_by_its_abbreviation_is_printed_once() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
        assert_eq!(format_due(t, chrono_tz::UTC), "2026-11-30 01:00 UTC");
        assert_eq!(
            format_due(t, chrono_tz::Etc::UTC),
            "2026-11-30 01:00 UTC (Etc/UTC)"
        );
    }
}
