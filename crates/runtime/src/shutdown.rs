//! The shutdown tree: SIGINT and SIGTERM cancel a root token; every long-running loop
//! selects on a child of it. A second signal exits the process at once.

use tokio_util::sync::CancellationToken;

/// Exit code used when a second signal forces an immediate exit (128 + SIGINT).
pub const FORCED_EXIT_CODE: i32 = 130;

/// Handle on the root cancellation token, fed by the process's signals.
#[derive(Debug, Clone)]
pub struct Shutdown {
    root: CancellationToken,
}

impl Shutdown {
    /// Installs the SIGINT/SIGTERM handlers. The first signal cancels the root token
    /// (graceful drain); the second exits with [`FORCED_EXIT_CODE`].
    pub fn install() -> Self {
        let root = CancellationToken::new();
        let token = root.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested; draining (send the signal again to exit at once)");
            token.cancel();
            wait_for_signal().await;
            tracing::warn!("second signal; exiting now");
            std::process::exit(FORCED_EXIT_CODE);
        });
        Self { root }
    }

    /// A shutdown handle with no signal handlers, for tests and embedding.
    pub fn manual() -> Self {
        Self {
            root: CancellationToken::new(),
        }
    }

    /// The root token; give each subsystem `token().child_token()`.
    pub fn token(&self) -> CancellationToken {
        self.root.clone()
    }

    /// Starts a graceful shutdown, as the first signal would.
    pub fn trigger(&self) {
        self.root.cancel();
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
