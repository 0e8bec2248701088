//! Applying components to a document. Every failure is an error value; nothing here panics on
//! input. Each successful apply returns the components that undo it.

use std::collections::BTreeMap;

use crate::component::{Component, Rect, join};
use crate::error::{OtError, Result};
use crate::path::{Path, Seg};
use crate::value::Value;

fn walk_mut<'a>(doc: &'a mut Value, segs: &[Seg]) -> Result<&'a mut Value> {
    let mut v = doc;
    for (n, seg) in segs.iter().enumerate() {
        v = match (v, seg) {
            (Value::Obj(m), Seg::Key(k)) => key_mut(m, k).ok_or_else(|| OtError::NoSuchPath {
                path: Path::from(&segs[..=n]),
            })?,
            (Value::Arr(a), Seg::Index(i)) => {
                let len = a.len();
                a.get_mut(*i).ok_or_else(|| OtError::OutOfBounds {
                    path: Path::from(&segs[..n]),
                    index: *i,
                    len,
                })?
            }
            (other, Seg::Key(_)) => {
                return Err(wrong(&segs[..n], "object", other));
            }
            (other, Seg::Index(_)) => {
                return Err(wrong(&segs[..n], "array", other));
            }
        };
    }
    Ok(v)
}

/// `m[k]`. A small object (the document root, a layer) is scanned comparing lengths first,
/// which is cheaper than the tree's ordered comparisons of every key on the way.
fn key_mut<'a>(m: &'a mut BTreeMap<String, Value>, k: &str) -> Option<&'a mut Value> {
    if m.len() <= 8 {
        m.iter_mut()
            .find(|(key, _)| key.as_str() == k)
            .map(|(_, v)| v)
    } else {
        m.get_mut(k)
    }
}

fn wrong(at: &[Seg], expected: &'static str, found: &Value) -> OtError {
    OtError::WrongType {
        path: Path::from(at),
        expected,
        found: found.type_name(),
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> OtError {
    OtError::Invalid {
        path: path.clone(),
        reason: reason.into(),
    }
}

fn finite(path: &Path, what: &str, n: f64) -> Result<f64> {
    if n.is_finite() {
        Ok(n)
    } else {
        Err(invalid(path, format!("{what} must be a finite number")))
    }
}

/// The list addressed by all but the last segment, and the last segment as an index.
fn list_mut<'a>(doc: &'a mut Value, path: &Path) -> Result<(&'a mut Vec<Value>, usize)> {
    let Some(i) = path.last_index() else {
        return Err(invalid(path, "the path must end in a list index"));
    };
    match walk_mut(doc, path.parent())? {
        Value::Arr(a) => Ok((a, i)),
        other => Err(wrong(path.parent(), "array", other)),
    }
}

fn obj_mut<'a>(doc: &'a mut Value, path: &Path) -> Result<&'a mut BTreeMap<String, Value>> {
    match walk_mut(doc, path.segs())? {
        Value::Obj(m) => Ok(m),
        other => Err(wrong(path.segs(), "object", other)),
    }
}

fn num_field(m: &BTreeMap<String, Value>, path: &Path, key: &str) -> Result<Option<f64>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Num(n)) => Ok(Some(*n)),
        Some(other) => Err(OtError::WrongType {
            path: join(path.segs(), key),
            expected: "number",
            found: other.type_name(),
        }),
    }
}

/// Limits on adjustment values (docs/PROTOCOL.md "The document"); other parameters only need to be finite.
pub(crate) fn adjust_range(param: &str) -> Option<(f64, f64)> {
    match param {
        "brightness" | "contrast" | "saturation" => Some((-1.0, 1.0)),
        "exposure" => Some((-10.0, 10.0)),
        _ => None,
    }
}

/// Applies one component, pushing its inverse components (to be applied in the order pushed).
pub(crate) fn apply_component(doc: &mut Value, c: &Component) -> Result<Vec<Component>> {
    Ok(match c {
        Component::Set { path, value } => {
            let Some((last, parent)) = path.segs().split_last() else {
                let old = std::mem::replace(doc, value.clone());
                return Ok(vec![Component::Set {
                    path: path.clone(),
                    value: old,
                }]);
            };
            match (walk_mut(doc, parent)?, last) {
                (Value::Obj(m), Seg::Key(k)) => match m.insert(k.clone(), value.clone()) {
                    Some(old) => vec![Component::Set {
                        path: path.clone(),
                        value: old,
                    }],
                    None => vec![Component::Del { path: path.clone() }],
                },
                (Value::Arr(a), Seg::Index(i)) => {
                    let len = a.len();
                    let slot = a.get_mut(*i).ok_or_else(|| OtError::OutOfBounds {
                        path: Path::from(parent),
                        index: *i,
                        len,
                    })?;
                    let old = std::mem::replace(slot, value.clone());
                    vec![Component::Set {
                        path: path.clone(),
                        value: old,
                    }]
                }
                (other, Seg::Key(_)) => return Err(wrong(parent, "object", other)),
                (other, Seg::Index(_)) => return Err(wrong(parent, "array", other)),
            }
        }
        Component::Del { path } => {
            let Some((last, parent)) = path.segs().split_last() else {
                return Err(invalid(path, "the document root can't be deleted"));
            };
            match (walk_mut(doc, parent)?, last) {
                (Value::Obj(m), Seg::Key(k)) => {
                    let old = m
                        .remove(k)
                        .ok_or_else(|| OtError::NoSuchPath { path: path.clone() })?;
                    vec![Component::Set {
                        path: path.clone(),
                        value: old,
                    }]
                }
                (Value::Arr(a), Seg::Index(i)) => {
                    if *i >= a.len() {
                        return Err(OtError::OutOfBounds {
                            path: Path::from(parent),
                            index: *i,
                            len: a.len(),
                        });
                    }
                    let old = a.remove(*i);
                    vec![Component::Ins {
                        path: path.clone(),
                        value: old,
                    }]
                }
                (other, Seg::Key(_)) => return Err(wrong(parent, "object", other)),
                (other, Seg::Index(_)) => return Err(wrong(parent, "array", other)),
            }
        }
        Component::Ins { path, value } => {
            let (a, i) = list_mut(doc, path)?;
            if i > a.len() {
                return Err(OtError::OutOfBounds {
                    path: Path::from(path.parent()),
                    index: i,
                    len: a.len(),
                });
            }
            a.insert(i, value.clone());
            vec![Component::Del { path: path.clone() }]
        }
        Component::Mov { path, to } => {
            let (a, i) = list_mut(doc, path)?;
            let len = a.len();
            for idx in [i, *to] {
                if idx >= len {
                    return Err(OtError::OutOfBounds {
                        path: Path::from(path.parent()),
                        index: idx,
                        len,
                    });
                }
            }
            let v = a.remove(i);
            a.insert(*to, v);
            vec![Component::Mov {
                path: path.with_last_index(*to),
                to: i,
            }]
        }
        Component::Add { path, value } => {
            finite(path, "add", *value)?;
            match walk_mut(doc, path.segs())? {
                Value::Num(n) => {
                    let sum = *n + value;
                    finite(path, "the sum", sum)?;
                    *n = sum;
                }
                other => return Err(wrong(path.segs(), "number", other)),
            }
            vec![Component::Add {
                path: path.clone(),
                value: -value,
            }]
        }
        Component::Text { path, op } => match walk_mut(doc, path.segs())? {
            Value::Str(t) => vec![Component::Text {
                path: path.clone(),
                op: op.apply(t, path)?,
            }],
            other => return Err(wrong(path.segs(), "string", other)),
        },
        Component::Split {
            path,
            at,
            media,
            id,
        } => {
            finite(path, "at", *at)?;
            finite(path, "media", *media)?;
            let (a, i) = list_mut(doc, path)?;
            let len = a.len();
            let clip = a.get_mut(i).ok_or_else(|| OtError::OutOfBounds {
                path: Path::from(path.parent()),
                index: i,
                len,
            })?;
            let Value::Obj(m) = clip else {
                return Err(wrong(path.segs(), "object", clip));
            };
            for key in ["start", "in", "out"] {
                if num_field(m, path, key)?.is_none() {
                    return Err(invalid(path, format!("split: the clip has no `{key}`")));
                }
            }
            let old_out = m
                .insert("out".into(), Value::Num(*media))
                .unwrap_or_default();
            let mut right = m.clone();
            right.insert("id".into(), Value::str(id.as_str()));
            right.insert("start".into(), Value::Num(*at));
            right.insert("in".into(), Value::Num(*media));
            right.insert("out".into(), old_out.clone());
            a.insert(i + 1, Value::Obj(right));
            vec![
                Component::Del {
                    path: path.with_last_index(i + 1),
                },
                Component::Set {
                    path: join(path.segs(), "out"),
                    value: old_out,
                },
            ]
        }
        Component::Trim {
            path,
            start,
            r#in,
            out,
        } => {
            let m = obj_mut(doc, path)?;
            let mut old = [None, None, None];
            for (n, (key, v)) in [("start", start), ("in", r#in), ("out", out)]
                .into_iter()
                .enumerate()
            {
                if let Some(v) = v {
                    finite(path, key, *v)?;
                    old[n] =
                        Some(num_field(m, path, key)?.ok_or_else(|| {
                            invalid(path, format!("trim: the clip has no `{key}`"))
                        })?);
                }
            }
            for (key, v) in [("start", start), ("in", r#in), ("out", out)] {
                if let Some(v) = v {
                    m.insert(key.into(), Value::Num(*v));
                }
            }
            vec![Component::Trim {
                path: path.clone(),
                start: old[0],
                r#in: old[1],
                out: old[2],
            }]
        }
        Component::Crop { path, rect } => {
            for (k, v) in [("x", rect.x), ("y", rect.y), ("w", rect.w), ("h", rect.h)] {
                finite(path, k, v)?;
            }
            if rect.x < 0.0 || rect.y < 0.0 || rect.w <= 0.0 || rect.h <= 0.0 {
                return Err(invalid(path, "crop: x and y must be ≥ 0, w and h > 0"));
            }
            let m = obj_mut(doc, path)?;
            match m.insert("crop".into(), rect.to_value()) {
                Some(old) => match Rect::from_value(&old).filter(|r| {
                    r.to_value() == old && r.x >= 0.0 && r.y >= 0.0 && r.w > 0.0 && r.h > 0.0
                }) {
                    Some(r) => vec![Component::Crop {
                        path: path.clone(),
                        rect: r,
                    }],
                    None => vec![Component::Set {
                        path: join(path.segs(), "crop"),
                        value: old,
                    }],
                },
                None => vec![Component::Del {
                    path: join(path.segs(), "crop"),
                }],
            }
        }
        Component::Rotate { path, by } => {
            finite(path, "by", *by)?;
            let m = obj_mut(doc, path)?;
            match num_field(m, path, "rotation")? {
                Some(r) => {
                    finite(path, "the rotation", r + by)?;
                    m.insert("rotation".into(), Value::Num(r + by));
                    vec![Component::Rotate {
                        path: path.clone(),
                        by: -by,
                    }]
                }
                None => {
                    m.insert("rotation".into(), Value::Num(*by));
                    vec![Component::Del {
                        path: join(path.segs(), "rotation"),
                    }]
                }
            }
        }
        Component::Adjust { path, param, value } => {
            finite(path, "value", *value)?;
            if param.is_empty()
                || param.len() > 32
                || !param.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                return Err(invalid(
                    path,
                    "adjust: `param` must be 1–32 lowercase letters or `_`",
                ));
            }
            if let Some((lo, hi)) = adjust_range(param)
                && !(lo..=hi).contains(value)
            {
                return Err(invalid(
                    path,
                    format!("adjust: {param} must be within {lo}..={hi}"),
                ));
            }
            let m = obj_mut(doc, path)?;
            match m.get_mut("adjust") {
                None => {
                    m.insert(
                        "adjust".into(),
                        Value::obj([(param.as_str(), Value::Num(*value))]),
                    );
                    vec![Component::Del {
                        path: join(path.segs(), "adjust"),
                    }]
                }
                Some(Value::Obj(adj)) => match adj.insert(param.clone(), Value::Num(*value)) {
                    Some(Value::Num(old))
                        if adjust_range(param).is_none_or(|(lo, hi)| (lo..=hi).contains(&old)) =>
                    {
                        vec![Component::Adjust {
                            path: path.clone(),
                            param: param.clone(),
                            value: old,
                        }]
                    }
                    Some(old) => {
                        vec![Component::Set {
                            path: join(join(path.segs(), "adjust").segs(), param),
                            value: old,
                        }]
                    }
                    None => vec![Component::Del {
                        path: join(join(path.segs(), "adjust").segs(), param),
                    }],
                },
                Some(other) => {
                    return Err(wrong(join(path.segs(), "adjust").segs(), "object", other));
                }
            }
        }
    })
}
