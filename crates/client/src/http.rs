//! The HTTP side of the SDK: `GET /v1/sessions/{id}/ops`, for a rejoin that missed more edits
//! than the server sends over the WebSocket, and the management of sessions ([`Api`]:
//! `POST/GET /v1/sessions`, `PATCH/DELETE /v1/sessions/{id}`, docs/PROTOCOL.md "Access"). One
//! `reqwest::Client` per SDK [`Client`](crate::Client).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use montage_protocol::{ErrorCode, Role};
use serde::{Deserialize, Serialize};

use crate::token::{Fixed, TokenSource, Tokens, now_secs};
use crate::{Error, Result, Tls};

/// Path and query of one page of `session`'s ops after version `from`.
pub(crate) fn ops_path(session: &str, from: u64, limit: u64) -> String {
    format!(
        "/v1/sessions/{}/ops?from={from}&limit={limit}",
        montage_protocol::path_segment(session)
    )
}

/// Path and query of the download of `session`'s state at `version` (`joined.state_ref`).
pub(crate) fn state_path(session: &str, version: u64) -> String {
    format!(
        "/v1/sessions/{}/state?version={version}",
        montage_protocol::path_segment(session)
    )
}

/// Tries of a state download in a row that bring no byte further before it gives up.
const DOWNLOAD_TRIES: u32 = 6;
/// A download that receives nothing for this long is cut and resumed.
const DOWNLOAD_STALL: Duration = Duration::from_secs(20);

/// A state to download (`joined.state_ref`) and how to reach it.
pub(crate) struct StateSource<'a> {
    pub http: &'a reqwest::Client,
    /// `http://host:port` and the path with its query ([`state_path`]).
    pub base: &'a str,
    pub path: &'a str,
    pub tokens: &'a Tokens,
    /// For an answer to start.
    pub timeout: Duration,
    pub state: &'a montage_protocol::StateRef,
}

/// How one request of a download ended, when not with the last byte.
enum Cut {
    /// Worth resuming (the connection broke or stalled, the server was busy).
    Resume(String),
    /// Not (no access, no such version, more bytes than announced).
    Fail(Error),
}

/// Downloads the state `r` names from `base` + `path` into `buf`, which may already hold the
/// first bytes of the same state (a cut download): every request asks for the rest (`Range`,
/// with `If-Range` so it never splices two different states), so a cut connection resumes
/// where it stopped. `progress` hears the bytes held after each piece. Checking the hash is
/// the caller's; `buf` keeps what arrived even on an error, for a later resume.
pub(crate) async fn download(
    src: &StateSource<'_>,
    buf: &mut Vec<u8>,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    // Progress is bytes beyond the most ever held: a download that had to start over (a proxy
    // that ignores `Range`) and is cut at varying places does not count as getting further.
    let (mut stuck, mut most) = (0, buf.len());
    loop {
        if buf.len() as u64 == src.state.bytes {
            return Ok(());
        }
        let why = match download_piece(src, buf, &mut progress).await {
            Ok(()) => "the body ended early".to_owned(),
            Err(Cut::Fail(e)) => return Err(e),
            Err(Cut::Resume(why)) => why,
        };
        if buf.len() > most {
            (stuck, most) = (0, buf.len());
            continue;
        }
        stuck += 1;
        if stuck >= DOWNLOAD_TRIES {
            return Err(Error::Connection(format!("GET {}: {why}", src.path)));
        }
        tracing::debug!(%why, have = buf.len(), "state download cut; resuming");
        tokio::time::sleep(Duration::from_millis(200) * (1 << stuck)).await;
    }
}

/// One request of [`download`]: from `buf.len()` to the end, or until it breaks.
async fn download_piece(
    src: &StateSource<'_>,
    buf: &mut Vec<u8>,
    progress: &mut impl FnMut(u64),
) -> std::result::Result<(), Cut> {
    use reqwest::{StatusCode, header};
    let (path, r) = (src.path, src.state);
    let token = (src.tokens.usable(now_secs(), src.timeout).await).map_err(Cut::Fail)?;
    let mut req = (src.http.get(format!("{}{path}", src.base))).bearer_auth(&token);
    if !buf.is_empty() {
        req = req
            .header(header::RANGE, format!("bytes={}-", buf.len()))
            .header(header::IF_RANGE, format!("\"{}\"", r.sha256));
    }
    let resp = match tokio::time::timeout(src.timeout, req.send()).await {
        Err(_) => return Err(Cut::Resume("no answer".into())),
        Ok(Err(e)) => return Err(Cut::Resume(chain(&e))),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let from = resp
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<usize>().ok());
            if from != Some(buf.len()) {
                buf.clear();
                return Err(Cut::Resume(
                    "a range that does not continue the body".into(),
                ));
            }
        }
        // The whole body (the server took no range): from the start.
        StatusCode::OK => buf.clear(),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            buf.clear();
            return Err(Cut::Resume("range not satisfiable".into()));
        }
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
            return Err(Cut::Resume(format!("status {s}")));
        }
        _ => {
            let text = resp.text().await.unwrap_or_default();
            let err = |e: &dyn Display| Error::Connection(format!("GET {path}: {e}"));
            return Err(Cut::Fail(refusal(status, &text, &err)));
        }
    }
    let mut resp = resp;
    loop {
        let chunk = match tokio::time::timeout(DOWNLOAD_STALL, resp.chunk()).await {
            Err(_) => return Err(Cut::Resume("stalled".into())),
            Ok(Err(e)) => return Err(Cut::Resume(chain(&e))),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(c))) => c,
        };
        if (buf.len() + chunk.len()) as u64 > r.bytes {
            buf.clear();
            return Err(Cut::Fail(Error::Connection(format!(
                "GET {path}: more than the {} bytes announced",
                r.bytes
            ))));
        }
        buf.extend_from_slice(&chunk);
        progress(buf.len() as u64);
    }
}

/// `http://host:port` of a `ws://` URL, `https://…` of a `wss://` one (the HTTP endpoints live
/// on the same server).
pub(crate) fn http_base(ws_url: &str) -> Option<String> {
    let (scheme, rest) = if let Some(r) = ws_url.strip_prefix("ws://") {
        ("http", r)
    } else {
        ("https", ws_url.strip_prefix("wss://")?)
    };
    let host = rest.split(['/', '?']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// The SDK's HTTP client, trusting what the WebSocket trusts. No proxy from the environment:
/// the WebSocket goes straight to the server, so the HTTP requests to the same server do too.
pub(crate) fn client(tls: &rustls::ClientConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls.clone())
        .build()
        .map_err(|e| Error::Connection(format!("HTTP client: {}", chain(&e))))
}

/// GET `base` + `path` with a bearer token; the body of a 200 answer, within `timeout` in all.
pub(crate) async fn get_text(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    timeout: Duration,
) -> Result<String> {
    let err = |e: &dyn Display| Error::Connection(format!("GET {path}: {e}"));
    let fetch = async {
        let resp = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| err(&chain(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            // Said for good (the history was trimmed, the session is gone): not worth a retry.
            return Err(Error::Server {
                code: ErrorCode::NotFound,
                message: format!("GET {path}: {}", resp.text().await.unwrap_or_default()),
            });
        }
        if status != reqwest::StatusCode::OK {
            return Err(err(&format!("status {status}")));
        }
        resp.text().await.map_err(|e| err(&chain(&e)))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| Error::Timeout("fetching missed edits"))?
}

/// A session as the server describes it to one caller (`POST`, `GET`, `PATCH
/// /v1/sessions…`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The id to [`join`](crate::Client::join) (server-made for created sessions).
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The caller's role in it.
    pub role: Role,
    /// What a signed-in user without a grant gets (`none`: private).
    #[serde(default)]
    pub link_role: Option<Role>,
    /// The head version.
    #[serde(default)]
    pub version: u64,
    /// Last change, milliseconds since the Unix epoch (in lists and on create).
    #[serde(default)]
    pub updated: Option<i64>,
}

/// The settings of a new session, or a change of them: only what is set is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `none` (private), `viewer`, `commenter` or `editor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_role: Option<Role>,
    /// Create it end-to-end encrypted (creation only; join it with
    /// [`Client::join_encrypted`](crate::Client::join_encrypted)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

impl SessionSettings {
    pub fn new() -> SessionSettings {
        SessionSettings::default()
    }
    /// End-to-end encrypted (DESIGN §9.4): the server orders and stores what it can't read.
    pub fn encrypted(mut self) -> SessionSettings {
        self.encrypted = Some(true);
        self
    }
    /// A title (an empty one clears it on update).
    pub fn title(mut self, title: impl Into<String>) -> SessionSettings {
        self.title = Some(title.into());
        self
    }
    pub fn link_role(mut self, role: Role) -> SessionSettings {
        self.link_role = Some(role);
        self
    }
}

/// A session's committed head (`GET /v1/sessions/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SessionState {
    pub version: u64,
    /// The document, as JSON.
    pub state: serde_json::Value,
}

/// A version people can return to (`GET /v1/sessions/{id}/versions`): an automatic checkpoint
/// or a named version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Version {
    pub version: u64,
    /// Commit time, ms since the Unix epoch (`None` for versions stored before servers kept
    /// times).
    pub time: Option<i64>,
    /// Who made the edit that became this version.
    pub user: String,
    /// Set for named versions, with who named it.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub named_by: Option<String>,
}

/// An invite link (`POST /v1/sessions/{id}/invites` and the other invite paths).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Invite {
    /// The secret: whoever holds it may accept.
    pub id: String,
    /// Where to send people (the server's invite page for this id).
    pub url: String,
    pub session: String,
    /// The role accepting gives (never lowering one held).
    pub role: Role,
    /// The only user who may accept, or `None` for a public link (at most `commenter`).
    #[serde(rename = "for", default)]
    pub for_user: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub uses: u32,
    #[serde(default)]
    pub revoked: bool,
    pub created_by: String,
}

/// An award: a badge given by the rules on contributions, or recognition given by someone
/// (`GET /v1/users/{id}/recognition`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Award {
    pub id: String,
    pub session: String,
    pub user: String,
    /// `featured_creator`, `community_spotlight`, `achievement_badge` or `social_recognition`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The badge's name (`first_edit`, `hundred_edits`, …) for achievement badges.
    #[serde(default)]
    pub badge: Option<String>,
    /// `None` for badges.
    #[serde(default)]
    pub awarded_by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// A user's recognition as the caller may see it: only of sessions the caller can view.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Recognition {
    pub user: String,
    pub badges: Vec<Award>,
    pub awards: Vec<Award>,
}

/// A version published to the showcase by a Featured Creator or Community Spotlight award.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ShowcaseEntry {
    pub award: String,
    /// `featured_creator` or `community_spotlight`.
    #[serde(rename = "type")]
    pub kind: String,
    pub session: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The creator recognised.
    pub user: String,
    pub awarded_by: String,
    /// The version shown: the head when awarded, never anything newer.
    pub version: u64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// The version's picture for any signed-in user (add `?tier=`).
    pub preview_url: String,
}

/// A stored upload (`Api::upload_asset`): its id (what a layer's `asset` names), `kind`
/// (`image`, `video`, `audio`, or `sealed` for an encrypted session's) and what the server read
/// of it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Asset {
    pub id: String,
    pub kind: String,
    pub format: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub duration: Option<f64>,
}

/// A composite frame of a session's timeline (`Api::frame`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Frame {
    /// The version drawn.
    pub version: u64,
    /// The ids of the clips in it, lowest track first.
    pub clips: Vec<String>,
    /// What was left out (a clip whose asset is missing), as the server put it.
    pub warnings: Option<String>,
    /// The picture.
    pub jpeg: Vec<u8>,
}

/// A new invite: the role it gives, and optionally its lifetime (default 7 days, at most 30),
/// uses (1 to 10,000) and the one user it is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NewInvite {
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
}

impl NewInvite {
    pub fn new(role: Role) -> NewInvite {
        NewInvite {
            role,
            expires_in_s: None,
            max_uses: None,
            for_user: None,
        }
    }
    pub fn expires_in(mut self, d: Duration) -> NewInvite {
        self.expires_in_s = Some(d.as_secs());
        self
    }
    pub fn max_uses(mut self, n: u32) -> NewInvite {
        self.max_uses = Some(n);
        self
    }
    /// Only `user` may accept it (it may then give up to the creator's role, never owner).
    pub fn for_user(mut self, user: impl Into<String>) -> NewInvite {
        self.for_user = Some(user.into());
        self
    }
}

/// The server's HTTP API for managing sessions, with a token source like the WebSocket's.
/// From a connected [`Client`](crate::Client) with [`Client::api`](crate::Client::api), or on
/// its own:
///
/// ```rust,no_run
/// use montage_client::{Api, Role, SessionSettings};
/// # async fn demo() -> montage_client::Result<()> {
/// let api = Api::new("http://127.0.0.1:7070", "JWT")?;
/// let s = api.create_session(&SessionSettings::new().title("Trailer")).await?; // private
/// api.update_session(&s.id, &SessionSettings::new().link_role(Role::Commenter)).await?;
/// for mine in api.sessions().await? {
///     println!("{} {:?} as {}", mine.id, mine.title, mine.role.as_str());
/// }
/// api.delete_session(&s.id).await?;
/// # Ok(()) }
/// ```
///
/// A refusal is [`Error::Server`] with the server's code (`forbidden`: not the owner;
/// `not_found`: no such session; `bad_request`: a bad title or role).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    tokens: Arc<Tokens>,
    timeout: Duration,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish()
    }
}

impl Api {
    /// The server at `url` (`http(s)://host:port`, or its `ws(s)://…/v1/ws` URL) with a fixed
    /// token.
    pub fn new(url: &str, token: impl Into<String>) -> Result<Api> {
        Api::with_token_source(url, Fixed(token.into()))
    }

    /// The server at `url`, asking `source` for tokens as the WebSocket client does.
    pub fn with_token_source(url: &str, source: impl TokenSource) -> Result<Api> {
        Api::from_parts(
            client(&*Tls::system().config()?)?,
            url,
            Arc::new(Tokens::new(Arc::new(source))),
            Duration::from_secs(10),
        )
    }

    /// Trusts `tls`'s roots for `https://` (the system's alone by default).
    pub fn tls(mut self, tls: &Tls) -> Result<Api> {
        self.http = client(&*tls.config()?)?;
        Ok(self)
    }

    pub(crate) fn from_parts(
        http: reqwest::Client,
        url: &str,
        tokens: Arc<Tokens>,
        timeout: Duration,
    ) -> Result<Api> {
        let base = if url.starts_with("http://") || url.starts_with("https://") {
            let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
            let host = rest.split(['/', '?']).next().filter(|h| !h.is_empty());
            host.map(|h| format!("{scheme}://{h}"))
        } else {
            http_base(url)
        };
        let base = base.ok_or_else(|| Error::Connection(format!("no host in {url:?}")))?;
        Ok(Api {
            http,
            base,
            tokens,
            timeout,
        })
    }

    /// `POST /v1/sessions`: a new session with a server-made id, owned by me. Without a
    /// `link_role` it gets the server's default (private unless the deployment chose
    /// otherwise). A token with a `sessions` claim can't create sessions (`forbidden`).
    pub async fn create_session(&self, settings: &SessionSettings) -> Result<SessionInfo> {
        let body = serde_json::to_string(settings).map_err(|e| Error::Connection(e.to_string()))?;
        let text = self
            .call(reqwest::Method::POST, "/v1/sessions", Some(body))
            .await?;
        parse(&text)
    }

    /// `GET /v1/sessions`: the sessions I own or was granted, most recently changed first
    /// (with a scoped token: those its claim names).
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        #[derive(Deserialize)]
        struct List {
            sessions: Vec<SessionInfo>,
        }
        let text = self
            .call(reqwest::Method::GET, "/v1/sessions", None)
            .await?;
        Ok(parse::<List>(&text)?.sessions)
    }

    /// `PATCH /v1/sessions/{id}` (owners): link role and/or title. Whoever is left without
    /// access is taken out of the session at once.
    pub async fn update_session(
        &self,
        id: &str,
        settings: &SessionSettings,
    ) -> Result<SessionInfo> {
        let body = serde_json::to_string(settings).map_err(|e| Error::Connection(e.to_string()))?;
        let path = session_path(id);
        let text = self.call(reqwest::Method::PATCH, &path, Some(body)).await?;
        parse(&text)
    }

    /// `DELETE /v1/sessions/{id}` (owners): the session, its history, comments and grants are
    /// gone; everyone in it hears [`Event::SessionDeleted`](crate::Event::SessionDeleted), and
    /// later joins are `not_found`.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.call(reqwest::Method::DELETE, &session_path(id), None)
            .await
            .map(drop)
    }

    /// `GET /v1/sessions/{id}`: the committed head (viewer or above). Never creates the
    /// session: `not_found` if there is none, `forbidden` without access.
    pub async fn session(&self, id: &str) -> Result<SessionState> {
        let text = self
            .call(reqwest::Method::GET, &session_path(id), None)
            .await?;
        parse(&text)
    }

    /// `GET /v1/sessions/{id}/ops`: the op-log entries after version `from`, at most `limit`
    /// (≤ 1,000), each `{"version","user","time","ops"}`; page on with the last version.
    pub async fn ops(&self, id: &str, from: u64, limit: u64) -> Result<Vec<serde_json::Value>> {
        #[derive(Deserialize)]
        struct Page {
            ops: Vec<serde_json::Value>,
        }
        let text = self
            .call(reqwest::Method::GET, &ops_path(id, from, limit), None)
            .await?;
        Ok(parse::<Page>(&text)?.ops)
    }

    /// `GET /v1/sessions/{id}?version=V`: the document at a past version still in history
    /// (viewer or above); `not_found` past the head or trimmed.
    pub async fn session_at(&self, id: &str, version: u64) -> Result<SessionState> {
        let path = format!("{}?version={version}", session_path(id));
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        parse(&text)
    }

    /// `GET /v1/sessions/{id}/versions`: checkpoints and named versions below `before` (all
    /// when `None`), newest first, at most `limit` (≤ 200); page on with the last version.
    pub async fn versions(
        &self,
        id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Version>> {
        #[derive(Deserialize)]
        struct Page {
            versions: Vec<Version>,
        }
        let mut path = format!("{}/versions?limit={limit}", session_path(id));
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(parse::<Page>(&text)?.versions)
    }

    /// `GET /v1/notifications`: my inbox, newest first — only unread items if `unread`, only
    /// items older than `before` (ms since the epoch: the last item's `time` pages on), at
    /// most `limit` (≤ 100). Live ones also arrive as [`Event::Notification`](crate::Event).
    pub async fn notifications(
        &self,
        unread: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<montage_protocol::Notification>> {
        #[derive(Deserialize)]
        struct Page {
            notifications: Vec<montage_protocol::Notification>,
        }
        let mut path = format!("/v1/notifications?unread={unread}&limit={limit}");
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(parse::<Page>(&text)?.notifications)
    }

    /// `POST /v1/notifications/read`: marks my items `ids` read, or all of them when `None`;
    /// returns how many were unread.
    pub async fn mark_read(&self, ids: Option<&[String]>) -> Result<u64> {
        let body = match ids {
            Some(ids) => serde_json::json!({ "ids": ids }),
            None => serde_json::json!({ "all": true }),
        };
        let text = self
            .call(
                reqwest::Method::POST,
                "/v1/notifications/read",
                Some(body.to_string()),
            )
            .await?;
        #[derive(Deserialize)]
        struct Marked {
            marked: u64,
        }
        Ok(parse::<Marked>(&text)?.marked)
    }

    /// `POST /v1/sessions/{id}/awards`: recognises `user` (a member) in the session with
    /// `kind`: `featured_creator` or `community_spotlight` (owner only; publishes the current
    /// version to the showcase) or `social_recognition` (posted to the feeds). Returns the
    /// award's id; awarding the same again gives the same id.
    pub async fn award(&self, session: &str, user: &str, kind: &str) -> Result<String> {
        let body = serde_json::json!({"user": user, "type": kind}).to_string();
        let path = format!("{}/awards", session_path(session));
        let text = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        #[derive(Deserialize)]
        struct Made {
            id: String,
        }
        Ok(parse::<Made>(&text)?.id)
    }

    /// `GET /v1/users/{id}/recognition`: `user`'s badges and awards in the sessions I may view.
    pub async fn recognition(&self, user: &str) -> Result<Recognition> {
        let path = format!(
            "/v1/users/{}/recognition",
            montage_protocol::path_segment(user)
        );
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        parse(&text)
    }

    /// `GET /v1/showcase`: featured creators and spotlighted projects, newest first — only
    /// those awarded before `before` (ms since the epoch: the last entry's `at` pages on), at
    /// most `limit` (≤ 200).
    pub async fn showcase(&self, before: Option<i64>, limit: u32) -> Result<Vec<ShowcaseEntry>> {
        #[derive(Deserialize)]
        struct Page {
            showcase: Vec<ShowcaseEntry>,
        }
        let mut path = format!("/v1/showcase?limit={limit}");
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(parse::<Page>(&text)?.showcase)
    }

    /// `GET /v1/sessions/{id}/frame?t=T&tier=TIER`: the whole composition at playhead `t`
    /// seconds — every video track's clip then and the canvas layers — as a JPEG at the tier's
    /// preview size (`excellent`, `good`, `fair` or `poor`). `not_supported` when the server
    /// has no ffmpeg and a clip plays at `t`.
    pub async fn frame(&self, session: &str, t: f64, tier: &str) -> Result<Frame> {
        let path = format!(
            "{}/frame?t={t}&tier={}",
            session_path(session),
            montage_protocol::path_segment(tier)
        );
        let (headers, bytes) = self.call_raw(reqwest::Method::GET, &path, None).await?;
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
        Ok(Frame {
            version: header("x-montage-version")
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            clips: header("x-montage-clips")
                .unwrap_or_default()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            warnings: header("x-montage-warnings").map(str::to_owned),
            jpeg: bytes,
        })
    }

    /// `POST /v1/assets[?session=S]`: stores a picture, video or sound (for session `S`: its
    /// editors may upload; without one, any user, for a layer added later). In an encrypted
    /// session upload what [`SessionHandle::seal_asset`](crate::SessionHandle::seal_asset)
    /// made: the server takes only sealed assets there and answers `kind` `"sealed"`.
    pub async fn upload_asset(&self, session: Option<&str>, file: Vec<u8>) -> Result<Asset> {
        let path = match session {
            Some(s) => format!("/v1/assets?session={}", montage_protocol::path_segment(s)),
            None => "/v1/assets".to_owned(),
        };
        let (_, bytes) = self
            .call_raw(
                reqwest::Method::POST,
                &path,
                Some((file, "application/octet-stream")),
            )
            .await?;
        parse(&String::from_utf8_lossy(&bytes))
    }

    /// `GET /v1/assets/{id}`: an asset's bytes as stored (an encrypted session's: sealed; open
    /// them with [`SessionHandle::open_asset`](crate::SessionHandle::open_asset)).
    pub async fn asset(&self, id: &str) -> Result<Vec<u8>> {
        let path = format!("/v1/assets/{}", montage_protocol::path_segment(id));
        Ok(self.call_raw(reqwest::Method::GET, &path, None).await?.1)
    }

    /// `POST /v1/sessions/{id}/versions`: names `version` (editor or above; renames a named
    /// one); `not_found` if the session has no such version.
    pub async fn name_version(&self, id: &str, version: u64, name: &str) -> Result<()> {
        let body = serde_json::json!({"version": version, "name": name}).to_string();
        let path = format!("{}/versions", session_path(id));
        self.call(reqwest::Method::POST, &path, Some(body))
            .await
            .map(drop)
    }

    /// `POST /v1/sessions/{id}/restore` (editor or above): one edit of mine that turns the head
    /// into `version`'s state — or, with `element`, brings back only that layer, track or clip.
    /// Returns the new version (the head's if nothing differed), durable when this returns.
    pub async fn restore(&self, id: &str, version: u64, element: Option<&str>) -> Result<u64> {
        #[derive(Deserialize)]
        struct Restored {
            version: u64,
        }
        let mut body = serde_json::json!({ "version": version });
        if let Some(e) = element {
            body["id"] = e.into();
        }
        let path = format!("{}/restore", session_path(id));
        let text = self
            .call(reqwest::Method::POST, &path, Some(body.to_string()))
            .await?;
        Ok(parse::<Restored>(&text)?.version)
    }

    /// `POST /v1/sessions/{id}/invites` (editor or above).
    pub async fn create_invite(&self, session: &str, invite: &NewInvite) -> Result<Invite> {
        let body = serde_json::to_string(invite).map_err(|e| Error::Connection(e.to_string()))?;
        let path = format!("{}/invites", session_path(session));
        let text = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        parse(&text)
    }

    /// `GET /v1/sessions/{id}/invites` (editor or above).
    pub async fn invites(&self, session: &str) -> Result<Vec<Invite>> {
        #[derive(Deserialize)]
        struct List {
            invites: Vec<Invite>,
        }
        let path = format!("{}/invites", session_path(session));
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(parse::<List>(&text)?.invites)
    }

    /// `GET /v1/invites/{id}`: what an invite gives, before accepting it.
    pub async fn invite(&self, id: &str) -> Result<Invite> {
        let text = self
            .call(reqwest::Method::GET, &invite_path(id), None)
            .await?;
        parse(&text)
    }

    /// `POST /v1/invites/{id}/accept`: the session and the role I hold there now (accepting
    /// never lowers a role). Refusals: `not_found`, or `forbidden` with `invite revoked`,
    /// `invite expired`, `invite used up`, `invite is for someone else`.
    pub async fn accept_invite(&self, id: &str) -> Result<(String, Role)> {
        #[derive(Deserialize)]
        struct Accepted {
            session: String,
            role: Role,
        }
        let path = format!("{}/accept", invite_path(id));
        let text = self.call(reqwest::Method::POST, &path, None).await?;
        let a: Accepted = parse(&text)?;
        Ok((a.session, a.role))
    }

    /// `DELETE /v1/invites/{id}` (its creator or an owner).
    pub async fn revoke_invite(&self, id: &str) -> Result<()> {
        self.call(reqwest::Method::DELETE, &invite_path(id), None)
            .await
            .map(drop)
    }

    /// One request with the token in hand; on 401 once more with a new token from the source.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String> {
        let body = body.map(|b| (b.into_bytes(), "application/json"));
        let (_, bytes) = self.call_raw(method.clone(), path, body).await?;
        String::from_utf8(bytes).map_err(|_| {
            Error::Connection(format!("{method} {path}: the answer is not UTF-8 text"))
        })
    }

    /// [`Api::call`] answering the headers and bytes as they came.
    async fn call_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>)> {
        let mut retried = false;
        loop {
            let token = self.tokens.usable(now_secs(), self.timeout).await?;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&token);
            if let Some((b, mime)) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, *mime)
                    .body(b.clone());
            }
            let err = |e: &dyn Display| Error::Connection(format!("{method} {path}: {e}"));
            let fetch = async {
                let resp = req.send().await.map_err(|e| err(&chain(&e)))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.map_err(|e| err(&chain(&e)))?;
                Ok::<_, Error>((status, headers, bytes))
            };
            let (status, headers, bytes) = tokio::time::timeout(self.timeout, fetch)
                .await
                .map_err(|_| Error::Timeout("an HTTP request"))??;
            if status == reqwest::StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                self.tokens.forget();
                continue;
            }
            if status.is_success() {
                return Ok((headers, bytes.to_vec()));
            }
            return Err(refusal(status, &String::from_utf8_lossy(&bytes), &err));
        }
    }
}

/// `/v1/sessions/{id}`, the id one escaped path segment.
fn session_path(id: &str) -> String {
    format!("/v1/sessions/{}", montage_protocol::path_segment(id))
}

/// `/v1/invites/{id}`, the id one escaped path segment.
fn invite_path(id: &str) -> String {
    format!("/v1/invites/{}", montage_protocol::path_segment(id))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Connection(format!("unexpected answer {text:?}: {e}")))
}

/// The server's `{"type":"error","code","message"}` answer as [`Error::Server`]; anything
/// else (a proxy's page) as a connection error naming the status.
fn refusal(status: reqwest::StatusCode, text: &str, err: &dyn Fn(&dyn Display) -> Error) -> Error {
    #[derive(Deserialize)]
    struct Refused {
        code: ErrorCode,
        message: String,
    }
    match serde_json::from_str::<Refused>(text) {
        Ok(r) => Error::Server {
            code: r.code,
            message: r.message,
        },
        Err(_) => err(&format!(
            "status {status}: {}",
            text.chars().take(200).collect::<String>()
        )),
    }
}

/// An error with its causes ("error sending request" alone does not say "connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_one_escaped_path_segment() {
        let path = ops_path("a/b?c", 5, 1000);
        assert_eq!(path, "/v1/sessions/a%2Fb%3Fc/ops?from=5&limit=1000");
        // As the URL parser (and so the server) sees it: one segment, the query untouched.
        let url = reqwest::Url::parse(&format!("http://h:1{path}")).unwrap();
        assert_eq!(url.path(), "/v1/sessions/a%2Fb%3Fc/ops");
        assert_eq!(url.query(), Some("from=5&limit=1000"));
        let seg = url.path_segments().unwrap().nth(2).unwrap();
        let decoded = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, "a/b?c");

        assert_eq!(
            ops_path("x#y%z w\\é", 0, 1),
            "/v1/sessions/x%23y%25z%20w%5C%C3%A9/ops?from=0&limit=1"
        );
        assert_eq!(
            ops_path("plain-id_1.2~", 0, 1),
            "/v1/sessions/plain-id_1.2~/ops?from=0&limit=1"
        );
    }

    #[test]
    fn api_base_from_http_or_websocket_urls() {
        let api = |u: &str| Api::new(u, "t").map(|a| a.base);
        assert_eq!(api("http://h:1").unwrap(), "http://h:1");
        assert_eq!(api("https://h/x?y").unwrap(), "https://h");
        assert_eq!(api("ws://h:1/v1/ws").unwrap(), "http://h:1");
        assert!(api("h:1").is_err());
        assert_eq!(session_path("a/b"), "/v1/sessions/a%2Fb");
    }

    #[test]
    fn refusals_carry_the_servers_code() {
        let err = |e: &dyn Display| Error::Connection(e.to_string());
        let r = refusal(
            reqwest::StatusCode::FORBIDDEN,
            r#"{"type":"error","code":"forbidden","message":"only an owner may delete the session"}"#,
            &err,
        );
        assert_eq!(r.code(), Some(ErrorCode::Forbidden), "{r}");
        let r = refusal(reqwest::StatusCode::BAD_GATEWAY, "<html>", &err);
        assert!(
            matches!(&r, Error::Connection(m) if m.contains("502")),
            "{r}"
        );
    }

    #[test]
    fn http_base_of_websocket_urls() {
        assert_eq!(http_base("ws://h:1/v1/ws").as_deref(), Some("http://h:1"));
        assert_eq!(http_base("wss://h/v1/ws?x").as_deref(), Some("https://h"));
        assert_eq!(http_base("ws://h:1").as_deref(), Some("http://h:1"));
        assert_eq!(http_base("http://h:1/v1/ws"), None);
        assert_eq!(http_base("ws:///v1/ws"), None);
    }
}
