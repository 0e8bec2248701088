//! Servers started in-process for a test, on each backend: `Server::start(backend, dir, flags)`
//! takes the flags `montage serve` takes, and `backend_tests!` runs a test once per backend.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use media_services::flags::ServeArgs;
use tokio::sync::oneshot;

use crate::{SECRET, Served, TestDb, test_database_url};

/// Where a test's servers keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: SQLite in the data dir.
    Sqlite,
    /// A database of its own per data dir on the server at `MONTAGE_TEST_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// Makes the store of a server on `dir` refuse (`on`) or accept again asset records, as a
    /// full or failing disk would: a trigger that raises.
    pub async fn refuse_asset_records(self, dir: &Path, on: bool) -> Result<()> {
        match self {
            Backend::Sqlite => {
                use sqlx::ConnectOptions;
                let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.join("montage.db"))
                    .connect()
                    .await?;
                let sql = if on {
                    "CREATE TRIGGER refuse_assets BEFORE INSERT ON assets \
                     BEGIN SELECT RAISE(FAIL, 'refused by the test'); END"
                } else {
                    "DROP TRIGGER refuse_assets"
                };
                sqlx::query(sql).execute(&mut c).await?;
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&database_of(dir)?.url).await?;
                let statements: &[&str] = if on {
                    &[
                        "CREATE OR REPLACE FUNCTION refuse_assets() RETURNS trigger AS $$ \
                         BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
                        "CREATE TRIGGER refuse_assets BEFORE INSERT ON assets \
                         FOR EACH ROW EXECUTE FUNCTION refuse_assets()",
                    ]
                } else {
                    &["DROP TRIGGER refuse_assets ON assets"]
                };
                for sql in statements {
                    sqlx::query(sql).execute(&mut c).await?;
                }
            }
        }
        Ok(())
    }

    /// The store a server on `dir` would open on this backend, for tests that drive the
    /// library directly.
    pub async fn open_store(
        self,
        dir: &Path,
    ) -> Result<std::sync::Arc<dyn media_services::store::Store>> {
        Ok(match self {
            Backend::Sqlite => {
                std::sync::Arc::new(media_services::store::SqliteStore::open(dir).await?)
            }
            Backend::Postgres => std::sync::Arc::new(
                media_services::store::PgStore::connect(&database_of(dir)?.url, 2).await?,
            ),
        })
    }

    /// Where `needle` appears in what a server on `dir` stored: the files under `dir` (their
    /// raw bytes: SQLite's database, WAL and blobs) and, on PostgreSQL, every row of every
    /// table of its database (as text). Empty when nowhere.
    pub async fn find_stored(self, dir: &Path, needle: &str) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(bytes) = std::fs::read(&p)
                    && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
                {
                    found.push(p.display().to_string());
                }
            }
        }
        if self == Backend::Postgres
            && let Conn::Postgres(mut c) = self.connect(dir).await?
        {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut c)
            .await?;
            for t in tables {
                let sql = format!(r#"SELECT count(*) FROM "{t}" r WHERE r::text LIKE $1"#);
                let n: i64 = sqlx::query_scalar(&sql)
                    .bind(format!("%{needle}%"))
                    .fetch_one(&mut c)
                    .await?;
                if n > 0 {
                    found.push(format!("{n} rows of table {t}"));
                }
            }
        }
        Ok(found)
    }

    /// The `ops` text of `session`'s `version` as a server on `dir` stored it.
    pub async fn stored_op(self, dir: &Path, session: &str, version: u64) -> Result<String> {
        let sql = "SELECT ops FROM ops WHERE session = $1 AND version = $2";
        let v = i64::try_from(version)?;
        Ok(match self.connect(dir).await? {
            Conn::Sqlite(mut c) => {
                sqlx::query_scalar(sql)
                    .bind(session)
                    .bind(v)
                    .fetch_one(&mut c)
                    .await?
            }
            Conn::Postgres(mut c) => {
                sqlx::query_scalar(sql)
                    .bind(session)
                    .bind(v)
                    .fetch_one(&mut c)
                    .await?
            }
        })
    }

    /// Replaces the `ops` text of `session`'s `version` (what a compromised server or disk
    /// could do); the server must be stopped.
    pub async fn rewrite_op(
        self,
        dir: &Path,
        session: &str,
        version: u64,
        ops: &str,
    ) -> Result<()> {
        let sql = "UPDATE ops SET ops = $1 WHERE session = $2 AND version = $3";
        let v = i64::try_from(version)?;
        match self.connect(dir).await? {
            Conn::Sqlite(mut c) => {
                sqlx::query(sql)
                    .bind(ops)
                    .bind(session)
                    .bind(v)
                    .execute(&mut c)
                    .await?;
            }
            Conn::Postgres(mut c) => {
                sqlx::query(sql)
                    .bind(ops)
                    .bind(session)
                    .bind(v)
                    .execute(&mut c)
                    .await?;
            }
        }
        Ok(())
    }

    /// A connection to the database of a server on `dir`.
    async fn connect(self, dir: &Path) -> Result<Conn> {
        Ok(match self {
            Backend::Sqlite => {
                use sqlx::ConnectOptions;
                Conn::Sqlite(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(dir.join("montage.db"))
                        .connect()
                        .await?,
                )
            }
            Backend::Postgres => {
                use sqlx::Connection;
                Conn::Postgres(sqlx::PgConnection::connect(&database_of(dir)?.url).await?)
            }
        })
    }

    /// Whether `test` can't run on this backend: PostgreSQL without `MONTAGE_TEST_DATABASE_URL`
    /// (said loudly, or a failure when `MONTAGE_TEST_REQUIRE_SERVICES` is set).
    pub fn unavailable(self, test: &str) -> bool {
        self == Backend::Postgres && test_database_url(test).is_none()
    }
}

/// A connection to a test server's database, on its backend.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// Each `async fn name(b: Backend) -> Result<()>` named becomes two tests, `sqlite::name` and
/// `postgres::name`, in the module that invokes this.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let b = $crate::Backend::Postgres;
                    if b.unavailable(concat!(module_path!(), "::", stringify!($name))) {
                        return Ok(());
                    }
                    super::$name(b).await
                }
            )*
        }
    };
}

/// Where a data dir records its PostgreSQL database, so a restart on it finds the same data.
const DB_FILE: &str = "postgres-database";

/// The database of data dir `dir`: created on first use, the same one on every later use.
pub fn database_of(dir: &Path) -> Result<TestDb> {
    let admin = std::env::var("MONTAGE_TEST_DATABASE_URL")
        .context("MONTAGE_TEST_DATABASE_URL is not set (`.ci/run` sets it)")?;
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

/// `montage serve`'s flags, parsed as the binary parses them.
#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

/// A server running in this process on a runtime of its own; dropping it shuts it down.
pub struct Server {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    /// Dropped by the server's thread when the server has shut down.
    done: Option<oneshot::Receiver<()>>,
}

impl Server {
    /// A server on `backend` with its data in `dir`, configured by `flags` as `montage serve`
    /// would be (`--data-dir`, the address and the backend are the harness's).
    pub async fn start(backend: Backend, dir: &Path, flags: &[&str]) -> Result<Server> {
        let dir_arg = dir.to_str().context("data dir is not UTF-8")?.to_owned();
        let mut argv = vec!["serve".to_owned(), "--data-dir".to_owned(), dir_arg];
        // Suites whose subject is not access run with link access open, as deployments that
        // choose `--default-link-role viewer` do; the access suite names the flag itself.
        if !flags.iter().any(|f| f.starts_with("--default-link-role")) {
            argv.push("--default-link-role=viewer".to_owned());
        }
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        let mut args = Serve::try_parse_from(argv)?.args;
        // The backend is the test's choice, not the environment's.
        args.database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(database_of(dir)?.url.clone()),
        };
        args.nats_url = None;
        let config = args.config(SECRET.as_bytes().to_vec())?;
        // Its own runtime on its own threads, as the binary runs it (and so a test's runtime
        // never carries the server's work).
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound, addr) = oneshot::channel();
        let (finished, done) = oneshot::channel::<()>();
        // Detached: a dropped server shuts down gracefully on its own thread.
        std::thread::spawn(move || -> media_services::Result<()> {
            let _finished = finished;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| media_services::Error::Config(format!("runtime: {e}")))?;
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = bound.send(Err(e.to_string()));
                        return Ok(());
                    }
                };
                let _ = bound.send(listener.local_addr().map_err(|e| e.to_string()));
                media_services::run(listener, config, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let addr = addr
            .await
            .context("the server thread ended before binding")?
            .map_err(|e| anyhow!("binding 127.0.0.1:0: {e}"))?;
        Ok(Server {
            addr: addr.to_string(),
            stop: Some(stop),
            done: Some(done),
        })
    }

    /// Shuts the server down gracefully (sessions flushed and snapshotted, the store closed)
    /// and returns once it has, so another server can open the same data.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Served for Server {
    fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP call to `server` as `user` (a token signed for them) with an optional JSON body;
/// returns the status and the body as JSON.
pub async fn as_user(
    server: &Server,
    method: &str,
    path: &str,
    user: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    crate::http_json(&server.addr, method, path, &crate::token(user), body).await
}
