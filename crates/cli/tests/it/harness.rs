//! Starting the `montage` binary for a test (the shared helpers are `montage_testkit`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

pub use montage_testkit::*;

/// Held by tests that build `web/client` (its `dist` is one directory; two builds at once
/// would interleave their files).
pub static WEB_CLIENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running `montage serve`. Dropping it kills the process.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Result<Server> {
        Server::start_env(dir, extra, &[])
    }

    /// `start` on `backend`: on PostgreSQL with a database of its own for `dir` (the same one
    /// again when a test restarts a server on that dir).
    pub fn start_on(backend: Backend, dir: &Path, extra: &[&str]) -> Result<Server> {
        Server::start_env_on(backend, dir, extra, &[])
    }

    /// `start_on` with extra environment variables for the server process.
    pub fn start_env_on(
        backend: Backend,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server> {
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(database_of(dir)?.url.clone()),
        };
        let mut args: Vec<&str> = url
            .as_deref()
            .map(|u| vec!["--database-url", u])
            .unwrap_or_default();
        args.extend_from_slice(extra);
        Server::start_env(dir, &args, env)
    }

    /// `start` with extra environment variables for the server process.
    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Server> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_montage"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            // Suites whose subject is not access run with link access open, as deployments
            // that choose `--default-link-role viewer` do; a test's flag or env overrides it.
            .env("MONTAGE_DEFAULT_LINK_ROLE", "viewer")
            .envs(env.iter().copied())
            .env("MONTAGE_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            // The backend is the test's choice (`--database-url`), not the environment's.
            .env_remove("MONTAGE_DATABASE_URL")
            .env_remove("MONTAGE_NATS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning montage")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first line {line:?}"))?;
        Ok(Server {
            child,
            addr: addr.to_owned(),
            dir: dir.to_owned(),
        })
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) -> Result<()> {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -TERM failed");
        }
        Ok(())
    }
}

impl Served for Server {
    fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running program whose stdout lines arrive on a channel; killed when dropped.
pub struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Result<Running> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {cmd:?}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Running { child, lines })
    }

    /// Waits for a line containing `what`.
    pub fn expect(&self, what: &str) -> Result<String> {
        self.expect_where(what, |l| l.contains(what))
    }

    /// Waits for a line that `pick` takes (`what` names it in the error).
    pub fn expect_where(&self, what: &str, pick: impl Fn(&str) -> bool) -> Result<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(l) if pick(&l) => return Ok(l),
                Ok(l) => seen.push(l),
                Err(_) => bail!("no line with {what}; printed {seen:?}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
