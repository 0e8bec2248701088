//! The Presence Service: who is in a session and where they point.
//!
//! A session actor keeps one [`PresenceTable`]: per user (however many connections it has) the
//! display name, colour and latest presence `data`. Presence is ephemeral — never stored — but it
//! follows edits the way ShareDB transforms presence: when an edit commits, every record's
//! `selection` loses ids that no longer exist and its `caret` moves with the text typed or
//! deleted around it (and with list moves above its path). Changed records go out again so
//! everyone sees the adjusted position.
//!
//! Fan-out is paced per *receiving* connection ([`Outbox`]): a connection gets presence at most at
//! its tier's rate, and what waits is coalesced per (session, user) so the newest value always
//! arrives. Edits never pass through here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Frame;
use montage_ot::{Component, Op, Path, Seg, Side, TextOp, Value};
use montage_protocol::Tier;
use serde_json::Value as Json;

/// A user's stable colour, `#rrggbb`: a hue from a hash of the id, at a fixed saturation and
/// lightness that read well on light and dark canvases.
pub fn colour(user: &str) -> String {
    // FNV-1a: stable across runs and builds (std's hasher is randomly seeded).
    let mut h: u32 = 0x811c_9dc5;
    for b in user.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let hue = f64::from(h % 360);
    let (s, l) = (0.65, 0.5);
    let c = (1.0 - (2.0 * l - 1.0_f64).abs()) * s;
    let hp = hue / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

/// One user's presence in one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: Option<Arc<str>>,
    pub colour: String,
    /// The latest `data`, as adjusted by edits since it was sent.
    pub data: Option<Json>,
}

/// The presence of everyone in one session, keyed by user.
#[derive(Debug, Default)]
pub struct PresenceTable {
    users: HashMap<Arc<str>, Record>,
}

impl PresenceTable {
    /// Registers a user (first connection), keeping any presence it already has.
    pub fn enter(&mut self, user: &Arc<str>, name: Option<Arc<str>>) -> &Record {
        let r = self.users.entry(user.clone()).or_insert_with(|| Record {
            name: None,
            colour: colour(user),
            data: None,
        });
        if name.is_some() {
            r.name = name;
        }
        r
    }

    /// Forgets a user whose last connection left.
    pub fn remove(&mut self, user: &str) {
        self.users.remove(user);
    }

    pub fn get(&self, user: &str) -> Option<&Record> {
        self.users.get(user)
    }

    /// Stores a user's latest presence.
    pub fn set(&mut self, user: &Arc<str>, data: Json) {
        if let Some(r) = self.users.get_mut(user) {
            r.data = Some(data);
        }
    }

    /// Puts back a user's presence as it was before an edit that was rolled back (not for a user
    /// who left since: one who came back starts without presence).
    pub fn restore(&mut self, user: &str, before: &Before) {
        if let Some(r) = self.users.get_mut(user)
            && let Some(Json::Object(data)) = &mut r.data
        {
            for (key, value) in [("caret", &before.caret), ("selection", &before.selection)] {
                if let Some(v) = value {
                    data.insert(key.to_owned(), v.clone());
                }
            }
        }
    }

    /// Moves every stored caret and selection past an edit just applied (`inverse` undoes it,
    /// `doc` is the state after it, `author` made it), except `skip`'s (a presence that already
    /// reflects it). Returns the users whose presence changed, each with its value before, so a
    /// node that rolls the edit back can put it back (session/cluster.rs).
    pub fn transform(
        &mut self,
        op: &Op,
        inverse: &Op,
        author: &str,
        doc: &Value,
        skip: Option<&str>,
    ) -> Vec<Moved> {
        let mut changed = Vec::new();
        // Only ids in what the edit deleted or replaced can be gone; the document is scanned
        // (once) only when a selection holds one of them, as a move may have put it back.
        let removed = removed_ids(op, inverse);
        let mut ids: Option<HashSet<String>> = None;
        for (user, r) in &mut self.users {
            if skip == Some(&**user) {
                continue;
            }
            let Some(Json::Object(data)) = &r.data else {
                continue;
            };
            let mut selection = None;
            if let Some(Json::Array(sel)) = data.get("selection")
                && sel
                    .iter()
                    .any(|v| v.as_str().is_some_and(|id| removed.may(id)))
            {
                let ids = ids.get_or_insert_with(|| existing_ids(doc));
                let kept: Vec<Json> = sel
                    .iter()
                    .filter(|v| {
                        v.as_str()
                            .is_none_or(|id| !removed.may(id) || ids.contains(id))
                    })
                    .cloned()
                    .collect();
                if kept.len() != sel.len() {
                    selection = Some(kept);
                }
            }
            let caret = data.get("caret").map_or(CaretFate::Same, |c| {
                transform_caret(c, op, &**user == author)
            });
            if selection.is_none() && matches!(caret, CaretFate::Same) {
                continue;
            }
            // Only what the edit changes is kept for a rollback, not the whole presence.
            let before = Before {
                caret: (!matches!(caret, CaretFate::Same))
                    .then(|| data.get("caret").cloned())
                    .flatten(),
                selection: selection
                    .is_some()
                    .then(|| data.get("selection").cloned())
                    .flatten(),
            };
            let Some(Json::Object(data)) = &mut r.data else {
                continue;
            };
            if let Some(kept) = selection {
                data.insert("selection".to_owned(), Json::Array(kept));
            }
            match caret {
                CaretFate::Same => {}
                CaretFate::Moved(c) => {
                    data.insert("caret".to_owned(), c);
                }
                CaretFate::Gone => {
                    data.remove("caret");
                }
            }
            changed.push((user.clone(), before));
        }
        changed
    }
}

/// A user whose presence an edit changed, and what the edit changed, as it was before.
pub type Moved = (Arc<str>, Before);

/// The caret and/or selection of a presence before an edit moved them (`None`: unchanged).
#[derive(Debug, Clone, PartialEq)]
pub struct Before {
    pub caret: Option<Json>,
    pub selection: Option<Json>,
}

/// The ids an edit may have removed.
enum Removed {
    None,
    Some(HashSet<String>),
    /// It edited an id as text: any id may be gone.
    Any,
}

impl Removed {
    fn may(&self, id: &str) -> bool {
        match self {
            Removed::None => false,
            Removed::Some(ids) => ids.contains(id),
            Removed::Any => true,
        }
    }
}

/// Every `id` in what `inverse` puts back — the subtrees `op` deleted or replaced, and old
/// values of `id` keys it set — without looking at the document.
fn removed_ids(op: &Op, inverse: &Op) -> Removed {
    let is_id = |p: &Path| matches!(p.last(), Some(Seg::Key(k)) if k == "id");
    if op
        .components()
        .iter()
        .any(|c| matches!(c, Component::Text { path, .. } if is_id(path)))
    {
        return Removed::Any;
    }
    fn collect(v: &Value, out: &mut HashSet<String>) {
        match v {
            Value::Obj(o) => {
                for (k, x) in o {
                    match x {
                        Value::Str(t) if k == "id" => {
                            out.insert(t.to_string());
                        }
                        _ => collect(x, out),
                    }
                }
            }
            Value::Arr(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let mut ids = HashSet::new();
    for c in inverse.components() {
        if let Component::Set { path, value } | Component::Ins { path, value } = c {
            match value {
                Value::Str(t) if is_id(path) => {
                    ids.insert(t.to_string());
                }
                v => collect(v, &mut ids),
            }
        }
    }
    if ids.is_empty() {
        Removed::None
    } else {
        Removed::Some(ids)
    }
}

/// Every layer, track and clip id in the document (DESIGN §2 shapes).
fn existing_ids(doc: &Value) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut add = |v: &Value| {
        if let Some(id) = v.get("id").and_then(Value::as_text) {
            ids.insert(id.to_string());
        }
    };
    if let Some(layers) = doc
        .get("canvas")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_arr)
    {
        layers.iter().for_each(&mut add);
    }
    if let Some(tracks) = doc
        .get("timeline")
        .and_then(|t| t.get("tracks"))
        .and_then(Value::as_arr)
    {
        for t in tracks {
            add(t);
            if let Some(clips) = t.get("clips").and_then(Value::as_arr) {
                clips.iter().for_each(&mut add);
            }
        }
    }
    ids
}

enum CaretFate {
    Same,
    Moved(Json),
    /// Its string was deleted or replaced.
    Gone,
}

/// A caret `{"path":[…],"index":N,"anchor":N?}` past a committed edit. Text edits of its string
/// move the index (the author's own typing pushes it, others' typing at the caret does not);
/// list inserts, deletes and moves above it move its path; a delete or replace of the string or
/// an ancestor drops it. A malformed caret is left alone (it is the client's free-form data).
fn transform_caret(caret: &Json, op: &Op, own: bool) -> CaretFate {
    let Some(mut path) = caret.get("path").and_then(json_path) else {
        return CaretFate::Same;
    };
    let Some(mut index) = caret
        .get("index")
        .and_then(Json::as_u64)
        .map(|i| i as usize)
    else {
        return CaretFate::Same;
    };
    let mut anchor = caret
        .get("anchor")
        .and_then(Json::as_u64)
        .map(|i| i as usize);
    let start = (path.clone(), index, anchor);
    for c in op.components() {
        if let Component::Text { path: p, op: t } = c
            && *p == path
        {
            index = t.transform_position(index, own);
            anchor = anchor.map(|a| t.transform_position(a, own));
            continue;
        }
        if !may_move(c.path(), &path) {
            continue;
        }
        // Ride along as a one-character insert at the caret: the OT engine moves its path
        // exactly as it would move a concurrent edit there, and drops it with its subtree.
        let probe = Op::new(vec![Component::Text {
            path: path.clone(),
            op: TextOp::insert(0, "\u{0}"),
        }]);
        match probe
            .transform(&Op::new(vec![c.clone()]), Side::Right)
            .components()
        {
            [Component::Text { path: p, .. }] => path = p.clone(),
            _ => return CaretFate::Gone,
        }
    }
    if (path.clone(), index, anchor) == start {
        return CaretFate::Same;
    }
    let mut out = caret.clone();
    if let Json::Object(o) = &mut out {
        o.insert("path".to_owned(), path_json(&path));
        o.insert("index".to_owned(), Json::from(index));
        if let Some(a) = anchor {
            o.insert("anchor".to_owned(), Json::from(a));
        }
    }
    CaretFate::Moved(out)
}

/// Could an edit at `edit` change where `caret` points? Only if it is at or above the caret, or
/// a list operation on a list above it (a sibling shift).
fn may_move(edit: &Path, caret: &Path) -> bool {
    edit.is_prefix_of(caret.segs())
        || (matches!(edit.last(), Some(Seg::Index(_)))
            && Path::from(edit.parent()).is_prefix_of(caret.segs()))
}

fn json_path(v: &Json) -> Option<Path> {
    let arr = v.as_array()?;
    if arr.len() > montage_ot::MAX_PATH_DEPTH {
        return None;
    }
    let mut segs = Vec::with_capacity(arr.len());
    for s in arr {
        segs.push(match s {
            Json::String(k) => Seg::Key(k.clone()),
            Json::Number(n) => Seg::Index(usize::try_from(n.as_u64()?).ok()?),
            _ => return None,
        });
    }
    Some(Path::from(segs))
}

fn path_json(p: &Path) -> Json {
    Json::Array(
        p.segs()
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Json::from(k.as_str()),
                Seg::Index(i) => Json::from(*i),
            })
            .collect(),
    )
}

/// Presence values (one per session and user) held back for one connection by its tier's pacing;
/// past it the oldest goes out at once, so pacing never grows memory without bound.
pub const OUTBOX_MAX: usize = 1024;

/// Whose presence a held value is: (session, user).
pub type PresenceKey = (Arc<str>, Arc<str>);

/// Presence waiting for one receiving connection: the newest frame per (session, user), sent
/// when the tier's interval since the last flush has passed. Time comes in as an argument.
#[derive(Debug, Default)]
pub struct Outbox {
    last_flush: Option<Instant>,
    /// In first-arrival order; a newer value replaces the older in place.
    pending: Vec<(PresenceKey, Frame)>,
}

/// What [`Outbox::offer`] decided.
#[derive(Debug, PartialEq)]
pub enum Offer {
    /// Send this now (the interval has passed and nothing else waits).
    SendNow(Frame),
    /// Held; the first one held, so a flush must be scheduled.
    HeldFirst,
    /// Held behind others (a flush is already due).
    Held,
}

impl Outbox {
    /// The interval between flushes at `tier` (DESIGN §7: 60/30/15/5 per second).
    pub fn interval(tier: Tier) -> Duration {
        let fps = match tier {
            Tier::Excellent => 60,
            Tier::Good => 30,
            Tier::Fair => 15,
            Tier::Poor => 5,
        };
        Duration::from_micros(1_000_000 / fps)
    }

    pub fn offer(&mut self, key: PresenceKey, frame: Frame, tier: Tier, now: Instant) -> Offer {
        if let Some(slot) = self.pending.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = frame;
            return Offer::Held;
        }
        let due = self
            .last_flush
            .is_none_or(|l| now >= l + Self::interval(tier));
        if self.pending.is_empty() && due {
            self.last_flush = Some(now);
            return Offer::SendNow(frame);
        }
        if self.pending.len() >= OUTBOX_MAX {
            // Bounded: the oldest goes out now instead of waiting.
            let (_, f) = self.pending.remove(0);
            self.pending.push((key, frame));
            return Offer::SendNow(f);
        }
        self.pending.push((key, frame));
        if self.pending.len() == 1 {
            Offer::HeldFirst
        } else {
            Offer::Held
        }
    }

    /// When the held values may go out, if any are held.
    pub fn due(&self, tier: Tier) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(
            self.last_flush
                .map_or_else(Instant::now, |l| l + Self::interval(tier)),
        )
    }

    /// Takes everything held if its time has come, with whose presence in which session.
    pub fn flush(&mut self, tier: Tier, now: Instant) -> Vec<(PresenceKey, Frame)> {
        match self.due(tier) {
            Some(at) if now >= at => {
                self.last_flush = Some(now);
                std::mem::take(&mut self.pending)
            }
            _ => Vec::new(),
        }
    }

    /// Drops a held value (its user left: a late presence must not bring it back).
    pub fn forget(&mut self, session: &str, user: Option<&str>) {
        self.pending
            .retain(|((s, u), _)| !(&**s == session && user.is_none_or(|x| &**u == x)));
    }

    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(v: Json) -> Op {
        serde_json::from_value(v).unwrap()
    }

    fn doc(v: Json) -> Value {
        Value::from_json(&v)
    }

    fn table(user: &str, data: Json) -> PresenceTable {
        let mut t = PresenceTable::default();
        let u: Arc<str> = Arc::from(user);
        t.enter(&u, None);
        t.set(&u, data);
        t
    }

    #[test]
    fn colours_are_stable_and_differ() {
        assert_eq!(colour("alice"), colour("alice"));
        assert_ne!(colour("alice"), colour("bob"));
        let c = colour("alice");
        assert!(c.len() == 7 && c.starts_with('#'), "{c}");
        assert!(c[1..].chars().all(|ch| ch.is_ascii_hexdigit()));
    }

    #[test]
    fn caret_moves_with_others_typing_before_it_not_at_it() {
        let mut t = table(
            "bob",
            json!({"caret":{"path":["title"],"index":3,"anchor":1}}),
        );
        let d = doc(json!({"title":"XYabcdef"}));
        let changed = t.transform(
            &op(json!([{"op":"text","path":["title"],"pos":0,"ins":"XY"}])),
            &Op::default(),
            "alice",
            &d,
            None,
        );
        assert_eq!(changed.len(), 1);
        let c = &t.get("bob").unwrap().data.as_ref().unwrap()["caret"];
        assert_eq!(
            (c["index"].clone(), c["anchor"].clone()),
            (json!(5), json!(3))
        );
        // Someone else typing exactly at the caret leaves it before their text.
        t.transform(
            &op(json!([{"op":"text","path":["title"],"pos":5,"ins":"zz"}])),
            &Op::default(),
            "alice",
            &d,
            None,
        );
        let c = &t.get("bob").unwrap().data.as_ref().unwrap()["caret"];
        assert_eq!(c["index"], 5);
        // Its own typing pushes it.
        t.transform(
            &op(json!([{"op":"text","path":["title"],"pos":5,"ins":"q"}])),
            &Op::default(),
            "bob",
            &d,
            None,
        );
        let c = &t.get("bob").unwrap().data.as_ref().unwrap()["caret"];
        assert_eq!(c["index"], 6);
        // A delete around it pulls it to the delete's start.
        t.transform(
            &op(json!([{"op":"text","path":["title"],"pos":2,"del":6}])),
            &Op::default(),
            "alice",
            &d,
            None,
        );
        let c = &t.get("bob").unwrap().data.as_ref().unwrap()["caret"];
        assert_eq!(
            (c["index"].clone(), c["anchor"].clone()),
            (json!(2), json!(2))
        );
    }

    #[test]
    fn caret_path_follows_list_moves_and_dies_with_its_layer() {
        let caret = json!({"caret":{"path":["canvas","layers",0,"text"],"index":1}});
        let mut t = table("bob", caret);
        let d = doc(json!({}));
        let ins = json!([{"op":"ins","path":["canvas","layers",0],"value":{"id":"n","kind":"text","text":"","x":0,"y":0,"size":1,"color":"#000"}}]);
        assert_eq!(
            t.transform(&op(ins), &Op::default(), "alice", &d, None)
                .len(),
            1
        );
        let c = &t.get("bob").unwrap().data.as_ref().unwrap()["caret"];
        assert_eq!(c["path"], json!(["canvas", "layers", 1, "text"]));
        // An edit elsewhere changes nothing.
        let other = json!([{"op":"set","path":["meta","k"],"value":1}]);
        assert!(
            t.transform(&op(other), &Op::default(), "alice", &d, None)
                .is_empty()
        );
        let del = json!([{"op":"del","path":["canvas","layers",1]}]);
        assert_eq!(
            t.transform(&op(del), &Op::default(), "alice", &d, None)
                .len(),
            1
        );
        assert!(
            t.get("bob")
                .unwrap()
                .data
                .as_ref()
                .unwrap()
                .get("caret")
                .is_none()
        );
    }

    #[test]
    fn selection_of_a_deleted_layer_is_dropped() {
        let mut t = table(
            "bob",
            json!({"selection":["a","b","clip1"],"cursor":{"x":1,"y":2}}),
        );
        let d = doc(json!({"canvas":{"layers":[{"id":"a"}]},
            "timeline":{"tracks":[{"id":"t","clips":[{"id":"clip1"}]}]}}));
        let changed = t.transform(
            &op(json!([{"op":"del","path":["canvas","layers",1]}])),
            &op(json!([{"op":"ins","path":["canvas","layers",1],"value":{"id":"b"}}])),
            "alice",
            &d,
            None,
        );
        assert_eq!(changed.len(), 1);
        let data = t.get("bob").unwrap().data.clone().unwrap();
        assert_eq!(data["selection"], json!(["a", "clip1"]));
        assert_eq!(data["cursor"], json!({"x":1,"y":2}));
        // Nothing removed: nothing changed, and no scan needed.
        let add = json!([{"op":"add","path":["canvas","layers",0,"x"],"value":1}]);
        assert!(
            t.transform(&op(add), &Op::default(), "alice", &d, None)
                .is_empty()
        );
    }

    #[test]
    fn a_selection_survives_a_move_and_needs_no_scan_for_unrelated_deletes() {
        let mut t = table("bob", json!({"selection":["a"]}));
        // Layer "a" deleted and inserted again elsewhere in one edit: still there.
        let d = doc(json!({"canvas":{"layers":[{"id":"b"},{"id":"a"}]}}));
        let moved = op(json!([{"op":"del","path":["canvas","layers",0]},
            {"op":"ins","path":["canvas","layers",1],"value":{"id":"a"}}]));
        let inverse = op(json!([{"op":"del","path":["canvas","layers",1]},
            {"op":"ins","path":["canvas","layers",0],"value":{"id":"a"}}]));
        assert!(t.transform(&moved, &inverse, "alice", &d, None).is_empty());
        // Deleting another layer cannot drop "a", whatever the document says.
        let del = op(json!([{"op":"del","path":["canvas","layers",0]}]));
        let inv = op(json!([{"op":"ins","path":["canvas","layers",0],"value":{"id":"b"}}]));
        assert!(
            t.transform(&del, &inv, "alice", &doc(json!({})), None)
                .is_empty()
        );
        // Renaming the id (a set of its `id` key) drops it.
        let rename = op(json!([{"op":"set","path":["canvas","layers",0,"id"],"value":"z"}]));
        let inv = op(json!([{"op":"set","path":["canvas","layers",0,"id"],"value":"a"}]));
        let d = doc(json!({"canvas":{"layers":[{"id":"z"}]}}));
        assert_eq!(t.transform(&rename, &inv, "alice", &d, None).len(), 1);
        assert_eq!(
            t.get("bob").unwrap().data.as_ref().unwrap()["selection"],
            json!([])
        );
    }

    #[test]
    fn a_moved_presence_can_be_put_back_and_skipped() {
        let before = json!({"caret":{"path":["title"],"index":3}});
        let mut t = table("bob", before.clone());
        let d = doc(json!({}));
        let typed = op(json!([{"op":"text","path":["title"],"pos":0,"ins":"XY"}]));
        let moved = t.transform(&typed, &Op::default(), "alice", &d, None);
        let undo = Before {
            caret: Some(before["caret"].clone()),
            selection: None,
        };
        assert_eq!(moved, vec![(Arc::from("bob"), undo.clone())]);
        assert_eq!(
            t.get("bob").unwrap().data.as_ref().unwrap()["caret"]["index"],
            5
        );
        t.restore("bob", &undo);
        assert_eq!(t.get("bob").unwrap().data, Some(before));
        // A presence that already reflects the edit is left alone.
        assert!(
            t.transform(&typed, &Op::default(), "alice", &d, Some("bob"))
                .is_empty()
        );
        // A user who left and came back starts without presence: nothing to put back.
        t.remove("bob");
        t.enter(&Arc::from("bob"), None);
        t.restore("bob", &undo);
        assert_eq!(t.get("bob").unwrap().data, None);
    }

    #[test]
    fn malformed_presence_is_left_alone() {
        let mut t = table(
            "bob",
            json!({"caret":{"path":"title","index":-1},"selection":"x"}),
        );
        let d = doc(json!({}));
        let o = op(json!([{"op":"del","path":["title"]}]));
        assert!(
            t.transform(&o, &Op::default(), "alice", &d, None)
                .is_empty()
        );
    }

    fn key(u: &str) -> (Arc<str>, Arc<str>) {
        (Arc::from("s"), Arc::from(u))
    }

    #[test]
    fn outbox_paces_and_keeps_the_newest_per_user() {
        let mut o = Outbox::default();
        let t0 = Instant::now();
        let f = |s: &str| Frame::from(s.to_owned());
        assert_eq!(
            o.offer(key("a"), f("1"), Tier::Poor, t0),
            Offer::SendNow(f("1"))
        );
        assert_eq!(o.offer(key("a"), f("2"), Tier::Poor, t0), Offer::HeldFirst);
        assert_eq!(o.offer(key("a"), f("3"), Tier::Poor, t0), Offer::Held);
        assert_eq!(o.offer(key("b"), f("b1"), Tier::Poor, t0), Offer::Held);
        assert_eq!(o.due(Tier::Poor), Some(t0 + Duration::from_millis(200)));
        assert!(
            o.flush(Tier::Poor, t0 + Duration::from_millis(100))
                .is_empty()
        );
        let out = o.flush(Tier::Poor, t0 + Duration::from_millis(200));
        assert_eq!(out, vec![(key("a"), f("3")), (key("b"), f("b1"))]);
        assert_eq!(o.held(), 0);
        // A faster tier shortens the wait.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(
            o.offer(key("a"), f("4"), Tier::Excellent, t1),
            Offer::HeldFirst
        );
        assert_eq!(
            o.due(Tier::Excellent),
            Some(t1 + Outbox::interval(Tier::Excellent))
        );
        o.forget("s", Some("a"));
        assert_eq!(o.due(Tier::Excellent), None);
    }

    #[test]
    fn outbox_never_exceeds_its_bound() {
        let mut o = Outbox::default();
        let t0 = Instant::now();
        let mut sent = 0;
        for i in 0..(OUTBOX_MAX + 10) {
            let k = key(&format!("u{i}"));
            if let Offer::SendNow(_) = o.offer(k, Frame::from_static("x"), Tier::Poor, t0) {
                sent += 1;
            }
        }
        // The first goes at once, OUTBOX_MAX wait, and each one past that pushes the oldest out.
        assert_eq!(o.held(), OUTBOX_MAX);
        assert_eq!(sent, 10);
    }
}
