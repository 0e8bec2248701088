//! Who may do what: the roles check of the system design, used by every component.

use montage_protocol::Role;

use crate::store::SessionMeta;

/// The roles check of the system design: may `user` do what needs `required`?
pub fn check_permission(meta: &SessionMeta, user: &str, required: Role) -> bool {
    meta.role_of(user) >= required
}
