//! HS256 JWTs: claims, signing, verification, and the secret kept in the data dir.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use montage_protocol::{MAX_ID_LEN, Role};
use serde::{Deserialize, Serialize};

use crate::access::{Principal, Scope};
use crate::error::{Error, Result};

/// The file in the data dir that holds the generated secret.
pub const SECRET_FILE: &str = "jwt-secret";

/// Token claims: `sub` is the user id; `sessions`, when present, limits the token to the
/// sessions it names (DESIGN §9.1, `crate::access::Scope`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: u64,
    /// Not before (seconds since the epoch): the token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<BTreeMap<String, Role>>,
}

impl Claims {
    /// The caller these claims describe (the scope is checked when the token is verified).
    pub fn principal(&self) -> Principal {
        let scope = self
            .sessions
            .as_ref()
            .and_then(|c| Scope::from_claim(c).ok())
            .map(Arc::new);
        Principal::new(self.sub.as_str(), scope)
    }
}

/// Signs and verifies tokens with one HS256 key.
#[derive(Clone)]
pub struct Auth {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(HS256)")
    }
}

use crate::clock::now_secs;

impl Auth {
    pub fn new(secret: &[u8]) -> Result<Auth> {
        if secret.is_empty() {
            return Err(Error::EmptySecret);
        }
        // Only HS256: a token whose header names another algorithm (or `none`) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Auth {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
        })
    }

    pub fn issue(&self, user: &str, name: Option<&str>, ttl: Duration) -> Result<String> {
        let claims = Claims {
            sub: user.to_owned(),
            name: name.map(str::to_owned),
            exp: now_secs() + ttl.as_secs(),
            nbf: None,
            sessions: None,
        };
        self.sign(&claims)
    }

    /// Signs any claims (tests and `montage token --sessions` use it for scoped tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.enc,
        )?)
    }

    /// Checks signature, algorithm and expiry, and that `sub` is a usable user id.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation)?;
        let c = data.claims;
        // A token is good up to, not including, its `exp` second (the socket checks the same).
        if c.exp <= now_secs() {
            return Err(Error::Token(
                jsonwebtoken::errors::ErrorKind::ExpiredSignature.into(),
            ));
        }
        if c.nbf.is_some_and(|nbf| nbf > now_secs()) {
            return Err(Error::Token(
                jsonwebtoken::errors::ErrorKind::ImmatureSignature.into(),
            ));
        }
        if c.sub.is_empty() || c.sub.len() > MAX_ID_LEN || c.sub.chars().any(char::is_control) {
            return Err(Error::Token(
                jsonwebtoken::errors::ErrorKind::InvalidSubject.into(),
            ));
        }
        if let Some(claim) = &c.sessions {
            Scope::from_claim(claim).map_err(Error::BadScope)?;
        }
        Ok(c)
    }
}

pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// Reads the generated secret from the data dir, if there is one.
pub fn read_secret(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = secret_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Err(Error::EmptySecret);
            }
            Ok(Some(s.as_bytes().to_vec()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path, source }),
    }
}

/// Returns the data dir's secret, creating a random one (mode 0600) if there is none yet.
/// The flag is true when it was just created.
pub fn load_or_create_secret(data_dir: &Path) -> Result<(Vec<u8>, bool)> {
    if let Some(s) = read_secret(data_dir)? {
        return Ok((s, false));
    }
    let path = secret_path(data_dir);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // create_new: two servers starting at once must not overwrite each other's secret.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(hex.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok((hex.into_bytes(), true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(data_dir)?
            .map(|s| (s, false))
            .ok_or(Error::NoSecret(path.clone())),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let a = Auth::new(b"secret-one").unwrap();
        let t = a
            .issue("alice", Some("Alice"), Duration::from_secs(60))
            .unwrap();
        let c = a.verify(&t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.name.as_deref()),
            ("alice", Some("Alice"))
        );
        let b = Auth::new(b"secret-two").unwrap();
        assert!(b.verify(&t).is_err(), "forged signature accepted");
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "alice".into(),
                name: None,
                exp: now_secs() - 5,
                nbf: None,
                sessions: None,
            },
            &EncodingKey::from_secret(b"secret-one"),
        )
        .unwrap();
        assert!(a.verify(&expired).is_err(), "expired token accepted");
        // {"alg":"none"} with the same claims and an empty signature.
        let payload = t.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(a.verify(&none).is_err(), "alg none accepted");
        assert!(Auth::new(b"").is_err());
    }

    #[test]
    fn secret_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (s1, created) = load_or_create_secret(dir.path()).unwrap();
        assert!(created);
        let (s2, created) = load_or_create_secret(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(s1, s2);
        let mode = std::fs::metadata(secret_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
