//! Video and audio intake: containers recognised by their first bytes (never by name), then
//! validated and measured by ffprobe when it is installed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::asset::{AssetKind, Limits};
use crate::error::MediaError;

/// How long one ffprobe run may take before it is killed (also its CPU-time limit).
pub const FFPROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The address space an ffprobe or ffmpeg child may map (`ulimit -v`): loading their shared
/// libraries alone takes ~300 MB, and `-max_pixels` bounds what one decoded picture needs.
pub const TOOL_MEMORY: u64 = 2 * 1024 * 1024 * 1024;

/// How much of a file ffprobe and ffmpeg read (bytes, `-probesize`) and analyse (µs of media,
/// `-analyzeduration`) to find its streams.
pub const PROBE_SIZE: u64 = 5_000_000;

/// The video and audio containers intake accepts, recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Container {
    Mp4,
    Mov,
    Webm,
    Mkv,
    /// MPEG-4 audio (`ftyp M4A `).
    M4a,
    Mp3,
    Wav,
    Ogg,
    Flac,
}

impl Container {
    /// The short name used on the wire (`"format"`).
    pub fn name(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Webm => "webm",
            Container::Mkv => "mkv",
            Container::M4a => "m4a",
            Container::Mp3 => "mp3",
            Container::Wav => "wav",
            Container::Ogg => "ogg",
            Container::Flac => "flac",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Mov => "video/quicktime",
            Container::Webm => "video/webm",
            Container::Mkv => "video/x-matroska",
            Container::M4a => "audio/mp4",
            Container::Mp3 => "audio/mpeg",
            Container::Wav => "audio/wav",
            Container::Ogg => "audio/ogg",
            Container::Flac => "audio/flac",
        }
    }

    /// The demuxer ffprobe and ffmpeg are told to use (`-f`): content is never auto-detected
    /// as another format (an `ID3…#EXTM3U` body is not opened as an HLS playlist).
    pub fn demuxer(self) -> &'static str {
        match self {
            Container::Mp4 | Container::Mov | Container::M4a => "mov",
            Container::Webm | Container::Mkv => "matroska",
            Container::Mp3 => "mp3",
            Container::Wav => "wav",
            Container::Ogg => "ogg",
            Container::Flac => "flac",
        }
    }

    /// The token ffprobe's `format_name` must contain for the content to be what it claims.
    fn ffprobe_format(self) -> &'static str {
        match self {
            Container::Mp4 | Container::Mov | Container::M4a => "mp4",
            Container::Webm => "webm",
            Container::Mkv => "matroska",
            Container::Mp3 => "mp3",
            Container::Wav => "wav",
            Container::Ogg => "ogg",
            Container::Flac => "flac",
        }
    }
}

/// Recognises a video or audio container from its first bytes.
pub fn sniff_container(b: &[u8]) -> Option<Container> {
    let at = |i: usize, s: &[u8]| b.get(i..i + s.len()) == Some(s);
    // ISO base media (MP4, QuickTime): a box size, then the box type.
    if at(4, b"ftyp") {
        return Some(if at(8, b"qt  ") {
            Container::Mov
        } else if at(8, b"M4A ") {
            Container::M4a
        } else {
            Container::Mp4
        });
    }
    if at(4, b"moov") || at(4, b"wide") || at(4, b"mdat") {
        return Some(Container::Mov);
    }
    // EBML (Matroska, WebM): the DocType sits in the header's first few dozen bytes.
    if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        let head = &b[..b.len().min(64)];
        let has = |s: &[u8]| head.windows(s.len()).any(|w| w == s);
        return if has(b"webm") {
            Some(Container::Webm)
        } else if has(b"matroska") {
            Some(Container::Mkv)
        } else {
            None
        };
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some(Container::Wav);
    }
    if at(0, b"OggS") {
        return Some(Container::Ogg);
    }
    if at(0, b"fLaC") {
        return Some(Container::Flac);
    }
    if at(0, b"ID3") || (b.len() >= 2 && b[0] == 0xff && matches!(b[1], 0xfb | 0xf3 | 0xf2)) {
        return Some(Container::Mp3);
    }
    None
}

/// What ffprobe learned about a video or audio file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvInfo {
    pub kind: AssetKind,
    pub container: Container,
    /// Pixels of the first video stream (videos only; every video stream is within the limits).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds, when the container states it.
    pub duration: Option<f64>,
}

/// The executable `name` (`ffprobe`, `ffmpeg`) on `PATH`, if any.
pub fn tool_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `tool` run through `/bin/sh` with `ulimit`: at most `cpu` of CPU time and [`TOOL_MEMORY`]
/// of address space, so a hostile file can't make it eat the server's memory or a core. (`sh`
/// `exec`s the tool: the child's pid is the tool's, and killing it kills the tool.)
pub(crate) fn limited(tool: &Path, cpu: Duration) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -t {} && ulimit -v {} && exec \"$0\" \"$@\"",
            cpu.as_secs().max(1),
            TOOL_MEMORY / 1024
        ))
        .arg(tool);
    cmd
}

/// The input options every ffprobe/ffmpeg run on an upload gets, before its `-i`/input: files
/// only, the sniffed container's demuxer, bounded probing, one thread, and no decoded picture
/// larger than `limits.max_pixels`.
pub(crate) fn input_args(cmd: &mut Command, container: Container, limits: &Limits) {
    let probe = PROBE_SIZE.to_string();
    // AVOption max_pixels is an int.
    let pixels = limits.max_pixels.min(i32::MAX as u64).to_string();
    cmd.args([
        "-protocol_whitelist",
        "file",
        "-f",
        container.demuxer(),
        "-probesize",
        &probe,
        "-analyzeduration",
        &probe,
        "-threads",
        "1",
        "-max_pixels",
        &pixels,
    ]);
}

/// The container of a stored file, sniffed from its first bytes as on upload, so ffmpeg is told
/// its demuxer; `MalformedMedia` (as a `kind` file) when it is not one.
pub(crate) fn sniff_file(path: &Path, kind: &'static str) -> Result<Container, MediaError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| MediaError::Store {
            reason: format!("{}: {e}", path.display()),
        })?;
    sniff_container(&head).ok_or_else(|| MediaError::MalformedMedia {
        container: kind,
        reason: format!("not a readable {kind} file"),
        detail: String::new(),
    })
}

/// `file:<path>`: keeps the tool from reading a path as a URL or another protocol.
pub(crate) fn file_input(path: &Path) -> std::ffi::OsString {
    let mut input = std::ffi::OsString::from("file:");
    input.push(path.as_os_str());
    input
}

/// The ffprobe run [`probe_av`] makes.
fn probe_command(ffprobe: &Path, path: &Path, container: Container, limits: &Limits) -> Command {
    let mut cmd = limited(ffprobe, FFPROBE_TIMEOUT);
    cmd.args(["-v", "error"]);
    input_args(&mut cmd, container, limits);
    cmd.args([
        "-show_entries",
        "format=format_name,duration:stream=codec_type,width,height:stream_disposition=attached_pic",
        "-of",
        "default=noprint_wrappers=1",
    ])
    .arg(file_input(path));
    cmd
}

/// Validates the file at `path` (sniffed as `container`) with ffprobe and measures it: a video
/// needs a video stream, and every video stream (cover art aside) a size inside `limits`; audio
/// needs an audio stream. `NotSupported` without ffprobe; a file ffprobe can't read, or reads as
/// another container, is `MalformedMedia` (ffprobe's own words only in its `detail`).
pub fn probe_av(path: &Path, container: Container, limits: &Limits) -> Result<AvInfo, MediaError> {
    let ffprobe = tool_path("ffprobe").ok_or(MediaError::NotSupported(
        "video and audio uploads need ffprobe, which is not installed",
    ))?;
    let malformed = |reason: String| MediaError::MalformedMedia {
        container: container.name(),
        reason,
        detail: String::new(),
    };
    let cmd = probe_command(&ffprobe, path, container, limits);
    let (ok, out, err) = run_tool(cmd, FFPROBE_TIMEOUT, 64 * 1024)?;
    if !ok {
        return Err(MediaError::MalformedMedia {
            container: container.name(),
            reason: "it could not be read".into(),
            detail: String::from_utf8_lossy(&err).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out);
    #[derive(Default)]
    struct Stream {
        kind: String,
        width: Option<u32>,
        height: Option<u32>,
        attached: bool,
    }
    let mut streams: Vec<Stream> = Vec::new();
    let (mut format, mut duration) = (String::new(), None);
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        match k {
            "codec_type" => streams.push(Stream {
                kind: v.to_owned(),
                ..Stream::default()
            }),
            "width" => {
                if let Some(s) = streams.last_mut() {
                    s.width = v.parse().ok();
                }
            }
            "height" => {
                if let Some(s) = streams.last_mut() {
                    s.height = v.parse().ok();
                }
            }
            "DISPOSITION:attached_pic" => {
                if let Some(s) = streams.last_mut() {
                    s.attached = v == "1";
                }
            }
            "format_name" => format = v.to_owned(),
            "duration" => duration = v.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0),
            _ => {}
        }
    }
    if !format.split(',').any(|f| f == container.ffprobe_format()) {
        return Err(malformed(format!(
            "the content reads as {:?}, not {}",
            if format.is_empty() {
                "nothing"
            } else {
                &format
            },
            container.name()
        )));
    }
    // Cover art is a video stream marked as an attached picture: never decoded as video
    // (ffmpeg maps `0:V:0`) and bounded by `-max_pixels` alone.
    let mut video = streams.iter().filter(|s| s.kind == "video" && !s.attached);
    if let Some(first) = video.next() {
        let mut size = None;
        for v in std::iter::once(first).chain(video) {
            let (Some(w), Some(h)) = (v.width.filter(|w| *w > 0), v.height.filter(|h| *h > 0))
            else {
                return Err(malformed("a video stream has no picture size".into()));
            };
            if w > limits.max_side
                || h > limits.max_side
                || u64::from(w) * u64::from(h) > limits.max_pixels
            {
                return Err(MediaError::TooManyPixels {
                    width: w,
                    height: h,
                    limit_pixels: limits.max_pixels,
                    limit_side: limits.max_side,
                });
            }
            size.get_or_insert((w, h));
        }
        let (w, h) = size.unwrap_or_default();
        return Ok(AvInfo {
            kind: AssetKind::Video,
            container,
            width: Some(w),
            height: Some(h),
            duration,
        });
    }
    if streams.iter().any(|s| s.kind == "audio") {
        return Ok(AvInfo {
            kind: AssetKind::Audio,
            container,
            width: None,
            height: None,
            duration,
        });
    }
    Err(malformed("no video or audio stream".into()))
}

/// Runs a tool with a deadline, keeping at most `max_out` bytes of its stdout (and 64 KiB of
/// stderr). Returns (exited successfully, stdout, stderr).
pub(crate) fn run_tool(
    mut cmd: Command,
    timeout: Duration,
    max_out: u64,
) -> Result<(bool, Vec<u8>, Vec<u8>), MediaError> {
    let failed = |reason: String| MediaError::Ffmpeg { reason };
    let mut child = KillOnDrop(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("could not start: {e}")))?,
    );
    let mut stdout = child.0.stdout.take();
    let mut stderr = child.0.stderr.take();
    // Pipes are drained on threads so a chatty tool can't block while we wait on it.
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(max_out).read_to_end(&mut buf);
            // Drain the rest so the tool is not blocked on a full pipe.
            let _ = std::io::copy(s, &mut std::io::sink());
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
            let _ = std::io::copy(s, &mut std::io::sink());
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    // Every early return drops `child`, which kills and reaps the tool.
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => return Err(failed(format!("timed out after {timeout:?}"))),
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    Ok((
        status.success(),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// A child process killed and reaped when dropped, unless it has already exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_is_told_the_demuxer_and_the_limits() {
        let limits = Limits::default();
        let cmd = probe_command(
            Path::new("/usr/bin/ffprobe"),
            Path::new("/tmp/x"),
            Container::Mp3,
            &limits,
        );
        assert_eq!(cmd.get_program(), "/bin/sh");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).expect(flag);
            args[i + 1].clone()
        };
        assert!(args[1].contains("ulimit -t 20 && ulimit -v 2097152 && exec"));
        assert_eq!(args[2], "/usr/bin/ffprobe");
        assert_eq!(after("-f"), "mp3");
        assert_eq!(after("-probesize"), "5000000");
        assert_eq!(after("-analyzeduration"), "5000000");
        assert_eq!(after("-threads"), "1");
        assert_eq!(after("-max_pixels"), "110000000");
        assert_eq!(after("-protocol_whitelist"), "file");
        assert_eq!(args.last().map(String::as_str), Some("file:/tmp/x"));
        for (c, d) in [
            (Container::Mp4, "mov"),
            (Container::M4a, "mov"),
            (Container::Webm, "matroska"),
            (Container::Mkv, "matroska"),
            (Container::Ogg, "ogg"),
        ] {
            assert_eq!(c.demuxer(), d);
        }
    }

    #[test]
    fn a_tool_that_outlives_its_deadline_is_killed() {
        let mut cmd = limited(Path::new("/bin/sleep"), Duration::from_secs(5));
        cmd.arg("30");
        let e = run_tool(cmd, Duration::from_millis(100), 16).unwrap_err();
        assert!(matches!(e, MediaError::Ffmpeg { ref reason } if reason.contains("timed out")));
    }

    #[test]
    fn containers_are_sniffed_by_content() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        assert_eq!(sniff_container(&mp4), Some(Container::Mp4));
        let mut mov = vec![0, 0, 0, 0x14];
        mov.extend_from_slice(b"ftypqt  ");
        assert_eq!(sniff_container(&mov), Some(Container::Mov));
        let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        assert_eq!(sniff_container(&webm), Some(Container::Webm));
        let mut mkv = vec![0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x82, 0x88];
        mkv.extend_from_slice(b"matroska");
        assert_eq!(sniff_container(&mkv), Some(Container::Mkv));
        assert_eq!(
            sniff_container(b"RIFF\0\0\0\0WAVEfmt "),
            Some(Container::Wav)
        );
        assert_eq!(sniff_container(b"ID3\x04"), Some(Container::Mp3));
        assert_eq!(sniff_container(b"OggS\0"), Some(Container::Ogg));
        for other in [
            &b""[..],
            b"ftyp",
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"\x89PNG\r\n\x1a\n",
            &[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0],
            b"<html>video.mp4",
        ] {
            assert_eq!(sniff_container(other), None, "{other:?}");
        }
    }
}
