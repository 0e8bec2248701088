//! `Op`: one edit, a list of components applied atomically as one version.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::apply::apply_component;
use crate::component::{Component, Wire, join};
use crate::error::{OtError, Result};
use crate::schema;
use crate::transform::{Side, transform_component, transform_x};
use crate::value::Value;

/// One edit. Its JSON form is an array of components (docs/PROTOCOL.md "The document").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Op(pub Vec<Component>);

impl Op {
    pub fn new(components: Vec<Component>) -> Op {
        Op(components)
    }
    pub fn components(&self) -> &[Component] {
        &self.0
    }
    pub fn is_noop(&self) -> bool {
        self.0.iter().all(Component::is_noop)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How deep in the document this edit writes (the deepest of [`Component::depth`]).
    pub fn depth(&self) -> usize {
        self.0.iter().map(Component::depth).max().unwrap_or(0)
    }

    /// Applies to `doc` atomically and returns the inverse edit. On error `doc` is unchanged.
    /// The result is checked against the document shape of docs/PROTOCOL.md "The document".
    pub fn apply(&self, doc: &mut Value) -> Result<Op> {
        self.apply_inner(doc, true)
    }

    /// Applies without the document-shape check (for free-form JSON documents).
    pub fn apply_unchecked(&self, doc: &mut Value) -> Result<Op> {
        self.apply_inner(doc, false)
    }

    fn apply_inner(&self, doc: &mut Value, check: bool) -> Result<Op> {
        // One component applies atomically by itself; it only needs undoing if the shape
        // check fails.
        if let [c] = &self.0[..] {
            let restore = exact_restore(doc, c);
            let inverse = apply_component(doc, c)?;
            if check && let Err(e) = schema::check_touched(doc, self) {
                roll_back(doc, [(&inverse, &restore)].into_iter())?;
                return Err(e);
            }
            return Ok(Op(inverse));
        }
        let mut undo: Vec<(Vec<Component>, Option<Vec<Component>>)> =
            Vec::with_capacity(self.0.len());
        for c in &self.0 {
            let restore = exact_restore(doc, c);
            match apply_component(doc, c) {
                Ok(inv) => undo.push((inv, restore)),
                Err(e) => {
                    roll_back(doc, undo.iter().rev().map(|(i, r)| (i, r)))?;
                    return Err(e);
                }
            }
        }
        if check && let Err(e) = schema::check_touched(doc, self) {
            roll_back(doc, undo.iter().rev().map(|(i, r)| (i, r)))?;
            return Err(e);
        }
        Ok(Op(undo
            .into_iter()
            .rev()
            .flat_map(|(inv, _)| inv)
            .collect()))
    }

    /// The edit that undoes `self` when applied right after it to `doc`'s successor.
    pub fn invert(&self, doc: &Value) -> Result<Op> {
        let mut scratch = doc.clone();
        self.apply_unchecked(&mut scratch)
    }

    /// `self` rewritten to apply after the concurrent `other`. `side` says which the server
    /// ordered first: `Side::Left` if `self` came first.
    pub fn transform(&self, other: &Op, side: Side) -> Op {
        // The common case, one component against others: one direction is enough.
        if let [c] = &self.0[..] {
            if c.is_noop() {
                return Op::default();
            }
            let mut cur = vec![c.clone()];
            for (k, o) in other.0.iter().enumerate() {
                match cur.len() {
                    0 => break,
                    1 => {
                        let mut next = Vec::with_capacity(1);
                        transform_component(&cur[0], o, side, &mut next);
                        cur = next;
                    }
                    _ => return Op(transform_x(&cur, &other.0[k..], side).0),
                }
            }
            return Op(cur);
        }
        Op(transform_x(&self.0, &other.0, side).0)
    }

    /// Both directions at once: (`self` after `other`, `other` after `self`).
    pub fn transform_x(&self, other: &Op, side: Side) -> (Op, Op) {
        let (a, b) = transform_x(&self.0, &other.0, side);
        (Op(a), Op(b))
    }

    /// One edit with the effect of `self` then `other`. Neighbouring components on one path
    /// merge: typing runs become one text op, repeated writes of one value keep the last.
    pub fn compose(&self, other: &Op) -> Op {
        let mut out = self.clone();
        for c in &other.0 {
            out.push_merged(c.clone());
        }
        out
    }

    /// Appends a component, merging it into the last one where that is exact.
    pub fn push_merged(&mut self, c: Component) {
        if c.is_noop() {
            return;
        }
        if let Some(last) = self.0.last_mut()
            && let Some(merged) = merge(last, &c)
        {
            if merged.is_noop() {
                self.0.pop();
            } else {
                *last = merged;
            }
            return;
        }
        self.0.push(c);
    }

    /// The edits of consecutive versions as one, for a client to apply and to rebase its own
    /// unacknowledged edit past (a range on the wire, docs/OT.md §10.3). Unlike
    /// [`compose`](Op::compose) it merges two components only where every concurrent edit
    /// transforms past the merged one exactly as past the two in turn, so the client's rebase
    /// past the range gives the very edit the server makes rebasing past the versions one by
    /// one. Elsewhere the components stay side by side, which transforms exactly (a transform
    /// against a list of components is a transform against each in turn).
    pub fn compose_range<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Op {
        let mut out = Op::default();
        for op in ops {
            out.append_range(op);
        }
        out
    }

    /// Appends `other`'s components as [`compose_range`](Op::compose_range) does.
    pub fn append_range(&mut self, other: &Op) {
        for c in &other.0 {
            if c.is_noop() {
                continue;
            }
            if let Some(last) = self.0.last_mut()
                && let Some(merged) = merge_exact(last, c)
            {
                if merged.is_noop() {
                    self.0.pop();
                } else {
                    *last = merged;
                }
                continue;
            }
            self.0.push(c.clone());
        }
    }

    /// Composes many edits; a balanced tree of composes keeps long text runs linear-ish.
    pub fn compose_all<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Op {
        let mut level: Vec<Op> = ops.into_iter().cloned().collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            let mut it = level.into_iter();
            while let Some(a) = it.next() {
                next.push(match it.next() {
                    Some(b) => a.compose(&b),
                    None => a,
                });
            }
            level = next;
        }
        level.pop().unwrap_or_default()
    }

    /// Parses the JSON form.
    pub fn from_json(v: &serde_json::Value) -> Result<Op> {
        Op::deserialize(v).map_err(|e| OtError::Decode(e.to_string()))
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// For components whose inverse is semantic rather than literal (`add −N` is not exact in
/// floating point; a `crop` or `adjust` inverse may not re-apply an odd old value), the exact
/// old value to put back if the edit has to be rolled back.
fn exact_restore(doc: &Value, c: &Component) -> Option<Vec<Component>> {
    let target = match c {
        Component::Add { path, .. } => path.clone(),
        Component::Rotate { path, .. } => join(path.segs(), "rotation"),
        Component::Crop { path, .. } => join(path.segs(), "crop"),
        Component::Adjust { path, .. } => join(path.segs(), "adjust"),
        _ => return None,
    };
    Some(vec![match doc.at(target.segs()) {
        Some(old) => Component::Set {
            path: target,
            value: old.clone(),
        },
        None => Component::Del { path: target },
    }])
}

/// Undoes applied components, newest first. Restores are literal writes of values read from
/// the document, so they apply; if one ever did not, the edit is reported as failed rather
/// than the process brought down.
fn roll_back<'a>(
    doc: &mut Value,
    groups: impl Iterator<Item = (&'a Vec<Component>, &'a Option<Vec<Component>>)>,
) -> Result<()> {
    for (inverse, restore) in groups {
        for c in restore.as_ref().unwrap_or(inverse) {
            if let Err(e) = apply_component(doc, c) {
                debug_assert!(false, "rollback failed: {e}");
                return Err(OtError::Invalid {
                    path: c.path().clone(),
                    reason: format!("internal error: could not roll back a refused edit ({e})"),
                });
            }
        }
    }
    Ok(())
}

/// `a` then `b` as one component, when that is exact.
fn merge(a: &Component, b: &Component) -> Option<Component> {
    if a.path() != b.path() {
        return None;
    }
    Some(match (a, b) {
        (Component::Text { path, op: x }, Component::Text { op: y, .. }) => Component::Text {
            path: path.clone(),
            op: x.compose(y),
        },
        (Component::Set { .. }, Component::Set { .. })
        | (Component::Crop { .. }, Component::Crop { .. }) => b.clone(),
        (Component::Adjust { param: p, .. }, Component::Adjust { param: q, .. }) if p == q => {
            b.clone()
        }
        (
            Component::Trim {
                path,
                start: s1,
                r#in: i1,
                out: o1,
            },
            Component::Trim {
                start: s2,
                r#in: i2,
                out: o2,
                ..
            },
        ) => Component::Trim {
            path: path.clone(),
            start: s2.or(*s1),
            r#in: i2.or(*i1),
            out: o2.or(*o1),
        },
        _ => return None,
    })
}

/// [`merge`] where it is exact for transforms (the `ranges` test in `tests/it` checks each
/// kind against random concurrent edits): a write replaced by a later write of the same path
/// (`set`, `crop`, `adjust` of one `param`), and text steps that only insert or only delete.
/// Not text that mixes inserts and deletes (compose forgets on which side of deleted characters
/// an insert stood, docs/OT.md §13 Q1) nor `trim` (a later trim's edges yield to a concurrent
/// one by what each contributes, §13 Q4).
fn merge_exact(a: &Component, b: &Component) -> Option<Component> {
    match (a, b) {
        (Component::Text { op: x, .. }, Component::Text { op: y, .. })
            if (x.inserts_only() && y.inserts_only()) || (x.deletes_only() && y.deletes_only()) =>
        {
            merge(a, b)
        }
        (Component::Set { .. }, Component::Set { .. })
        | (Component::Crop { .. }, Component::Crop { .. })
        | (Component::Adjust { .. }, Component::Adjust { .. }) => merge(a, b),
        _ => None,
    }
}

impl From<Vec<Component>> for Op {
    fn from(v: Vec<Component>) -> Self {
        Op(v)
    }
}

impl Op {
    /// The edit's wire form: the entries of its `ops` list.
    pub fn to_wire(&self) -> Vec<Wire> {
        let mut wire = Vec::with_capacity(self.0.len());
        for c in &self.0 {
            Wire::from_component(c, &mut wire);
        }
        wire
    }
    /// The edit an `ops` list stands for, if every entry is valid and there are at most
    /// [`MAX_COMPONENTS`](crate::MAX_COMPONENTS).
    pub fn from_wire(wire: Vec<Wire>) -> std::result::Result<Op, String> {
        if wire.len() > crate::MAX_COMPONENTS {
            return Err(format!(
                "an edit has at most {} components",
                crate::MAX_COMPONENTS
            ));
        }
        wire.into_iter()
            .map(Wire::into_component)
            .collect::<std::result::Result<_, _>>()
            .map(Op)
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = Vec::<Wire>::deserialize(d)?;
        Op::from_wire(wire).map_err(serde::de::Error::custom)
    }
}
