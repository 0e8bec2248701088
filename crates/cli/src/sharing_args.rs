//! `montage serve` flags for connectors, webhooks, invites and the Task Manager.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use media_services::collaboration::SharingConfig;

#[derive(Args)]
pub struct SharingArgs {
    /// A connector's webhook URL as NAME=URL (messenger, yapper, allat); repeat the flag, or
    /// separate entries with commas in the environment variable.
    #[arg(
        long = "connector-url",
        env = "MONTAGE_CONNECTOR_URLS",
        value_delimiter = ','
    )]
    connector_urls: Vec<String>,
    /// A file of `name = url` lines (and optionally `secret = …`); flags override it.
    #[arg(long, env = "MONTAGE_CONNECTORS_FILE")]
    connectors_file: Option<PathBuf>,
    /// The HMAC-SHA256 key that signs every webhook (required with any connector URL).
    #[arg(long, env = "MONTAGE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// One webhook attempt gives up after this many milliseconds.
    #[arg(long, env = "MONTAGE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// Base of the preview and invite links sent out (default http://<listen address>).
    #[arg(long, env = "MONTAGE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Task attempts running at once.
    #[arg(long, env = "MONTAGE_TASK_WORKERS", default_value_t = 4)]
    task_workers: usize,
    /// Attempts before a task is dead.
    #[arg(long, env = "MONTAGE_TASK_MAX_ATTEMPTS", default_value_t = 8)]
    task_max_attempts: u32,
    /// Wait after a task's first failure (doubles per failure, with jitter).
    #[arg(long, env = "MONTAGE_TASK_BACKOFF_MS", default_value_t = 1_000)]
    task_backoff_ms: u64,
    /// Longest wait between attempts.
    #[arg(long, env = "MONTAGE_TASK_BACKOFF_MAX_MS", default_value_t = 300_000)]
    task_backoff_max_ms: u64,
    /// A claimed task not finished within this is run again (keep it above the webhook timeout).
    #[arg(long, env = "MONTAGE_TASK_LEASE_MS", default_value_t = 120_000)]
    task_lease_ms: u64,
}

impl SharingArgs {
    pub fn apply(&self, cfg: &mut SharingConfig) -> Result<()> {
        let c = &mut cfg.connectors;
        if let Some(path) = &self.connectors_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            c.add_file(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        for spec in self.connector_urls.iter().filter(|s| !s.trim().is_empty()) {
            c.add_url(spec)
                .map_err(|e| anyhow!("--connector-url {e}"))?;
        }
        if let Some(s) = &self.webhook_secret {
            c.secret = s.as_bytes().to_vec();
        }
        c.timeout = Duration::from_millis(self.webhook_timeout_ms.max(1));
        cfg.public_url = self.public_url.clone();
        let t = &mut cfg.tasks;
        t.workers = self.task_workers.max(1);
        t.max_attempts = self.task_max_attempts.max(1);
        t.backoff_base = Duration::from_millis(self.task_backoff_ms.max(1));
        t.backoff_max = Duration::from_millis(self.task_backoff_max_ms.max(self.task_backoff_ms));
        t.lease = Duration::from_millis(self.task_lease_ms.max(self.webhook_timeout_ms + 1_000));
        Ok(())
    }
}
