//! Ids in URL paths: a session id may hold any printable character, so every HTTP path the
//! clients and the server build escapes it as one segment.

use std::fmt::Display;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Escaped in a URL path segment: controls, space, non-ASCII (always), `%` itself, the bytes
/// that end or split a segment (`/ ? #`, and `\`, which URL parsers read as `/`), and the rest of
/// the URL standard's path set (`" < > ` { }`).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\');

/// `s` as one URL path segment, e.g. `/v1/sessions/{path_segment(id)}/ops`. Servers decode it
/// back (axum's `Path` does). The ids `.` and `..` can't be sent this way: URL parsers resolve
/// them even escaped.
pub fn path_segment(s: &str) -> impl Display + '_ {
    utf8_percent_encode(s, PATH_SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_keeps_its_separators_escaped() {
        assert_eq!(path_segment("a/b?c").to_string(), "a%2Fb%3Fc");
        assert_eq!(path_segment("x #%é\\").to_string(), "x%20%23%25%C3%A9%5C");
        assert_eq!(path_segment("plain-id_1.2~").to_string(), "plain-id_1.2~");
    }
}
