//! casegate's core: the rules of support (`domain`) and the reading of inbound mail
//! (`mail`: parse, headers, charsets, bodies, quotes), PURE: no I/O crate is a
//! dependency, so the compiler rejects a database, network or clock-reading import here.
//! `domain` uses `mail` (the parsed [`mail::Inbound`]); `mail` uses nothing of `domain`.

pub mod domain;
pub mod mail;
