//! The TypeScript client's suite (`web/scripts/test.sh`: type check, build, vitest — the shared
//! OT vectors, the client model, a real WebSocket) runs as part of `cargo test`, so the README's
//! one test command covers the browser side too. It needs Node.js 20 and npm; without them it
//! fails and says so rather than passing silently.

use std::process::Command;

#[test]
fn web_client_suite_passes() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/scripts/test.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("could not run {script}: {e} (is bash installed?)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "web/scripts/test.sh failed (it needs Node.js 20 and npm on PATH):\n{text}"
    );
    assert!(text.contains("Test Files"), "vitest did not report: {text}");
}
