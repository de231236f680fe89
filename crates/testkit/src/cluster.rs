//! Faults on the 3-broker test cluster: `scripts/kafka-cluster.sh --dir $KAFKA_CLUSTER_DIR
//! kill N|start-node N`.

use std::path::PathBuf;
use std::process::Command;

/// Runs `scripts/kafka-cluster.sh --dir $KAFKA_CLUSTER_DIR ARGS...` (blocking; it
/// waits for a restarted node itself) and fails the test when it fails.
pub fn cluster_script(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-cluster.sh");
    let dir = crate::kafka_cluster_dir();
    let output = Command::new(&script)
        .arg("--dir")
        .arg(&dir)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} --dir {dir} {}: {}\n{}",
        script.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A node killed with SIGKILL, restarted when dropped if the test did not restart it
/// itself, so a failing test leaves the cluster whole for the next one.
pub struct KilledNode(Option<i32>);

impl KilledNode {
    /// Kills node `node` (its broker id) of the test cluster.
    pub fn kill(node: i32) -> Self {
        cluster_script(&["kill", &node.to_string()]);
        Self(Some(node))
    }

    /// Restarts the node and waits until it serves metadata again.
    pub async fn restart(mut self) {
        let node = self.0.take().expect("killed node").to_string();
        tokio::task::spawn_blocking(move || cluster_script(&["start-node", &node]))
            .await
            .expect("start-node task");
    }
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if let Some(node) = self.0.take() {
            cluster_script(&["start-node", &node.to_string()]);
        }
    }
}
