//! Secrets out of logs and `Debug` output: one redaction for URLs and fields that may hold them.

/// What `Debug` prints in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// `url` fit for logs: a password in it (`scheme://user:PASSWORD@host`) and the values of its
/// query (`?password=…`, `?token=…`) are replaced by `[redacted]`. Text that is not a URL is
/// left alone unless it has an `@` (then it is redacted whole).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') {
            REDACTED.to_owned()
        } else {
            url.to_owned()
        };
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_query_values() {
        for (url, want) in [
            (
                "postgres://u:p@h:5432/db",
                "postgres://u:[redacted]@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?sslmode=require&password=p",
                "postgres://h/db?sslmode=[redacted]&password=[redacted]",
            ),
            ("nats://tok@h:4222", "nats://tok@h:4222"),
            ("nats://u:p:q@h", "nats://u:[redacted]@h"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("user:pass@host", "[redacted]"),
            ("file:///var/lib/montage", "file:///var/lib/montage"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
