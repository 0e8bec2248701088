//! The quick start's Rust token minting (docs/QUICKSTART.md): what an app's backend runs to
//! give its signed-in user a Montage token, signed with the server's secret.
use jsonwebtoken::{EncodingKey, Header, encode};
use std::time::{SystemTime, UNIX_EPOCH};

fn montage_token(user: &str, secret: &[u8], ttl_secs: u64) -> jsonwebtoken::errors::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    let exp = now.map_or(0, |d| d.as_secs()) + ttl_secs;
    let claims = serde_json::json!({ "sub": user, "exp": exp });
    let key = EncodingKey::from_secret(secret);
    encode(&Header::default(), &claims, &key) // Header::default() is HS256
}

fn main() {
    let secret = std::env::var("MONTAGE_JWT_SECRET").expect("set MONTAGE_JWT_SECRET");
    let user = std::env::args().nth(1).unwrap_or("alice".into());
    let token = montage_token(&user, secret.as_bytes(), 3600).expect("signing");
    println!("{token}");
}
