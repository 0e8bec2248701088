//! Waveforms: how loud an asset's sound is over time, for drawing under a clip on a timeline.
//! Decoded once per asset by ffmpeg (mono, [`DECODE_RATE`] samples a second) into one peak per
//! 1/[`PEAKS_PER_SECOND`] s; a caller wanting fewer points for a narrow clip asks
//! [`Waveform::buckets`].

use std::path::Path;

use crate::asset::Limits;
use crate::av::{file_input, input_args, limited, run_tool, sniff_file, tool_path};
use crate::error::MediaError;
use crate::video::FFMPEG_TIMEOUT;

/// Samples a second ffmpeg decodes to: plenty for peaks at [`PEAKS_PER_SECOND`], and an hour of
/// sound is 14 MB of 16-bit samples.
pub const DECODE_RATE: u32 = 2_000;
/// Peaks a second in a [`Waveform`].
pub const PEAKS_PER_SECOND: u32 = 50;
/// Decoded sound read at most (about 4.6 hours at [`DECODE_RATE`]); longer is refused.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Peaks of an asset's sound: the loudest sample of each 1/[`PEAKS_PER_SECOND`] s, 0 (silence)
/// to 255 (full scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waveform {
    pub peaks: Vec<u8>,
    /// Samples decoded: the sound's length is `samples / DECODE_RATE` seconds.
    pub samples: u64,
}

impl Waveform {
    /// From mono 16-bit little-endian samples at [`DECODE_RATE`].
    pub fn from_pcm(pcm: &[u8]) -> Waveform {
        let per_peak = (DECODE_RATE / PEAKS_PER_SECOND) as usize;
        let samples = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]));
        let mut peaks = Vec::with_capacity(pcm.len() / 2 / per_peak + 1);
        let (mut loudest, mut n, mut total) = (0u16, 0usize, 0u64);
        for s in samples {
            loudest = loudest.max(s.unsigned_abs());
            n += 1;
            total += 1;
            if n == per_peak {
                peaks.push(scale(loudest));
                (loudest, n) = (0, 0);
            }
        }
        if n > 0 {
            peaks.push(scale(loudest));
        }
        Waveform {
            peaks,
            samples: total,
        }
    }

    pub fn duration(&self) -> f64 {
        self.samples as f64 / f64::from(DECODE_RATE)
    }

    /// `n` peaks over the whole sound (each the loudest of the peaks it covers); all of them
    /// when `n` is at least their number.
    pub fn buckets(&self, n: usize) -> Vec<u8> {
        let len = self.peaks.len();
        if n == 0 || n >= len {
            return self.peaks.clone();
        }
        (0..n)
            .map(|i| {
                let (a, b) = (i * len / n, ((i + 1) * len / n).max(i * len / n + 1));
                self.peaks[a..b.min(len)].iter().copied().max().unwrap_or(0)
            })
            .collect()
    }
}

impl Waveform {
    /// The bytes a store keeps: the sample count (8 bytes, little-endian), then the peaks.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.peaks.len());
        out.extend_from_slice(&self.samples.to_le_bytes());
        out.extend_from_slice(&self.peaks);
        out
    }

    /// Reads [`Waveform::to_bytes`]; `None` for anything else.
    pub fn from_bytes(b: &[u8]) -> Option<Waveform> {
        let (n, peaks) = b.split_first_chunk::<8>()?;
        let samples = u64::from_le_bytes(*n);
        let per_peak = u64::from(DECODE_RATE / PEAKS_PER_SECOND);
        // The peaks must be the ones those samples make.
        (samples.div_ceil(per_peak) == peaks.len() as u64).then(|| Waveform {
            peaks: peaks.to_vec(),
            samples,
        })
    }
}

fn scale(peak: u16) -> u8 {
    ((u32::from(peak) * 255 + 16_384) / 32_768).min(255) as u8
}

/// The waveform of the first sound stream of the audio or video file at `path`. `Invalid` when
/// it has no sound; `NotSupported` without ffmpeg; `TooLarge` past [`MAX_DECODED_BYTES`] of
/// decoded sound.
pub fn waveform(path: &Path, limits: &Limits) -> Result<Waveform, MediaError> {
    let ffmpeg = tool_path("ffmpeg").ok_or(MediaError::NotSupported("ffmpeg is not installed"))?;
    let container = sniff_file(path, "audio")?;
    let rate = DECODE_RATE.to_string();
    let mut cmd = limited(&ffmpeg, FFMPEG_TIMEOUT);
    cmd.args(["-nostdin", "-v", "error"]);
    input_args(&mut cmd, container, limits);
    cmd.arg("-i").arg(file_input(path)).args([
        "-map",
        "0:a:0",
        "-vn",
        "-ac",
        "1",
        "-ar",
        &rate,
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        "-",
    ]);
    let (ok, pcm, log) = run_tool(cmd, FFMPEG_TIMEOUT, MAX_DECODED_BYTES + 1)?;
    if !ok {
        let msg = String::from_utf8_lossy(&log);
        if msg.contains("matches no streams") {
            return Err(MediaError::Invalid {
                what: "asset",
                reason: "it has no sound".into(),
            });
        }
        return Err(MediaError::Ffmpeg {
            reason: msg.trim().to_owned(),
        });
    }
    if pcm.len() as u64 > MAX_DECODED_BYTES {
        return Err(MediaError::TooLarge {
            bytes: pcm.len() as u64,
            limit: MAX_DECODED_BYTES,
        });
    }
    Ok(Waveform::from_pcm(&pcm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn peaks_are_the_loudest_sample_of_each_slice() {
        let per = (DECODE_RATE / PEAKS_PER_SECOND) as usize;
        let mut s = vec![0i16; per];
        s.extend(vec![-32_768; 1]);
        s.extend(vec![100; per - 1]);
        s.extend(vec![16_384; 3]); // a partial last slice still counts
        let w = Waveform::from_pcm(&pcm(&s));
        assert_eq!(w.peaks, [0, 255, 128]);
        assert_eq!(w.samples, (2 * per + 3) as u64);
        assert_eq!(w.buckets(1), [255]);
        assert_eq!(w.buckets(2), [0, 255]);
        assert_eq!(w.buckets(99), w.peaks);
        assert!(Waveform::from_pcm(&[]).peaks.is_empty());
        assert_eq!(Waveform::from_bytes(&w.to_bytes()), Some(w.clone()));
        assert_eq!(
            Waveform::from_bytes(&w.to_bytes()[..9]),
            None,
            "peaks cut short"
        );
        assert_eq!(Waveform::from_bytes(b"short"), None);
    }
}
