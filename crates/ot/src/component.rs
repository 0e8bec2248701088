//! Edit components: the primitive JSON ones of docs/PROTOCOL.md "The document" and the media-semantic ones.

use serde::{Deserialize, Serialize};

use crate::path::{Path, Seg};
use crate::text::{TextOp, TextStep};
use crate::value::Value;

/// Numbers in the JSON form: whole numbers are written without a fraction (`90`, not `90.0`),
/// as a JavaScript client writes them.
pub(crate) mod num {
    use serde::Serializer;

    pub fn ser<S: Serializer>(n: &f64, s: S) -> Result<S::Ok, S::Error> {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            s.serialize_i64(*n as i64)
        } else {
            s.serialize_f64(*n)
        }
    }
    #[allow(clippy::ref_option)]
    pub fn ser_opt<S: Serializer>(n: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => ser(n, s),
            None => s.serialize_none(),
        }
    }
}

/// A crop rectangle in the asset's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rect {
    #[serde(serialize_with = "num::ser")]
    pub x: f64,
    #[serde(serialize_with = "num::ser")]
    pub y: f64,
    #[serde(serialize_with = "num::ser")]
    pub w: f64,
    #[serde(serialize_with = "num::ser")]
    pub h: f64,
}

impl Rect {
    pub fn to_value(self) -> Value {
        Value::obj([
            ("x", Value::Num(self.x)),
            ("y", Value::Num(self.y)),
            ("w", Value::Num(self.w)),
            ("h", Value::Num(self.h)),
        ])
    }
    pub fn from_value(v: &Value) -> Option<Rect> {
        let f = |k| v.get(k).and_then(Value::as_f64);
        Some(Rect {
            x: f("x")?,
            y: f("y")?,
            w: f("w")?,
            h: f("h")?,
        })
    }
}

/// One component of an edit. An edit (`Op`) is a list of them applied atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Component {
    /// Put `value` at `path`: an object key (new or existing) or an existing list index.
    Set { path: Path, value: Value },
    /// Remove an object key or a list element.
    Del { path: Path },
    /// Insert into a list; the path's last segment is the index, `0..=len`.
    Ins { path: Path, value: Value },
    /// Move the list element at `path` to index `to` (its index after the move).
    Mov { path: Path, to: usize },
    /// Add a number to the number at `path`.
    Add { path: Path, value: f64 },
    /// Edit the string at `path`.
    Text { path: Path, op: TextOp },
    /// Cut the clip at `path` at timeline time `at` (`media` is the asset time there). The
    /// clip keeps `start..at`; a copy with id `id` is inserted after it and plays `at..end`.
    Split {
        path: Path,
        at: f64,
        media: f64,
        id: String,
    },
    /// Move a clip's edges: any of its `start`, `in`, `out`, written as absolute values.
    Trim {
        path: Path,
        start: Option<f64>,
        r#in: Option<f64>,
        out: Option<f64>,
    },
    /// Set an image layer's crop rectangle (asset pixels).
    Crop { path: Path, rect: Rect },
    /// Rotate a layer by `by` degrees clockwise (relative: concurrent rotations add up).
    Rotate { path: Path, by: f64 },
    /// Set one filter parameter of a layer (`adjust.<param>`), creating `adjust` if missing.
    Adjust {
        path: Path,
        param: String,
        value: f64,
    },
}

impl Component {
    pub fn path(&self) -> &Path {
        match self {
            Component::Set { path, .. }
            | Component::Del { path }
            | Component::Ins { path, .. }
            | Component::Mov { path, .. }
            | Component::Add { path, .. }
            | Component::Text { path, .. }
            | Component::Split { path, .. }
            | Component::Trim { path, .. }
            | Component::Crop { path, .. }
            | Component::Rotate { path, .. }
            | Component::Adjust { path, .. } => path,
        }
    }
    /// How deep in the document this component writes: the containers its path passes through
    /// plus the nesting of what it puts there (`crop` and `adjust` write one object under the
    /// layer). Nothing else makes a document deeper: `split` copies a clip beside itself.
    pub fn depth(&self) -> usize {
        let n = self.path().len();
        match self {
            Component::Set { value, .. } | Component::Ins { value, .. } => n + value.depth(),
            Component::Crop { .. } | Component::Adjust { .. } => n + 2,
            _ => n,
        }
    }
    pub(crate) fn path_mut(&mut self) -> &mut Path {
        match self {
            Component::Set { path, .. }
            | Component::Del { path }
            | Component::Ins { path, .. }
            | Component::Mov { path, .. }
            | Component::Add { path, .. }
            | Component::Text { path, .. }
            | Component::Split { path, .. }
            | Component::Trim { path, .. }
            | Component::Crop { path, .. }
            | Component::Rotate { path, .. }
            | Component::Adjust { path, .. } => path,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Component::Set { .. } => "set",
            Component::Del { .. } => "del",
            Component::Ins { .. } => "ins",
            Component::Mov { .. } => "mov",
            Component::Add { .. } => "add",
            Component::Text { .. } => "text",
            Component::Split { .. } => "split",
            Component::Trim { .. } => "trim",
            Component::Crop { .. } => "crop",
            Component::Rotate { .. } => "rotate",
            Component::Adjust { .. } => "adjust",
        }
    }
    pub fn is_noop(&self) -> bool {
        match self {
            Component::Text { op, .. } => op.is_noop(),
            Component::Mov { path, to } => path.last_index() == Some(*to),
            Component::Trim {
                start, r#in, out, ..
            } => start.is_none() && r#in.is_none() && out.is_none(),
            _ => false,
        }
    }

    pub fn set(path: Path, value: impl Into<Value>) -> Self {
        Component::Set {
            path,
            value: value.into(),
        }
    }
    pub fn del(path: Path) -> Self {
        Component::Del { path }
    }
    pub fn ins(path: Path, value: impl Into<Value>) -> Self {
        Component::Ins {
            path,
            value: value.into(),
        }
    }
    pub fn mov(path: Path, to: usize) -> Self {
        Component::Mov { path, to }
    }
    pub fn add(path: Path, value: f64) -> Self {
        Component::Add { path, value }
    }
    pub fn text_insert(path: Path, pos: usize, s: impl Into<String>) -> Self {
        Component::Text {
            path,
            op: TextOp::insert(pos, s),
        }
    }
    pub fn text_delete(path: Path, pos: usize, n: usize) -> Self {
        Component::Text {
            path,
            op: TextOp::delete(pos, n),
        }
    }
}

/// The wire form of one component, one entry of an edit's `ops` (docs/PROTOCOL.md "The
/// document"), shared by the JSON and protobuf encodings so both check the same things. A
/// multi-part text op is written as several `text` components, each applying to the string the
/// previous one left.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Wire {
    Set {
        path: Path,
        value: Value,
    },
    Del {
        path: Path,
    },
    Ins {
        path: Path,
        value: Value,
    },
    Mov {
        path: Path,
        to: usize,
    },
    Add {
        path: Path,
        #[serde(serialize_with = "num::ser")]
        value: f64,
    },
    Text {
        path: Path,
        pos: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ins: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        del: Option<usize>,
    },
    Split {
        path: Path,
        #[serde(serialize_with = "num::ser")]
        at: f64,
        #[serde(serialize_with = "num::ser")]
        media: f64,
        id: String,
    },
    Trim {
        path: Path,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            serialize_with = "num::ser_opt"
        )]
        start: Option<f64>,
        #[serde(
            default,
            rename = "in",
            skip_serializing_if = "Option::is_none",
            serialize_with = "num::ser_opt"
        )]
        r#in: Option<f64>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            serialize_with = "num::ser_opt"
        )]
        out: Option<f64>,
    },
    Crop {
        path: Path,
        rect: Rect,
    },
    Rotate {
        path: Path,
        #[serde(serialize_with = "num::ser")]
        by: f64,
    },
    Adjust {
        path: Path,
        param: String,
        #[serde(serialize_with = "num::ser")]
        value: f64,
    },
}

/// Checks that every index and count fits the engine's limits, so arithmetic on them can't
/// overflow while transforming.
fn check_bounds(path: &Path, counts: &[usize]) -> Result<(), String> {
    let too_big = |n: usize| n > crate::MAX_INDEX;
    if path.segs().iter().any(|s| s.index().is_some_and(too_big))
        || counts.iter().copied().any(too_big)
    {
        return Err(format!(
            "indices, positions and counts are at most {}",
            crate::MAX_INDEX
        ));
    }
    Ok(())
}

impl Wire {
    /// The component, if this is a valid one within the engine's limits.
    pub fn into_component(self) -> Result<Component, String> {
        match &self {
            Wire::Mov { path, to } => check_bounds(path, &[*to])?,
            Wire::Text { path, pos, del, .. } => check_bounds(path, &[*pos, del.unwrap_or(0)])?,
            Wire::Set { path, .. }
            | Wire::Del { path }
            | Wire::Ins { path, .. }
            | Wire::Add { path, .. }
            | Wire::Split { path, .. }
            | Wire::Trim { path, .. }
            | Wire::Crop { path, .. }
            | Wire::Rotate { path, .. }
            | Wire::Adjust { path, .. } => check_bounds(path, &[])?,
        }
        Ok(match self {
            Wire::Set { path, value } => Component::Set { path, value },
            Wire::Del { path } => Component::Del { path },
            Wire::Ins { path, value } => {
                if path.last_index().is_none() {
                    return Err("ins: the path must end in a list index".into());
                }
                Component::Ins { path, value }
            }
            Wire::Mov { path, to } => {
                if path.last_index().is_none() {
                    return Err("mov: the path must end in a list index".into());
                }
                Component::Mov { path, to }
            }
            Wire::Add { path, value } => Component::Add { path, value },
            Wire::Text {
                path,
                pos,
                ins,
                del,
            } => match (ins, del) {
                (Some(s), None) => Component::Text {
                    path,
                    op: TextOp::insert(pos, s),
                },
                (None, Some(n)) => Component::Text {
                    path,
                    op: TextOp::delete(pos, n),
                },
                _ => return Err("text: give exactly one of `ins` and `del`".into()),
            },
            Wire::Split {
                path,
                at,
                media,
                id,
            } => {
                if path.last_index().is_none() {
                    return Err("split: the path must name a clip in a list".into());
                }
                Component::Split {
                    path,
                    at,
                    media,
                    id,
                }
            }
            Wire::Trim {
                path,
                start,
                r#in,
                out,
            } => {
                if start.is_none() && r#in.is_none() && out.is_none() {
                    return Err("trim: give at least one of `start`, `in`, `out`".into());
                }
                Component::Trim {
                    path,
                    start,
                    r#in,
                    out,
                }
            }
            Wire::Crop { path, rect } => Component::Crop { path, rect },
            Wire::Rotate { path, by } => Component::Rotate { path, by },
            Wire::Adjust { path, param, value } => Component::Adjust { path, param, value },
        })
    }

    /// Appends `c`'s wire form (several entries for a multi-part text edit).
    pub fn from_component(c: &Component, out: &mut Vec<Wire>) {
        let w = match c.clone() {
            Component::Set { path, value } => Wire::Set { path, value },
            Component::Del { path } => Wire::Del { path },
            Component::Ins { path, value } => Wire::Ins { path, value },
            Component::Mov { path, to } => Wire::Mov { path, to },
            Component::Add { path, value } => Wire::Add { path, value },
            Component::Text { path, op } => {
                for (pos, step) in op.steps() {
                    out.push(match step {
                        TextStep::Insert(s) => Wire::Text {
                            path: path.clone(),
                            pos,
                            ins: Some(s.to_owned()),
                            del: None,
                        },
                        TextStep::Delete(n) => Wire::Text {
                            path: path.clone(),
                            pos,
                            ins: None,
                            del: Some(n),
                        },
                    });
                }
                return;
            }
            Component::Split {
                path,
                at,
                media,
                id,
            } => Wire::Split {
                path,
                at,
                media,
                id,
            },
            Component::Trim {
                path,
                start,
                r#in,
                out,
            } => Wire::Trim {
                path,
                start,
                r#in,
                out,
            },
            Component::Crop { path, rect } => Wire::Crop { path, rect },
            Component::Rotate { path, by } => Wire::Rotate { path, by },
            Component::Adjust { path, param, value } => Wire::Adjust { path, param, value },
        };
        out.push(w);
    }
}

/// Appends `seg` to a copy of `path`.
pub(crate) fn join(path: &[Seg], seg: &str) -> Path {
    let mut v = path.to_vec();
    v.push(Seg::Key(seg.to_owned()));
    Path::from(v)
}
