//! The binary form of wire protocol v1, subprotocol `montage.v1.proto` (DESIGN §9.5): each frame
//! is one protobuf message of `proto/montage.proto`, a `ClientFrame` or a `ServerFrame`. Frames
//! convert to and from the same typed messages as the JSON form, and a client frame passes the
//! same checks (ids, limits, the engine's own checks of every component), so the two forms share
//! sessions and a server handles both with one code path.

use std::collections::BTreeMap;

use montage_ot::{Op, Path, Rect, Seg, Value, Wire};
use prost::Message;
use serde_json::Value as Json;

use crate::codec::{ClientFrame, Rejected, validate};
use crate::message::{CreateOptions, OpEntry, Participant, StateRef, TaskInfo};
use crate::sealed::SealedSnapshot;
use crate::social::pb;
use crate::social::{Annotation, Comment, NewComment, Notification, NotificationKind, Suggestion};
use crate::{ClientMessage, ErrorCode, ProtocolError, Role, ServerMessage, Tier};

use pb::client_frame as cf;
use pb::server_frame as sf;

/// Decodes one binary frame from a client (a `ClientFrame`).
pub fn decode_client_binary(bytes: &[u8]) -> Result<ClientFrame, Rejected> {
    let frame = pb::ClientFrame::decode(bytes).map_err(|e| Rejected {
        rid: None,
        error: ProtocolError::Protobuf(e.to_string()),
    })?;
    let rid = frame.rid.map(|r| match r {
        cf::Rid::RidNumber(n) => Json::from(n),
        cf::Rid::RidString(s) => Json::String(s),
    });
    let Some(msg) = frame.msg else {
        return Err(Rejected {
            rid,
            error: ProtocolError::MissingType,
        });
    };
    let kind = client_type(&msg);
    let msg = match client_from_pb(msg) {
        Ok(m) => m,
        Err(reason) => {
            return Err(Rejected {
                rid,
                error: ProtocolError::Invalid {
                    kind: kind.into(),
                    reason,
                },
            });
        }
    };
    if let Err(error) = validate(&msg) {
        return Err(Rejected { rid, error });
    }
    Ok(ClientFrame { rid, msg })
}

/// Encodes a client frame in the binary form (for SDKs and tests).
pub fn encode_client_binary(msg: &ClientMessage, rid: Option<&Json>) -> Vec<u8> {
    pb::ClientFrame {
        rid: rid.map(|r| rid_to_pb(r).map_or_else(cf::Rid::RidString, cf::Rid::RidNumber)),
        msg: Some(client_to_pb(msg)),
    }
    .encode_to_vec()
}

/// Encodes a server message in the binary form, with the client's `rid` echoed.
pub fn encode_server_binary(msg: &ServerMessage, rid: Option<&Json>) -> Vec<u8> {
    let frame = pb::ServerFrame {
        rid: rid.map(|r| rid_to_pb(r).map_or_else(sf::Rid::RidString, sf::Rid::RidNumber)),
        msg: Some(server_to_pb(msg)),
    };
    frame.encode_to_vec()
}

/// A `rid` as a number (`Ok`) or a string (`Err`). Only a JSON client can send another kind of
/// number (negative, fractional), and it never gets binary frames: those go as their text.
fn rid_to_pb(rid: &Json) -> Result<u64, String> {
    match rid {
        Json::Number(n) => n.as_u64().ok_or_else(|| n.to_string()),
        Json::String(s) => Err(s.clone()),
        other => Err(other.to_string()),
    }
}

/// The binary form of a server frame the server holds as JSON text (it encodes a frame once, for
/// every connection of a session, as JSON).
pub fn server_json_to_binary(text: &str) -> Result<Vec<u8>, ProtocolError> {
    let (msg, rid) = crate::decode_server(text)?;
    Ok(encode_server_binary(&msg, rid.as_ref()))
}

/// Decodes one binary frame from the server (for clients, tests and the load generator).
pub fn decode_server_binary(bytes: &[u8]) -> Result<(ServerMessage, Option<Json>), ProtocolError> {
    let frame =
        pb::ServerFrame::decode(bytes).map_err(|e| ProtocolError::Protobuf(e.to_string()))?;
    let rid = frame.rid.map(|r| match r {
        sf::Rid::RidNumber(n) => Json::from(n),
        sf::Rid::RidString(s) => Json::String(s),
    });
    let msg = frame.msg.ok_or(ProtocolError::MissingType)?;
    let kind = server_type(&msg);
    let msg = server_from_pb(msg).map_err(|reason| ProtocolError::Invalid {
        kind: kind.into(),
        reason,
    })?;
    Ok((msg, rid))
}

type Res<T> = Result<T, String>;

// ---- values ------------------------------------------------------------------------------

/// What the flat `Value` encoding needs of a JSON-like tree: the document's [`Value`] and
/// serde_json's (presence, drawings).
trait Tree: Sized {
    fn node(&self, key: String, out: &mut Vec<pb::Node>);
    fn leaf(kind: pb::node::Kind) -> Res<Self>;
    fn list(items: Vec<Self>) -> Self;
    fn object(entries: BTreeMap<String, Self>) -> Self;
}

fn push(out: &mut Vec<pb::Node>, key: String, kind: pb::node::Kind) {
    out.push(pb::Node {
        key,
        kind: Some(kind),
    });
}

/// A list node, then its items.
fn push_list<'a, T: Tree + 'a>(
    out: &mut Vec<pb::Node>,
    key: String,
    items: impl IntoIterator<Item = &'a T, IntoIter: ExactSizeIterator>,
) {
    let items = items.into_iter();
    push(out, key, pb::node::Kind::List(len32(items.len())));
    for v in items {
        v.node(String::new(), out);
    }
}

/// An object node, then its entries (keyed).
fn push_object<'a, T: Tree + 'a>(
    out: &mut Vec<pb::Node>,
    key: String,
    entries: impl IntoIterator<Item = (&'a String, &'a T), IntoIter: ExactSizeIterator>,
) {
    let entries = entries.into_iter();
    push(out, key, pb::node::Kind::Object(len32(entries.len())));
    for (k, v) in entries {
        v.node(k.clone(), out);
    }
}

/// Whole numbers below 2^53 travel as varints: what JSON writes without a fraction.
fn number(n: f64) -> pb::node::Kind {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        pb::node::Kind::Int(n as i64)
    } else {
        pb::node::Kind::Number(n)
    }
}

impl Tree for Value {
    fn node(&self, key: String, out: &mut Vec<pb::Node>) {
        use pb::node::Kind;
        match self {
            Value::Null => push(out, key, Kind::Null(true)),
            Value::Bool(b) => push(out, key, Kind::Bool(*b)),
            Value::Num(n) => push(out, key, number(*n)),
            Value::Str(t) => push(out, key, Kind::String(t.to_string())),
            Value::Arr(a) => push_list(out, key, a),
            Value::Obj(m) => push_object(out, key, m),
        }
    }
    fn leaf(kind: pb::node::Kind) -> Res<Value> {
        use pb::node::Kind;
        Ok(match kind {
            Kind::Null(_) => Value::Null,
            Kind::Bool(b) => Value::Bool(b),
            Kind::Number(n) => Value::Num(finite("a number", n)?),
            Kind::Int(n) => Value::Num(n as f64),
            Kind::Uint(n) => Value::Num(n as f64),
            Kind::String(s) => Value::str(s),
            Kind::List(_) | Kind::Object(_) => return Err("not a leaf".into()),
        })
    }
    fn list(items: Vec<Value>) -> Value {
        Value::Arr(items)
    }
    fn object(entries: BTreeMap<String, Value>) -> Value {
        Value::Obj(entries)
    }
}

impl Tree for Json {
    fn node(&self, key: String, out: &mut Vec<pb::Node>) {
        use pb::node::Kind;
        match self {
            Json::Null => push(out, key, Kind::Null(true)),
            Json::Bool(b) => push(out, key, Kind::Bool(*b)),
            Json::Number(n) => {
                let kind = if let Some(i) = n.as_i64() {
                    Kind::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Kind::Uint(u)
                } else {
                    Kind::Number(n.as_f64().unwrap_or(0.0))
                };
                push(out, key, kind);
            }
            Json::String(s) => push(out, key, Kind::String(s.clone())),
            Json::Array(a) => push_list(out, key, a),
            Json::Object(m) => push_object(out, key, m),
        }
    }
    fn leaf(kind: pb::node::Kind) -> Res<Json> {
        use pb::node::Kind;
        Ok(match kind {
            Kind::Null(_) => Json::Null,
            Kind::Bool(b) => Json::Bool(b),
            Kind::Number(n) => serde_json::Number::from_f64(n)
                .map(Json::Number)
                .ok_or("numbers must be finite")?,
            Kind::Int(n) => Json::from(n),
            Kind::Uint(n) => Json::from(n),
            Kind::String(s) => Json::String(s),
            Kind::List(_) | Kind::Object(_) => return Err("not a leaf".into()),
        })
    }
    fn list(items: Vec<Json>) -> Json {
        Json::Array(items)
    }
    fn object(entries: BTreeMap<String, Json>) -> Json {
        Json::Object(entries.into_iter().collect())
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn value_to_pb<T: Tree>(v: &T) -> pb::Value {
    let mut nodes = Vec::new();
    v.node(String::new(), &mut nodes);
    pb::Value { nodes }
}

/// A container being filled while reading the flat form.
enum Open<T> {
    List(Vec<T>, u32),
    Object(BTreeMap<String, T>, u32),
}

/// Reads the flat form back without recursion: a deep document can't exhaust the stack, and no
/// container is allocated larger than the nodes that are really there.
fn value_from_pb<T: Tree>(v: pb::Value) -> Res<T> {
    let total = v.nodes.len();
    // (Open container, the key it goes under in its parent.)
    let mut stack: Vec<(Open<T>, String)> = Vec::new();
    let mut root = None;
    for (i, node) in v.nodes.into_iter().enumerate() {
        if root.is_some() {
            return Err("a value has nodes after its end".into());
        }
        let left = u32::try_from(total - i - 1).unwrap_or(u32::MAX);
        let key = node.key;
        let mut done = match node.kind.ok_or("a value node has no kind")? {
            pb::node::Kind::List(n) | pb::node::Kind::Object(n) if n > left => {
                return Err("a list or object claims more items than follow it".into());
            }
            pb::node::Kind::List(n) if n > 0 => {
                stack.push((Open::List(Vec::with_capacity(n.min(1024) as usize), n), key));
                continue;
            }
            pb::node::Kind::Object(n) if n > 0 => {
                stack.push((Open::Object(BTreeMap::new(), n), key));
                continue;
            }
            pb::node::Kind::List(_) => (T::list(Vec::new()), key),
            pb::node::Kind::Object(_) => (T::object(BTreeMap::new()), key),
            leaf => (T::leaf(leaf)?, key),
        };
        // Put the finished value in its parent; a parent that is then full is finished too.
        loop {
            let Some((open, _)) = stack.last_mut() else {
                root = Some(done.0);
                break;
            };
            let full = match open {
                Open::List(items, n) => {
                    items.push(done.0);
                    items.len() == *n as usize
                }
                Open::Object(entries, n) => {
                    entries.insert(done.1, done.0);
                    *n -= 1;
                    *n == 0
                }
            };
            if !full {
                break;
            }
            let Some((open, key)) = stack.pop() else {
                break;
            };
            done = match open {
                Open::List(items, _) => (T::list(items), key),
                Open::Object(entries, _) => (T::object(entries), key),
            };
        }
    }
    root.ok_or_else(|| "a value is missing nodes".into())
}

fn finite(what: &str, n: f64) -> Res<f64> {
    if n.is_finite() {
        Ok(n)
    } else {
        Err(format!("{what} must be a finite number"))
    }
}

// ---- edits -------------------------------------------------------------------------------

fn path_to_pb(p: &Path) -> Vec<pb::Seg> {
    p.segs()
        .iter()
        .map(|s| pb::Seg {
            seg: Some(match s {
                Seg::Key(k) => pb::seg::Seg::Key(k.clone()),
                Seg::Index(i) => pb::seg::Seg::Index(len32(*i)),
            }),
        })
        .collect()
}

fn path_from_pb(segs: Vec<pb::Seg>) -> Res<Path> {
    if segs.len() > montage_ot::MAX_PATH_DEPTH {
        return Err(format!(
            "paths are at most {} deep",
            montage_ot::MAX_PATH_DEPTH
        ));
    }
    segs.into_iter()
        .map(|s| match s.seg {
            Some(pb::seg::Seg::Key(k)) => Ok(Seg::Key(k)),
            Some(pb::seg::Seg::Index(i)) => Ok(Seg::Index(i as usize)),
            None => Err("a path segment is neither a key nor an index".to_owned()),
        })
        .collect::<Res<Vec<_>>>()
        .map(Path::from)
}

fn wire_to_pb(w: Wire) -> pb::Component {
    use pb::component::{self as c, Op as K};
    let (path, op) = match w {
        Wire::Set { path, value } => (
            path,
            K::Set(c::Set {
                value: Some(value_to_pb(&value)),
            }),
        ),
        Wire::Del { path } => (path, K::Del(c::Del {})),
        Wire::Ins { path, value } => (
            path,
            K::Ins(c::Ins {
                value: Some(value_to_pb(&value)),
            }),
        ),
        Wire::Mov { path, to } => (path, K::Mov(c::Mov { to: to as u64 })),
        Wire::Add { path, value } => (path, K::Add(c::Add { value })),
        Wire::Text {
            path,
            pos,
            ins,
            del,
        } => (
            path,
            K::Text(c::Text {
                pos: pos as u64,
                ins,
                del: del.map(|d| d as u64),
            }),
        ),
        Wire::Split {
            path,
            at,
            media,
            id,
        } => (path, K::Split(c::Split { at, media, id })),
        Wire::Trim {
            path,
            start,
            r#in,
            out,
        } => (path, K::Trim(c::Trim { start, r#in, out })),
        Wire::Crop { path, rect } => (
            path,
            K::Crop(c::Crop {
                rect: Some(pb::Rect {
                    x: rect.x,
                    y: rect.y,
                    w: rect.w,
                    h: rect.h,
                }),
            }),
        ),
        Wire::Rotate { path, by } => (path, K::Rotate(c::Rotate { by })),
        Wire::Adjust { path, param, value } => (path, K::Adjust(c::Adjust { param, value })),
    };
    pb::Component {
        path: path_to_pb(&path),
        op: Some(op),
    }
}

/// Counts and positions beyond the engine's limit are refused by [`Wire::into_component`];
/// this only keeps them from wrapping on a 32-bit target first.
fn index(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn wire_from_pb(c: pb::Component) -> Res<Wire> {
    use pb::component::Op as K;
    let path = path_from_pb(c.path)?;
    let value = |v: Option<pb::Value>| value_from_pb::<Value>(v.ok_or("value is missing")?);
    Ok(match c.op.ok_or("a component has no op")? {
        K::Set(s) => Wire::Set {
            path,
            value: value(s.value)?,
        },
        K::Del(_) => Wire::Del { path },
        K::Ins(s) => Wire::Ins {
            path,
            value: value(s.value)?,
        },
        K::Mov(m) => Wire::Mov {
            path,
            to: index(m.to),
        },
        K::Add(a) => Wire::Add {
            path,
            value: finite("add: value", a.value)?,
        },
        K::Text(t) => Wire::Text {
            path,
            pos: index(t.pos),
            ins: t.ins,
            del: t.del.map(index),
        },
        K::Split(s) => Wire::Split {
            path,
            at: finite("split: at", s.at)?,
            media: finite("split: media", s.media)?,
            id: s.id,
        },
        K::Trim(t) => {
            let opt = |what, n: Option<f64>| n.map(|n| finite(what, n)).transpose();
            Wire::Trim {
                path,
                start: opt("trim: start", t.start)?,
                r#in: opt("trim: in", t.r#in)?,
                out: opt("trim: out", t.out)?,
            }
        }
        K::Crop(c) => {
            let r = c.rect.ok_or("crop: rect is missing")?;
            Wire::Crop {
                path,
                rect: Rect {
                    x: finite("crop: rect.x", r.x)?,
                    y: finite("crop: rect.y", r.y)?,
                    w: finite("crop: rect.w", r.w)?,
                    h: finite("crop: rect.h", r.h)?,
                },
            }
        }
        K::Rotate(r) => Wire::Rotate {
            path,
            by: finite("rotate: by", r.by)?,
        },
        K::Adjust(a) => Wire::Adjust {
            path,
            param: a.param,
            value: finite("adjust: value", a.value)?,
        },
    })
}

fn ops_to_pb(op: &Op) -> Vec<pb::Component> {
    op.to_wire().into_iter().map(wire_to_pb).collect()
}

fn ops_from_pb(components: Vec<pb::Component>) -> Res<Op> {
    // Counted before any is converted: a long list is refused without the work.
    if components.len() > montage_ot::MAX_COMPONENTS {
        return Err(format!(
            "an edit has at most {} components",
            montage_ot::MAX_COMPONENTS
        ));
    }
    let wire = components
        .into_iter()
        .map(wire_from_pb)
        .collect::<Res<Vec<_>>>()?;
    Op::from_wire(wire).map_err(|e| format!("ops: {e}"))
}

fn delta_to_pb(d: &montage_ot::CompressedDelta) -> pb::Delta {
    pb::Delta {
        base_version: d.base_version,
        runs: d
            .runs
            .iter()
            .map(|r| pb::delta::Run {
                n: if r.count == 1 { 0 } else { r.count },
                c: ops_to_pb(&Op::new(vec![r.component.clone()])),
            })
            .collect(),
    }
}

fn delta_from_pb(d: pb::Delta) -> Res<montage_ot::CompressedDelta> {
    let mut runs = Vec::with_capacity(d.runs.len().min(1024));
    for r in d.runs {
        // Text steps re-merge into one component, as in the JSON form.
        let mut op = Op::default();
        for c in ops_from_pb(r.c)?.0 {
            op.push_merged(c);
        }
        let [component] = <[_; 1]>::try_from(op.0)
            .map_err(|_| "each run holds exactly one component".to_owned())?;
        runs.push(montage_ot::Run {
            count: r.n.max(1),
            component,
        });
    }
    Ok(montage_ot::CompressedDelta {
        base_version: d.base_version,
        runs,
    })
}

// ---- small types ---------------------------------------------------------------------------

fn role_to_pb(r: Role) -> i32 {
    (match r {
        Role::Removed => pb::Role::None,
        Role::Viewer => pb::Role::Viewer,
        Role::Commenter => pb::Role::Commenter,
        Role::Editor => pb::Role::Editor,
        Role::Owner => pb::Role::Owner,
    }) as i32
}

fn role_from_pb(r: i32) -> Res<Role> {
    Ok(
        match pb::Role::try_from(r).map_err(|_| format!("unknown role {r}"))? {
            pb::Role::None => Role::Removed,
            pb::Role::Viewer => Role::Viewer,
            pb::Role::Commenter => Role::Commenter,
            pb::Role::Editor => Role::Editor,
            pb::Role::Owner => Role::Owner,
        },
    )
}

fn tier_to_pb(t: Tier) -> i32 {
    i32::from(t.index())
}

fn tier_from_pb(t: i32) -> Res<Tier> {
    u8::try_from(t)
        .ok()
        .filter(|i| usize::from(*i) < Tier::ALL.len())
        .map(Tier::from_index)
        .ok_or_else(|| format!("unknown tier {t}"))
}

fn json_from_pb(v: Option<pb::Value>, what: &str) -> Res<Json> {
    value_from_pb(v.ok_or_else(|| format!("{what} is missing"))?)
}

fn new_comment_to_pb(c: &NewComment) -> pb::NewComment {
    pb::NewComment {
        content: c.content.clone(),
        parent_id: c.parent_id.clone(),
        asset_id: c.asset_id.clone(),
        annotations: c.annotations.iter().map(pb::Annotation::from).collect(),
    }
}

fn new_comment_from_pb(c: pb::NewComment) -> Res<NewComment> {
    let annotations = c
        .annotations
        .into_iter()
        .map(|a| {
            let a = Annotation::try_from(a).map_err(|e| e.to_string())?;
            // JSON can't carry a non-finite number; the binary form must not either.
            let r = a.region.map_or([0.0; 4], |r| [r.x, r.y, r.w, r.h]);
            let t = a.time.map_or([0.0; 2], |t| [t.start, t.end]);
            if r.iter().chain(&t).any(|n| !n.is_finite()) {
                return Err("annotation coordinates must be finite numbers".to_owned());
            }
            Ok(a)
        })
        .collect::<Res<_>>()?;
    Ok(NewComment {
        content: c.content,
        parent_id: c.parent_id,
        asset_id: c.asset_id,
        annotations,
    })
}

fn participant_to_pb(p: &Participant) -> pb::Participant {
    pb::Participant {
        user: p.user.clone(),
        role: role_to_pb(p.role),
        online: p.online,
        name: p.name.clone(),
        color: p.color.clone(),
        presence: p.presence.as_ref().map(value_to_pb),
    }
}

fn participant_from_pb(p: pb::Participant) -> Res<Participant> {
    Ok(Participant {
        user: p.user,
        role: role_from_pb(p.role)?,
        online: p.online,
        name: p.name,
        color: p.color,
        presence: p.presence.map(value_from_pb).transpose()?,
    })
}

fn entry_to_pb(e: &OpEntry) -> pb::OpEntry {
    pb::OpEntry {
        version: e.version,
        user: e.user.clone(),
        ops: ops_to_pb(&e.ops),
        time: e.time,
        data: e.data.clone(),
        key_epoch: e.key_epoch,
        chain: e.chain.clone(),
    }
}

fn entry_from_pb(e: pb::OpEntry) -> Res<OpEntry> {
    Ok(OpEntry {
        version: e.version,
        user: e.user,
        ops: ops_from_pb(e.ops)?,
        time: e.time,
        data: e.data,
        key_epoch: e.key_epoch,
        chain: e.chain,
    })
}

fn task_to_pb(t: &TaskInfo) -> pb::TaskInfo {
    pb::TaskInfo {
        id: t.id.clone(),
        kind: t.kind.clone(),
        state: t.state.clone(),
        attempts: t.attempts,
        max_attempts: t.max_attempts,
        session: t.session.clone(),
        created_by: t.created_by.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        next_run_at: t.next_run_at,
        last_error: t.last_error.clone(),
        connector: t.connector.as_ref().map(value_to_pb),
    }
}

fn task_from_pb(t: pb::TaskInfo) -> Res<TaskInfo> {
    Ok(TaskInfo {
        id: t.id,
        kind: t.kind,
        state: t.state,
        attempts: t.attempts,
        max_attempts: t.max_attempts,
        session: t.session,
        created_by: t.created_by,
        created_at: t.created_at,
        updated_at: t.updated_at,
        next_run_at: t.next_run_at,
        last_error: t.last_error,
        connector: t.connector.map(value_from_pb).transpose()?,
    })
}

fn notification_to_pb(n: &Notification) -> pb::Notification {
    pb::Notification {
        id: n.id.clone(),
        kind: n.kind.as_str().to_owned(),
        session: n.session.clone(),
        actor: n.actor.clone(),
        time: n.time,
        read: n.read,
        comment_id: n.comment_id.clone(),
        role: n.role.map(role_to_pb),
        count: n.count,
    }
}

fn notification_from_pb(n: pb::Notification) -> Res<Notification> {
    Ok(Notification {
        kind: NotificationKind::parse(&n.kind)
            .ok_or_else(|| format!("unknown notification kind {:?}", n.kind))?,
        id: n.id,
        session: n.session,
        actor: n.actor,
        time: n.time,
        read: n.read,
        comment_id: n.comment_id,
        role: n.role.map(role_from_pb).transpose()?,
        count: n.count,
    })
}

fn comment_to_pb(c: &Comment) -> Option<pb::MediaComment> {
    pb::MediaComment::try_from(c).ok()
}

fn comment_from_pb(c: Option<pb::MediaComment>) -> Res<Comment> {
    Comment::try_from(c.ok_or("comment is missing")?).map_err(|e| e.to_string())
}

fn suggestion_from_pb(s: Option<pb::Suggestion>) -> Res<Suggestion> {
    Suggestion::try_from(s.ok_or("suggestion is missing")?).map_err(|e| e.to_string())
}

// ---- client messages -----------------------------------------------------------------------

fn client_type(m: &cf::Msg) -> &'static str {
    match m {
        cf::Msg::Join(_) => "join",
        cf::Msg::Op(_) => "op",
        cf::Msg::Snapshot(_) => "snapshot",
        cf::Msg::Presence(_) => "presence",
        cf::Msg::SetRole(_) => "set_role",
        cf::Msg::Leave(_) => "leave",
        cf::Msg::Quality(_) => "quality",
        cf::Msg::Comment(_) => "comment",
        cf::Msg::CommentEdit(_) => "comment_edit",
        cf::Msg::CommentDelete(_) => "comment_delete",
        cf::Msg::CommentResolve(_) => "comment_resolve",
        cf::Msg::CommentReact(_) => "comment_react",
        cf::Msg::Suggest(_) => "suggest",
        cf::Msg::SuggestionAccept(_) => "suggestion_accept",
        cf::Msg::SuggestionReject(_) => "suggestion_reject",
        cf::Msg::PreviewSubscribe(_) => "preview_subscribe",
        cf::Msg::PreviewUnsubscribe(_) => "preview_unsubscribe",
        cf::Msg::SetLinkRole(_) => "set_link_role",
        cf::Msg::Auth(_) => "auth",
    }
}

fn client_to_pb(m: &ClientMessage) -> cf::Msg {
    match m.clone() {
        ClientMessage::Join {
            session,
            client,
            since,
            compact,
            ranges,
            state_ref,
            create,
        } => cf::Msg::Join(cf::Join {
            session,
            client,
            since,
            compact,
            ranges,
            state_ref,
            create: create.map(|c| pb::CreateOptions {
                encrypted: c.encrypted,
            }),
        }),
        ClientMessage::Op {
            session,
            base,
            seq,
            ops,
            data,
            key_epoch,
        } => cf::Msg::Op(cf::Op {
            session,
            base,
            seq,
            ops: ops_to_pb(&ops),
            data,
            key_epoch,
        }),
        ClientMessage::Snapshot {
            session,
            version,
            data,
            key_epoch,
        } => cf::Msg::Snapshot(cf::Snapshot {
            session,
            version,
            data,
            key_epoch,
        }),
        ClientMessage::Presence { session, data } => cf::Msg::Presence(cf::Presence {
            session,
            data: Some(value_to_pb(&data)),
        }),
        ClientMessage::SetRole {
            session,
            user,
            role,
        } => cf::Msg::SetRole(cf::SetRole {
            session,
            user,
            role: role_to_pb(role),
        }),
        ClientMessage::Leave { session } => cf::Msg::Leave(cf::Leave { session }),
        ClientMessage::Quality { downlink_mbps } => cf::Msg::Quality(cf::Quality { downlink_mbps }),
        ClientMessage::Comment { session, comment } => cf::Msg::Comment(cf::Comment {
            session,
            comment: Some(new_comment_to_pb(&comment)),
        }),
        ClientMessage::CommentEdit {
            session,
            id,
            content,
        } => cf::Msg::CommentEdit(cf::CommentEdit {
            session,
            id,
            content,
        }),
        ClientMessage::CommentDelete { session, id } => {
            cf::Msg::CommentDelete(cf::CommentDelete { session, id })
        }
        ClientMessage::CommentResolve {
            session,
            id,
            resolved,
        } => cf::Msg::CommentResolve(cf::CommentResolve {
            session,
            id,
            resolved,
        }),
        ClientMessage::CommentReact {
            session,
            id,
            emoji,
            on,
        } => cf::Msg::CommentReact(cf::CommentReact {
            session,
            id,
            emoji,
            on,
        }),
        ClientMessage::Suggest {
            session,
            base,
            ops,
            note,
        } => cf::Msg::Suggest(cf::Suggest {
            session,
            base,
            ops: ops_to_pb(&ops),
            note,
        }),
        ClientMessage::SuggestionAccept { session, id } => {
            cf::Msg::SuggestionAccept(cf::SuggestionAccept { session, id })
        }
        ClientMessage::SuggestionReject { session, id } => {
            cf::Msg::SuggestionReject(cf::SuggestionReject { session, id })
        }
        ClientMessage::PreviewSubscribe {
            session,
            tier,
            follow,
        } => cf::Msg::PreviewSubscribe(cf::PreviewSubscribe {
            session,
            tier: tier.map(tier_to_pb),
            follow,
        }),
        ClientMessage::PreviewUnsubscribe { session } => {
            cf::Msg::PreviewUnsubscribe(cf::PreviewUnsubscribe { session })
        }
        ClientMessage::SetLinkRole { session, role } => cf::Msg::SetLinkRole(cf::SetLinkRole {
            session,
            role: role_to_pb(role),
        }),
        ClientMessage::Auth { token } => cf::Msg::Auth(cf::Auth { token }),
    }
}

fn client_from_pb(m: cf::Msg) -> Res<ClientMessage> {
    Ok(match m {
        cf::Msg::Join(j) => ClientMessage::Join {
            session: j.session,
            client: j.client,
            since: j.since,
            compact: j.compact,
            ranges: j.ranges,
            state_ref: j.state_ref,
            create: j.create.map(|c| CreateOptions {
                encrypted: c.encrypted,
            }),
        },
        cf::Msg::Op(o) => ClientMessage::Op {
            session: o.session,
            base: o.base,
            seq: o.seq,
            ops: ops_from_pb(o.ops)?,
            data: o.data,
            key_epoch: o.key_epoch,
        },
        cf::Msg::Snapshot(s) => ClientMessage::Snapshot {
            session: s.session,
            version: s.version,
            data: s.data,
            key_epoch: s.key_epoch,
        },
        cf::Msg::Presence(p) => ClientMessage::Presence {
            session: p.session,
            data: json_from_pb(p.data, "data")?,
        },
        cf::Msg::SetRole(s) => ClientMessage::SetRole {
            session: s.session,
            user: s.user,
            role: role_from_pb(s.role)?,
        },
        cf::Msg::Leave(l) => ClientMessage::Leave { session: l.session },
        cf::Msg::Quality(q) => ClientMessage::Quality {
            downlink_mbps: q.downlink_mbps,
        },
        cf::Msg::Comment(c) => ClientMessage::Comment {
            session: c.session,
            comment: new_comment_from_pb(c.comment.ok_or("comment is missing")?)?,
        },
        cf::Msg::CommentEdit(c) => ClientMessage::CommentEdit {
            session: c.session,
            id: c.id,
            content: c.content,
        },
        cf::Msg::CommentDelete(c) => ClientMessage::CommentDelete {
            session: c.session,
            id: c.id,
        },
        cf::Msg::CommentResolve(c) => ClientMessage::CommentResolve {
            session: c.session,
            id: c.id,
            resolved: c.resolved,
        },
        cf::Msg::CommentReact(c) => ClientMessage::CommentReact {
            session: c.session,
            id: c.id,
            emoji: c.emoji,
            on: c.on,
        },
        cf::Msg::Suggest(s) => ClientMessage::Suggest {
            session: s.session,
            base: s.base,
            ops: ops_from_pb(s.ops)?,
            note: s.note,
        },
        cf::Msg::SuggestionAccept(s) => ClientMessage::SuggestionAccept {
            session: s.session,
            id: s.id,
        },
        cf::Msg::SuggestionReject(s) => ClientMessage::SuggestionReject {
            session: s.session,
            id: s.id,
        },
        cf::Msg::PreviewSubscribe(p) => ClientMessage::PreviewSubscribe {
            session: p.session,
            tier: p.tier.map(tier_from_pb).transpose()?,
            follow: p.follow,
        },
        cf::Msg::PreviewUnsubscribe(p) => ClientMessage::PreviewUnsubscribe { session: p.session },
        cf::Msg::SetLinkRole(s) => ClientMessage::SetLinkRole {
            session: s.session,
            role: role_from_pb(s.role)?,
        },
        cf::Msg::Auth(a) => ClientMessage::Auth { token: a.token },
    })
}

// ---- server messages -----------------------------------------------------------------------

fn server_type(m: &sf::Msg) -> &'static str {
    match m {
        sf::Msg::Joined(_) => "joined",
        sf::Msg::ParticipantJoined(_) => "participant_joined",
        sf::Msg::ParticipantLeft(_) => "participant_left",
        sf::Msg::Ack(_) => "ack",
        sf::Msg::Op(_) => "op",
        sf::Msg::KeyRotated(_) => "key_rotated",
        sf::Msg::Presence(_) => "presence",
        sf::Msg::RoleChanged(_) => "role_changed",
        sf::Msg::Tier(_) => "tier",
        sf::Msg::Preview(_) => "preview",
        sf::Msg::CommentAdded(_) => "comment_added",
        sf::Msg::CommentUpdated(_) => "comment_updated",
        sf::Msg::SuggestionAdded(_) => "suggestion_added",
        sf::Msg::SuggestionUpdated(_) => "suggestion_updated",
        sf::Msg::Task(_) => "task",
        sf::Msg::LinkRoleChanged(_) => "link_role_changed",
        sf::Msg::SessionDeleted(_) => "session_deleted",
        sf::Msg::Notification(_) => "notification",
        sf::Msg::Authed(_) => "authed",
        sf::Msg::TokenExpiring(_) => "token_expiring",
        sf::Msg::Error(_) => "error",
    }
}

fn server_to_pb(m: &ServerMessage) -> sf::Msg {
    match m {
        ServerMessage::Joined {
            session,
            version,
            state,
            state_ref,
            role,
            participants,
            ops,
            delta,
            link_role,
            title,
            encrypted,
            snapshot,
            whole,
            key_epoch,
        } => sf::Msg::Joined(sf::Joined {
            session: session.clone(),
            version: *version,
            state: state.as_ref().map(value_to_pb),
            state_ref: state_ref.as_ref().map(|r| pb::StateRef {
                bytes: r.bytes,
                sha256: r.sha256.clone(),
            }),
            role: role_to_pb(*role),
            participants: participants.iter().map(participant_to_pb).collect(),
            ops: ops.as_ref().map(|ops| pb::OpEntries {
                entries: ops.iter().map(entry_to_pb).collect(),
            }),
            delta: delta.as_ref().map(delta_to_pb),
            link_role: role_to_pb(*link_role),
            title: title.clone(),
            encrypted: *encrypted,
            snapshot: snapshot.as_ref().map(|s| pb::SealedSnapshot {
                version: s.version,
                data: s.data.clone(),
                key_epoch: s.key_epoch,
                chain: s.chain.clone(),
            }),
            whole: *whole,
            key_epoch: *key_epoch,
        }),
        ServerMessage::ParticipantJoined {
            session,
            user,
            role,
            name,
            color,
        } => sf::Msg::ParticipantJoined(sf::ParticipantJoined {
            session: session.clone(),
            user: user.clone(),
            role: role_to_pb(*role),
            name: name.clone(),
            color: color.clone(),
        }),
        ServerMessage::ParticipantLeft { session, user } => {
            sf::Msg::ParticipantLeft(sf::ParticipantLeft {
                session: session.clone(),
                user: user.clone(),
            })
        }
        ServerMessage::Ack {
            session,
            seq,
            version,
            chain,
        } => sf::Msg::Ack(sf::Ack {
            session: session.clone(),
            seq: *seq,
            version: *version,
            chain: chain.clone(),
        }),
        ServerMessage::Op {
            session,
            from,
            version,
            user,
            ops,
            data,
            key_epoch,
            chain,
        } => sf::Msg::Op(sf::Op {
            session: session.clone(),
            from: *from,
            version: *version,
            user: user.clone(),
            ops: ops_to_pb(ops),
            data: data.clone(),
            key_epoch: *key_epoch,
            chain: chain.clone(),
        }),
        ServerMessage::KeyRotated { session, key_epoch } => sf::Msg::KeyRotated(sf::KeyRotated {
            session: session.clone(),
            key_epoch: *key_epoch,
        }),
        ServerMessage::Presence {
            session,
            user,
            data,
        } => sf::Msg::Presence(sf::Presence {
            session: session.clone(),
            user: user.clone(),
            data: Some(value_to_pb(data)),
        }),
        ServerMessage::RoleChanged {
            session,
            user,
            role,
        } => sf::Msg::RoleChanged(sf::RoleChanged {
            session: session.clone(),
            user: user.clone(),
            role: role_to_pb(*role),
        }),
        ServerMessage::Tier {
            tier,
            fps,
            resolution,
        } => sf::Msg::Tier(sf::TierChanged {
            tier: tier_to_pb(*tier),
            fps: *fps,
            resolution: resolution.to_vec(),
        }),
        ServerMessage::Preview {
            session,
            version,
            tier,
            url,
            t,
        } => sf::Msg::Preview(sf::Preview {
            session: session.clone(),
            version: *version,
            tier: tier_to_pb(*tier),
            url: url.clone(),
            t: *t,
        }),
        ServerMessage::CommentAdded { session, comment } => {
            sf::Msg::CommentAdded(sf::CommentChanged {
                session: session.clone(),
                comment: comment_to_pb(comment),
            })
        }
        ServerMessage::CommentUpdated { session, comment } => {
            sf::Msg::CommentUpdated(sf::CommentChanged {
                session: session.clone(),
                comment: comment_to_pb(comment),
            })
        }
        ServerMessage::SuggestionAdded {
            session,
            suggestion,
        } => sf::Msg::SuggestionAdded(sf::SuggestionChanged {
            session: session.clone(),
            suggestion: pb::Suggestion::try_from(suggestion).ok(),
        }),
        ServerMessage::SuggestionUpdated {
            session,
            suggestion,
        } => sf::Msg::SuggestionUpdated(sf::SuggestionChanged {
            session: session.clone(),
            suggestion: pb::Suggestion::try_from(suggestion).ok(),
        }),
        ServerMessage::Task { session, task } => sf::Msg::Task(sf::Task {
            session: session.clone(),
            task: Some(task_to_pb(task)),
        }),
        ServerMessage::LinkRoleChanged { session, role } => {
            sf::Msg::LinkRoleChanged(sf::LinkRoleChanged {
                session: session.clone(),
                role: role_to_pb(*role),
            })
        }
        ServerMessage::SessionDeleted { session } => sf::Msg::SessionDeleted(sf::SessionDeleted {
            session: session.clone(),
        }),
        ServerMessage::Notification { notification } => {
            sf::Msg::Notification(sf::NotificationSent {
                notification: Some(notification_to_pb(notification)),
            })
        }
        ServerMessage::Authed { exp } => sf::Msg::Authed(sf::Authed { exp: *exp }),
        ServerMessage::TokenExpiring { exp } => {
            sf::Msg::TokenExpiring(sf::TokenExpiring { exp: *exp })
        }
        ServerMessage::Error {
            code,
            message,
            retry_after_ms,
            session,
            version,
        } => sf::Msg::Error(sf::Error {
            code: code.as_str().to_owned(),
            message: message.clone(),
            retry_after_ms: *retry_after_ms,
            session: session.clone(),
            version: *version,
        }),
    }
}

fn server_from_pb(m: sf::Msg) -> Res<ServerMessage> {
    Ok(match m {
        sf::Msg::Joined(j) => ServerMessage::Joined {
            session: j.session,
            version: j.version,
            state: j.state.map(value_from_pb).transpose()?,
            state_ref: j.state_ref.map(|r| StateRef {
                bytes: r.bytes,
                sha256: r.sha256,
            }),
            role: role_from_pb(j.role)?,
            participants: j
                .participants
                .into_iter()
                .map(participant_from_pb)
                .collect::<Res<_>>()?,
            ops: j
                .ops
                .map(|o| o.entries.into_iter().map(entry_from_pb).collect())
                .transpose()?,
            delta: j.delta.map(delta_from_pb).transpose()?,
            link_role: role_from_pb(j.link_role)?,
            title: j.title,
            encrypted: j.encrypted,
            snapshot: j.snapshot.map(|s| SealedSnapshot {
                version: s.version,
                data: s.data,
                key_epoch: s.key_epoch,
                chain: s.chain,
            }),
            whole: j.whole,
            key_epoch: j.key_epoch,
        },
        sf::Msg::ParticipantJoined(p) => ServerMessage::ParticipantJoined {
            session: p.session,
            user: p.user,
            role: role_from_pb(p.role)?,
            name: p.name,
            color: p.color,
        },
        sf::Msg::ParticipantLeft(p) => ServerMessage::ParticipantLeft {
            session: p.session,
            user: p.user,
        },
        sf::Msg::Ack(a) => ServerMessage::Ack {
            session: a.session,
            seq: a.seq,
            version: a.version,
            chain: a.chain,
        },
        sf::Msg::Op(o) => ServerMessage::Op {
            session: o.session,
            from: o.from,
            version: o.version,
            user: o.user,
            ops: ops_from_pb(o.ops)?,
            data: o.data,
            key_epoch: o.key_epoch,
            chain: o.chain,
        },
        sf::Msg::KeyRotated(k) => ServerMessage::KeyRotated {
            session: k.session,
            key_epoch: k.key_epoch,
        },
        sf::Msg::Presence(p) => ServerMessage::Presence {
            session: p.session,
            user: p.user,
            data: json_from_pb(p.data, "data")?,
        },
        sf::Msg::RoleChanged(r) => ServerMessage::RoleChanged {
            session: r.session,
            user: r.user,
            role: role_from_pb(r.role)?,
        },
        sf::Msg::Tier(t) => ServerMessage::Tier {
            tier: tier_from_pb(t.tier)?,
            fps: t.fps,
            resolution: <[u32; 2]>::try_from(t.resolution)
                .map_err(|_| "resolution is a width and a height".to_owned())?,
        },
        sf::Msg::Preview(p) => ServerMessage::Preview {
            session: p.session,
            version: p.version,
            tier: tier_from_pb(p.tier)?,
            url: p.url,
            t: p.t,
        },
        sf::Msg::CommentAdded(c) => ServerMessage::CommentAdded {
            session: c.session,
            comment: comment_from_pb(c.comment)?,
        },
        sf::Msg::CommentUpdated(c) => ServerMessage::CommentUpdated {
            session: c.session,
            comment: comment_from_pb(c.comment)?,
        },
        sf::Msg::SuggestionAdded(s) => ServerMessage::SuggestionAdded {
            session: s.session,
            suggestion: suggestion_from_pb(s.suggestion)?,
        },
        sf::Msg::SuggestionUpdated(s) => ServerMessage::SuggestionUpdated {
            session: s.session,
            suggestion: suggestion_from_pb(s.suggestion)?,
        },
        sf::Msg::Task(t) => ServerMessage::Task {
            session: t.session,
            task: task_from_pb(t.task.ok_or("task is missing")?)?,
        },
        sf::Msg::LinkRoleChanged(l) => ServerMessage::LinkRoleChanged {
            session: l.session,
            role: role_from_pb(l.role)?,
        },
        sf::Msg::SessionDeleted(s) => ServerMessage::SessionDeleted { session: s.session },
        sf::Msg::Notification(n) => ServerMessage::Notification {
            notification: notification_from_pb(n.notification.ok_or("notification is missing")?)?,
        },
        sf::Msg::Authed(a) => ServerMessage::Authed { exp: a.exp },
        sf::Msg::TokenExpiring(t) => ServerMessage::TokenExpiring { exp: t.exp },
        sf::Msg::Error(e) => ServerMessage::Error {
            code: serde_json::from_value::<ErrorCode>(Json::String(e.code.clone()))
                .map_err(|_| format!("unknown error code {:?}", e.code))?,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
            session: e.session,
            version: e.version,
        },
    })
}
