//! Running this package's `orderflow registry register` as a script would; the other
//! helpers (schema files, reading the answer) live in `orderflow_testkit::registry_cli`,
//! shared with the repository-wide tests.

use std::path::Path;
use std::process::Output;

/// `orderflow registry register` of this package's binary; see
/// [`orderflow_testkit::registry_cli::register`].
pub fn register(url: &str, subject: &str, file: &Path) -> Output {
    orderflow_testkit::registry_cli::register(
        Path::new(env!("CARGO_BIN_EXE_orderflow")),
        url,
        subject,
        file,
    )
}
