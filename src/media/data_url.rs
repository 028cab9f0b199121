//! Images that arrive as `data:` URLs (the OpenAI `image_url` content part, the web
//! chat): decoded and checked like a downloaded image. `http(s)://` links are fetched by
//! `media::link`; any other scheme is refused with the way to send the image instead.

use super::{ImagePart, MediaError};
use base64::Engine;
use bytes::Bytes;

/// The decoded size of standard base64 text (exact for valid input), so an image over
/// the limit is refused before anything is decoded.
fn decoded_len(b64: &str) -> u64 {
    let pad = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len().saturating_sub(pad) as u64).saturating_mul(3) / 4
}

impl ImagePart {
    /// `data:<type>;base64,<bytes>` as an image: within `max` bytes and of a type the
    /// APIs take. The type the URL declares does not count; the bytes decide. `name`
    /// says where the image came from in errors (`messages[0].content[1]`).
    pub fn from_data_url(name: &str, url: &str, max: u64) -> Result<ImagePart, MediaError> {
        let url = url.trim();
        let Some(rest) = strip_prefix_ignore_case(url, "data:") else {
            let scheme = url
                .split_once("://")
                .map(|(s, _)| s.to_ascii_lowercase())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()));
            return Err(match scheme {
                Some(scheme) => MediaError::RemoteUrl {
                    name: name.to_string(),
                    scheme,
                },
                None => MediaError::BadDataUrl {
                    name: name.to_string(),
                    reason: "it does not start with data:".into(),
                },
            });
        };
        let Some((meta, b64)) = rest.split_once(',') else {
            return Err(MediaError::BadDataUrl {
                name: name.to_string(),
                reason: "there is no comma before the data".into(),
            });
        };
        if !meta
            .rsplit(';')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("base64"))
        {
            return Err(MediaError::BadDataUrl {
                name: name.to_string(),
                reason: "the data is not base64-encoded (;base64, is missing)".into(),
            });
        }
        let size = decoded_len(b64);
        if size > max {
            return Err(MediaError::ImageTooLarge {
                name: name.to_string(),
                size,
                max,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| MediaError::BadDataUrl {
                name: name.to_string(),
                reason: format!("the base64 data does not decode: {e}"),
            })?;
        ImagePart::from_bytes(name, Bytes::from(bytes), max)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn url(kind: &str, bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!("data:{kind};base64,{b64}")
    }

    #[test]
    fn a_data_url_round_trips_and_the_bytes_decide_the_type() {
        let img = ImagePart::from_data_url("p", &url("image/jpeg", PNG), 100).unwrap();
        assert_eq!(img.media_type, "image/png");
        assert_eq!(&img.data[..], PNG);
        assert_eq!(img.data_url(), url("image/png", PNG));
        let upper = url("image/png", PNG).replacen("data:", "DATA:", 1);
        assert!(ImagePart::from_data_url("p", &upper, 100).is_ok());
    }

    #[test]
    fn refusals_name_the_part_and_the_fix() {
        let cases: [(&str, u64, &str); 7] = [
            (
                "ftp://example.com/cat.png",
                100,
                "p is a ftp:// link, which the gateway does not fetch — link it over http(s) or send the image itself as a base64 data: URL (data:image/png;base64,…)",
            ),
            (
                "FILE://10.0.0.1/x",
                100,
                "p is a file:// link, which the gateway does not fetch — link it over http(s) or send the image itself as a base64 data: URL (data:image/png;base64,…)",
            ),
            (
                "cat.png",
                100,
                "p is not a usable image data: URL (it does not start with data:) — send data:image/png;base64,… (PNG, JPEG, GIF or WebP)",
            ),
            (
                "data:image/svg+xml,<svg onload=alert(1)>",
                100,
                "p is not a usable image data: URL (the data is not base64-encoded (;base64, is missing)) — send data:image/png;base64,… (PNG, JPEG, GIF or WebP)",
            ),
            (
                "data:image/svg+xml;base64,PHN2Zy8+",
                100,
                "p is not a PNG, JPEG, GIF or WebP image — send it in one of those formats",
            ),
            (
                "data:image/png;base64,%%%%",
                100,
                "p is not a usable image data: URL (the base64 data does not decode: Invalid symbol 37, offset 0.) — send data:image/png;base64,… (PNG, JPEG, GIF or WebP)",
            ),
            (
                "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
                10,
                "p is 16 bytes, over the 10-byte limit for images — send a smaller or compressed image",
            ),
        ];
        for (input, max, want) in cases {
            let got = ImagePart::from_data_url("p", input, max).unwrap_err();
            assert_eq!(got.to_string(), want, "{input}");
        }
    }

    #[test]
    fn the_size_is_known_before_decoding() {
        for n in 0..10usize {
            let b64 = base64::engine::general_purpose::STANDARD.encode(vec![0u8; n]);
            assert_eq!(decoded_len(&b64), n as u64, "{b64}");
        }
    }
}
