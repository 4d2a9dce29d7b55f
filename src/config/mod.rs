//! Configuration: raw layered values (file + environment) -> validated [`Config`].

pub mod contracts_csv;
mod load;
pub mod routing;
mod settings;
mod sla;

pub use load::{ENV_PREFIX, Problem, Problems, load, load_with_env};
pub use settings::*;
pub use sla::{RegionHours, SlaSettings};
