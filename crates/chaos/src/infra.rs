//! The services a chaos run owns: a free port, the 3-broker cluster (driven through
//! `scripts/kafka-cluster.sh`, which knows how to start, kill and restart its nodes), a
//! private PostgreSQL cluster that scenario c may stop (the machine's shared server is
//! never touched), and the schema registry.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use tokio::process::Command;

use crate::supervisor::Supervised;

/// A free TCP port on 127.0.0.1 below 32768 (the ephemeral range stays for clients).
pub fn free_port() -> anyhow::Result<u16> {
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(24000..29000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port in 24000..29000")
}

/// Runs `program args` to completion; its output goes to `log`.
pub async fn run_logged(program: &Path, args: &[&str], log: &Path) -> anyhow::Result<()> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let status = Command::new(program)
        .args(args)
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .await
        .with_context(|| format!("run {}", program.display()))?;
    if !status.success() {
        bail!(
            "{} {} exited {status} (see {})",
            program.display(),
            args.join(" "),
            log.display()
        );
    }
    Ok(())
}

/// The 3-broker cluster of `scripts/kafka-cluster.sh --dir DIR`.
pub struct Cluster {
    script: PathBuf,
    dir: PathBuf,
    /// Its bootstrap servers.
    pub bootstrap: String,
    started_here: bool,
}

impl Cluster {
    /// Uses the cluster running in `dir`, or starts one in `work/kafka` when `dir` is `None`.
    pub async fn open(root: &Path, dir: Option<&Path>, work: &Path) -> anyhow::Result<Self> {
        let script = root.join("scripts/kafka-cluster.sh");
        let (dir, started_here) = match dir {
            Some(dir) => (dir.to_path_buf(), false),
            None => {
                let dir = work.join("kafka");
                let base = rand::rng().random_range(24000..29000).to_string();
                let out = std::fs::File::create(work.join("cluster.log"))?;
                let status = Command::new(&script)
                    .args(["--dir", &dir.to_string_lossy(), "start"])
                    .env("KAFKA_CLUSTER_BASE_PORT", base)
                    .stdout(out.try_clone()?)
                    .stderr(out)
                    .status()
                    .await?;
                if !status.success() {
                    bail!(
                        "kafka-cluster.sh start failed (see {}/cluster.log)",
                        work.display()
                    );
                }
                (dir, true)
            }
        };
        let bootstrap = std::fs::read_to_string(dir.join("bootstrap"))
            .with_context(|| format!("{}/bootstrap: is a cluster running there?", dir.display()))?
            .trim()
            .to_string();
        Ok(Self {
            script,
            dir,
            bootstrap,
            started_here,
        })
    }

    async fn call(&self, args: &[&str], log: &Path) -> anyhow::Result<()> {
        let dir = self.dir.to_string_lossy();
        let mut all = vec!["--dir", &dir];
        all.extend_from_slice(args);
        run_logged(&self.script, &all, log).await
    }

    /// `kill -9` of node `node`.
    pub async fn kill(&self, node: i32, log: &Path) -> anyhow::Result<()> {
        self.call(&["kill", &node.to_string()], log).await
    }

    /// Starts node `node` again.
    pub async fn start_node(&self, node: i32, log: &Path) -> anyhow::Result<()> {
        self.call(&["start-node", &node.to_string()], log).await
    }

    /// Sends `signal` (`STOP`, `CONT`) to node `node`'s process.
    pub async fn signal(&self, node: i32, signal: &str, log: &Path) -> anyhow::Result<()> {
        let file = self.dir.join(format!("node{node}")).join("pid");
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        let pid: String = text.chars().filter(char::is_ascii_digit).collect();
        run_logged(Path::new("kill"), &["-s", signal, &pid], log).await
    }

    /// Stops the cluster if this run started it.
    pub async fn stop_if_started(&self, log: &Path) {
        if self.started_here
            && let Err(error) = self.call(&["stop"], log).await
        {
            tracing::warn!(%error, "stopping the cluster");
        }
    }
}

/// A private PostgreSQL cluster (initdb under the work directory, trust auth, fsync off).
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePostgres {
    /// initdb and start.
    pub async fn start(work: &Path) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed under /usr/lib/postgresql")?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max_by_key(|bin| {
                bin.parent()
                    .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .context("initdb not found under /usr/lib/postgresql/*/bin")?;
        let data = work.join("pg");
        std::fs::create_dir_all(&data)?;
        for dir in [work, data.as_path()] {
            run_logged(
                Path::new("chown"),
                &["postgres", &dir.to_string_lossy()],
                &work.join("initdb.log"),
            )
            .await?;
        }
        let port = free_port()?;
        let this = Self { bin, data, port };
        this.as_postgres(
            "initdb",
            &[
                "-D",
                &this.data.to_string_lossy(),
                "-U",
                "orderflow",
                "--auth=trust",
            ],
            &work.join("initdb.log"),
        )
        .await?;
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = off\n",
            this.data.display()
        );
        let path = this.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&conf);
        std::fs::write(&path, text)?;
        this.start_server().await?;
        Ok(this)
    }

    async fn as_postgres(&self, tool: &str, args: &[&str], log: &Path) -> anyhow::Result<()> {
        let tool = self.bin.join(tool);
        let tool = tool.to_string_lossy();
        let mut all = vec!["-u", "postgres", "--", &tool];
        all.extend_from_slice(args);
        run_logged(Path::new("runuser"), &all, log).await
    }

    /// `pg_ctl start -w`.
    pub async fn start_server(&self) -> anyhow::Result<()> {
        let data = self.data.to_string_lossy();
        let log = self.data.join("server.log");
        let log_arg = log.to_string_lossy();
        self.as_postgres(
            "pg_ctl",
            &["-D", &data, "-l", &log_arg, "-w", "start"],
            &self.data.join("pg_ctl.log"),
        )
        .await
    }

    /// `pg_ctl stop -m fast -w`.
    pub async fn stop_server(&self) -> anyhow::Result<()> {
        let data = self.data.to_string_lossy();
        self.as_postgres(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "stop"],
            &self.data.join("pg_ctl.log"),
        )
        .await
    }

    /// Stops the server if it runs (at the end of the run).
    pub async fn shut_down(&self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self.stop_server().await;
        }
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://orderflow:orderflow@127.0.0.1:{}/{db}",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    /// A run interrupted between scenarios must not leave its server running: stop it
    /// at once (nothing in it is kept).
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The registry: `SCHEMA_REGISTRY_URL` when given, else a private Apicurio storing in
/// the private PostgreSQL (then scenario c stops the registry's storage too).
pub struct Registry {
    /// Its ccompat base URL.
    pub url: String,
    _process: Option<Supervised>,
}

impl Registry {
    /// Uses `given` or starts Apicurio; waits until it answers.
    pub async fn open(
        given: Option<String>,
        root: &Path,
        pg: &PrivatePostgres,
        work: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(url) = given {
            return Ok(Self {
                url,
                _process: None,
            });
        }
        crate::db::execute(&pg.url("postgres"), "CREATE DATABASE apicurio").await?;
        let port = free_port()?;
        let mut command = Command::new(root.join("scripts/apicurio.sh"));
        command.args([
            "run",
            "--port",
            &port.to_string(),
            "--database-url",
            &pg.url("apicurio"),
        ]);
        let log = work.join("apicurio.log");
        let process = Supervised::spawn("apicurio", command, &log, &log)?;
        let url = format!("http://127.0.0.1:{port}/apis/ccompat/v7");
        wait_for_http(&format!("{url}/subjects"), Duration::from_secs(180)).await?;
        Ok(Self {
            url,
            _process: Some(process),
        })
    }
}

/// Until `url` answers with a 2xx, at most `limit`.
pub async fn wait_for_http(url: &str, limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let start = Instant::now();
    loop {
        if let Ok(answer) = client.get(url).timeout(Duration::from_secs(5)).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("{url} did not answer within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
