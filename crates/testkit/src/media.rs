//! Media helpers of the end-to-end suites: raw HTTP requests with headers and bytes, generated
//! pictures and videos, hostile PNGs.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use image::{ImageFormat, Rgba, RgbaImage};
use serde_json::Value as Json;

use crate::{Served, http_client, token};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The server under test refuses uploads above this (`--max-upload-bytes`).
pub const MAX_UPLOAD: usize = 1_000_000;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Result<Json> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "{} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One HTTP request (`extra`: more headers); the answer's status, headers and raw body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<&[u8]>,
    extra: &[(&str, &str)],
) -> Result<Resp> {
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut req = http_client()?
        .request(method, format!("http://{addr}{path}"))
        .timeout(TIMEOUT);
    if let Some(u) = user {
        req = req.bearer_auth(token(u));
    }
    if let Some(b) = body {
        req = req.body(b.to_vec());
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.bytes().await?.to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

pub fn encode(img: &RgbaImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// A 400×300 photo-like picture: a grey gradient with a red square, every pixel mid-dark.
pub fn picture() -> Result<Vec<u8>> {
    let img = RgbaImage::from_fn(400, 300, |x, y| {
        if (50..100).contains(&x) && (50..100).contains(&y) {
            Rgba([200, 30, 30, 255])
        } else {
            let g = 60 + (x / 10) as u8;
            Rgba([g, g, g, 255])
        }
    });
    encode(&img)
}

pub fn mean_luma(bytes: &[u8]) -> Result<f64> {
    let img = image::load_from_memory(bytes)?.to_luma8();
    let n = f64::from(img.width()) * f64::from(img.height());
    Ok(img.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / n)
}

/// A PNG chunk with its CRC.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A well-formed, tiny PNG declaring `w × h` grey pixels whose IDAT inflates to all of them:
/// a decompression bomb (20 000 × 20 000 is 400 MP, 1.6 GB as RGBA, in a few hundred kB).
pub fn png_bomb(w: u32, h: u32) -> Result<Vec<u8>> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; w as usize + 1]; // filter byte + pixels
    for _ in 0..h {
        z.write_all(&row)?;
    }
    let idat = z.finish()?;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &idat));
    png.extend(chunk(b"IEND", &[]));
    Ok(png)
}

pub async fn upload(server: &impl Served, user: Option<&str>, bytes: &[u8]) -> Result<Resp> {
    request(server.addr(), "POST", "/v1/assets", user, Some(bytes), &[]).await
}

pub async fn get(server: &impl Served, path: &str, user: Option<&str>) -> Result<Resp> {
    request(server.addr(), "GET", path, user, None, &[]).await
}

/// Runs an ffmpeg command that writes a file: `None` when ffmpeg is not installed.
fn run_ffmpeg(mut cmd: std::process::Command) -> Result<Option<()>> {
    let status = match cmd.status() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        s => s?,
    };
    if !status.success() {
        bail!("ffmpeg failed: {status}");
    }
    Ok(Some(()))
}

/// A video file made by ffmpeg (two seconds: red, then blue), or `None` without ffmpeg.
pub fn red_then_blue_video(path: &std::path::Path) -> Result<Option<()>> {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args([
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=640x480:d=1:r=10",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=640x480:d=1:r=10",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mp4",
    ])
    .arg(path);
    run_ffmpeg(cmd)
}

/// A WAV made by ffmpeg (a second of silence, then a second of a 440 Hz tone at ffmpeg's 1/8
/// scale), or `None` without ffmpeg.
pub fn silence_then_tone_wav(path: &std::path::Path) -> Result<Option<()>> {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=1"])
        .args(["-f", "lavfi", "-i", "sine=f=440:r=22050:d=1"])
        .args([
            "-filter_complex",
            "[0:a][1:a]concat=n=2:v=0:a=1[a]",
            "-map",
            "[a]",
        ])
        .arg(path);
    run_ffmpeg(cmd)
}
