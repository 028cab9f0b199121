//! Images sent with a web chat message (DESIGN §10 "Images in"): the `images` field of
//! `POST /api/chat`, `[{"name": "cat.png", "data": "<base64>"}, …]` (a `data:` URL is
//! taken too, through [`ImagePart::from_data_url`]), at most [`MAX_IMAGES`], each
//! decoded and checked by [`ImagePart::from_bytes`] (media type sniffed from the bytes,
//! `maxImageBytes`).
//!
//! Also owns the body limit of that one route: `gateway.maxBodyBytes` for the text, plus
//! room for four base64 images of `maxImageBytes`. Other routes keep `maxBodyBytes`.

use super::super::refusal::Refusal;
use crate::media::{Attachment, ImagePart, MAX_IMAGES, MediaError};
use axum::http::StatusCode;
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

/// Room per image for its JSON besides the base64 (`{"name": "…", "data": ""}`, a
/// `data:image/…;base64,` prefix).
const PER_IMAGE_OVERHEAD: usize = 1024;

/// The longest file name quoted back (longer ones are cut).
const MAX_NAME_CHARS: usize = 100;

/// Base64 length of `n` bytes (with padding).
fn base64_len(n: u64) -> usize {
    usize::try_from(n.div_ceil(3).saturating_mul(4)).unwrap_or(usize::MAX)
}

/// The body limit of `POST /api/chat`: `max_body_bytes` plus [`MAX_IMAGES`] images of
/// `max_image_bytes`, base64-inflated.
pub fn body_limit(max_body_bytes: usize, max_image_bytes: u64) -> usize {
    let per_image = base64_len(max_image_bytes).saturating_add(PER_IMAGE_OVERHEAD);
    max_body_bytes.saturating_add(per_image.saturating_mul(MAX_IMAGES))
}

/// The 413 of a body past [`body_limit`]: what the room is made of and the way out.
pub fn body_too_large(limit: usize, max_body_bytes: usize, max_image_bytes: u64) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the message and its images are larger than the web chat takes ({limit} bytes: gateway.maxBodyBytes ({max_body_bytes}) for the text plus {MAX_IMAGES} images of agents.defaults.maxImageBytes ({max_image_bytes}) as base64): send a shorter message, or fewer or smaller images"
        ),
    )
}

/// A 400 `image_refused` carrying the media check's message (it names the file and the
/// next step; the page shows it in the chat).
fn refused(index: usize, e: &MediaError) -> Refusal {
    Refusal {
        param: Some(format!("images[{index}]")),
        ..Refusal::new(StatusCode::BAD_REQUEST, "image_refused", e.to_string())
    }
}

/// A printable file name: control characters dropped, cut to [`MAX_NAME_CHARS`],
/// `image N` when none is given.
fn display_name(given: Option<&str>, index: usize) -> String {
    let name: String = given
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        format!("image {}", index + 1)
    } else {
        name.to_string()
    }
}

/// How many bytes of the body are its `images` field (`"images":[…],`, compact): what
/// the text's budget (gateway.maxBodyBytes) does not pay for.
pub fn images_len(body: &Value) -> usize {
    body.get("images").map_or(0, |images| {
        serde_json::to_vec(images).map_or(0, |b| b.len()) + r#""images":,"#.len()
    })
}

/// Take the `images` field out of the body (absent or `null`: none) and check every
/// image. `max` is `agents.defaults.maxImageBytes`.
pub fn take_images(body: &mut Value, max: u64) -> Result<Vec<Attachment>, Refusal> {
    let list = match body.as_object_mut().and_then(|o| o.remove("images")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(Refusal::field(
                "images",
                "images must be an array of {\"name\": \"cat.png\", \"data\": \"<base64>\"} objects",
            ));
        }
    };
    if list.len() > MAX_IMAGES {
        return Err(refused(MAX_IMAGES, &MediaError::TooManyImages));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(Refusal::field(
                format!("images[{i}]"),
                format!(
                    "images[{i}] must be an object such as {{\"name\": \"cat.png\", \"data\": \"<base64>\"}}"
                ),
            ));
        };
        let name = match item.get("name") {
            None | Some(Value::Null) => display_name(None, i),
            Some(Value::String(s)) => display_name(Some(s), i),
            Some(_) => {
                return Err(Refusal::field(
                    format!("images[{i}].name"),
                    format!("images[{i}].name must be a string (the file name)"),
                ));
            }
        };
        let Some(Value::String(data)) = item.remove("data") else {
            return Err(Refusal::field(
                format!("images[{i}].data"),
                format!("images[{i}].data is required: the image's bytes as base64"),
            ));
        };
        if data
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
        {
            let image = ImagePart::from_data_url(&name, &data, max).map_err(|e| refused(i, &e))?;
            out.push(Attachment::Image(image));
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .map_err(|e| {
                Refusal::field(
                    format!("images[{i}].data"),
                    format!(
                        "images[{i}].data ({name}) is not standard base64 ({e}): send the file's bytes base64-encoded"
                    ),
                )
            })?;
        drop(data);
        let image =
            ImagePart::from_bytes(&name, Bytes::from(bytes), max).map_err(|e| refused(i, &e))?;
        out.push(Attachment::Image(image));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn the_limit_admits_four_images_of_max_size_on_top_of_max_body_bytes() {
        let max_image = 5 * 1024 * 1024;
        let limit = body_limit(1 << 20, max_image);
        let four = 4 * b64(&vec![0u8; max_image as usize]).len();
        assert!(limit >= (1 << 20) + four, "{limit}");
        assert!(
            limit <= (1 << 20) + four + 4 * PER_IMAGE_OVERHEAD,
            "{limit}"
        );
        assert_eq!(body_limit(usize::MAX, u64::MAX), usize::MAX);
    }

    #[test]
    fn images_are_decoded_and_sniffed() {
        let mut body = json!({"session": "s", "message": "m", "images": [
            {"name": "a.png", "data": b64(PNG)},
            {"data": format!("DATA:image/jpeg;base64,{}", b64(PNG))},
        ]});
        let images = take_images(&mut body, 100).unwrap();
        assert_eq!(images.len(), 2);
        for a in &images {
            let Attachment::Image(img) = a else {
                panic!("{a:?}")
            };
            assert_eq!(
                img.media_type, "image/png",
                "the bytes decide, not the claim"
            );
            assert_eq!(&img.data[..], PNG);
        }
        assert!(body.get("images").is_none(), "taken out of the body");
        assert!(
            take_images(&mut json!({"images": null}), 100)
                .unwrap()
                .is_empty()
        );
        assert!(take_images(&mut json!({}), 100).unwrap().is_empty());
    }

    #[test]
    fn refused_images_name_the_file_and_the_fix() {
        let svg = take_images(
            &mut json!({"images": [{"name": "x.svg", "data": b64(b"<svg onload=alert(1)>")}]}),
            100,
        )
        .unwrap_err();
        assert_eq!(svg.code, "image_refused");
        assert_eq!(
            svg.message,
            "x.svg is not a PNG, JPEG, GIF or WebP image — send it in one of those formats"
        );
        let big = take_images(
            &mut json!({"images": [{"name": "big.png", "data": b64(PNG)}]}),
            4,
        )
        .unwrap_err();
        assert!(
            big.message
                .starts_with("big.png is 16 bytes, over the 4-byte limit"),
            "{}",
            big.message
        );
        let link = take_images(
            &mut json!({"images": [{"name": "l.png", "data": "data:image/png,<svg/>"}]}),
            100,
        )
        .unwrap_err();
        assert_eq!(link.code, "image_refused");
        assert!(
            link.message
                .starts_with("l.png is not a usable image data: URL"),
            "{}",
            link.message
        );
        let five = vec![json!({"data": b64(PNG)}); 5];
        let many = take_images(&mut json!({ "images": five }), 100).unwrap_err();
        assert!(
            many.message.contains("at most 4 images"),
            "{}",
            many.message
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let err = |v: Value| take_images(&mut v.clone(), 100).unwrap_err().message;
        assert!(err(json!({"images": "x"})).starts_with("images must be an array"));
        assert!(err(json!({"images": [1]})).starts_with("images[0] must be an object"));
        assert!(err(json!({"images": [{"name": 1, "data": ""}]})).starts_with("images[0].name"));
        assert!(err(json!({"images": [{"name": "a"}]})).starts_with("images[0].data is required"));
        assert!(
            err(json!({"images": [{"name": "a.png", "data": "%%%"}]}))
                .starts_with("images[0].data (a.png) is not standard base64")
        );
    }

    #[test]
    fn names_are_printable_and_short() {
        assert_eq!(display_name(Some("a\u{1b}[31m.png"), 0), "a[31m.png");
        assert_eq!(display_name(Some("  "), 2), "image 3");
        assert_eq!(
            display_name(Some(&"n".repeat(500)), 0).len(),
            MAX_NAME_CHARS
        );
    }
}
