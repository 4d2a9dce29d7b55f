//! Configuration: raw layered values (file + environment) -> validated [`Config`].

pub mod contracts_csv;
pub mod known_issues;
mod load;
mod oauth2;
mod products;
pub mod routing;
mod settings;
mod sla;
mod staff;
mod web;

pub use crate::domain::sla::{RegionHours, SlaSettings};
pub use crate::domain::staff::{Engineer, StaffSettings};
pub use crate::oauth2::settings::{
    AuthMethod, GOOGLE_MAIL_SCOPE, Grant, MICROSOFT_APP_SCOPE, MICROSOFT_IMAP_SCOPE,
    MICROSOFT_SMTP_SCOPE, OAuth2Settings, Provider, SaslChoice,
};
#[cfg(test)]
pub(crate) use load::test_env;
pub use load::{ENV_PREFIX, Problem, Problems, load, load_database, load_with_env};
pub use settings::*;
pub use web::{Role, WebSettings, WebUser};
