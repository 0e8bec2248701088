//! Client commands built on `montage-client`: sessions (create, list, share, delete, show,
//! history), edit, watch, join. A refusal by the server is an error, so the command exits
//! non-zero.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use montage_client::sealed::{Keyring, SessionKey};
use montage_client::{
    Api, Client, Component, ErrorCode, Event, Invite, NewInvite, Op, Options, Role, SessionHandle,
    SessionInfo, SessionSettings, Tls, Value, path,
};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);

/// Where the server is and who I am: global flags, accepted before or after the subcommand.
#[derive(Args, Clone)]
pub struct ConnArgs {
    /// Server URL(s), comma separated: `http(s)://host:port` or `ws(s)://host:port/v1/ws`.
    #[arg(
        long,
        global = true,
        env = "MONTAGE_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    url: String,
    /// A token from `montage token USER` (or your app's backend).
    #[arg(long, global = true, env = "MONTAGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Also trust the CA certificate(s) in this PEM file for `https://`/`wss://` (the system's
    /// roots are always trusted; `SSL_CERT_FILE` works too).
    #[arg(long, global = true, env = "MONTAGE_CA_FILE", value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// An end-to-end encrypted session's key (`KEY`, or `EPOCH:KEY,…` after rotations; see
    /// docs/E2E.md): sessions are joined encrypted with it, and a session a command creates is
    /// created encrypted. It never reaches the server. (A key may begin with `-`: it is still
    /// read as the value.)
    #[arg(
        long,
        global = true,
        env = "MONTAGE_SESSION_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    key: Option<String>,
}

impl ConnArgs {
    fn ws_urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(ws_url)
            .collect()
    }
    fn token(&self) -> Result<String> {
        self.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow!(
                "no token: pass --token TOKEN or set MONTAGE_TOKEN (on the server's machine, `montage token USER` makes one)"
            )
        })
    }
    fn tls(&self) -> Result<Tls> {
        let tls = Tls::system();
        Ok(match &self.ca_file {
            Some(path) => tls.add_ca_file(path)?,
            None => tls,
        })
    }
    /// Connected, or the reason it can't be: a refused token at once, an unreachable server
    /// once every URL failed.
    async fn client(&self) -> Result<Client> {
        let urls = self.ws_urls();
        let first = urls.first().cloned().ok_or_else(|| anyhow!("no --url"))?;
        let opts = Options::new(first, self.token()?)
            .urls(urls.clone())
            .tls(self.tls()?);
        let c = Client::start(opts)?;
        let mut events = c.events();
        let unreachable = async {
            let mut failed = std::collections::BTreeMap::new();
            while let Some(e) = events.next().await {
                if let Event::ConnectFailed { url, message } = e {
                    failed.insert(url, message);
                    if failed.len() >= urls.len() {
                        return failed;
                    }
                }
            }
            std::future::pending().await
        };
        tokio::select! {
            r = c.connected(WAIT) => r.map_err(|e| match e.code() {
                Some(ErrorCode::Unauthorized) => anyhow!(
                    "the server refused the token: {} (make a new one with `montage token USER`)",
                    e
                ),
                _ => anyhow::Error::new(e).context("connecting"),
            })?,
            failed = unreachable => {
                let why: Vec<String> = failed.iter().map(|(u, m)| format!("{u}: {m}")).collect();
                bail!(
                    "could not connect ({}); is `montage serve` running there? --url or MONTAGE_URL says where",
                    why.join("; ")
                );
            }
        }
        Ok(c)
    }
    /// The keys of `--key`, if given.
    fn keys(&self) -> Result<Option<Keyring>> {
        self.key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|k| Keyring::parse(k).context("--key (MONTAGE_SESSION_KEY)"))
            .transpose()
    }
    async fn join(&self, session: &str) -> Result<(Client, SessionHandle)> {
        let c = self.client().await?;
        let joined = match self.keys()? {
            Some(keys) => c.join_encrypted(session, keys).await,
            None => c.join(session).await,
        };
        let h = joined.with_context(|| format!("joining {session}"))?;
        Ok((c, h))
    }
    /// The HTTP API of the first server.
    fn api(&self) -> Result<Api> {
        let first = self
            .ws_urls()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no --url"))?;
        Ok(Api::new(&first, self.token()?)?.tls(&self.tls()?)?)
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .filter(|r| *r != Role::Owner)
        .ok_or_else(|| format!("{s:?}: none, viewer, commenter or editor"))
}

fn parse_any_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?}: none, viewer, commenter, editor or owner"))
}

/// A session as the CLI prints it (one JSON object).
fn info_json(s: &SessionInfo) -> Json {
    json!({
        "session": s.id,
        "title": s.title,
        "role": s.role.as_str(),
        "link_role": s.link_role.map(Role::as_str),
        "version": s.version,
        "updated": s.updated,
    })
}

/// `http://h:p` → `ws://h:p/v1/ws`; a `ws://…` URL is taken as it is.
fn ws_url(u: &str) -> String {
    if u.starts_with("ws://") || u.starts_with("wss://") {
        return u.to_owned();
    }
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .unwrap_or(u);
    let host = rest.split('/').next().unwrap_or(rest);
    let scheme = if u.starts_with("https://") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}/v1/ws")
}

#[derive(Subcommand)]
pub enum SessionCmd {
    /// Create a session owned by me: without SESSION the server makes its id
    /// (`POST /v1/sessions`); with it, the id is mine unless it exists already (then this fails).
    #[command(after_help = "Examples:
  montage session create --title 'Spring cut' --link-role viewer
  montage session create brief-42")]
    Create {
        session: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// What signed-in users without a grant get: none (private), viewer, commenter, editor.
        #[arg(long, value_parser = parse_role)]
        link_role: Option<Role>,
        /// End-to-end encrypted (docs/E2E.md): without --key a new key is made and printed as
        /// `key`; hand it to the others out of band (the server never sees it).
        #[arg(long)]
        encrypted: bool,
    },
    /// List my sessions (owned or granted) as JSON lines.
    #[command(after_help = "Example:\n  montage session list | jq -r .session")]
    List,
    /// Open or close SESSION's link access (owners): none (private), viewer, commenter, editor.
    #[command(
        after_help = "Examples:\n  montage session share brief-42 viewer\n  montage session share brief-42 none"
    )]
    Share {
        session: String,
        #[arg(value_parser = parse_role)]
        link_role: Role,
    },
    /// Delete SESSION and everything in it (owners).
    #[command(after_help = "Example:\n  montage session delete brief-42")]
    Delete { session: String },
    /// Print SESSION's current version and state as JSON (never creates it), or with --version
    /// its state at that past version.
    #[command(after_help = "Examples:
  montage session show brief-42 | jq .state.title
  montage session show brief-42 --version 120")]
    Show {
        session: String,
        /// A past version still in history (see `montage session versions`).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Print the versions people can return to, newest first, as JSON lines
    /// (`{"version","time","user","name"?}`): checkpoints (one per five minutes of activity)
    /// and named versions.
    #[command(after_help = "Example:\n  montage session versions brief-42 | jq -c 'select(.name)'")]
    Versions { session: String },
    /// Name VERSION of SESSION (editors), e.g. the version sent to a client.
    #[command(after_help = "Example:\n  montage session name brief-42 120 'sent to client'")]
    Name {
        session: String,
        version: u64,
        name: String,
    },
    /// Bring SESSION back to VERSION as one new edit of mine (editors): the whole document, or
    /// with --id one layer, track or clip (or a comment thread); everything else stays as it
    /// is now. Undo it by
    /// restoring the version before.
    #[command(after_help = "Examples:
  montage session restore brief-42 120
  montage session restore brief-42 120 --id layer-7")]
    Restore {
        session: String,
        version: u64,
        /// Only this layer, track, clip or comment thread (a comment's id: it and its replies).
        #[arg(long)]
        id: Option<String>,
    },
    /// Save the composition of SESSION's timeline at playhead --t (seconds) as a JPEG: every
    /// video track's clip then, and the canvas layers on top. Prints what was drawn as JSON.
    #[command(
        after_help = "Example:\n  montage session frame brief-42 --t 12.5 --tier good --out frame.jpg"
    )]
    Frame {
        session: String,
        /// The playhead, in seconds.
        #[arg(long)]
        t: f64,
        /// excellent (1920×1080), good (1280×720), fair (854×480) or poor (320 px).
        #[arg(long, default_value = "good")]
        tier: String,
        /// Where to write the JPEG.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print SESSION's edits as JSON lines (`{"version","user","time","ops"}`).
    #[command(after_help = "Example:\n  montage session history brief-42 --from 100")]
    History {
        session: String,
        /// Only versions after this one.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
}

#[derive(Args)]
pub struct SessionArgs {
    #[command(subcommand)]
    cmd: SessionCmd,
}

#[derive(Args)]
pub struct EditArgs {
    session: String,
    /// Components as a JSON array, e.g. '[{"op":"set","path":["title"],"value":"Hi"}]'.
    ops: String,
}

#[derive(Args)]
pub struct SessionOnly {
    session: String,
}

#[derive(Args)]
pub struct RoleArgs {
    session: String,
    user: String,
    /// none (removes the user for good, until an owner sets another role), viewer, commenter,
    /// editor or owner.
    #[arg(value_parser = parse_any_role)]
    role: Role,
}

#[derive(Subcommand)]
pub enum InviteCmd {
    /// Make an invite link to SESSION (editors and owners); prints the invite as JSON.
    #[command(after_help = "Examples:
  montage invite create brief-42 --role commenter --max-uses 10
  montage invite create brief-42 --role editor --for bob --expires-in 3600")]
    Create {
        session: String,
        /// The role accepting gives: viewer or commenter (a public link); up to editor with --for.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Lifetime in seconds (default 7 days, at most 30).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
        /// How many people may accept it (1 to 10,000).
        #[arg(long)]
        max_uses: Option<u32>,
        /// Only this user may accept it.
        #[arg(long = "for", value_name = "USER")]
        for_user: Option<String>,
    },
    /// List SESSION's invites as JSON lines (editors and owners).
    #[command(after_help = "Example:\n  montage invite list brief-42")]
    List { session: String },
    /// Show what invite ID gives, without accepting it.
    #[command(after_help = "Example:\n  montage invite show 3f9c…")]
    Show { id: String },
    /// Accept invite ID: prints the session and the role I now hold there.
    #[command(after_help = "Example:\n  montage invite accept 3f9c… && montage watch brief-42")]
    Accept { id: String },
    /// Revoke invite ID (its creator or an owner).
    #[command(after_help = "Example:\n  montage invite revoke 3f9c…")]
    Revoke { id: String },
}

#[derive(Args)]
pub struct InviteArgs {
    #[command(subcommand)]
    cmd: InviteCmd,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn session(conn: &ConnArgs, a: SessionArgs) -> Result<()> {
    runtime()?.block_on(async move {
        match a.cmd {
            SessionCmd::Create {
                session: None,
                title,
                link_role,
                encrypted,
            } => {
                let mut settings = SessionSettings::new();
                settings.title = title;
                settings.link_role = link_role;
                // A new encrypted session gets a fresh key unless one was given.
                let given = conn.keys()?;
                let new_key = (encrypted && given.is_none()).then(SessionKey::generate);
                let keys = given.or_else(|| new_key.clone().map(Keyring::new));
                if keys.is_some() {
                    settings = settings.encrypted();
                }
                let s = conn.api()?.create_session(&settings).await?;
                let mut out = info_json(&s);
                if let Some(keys) = keys {
                    // Opening it writes its key check (an empty sealed edit) under this key, so
                    // whoever joins with another key is told so at once.
                    let c = conn.client().await?;
                    let h = c.join_encrypted(&s.id, keys).await?;
                    h.sync(WAIT).await.context("writing the key check")?;
                    h.leave().await?;
                    c.close().await;
                }
                if let Some(k) = new_key {
                    out["key"] = k.to_text().into();
                }
                println!("{out}");
            }
            SessionCmd::Create {
                session: Some(session),
                title,
                link_role,
                encrypted,
            } => {
                if encrypted && conn.keys()?.is_none() {
                    bail!(
                        "an encrypted session with an id of yours is created by joining it with its key: \
                         pass --key (make one with `montage session create --encrypted`, which picks the id)"
                    );
                }
                let api = conn.api()?;
                // A join would open an existing session quietly; creating means it is new.
                match api.session(&session).await {
                    Ok(head) => bail!(
                        "session {session} already exists (version {}); `montage watch {session}` opens it",
                        head.version
                    ),
                    Err(e) if e.code() == Some(ErrorCode::Forbidden) => {
                        bail!("session {session} already exists and is not shared with you")
                    }
                    Err(e) if e.code() == Some(ErrorCode::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                let (c, h) = conn.join(&session).await?;
                if h.role() != Some(Role::Owner) || h.version() > 0 {
                    c.close().await;
                    bail!("session {session} was created by someone else meanwhile");
                }
                // An encrypted session's key check goes out on joining: it is in once acked.
                h.sync(WAIT).await.context("writing the key check")?;
                let mut out = json!({"session": session, "version": h.version(), "role": "owner"});
                if title.is_some() || link_role.is_some() {
                    let mut settings = SessionSettings::new();
                    settings.title = title;
                    settings.link_role = link_role;
                    out = info_json(&api.update_session(&session, &settings).await?);
                }
                println!("{out}");
                h.leave().await?;
                c.close().await;
            }
            SessionCmd::List => {
                for s in conn.api()?.sessions().await? {
                    println!("{}", info_json(&s));
                }
            }
            SessionCmd::Share { session, link_role } => {
                let settings = SessionSettings::new().link_role(link_role);
                let s = conn.api()?.update_session(&session, &settings).await?;
                println!("{}", info_json(&s));
            }
            SessionCmd::Delete { session } => {
                conn.api()?.delete_session(&session).await?;
                println!("{}", json!({"session": session, "deleted": true}));
            }
            SessionCmd::Show {
                session,
                version: None,
            } if conn.keys()?.is_some() => {
                // An encrypted session's state exists only in its clients: join and open it.
                let (c, h) = conn.join(&session).await?;
                println!("{}", json!({"version": h.version(), "state": h.state().to_json()}));
                c.close().await;
            }
            SessionCmd::Show { session, version } => {
                let api = conn.api()?;
                let head = match version {
                    Some(v) => api.session_at(&session, v).await?,
                    None => api.session(&session).await?,
                };
                println!(
                    "{}",
                    json!({"version": head.version, "state": head.state})
                );
            }
            SessionCmd::Versions { session } => {
                let api = conn.api()?;
                let mut before = None;
                loop {
                    let page = api.versions(&session, before, 200).await?;
                    let Some(last) = page.last().map(|v| v.version) else {
                        break;
                    };
                    for v in &page {
                        let mut line = json!({"version": v.version, "time": v.time, "user": v.user});
                        if let Some(name) = &v.name {
                            line["name"] = name.as_str().into();
                            line["named_by"] = v.named_by.as_deref().into();
                        }
                        println!("{line}");
                    }
                    before = Some(last);
                }
            }
            SessionCmd::Name {
                session,
                version,
                name,
            } => {
                conn.api()?.name_version(&session, version, &name).await?;
                println!("{}", json!({"session": session, "version": version, "name": name}));
            }
            SessionCmd::Restore {
                session,
                version,
                id,
            } => {
                let new = conn.api()?.restore(&session, version, id.as_deref()).await?;
                println!(
                    "{}",
                    json!({"session": session, "restored": version, "id": id, "version": new})
                );
            }
            SessionCmd::Frame {
                session,
                t,
                tier,
                out,
            } => {
                let f = conn.api()?.frame(&session, t, &tier).await?;
                std::fs::write(&out, &f.jpeg)
                    .with_context(|| format!("writing {}", out.display()))?;
                println!(
                    "{}",
                    json!({"session": session, "t": t, "version": f.version, "clips": f.clips,
                           "warnings": f.warnings, "bytes": f.jpeg.len(), "out": out})
                );
            }
            SessionCmd::History { session, from } => {
                let api = conn.api()?;
                let mut from = from;
                loop {
                    let ops = api.ops(&session, from, 1000).await?;
                    let Some(last) = ops.last().and_then(|e| e["version"].as_u64()) else {
                        break;
                    };
                    for e in &ops {
                        println!("{e}");
                    }
                    from = last;
                }
            }
        }
        Ok(())
    })
}

pub fn edit(conn: &ConnArgs, a: EditArgs) -> Result<()> {
    let ops: Json = serde_json::from_str(&a.ops).context("ops must be a JSON array")?;
    runtime()?.block_on(async move {
        let (c, h) = conn.join(&a.session).await?;
        let mut events = h.events();
        h.edit_json(&ops)?;
        h.sync(WAIT).await.context("waiting for the ack")?;
        // A refused edit also ends in sync (the replica resets from the server): the refusal,
        // reported before that reset, says it did not happen.
        while let Some(e) = events.try_next() {
            if let Event::EditRefused { code, message, .. } = e {
                c.close().await;
                bail!("the server refused the edit: {} ({message})", code.as_str());
            }
        }
        println!("{}", json!({"version": h.version()}));
        c.close().await;
        Ok(())
    })
}

/// `montage role`: joins SESSION and asks the server to set USER's role there; done when every
/// participant has heard `role_changed`, refused with the server's code otherwise.
pub fn role(conn: &ConnArgs, a: RoleArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let (c, h) = conn.join(&a.session).await?;
        let mut events = h.events();
        h.set_role(&a.user, a.role).await?;
        let done = tokio::time::timeout(WAIT, async {
            while let Some(e) = events.next().await {
                match e {
                    Event::RoleChanged { user, role } if user == a.user => return Ok(role),
                    Event::Error { code, message } => {
                        bail!("the server refused: {} ({message})", code.as_str())
                    }
                    _ => {}
                }
            }
            bail!("the connection ended before the server answered")
        })
        .await
        .map_err(|_| anyhow!("no answer from the server within {WAIT:?}"));
        c.close().await;
        let role = done??;
        println!(
            "{}",
            json!({"session": a.session, "user": a.user, "role": role.as_str()})
        );
        Ok(())
    })
}

fn invite_json(i: &Invite) -> Json {
    json!({
        "id": i.id,
        "url": i.url,
        "session": i.session,
        "role": i.role.as_str(),
        "for": i.for_user,
        "expires_at": i.expires_at,
        "max_uses": i.max_uses,
        "uses": i.uses,
        "revoked": i.revoked,
        "created_by": i.created_by,
    })
}

pub fn invite(conn: &ConnArgs, a: InviteArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let api = conn.api()?;
        match a.cmd {
            InviteCmd::Create {
                session,
                role,
                expires_in,
                max_uses,
                for_user,
            } => {
                let mut new = NewInvite::new(role);
                new.expires_in_s = expires_in;
                new.max_uses = max_uses;
                new.for_user = for_user;
                println!("{}", invite_json(&api.create_invite(&session, &new).await?));
            }
            InviteCmd::List { session } => {
                for i in api.invites(&session).await? {
                    println!("{}", invite_json(&i));
                }
            }
            InviteCmd::Show { id } => println!("{}", invite_json(&api.invite(&id).await?)),
            InviteCmd::Accept { id } => {
                let (session, role) = api.accept_invite(&id).await?;
                println!("{}", json!({"session": session, "role": role.as_str()}));
            }
            InviteCmd::Revoke { id } => {
                api.revoke_invite(&id).await?;
                println!("{}", json!({"id": id, "revoked": true}));
            }
        }
        Ok(())
    })
}

pub fn watch(conn: &ConnArgs, a: SessionOnly) -> Result<()> {
    runtime()?.block_on(async move {
        let (c, h) = conn.join(&a.session).await?;
        let mut events = h.events();
        println!(
            "{}",
            json!({"type":"joined","version":h.version(),"state":h.state().to_json()})
        );
        let mut ended = Ok(());
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(ev) => {
                        println!("{}", event_json(&ev));
                        if let Some(why) = session_ended(&ev) {
                            ended = Err(anyhow!(why));
                            break;
                        }
                    }
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        c.close().await;
        ended
    })
}

/// Why the session can no longer be followed, for events that end it.
fn session_ended(e: &Event) -> Option<String> {
    match e {
        Event::SessionDeleted => Some("the session was deleted".into()),
        Event::AccessLost { message } => Some(message.clone()),
        Event::JoinRefused { message, .. } => Some(message.clone()),
        _ => None,
    }
}

/// A value the SDK has as a serde type, as JSON (they all serialize).
fn to_json(v: &impl serde::Serialize) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// An event as one JSON line: `type` names it as the wire does, the rest are its fields.
pub fn event_json(e: &Event) -> Json {
    match e {
        Event::Joined { version, role } => {
            json!({"type":"joined","version":version,"role":role.as_str()})
        }
        Event::Edit { version, user, op } => {
            json!({"type":"edit","version":version,"user":user,"ops":op.to_json()})
        }
        Event::Ack { seq, version } => json!({"type":"ack","seq":seq,"version":version}),
        Event::Presence { user, data } => json!({"type":"presence","user":user,"data":data}),
        Event::ParticipantJoined { user, role } => {
            json!({"type":"participant_joined","user":user,"role":role.as_str()})
        }
        Event::ParticipantLeft { user } => json!({"type":"participant_left","user":user}),
        Event::RoleChanged { user, role } => {
            json!({"type":"role_changed","user":user,"role":role.as_str()})
        }
        Event::Error { code, message } => {
            json!({"type":"error","code":code.as_str(),"message":message})
        }
        Event::Connection(s) => {
            json!({"type":"connection","state":format!("{s:?}").to_lowercase()})
        }
        Event::Lagged(n) => json!({"type":"lagged","skipped":n}),
        Event::LinkRoleChanged { role } => {
            json!({"type":"link_role_changed","role":role.as_str()})
        }
        Event::SessionDeleted => json!({"type":"session_deleted"}),
        Event::JoinRefused { code, message } => {
            json!({"type":"join_refused","code":code.as_str(),"message":message})
        }
        Event::AccessLost { message } => json!({"type":"access_lost","message":message}),
        Event::EditRefused {
            seq,
            code,
            message,
            lost,
        } => {
            json!({"type":"edit_refused","seq":seq,"code":code.as_str(),"message":message,"lost":lost})
        }
        Event::CommentAdded(c) => json!({"type":"comment_added","comment":to_json(c)}),
        Event::CommentUpdated(c) => json!({"type":"comment_updated","comment":to_json(c)}),
        Event::SuggestionAdded(s) => json!({"type":"suggestion_added","suggestion":to_json(s)}),
        Event::SuggestionUpdated(s) => {
            json!({"type":"suggestion_updated","suggestion":to_json(s)})
        }
        Event::Task(t) => json!({"type":"task","task":to_json(t)}),
        Event::ServerClosed { code, reason } => {
            json!({"type":"server_closed","code":code,"reason":reason})
        }
        Event::ConnectFailed { url, message } => {
            json!({"type":"connect_failed","url":url,"message":message})
        }
        Event::TokenRefreshed { exp } => json!({"type":"token_refreshed","exp":exp}),
        Event::TokenFailed { message } => json!({"type":"token_failed","message":message}),
        // A variant newer than this command: still one line, with what it says.
        other => json!({"type":"other","debug":format!("{other:?}")}),
    }
}

// ---- the interactive client ----

const HELP: &str = "commands: title TEXT | layer add image|text [ID] | layer del I | layer mov I J | \
layer set I KEY JSON | rotate I DEG | adjust I PARAM VALUE | edit JSON | undo | redo | show | help | quit";

pub fn join(conn: &ConnArgs, a: SessionOnly) -> Result<()> {
    runtime()?.block_on(async move {
        let (c, h) = conn.join(&a.session).await?;
        let mut events = h.events();
        println!("{HELP}");
        print_view(&h);
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Some(line) = line? else { break };
                    let line = line.trim();
                    if line == "quit" || line == "exit" {
                        break;
                    }
                    match command(&h, line) {
                        Ok(true) => print_view(&h),
                        Ok(false) => {}
                        Err(e) => println!("error: {e}"),
                    }
                }
                ev = events.next() => match ev {
                    Some(Event::Edit { user, version, .. }) => {
                        println!("-- v{version} by {user}");
                        print_view(&h);
                    }
                    Some(e @ (Event::ParticipantJoined { .. } | Event::ParticipantLeft { .. }
                        | Event::RoleChanged { .. } | Event::Error { .. } | Event::Connection(_)
                        | Event::LinkRoleChanged { .. })) => {
                        println!("-- {}", event_json(&e));
                    }
                    Some(e) if session_ended(&e).is_some() => {
                        println!("-- {}", event_json(&e));
                        c.close().await;
                        bail!(session_ended(&e).unwrap_or_default());
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        // Give the last edits a moment to be acknowledged.
        let _ = h.sync(Duration::from_secs(5)).await;
        c.close().await;
        Ok(())
    })
}

fn print_view(h: &SessionHandle) {
    let who: Vec<String> = h
        .participants()
        .iter()
        .filter(|p| p.online)
        .map(|p| format!("{} ({})", p.user, p.role.as_str()))
        .collect();
    println!(
        "session {} v{} · pending {} · online: {}",
        h.session(),
        h.version(),
        h.pending(),
        who.join(", ")
    );
    h.with_state(|d| {
        let title = d
            .get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default();
        println!("title: {title:?}");
        let layers = d
            .at(&["canvas".into(), "layers".into()])
            .and_then(Value::as_arr)
            .cloned()
            .unwrap_or_default();
        for (i, l) in layers.iter().enumerate() {
            println!("  [{i}] {}", l.to_json());
        }
    });
}

fn idx(s: Option<&str>) -> Result<usize> {
    s.ok_or_else(|| anyhow!("missing index"))?
        .parse()
        .context("index must be a number")
}

fn num(s: Option<&str>) -> Result<f64> {
    s.ok_or_else(|| anyhow!("missing number"))?
        .parse()
        .context("not a number")
}

/// Runs one interactive command; true if the view changed.
fn command(h: &SessionHandle, line: &str) -> Result<bool> {
    let mut w = line.split_whitespace();
    let layers = path!["canvas", "layers"];
    let layer = |i: usize| layers.child(i);
    let op = match w.next() {
        None => return Ok(false),
        Some("help") => {
            println!("{HELP}");
            return Ok(false);
        }
        Some("show") => return Ok(true),
        Some("undo") => {
            if !h.undo()? {
                println!("nothing to undo");
            }
            return Ok(true);
        }
        Some("redo") => {
            if !h.redo()? {
                println!("nothing to redo");
            }
            return Ok(true);
        }
        Some("title") => {
            let text = line.strip_prefix("title").unwrap_or("").trim();
            let old = h.with_state(|d| {
                d.get("title")
                    .and_then(Value::as_text)
                    .map_or(0, |t| t.len_chars())
            });
            let mut c = Vec::new();
            if old > 0 {
                c.push(Component::text_delete(path!["title"], 0, old));
            }
            if !text.is_empty() {
                c.push(Component::text_insert(path!["title"], 0, text));
            }
            Op::new(c)
        }
        Some("edit") => {
            let j: Json = serde_json::from_str(line.strip_prefix("edit").unwrap_or("").trim())?;
            Op::from_json(&j)?
        }
        Some("rotate") => {
            let i = idx(w.next())?;
            Op::new(vec![Component::Rotate {
                path: layer(i),
                by: num(w.next())?,
            }])
        }
        Some("adjust") => {
            let i = idx(w.next())?;
            let param = w.next().ok_or_else(|| anyhow!("missing param"))?.to_owned();
            Op::new(vec![Component::Adjust {
                path: layer(i),
                param,
                value: num(w.next())?,
            }])
        }
        Some("layer") => match w.next() {
            Some("add") => {
                let kind = w.next().unwrap_or("image");
                let n = h.with_state(|d| {
                    d.at(layers.segs())
                        .and_then(Value::as_arr)
                        .map_or(0, Vec::len)
                });
                let id = w.next().map_or_else(
                    || format!("layer-{}-{n}", std::process::id()),
                    str::to_owned,
                );
                let v = match kind {
                    "text" => {
                        json!({"id":id,"kind":"text","text":"Text","x":0,"y":0,"size":32,"color":"#ffffff"})
                    }
                    "image" => {
                        json!({"id":id,"kind":"image","asset":"none","x":0,"y":0,"w":100,"h":100})
                    }
                    other => bail!("unknown layer kind {other:?}"),
                };
                Op::new(vec![Component::ins(layer(n), Value::from_json(&v))])
            }
            Some("del") => Op::new(vec![Component::del(layer(idx(w.next())?))]),
            Some("mov") => {
                let i = idx(w.next())?;
                Op::new(vec![Component::mov(layer(i), idx(w.next())?)])
            }
            Some("set") => {
                let i = idx(w.next())?;
                let key = w.next().ok_or_else(|| anyhow!("missing key"))?;
                let rest: Vec<&str> = w.collect();
                let v: Json =
                    serde_json::from_str(&rest.join(" ")).context("value must be JSON")?;
                Op::new(vec![Component::set(
                    layer(i).child(key),
                    Value::from_json(&v),
                )])
            }
            _ => bail!("layer add|del|mov|set"),
        },
        Some(other) => bail!("unknown command {other:?}; {HELP}"),
    };
    h.edit(op)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_url("http://h:1"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("ws://h:1/v1/ws"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("https://h"), "wss://h/v1/ws");
    }
}
