//! Comments: validation, threads, edit, tombstone delete, resolve, reactions, mentions, and
//! keeping targeted anchors on their layer or clip.

use std::collections::BTreeMap;

use montage_ot::Value;
use montage_ot::orset::OrSet;
use montage_protocol::{Annotation, Comment, ErrorCode, NewComment, Role};
use serde::{Deserialize, Serialize};

use super::anchors::{self, Frame};
use super::{REPLICA, Social, SocialError, bad, refuse};
use crate::social::limits::*;

/// A comment as stored: the wire comment plus what only the server needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentRecord {
    /// `reactions` here is derived from `reaction_set` after every change.
    pub comment: Comment,
    /// (emoji, user) pairs: an add-wins OR-set.
    #[serde(default)]
    pub reaction_set: OrSet<(String, String)>,
    /// Per annotation, where its target was when it was last placed.
    #[serde(default)]
    pub frames: Vec<Option<Frame>>,
}

impl CommentRecord {
    fn refresh_reactions(&mut self) {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (emoji, user) in self.reaction_set.iter() {
            m.entry(emoji.clone()).or_default().push(user.clone());
        }
        self.comment.reactions = m;
    }
}

/// The users named as `@user` in `content` (a `@` at the start or after a non-word character,
/// so e-mail addresses don't count), first mention first, each once.
pub fn mentions(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = content.chars().collect();
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' && (i == 0 || !word(chars[i - 1])) {
            let mut j = i + 1;
            while j < chars.len() && word(chars[j]) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            let name = name.trim_end_matches('.');
            if !name.is_empty()
                && name.len() <= montage_protocol::MAX_ID_LEN
                && !out.iter().any(|m| m == name)
                && out.len() < MAX_MENTIONS
            {
                out.push(name.to_owned());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn check_content(content: &str, may_be_empty: bool) -> Result<(), SocialError> {
    let n = content.chars().count();
    if n > MAX_COMMENT_CHARS {
        return Err(refuse(
            ErrorCode::TooLarge,
            format!("content is limited to {MAX_COMMENT_CHARS} characters, got {n}"),
        ));
    }
    if !may_be_empty && content.trim().is_empty() {
        return Err(bad("content is empty"));
    }
    Ok(())
}

fn check_id(field: &str, s: &str) -> Result<(), SocialError> {
    if s.is_empty() || s.len() > montage_protocol::MAX_ID_LEN || s.chars().any(char::is_control) {
        return Err(bad(format!(
            "{field} must be 1..={} bytes without control characters",
            montage_protocol::MAX_ID_LEN
        )));
    }
    Ok(())
}

/// The pixel box and duration a region/time without a target is checked against: the asset's
/// when the comment names one the document describes, else the canvas.
fn bounds(doc: &Value, asset_id: &str) -> (Option<(f64, f64)>, Option<f64>) {
    let dim = |v: &Value| {
        let w = v.get("width").and_then(Value::as_f64)?;
        let h = v.get("height").and_then(Value::as_f64)?;
        Some((w, h))
    };
    if !asset_id.is_empty() {
        let a = doc.get("assets").and_then(|a| a.get(asset_id));
        return (
            a.and_then(dim),
            a.and_then(|a| a.get("duration")).and_then(Value::as_f64),
        );
    }
    (doc.get("canvas").and_then(dim), None)
}

/// Checks one annotation against the document; returns its target's frame.
fn check_annotation(
    i: usize,
    a: &Annotation,
    doc: &Value,
    asset_id: &str,
) -> Result<Option<Frame>, SocialError> {
    let at = |m: String| bad(format!("annotation {i}: {m}"));
    if a.region.is_none() && a.time.is_none() && a.drawing.is_none() {
        return Err(at("needs a region, a time or a drawing".into()));
    }
    if a.orphaned {
        return Err(at("orphaned is set by the server".into()));
    }
    let frame = match &a.target {
        Some(t) => {
            check_id("target", t).map_err(|e| at(e.message))?;
            Some(anchors::locate(doc, t).ok_or_else(|| at(format!("no layer or clip {t:?}")))?)
        }
        None => None,
    };
    let (mut size, duration) = bounds(doc, asset_id);
    if frame.is_some() {
        // Targeted anchors live in canvas pixels and timeline seconds.
        size = bounds(doc, "").0;
    }
    if let Some(r) = &a.region {
        if ![r.x, r.y, r.w, r.h].iter().all(|v| v.is_finite()) {
            return Err(at("region values must be finite numbers".into()));
        }
        if r.x < 0.0 || r.y < 0.0 || r.w <= 0.0 || r.h <= 0.0 {
            return Err(at("region needs x, y ≥ 0 and w, h > 0".into()));
        }
        if let Some((w, h)) = size
            && (r.x + r.w > w || r.y + r.h > h)
        {
            return Err(at(format!("region lies outside the {w}×{h} picture")));
        }
    }
    if let Some(t) = &a.time {
        if !t.start.is_finite() || !t.end.is_finite() || t.start < 0.0 {
            return Err(at("time needs finite start ≥ 0 and end".into()));
        }
        if t.end < t.start {
            return Err(at(format!(
                "time ends ({}) before it starts ({})",
                t.end, t.start
            )));
        }
        let span = match &frame {
            Some(f) => f.span(),
            None => duration.map(|d| (0.0, d)),
        };
        if let Some((lo, hi)) = span
            && (t.start < lo || t.end > hi)
        {
            return Err(at(format!("time lies outside {lo}..{hi} s")));
        }
    }
    if let Some(d) = &a.drawing {
        let n = serde_json::to_string(d)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if n > MAX_DRAWING_BYTES {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("annotation {i}: drawing is limited to {MAX_DRAWING_BYTES} bytes"),
            ));
        }
    }
    Ok(frame)
}

fn may_comment(role: Role) -> Result<(), SocialError> {
    if role < Role::Commenter {
        return Err(refuse(
            ErrorCode::Forbidden,
            format!("{} may not comment", role.as_str()),
        ));
    }
    Ok(())
}

/// Empties a comment into a tombstone that keeps its place in its thread.
fn tombstone(rec: &mut CommentRecord) {
    rec.comment.deleted = true;
    rec.comment.content.clear();
    rec.comment.annotations.clear();
    rec.comment.mentions.clear();
    rec.frames.clear();
    let all: Vec<_> = rec.reaction_set.iter().cloned().collect();
    for e in all {
        rec.reaction_set.remove(&e);
    }
    rec.refresh_reactions();
}

impl Social {
    fn live_mut(&mut self, id: &str) -> Result<&mut CommentRecord, SocialError> {
        let i = *self
            .comment_index
            .get(id)
            .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no comment {id}")))?;
        let rec = &mut self.comments[i];
        if rec.comment.deleted {
            return Err(bad(format!("comment {id} is deleted")));
        }
        Ok(rec)
    }

    /// A new comment or reply by `author`.
    pub fn add_comment(
        &mut self,
        author: &str,
        role: Role,
        new: NewComment,
        doc: &Value,
        id: String,
        timestamp: String,
    ) -> Result<&CommentRecord, SocialError> {
        may_comment(role)?;
        check_content(&new.content, !new.annotations.is_empty())?;
        if self.comments.len() >= MAX_COMMENTS {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("a session holds at most {MAX_COMMENTS} comments"),
            ));
        }
        if let Some(p) = &new.parent_id {
            match self.comment(p) {
                None => return Err(bad(format!("no parent comment {p}"))),
                Some(r) if r.comment.deleted => {
                    return Err(bad(format!("parent comment {p} is deleted")));
                }
                Some(_) => {}
            }
        }
        let asset_id = new.asset_id.unwrap_or_default();
        if !asset_id.is_empty() {
            check_id("asset_id", &asset_id)?;
        }
        if new.annotations.len() > MAX_ANNOTATIONS {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("at most {MAX_ANNOTATIONS} annotations per comment"),
            ));
        }
        let frames = new
            .annotations
            .iter()
            .enumerate()
            .map(|(i, a)| check_annotation(i, a, doc, &asset_id))
            .collect::<Result<Vec<_>, _>>()?;
        let comment = Comment {
            id: id.clone(),
            asset_id,
            author_id: author.to_owned(),
            mentions: mentions(&new.content),
            content: new.content,
            timestamp,
            parent_id: new.parent_id,
            annotations: new.annotations,
            ..Comment::default()
        };
        self.comment_index.insert(id, self.comments.len());
        self.comments.push(CommentRecord {
            comment,
            reaction_set: OrSet::new(),
            frames,
        });
        Ok(&self.comments[self.comments.len() - 1])
    }

    /// The author changes the content (mentions are taken again).
    pub fn edit_comment(
        &mut self,
        user: &str,
        role: Role,
        id: &str,
        content: String,
    ) -> Result<&CommentRecord, SocialError> {
        may_comment(role)?;
        let rec = self.live_mut(id)?;
        if rec.comment.author_id != user {
            return Err(refuse(
                ErrorCode::Forbidden,
                "only the author may edit a comment",
            ));
        }
        check_content(&content, !rec.comment.annotations.is_empty())?;
        rec.comment.mentions = mentions(&content);
        rec.comment.content = content;
        rec.comment.edited = true;
        Ok(rec)
    }

    /// The ids of the thread rooted at `root`: it and every reply below it, in order.
    pub fn thread(&self, root: &str) -> Vec<String> {
        let mut ids = vec![root.to_owned()];
        // Replies come after what they reply to, so one pass in creation order finds them all.
        for r in &self.comments {
            if r.comment
                .parent_id
                .as_ref()
                .is_some_and(|p| ids.contains(p))
            {
                ids.push(r.comment.id.clone());
            }
        }
        ids
    }

    /// Brings the thread rooted at `root` back to how it was: each comment of it in `old` (its
    /// record then) takes that record back; one with `None` (made after) becomes a tombstone;
    /// one not in `old` at all (no history kept for it, e.g. older than history) stays as it is.
    /// Returns the comments that changed.
    pub fn restore_thread(
        &mut self,
        root: &str,
        old: &std::collections::HashMap<String, Option<CommentRecord>>,
    ) -> Result<Vec<&CommentRecord>, SocialError> {
        if !self.comment_index.contains_key(root) {
            return Err(refuse(ErrorCode::NotFound, format!("no comment {root}")));
        }
        let mut changed = Vec::new();
        for id in self.thread(root) {
            let Some(then) = old.get(&id) else { continue };
            let Some(&i) = self.comment_index.get(&id) else {
                continue;
            };
            let rec = &mut self.comments[i];
            match then {
                Some(then) if *rec != *then => *rec = then.clone(),
                Some(_) => continue,
                None if rec.comment.deleted => continue,
                None => tombstone(rec),
            }
            changed.push(i);
        }
        Ok(changed.into_iter().map(|i| &self.comments[i]).collect())
    }

    /// A tombstone: content, annotations, mentions and reactions go; the comment keeps its
    /// place in the thread so replies stay attached.
    pub fn delete_comment(
        &mut self,
        user: &str,
        role: Role,
        id: &str,
    ) -> Result<&CommentRecord, SocialError> {
        may_comment(role)?;
        let rec = self.live_mut(id)?;
        if rec.comment.author_id != user && role < Role::Owner {
            return Err(refuse(
                ErrorCode::Forbidden,
                "only the author or an owner may delete a comment",
            ));
        }
        tombstone(rec);
        Ok(rec)
    }

    pub fn resolve_comment(
        &mut self,
        role: Role,
        id: &str,
        resolved: bool,
    ) -> Result<&CommentRecord, SocialError> {
        may_comment(role)?;
        let rec = self.live_mut(id)?;
        rec.comment.resolved = resolved;
        Ok(rec)
    }

    /// `user` turns their `emoji` reaction on or off. On: an add with a fresh dot unless it is
    /// already there; off: an observed remove.
    pub fn react(
        &mut self,
        user: &str,
        role: Role,
        id: &str,
        emoji: String,
        on: bool,
    ) -> Result<&CommentRecord, SocialError> {
        may_comment(role)?;
        if emoji.is_empty()
            || emoji.len() > MAX_EMOJI_BYTES
            || emoji.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(bad(format!(
                "emoji must be 1..={MAX_EMOJI_BYTES} bytes without spaces"
            )));
        }
        let rec = self.live_mut(id)?;
        let key = (emoji, user.to_owned());
        if on {
            if !rec.reaction_set.contains(&key) {
                if !rec.comment.reactions.contains_key(&key.0)
                    && rec.comment.reactions.len() >= MAX_REACTION_KINDS
                {
                    return Err(refuse(
                        ErrorCode::TooLarge,
                        format!("at most {MAX_REACTION_KINDS} different reactions per comment"),
                    ));
                }
                rec.reaction_set.add(REPLICA, key);
            }
        } else {
            rec.reaction_set.remove(&key);
        }
        rec.refresh_reactions();
        Ok(rec)
    }

    /// Whether any anchor follows a target (so edits must be checked against them).
    pub fn has_targets(&self) -> bool {
        self.comments
            .iter()
            .any(|r| r.frames.iter().any(Option::is_some) && !r.comment.deleted)
    }

    /// Brings every targeted anchor up to date with `doc`; returns the changed comments' ids.
    pub fn follow_anchors(&mut self, doc: &Value) -> Vec<String> {
        let mut changed = Vec::new();
        for rec in &mut self.comments {
            if rec.comment.deleted {
                continue;
            }
            let mut any = false;
            for (a, f) in rec
                .comment
                .annotations
                .iter_mut()
                .zip(rec.frames.iter_mut())
            {
                any |= anchors::follow(a, f, doc);
            }
            if any {
                changed.push(rec.comment.id.clone());
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use montage_protocol::Region;
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        Value::from_json(
            &json!({"assets": {"a1": {"kind": "image", "width": 640, "height": 480}},
            "canvas": {"width": 1920, "height": 1080, "layers": [
                {"id": "L1", "kind": "image", "asset": "a1", "x": 0, "y": 0, "w": 640, "h": 480}]},
            "timeline": {"tracks": []}}),
        )
    }

    fn region(x: f64, y: f64, w: f64, h: f64) -> Annotation {
        Annotation {
            region: Some(Region { x, y, w, h }),
            ..Annotation::default()
        }
    }

    fn new(content: &str, annotations: Vec<Annotation>) -> NewComment {
        NewComment {
            content: content.into(),
            annotations,
            ..NewComment::default()
        }
    }

    #[test]
    fn mentions_are_parsed_once_each_and_not_from_emails() {
        assert_eq!(
            mentions("@bob see this, @carol.d. and @bob again; mail x@y.com @"),
            vec!["bob", "carol.d"]
        );
    }

    #[test]
    fn regions_are_checked_against_the_asset_or_the_canvas() {
        let mut s = Social::default();
        let d = doc();
        let mut n = new("x", vec![region(600.0, 0.0, 100.0, 10.0)]);
        n.asset_id = Some("a1".into());
        let e = s
            .add_comment("u", Role::Commenter, n, &d, "c1".into(), "t".into())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
        // The same region on the canvas fits.
        let n = new("x", vec![region(600.0, 0.0, 100.0, 10.0)]);
        s.add_comment("u", Role::Commenter, n, &d, "c1".into(), "t".into())
            .unwrap();
        let e = s
            .add_comment(
                "v",
                Role::Viewer,
                new("x", vec![]),
                &d,
                "c2".into(),
                "t".into(),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
    }

    #[test]
    fn a_deleted_comment_is_a_tombstone() {
        let mut s = Social::default();
        let d = doc();
        s.add_comment(
            "u",
            Role::Commenter,
            new("hi @w", vec![]),
            &d,
            "c1".into(),
            "t".into(),
        )
        .unwrap();
        s.react("w", Role::Commenter, "c1", "👍".into(), true)
            .unwrap();
        let e = s.delete_comment("w", Role::Editor, "c1").unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        let r = s.delete_comment("w", Role::Owner, "c1").unwrap();
        assert!(r.comment.deleted && r.comment.content.is_empty());
        assert!(r.comment.reactions.is_empty() && r.comment.mentions.is_empty());
        assert!(
            s.edit_comment("u", Role::Commenter, "c1", "again".into())
                .is_err()
        );
    }
}
