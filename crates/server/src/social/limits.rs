//! Limits of comments and suggestions (docs/PROTOCOL.md, "Comments").

/// Characters (Unicode scalar values) in a comment's content.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Annotations on one comment.
pub const MAX_ANNOTATIONS: usize = 16;
/// Bytes of one annotation's `drawing`, as JSON.
pub const MAX_DRAWING_BYTES: usize = 64 * 1024;
/// Comments (tombstones included) in one session.
pub const MAX_COMMENTS: usize = 10_000;
/// Users named with `@` that one comment records.
pub const MAX_MENTIONS: usize = 32;
/// Bytes of one reaction emoji.
pub const MAX_EMOJI_BYTES: usize = 32;
/// Different emojis on one comment.
pub const MAX_REACTION_KINDS: usize = 32;
/// Pending suggestions in one session.
pub const MAX_PENDING_SUGGESTIONS: usize = 1_000;
/// Suggestions (any status) in one session.
pub const MAX_SUGGESTIONS: usize = 10_000;
/// Characters in a suggestion's note.
pub const MAX_NOTE_CHARS: usize = 2_000;
