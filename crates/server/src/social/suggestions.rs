//! Suggestions: a commenter's edit kept as pending until an editor accepts it (the actor then
//! transforms it to the head and commits it as a normal edit credited to its author) or rejects
//! it. The actor serialises decisions, so a suggestion is applied at most once; the edit it
//! becomes carries the idempotency key `(author, "suggestion:<id>", 1)`, so even a retry after a
//! crash between the edit and the status write finds the stored version instead of applying
//! it again.

use montage_ot::Op;
use montage_protocol::{ErrorCode, Role, Suggestion, SuggestionStatus};

use super::{Social, SocialError, refuse};
use crate::social::limits::*;

/// The client id under which an accepted suggestion's edit is stored (seq 1).
pub fn edit_client(id: &str) -> String {
    format!("suggestion:{id}")
}

impl Social {
    /// Checks a new suggestion (the ops are checked against the document by the caller).
    pub fn check_suggest(&self, role: Role, note: &str) -> Result<(), SocialError> {
        if role < Role::Commenter {
            return Err(refuse(
                ErrorCode::Forbidden,
                format!("{} may not suggest", role.as_str()),
            ));
        }
        let n = note.chars().count();
        if n > MAX_NOTE_CHARS {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("a note is limited to {MAX_NOTE_CHARS} characters, got {n}"),
            ));
        }
        let pending = self
            .suggestions
            .iter()
            .filter(|s| s.status == SuggestionStatus::Pending)
            .count();
        if pending >= MAX_PENDING_SUGGESTIONS || self.suggestions.len() >= MAX_SUGGESTIONS {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!(
                    "a session holds at most {MAX_PENDING_SUGGESTIONS} pending and \
                     {MAX_SUGGESTIONS} suggestions in all"
                ),
            ));
        }
        Ok(())
    }

    /// Stores a checked suggestion as pending.
    #[allow(clippy::too_many_arguments)]
    pub fn add_suggestion(
        &mut self,
        id: String,
        author: &str,
        base: u64,
        ops: Op,
        note: String,
        timestamp: String,
    ) -> &Suggestion {
        self.suggestion_index
            .insert(id.clone(), self.suggestions.len());
        self.suggestions.push(Suggestion {
            id,
            author_id: author.to_owned(),
            base,
            ops,
            note,
            status: SuggestionStatus::Pending,
            timestamp,
            version: None,
            credited: None,
            decided_by: None,
        });
        &self.suggestions[self.suggestions.len() - 1]
    }

    /// The pending suggestion an editor may decide on.
    pub fn decidable(&self, role: Role, id: &str) -> Result<&Suggestion, SocialError> {
        if role < Role::Editor {
            return Err(refuse(
                ErrorCode::Forbidden,
                format!("{} may not accept or reject suggestions", role.as_str()),
            ));
        }
        let s = self
            .suggestion(id)
            .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no suggestion {id}")))?;
        match s.status {
            SuggestionStatus::Pending => Ok(s),
            SuggestionStatus::Accepted => Err(refuse(
                ErrorCode::Conflict,
                format!("suggestion {id} was already accepted"),
            )),
            SuggestionStatus::Rejected => Err(refuse(
                ErrorCode::Conflict,
                format!("suggestion {id} was already rejected"),
            )),
        }
    }

    /// Records a decision; `version` is where an accepted one was applied.
    pub fn decide(&mut self, id: &str, by: &str, version: Option<u64>) -> Option<&Suggestion> {
        let i = *self.suggestion_index.get(id)?;
        let s = &mut self.suggestions[i];
        s.decided_by = Some(by.to_owned());
        match version {
            Some(v) => {
                s.status = SuggestionStatus::Accepted;
                s.version = Some(v);
                s.credited = Some(s.author_id.clone());
            }
            None => s.status = SuggestionStatus::Rejected,
        }
        Some(s)
    }

    /// After a reload: an acceptance whose edit never became durable (the write failed after
    /// the status was stored) is pending again. Returns the ids changed.
    pub fn repair(&mut self, head: u64) -> Vec<String> {
        let mut out = Vec::new();
        for s in &mut self.suggestions {
            if s.status == SuggestionStatus::Accepted && s.version.is_some_and(|v| v > head) {
                s.status = SuggestionStatus::Pending;
                s.version = None;
                s.credited = None;
                s.decided_by = None;
                out.push(s.id.clone());
            }
        }
        out
    }
}
