//! Configuration: raw layered values (file + environment) -> validated [`Config`].

mod load;
mod settings;

pub use load::{ENV_PREFIX, Problem, Problems, load, load_with_env};
pub use settings::*;
