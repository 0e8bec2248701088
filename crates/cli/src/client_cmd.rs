//! Client commands built on `montage-client`: sessions (create, list, share, delete, show,
//! history), edit, watch, join. A refusal by the server is an error, so the command exits
//! non-zero.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use montage_client::{
    Api, Client, Component, Event, Op, Options, Role, SessionHandle, SessionInfo, SessionSettings,
    Value, path,
};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Args, Clone)]
pub struct ConnArgs {
    /// Server URL(s), comma separated: `http://host:port` or `ws://host:port/v1/ws`.
    #[arg(long, env = "MONTAGE_URL", default_value = "http://127.0.0.1:7070")]
    url: String,
    /// A token from `montage token USER`.
    #[arg(long, env = "MONTAGE_TOKEN", hide_env_values = true)]
    token: String,
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
    async fn client(&self) -> Result<Client> {
        let urls = self.ws_urls();
        let first = urls.first().cloned().ok_or_else(|| anyhow!("no --url"))?;
        let c = Client::start(Options::new(first, self.token.clone()).urls(urls))?;
        c.connected(WAIT).await.context("connecting")?;
        Ok(c)
    }
    async fn join(&self, session: &str) -> Result<(Client, SessionHandle)> {
        let c = self.client().await?;
        let h = c
            .join(session)
            .await
            .with_context(|| format!("joining {session}"))?;
        Ok((c, h))
    }
    /// The HTTP API of the first server.
    fn api(&self) -> Result<Api> {
        let first = self
            .ws_urls()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no --url"))?;
        Ok(Api::new(&first, self.token.clone())?)
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?}: none, viewer, commenter or editor"))
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

/// `host:port` of a URL, for the HTTP endpoints.
fn host_of(u: &str) -> String {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// `http://host:port` of a WebSocket URL (`https://…` for `wss://`): where the HTTP endpoints are.
fn http_base(ws: &str) -> String {
    let scheme = if ws.starts_with("wss://") {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", host_of(ws))
}

#[derive(Subcommand)]
pub enum SessionCmd {
    /// Create a session owned by me: without SESSION the server makes its id
    /// (`POST /v1/sessions`); with it, joining creates it (where the server allows that).
    Create {
        session: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// What signed-in users without a grant get: none (private), viewer, commenter, editor.
        #[arg(long, value_parser = parse_role)]
        link_role: Option<Role>,
    },
    /// List my sessions (owned or granted) as JSON lines.
    List,
    /// Open or close SESSION's link access (owners): none (private), viewer, commenter, editor.
    Share {
        session: String,
        #[arg(value_parser = parse_role)]
        link_role: Role,
    },
    /// Delete SESSION and everything in it (owners).
    Delete { session: String },
    /// Print SESSION's current version and state as JSON.
    Show { session: String },
    /// Print SESSION's edits as JSON lines (`{"version","user","ops"}`).
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
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct EditArgs {
    session: String,
    /// Components as a JSON array, e.g. '[{"op":"set","path":["title"],"value":"Hi"}]'.
    ops: String,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct SessionOnly {
    session: String,
    #[command(flatten)]
    conn: ConnArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn session(a: SessionArgs) -> Result<()> {
    runtime()?.block_on(async move {
        match a.cmd {
            SessionCmd::Create {
                session: None,
                title,
                link_role,
            } => {
                let mut settings = SessionSettings::new();
                settings.title = title;
                settings.link_role = link_role;
                let s = a.conn.api()?.create_session(&settings).await?;
                println!("{}", info_json(&s));
            }
            SessionCmd::Create {
                session: Some(session),
                title,
                link_role,
            } => {
                let (c, h) = a.conn.join(&session).await?;
                let mut out = json!({"session": session, "version": h.version(), "role": h.role().map(|r| r.as_str())});
                if title.is_some() || link_role.is_some() {
                    let mut settings = SessionSettings::new();
                    settings.title = title;
                    settings.link_role = link_role;
                    out = info_json(&a.conn.api()?.update_session(&session, &settings).await?);
                }
                println!("{out}");
                h.leave().await?;
                c.close().await;
            }
            SessionCmd::List => {
                for s in a.conn.api()?.sessions().await? {
                    println!("{}", info_json(&s));
                }
            }
            SessionCmd::Share { session, link_role } => {
                let settings = SessionSettings::new().link_role(link_role);
                let s = a.conn.api()?.update_session(&session, &settings).await?;
                println!("{}", info_json(&s));
            }
            SessionCmd::Delete { session } => {
                a.conn.api()?.delete_session(&session).await?;
                println!("{}", json!({"session": session, "deleted": true}));
            }
            SessionCmd::Show { session } => {
                // Read over HTTP: joining would create a session that doesn't exist.
                let base = http_base(a.conn.ws_urls().first().map_or("", String::as_str));
                let http = crate::http::client(WAIT)?;
                let url = format!(
                    "{base}/v1/sessions/{}",
                    montage_protocol::path_segment(&session)
                );
                let body = crate::http::get_text(&http, &url, Some(&a.conn.token)).await?;
                let head: Json = serde_json::from_str(&body)?;
                println!(
                    "{}",
                    json!({"version": head["version"], "state": head["state"]})
                );
            }
            SessionCmd::History { session, from } => {
                let base = http_base(a.conn.ws_urls().first().map_or("", String::as_str));
                let http = crate::http::client(WAIT)?;
                let mut from = from;
                loop {
                    let url = format!(
                        "{base}/v1/sessions/{}/ops?from={from}&limit=1000",
                        montage_protocol::path_segment(&session)
                    );
                    let body = crate::http::get_text(&http, &url, Some(&a.conn.token)).await?;
                    let page: Json = serde_json::from_str(&body)?;
                    let ops = page["ops"].as_array().cloned().unwrap_or_default();
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

pub fn edit(a: EditArgs) -> Result<()> {
    let ops: Json = serde_json::from_str(&a.ops).context("ops must be a JSON array")?;
    runtime()?.block_on(async move {
        let (c, h) = a.conn.join(&a.session).await?;
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

pub fn watch(a: SessionOnly) -> Result<()> {
    runtime()?.block_on(async move {
        let (c, h) = a.conn.join(&a.session).await?;
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

/// An event as one JSON line.
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
        other => json!({"type":"other","debug":format!("{other:?}")}),
    }
}

// ---- the interactive client ----

const HELP: &str = "commands: title TEXT | layer add image|text [ID] | layer del I | layer mov I J | \
layer set I KEY JSON | rotate I DEG | adjust I PARAM VALUE | edit JSON | undo | redo | show | help | quit";

pub fn join(a: SessionOnly) -> Result<()> {
    runtime()?.block_on(async move {
        let (c, h) = a.conn.join(&a.session).await?;
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
        assert_eq!(host_of("ws://h:1/v1/ws"), "h:1");
        assert_eq!(http_base("ws://h:1/v1/ws"), "http://h:1");
        assert_eq!(http_base("wss://h/v1/ws"), "https://h");
    }
}
