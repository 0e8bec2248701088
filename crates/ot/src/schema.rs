//! The document's shape (docs/PROTOCOL.md "The document"): an edit whose result breaks it is refused. Only the parts
//! an edit touched are checked, so the cost does not grow with the document.

use crate::component::Component;
use crate::error::{OtError, Result};
use crate::op::Op;
use crate::path::{Path, Seg};
use crate::value::Value;

fn bad(path: &[Seg], reason: impl Into<String>) -> OtError {
    OtError::Schema {
        path: Path::from(path),
        reason: reason.into(),
    }
}

/// Checks a whole document.
pub fn check_document(doc: &Value) -> Result<()> {
    check_root(doc)?;
    check_entity(doc, &[])
}

/// Checks the root shape and every entity (layer, track, clip, asset) the edit touched.
pub(crate) fn check_touched(doc: &Value, op: &Op) -> Result<()> {
    let mut root_checked = false;
    for c in op.components() {
        let p = c.path().segs();
        let e = entity(p);
        // A text or numeric edit outside every entity (the title, meta) keeps the document's
        // shape: the common case of typing costs no check at all.
        if e.is_none() && matches!(c, Component::Text { .. } | Component::Add { .. }) {
            continue;
        }
        if !root_checked {
            check_root(doc)?;
            root_checked = true;
        }
        if let Some(e) = e {
            check_entity(doc, e)?;
        }
        if let Component::Split { path, .. } = c
            && let Some(i) = path.last_index()
            && let Some(e) = entity(path.with_last_index(i + 1).segs())
        {
            check_entity(doc, e)?;
        }
    }
    Ok(())
}

/// The smallest entity containing `p` whose shape the contract pins; `None` for the title,
/// `meta` and unknown top-level fields, which the root check covers.
fn entity(p: &[Seg]) -> Option<&[Seg]> {
    let key = |n: usize, k: &str| matches!(p.get(n), Some(Seg::Key(x)) if x == k);
    let idx = |n: usize| matches!(p.get(n), Some(Seg::Index(_)));
    Some(if key(0, "canvas") && key(1, "layers") && idx(2) {
        &p[..3]
    } else if key(0, "timeline") && key(1, "tracks") && idx(2) && key(3, "clips") && idx(4) {
        &p[..5]
    } else if key(0, "timeline") && key(1, "tracks") && idx(2) {
        &p[..3]
    } else if key(0, "assets") || key(0, "canvas") || key(0, "timeline") {
        &p[..p.len().min(2)]
    } else if p.is_empty() {
        p
    } else {
        return None;
    })
}

fn check_entity(doc: &Value, at: &[Seg]) -> Result<()> {
    let Some(v) = doc.at(at) else { return Ok(()) };
    let key = |n: usize, k: &str| matches!(at.get(n), Some(Seg::Key(x)) if x == k);
    match at.len() {
        0 => {
            check_canvas(
                v.get("canvas").unwrap_or(&Value::Null),
                &[Seg::from("canvas")],
            )?;
            check_timeline(
                v.get("timeline").unwrap_or(&Value::Null),
                &[Seg::from("timeline")],
            )?;
            check_assets(
                v.get("assets").unwrap_or(&Value::Null),
                &[Seg::from("assets")],
            )
        }
        1 if key(0, "canvas") => check_canvas(v, at),
        1 if key(0, "timeline") => check_timeline(v, at),
        1 if key(0, "assets") => check_assets(v, at),
        2 if key(0, "canvas") && key(1, "layers") => check_list(v, at, check_layer),
        2 if key(0, "canvas") => check_canvas(doc.get("canvas").unwrap_or(&Value::Null), &at[..1]),
        2 if key(0, "timeline") && key(1, "tracks") => check_list(v, at, check_track),
        2 if key(0, "timeline") => Ok(()),
        2 if key(0, "assets") => check_asset(v, at),
        3 if key(0, "canvas") => check_layer(v, at),
        3 => check_track(v, at),
        5 => check_clip(v, at),
        _ => Ok(()),
    }
}

fn check_root(doc: &Value) -> Result<()> {
    let Value::Obj(m) = doc else {
        return Err(bad(&[], "the document must be an object"));
    };
    let want = [
        ("title", "string"),
        ("assets", "object"),
        ("canvas", "object"),
        ("timeline", "object"),
        ("meta", "object"),
    ];
    for (k, t) in want {
        match m.get(k) {
            Some(Value::Str(_)) if t == "string" => {}
            Some(Value::Obj(_)) if t == "object" => {}
            Some(v) => {
                return Err(bad(
                    &[Seg::from(k)],
                    format!("must be a {t}, not a {}", v.type_name()),
                ));
            }
            None => return Err(bad(&[Seg::from(k)], "is required")),
        }
    }
    Ok(())
}

fn field<'a>(
    v: &'a Value,
    at: &[Seg],
    k: &str,
    t: &str,
    required: bool,
) -> Result<Option<&'a Value>> {
    match v.get(k) {
        Some(x) if x.type_name() == t => Ok(Some(x)),
        Some(x) => {
            let mut p = at.to_vec();
            p.push(Seg::from(k));
            Err(bad(&p, format!("must be a {t}, not a {}", x.type_name())))
        }
        None if required => {
            let mut p = at.to_vec();
            p.push(Seg::from(k));
            Err(bad(&p, "is required"))
        }
        None => Ok(None),
    }
}

fn object(v: &Value, at: &[Seg]) -> Result<()> {
    if v.as_obj().is_none() {
        return Err(bad(
            at,
            format!("must be an object, not a {}", v.type_name()),
        ));
    }
    Ok(())
}

fn check_list(v: &Value, at: &[Seg], each: fn(&Value, &[Seg]) -> Result<()>) -> Result<()> {
    let Some(a) = v.as_arr() else {
        return Err(bad(at, "must be an array"));
    };
    for (i, x) in a.iter().enumerate() {
        let mut p = at.to_vec();
        p.push(Seg::Index(i));
        each(x, &p)?;
    }
    Ok(())
}

fn check_canvas(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    field(v, at, "width", "number", true)?;
    field(v, at, "height", "number", true)?;
    let layers = field(v, at, "layers", "array", true)?.unwrap_or(&Value::Null);
    let mut p = at.to_vec();
    p.push(Seg::from("layers"));
    check_list(layers, &p, check_layer)
}

fn check_timeline(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    let tracks = field(v, at, "tracks", "array", true)?.unwrap_or(&Value::Null);
    let mut p = at.to_vec();
    p.push(Seg::from("tracks"));
    check_list(tracks, &p, check_track)
}

fn check_assets(v: &Value, at: &[Seg]) -> Result<()> {
    let Some(m) = v.as_obj() else {
        return Err(bad(at, "must be an object"));
    };
    for (k, a) in m {
        let mut p = at.to_vec();
        p.push(Seg::from(k.as_str()));
        check_asset(a, &p)?;
    }
    Ok(())
}

fn one_of(v: Option<&Value>, at: &[Seg], k: &str, allowed: &[&str]) -> Result<()> {
    let ok = v
        .and_then(Value::as_text)
        .is_some_and(|t| allowed.iter().any(|a| t == *a));
    if ok {
        Ok(())
    } else {
        let mut p = at.to_vec();
        p.push(Seg::from(k));
        Err(bad(&p, format!("must be one of {}", allowed.join(", "))))
    }
}

fn check_asset(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    one_of(v.get("kind"), at, "kind", &["image", "video", "audio"])?;
    for k in ["width", "height", "duration"] {
        field(v, at, k, "number", false)?;
    }
    Ok(())
}

fn check_layer(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    field(v, at, "id", "string", true)?;
    one_of(v.get("kind"), at, "kind", &["image", "text"])?;
    let image = v
        .get("kind")
        .and_then(Value::as_text)
        .is_some_and(|t| t == "image");
    if image {
        field(v, at, "asset", "string", true)?;
        for k in ["x", "y", "w", "h"] {
            field(v, at, k, "number", true)?;
        }
        field(v, at, "rotation", "number", false)?;
        if let Some(o) = field(v, at, "opacity", "number", false)?.and_then(Value::as_f64)
            && !(0.0..=1.0).contains(&o)
        {
            let mut p = at.to_vec();
            p.push(Seg::from("opacity"));
            return Err(bad(&p, "must be within 0..=1"));
        }
        if let Some(c) = field(v, at, "crop", "object", false)? {
            let mut p = at.to_vec();
            p.push(Seg::from("crop"));
            for k in ["x", "y", "w", "h"] {
                field(c, &p, k, "number", true)?;
            }
        }
        if let Some(f) = field(v, at, "flip", "object", false)? {
            let mut p = at.to_vec();
            p.push(Seg::from("flip"));
            for k in ["h", "v"] {
                field(f, &p, k, "boolean", false)?;
            }
        }
        if let Some(a) = field(v, at, "adjust", "object", false)? {
            let mut p = at.to_vec();
            p.push(Seg::from("adjust"));
            for k in a.as_obj().into_iter().flat_map(|m| m.keys()) {
                let n = field(a, &p, k, "number", true)?.and_then(Value::as_f64);
                if let (Some(n), Some((lo, hi))) = (n, crate::apply::adjust_range(k))
                    && !(lo..=hi).contains(&n)
                {
                    let mut q = p.clone();
                    q.push(Seg::from(k.as_str()));
                    return Err(bad(&q, format!("must be within {lo}..={hi}")));
                }
            }
        }
    } else {
        field(v, at, "text", "string", true)?;
        for k in ["x", "y", "size"] {
            field(v, at, k, "number", true)?;
        }
        field(v, at, "color", "string", true)?;
    }
    Ok(())
}

fn check_track(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    field(v, at, "id", "string", true)?;
    one_of(v.get("kind"), at, "kind", &["video", "audio"])?;
    let clips = field(v, at, "clips", "array", true)?.unwrap_or(&Value::Null);
    let mut p = at.to_vec();
    p.push(Seg::from("clips"));
    check_list(clips, &p, check_clip)
}

fn check_clip(v: &Value, at: &[Seg]) -> Result<()> {
    object(v, at)?;
    field(v, at, "id", "string", true)?;
    field(v, at, "asset", "string", true)?;
    for k in ["start", "in", "out"] {
        field(v, at, k, "number", true)?;
    }
    Ok(())
}
