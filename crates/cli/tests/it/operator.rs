//! Operator safety (#14) as the binary shows it: `--dev` never on a remote address unless forced,
//! JWT secrets too short or readable by others refused by `serve` and `token` alike, and a data
//! dir, secret and database that `serve` creates private to its user.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::harness::{SECRET, http_get};

/// What a `montage` run that should end on its own printed.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `montage ARGS` with `env` (and none of the MONTAGE_* settings that would change what is
/// tested), killed if it has not ended within a minute.
fn montage(args: &[&str], env: &[(&str, &str)]) -> Result<Ran> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(args)
        .env_remove("MONTAGE_JWT_SECRET")
        .env_remove("MONTAGE_DATA_DIR")
        .env_remove("MONTAGE_DATABASE_URL")
        .env_remove("MONTAGE_NATS_URL")
        .env_remove("MONTAGE_DEV")
        .env_remove("MONTAGE_DEV_ALLOW_REMOTE")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning montage")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "montage {args:?} still ran after a minute: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Asserts that `montage ARGS` failed saying `needle`.
fn fails_saying(args: &[&str], env: &[(&str, &str)], needle: &str) -> Result<()> {
    let r = montage(args, env)?;
    ensure!(
        !r.ok,
        "montage {args:?} succeeded: {}{}",
        r.stdout,
        r.stderr
    );
    ensure!(
        r.stderr.contains(needle),
        "montage {args:?} did not say {needle:?}: {}",
        r.stderr
    );
    ensure!(
        !r.stdout.contains("listening on"),
        "montage {args:?} listened first: {}",
        r.stdout
    );
    Ok(())
}

fn mode(p: &Path) -> Result<u32> {
    Ok(std::fs::metadata(p)
        .with_context(|| p.display().to_string())?
        .permissions()
        .mode()
        & 0o777)
}

#[test]
fn dev_mode_refuses_an_address_others_can_reach() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_str().context("temp dir is not UTF-8")?;
    for addr in ["0.0.0.0:0", "[::]:0"] {
        fails_saying(
            &["serve", "--dev", "--addr", addr, "--data-dir", data],
            &[("MONTAGE_JWT_SECRET", SECRET)],
            "--dev-allow-remote",
        )?;
    }
    // The same through the environment.
    fails_saying(
        &["serve", "--data-dir", data],
        &[
            ("MONTAGE_JWT_SECRET", SECRET),
            ("MONTAGE_DEV", "true"),
            ("MONTAGE_ADDR", "0.0.0.0:0"),
        ],
        "hands out a token for any user name",
    )?;
    Ok(())
}

#[test]
fn short_secrets_are_refused_by_serve_and_token() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let data = data.to_str().context("temp dir is not UTF-8")?;
    let serve = ["serve", "--addr", "127.0.0.1:0", "--data-dir", data];
    let token = ["token", "alice", "--data-dir", data];
    // Given by environment or flag.
    let env = [("MONTAGE_JWT_SECRET", "integration-test-secret")];
    fails_saying(&serve, &env, "openssl rand -hex 32")?;
    fails_saying(&token, &env, "openssl rand -hex 32")?;
    let mut flag = token.to_vec();
    flag.extend(["--jwt-secret", "0123456789abcdef"]);
    fails_saying(&flag, &[], "the JWT secret is 16 bytes long; at least 32")?;

    // Written to the data dir's secret file by hand.
    std::fs::create_dir_all(data)?;
    let file = Path::new(data).join("jwt-secret");
    std::fs::write(&file, "integration-test-secret\n")?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    let said = format!("{} holds a JWT secret of 23 bytes", file.display());
    fails_saying(&serve, &[], &said)?;
    fails_saying(&token, &[], &said)?;
    assert_eq!(
        std::fs::read_to_string(&file)?,
        "integration-test-secret\n",
        "the operator's file is not replaced"
    );

    // Long enough, but readable by group or others.
    std::fs::write(&file, format!("{:0>64}", "7"))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    let said = format!("chmod 600 {}", file.display());
    fails_saying(&serve, &[], &said)?;
    fails_saying(&token, &[], &said)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    let r = montage(&token, &[])?;
    ensure!(
        r.ok && r.stdout.trim().split('.').count() == 3,
        "{}",
        r.stderr
    );
    Ok(())
}

#[tokio::test]
async fn serve_makes_a_private_data_dir_and_secret() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("new").join("data");
    let data_arg = data.to_str().context("temp dir is not UTF-8")?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir", data_arg])
        .env_remove("MONTAGE_JWT_SECRET")
        .env_remove("MONTAGE_DATABASE_URL")
        .env_remove("MONTAGE_NATS_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    let stdout = server.stdout.take().context("no stdout")?;
    BufReader::new(stdout).read_line(&mut line)?;
    let checked = async {
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("{line:?}"))?;
        // Answered once the store is open (the line comes before).
        let (status, _) = http_get(addr, "/healthz", None).await?;
        assert_eq!(status, 200);
        assert_eq!(mode(&data)?, 0o700, "the data dir");
        for name in [
            "jwt-secret",
            "montage.db",
            "montage.db-wal",
            "montage.db-shm",
        ] {
            assert_eq!(mode(&data.join(name))?, 0o600, "{name}");
        }
        let secret = std::fs::read_to_string(data.join("jwt-secret"))?;
        assert_eq!(secret.trim().len(), 64, "the generated secret");
        let r = montage(&["token", "alice", "--data-dir", data_arg], &[])?;
        ensure!(r.ok, "montage token: {}", r.stderr);
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    checked
}
