//! End-to-end encrypted sessions (DESIGN §9.4; docs/PROTOCOL.md "Encrypted sessions"): what the
//! server orders, stores and relays without reading it, and the two byte strings the server and
//! every SDK must build alike — the hash chain over the stored payloads and the associated data
//! an SDK binds each payload to.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain value before version 1.
pub const GENESIS_CHAIN: [u8; 32] = [0; 32];

/// The largest encrypted payload, in bytes of base64 (the frame size bounds it first).
pub const MAX_SEALED_LEN: usize = 16 * 1024 * 1024;

/// An encrypted edit or snapshot as a client sends it: base64 of its nonce and ciphertext, and
/// the key epoch it was sealed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub data: String,
    #[serde(default)]
    pub key_epoch: u64,
}

/// An encrypted edit or snapshot as the server keeps and relays it: the client's bytes, the key
/// epoch they claim, and the chain value after it (for a snapshot: the chain at its version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Base64 (standard alphabet, padded) of the nonce and ciphertext; never parsed further.
    pub data: String,
    #[serde(default)]
    pub key_epoch: u64,
    /// Lowercase hex of [`chain_next`] at this version.
    pub chain: String,
}

/// The encrypted snapshot `joined` carries: the newest one a client stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSnapshot {
    pub version: u64,
    pub data: String,
    #[serde(default)]
    pub key_epoch: u64,
    /// The chain value at `version`.
    pub chain: String,
}

/// The chain value of `version`: SHA-256 over a domain tag, the previous value, the version and
/// key epoch (big-endian u64) and the payload's base64 text. Clients compute it themselves and
/// compare it with the one the server sends, so a dropped, reordered or substituted payload
/// shows; they also bind it into the next payload's associated data, so a fork (two clients
/// shown different histories) fails to decrypt at the first edit made on either side.
pub fn chain_next(prev: &[u8; 32], version: u64, key_epoch: u64, data: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"montage.chain.v1");
    h.update(prev);
    h.update(version.to_be_bytes());
    h.update(key_epoch.to_be_bytes());
    h.update(data.as_bytes());
    h.finalize().into()
}

/// What a payload's AEAD binds besides its plaintext: what it is (`op` or `snapshot`), the
/// session, the version it becomes (an edit's `base + 1`; a snapshot's own), the key epoch and
/// the chain value before it (an edit's) or at it (a snapshot's). A payload moved to another
/// session, version, epoch or history fails to decrypt.
pub fn associated_data(
    kind: &str,
    session: &str,
    version: u64,
    key_epoch: u64,
    chain: &[u8; 32],
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(32 + kind.len() + session.len() + 16 + 32);
    ad.extend_from_slice(b"montage.e2e.v1\0");
    ad.extend_from_slice(kind.as_bytes());
    ad.push(0);
    ad.extend_from_slice(&(session.len() as u64).to_be_bytes());
    ad.extend_from_slice(session.as_bytes());
    ad.extend_from_slice(&version.to_be_bytes());
    ad.extend_from_slice(&key_epoch.to_be_bytes());
    ad.extend_from_slice(chain);
    ad
}

/// How a sealed asset (an encrypted session's upload) starts: these 8 bytes, then the key epoch
/// it was sealed under (u64 big-endian), then the 24-byte nonce and the ciphertext with its tag.
/// The server checks this header and the length, never the rest; the plaintext is the file.
pub const ASSET_MAGIC: &[u8; 8] = b"MTGSEAL1";

/// The header of a sealed asset: [`ASSET_MAGIC`] and the key epoch.
pub const ASSET_HEADER_LEN: usize = 16;

/// The shortest sealed asset: header, nonce and tag around an empty file.
pub const ASSET_MIN_LEN: usize = ASSET_HEADER_LEN + 24 + 16;

/// The header a sealed asset under `key_epoch` starts with.
pub fn asset_header(key_epoch: u64) -> [u8; ASSET_HEADER_LEN] {
    let mut h = [0u8; ASSET_HEADER_LEN];
    h[..8].copy_from_slice(ASSET_MAGIC);
    h[8..].copy_from_slice(&key_epoch.to_be_bytes());
    h
}

/// The key epoch of a sealed asset, if `bytes` is one by its header and length.
pub fn asset_epoch(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < ASSET_MIN_LEN || !bytes.starts_with(ASSET_MAGIC) {
        return None;
    }
    Some(u64::from_be_bytes(bytes[8..16].try_into().ok()?))
}

/// The associated data of a sealed asset: kind `asset`, the session it was uploaded for and
/// its key epoch (version 0, the genesis chain): an asset copied to another session or
/// relabelled with another epoch does not open.
pub fn asset_associated_data(session: &str, key_epoch: u64) -> Vec<u8> {
    associated_data("asset", session, 0, key_epoch, &GENESIS_CHAIN)
}

/// Lowercase hex of a chain value.
pub fn chain_hex(chain: &[u8; 32]) -> String {
    hex::encode(chain)
}

/// A chain value from its hex, if it is one.
pub fn parse_chain(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// Whether `data` is standard padded base64 within [`MAX_SEALED_LEN`] (the server checks the
/// form, never the content).
pub fn is_base64(data: &str) -> bool {
    let b = data.as_bytes();
    if b.is_empty() || b.len() > MAX_SEALED_LEN || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_asset_is_told_by_its_header_and_length() {
        let mut b = asset_header(3).to_vec();
        b.extend_from_slice(&[7; 40]);
        assert_eq!(asset_epoch(&b), Some(3));
        assert_eq!(asset_epoch(&b[..ASSET_MIN_LEN - 1]), None);
        b[0] = b'X';
        assert_eq!(asset_epoch(&b), None);
        assert_ne!(asset_associated_data("s", 0), asset_associated_data("s", 1));
        assert_ne!(asset_associated_data("s", 0), asset_associated_data("t", 0));
    }

    #[test]
    fn the_chain_moves_with_every_input() {
        let a = chain_next(&GENESIS_CHAIN, 1, 0, "AAAA");
        assert_ne!(a, chain_next(&GENESIS_CHAIN, 2, 0, "AAAA"));
        assert_ne!(a, chain_next(&GENESIS_CHAIN, 1, 1, "AAAA"));
        assert_ne!(a, chain_next(&GENESIS_CHAIN, 1, 0, "AAAB"));
        assert_ne!(a, chain_next(&a, 1, 0, "AAAA"));
        assert_eq!(parse_chain(&chain_hex(&a)), Some(a));
        assert_eq!(parse_chain("zz"), None);
        // A known value (Python: sha256(b"montage.chain.v1" + bytes(32) + pack(">QQ", 1, 0) +
        // b"AAAA")), so every SDK can check its own implementation against it.
        assert_eq!(
            chain_hex(&a),
            "caf2b1e2b16ee46e0f532c9674b1e45181025d6522fe248a01c2f5318b95fe40"
        );
    }

    #[test]
    fn base64_is_checked_for_form_only() {
        assert!(is_base64("AAAA"));
        assert!(is_base64("q83v+/==") && is_base64("q83v7w=="));
        assert!(!is_base64(""));
        assert!(!is_base64("AAA"));
        assert!(!is_base64("AA=A"));
        assert!(!is_base64("A==="));
        assert!(!is_base64("AA-_"));
    }

    #[test]
    fn associated_data_separates_its_fields() {
        let one = associated_data("op", "ab", 1, 0, &GENESIS_CHAIN);
        assert_ne!(one, associated_data("op", "a", 1, 0, &GENESIS_CHAIN));
        assert_ne!(one, associated_data("snapshot", "ab", 1, 0, &GENESIS_CHAIN));
        assert_ne!(one, associated_data("op", "ab", 2, 0, &GENESIS_CHAIN));
        assert_ne!(one, associated_data("op", "ab", 1, 1, &GENESIS_CHAIN));
    }
}
