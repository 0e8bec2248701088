//! Media through the real binary where a test needs a process of its own: a server without
//! ffprobe on its PATH, and assets in S3 (moto) through `AWS_*` variables. The rest of the media
//! suite runs in-process in `crates/server/tests/it/media.rs`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpStream;

use super::harness::media::*;
use super::harness::*;

backend_tests!(
    hostile_and_unsupported_video_uploads,
    assets_in_s3_upload_render_and_give_video_frames,
    a_waveform_is_decoded_once_and_kept,
);

fn start(b: Backend, dir: &std::path::Path) -> Result<Server> {
    Server::start_on(b, dir, &["--max-upload-bytes", &MAX_UPLOAD.to_string()])
}

/// Video intake refuses what is not a readable video, whatever its first bytes claim; without
/// ffprobe on the server's PATH a video upload is a clear `not_supported`. WebM video and WAV
/// and MP3 audio are accepted with their measurements.
async fn hostile_and_unsupported_video_uploads(b: Backend) -> Result<()> {
    let mut fake = vec![0, 0, 0, 0x20];
    fake.extend_from_slice(b"ftypisom");
    fake.extend_from_slice(&[0u8; 200]);

    let dir = tempfile::tempdir()?;
    let limit = MAX_UPLOAD.to_string();
    let server = Server::start_env_on(
        b,
        dir.path(),
        &["--max-upload-bytes", &limit],
        &[("PATH", "/nonexistent")],
    )?;
    let r = upload(&server, Some("u1"), &fake).await?;
    let e = r.json()?;
    assert_eq!(
        (r.status, &e["code"]),
        (501, &json!("not_supported")),
        "{e}"
    );
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("ffprobe")),
        "{e}"
    );
    drop(server);

    let dir = tempfile::tempdir()?;
    let server = start(b, dir.path())?;
    let clip = dir.path().join("clip.mp4");
    if red_then_blue_video(&clip)?.is_none() {
        bail!("ffmpeg is not installed: .ci/run installs it (scripts/install-test-deps.sh)");
    }
    let real = std::fs::read(&clip)?;
    // A real MP4 cut short (ffmpeg writes the index last), a fake one, and a WebM header on
    // garbage: all 400, nothing stored.
    let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84];
    webm.extend_from_slice(b"webm");
    webm.extend_from_slice(&[7u8; 300]);
    // Sniffed as MP3; auto-detection could open it as an HLS playlist naming a local file.
    let hls = format!(
        "ID3\x04\0\0\0\0\0\0#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:{}\n#EXT-X-ENDLIST\n",
        clip.display()
    )
    .into_bytes();
    for (what, bytes) in [
        ("truncated mp4", &real[..real.len() / 2]),
        ("fake mp4", &fake[..]),
        ("fake webm", &webm[..]),
        ("text", &b"just some text, named clip.mp4"[..]),
        ("hls playlist behind an id3 tag", &hls[..]),
    ] {
        let r = upload(&server, Some("u1"), bytes).await?;
        let e = r.json()?;
        assert_eq!(
            (r.status, &e["code"]),
            (400, &json!("bad_request")),
            "{what}: {e}"
        );
        // ffprobe's own words (which name the server's temporary file) stay in the log.
        let m = e["message"].as_str().unwrap_or_default();
        let tmp = std::env::temp_dir();
        assert!(
            !m.contains("montage-upload") && !m.contains(&*tmp.to_string_lossy()),
            "{what}: {e}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("assets")).map_or(0, |d| d.count()),
        0,
        "nothing refused was stored"
    );
    // The same clip as WebM is accepted as webm.
    let webm_clip = dir.path().join("clip.webm");
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-c:v", "libvpx-vp9", "-b:v", "100k", "-f", "webm"])
        .arg(&webm_clip)
        .status()?;
    assert!(st.success(), "ffmpeg could not write WebM");
    let r = upload(&server, Some("u1"), &std::fs::read(&webm_clip)?).await?;
    let a = r.json()?;
    assert_eq!(
        (r.status, &a["kind"], &a["format"], &a["width"]),
        (201, &json!("video"), &json!("webm"), &json!(640)),
        "{a}"
    );
    // Audio: a second of a tone as WAV and as MP3 is `audio` with a duration and no size.
    for (name, codec, format) in [
        ("tone.wav", "pcm_s16le", "wav"),
        ("tone.mp3", "libmp3lame", "mp3"),
    ] {
        let path = dir.path().join(name);
        let st = std::process::Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=1",
                "-c:a",
                codec,
            ])
            .arg(&path)
            .status()?;
        assert!(st.success(), "ffmpeg could not write {name}");
        let r = upload(&server, Some("u1"), &std::fs::read(&path)?).await?;
        let a = r.json()?;
        assert_eq!(
            (r.status, &a["kind"], &a["format"]),
            (201, &json!("audio"), &json!(format)),
            "{a}"
        );
        assert!(a.get("width").is_none(), "{a}");
        let d = a["duration"].as_f64().context("no duration")?;
        assert!((d - 1.0).abs() < 0.1, "{name}: duration {d}");
    }
    Ok(())
}

/// A `moto_server` (an S3-compatible service from PyPI's `moto[server]`) on a free port, killed
/// when dropped.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    async fn start() -> Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context(
                "moto_server is not installed: scripts/install-test-deps.sh installs it \
                 (pip install 'moto[server]')",
            )?;
        let moto = Moto {
            child,
            endpoint: format!("127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if TcpStream::connect(&moto.endpoint).await.is_ok() {
                return Ok(moto);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("moto_server did not listen on {}", moto.endpoint)
    }

    /// The `AWS_*` variables `object_store` reads to talk to it.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://{}", self.endpoint)),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

/// `--blob-url s3://…` for real, against moto: an upload lands in the bucket (not on disk), a
/// restarted server (cold caches) renders its preview from S3, and a video stored there gives
/// frames through a temporary copy. Fails, not skips, without moto.
async fn assets_in_s3_upload_render_and_give_video_frames(b: Backend) -> Result<()> {
    let moto = Moto::start().await?;
    // Create the bucket (moto takes unsigned requests).
    let r = request(&moto.endpoint, "PUT", "/montage-test", None, None, &[]).await?;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let limit = MAX_UPLOAD.to_string();
    let args = [
        "--max-upload-bytes",
        &limit,
        "--blob-url",
        "s3://montage-test/tenant/assets",
    ];
    let dir = tempfile::tempdir()?;
    let server = Server::start_env_on(b, dir.path(), &args, &env)?;
    let png = picture()?;
    let r = upload(&server, Some("u1"), &png).await?;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()?["id"].as_str().context("no id")?.to_owned();
    assert!(!dir.path().join("assets").join(&id).exists(), "not on disk");
    let list = list_bucket(&moto, "montage-test").await?;
    assert!(
        list.contains(&format!("<Key>tenant/assets/{id}</Key>"))
            && list.contains(&format!("<Size>{}</Size>", png.len())),
        "the bucket holds the bytes: {list}"
    );
    let mut u1 = server.connect("u1").await?;
    u1.join("film", "c1").await?;
    let layer = json!({"id":"l1","kind":"image","asset":id,"x":0,"y":0,"w":1920,"h":1080});
    u1.edit(
        "film",
        0,
        1,
        json!([{"op":"ins","path":["canvas","layers",0],"value":layer}]),
    )
    .await?;
    drop(u1);
    drop(server);

    // A new process: nothing decoded in memory, the picture comes from S3.
    let server = Server::start_env_on(b, dir.path(), &args, &env)?;
    let r = get(&server, "/v1/sessions/film/preview?tier=poor", Some("u1")).await?;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-montage-warnings"), None, "the asset was found");
    let luma = mean_luma(&r.body)?;
    assert!(
        luma > 40.0 && luma < 200.0,
        "a real picture, mean luma {luma}"
    );
    // Its uploader reads it back (an asset of no session is nobody else's).
    let back = get(&server, &format!("/v1/assets/{id}"), Some("u1")).await?;
    assert_eq!(back.body, png);

    // A video in S3: the frame endpoint copies it to a temporary file for ffmpeg.
    let clip = dir.path().join("clip.mp4");
    if red_then_blue_video(&clip)?.is_none() {
        bail!("ffmpeg is not installed: .ci/run installs it (scripts/install-test-deps.sh)");
    }
    let r = upload(&server, Some("u1"), &std::fs::read(&clip)?).await?;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let vid = r.json()?["id"].as_str().context("no id")?.to_owned();
    let mut u1 = server.connect("u1").await?;
    let v = u1.join("film", "c2").await?["version"]
        .as_u64()
        .context("no version")?;
    let timeline = json!({"tracks":[{"id":"v","kind":"video","clips":[
        {"id":"c1","asset":vid,"start":0,"in":0,"out":2}]}]});
    // The picture layer would cover the video in the composition: it goes.
    u1.edit(
        "film",
        v,
        1,
        json!([{"op":"del","path":["canvas","layers",0]},
               {"op":"set","path":["timeline"],"value":timeline}]),
    )
    .await?;
    let r = get(
        &server,
        "/v1/sessions/film/frame?t=1.5&tier=poor",
        Some("u2"),
    )
    .await?;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let img = image::load_from_memory(&r.body)?.to_rgb8();
    let [red, _, blue] = img.get_pixel(img.width() / 2, img.height() / 2).0;
    assert!(blue > 200 && red < 60, "1.5 s is blue: {red},{blue}");
    // Scrubbing: the copy is kept, so a later frame needs no download. moto is emptied (its
    // reset endpoint; it refuses unsigned deletes), and the frame still comes.
    let r = request(&moto.endpoint, "POST", "/moto-api/reset", None, None, &[]).await?;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let r = request(&moto.endpoint, "GET", "/montage-test", None, None, &[]).await?;
    assert_eq!(r.status, 404, "the bucket, and the video, are gone from S3");
    let r = get(
        &server,
        "/v1/sessions/film/frame?t=0.5&tier=poor",
        Some("u2"),
    )
    .await?;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let img = image::load_from_memory(&r.body)?.to_rgb8();
    let [red, _, blue] = img.get_pixel(img.width() / 2, img.height() / 2).0;
    assert!(red > 200 && blue < 60, "0.5 s is red: {red},{blue}");

    // The same through the command line (the Rust SDK's `Api::frame`).
    let out_file = dir.path().join("frame.jpg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_montage"))
        .args([
            "session", "frame", "film", "--t", "1.5", "--tier", "poor", "--out",
        ])
        .arg(&out_file)
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token("u2"))
        .env("RUST_LOG", "warn")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(said["clips"], json!(["c1"]), "{said}");
    let img = image::load_from_memory(&std::fs::read(&out_file)?)?.to_rgb8();
    assert_eq!(img.dimensions(), (320, 180));
    let [red, _, blue] = img.get_pixel(160, 90).0;
    assert!(blue > 200 && red < 60, "1.5 s is blue: {red},{blue}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_montage"))
        .args([
            "session", "frame", "film", "--t", "1", "--tier", "huge", "--out",
        ])
        .arg(&out_file)
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token("u2"))
        .output()?;
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("bad_request"),
        "a bad tier: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The bucket's listing (XML), straight from moto (unsigned listing is allowed there).
async fn list_bucket(moto: &Moto, bucket: &str) -> Result<String> {
    let r = request(
        &moto.endpoint,
        "GET",
        &format!("/{bucket}"),
        None,
        None,
        &[],
    )
    .await?;
    if r.status != 200 {
        bail!("listing {bucket} on moto: {}", r.status);
    }
    Ok(String::from_utf8_lossy(&r.body).into_owned())
}

/// A sound's waveform is decoded by ffmpeg once and kept beside the asset: a restarted server
/// with no ffmpeg at all still answers it, the same, and deleting the session deletes it.
async fn a_waveform_is_decoded_once_and_kept(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let wav = dir.path().join("tone.wav");
    if silence_then_tone_wav(&wav)?.is_none() {
        bail!("ffmpeg is not installed: .ci/run installs it (scripts/install-test-deps.sh)");
    }
    let server = start(b, dir.path())?;
    let mut u1 = server.connect("u1").await?;
    u1.join("song", "c1").await?;
    let r = request(
        &server.addr,
        "POST",
        "/v1/assets?session=song",
        Some("u1"),
        Some(&std::fs::read(&wav)?),
        &[],
    )
    .await?;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()?["id"].as_str().context("no id")?.to_owned();
    let path = format!("/v1/assets/{id}/waveform");
    let first = get(&server, &path, Some("u1")).await?;
    assert_eq!(
        first.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&first.body)
    );
    let blobs = || std::fs::read_dir(dir.path().join("assets")).map(|d| d.count());
    let with_waveform = blobs()?;
    drop(u1);
    drop(server);

    // No ffmpeg anywhere now: the kept waveform is all there is.
    let server = Server::start_env_on(
        b,
        dir.path(),
        &["--max-upload-bytes", &MAX_UPLOAD.to_string()],
        &[("PATH", "/nonexistent")],
    )?;
    let again = get(&server, &path, Some("u1")).await?;
    assert_eq!(
        again.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(again.json()?, first.json()?);
    let r = request(
        &server.addr,
        "DELETE",
        "/v1/sessions/song",
        Some("u1"),
        None,
        &[],
    )
    .await?;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(
        blobs()?,
        with_waveform - 2,
        "the sound and its waveform are gone"
    );
    Ok(())
}
