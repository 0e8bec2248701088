//! Who may do what: the roles check of the system design, used by every component, and the
//! token scope (DESIGN §9.1) through which an app's backend decides who sees which session.

use std::collections::BTreeMap;
use std::sync::Arc;

use montage_protocol::{MAX_ID_LEN, Role};

use crate::store::SessionMeta;

/// The most entries a `sessions` claim may hold: a token is checked on every message, so its
/// scope stays small; an app with more sessions per user names them by prefix.
pub const MAX_SCOPE_ENTRIES: usize = 256;

/// The `sessions` claim of a token: exact session ids and `prefix*` patterns, each with the role
/// the token holder has there. A token with a scope reaches only the sessions it names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    exact: BTreeMap<String, Role>,
    /// Longest prefix first, so the first match is the most specific one.
    prefixes: Vec<(String, Role)>,
}

impl Scope {
    /// Builds the scope from the claim, or says what is wrong with it.
    pub fn from_claim(claim: &BTreeMap<String, Role>) -> Result<Scope, String> {
        if claim.len() > MAX_SCOPE_ENTRIES {
            return Err(format!(
                "the sessions claim names {} entries; at most {MAX_SCOPE_ENTRIES}",
                claim.len()
            ));
        }
        let mut scope = Scope::default();
        for (pattern, role) in claim {
            if pattern.is_empty()
                || pattern.len() > MAX_ID_LEN
                || pattern.chars().any(char::is_control)
            {
                return Err(format!("bad session pattern {pattern:?}"));
            }
            match pattern.strip_suffix('*') {
                Some(prefix) if !prefix.contains('*') => {
                    scope.prefixes.push((prefix.to_owned(), *role))
                }
                None if !pattern.contains('*') => {
                    scope.exact.insert(pattern.clone(), *role);
                }
                _ => {
                    return Err(format!(
                        "bad session pattern {pattern:?}: `*` may only end it"
                    ));
                }
            }
        }
        scope.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Ok(scope)
    }

    /// The role the scope gives in `session`, or `None` when it does not name it. An exact id
    /// beats every prefix; among prefixes the longest wins.
    pub fn role_in(&self, session: &str) -> Option<Role> {
        if let Some(r) = self.exact.get(session) {
            return Some(*r);
        }
        self.prefixes
            .iter()
            .find(|(p, _)| session.starts_with(p.as_str()))
            .map(|(_, r)| *r)
    }
}

/// Who is asking: the token's user and, when the token carries one, its scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user: Arc<str>,
    pub scope: Option<Arc<Scope>>,
}

impl Principal {
    pub fn new(user: impl Into<Arc<str>>, scope: Option<Arc<Scope>>) -> Principal {
        Principal {
            user: user.into(),
            scope,
        }
    }

    /// The user's effective role in `session`: the scope's when the token has one (stored grants
    /// and the link role aside), else the stored grant or the link role.
    pub fn role_in(&self, session: &str, meta: &SessionMeta) -> Role {
        role_in(&self.user, self.scope.as_deref(), session, meta)
    }

    /// May this token create `session` (becoming its owner)? Without a scope, yes; with one,
    /// only where the scope makes it the owner.
    pub fn may_create(&self, session: &str) -> bool {
        match &self.scope {
            Some(s) => s.role_in(session) == Some(Role::Owner),
            None => true,
        }
    }
}

/// The effective role of `user` holding a token with `scope` in `session`: the scope's when
/// there is one (stored grants and the link role aside), else the stored grant or the link role.
/// The one place this rule lives.
pub fn role_in(user: &str, scope: Option<&Scope>, session: &str, meta: &SessionMeta) -> Role {
    match scope {
        Some(s) => s.role_in(session).unwrap_or(Role::Removed),
        None => meta.role_of(user),
    }
}

/// The roles check of the system design: may `who` do what needs `required` in `session`?
pub fn check_permission(
    meta: &SessionMeta,
    session: &str,
    who: &Principal,
    required: Role,
) -> bool {
    who.role_in(session, meta) >= required
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn scope(entries: &[(&str, Role)]) -> Result<Scope, String> {
        Scope::from_claim(&entries.iter().map(|(k, r)| (k.to_string(), *r)).collect())
    }

    fn meta(link: Role) -> SessionMeta {
        SessionMeta {
            owner: "alice".into(),
            link_role: link,
            roles: HashMap::from([("alice".to_string(), Role::Owner)]),
            title: None,
            encrypted: false,
            key_epoch: 0,
        }
    }

    #[test]
    fn exact_beats_the_longest_prefix_and_unnamed_is_none() {
        let s = scope(&[
            ("team-*", Role::Viewer),
            ("team-a-*", Role::Editor),
            ("team-a-brief", Role::Commenter),
        ])
        .unwrap();
        assert_eq!(s.role_in("team-b-x"), Some(Role::Viewer));
        assert_eq!(s.role_in("team-a-x"), Some(Role::Editor));
        assert_eq!(s.role_in("team-a-brief"), Some(Role::Commenter));
        assert_eq!(s.role_in("other"), None);
        let p = Principal::new("alice", Some(Arc::new(s)));
        // The scope wins over the stored owner grant and the link role.
        assert_eq!(p.role_in("other", &meta(Role::Editor)), Role::Removed);
        assert_eq!(p.role_in("team-a-x", &meta(Role::Viewer)), Role::Editor);
        assert!(!p.may_create("team-a-x"));
    }

    #[test]
    fn without_a_scope_grants_and_link_role_decide() {
        let p = Principal::new("bob", None);
        assert_eq!(p.role_in("s", &meta(Role::Removed)), Role::Removed);
        assert_eq!(p.role_in("s", &meta(Role::Commenter)), Role::Commenter);
        assert!(Principal::new("alice", None).role_in("s", &meta(Role::Removed)) == Role::Owner);
        assert!(p.may_create("anything"));
    }

    #[test]
    fn bad_claims_are_refused() {
        assert!(scope(&[("a*b", Role::Viewer)]).is_err());
        assert!(scope(&[("**", Role::Viewer)]).is_err());
        assert!(scope(&[("", Role::Viewer)]).is_err());
        let many: Vec<(String, Role)> = (0..=MAX_SCOPE_ENTRIES)
            .map(|i| (format!("s{i}"), Role::Viewer))
            .collect();
        assert!(Scope::from_claim(&many.into_iter().collect()).is_err());
        // `*` alone names every session.
        assert_eq!(
            scope(&[("*", Role::Viewer)]).unwrap().role_in("x"),
            Some(Role::Viewer)
        );
    }
}
