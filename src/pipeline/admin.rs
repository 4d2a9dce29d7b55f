//! An admin's command on a case from the command line (`casegate cases close 12`): the
//! domain decides it by the rules of the engineers' mail commands; it is written like an
//! engineer's reply, without a message.

use chrono::{DateTime, Utc};
use tracing::info;

use super::Pipeline;
use crate::domain::CaseNumber;
use crate::domain::decide::Facts;
use crate::domain::engineer::{self, AdminCommand};
use crate::mail::{Address, Inbound, MailHeaders};
use crate::notices::{self, Parent};
use crate::store::StoreError;

/// What became of an admin's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    Done {
        queued_mail: bool,
    },
    NoSuchCase,
    /// The command does not apply to the case (why); nothing changed.
    Refused(String),
}

impl Pipeline {
    /// Run `command` on case `number` as `actor` (an engineer's address, or a name for
    /// the audit trail), in one unit of work.
    pub async fn admin_command(
        &self,
        number: CaseNumber,
        command: &AdminCommand,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AdminOutcome, StoreError> {
        let actor =
            engineer::acting_as(&self.config.staff, actor, &self.config.gateway.support_name);
        let mut work = self.store.begin_work().await?;
        let Some(case) = work.case_facts(number, &actor.address).await? else {
            work.abandon().await?;
            return Ok(AdminOutcome::NoSuchCase);
        };
        let facts = Facts {
            running_clocks: work.running_clocks(number).await?,
            last_customer_message: work.last_customer_message(number).await?,
            ..Facts::default()
        };
        let plan = match engineer::admin(command, &actor, &case, &facts, self.settings()) {
            Ok(plan) => plan,
            Err(why) => {
                work.abandon().await?;
                return Ok(AdminOutcome::Refused(why));
            }
        };
        let parent = Parent {
            message_id: facts.last_customer_message.and_then(|(id, _)| id),
            ..Parent::default()
        };
        // No mail is being answered: the notices thread on the customer's last message.
        let none = Inbound {
            message_id: None,
            in_reply_to: Vec::new(),
            references: Vec::new(),
            subject: String::new(),
            from: Address {
                name: None,
                email: actor.address.clone(),
            },
            reply_to: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            date: None,
            text: String::new(),
            html_only: false,
            attachments: Vec::new(),
            headers: MailHeaders::default(),
        };
        let config = &self.config;
        let key = self.store.site_key().to_vec();
        let render = |case, first_n, address: Option<String>| {
            let from = address.as_deref();
            notices::compose_all(
                config,
                &key,
                &plan,
                &none,
                &[],
                &parent,
                case,
                first_n,
                from,
                now,
            )
        };
        work.write_plan_without_message(&plan, now, render).await?;
        let queued_mail = work.commit().await?;
        info!(case = %number, actor = %actor.address, command = ?command, "admin command");
        Ok(AdminOutcome::Done { queued_mail })
    }
}
