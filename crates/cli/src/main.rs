//! The `montage` command.

mod bench;
mod client_cmd;
mod http;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use media_services::access::Scope;
use media_services::auth::{self, Auth, Claims};
use media_services::files;
use media_services::flags::{SecretArgs, ServeArgs};
use montage_protocol::Role;

#[derive(Parser)]
#[command(
    name = "montage",
    version,
    about = "Real-time collaboration server for media editing",
    after_help = "Examples:
  montage serve                                  # the embedded default on 127.0.0.1:7070
  export MONTAGE_TOKEN=$(montage token ann)      # a token for user ann (on the server's machine)
  montage session create --title 'Spring cut'    # prints the new session's id
  montage edit SESSION '[{\"op\":\"set\",\"path\":[\"title\"],\"value\":\"Hi\"}]'
  montage watch SESSION                          # every event as a JSON line

--url, --token and --ca-file go before or after the subcommand (or MONTAGE_URL, MONTAGE_TOKEN,
MONTAGE_CA_FILE). A command the server refuses exits non-zero and says why."
)]
struct Cli {
    #[command(flatten)]
    conn: client_cmd::ConnArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once at start: the size of the largest variant (`serve`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the server (embedded SQLite in the data dir, or PostgreSQL + NATS for several nodes).
    #[command(after_help = "Examples:
  montage serve --addr 0.0.0.0:7070 --data-dir /var/lib/montage
  montage serve --dev                                     # local development: dev tokens, demo page
  montage serve --database-url postgres://… --nats-url nats://…   # one node of a cluster")]
    Serve(ServeArgs),
    /// Print a token for USER signed with the server's secret (optionally scoped to sessions).
    #[command(after_help = "Examples:
  montage token ann --name 'Ann Lee' --ttl 3600
  montage token bot --sessions 'team-*=viewer,brief=editor'")]
    Token(TokenArgs),
    /// Load generator over real WebSockets.
    #[command(after_help = "Examples:
  montage bench --sessions 100 --clients 5 --rate 5 --duration 30
  montage bench --addr 127.0.0.1:7070 --jwt-secret \"$MONTAGE_JWT_SECRET\"")]
    Bench(bench::BenchArgs),
    /// Sessions: create, list, share, delete; show one's state or print its history.
    #[command(alias = "sessions")]
    Session(client_cmd::SessionArgs),
    /// Apply one edit (a JSON array of components) and wait for its ack; exits non-zero with
    /// the server's error code if the edit is refused.
    #[command(after_help = "Examples:
  montage edit brief-42 '[{\"op\":\"set\",\"path\":[\"title\"],\"value\":\"Final\"}]'
  montage edit brief-42 '[{\"op\":\"rotate\",\"path\":[\"canvas\",\"layers\",0],\"by\":90}]'")]
    Edit(client_cmd::EditArgs),
    /// Print a session's events as JSON lines (edits, presence, comments, suggestions, roles,
    /// tasks, connection changes) until it ends or ctrl-c.
    #[command(
        after_help = "Example:\n  montage watch brief-42 | jq -c 'select(.type == \"comment_added\")'"
    )]
    Watch(client_cmd::SessionOnly),
    /// A small interactive terminal client.
    #[command(
        after_help = "Example:\n  montage join brief-42    # then: title Hello | layer add text | undo | quit"
    )]
    Join(client_cmd::SessionOnly),
    /// Set USER's role in SESSION (owners): none, viewer, commenter, editor or owner.
    #[command(after_help = "Examples:
  montage role brief-42 bob editor
  montage role brief-42 mallory none     # removes mallory until an owner sets another role")]
    Role(client_cmd::RoleArgs),
    /// Invite links: create, list, show, accept, revoke.
    #[command(alias = "invites")]
    Invite(client_cmd::InviteArgs),
}

#[derive(Args)]
struct TokenArgs {
    user: String,
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    /// Limit the token to these sessions, each with the role it gives there: `ID=ROLE` or
    /// `PREFIX*=ROLE` (an exact id beats the longest prefix), comma separated or repeated, e.g.
    /// `--sessions 'team-*=viewer,brief=editor'`. Elsewhere the token is `forbidden`, and it
    /// can't create sessions. Roles: none, viewer, commenter, editor, owner.
    #[arg(long, value_name = "ID_OR_PREFIX*=ROLE,…")]
    sessions: Vec<String>,
    #[command(flatten)]
    secret: SecretArgs,
}

/// The `sessions` claim from `--sessions` values (`None` without any).
fn scope_claim(values: &[String]) -> Result<Option<BTreeMap<String, Role>>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut claim = BTreeMap::new();
    for entry in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        let (pattern, role) = entry
            .rsplit_once('=')
            .ok_or_else(|| anyhow!("--sessions entry {entry:?} is not ID=ROLE"))?;
        let role = Role::parse(role.trim()).ok_or_else(|| {
            anyhow!("--sessions entry {entry:?}: the role must be none, viewer, commenter, editor or owner")
        })?;
        if claim.insert(pattern.trim().to_owned(), role).is_some() {
            bail!("--sessions names {:?} twice", pattern.trim());
        }
    }
    if claim.is_empty() {
        bail!("--sessions names no session");
    }
    Scope::from_claim(&claim).map_err(|e| anyhow!("--sessions: {e}"))?;
    Ok(Some(claim))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Token(a) => token(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Session(a) => client_cmd::session(&cli.conn, a),
        Cmd::Edit(a) => client_cmd::edit(&cli.conn, a),
        Cmd::Watch(a) => client_cmd::watch(&cli.conn, a),
        Cmd::Join(a) => client_cmd::join(&cli.conn, a),
        Cmd::Role(a) => client_cmd::role(&cli.conn, a),
        Cmd::Invite(a) => client_cmd::invite(&cli.conn, a),
    }
}

fn serve(a: ServeArgs) -> Result<()> {
    // The secret given by flag or environment is checked before anything is created.
    let given = a.secret.given_secret()?;
    // 0700 when new; `run` warns about an existing one open to others.
    files::create_private_dir(&a.secret.data_dir)?;
    let secret = match given {
        Some(s) => s,
        None => {
            let (s, created) = auth::load_or_create_secret(&a.secret.data_dir)?;
            let path = auth::secret_path(&a.secret.data_dir);
            if created {
                tracing::warn!(path = %path.display(), "no MONTAGE_JWT_SECRET: generated a random secret (mode 0600); `montage token` reads it");
            } else {
                tracing::info!(path = %path.display(), "using the JWT secret from the data dir");
            }
            s
        }
    };
    let config = a.config(secret)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Checked before binding: `--dev` never listens where others can reach it, even briefly.
        let addrs: Vec<_> = tokio::net::lookup_host(&a.addr)
            .await
            .with_context(|| format!("resolving {}", a.addr))?
            .collect();
        for addr in &addrs {
            config.check_listen_addr(*addr)?;
        }
        if a.dev && a.dev_allow_remote {
            tracing::warn!(
                "--dev --dev-allow-remote: anyone who can reach the server can get a token for any user at POST /v1/dev/token"
            );
        } else if a.dev {
            tracing::warn!(
                "--dev: pages opened at this machine can get a token for any user at POST /v1/dev/token"
            );
        }
        let listener = tokio::net::TcpListener::bind(&addrs[..])
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find the port when binding port 0.
        println!("listening on {addr}");
        std::io::stdout().flush()?;
        tracing::info!(%addr, data_dir = %a.secret.data_dir.display(), "serving");
        media_services::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn token(a: TokenArgs) -> Result<()> {
    let secret = match a.secret.given_secret()? {
        Some(s) => s,
        None => auth::read_secret(&a.secret.data_dir)?.with_context(|| {
            format!(
                "no MONTAGE_JWT_SECRET and no secret in {}; run `montage serve` once first",
                a.secret.data_dir.display()
            )
        })?,
    };
    let claims = Claims {
        sub: a.user,
        name: a.name,
        exp: media_services::clock::now_secs().saturating_add(a.ttl),
        nbf: None,
        sessions: scope_claim(&a.sessions)?,
    };
    let t = Auth::new(&secret)?.sign(&claims)?;
    println!("{t}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(values: &[&str]) -> Result<Option<BTreeMap<String, Role>>> {
        scope_claim(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn sessions_flags_make_the_claim() {
        assert_eq!(claim(&[]).unwrap(), None);
        let c = claim(&["team-*=viewer, brief=editor", "a=b=commenter"])
            .unwrap()
            .unwrap();
        let want: BTreeMap<String, Role> = [
            ("team-*".to_owned(), Role::Viewer),
            ("brief".to_owned(), Role::Editor),
            ("a=b".to_owned(), Role::Commenter),
        ]
        .into();
        assert_eq!(c, want);
        for bad in [
            &["x"][..],
            &["x=boss"],
            &["a=viewer,a=editor"],
            &["*a*=viewer"],
            &[","],
        ] {
            assert!(claim(bad).is_err(), "{bad:?} accepted");
        }
    }
}
