use image::ImageFormat;
use montage_media::{AssetKind, Format, Limits, MediaError, decode, peek, probe, sniff};

use crate::helpers::*;

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A well-formed PNG header (valid CRCs) declaring `w`×`h` RGBA, with a tiny IDAT: what a
/// decompression bomb looks like before anyone inflates it.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a stored empty block.
    chunk(
        &mut out,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn accepts_png_jpeg_webp_by_content() {
    let img = photo(64, 48);
    for (fmt, want) in [
        (ImageFormat::Png, Format::Png),
        (ImageFormat::Jpeg, Format::Jpeg),
        (ImageFormat::WebP, Format::Webp),
    ] {
        let bytes = encode(&img, fmt);
        assert_eq!(sniff(&bytes), Some(want));
        let info = probe(&bytes, &Limits::default()).expect("probe");
        assert_eq!(
            (info.kind, info.format, info.width, info.height),
            (AssetKind::Image, want, 64, 48)
        );
        assert_eq!(peek(&bytes, &Limits::default()).expect("peek"), info);
        let decoded = decode(&bytes, &Limits::default()).expect("decode");
        assert_eq!(decoded.dimensions(), (64, 48));
    }
    // Lossless formats round-trip exactly.
    let back = decode(&encode(&img, ImageFormat::Png), &Limits::default()).expect("decode");
    assert_eq!(back, img);
}

#[test]
fn unknown_content_is_refused_whatever_it_is_called() {
    for bytes in [
        &b""[..],
        b"hello, this is not a picture",
        b"GIF89a\x01\x00\x01\x00",
        b"<svg/>",
    ] {
        let e = probe(bytes, &Limits::default()).unwrap_err();
        assert!(matches!(e, MediaError::UnknownFormat), "{e:?}");
        assert_eq!(e.code(), "bad_request");
    }
}

#[test]
fn truncated_images_are_refused() {
    let img = photo(200, 150);
    for (fmt, want) in [
        (ImageFormat::Png, Format::Png),
        (ImageFormat::Jpeg, Format::Jpeg),
        (ImageFormat::WebP, Format::Webp),
    ] {
        let bytes = encode(&img, fmt);
        for cut in [bytes.len() / 2, bytes.len() - 3, 30] {
            let e = probe(&bytes[..cut], &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, MediaError::Truncated { format } if *format == want)
                    || matches!(&e, MediaError::Malformed { format, .. } if *format == want),
                "{fmt:?} cut at {cut}/{}: {e:?}",
                bytes.len()
            );
            assert_eq!(e.code(), "bad_request");
        }
        // Half a file is recognisably truncated, not merely malformed.
        let e = probe(&bytes[..bytes.len() / 2], &Limits::default()).unwrap_err();
        assert!(matches!(e, MediaError::Truncated { .. }), "{fmt:?}: {e:?}");
    }
}

#[test]
fn corrupted_png_is_malformed() {
    let mut bytes = encode(&photo(100, 100), ImageFormat::Png);
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let e = probe(&bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::Malformed {
                format: Format::Png,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn oversized_upload_is_refused_before_parsing() {
    let bytes = encode(&photo(100, 100), ImageFormat::Png);
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let e = probe(&bytes, &limits).unwrap_err();
    assert!(
        matches!(e, MediaError::TooLarge { limit: 1000, .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), "too_large");
}

#[test]
fn png_bomb_header_is_refused_before_decoding() {
    let bomb = png_declaring(100_000, 100_000);
    assert!(bomb.len() < 100);
    for e in [
        probe(&bomb, &Limits::default()).unwrap_err(),
        peek(&bomb, &Limits::default()).unwrap_err(),
        decode(&bomb, &Limits::default()).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                MediaError::TooManyPixels {
                    width: 100_000,
                    height: 100_000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), "too_large");
    }
    // Within the side limit but over the pixel budget (12 000² = 144 MP).
    let e = probe(&png_declaring(12_000, 12_000), &Limits::default()).unwrap_err();
    assert!(
        matches!(e, MediaError::TooManyPixels { width: 12_000, .. }),
        "{e:?}"
    );
    // A zero-sized header is nonsense, not a bomb.
    let e = probe(&png_declaring(0, 10), &Limits::default()).unwrap_err();
    assert_eq!(e.code(), "bad_request");
}

#[test]
fn real_compressed_bombs_are_refused_for_every_format() {
    // 3000×3000 of one colour compresses to a few kB; with a 1 MP budget each is a bomb.
    let img = solid(3000, 3000, WHITE);
    let limits = Limits {
        max_pixels: 1_000_000,
        ..Limits::default()
    };
    for fmt in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
        let bytes = encode(&img, fmt);
        assert!(bytes.len() < 600_000, "{fmt:?} is {} bytes", bytes.len());
        let e = probe(&bytes, &limits).unwrap_err();
        assert!(
            matches!(
                e,
                MediaError::TooManyPixels {
                    width: 3000,
                    height: 3000,
                    ..
                }
            ),
            "{fmt:?}: {e:?}"
        );
    }
    let limits = Limits {
        max_side: 2000,
        ..Limits::default()
    };
    let e = peek(&encode(&img, ImageFormat::Png), &limits).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::TooManyPixels {
                limit_side: 2000,
                ..
            }
        ),
        "{e:?}"
    );
}

/// Inserts an EXIF APP1 segment with the given orientation right after a JPEG's SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, next IFD = 0
    let mut app1 = vec![0xff, 0xe1];
    app1.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_so_sizes_and_crops_are_as_displayed() {
    let jpeg = with_exif_orientation(&encode(&quadrants(60, 40), ImageFormat::Jpeg), 6);
    let info = probe(&jpeg, &Limits::default()).expect("probe");
    assert_eq!((info.width, info.height), (40, 60));
    assert_eq!(peek(&jpeg, &Limits::default()).expect("peek"), info);
    let img = decode(&jpeg, &Limits::default()).expect("decode");
    assert_eq!(img.dimensions(), (40, 60));
    // Orientation 6 shows the picture turned 90° clockwise: bottom-left comes to the top-left.
    assert_px(&img, 5, 5, BLUE, 40);
    assert_px(&img, 34, 5, RED, 40);
    assert_px(&img, 34, 54, GREEN, 40);
}
