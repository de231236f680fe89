//! A private single Kafka broker a test may take away and bring back (a Kafka outage
//! that leaves the shared brokers alone): `scripts/kafka-single.sh --dir DIR
//! start|kill|restart|stop`, on ports below the kernel's ephemeral range.

use std::path::PathBuf;
use std::process::Command;

/// The broker, stopped and its directory removed when dropped.
pub struct SingleBroker {
    dir: PathBuf,
    /// Its bootstrap address.
    pub bootstrap: String,
}

fn script(dir: &PathBuf, command: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-single.sh");
    let output = Command::new(&script)
        .arg("--dir")
        .arg(dir)
        .arg(command)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} --dir {} {command}: {}\n{}",
        script.display(),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl SingleBroker {
    /// Starts a fresh broker and waits until it serves metadata (a JVM start: seconds).
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(crate::unique_name("kafka-single"));
        let started = dir.clone();
        let bootstrap = tokio::task::spawn_blocking(move || {
            script(&started, "start");
            script(&started, "bootstrap")
        })
        .await
        .expect("start task");
        Self { dir, bootstrap }
    }

    /// Kills the broker with SIGKILL: from now on nothing reaches it.
    pub async fn kill(&self) {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || script(&dir, "kill"))
            .await
            .expect("kill task");
    }

    /// Starts the broker again on its ports, with its data, and waits until it serves
    /// metadata.
    pub async fn restart(&self) {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || script(&dir, "restart"))
            .await
            .expect("restart task");
    }
}

impl Drop for SingleBroker {
    fn drop(&mut self) {
        let _ = Command::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-single.sh"),
        )
        .arg("--dir")
        .arg(&self.dir)
        .arg("stop")
        .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
