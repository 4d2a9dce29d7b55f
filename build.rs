// Rebuild when a migration is added: `sqlx::migrate!` embeds the folder at compile time.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // For the `casegate_build_info` metric.
    for (name, var) in [
        ("CASEGATE_BUILD_TARGET", "TARGET"),
        ("CASEGATE_BUILD_PROFILE", "PROFILE"),
    ] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".to_string());
        println!("cargo:rustc-env={name}={value}");
    }
}
