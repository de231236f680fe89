//! Child processes under supervision: each in its own process group, so a signal reaches
//! its children too (apicurio.sh starts a JVM), killed with the group when dropped, so
//! an error or a panic of the harness leaves nothing running. No pid files: the harness
//! holds every child it started.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// A running child process and its process group.
pub struct Supervised {
    name: String,
    child: Child,
    pid: u32,
}

/// Sends `signal` (`TERM`, `KILL`) to the process group `pgid`.
fn signal_group(pgid: u32, signal: &str) {
    // A group that is gone already is fine: nothing to signal.
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Supervised {
    /// Starts `command` with stdout to `stdout` and stderr to `stderr` (appended; the
    /// same path for both is fine).
    pub fn spawn(
        name: impl Into<String>,
        mut command: Command,
        stdout: &Path,
        stderr: &Path,
    ) -> anyhow::Result<Self> {
        let name = name.into();
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {}", path.display()))
        };
        command
            .stdin(Stdio::null())
            .stdout(open(stdout)?)
            .stderr(open(stderr)?)
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("start {name}"))?;
        let pid = child.id().context("a child just started has a pid")?;
        Ok(Self { name, child, pid })
    }

    /// Its pid (and process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9` of the process group; waits until it is gone.
    pub async fn kill(&mut self) {
        signal_group(self.pid, "KILL");
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM to the group and returns at once.
    pub fn term(&self) {
        signal_group(self.pid, "TERM");
    }

    /// One SIGTERM (a second one makes a worker exit without draining), up to `grace`
    /// to exit, then SIGKILL. `false` when it had to be killed.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        if !self.running() {
            return true;
        }
        signal_group(self.pid, "TERM");
        if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
            return true;
        }
        tracing::warn!(name = %self.name, pid = self.pid, ?grace, "did not stop after SIGTERM: SIGKILL");
        self.kill().await;
        false
    }

    /// Waits for it to exit.
    pub async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        self.child
            .wait()
            .await
            .with_context(|| format!("wait for {}", self.name))
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.running() {
            signal_group(self.pid, "KILL");
        }
    }
}
