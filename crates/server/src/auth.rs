//! HS256 JWTs: claims, signing, verification, and the secret kept in the data dir.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
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

/// The shortest JWT secret accepted, in bytes: HS256 keys shorter than its 256-bit output can
/// be guessed offline from any one token. The generated secret is 64 hex characters.
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses an empty or short secret, whatever it came from.
pub fn check_secret(secret: &[u8]) -> Result<()> {
    if secret.is_empty() {
        return Err(Error::EmptySecret);
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(Error::WeakSecret {
            len: secret.len(),
            min: MIN_SECRET_BYTES,
        });
    }
    Ok(())
}

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
    /// Every server and `montage token` goes through here, so a secret shorter than
    /// [`MIN_SECRET_BYTES`] is refused whatever it came from.
    pub fn new(secret: &[u8]) -> Result<Auth> {
        check_secret(secret)?;
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

/// Reads the generated secret from the data dir, if there is one. A file that group or others
/// may read, or that holds an empty or short secret, is refused with what to do about it.
pub fn read_secret(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = secret_path(data_dir);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    // The mode of the file opened, not of whatever the path names a moment later.
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & crate::files::OPEN_TO_OTHERS != 0 {
        return Err(Error::SecretFileOpen { path, mode });
    }
    let mut s = String::new();
    file.read_to_string(&mut s).map_err(io)?;
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::EmptySecret);
    }
    if s.len() < MIN_SECRET_BYTES {
        return Err(Error::WeakSecretFile {
            path,
            len: s.len(),
            min: MIN_SECRET_BYTES,
        });
    }
    Ok(Some(s.as_bytes().to_vec()))
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
    match crate::files::create_private_file(&path) {
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

    const ONE: &[u8] = b"secret-one-0123456789abcdef-0123456789";
    const TWO: &[u8] = b"secret-two-0123456789abcdef-0123456789";

    #[test]
    fn round_trip_and_rejections() {
        let a = Auth::new(ONE).unwrap();
        let t = a
            .issue("alice", Some("Alice"), Duration::from_secs(60))
            .unwrap();
        let c = a.verify(&t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.name.as_deref()),
            ("alice", Some("Alice"))
        );
        let b = Auth::new(TWO).unwrap();
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
            &EncodingKey::from_secret(ONE),
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

    #[test]
    fn not_before_is_honoured() {
        let a = Auth::new(ONE).unwrap();
        let claims = |nbf| Claims {
            sub: "alice".into(),
            name: None,
            exp: now_secs() + 600,
            nbf: Some(nbf),
            sessions: None,
        };
        let later = a.sign(&claims(now_secs() + 300)).unwrap();
        assert!(
            matches!(a.verify(&later), Err(Error::Token(e))
                if *e.kind() == jsonwebtoken::errors::ErrorKind::ImmatureSignature),
            "a token not valid before five minutes from now was accepted"
        );
        let earlier = a.sign(&claims(now_secs() - 300)).unwrap();
        assert_eq!(a.verify(&earlier).unwrap().sub, "alice");
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(Auth::new(b""), Err(Error::EmptySecret)));
        let short = [b'x'; MIN_SECRET_BYTES - 1];
        let e = Auth::new(&short).unwrap_err();
        assert!(matches!(e, Error::WeakSecret { len: 31, .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("openssl rand -hex 32"), "{msg}");
        Auth::new(&[b'x'; MIN_SECRET_BYTES]).unwrap();
        // The generated secret passes (64 hex characters).
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(s.len(), 64);
        Auth::new(&s).unwrap();
    }

    #[test]
    fn a_short_or_readable_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_path(dir.path());
        std::fs::write(&path, "integration-test-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_secret(dir.path()).unwrap_err();
        assert!(matches!(e, Error::WeakSecretFile { len: 23, .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("Delete"),
            "{msg}"
        );
        // load_or_create_secret does not replace it: the operator decides.
        assert!(load_or_create_secret(dir.path()).is_err());

        std::fs::write(&path, "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(read_secret(dir.path()).unwrap().unwrap().len(), 32);
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_secret(dir.path()).unwrap_err();
            assert!(
                matches!(e, Error::SecretFileOpen { mode: m, .. } if m == mode),
                "{e}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_secret(dir.path()).unwrap().is_some());
    }
}
