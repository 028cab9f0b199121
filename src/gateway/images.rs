//! The images of a `/v1/chat/completions` request (DESIGN §10): each `image_url` part
//! decoded from its `data:` URL, or downloaded from its `http(s)://` link
//! (`media::link`), and checked like any image (bytes sniffed, at most
//! `agents.defaults.maxImageBytes`), at most `media::MAX_IMAGES` per message, in user
//! messages only. Refusals are 400s naming the part (`messages[i].content[j]`).

use super::refusal::Refusal;
use super::request::InMessage;
use crate::media::{ImagePart, MAX_IMAGES, MediaError, link};

/// One image part after the checks that need no network: its bytes, or a link to fetch.
#[derive(Debug)]
pub enum Part {
    Inline(ImagePart),
    Link { param: String, url: String },
}

/// The checked image parts of every message, in order (one list per message). Links
/// are left for [`fetch`].
pub fn decode(messages: &[InMessage], max_bytes: u64) -> Result<Vec<Vec<Part>>, Refusal> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if let Some(first) = m.images.first()
                && m.role != "user"
            {
                return Err(refusal(
                    &first.param,
                    "image_not_allowed_here",
                    format!(
                        "{} is an image in a {} message: images go in user messages only",
                        first.param, m.role
                    ),
                ));
            }
            if m.images.len() > MAX_IMAGES {
                let here = format!("messages[{i}].content");
                let message = format!(
                    "{here} carries {} images; a message may carry at most {MAX_IMAGES} — send the others in another message",
                    m.images.len()
                );
                return Err(refusal(&here, "too_many_images", message));
            }
            m.images
                .iter()
                .map(|img| {
                    if link::is_link(&img.url) {
                        return Ok(Part::Link {
                            param: img.param.clone(),
                            url: img.url.clone(),
                        });
                    }
                    ImagePart::from_data_url(&img.param, &img.url, max_bytes)
                        .map(Part::Inline)
                        .map_err(|e| media_refusal(&img.param, e))
                })
                .collect()
        })
        .collect()
}

/// Download the linked images (all at once), keeping every message's order.
pub async fn fetch(parts: Vec<Vec<Part>>, max_bytes: u64) -> Result<Vec<Vec<ImagePart>>, Refusal> {
    let mut out = Vec::with_capacity(parts.len());
    for message in parts {
        let fetched = futures_util::future::join_all(message.into_iter().map(|p| async move {
            match p {
                Part::Inline(image) => Ok(image),
                Part::Link { param, url } => link::fetch(&param, &url, max_bytes)
                    .await
                    .map_err(|e| media_refusal(&param, e)),
            }
        }))
        .await;
        out.push(fetched.into_iter().collect::<Result<Vec<_>, _>>()?);
    }
    Ok(out)
}

fn media_refusal(param: &str, e: MediaError) -> Refusal {
    let code = match e {
        MediaError::RemoteUrl { .. } => "image_url_not_fetched",
        MediaError::Download { .. } => "image_download_failed",
        MediaError::ImageTooLarge { .. } => "image_too_large",
        _ => "invalid_image",
    };
    refusal(param, code, e.to_string())
}

fn refusal(param: &str, code: &'static str, message: String) -> Refusal {
    Refusal {
        code,
        ..Refusal::field(param, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::request::ImageUrl;

    const PNG_URL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";

    fn msg(role: &str, urls: &[&str]) -> InMessage {
        InMessage {
            role: role.into(),
            text: String::new(),
            images: urls
                .iter()
                .enumerate()
                .map(|(j, u)| ImageUrl {
                    param: format!("messages[0].content[{j}]"),
                    url: u.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn four_images_pass_and_five_are_refused_naming_the_message() {
        let four = decode(&[msg("user", &[PNG_URL; 4])], 100).unwrap();
        assert_eq!(four[0].len(), 4);
        assert!(matches!(&four[0][0], Part::Inline(i) if i.media_type == "image/png"));
        let five = decode(&[msg("user", &[PNG_URL; 5])], 100).unwrap_err();
        assert_eq!(five.code, "too_many_images");
        assert_eq!(five.param.as_deref(), Some("messages[0].content"));
        assert_eq!(
            five.message,
            "messages[0].content carries 5 images; a message may carry at most 4 — send the others in another message"
        );
    }

    #[test]
    fn each_refusal_names_its_part() {
        let cases = [
            ("ftp://example.com/a.png", 100, "image_url_not_fetched"),
            ("data:image/svg+xml;base64,PHN2Zy8+", 100, "invalid_image"),
            (PNG_URL, 10, "image_too_large"),
        ];
        for (url, max, code) in cases {
            let e = decode(
                &[msg("user", &["data:image/gif;base64,R0lGODlh", url])],
                max,
            )
            .unwrap_err();
            assert_eq!(e.code, code, "{url}");
            assert_eq!(e.param.as_deref(), Some("messages[0].content[1]"), "{url}");
            assert!(
                e.message.starts_with("messages[0].content[1] "),
                "{}",
                e.message
            );
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        }
        let e = decode(&[msg("assistant", &[PNG_URL])], 100).unwrap_err();
        assert_eq!(e.code, "image_not_allowed_here");
    }
}
