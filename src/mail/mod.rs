//! Mail in and out: the parsing of inbound mail is the core's ([`casegate_core::mail`],
//! re-exported here so that `crate::mail::...` paths stay stable); composing outbound
//! mail uses lettre, an I/O crate, so it lives in this crate.

pub use casegate_core::mail::*;

pub mod compose;
