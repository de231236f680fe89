//! Kafka's own Java tools (`ConsoleProducer`, `ConfigCommand`, ...) as the reference a test
//! compares with, run through `scripts/kafka-tool.sh` at the repository root.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs `scripts/kafka-tool.sh CLASS ARGS...` with `stdin` as its standard input, waits
/// for it and returns its standard output. Blocks the calling thread (a JVM start takes
/// a few seconds).
///
/// # Panics
/// When the script is missing or the tool exits non-zero; the message carries the
/// command line and the tool's standard error.
pub fn run_kafka_tool(class: &str, args: &[&str], stdin: &[u8]) -> String {
    let script = repo_root().join("scripts/kafka-tool.sh");
    assert!(
        script.is_file(),
        "{} is missing: tests that compare with Kafka's Java tools need it (run the suite with scripts/test.sh)",
        script.display()
    );
    let command_line = format!("{} {class} {}", script.display(), args.join(" "));
    let mut child = Command::new(&script)
        .arg(class)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {command_line}: {err}"));
    // Written from a thread so a tool that prints a lot before reading cannot deadlock us.
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("wait for {command_line}: {err}"));
    let written = writer.join().expect("stdin writer");
    assert!(
        output.status.success(),
        "{command_line} exited with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    written.unwrap_or_else(|err| panic!("write stdin of {command_line}: {err}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The repository root: this crate lives in `crates/testkit`.
fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("crates/testkit has a grandparent")
        .to_path_buf()
}
