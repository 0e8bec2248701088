//! `crate::harness` with a `Server` that runs on PostgreSQL.

use std::ops::{Deref, DerefMut};
use std::path::Path;

use anyhow::{Context, Result};

pub use crate::harness::*;

/// Where a data dir records its database, so a restart on the same dir finds the same data.
const DB_FILE: &str = "postgres-database";

/// `montage serve --database-url …` on a database that belongs to its data dir.
pub struct Server {
    inner: crate::harness::Server,
}

/// The database of data dir `dir`: created on first use, the same one on every later use (a
/// restart); a later `TestDb::create` drops it once the dir is gone.
fn database_of(dir: &Path) -> Result<TestDb> {
    let admin = std::env::var("MONTAGE_TEST_DATABASE_URL").context(
        "MONTAGE_TEST_DATABASE_URL is not set: the PostgreSQL run of the gateway suite needs it (`.ci/run` sets it)",
    )?;
    let marker = dir.join(DB_FILE);
    Ok(match std::fs::read_to_string(&marker) {
        Ok(name) => TestDb::reuse(&admin, name.trim())?,
        Err(_) => {
            let db = TestDb::create(&admin, Some(dir))?;
            std::fs::write(&marker, db.name())?;
            db
        }
    })
}

/// The PostgreSQL run needs `MONTAGE_TEST_DATABASE_URL`; without it each test says so loudly
/// and returns (or fails, when `MONTAGE_TEST_REQUIRE_SERVICES` is set, as in `.ci/run`).
pub fn backend_unavailable(test: &str) -> bool {
    test_database_url(test).is_none()
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Result<Server> {
        Server::start_env(dir, extra, &[])
    }

    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Server> {
        let db = database_of(dir)?;
        let mut args = vec!["--database-url", db.url.as_str()];
        args.extend_from_slice(extra);
        Ok(Server {
            inner: crate::harness::Server::start_env(dir, &args, env)?,
        })
    }
}

impl Served for Server {
    fn addr(&self) -> &str {
        &self.inner.addr
    }
}

impl Deref for Server {
    type Target = crate::harness::Server;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}
