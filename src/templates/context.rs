//! The variables each template may use: one typed struct per [`TemplateKind`], and a
//! sample of each. The samples are the documentation admins read (`check-config` renders
//! every template against them in strict mode, so a template that uses a variable not
//! listed here is refused) and the data the tests render with.
//!
//! Conventions for the caller:
//! - Every field is always present. "Unknown" is an empty string, never a missing field
//!   (templates test it with `{% if customer_name %}`).
//! - Times are already formatted for the reader, in their time zone with the zone's name,
//!   e.g. `2026-11-30 10:00 JST (Asia/Tokyo)`, the name once where it is its own
//!   abbreviation (`2026-11-30 01:00 UTC`): templates never compute with times.
//! - Texts given per language (`product_info_needed`, `reason`) are in the mail's language.

use serde::{Deserialize, Serialize};

use super::TemplateKind;

/// Variables every template has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Common {
    /// Eight digits: `00001234`.
    pub case_number: String,
    /// The subject tag: `[Case #00001234]`.
    pub case_tag: String,
    /// The customer's display name, "" when the mail carried none.
    pub customer_name: String,
    /// The customer's company (the contract's account name), "" when unknown.
    pub customer_company: String,
    /// The customer's address.
    pub customer_email: String,
    /// The customer's subject without reply prefixes or case tag (the case title).
    pub subject: String,
    /// The subject of a reply in the customer's thread:
    /// [`crate::domain::thread::reply_subject`]`(case_tag, subject)`.
    pub reply_subject: String,
    /// Display name of the support organisation, e.g. `Example Support`.
    pub support_name: String,
    /// The support address customers write to.
    pub support_address: String,
}

/// `acknowledgement`: a new case was opened for an entitled customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    #[serde(flatten)]
    pub common: Common,
    /// The product's display name.
    pub product: String,
    /// 1 (production down) to 4 (question).
    pub severity: u8,
    /// When the first response is due, in the customer's time zone.
    pub first_response_due: String,
    /// What the product team needs to pin the problem down (OS and version, product
    /// version, installed configuration, which logs), in the mail's language.
    pub product_info_needed: Vec<String>,
}

/// `refusal_no_contract`: no subscription matches the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalNoContract {
    #[serde(flatten)]
    pub common: Common,
    /// Where to buy a subscription (address or URL).
    pub sales_contact: String,
}

/// `refusal_expired`: the sender's subscription has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalExpired {
    #[serde(flatten)]
    pub common: Common,
    /// The contract's end date, formatted, e.g. `2026-03-31`.
    pub contract_end: String,
    pub sales_contact: String,
}

/// `refusal_not_covered`: the subscription does not cover the product asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalNotCovered {
    #[serde(flatten)]
    pub common: Common,
    /// The product the mail is about.
    pub product: String,
    pub sales_contact: String,
}

/// `redirect_sales`: a contract question (renewal, pricing, quote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectSales {
    #[serde(flatten)]
    pub common: Common,
    pub sales_contact: String,
}

/// `redirect_professional_services`: a request to write or test code, or to do the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectProfessionalServices {
    #[serde(flatten)]
    pub common: Common,
    /// Professional Services' address or URL.
    pub services_contact: String,
}

/// `severity_changed`: an engineer renegotiated the severity; the SLA was recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityChanged {
    #[serde(flatten)]
    pub common: Common,
    pub old_severity: u8,
    pub new_severity: u8,
    /// Why, in the engineer's words (in the mail's language).
    pub reason: String,
    pub engineer_name: String,
    /// The recomputed next response time, in the customer's time zone.
    pub next_response_due: String,
    /// The engineer's answer, when the reply that changed the severity also answers the
    /// customer: the mail then carries both.
    pub reply: Option<String>,
}

/// `case_closed`: the case was closed; the first time, asks for a 1–5 rating and a
/// comment by reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClosed {
    #[serde(flatten)]
    pub common: Common,
    pub engineer_name: String,
    /// True the first time the case closes: feedback is asked once per case.
    pub ask_feedback: bool,
    /// A reply within this many days reopens the case.
    pub reopen_days: u32,
}

// --- issue 18a: known issues and feedback ---

/// `low_rating`: a customer rated a closed case 1 or 2; to the queue's lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowRating {
    #[serde(flatten)]
    pub common: Common,
    /// 1 or 2.
    pub rating: u8,
    /// The customer's words with the rating, "" when none.
    pub comment: String,
    pub queue: String,
    /// The case's owner (address), "" when nobody owned it.
    pub owner: String,
}

/// `known_issue_upgrade`: the problem is a known issue with a fix; please upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownIssueUpgrade {
    #[serde(flatten)]
    pub common: Common,
    pub engineer_name: String,
    /// The issue's id, title and link, from the known-issues file.
    pub issue_id: String,
    pub issue_title: String,
    pub issue_link: String,
    /// The version to upgrade to (the fix's version or a later one).
    pub version: String,
    /// The engineer's own words, when the reply holds more than the command.
    pub reply: Option<String>,
}

/// `known_issue_workaround`: a known issue without a fix yet; the workaround, and the
/// case stays open until the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownIssueWorkaround {
    #[serde(flatten)]
    pub common: Common,
    pub engineer_name: String,
    pub issue_id: String,
    pub issue_title: String,
    pub issue_link: String,
    /// The engineer's text, else the file's workaround in the mail's language.
    pub workaround: String,
}

/// `engineer_notification`: tells an engineer (or a queue) about a case event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineerNotification {
    #[serde(flatten)]
    pub common: Common,
    /// The recipient engineer's name, "" when sent to a whole queue.
    pub engineer_name: String,
    /// `new_case`, `customer_update`, `reopened` or `transferred`.
    pub event: String,
    pub queue: String,
    pub product: String,
    pub severity: u8,
    /// The case status (`new`, `open`, `waiting`, ...).
    pub status: String,
    /// The owning engineer, "" when unowned.
    pub owner: String,
    /// `entitled`, `no_contract`, `expired`, `not_covered` or `out_of_scope`.
    pub entitlement: String,
    /// When the next response is due, in the engineer's time zone (the queue's region).
    pub response_due: String,
    /// The same moment in the customer's time zone, "" when it is the same zone.
    pub customer_response_due: String,
    /// The new message's text (possibly shortened by the caller).
    pub message_text: String,
    /// Who wrote that message, `Name <address>`: not always the case's customer.
    pub message_from: String,
    /// The contract tier (`premium`, `standard`, ...), "" when unknown.
    pub tier: String,
    /// The customer's language: `en` or `ja`.
    pub language: String,
    /// One line per command engineers can put at the top of their reply.
    pub command_help: Vec<String>,
}

/// `engineer_command_error`: a command in an engineer's reply could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineerCommandError {
    #[serde(flatten)]
    pub common: Common,
    pub engineer_name: String,
    /// The command line as written.
    pub command: String,
    /// Why it was refused.
    pub error: String,
}

/// `notification_failed`: a notification to an engineer could not be delivered (the
/// relay refused it, or it stayed undeliverable); to the queue's escalation address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFailed {
    #[serde(flatten)]
    pub common: Common,
    pub queue: String,
    /// The engineer address(es) the notification was for.
    pub engineer: String,
    /// What the mail server said.
    pub error: String,
}

/// `kb_draft` (issue 18b): the draft article of `#kb draft`, attached as Markdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbDraft {
    #[serde(flatten)]
    pub common: Common,
    pub engineer_name: String,
    /// The draft's title (its first heading).
    pub title: String,
    /// The attached file's name: `case-00001234-kb-draft.md`.
    pub attachment_name: String,
}

/// Variables of the two SLA mails to engineers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    #[serde(flatten)]
    pub common: Common,
    /// `first_response` or `next_response`.
    pub clock: String,
    /// The due time, in the engineer's time zone.
    pub due: String,
    pub severity: u8,
    pub queue: String,
    /// The owning engineer, "" when unowned.
    pub owner: String,
}

/// `sla_warning`: a clock is about to run out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaWarning {
    #[serde(flatten)]
    pub sla: SlaClock,
    /// Time left, formatted, e.g. `45 minutes` / `45分`.
    pub remaining: String,
}

/// `sla_breach`: a clock ran out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreach {
    #[serde(flatten)]
    pub sla: SlaClock,
    /// How late, formatted, e.g. `15 minutes` / `15分`.
    pub overdue: String,
}

/// `forward_out_of_scope`: the covering note of an out-of-scope mail forwarded to the
/// Sales or Professional Services desk; the customer's mail itself is attached as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardOutOfScope {
    #[serde(flatten)]
    pub common: Common,
    /// Why it was redirected: `sales` (renewal, pricing, quote) or
    /// `professional_services` (write or test code, do the work).
    pub scope: String,
    /// The desk's address (where this note goes).
    pub desk: String,
}

/// A typed context: ties a struct to its template, so a context cannot be rendered with
/// the wrong template.
pub trait TemplateContext: Serialize {
    const KIND: TemplateKind;
    /// The documented sample, in `lang` ("en" or "ja").
    fn sample(lang: &str) -> Self;
}

fn ja(lang: &str) -> bool {
    lang == "ja"
}

/// Sample of the common variables.
pub fn sample_common(lang: &str) -> Common {
    let (name, company, subject) = if ja(lang) {
        (
            "山田 太郎",
            "株式会社サンプル",
            "エージェントが起動しません",
        )
    } else {
        (
            "Jane Smith",
            "Acme Corp",
            "Agent does not start after upgrade",
        )
    };
    Common {
        case_number: "00001234".into(),
        case_tag: "[Case #00001234]".into(),
        customer_name: name.into(),
        customer_company: company.into(),
        customer_email: "customer@acme.example".into(),
        subject: subject.into(),
        reply_subject: format!("Re: [Case #00001234] {subject}"),
        support_name: "Example Support".into(),
        support_address: "support@example.com".into(),
    }
}

fn pick(lang: &str, en: &str, ja_text: &str) -> String {
    if ja(lang) { ja_text.into() } else { en.into() }
}

fn first_response_due(lang: &str) -> String {
    pick(
        lang,
        "2026-11-30 10:00 CET (Europe/Berlin)",
        "2026-11-30 10:00 JST (Asia/Tokyo)",
    )
}

const SALES: &str = "sales@example.com";

impl TemplateContext for Acknowledgement {
    const KIND: TemplateKind = TemplateKind::Acknowledgement;
    fn sample(lang: &str) -> Self {
        let info: &[&str] = if ja(lang) {
            &[
                "OS の種類とバージョン（例: RHEL 9.4）",
                "製品のバージョン（`agent --version` の出力）",
                "インストール構成（サーバー台数、冗長構成の有無、設定ファイル agent.conf）",
                "ログ（/var/log/agent/ 配下の全ファイル）",
            ]
        } else {
            &[
                "Operating system and version (e.g. RHEL 9.4)",
                "Product version (output of `agent --version`)",
                "Installed configuration (number of servers, clustering, agent.conf)",
                "Logs (all files under /var/log/agent/)",
            ]
        };
        Acknowledgement {
            common: sample_common(lang),
            product: "Example Automation Platform".into(),
            severity: 2,
            first_response_due: first_response_due(lang),
            product_info_needed: info.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl TemplateContext for RefusalNoContract {
    const KIND: TemplateKind = TemplateKind::RefusalNoContract;
    fn sample(lang: &str) -> Self {
        RefusalNoContract {
            common: sample_common(lang),
            sales_contact: SALES.into(),
        }
    }
}

impl TemplateContext for RefusalExpired {
    const KIND: TemplateKind = TemplateKind::RefusalExpired;
    fn sample(lang: &str) -> Self {
        RefusalExpired {
            common: sample_common(lang),
            contract_end: "2026-03-31".into(),
            sales_contact: SALES.into(),
        }
    }
}

impl TemplateContext for RefusalNotCovered {
    const KIND: TemplateKind = TemplateKind::RefusalNotCovered;
    fn sample(lang: &str) -> Self {
        RefusalNotCovered {
            common: sample_common(lang),
            product: "Example Monitoring".into(),
            sales_contact: SALES.into(),
        }
    }
}

impl TemplateContext for RedirectSales {
    const KIND: TemplateKind = TemplateKind::RedirectSales;
    fn sample(lang: &str) -> Self {
        RedirectSales {
            common: sample_common(lang),
            sales_contact: SALES.into(),
        }
    }
}

impl TemplateContext for RedirectProfessionalServices {
    const KIND: TemplateKind = TemplateKind::RedirectProfessionalServices;
    fn sample(lang: &str) -> Self {
        RedirectProfessionalServices {
            common: sample_common(lang),
            services_contact: "consulting@example.com".into(),
        }
    }
}

impl TemplateContext for SeverityChanged {
    const KIND: TemplateKind = TemplateKind::SeverityChanged;
    fn sample(lang: &str) -> Self {
        SeverityChanged {
            common: sample_common(lang),
            old_severity: 1,
            new_severity: 3,
            reason: pick(
                lang,
                "A workaround is in place and production is running again.",
                "回避策の適用により、本番環境は通常どおり稼働しているため。",
            ),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            next_response_due: first_response_due(lang),
            reply: Some(pick(
                lang,
                "Thank you for the logs. The failure comes from a known issue that is fixed in\n2.16.3; until you can upgrade, setting `pipelining = False` avoids it.",
                "ログのご提供ありがとうございます。本事象は既知の不具合によるもので、2.16.3 で修正されております。\nアップグレードいただくまでの間は、`pipelining = False` を設定いただくことで回避可能です。",
            )),
        }
    }
}

impl TemplateContext for CaseClosed {
    const KIND: TemplateKind = TemplateKind::CaseClosed;
    fn sample(lang: &str) -> Self {
        CaseClosed {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            ask_feedback: true,
            reopen_days: 14,
        }
    }
}

impl TemplateContext for EngineerNotification {
    const KIND: TemplateKind = TemplateKind::EngineerNotification;
    fn sample(lang: &str) -> Self {
        EngineerNotification {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            event: "new_case".into(),
            queue: pick(lang, "platform-emea-en", "platform-ja"),
            product: "Example Automation Platform".into(),
            severity: 2,
            status: "new".into(),
            owner: String::new(),
            entitlement: "entitled".into(),
            response_due: first_response_due(lang),
            customer_response_due: pick(
                lang,
                "2026-11-30 18:00 JST (Asia/Tokyo)",
                "2026-11-30 10:00 CET (Europe/Berlin)",
            ),
            message_text: pick(
                lang,
                "After upgrading to 5.2 the agent exits at start-up.\nLog attached.",
                "5.2 へのアップグレード後、エージェントが起動直後に終了します。\nログを添付します。",
            ),
            message_from: pick(
                lang,
                "Jane Smith <jane.smith@example.com>",
                "山田 太郎 <yamada@example.co.jp>",
            ),
            tier: "premium".into(),
            language: pick(lang, "en", "ja"),
            command_help: crate::domain::commands::HELP
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl TemplateContext for EngineerCommandError {
    const KIND: TemplateKind = TemplateKind::EngineerCommandError;
    fn sample(lang: &str) -> Self {
        EngineerCommandError {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            command: "#severity 7".into(),
            error: pick(
                lang,
                "severity must be 1 to 4",
                "重大度は 1〜4 で指定してください",
            ),
        }
    }
}

impl TemplateContext for KbDraft {
    const KIND: TemplateKind = TemplateKind::KbDraft;
    fn sample(lang: &str) -> Self {
        KbDraft {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            title: pick(
                lang,
                "The agent does not start after an upgrade",
                "アップグレード後にエージェントが起動しない",
            ),
            attachment_name: "case-00001234-kb-draft.md".into(),
        }
    }
}

fn sample_sla(lang: &str) -> SlaClock {
    SlaClock {
        common: sample_common(lang),
        clock: "first_response".into(),
        due: first_response_due(lang),
        severity: 2,
        queue: pick(lang, "platform-emea-en", "platform-ja"),
        owner: pick(lang, "Alex Chen", "佐藤 花子"),
    }
}

impl TemplateContext for SlaWarning {
    const KIND: TemplateKind = TemplateKind::SlaWarning;
    fn sample(lang: &str) -> Self {
        SlaWarning {
            sla: sample_sla(lang),
            remaining: pick(lang, "45 minutes", "45分"),
        }
    }
}

impl TemplateContext for SlaBreach {
    const KIND: TemplateKind = TemplateKind::SlaBreach;
    fn sample(lang: &str) -> Self {
        SlaBreach {
            sla: sample_sla(lang),
            overdue: pick(lang, "15 minutes", "15分"),
        }
    }
}

impl TemplateContext for ForwardOutOfScope {
    const KIND: TemplateKind = TemplateKind::ForwardOutOfScope;
    fn sample(lang: &str) -> Self {
        ForwardOutOfScope {
            common: sample_common(lang),
            scope: "sales".into(),
            desk: SALES.into(),
        }
    }
}

impl TemplateContext for NotificationFailed {
    const KIND: TemplateKind = TemplateKind::NotificationFailed;
    fn sample(lang: &str) -> Self {
        NotificationFailed {
            common: sample_common(lang),
            queue: pick(lang, "platform-emea-en", "platform-ja"),
            engineer: pick(lang, "alex.chen@example.com", "sato@example.com"),
            error: "554 5.7.1 Message rejected".into(),
        }
    }
}

impl TemplateContext for LowRating {
    const KIND: TemplateKind = TemplateKind::LowRating;
    fn sample(lang: &str) -> Self {
        LowRating {
            common: sample_common(lang),
            rating: 2,
            comment: pick(
                lang,
                "It took a week before anyone looked at the logs.",
                "ログを確認していただくまでに1週間かかりました。",
            ),
            queue: pick(lang, "ansible-emea-en", "ansible-ja"),
            owner: pick(lang, "alex.chen@example.com", "sato@example.com"),
        }
    }
}

impl TemplateContext for KnownIssueUpgrade {
    const KIND: TemplateKind = TemplateKind::KnownIssueUpgrade;
    fn sample(lang: &str) -> Self {
        KnownIssueUpgrade {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            issue_id: "AAP-1234".into(),
            issue_title: "Job templates hang when an inventory has more than 10,000 hosts".into(),
            issue_link: "https://access.example.com/issues/AAP-1234".into(),
            version: "2.14.2".into(),
            reply: Some(pick(
                lang,
                "The job log you sent shows the same pause after host 10,000.",
                "お送りいただいたジョブログにも、10,000 台目のホスト以降で同じ停止が見られます。",
            )),
        }
    }
}

impl TemplateContext for KnownIssueWorkaround {
    const KIND: TemplateKind = TemplateKind::KnownIssueWorkaround;
    fn sample(lang: &str) -> Self {
        KnownIssueWorkaround {
            common: sample_common(lang),
            engineer_name: pick(lang, "Alex Chen", "佐藤 花子"),
            issue_id: "AAP-2001".into(),
            issue_title: "Web login fails after the controller certificate is rotated".into(),
            issue_link: "https://access.example.com/issues/AAP-2001".into(),
            workaround: pick(
                lang,
                "Restart the web service on every controller node after rotating the certificate.",
                "証明書の更新後、すべてのコントローラーノードで Web サービスを再起動してください。",
            ),
        }
    }
}

/// The sample context of `kind` in `lang`, as JSON.
pub fn sample_context(kind: TemplateKind, lang: &str) -> serde_json::Value {
    fn value<C: TemplateContext>(lang: &str) -> serde_json::Value {
        serde_json::to_value(C::sample(lang)).unwrap_or_default()
    }
    match kind {
        TemplateKind::Acknowledgement => value::<Acknowledgement>(lang),
        TemplateKind::RefusalNoContract => value::<RefusalNoContract>(lang),
        TemplateKind::RefusalExpired => value::<RefusalExpired>(lang),
        TemplateKind::RefusalNotCovered => value::<RefusalNotCovered>(lang),
        TemplateKind::RedirectSales => value::<RedirectSales>(lang),
        TemplateKind::RedirectProfessionalServices => value::<RedirectProfessionalServices>(lang),
        TemplateKind::SeverityChanged => value::<SeverityChanged>(lang),
        TemplateKind::CaseClosed => value::<CaseClosed>(lang),
        TemplateKind::EngineerNotification => value::<EngineerNotification>(lang),
        TemplateKind::EngineerCommandError => value::<EngineerCommandError>(lang),
        TemplateKind::SlaWarning => value::<SlaWarning>(lang),
        TemplateKind::SlaBreach => value::<SlaBreach>(lang),
        TemplateKind::ForwardOutOfScope => value::<ForwardOutOfScope>(lang),
        TemplateKind::NotificationFailed => value::<NotificationFailed>(lang),
        TemplateKind::KnownIssueUpgrade => value::<KnownIssueUpgrade>(lang),
        TemplateKind::KnownIssueWorkaround => value::<KnownIssueWorkaround>(lang),
        TemplateKind::LowRating => value::<LowRating>(lang),
        TemplateKind::KbDraft => value::<KbDraft>(lang),
    }
}
