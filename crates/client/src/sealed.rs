//! End-to-end encryption for encrypted sessions (DESIGN §9.4; docs/E2E.md): the keys, the AEAD
//! that seals edits, snapshots and comments, and the hash chain that lets a client audit the
//! server's order. The server orders and stores what this module seals; it never sees a key.
//!
//! A payload is XChaCha20-Poly1305 (random 24-byte nonce, then ciphertext and tag), in base64,
//! over the JSON of the edit's components (an edit), the document (a snapshot) or the comment's
//! content and annotations. Its associated data
//! ([`montage_protocol::sealed::associated_data`]) binds the session, the version it becomes,
//! the key epoch and the chain value before it, so a payload moved to another session, version,
//! epoch or history does not open.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use montage_protocol::sealed::{associated_data, chain_hex, chain_next};

/// Why a payload could not be opened or a key read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Authentication failed: the key is not the one it was sealed with, or the payload (or
    /// what it is bound to: session, version, key epoch, chain) was changed.
    #[error(
        "could not decrypt {what}: wrong key for key epoch {key_epoch}, or the payload was tampered with"
    )]
    Tampered { what: String, key_epoch: u64 },
    /// No key for the epoch a payload was sealed under (the session's key was rotated).
    #[error("no key for key epoch {0}: add it with `add_key`")]
    NoKey(u64),
    /// Not base64, too short, or a key that is not 32 bytes of base64url.
    #[error("{0}")]
    Malformed(String),
    /// The hash chain over the session's payloads broke: a version is missing, reordered or
    /// not the one other clients were shown.
    #[error("the session's history does not add up: {0}")]
    Chain(String),
}

/// One session key: 32 random bytes. Written as 43 characters of unpadded base64url (what an
/// invite link's `#key=` fragment and `MONTAGE_SESSION_KEY` hold). `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// A fresh random key (from the OS).
    pub fn generate() -> SessionKey {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).expect("the OS random source failed");
        SessionKey(k)
    }

    /// The key from its base64url text (padding and standard base64 are accepted too).
    pub fn parse(text: &str) -> Result<SessionKey, SealError> {
        let t = text.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
            .map_err(|_| SealError::Malformed("a session key is base64url text".into()))?;
        let k: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            SealError::Malformed(format!("a session key is 32 bytes, this one {}", b.len()))
        })?;
        Ok(SessionKey(k))
    }

    /// The key as unpadded base64url.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

/// A session's keys by key epoch. The newest is used to seal; older ones still open history.
/// As text: `EPOCH:KEY` pairs separated by commas, or a bare key for epoch 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring(BTreeMap<u64, SessionKey>);

impl Keyring {
    /// One key, for epoch 0.
    pub fn new(key: SessionKey) -> Keyring {
        Keyring(BTreeMap::from([(0, key)]))
    }

    /// `KEY` or `EPOCH:KEY,EPOCH:KEY…`.
    pub fn parse(text: &str) -> Result<Keyring, SealError> {
        let mut ring = Keyring::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (epoch, key) = match part.split_once(':') {
                Some((e, k)) => (
                    e.parse::<u64>()
                        .map_err(|_| SealError::Malformed(format!("bad key epoch {e:?}")))?,
                    k,
                ),
                None => (0, part),
            };
            ring.0.insert(epoch, SessionKey::parse(key)?);
        }
        if ring.0.is_empty() {
            return Err(SealError::Malformed("no session key given".into()));
        }
        Ok(ring)
    }

    /// Adds (or replaces) the key of `epoch`.
    pub fn add(&mut self, epoch: u64, key: SessionKey) {
        self.0.insert(epoch, key);
    }

    pub fn get(&self, epoch: u64) -> Option<&SessionKey> {
        self.0.get(&epoch)
    }

    /// Takes every key of `other` (its keys win for epochs both have).
    pub fn merge(&mut self, other: Keyring) {
        self.0.extend(other.0);
    }

    /// The newest key epoch held.
    pub fn newest(&self) -> Option<u64> {
        self.0.keys().next_back().copied()
    }

    /// The keys as text (`EPOCH:KEY,…`).
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(e, k)| format!("{e}:{}", k.to_text()))
            .collect();
        parts.join(",")
    }
}

/// What a sealed payload is bound to besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// `op`, `snapshot` or `comment`.
    pub kind: &'a str,
    pub session: &'a str,
    /// The version it becomes (an edit's `base + 1`; a snapshot's own; 0 for comments).
    pub version: u64,
    pub key_epoch: u64,
    /// The chain value before an edit, at a snapshot (zeros for comments).
    pub chain: &'a [u8; 32],
}

impl<'a> Binding<'a> {
    /// What a comment of `session` under `key_epoch` is bound to (version 0, no chain: comments
    /// stand outside the edit order).
    fn comment(session: &'a str, key_epoch: u64) -> Binding<'a> {
        Binding {
            kind: "comment",
            session,
            version: 0,
            key_epoch,
            chain: &montage_protocol::sealed::GENESIS_CHAIN,
        }
    }

    fn what(&self) -> String {
        match self.kind {
            "comment" => format!("a comment of session {}", self.session),
            k => format!("{k} {} of session {}", self.version, self.session),
        }
    }

    fn ad(&self) -> Vec<u8> {
        associated_data(
            self.kind,
            self.session,
            self.version,
            self.key_epoch,
            self.chain,
        )
    }
}

const NONCE: usize = 24;

/// Seals `plaintext` under `key`, bound to `to`: base64 (standard, padded) of nonce and
/// ciphertext.
pub fn seal(key: &SessionKey, to: Binding<'_>, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).expect("the OS random source failed");
    seal_with_nonce(key, to, plaintext, nonce)
}

/// [`seal`] with a given nonce (never reuse one under a key: tests and vectors only).
fn seal_with_nonce(
    key: &SessionKey,
    to: Binding<'_>,
    plaintext: &[u8],
    nonce: [u8; NONCE],
) -> String {
    let mut out = Vec::new();
    encrypt_into(&mut out, key, &to.ad(), plaintext, nonce);
    STANDARD.encode(out)
}

/// Appends `nonce ‖ ciphertext ‖ tag` of `msg` under `key`, bound to `ad`.
fn encrypt_into(out: &mut Vec<u8>, key: &SessionKey, ad: &[u8], msg: &[u8], nonce: [u8; NONCE]) {
    let ct = XChaCha20Poly1305::new((&key.0).into())
        .encrypt(&XNonce::from(nonce), Payload { msg, aad: ad })
        .expect("XChaCha20-Poly1305 seals any length a frame or upload holds");
    out.reserve(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
}

/// Opens `nonce ‖ ciphertext ‖ tag` under `key` and `ad`; `None` when it does not open (or is
/// too short to be one).
fn decrypt(key: &SessionKey, ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE + 16 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().ok()?;
    XChaCha20Poly1305::new((&key.0).into())
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: ad })
        .ok()
}

/// Opens what [`seal`] made, if `key` and `to` are what it was sealed with.
pub fn open(key: &SessionKey, to: Binding<'_>, data: &str) -> Result<Vec<u8>, SealError> {
    let bytes = STANDARD
        .decode(data)
        .map_err(|_| SealError::Malformed(format!("{} is not base64", to.what())))?;
    if bytes.len() < NONCE + 16 {
        return Err(SealError::Malformed(format!("{} is too short", to.what())));
    }
    decrypt(key, &to.ad(), &bytes).ok_or_else(|| SealError::Tampered {
        what: to.what(),
        key_epoch: to.key_epoch,
    })
}

/// How a sealed comment's `content` starts; the key epoch and the payload follow.
pub const COMMENT_PREFIX: &str = "e2e1:";

/// A comment's content and annotations sealed into the one opaque `content` string an
/// encrypted session's server keeps: `e2e1:EPOCH:BASE64`.
pub fn seal_comment(
    keys: &Keyring,
    epoch: u64,
    session: &str,
    plain: &[u8],
) -> Result<String, SealError> {
    let key = keys.get(epoch).ok_or(SealError::NoKey(epoch))?;
    let to = Binding::comment(session, epoch);
    Ok(format!("{COMMENT_PREFIX}{epoch}:{}", seal(key, to, plain)))
}

/// Opens a sealed comment content; `None` when `content` is not one (a tombstone's empty
/// content, say).
pub fn open_comment(
    keys: &Keyring,
    session: &str,
    content: &str,
) -> Option<Result<Vec<u8>, SealError>> {
    let rest = content.strip_prefix(COMMENT_PREFIX)?;
    let (epoch, data) = rest.split_once(':')?;
    let epoch: u64 = epoch.parse().ok()?;
    let Some(key) = keys.get(epoch) else {
        return Some(Err(SealError::NoKey(epoch)));
    };
    Some(open(key, Binding::comment(session, epoch), data))
}

/// Seals a file for upload to an encrypted session (`POST /v1/assets?session=…`): the sealed
/// asset header ([`montage_protocol::sealed::asset_header`]: magic and key epoch), a random
/// nonce, then the file encrypted under the epoch's key, bound to `session` and the epoch.
pub fn seal_asset(
    keys: &Keyring,
    epoch: u64,
    session: &str,
    file: &[u8],
) -> Result<Vec<u8>, SealError> {
    let key = keys.get(epoch).ok_or(SealError::NoKey(epoch))?;
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).expect("the OS random source failed");
    Ok(seal_asset_with_nonce(key, epoch, session, file, nonce))
}

fn seal_asset_with_nonce(
    key: &SessionKey,
    epoch: u64,
    session: &str,
    file: &[u8],
    nonce: [u8; NONCE],
) -> Vec<u8> {
    use montage_protocol::sealed::{asset_associated_data, asset_header};
    let mut out = asset_header(epoch).to_vec();
    encrypt_into(
        &mut out,
        key,
        &asset_associated_data(session, epoch),
        file,
        nonce,
    );
    out
}

/// Opens a sealed asset of `session` (what `GET /v1/assets/{id}` answers): the file as it was
/// before [`seal_asset`].
pub fn open_asset(keys: &Keyring, session: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    use montage_protocol::sealed::{ASSET_HEADER_LEN, asset_associated_data, asset_epoch};
    let what = || format!("an asset of session {session}");
    let epoch = asset_epoch(sealed)
        .ok_or_else(|| SealError::Malformed(format!("{} is not a sealed asset", what())))?;
    let key = keys.get(epoch).ok_or(SealError::NoKey(epoch))?;
    let ad = asset_associated_data(session, epoch);
    decrypt(key, &ad, &sealed[ASSET_HEADER_LEN..]).ok_or_else(|| SealError::Tampered {
        what: what(),
        key_epoch: epoch,
    })
}

/// Chain values kept for recent versions (a resend or a `since` join needs the one of its base).
const CHAINS_KEPT: usize = 4096;

/// An encrypted session's side of the client core: its keys, the key epoch the server takes,
/// and the chain values of the versions received, each checked against the server's.
#[derive(Debug, Clone)]
pub(crate) struct E2e {
    pub(crate) keys: Keyring,
    /// The key epoch the server takes now (from `joined` and `key_rotated`).
    pub(crate) key_epoch: u64,
    /// `(version, chain value)`, oldest first, versions rising.
    chains: std::collections::VecDeque<(u64, [u8; 32])>,
    /// The newest snapshot stored for the session, as far as this client knows.
    pub(crate) snapshot_version: u64,
}

impl E2e {
    pub(crate) fn new(keys: Keyring) -> E2e {
        E2e {
            keys,
            key_epoch: 0,
            chains: std::collections::VecDeque::from([(
                0,
                montage_protocol::sealed::GENESIS_CHAIN,
            )]),
            snapshot_version: 0,
        }
    }

    pub(crate) fn chain_at(&self, version: u64) -> Option<[u8; 32]> {
        // Versions rise: stop at the first older one.
        self.chains
            .iter()
            .rev()
            .find(|(v, _)| *v <= version)
            .filter(|(v, _)| *v == version)
            .map(|(_, c)| *c)
    }

    /// Records the chain value of `version`; a lower version than the newest starts over (a
    /// reset from a snapshot).
    pub(crate) fn record(&mut self, version: u64, chain: [u8; 32]) {
        while self.chains.back().is_some_and(|(v, _)| *v >= version) {
            self.chains.pop_back();
        }
        self.chains.push_back((version, chain));
        while self.chains.len() > CHAINS_KEPT {
            self.chains.pop_front();
        }
    }

    fn key(&self, epoch: u64) -> Result<&SessionKey, SealError> {
        self.keys.get(epoch).ok_or(SealError::NoKey(epoch))
    }

    /// Checks and opens the sealed edit of `version`: its chain value follows the previous
    /// version's and is the one the server claims; records it.
    pub(crate) fn open_edit(
        &mut self,
        session: &str,
        version: u64,
        key_epoch: u64,
        data: &str,
        claimed: Option<&str>,
    ) -> Result<Vec<u8>, SealError> {
        let (prev, next) = self.next_chain(version, key_epoch, data, claimed)?;
        let to = Binding {
            kind: "op",
            session,
            version,
            key_epoch,
            chain: &prev,
        };
        let plain = open(self.key(key_epoch)?, to, data)?;
        self.record(version, next);
        Ok(plain)
    }

    /// The chain values before and of `version` with `data`: the one before must be known (no
    /// version skipped) and the new one the server's `claimed`, if it sent one.
    fn next_chain(
        &self,
        version: u64,
        key_epoch: u64,
        data: &str,
        claimed: Option<&str>,
    ) -> Result<([u8; 32], [u8; 32]), SealError> {
        let prev = self.chain_at(version - 1).ok_or_else(|| {
            SealError::Chain(format!(
                "version {version} arrived without version {} before it",
                version - 1
            ))
        })?;
        let next = chain_next(&prev, version, key_epoch, data);
        if claimed.is_some_and(|c| c != chain_hex(&next)) {
            return Err(SealError::Chain(format!(
                "the server's chain value for version {version} is not the one its payloads make: the stream was changed"
            )));
        }
        Ok((prev, next))
    }

    /// My own edit, acked as `version`: its chain value, checked against the server's.
    pub(crate) fn acked(
        &mut self,
        version: u64,
        key_epoch: u64,
        data: &str,
        claimed: Option<&str>,
    ) -> Result<(), SealError> {
        if self.chain_at(version).is_some() {
            return Ok(()); // seen already, in a catch-up after a rejoin
        }
        let (_, next) = self.next_chain(version, key_epoch, data, claimed)?;
        self.record(version, next);
        Ok(())
    }

    /// Seals an edit made on `base` (it becomes `base + 1`) under the current key epoch.
    pub(crate) fn seal_edit(
        &self,
        session: &str,
        base: u64,
        plain: &[u8],
    ) -> Result<(String, u64), SealError> {
        self.seal_now("op", session, base + 1, base, plain)
    }

    /// Seals `plain` as `kind` of `version` under the current key epoch, bound to the chain
    /// value of `chain_of` (an edit's base, a snapshot's own version), if it is known.
    fn seal_now(
        &self,
        kind: &str,
        session: &str,
        version: u64,
        chain_of: u64,
        plain: &[u8],
    ) -> Result<(String, u64), SealError> {
        let chain = self.chain_at(chain_of).ok_or_else(|| {
            SealError::Chain(format!(
                "the chain value of version {chain_of} is not known here"
            ))
        })?;
        let epoch = self.key_epoch;
        let to = Binding {
            kind,
            session,
            version,
            key_epoch: epoch,
            chain: &chain,
        };
        Ok((seal(self.key(epoch)?, to, plain), epoch))
    }

    /// Opens a stored snapshot and starts the chain over from it (its chain value is bound into
    /// its associated data, so only a key holder can have made the pair).
    pub(crate) fn open_snapshot(
        &mut self,
        session: &str,
        snap: &montage_protocol::sealed::SealedSnapshot,
    ) -> Result<Vec<u8>, SealError> {
        let chain = montage_protocol::sealed::parse_chain(&snap.chain)
            .ok_or_else(|| SealError::Malformed("a snapshot's chain value is not hex".into()))?;
        let to = Binding {
            kind: "snapshot",
            session,
            version: snap.version,
            key_epoch: snap.key_epoch,
            chain: &chain,
        };
        let plain = open(self.key(snap.key_epoch)?, to, &snap.data)?;
        self.record(snap.version, chain);
        self.snapshot_version = self.snapshot_version.max(snap.version);
        Ok(plain)
    }

    /// Seals the document at `version` as a snapshot, if that version's chain value is known.
    pub(crate) fn seal_snapshot(
        &self,
        session: &str,
        version: u64,
        plain: &[u8],
    ) -> Result<(String, u64), SealError> {
        self.seal_now("snapshot", session, version, version, plain)
    }
}

#[cfg(test)]
mod tests {
    use montage_protocol::sealed::GENESIS_CHAIN;

    use super::*;

    fn to(version: u64) -> Binding<'static> {
        Binding {
            kind: "op",
            session: "s",
            version,
            key_epoch: 0,
            chain: &GENESIS_CHAIN,
        }
    }

    #[test]
    fn a_sealed_asset_opens_only_in_its_session_under_its_key() {
        let k = SessionKey::generate();
        let mut keys = Keyring::new(k.clone());
        let file = b"\x89PNG not really".to_vec();
        let sealed = seal_asset(&keys, 0, "s", &file).unwrap();
        assert!(sealed.starts_with(montage_protocol::sealed::ASSET_MAGIC));
        assert_eq!(open_asset(&keys, "s", &sealed).unwrap(), file);
        assert!(matches!(
            open_asset(&keys, "t", &sealed),
            Err(SealError::Tampered { .. })
        ));
        assert!(open_asset(&Keyring::new(SessionKey::generate()), "s", &sealed).is_err());
        // One changed byte of the ciphertext, or the epoch in the header relabelled.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open_asset(&keys, "s", &bad).is_err());
        keys.add(1, k);
        let mut relabelled = sealed.clone();
        relabelled[15] = 1;
        assert!(matches!(
            open_asset(&keys, "s", &relabelled),
            Err(SealError::Tampered { key_epoch: 1, .. })
        ));
        assert!(matches!(
            seal_asset(&keys, 2, "s", &file),
            Err(SealError::NoKey(2))
        ));
        assert!(matches!(
            open_asset(&keys, "s", &sealed[..40]),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn a_sealed_payload_opens_only_with_its_key_and_binding() {
        let k = SessionKey::generate();
        let data = seal(&k, to(1), b"[1,2]");
        assert!(montage_protocol::sealed::is_base64(&data));
        assert_eq!(open(&k, to(1), &data).unwrap(), b"[1,2]");
        // Another version, key or session: refused.
        assert!(matches!(
            open(&k, to(2), &data),
            Err(SealError::Tampered { .. })
        ));
        assert!(open(&SessionKey::generate(), to(1), &data).is_err());
        let other = Binding {
            session: "t",
            ..to(1)
        };
        assert!(open(&k, other, &data).is_err());
        // One flipped bit of the ciphertext: refused.
        let mut bytes = STANDARD.decode(&data).unwrap();
        bytes[30] ^= 1;
        let tampered = STANDARD.encode(bytes);
        let err = open(&k, to(1), &tampered).unwrap_err();
        assert!(err.to_string().contains("tampered"), "{err}");
        // Fresh nonces: the same plaintext seals differently.
        assert_ne!(data, seal(&k, to(1), b"[1,2]"));
    }

    #[test]
    fn keys_and_keyrings_read_back() {
        let k = SessionKey::generate();
        assert_eq!(k.to_text().len(), 43);
        assert_eq!(SessionKey::parse(&k.to_text()).unwrap(), k);
        assert!(SessionKey::parse("short").is_err());
        assert_eq!(format!("{k:?}"), "SessionKey(…)");
        let mut ring = Keyring::new(k.clone());
        let k1 = SessionKey::generate();
        ring.add(1, k1.clone());
        let again = Keyring::parse(&ring.to_text()).unwrap();
        assert_eq!(again, ring);
        assert_eq!(Keyring::parse(&k.to_text()).unwrap().get(0), Some(&k));
        assert!(Keyring::parse("x:abc").is_err());
        assert!(Keyring::parse("").is_err());
    }

    /// The TypeScript SDK's vectors (web/client/test/e2e-vectors.json, written by its
    /// sealed.test.ts): the same chain values, associated data and sealed bytes here, and what
    /// it sealed opens here.
    #[test]
    fn the_typescript_sdks_vectors_hold_here() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../web/client/test/e2e-vectors.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex32 = |s: &serde_json::Value| -> [u8; 32] {
            montage_protocol::sealed::parse_chain(s.as_str().unwrap()).unwrap()
        };
        let chains = v["chain"].as_array().unwrap();
        for c in chains {
            let got = chain_next(
                &hex32(&c["prev"]),
                c["version"].as_u64().unwrap(),
                c["key_epoch"].as_u64().unwrap(),
                c["data"].as_str().unwrap(),
            );
            assert_eq!(chain_hex(&got), c["chain"].as_str().unwrap());
        }
        let seals = v["seal"].as_array().unwrap();
        assert!(chains.len() >= 3 && seals.len() >= 3);
        for s in seals {
            let key = SessionKey::parse(s["key"].as_str().unwrap()).unwrap();
            let chain = hex32(&s["chain"]);
            let to = Binding {
                kind: s["kind"].as_str().unwrap(),
                session: s["session"].as_str().unwrap(),
                version: s["version"].as_u64().unwrap(),
                key_epoch: s["key_epoch"].as_u64().unwrap(),
                chain: &chain,
            };
            assert_eq!(
                hex::encode(to.ad()),
                s["ad"].as_str().unwrap(),
                "{}",
                s["name"]
            );
            let plain = s["plaintext"].as_str().unwrap().as_bytes();
            let data = s["data"].as_str().unwrap();
            assert_eq!(open(&key, to, data).unwrap(), plain, "{}", s["name"]);
            let nonce: [u8; NONCE] = hex::decode(s["nonce"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            assert_eq!(
                seal_with_nonce(&key, to, plain, nonce),
                data,
                "{}",
                s["name"]
            );
        }
        let assets = v["asset"].as_array().unwrap();
        assert!(!assets.is_empty());
        for a in assets {
            let key = SessionKey::parse(a["key"].as_str().unwrap()).unwrap();
            let (session, epoch) = (
                a["session"].as_str().unwrap(),
                a["key_epoch"].as_u64().unwrap(),
            );
            let hex_of = |k: &str| hex::decode(a[k].as_str().unwrap()).unwrap();
            assert_eq!(
                montage_protocol::sealed::asset_associated_data(session, epoch),
                hex_of("ad")
            );
            let mut keys = Keyring::new(SessionKey::generate());
            keys.add(epoch, key.clone());
            let (plain, sealed) = (hex_of("plaintext_hex"), hex_of("sealed_hex"));
            assert_eq!(open_asset(&keys, session, &sealed).unwrap(), plain);
            let nonce: [u8; NONCE] = hex_of("nonce").try_into().unwrap();
            assert_eq!(
                seal_asset_with_nonce(&key, epoch, session, &plain, nonce),
                sealed
            );
        }
    }

    #[test]
    fn comments_seal_into_one_opaque_string() {
        let ring = Keyring::new(SessionKey::generate());
        // A marker long enough that random base64 never holds it by chance ("hi" did, ~2 %).
        let plain = b"{\"content\":\"MARKER-comment-7f3a9c\"}";
        let c = seal_comment(&ring, 0, "s", plain).unwrap();
        assert!(c.starts_with("e2e1:0:") && !c.contains("MARKER"));
        assert_eq!(open_comment(&ring, "s", &c).unwrap().unwrap(), plain);
        assert!(open_comment(&ring, "t", &c).unwrap().is_err());
        assert!(open_comment(&ring, "s", "plain").is_none());
        assert_eq!(seal_comment(&ring, 3, "s", b"x"), Err(SealError::NoKey(3)));
    }
}
