//! One fuzzer binary for every target: `casegate-fuzz TARGET` (see `targets::TARGETS`),
//! run under `cargo afl fuzz` by `scripts/fuzz`.

mod targets;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = targets::TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: casegate-fuzz TARGET (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
