//! Image input as each wire API takes it, read and validated the way the real APIs do:
//! the base64 decodes, the media type is PNG, JPEG, GIF or WebP and matches the bytes,
//! and the image is within the API's size limit. A request that breaks a rule is
//! answered 400 in the API's error shape (like the real service) and its behaviour is
//! not consumed. Remote URLs are refused too: RemoteClaw must always send the bytes.
//!
//! Shapes read (DESIGN §10):
//! - Anthropic: `{"type":"image","source":{"type":"base64","media_type","data"}}` blocks.
//! - OpenAI completions: `{"type":"image_url","image_url":{"url":"data:…;base64,…"}}`.
//! - Responses: `{"type":"input_image","image_url":"data:…;base64,…"}`.
//! - Gemini: `{"inline_data":{"mime_type","data"}}` (or camelCase) parts.

use base64::Engine;
use serde_json::Value;

use super::Api;

/// A real 1×1 PNG (68 bytes), for tests that send images.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0B, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7A, 0x5E, 0xAB, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44,
    0xAE, 0x42, 0x60, 0x82,
];

/// The start and end of a JPEG (JFIF header, end-of-image marker): enough for every
/// check that reads the type from the bytes.
pub const JPEG_MIN: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
];

/// `data:<media_type>;base64,<bytes>`.
pub fn data_url(media_type: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("data:{media_type};base64,{b64}")
}

/// One image a request carried, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenImage {
    /// Index of the message (`messages`, `input` or `contents`) that carried it.
    pub message: usize,
    /// Index of the part within that message's content.
    pub part: usize,
    /// The media type the request declared (it matched the bytes).
    pub media_type: String,
    pub data: Vec<u8>,
}

/// Anthropic's per-image limit; the others take up to 20 MB inline.
const ANTHROPIC_MAX: usize = 5 * 1024 * 1024;
const OTHERS_MAX: usize = 20 * 1024 * 1024;

const TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The media type of an image from its first bytes (independent of the crate's own
/// sniffing, so a bug there does not hide here).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

/// Decode and check one image; `at` names it in the error, like the real APIs do.
fn check(api: &Api, at: &str, media_type: &str, data: &str) -> Result<Vec<u8>, String> {
    if !TYPES.contains(&media_type) {
        return Err(format!(
            "{at}: media type '{media_type}' is not supported; use one of image/jpeg, image/png, image/gif, image/webp"
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("{at}: the image data is not valid base64 ({e})"))?;
    let max = match api {
        Api::Anthropic => ANTHROPIC_MAX,
        _ => OTHERS_MAX,
    };
    if bytes.len() > max {
        return Err(format!(
            "{at}: image exceeds {} MB maximum: {} bytes > {max} bytes",
            max >> 20,
            bytes.len()
        ));
    }
    match sniff(&bytes) {
        Some(t) if t == media_type => Ok(bytes),
        Some(t) => Err(format!(
            "{at}: the image was specified using the {media_type} media type, but the image appears to be a {t} image"
        )),
        None => Err(format!(
            "{at}: could not process image: the data is not a PNG, JPEG, GIF or WebP image"
        )),
    }
}

/// `data:<type>;base64,<data>` → (type, data).
fn split_data_url<'a>(at: &str, url: &'a str) -> Result<(&'a str, &'a str), String> {
    let Some(rest) = url.strip_prefix("data:") else {
        let shown: String = url.chars().take(40).collect();
        return Err(format!(
            "{at}: fake provider: the image URL {shown:?} is not a data: URL (RemoteClaw must send image bytes inline)"
        ));
    };
    rest.split_once(";base64,")
        .ok_or_else(|| format!("{at}: the data: URL is not base64-encoded"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Every image of a request in its API's shape, checked. `Err` is the message of the
/// 400 the real API would send.
pub fn extract(api: &Api, body: &Value) -> Result<Vec<SeenImage>, String> {
    let (list_key, parts_key) = match api {
        Api::Anthropic | Api::OpenAi => ("messages", "content"),
        Api::Responses => ("input", "content"),
        Api::Google => ("contents", "parts"),
    };
    let mut seen = Vec::new();
    let Some(list) = body.get(list_key).and_then(Value::as_array) else {
        return Ok(seen);
    };
    for (i, m) in list.iter().enumerate() {
        let Some(parts) = m.get(parts_key).and_then(Value::as_array) else {
            continue;
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        for (j, p) in parts.iter().enumerate() {
            let at = format!("{list_key}.{i}.{parts_key}.{j}");
            let found = match api {
                Api::Anthropic => anthropic_image(&at, p)?,
                Api::OpenAi => match p.get("type").and_then(Value::as_str) {
                    Some("image_url") => {
                        let url = str_at(p, "/image_url/url")
                            .ok_or_else(|| format!("{at}.image_url.url: Field required"))?;
                        Some(split_data_url(&at, url)?)
                    }
                    _ => None,
                },
                Api::Responses => match p.get("type").and_then(Value::as_str) {
                    Some("input_image") => {
                        let url = str_at(p, "/image_url")
                            .ok_or_else(|| format!("{at}.image_url: Field required"))?;
                        Some(split_data_url(&at, url)?)
                    }
                    _ => None,
                },
                Api::Google => {
                    let inline = p.get("inline_data").or_else(|| p.get("inlineData"));
                    match inline {
                        Some(d) => {
                            let t = str_at(d, "/mime_type")
                                .or_else(|| str_at(d, "/mimeType"))
                                .ok_or_else(|| format!("{at}.inline_data.mime_type: required"))?;
                            let data = str_at(d, "/data")
                                .ok_or_else(|| format!("{at}.inline_data.data: required"))?;
                            Some((t, data))
                        }
                        None => None,
                    }
                }
            };
            let Some((media_type, data)) = found else {
                continue;
            };
            if role != "user" {
                return Err(format!("{at}: images are only accepted in user messages"));
            }
            let data = check(api, &at, media_type, data)?;
            seen.push(SeenImage {
                message: i,
                part: j,
                media_type: media_type.to_string(),
                data,
            });
        }
    }
    Ok(seen)
}

fn anthropic_image<'a>(at: &str, p: &'a Value) -> Result<Option<(&'a str, &'a str)>, String> {
    if p.get("type").and_then(Value::as_str) != Some("image") {
        return Ok(None);
    }
    match str_at(p, "/source/type") {
        Some("base64") => {}
        Some(other) => {
            return Err(format!(
                "{at}.image.source: fake provider: source type {other:?} (RemoteClaw must send base64)"
            ));
        }
        None => return Err(format!("{at}.image.source.type: Field required")),
    }
    let t = str_at(p, "/source/media_type")
        .ok_or_else(|| format!("{at}.image.source.base64.media_type: Field required"))?;
    let data = str_at(p, "/source/data")
        .ok_or_else(|| format!("{at}.image.source.base64.data: Field required"))?;
    Ok(Some((t, data)))
}

/// The 400 message each API sends for an image over its limit (`Behavior::RefuseImage`).
pub fn too_large_message(api: &Api) -> &'static str {
    match api {
        Api::Anthropic => {
            "messages.0.content.0.image.source.base64: image exceeds 5 MB maximum: 7340032 bytes > 5242880 bytes"
        }
        Api::OpenAi | Api::Responses => {
            "Invalid image: the image is too large. Images must be under 20 MB."
        }
        Api::Google => "Request payload size exceeds the limit: 20971520 bytes.",
    }
}
