//! Images and files that come with a user message (DESIGN §10): the types every
//! channel hands over and every wire API sends, and the limits they are checked
//! against. Channels download (size checked first); this module never sees a platform.
//!
//! - An image reaches the model inline, with the media type of its bytes, never a URL.
//! - A plain-text file up to [`MAX_TEXT_FILE_BYTES`] is inlined as text with its name.
//! - History keeps a placeholder for an image, never its bytes.
//! - An image sent as a `data:` URL is decoded here (`data_url`); an `http(s)://` link is
//!   downloaded by `link`.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

mod data_url;
pub mod link;

/// Images per message, at most (DESIGN §10).
pub const MAX_IMAGES: usize = 4;

/// `agents.defaults.maxImageBytes` when unset: 5 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// Plain-text files up to this size are inlined as text.
pub const MAX_TEXT_FILE_BYTES: u64 = 100 * 1024;

/// An image as the model receives it: its bytes and their media type
/// (`image/png`, `image/jpeg`, `image/gif` or `image/webp`).
#[derive(Clone, PartialEq, Eq)]
pub struct ImagePart {
    pub media_type: String,
    pub data: Bytes,
}

impl std::fmt::Debug for ImagePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImagePart({}, {} bytes)",
            self.media_type,
            self.data.len()
        )
    }
}

/// Why an attachment was not taken. The message names the file and the next step; it
/// goes back to the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error(
        "{name} is {size} bytes, over the {max}-byte limit for images — send a smaller or compressed image"
    )]
    ImageTooLarge { name: String, size: u64, max: u64 },
    #[error("{name} is not a PNG, JPEG, GIF or WebP image — send it in one of those formats")]
    NotAnImage { name: String },
    #[error("a message may carry at most {MAX_IMAGES} images — send the others in another message")]
    TooManyImages,
    #[error(
        "{name} is {size} bytes, over the {MAX_TEXT_FILE_BYTES}-byte limit for text files — paste the part that matters"
    )]
    TextTooLarge { name: String, size: u64 },
    #[error("{name} is not a plain-text file — send text files (UTF-8) or images")]
    NotText { name: String },
    #[error("could not download {name}: {reason} — send it again")]
    Download { name: String, reason: String },
    /// An image given as a link of a scheme that is not fetched (`ftp://`, `file://`, …).
    #[error(
        "{name} is a {scheme}:// link, which the gateway does not fetch — link it over http(s) or send the image itself as a base64 data: URL (data:image/png;base64,…)"
    )]
    RemoteUrl { name: String, scheme: String },
    #[error(
        "{name} is not a usable image data: URL ({reason}) — send data:image/png;base64,… (PNG, JPEG, GIF or WebP)"
    )]
    BadDataUrl { name: String, reason: String },
}

/// The media type of an image from its first bytes (the type its sender claims does
/// not count): PNG, JPEG, GIF or WebP; `None` for anything else.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

impl ImagePart {
    /// Downloaded bytes as an image: within `max` bytes, and of a type the APIs take.
    pub fn from_bytes(name: &str, data: Bytes, max: u64) -> Result<ImagePart, MediaError> {
        let size = data.len() as u64;
        if size > max {
            return Err(MediaError::ImageTooLarge {
                name: name.to_string(),
                size,
                max,
            });
        }
        let media_type = sniff_image(&data).ok_or_else(|| MediaError::NotAnImage {
            name: name.to_string(),
        })?;
        Ok(ImagePart {
            media_type: media_type.to_string(),
            data,
        })
    }

    /// A `data:<type>;base64,<bytes>` URL of the image (OpenAI's and the Responses
    /// API's inline form).
    pub fn data_url(&self) -> String {
        use base64::Engine;
        format!(
            "data:{};base64,{}",
            self.media_type,
            base64::engine::general_purpose::STANDARD.encode(&self.data)
        )
    }

    /// The bytes as standard base64 (Anthropic's and Gemini's inline form).
    pub fn base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.data)
    }
}

/// Read a download until it ends or holds more than `cap` bytes (then it stops: a
/// server that announced less than it sends is not read to its end). The caller's
/// checks refuse what is over the cap.
pub async fn read_capped<S, E>(stream: S, cap: u64) -> Result<Vec<u8>, E>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() as u64 > cap {
            break;
        }
    }
    Ok(out)
}

/// Check a size the platform announces before downloading: an image over `max`, or a
/// text file over [`MAX_TEXT_FILE_BYTES`], is refused without fetching a byte.
pub fn check_announced(name: &str, size: u64, image: bool, max: u64) -> Result<(), MediaError> {
    match image {
        true if size > max => Err(MediaError::ImageTooLarge {
            name: name.to_string(),
            size,
            max,
        }),
        false if size > MAX_TEXT_FILE_BYTES => Err(MediaError::TextTooLarge {
            name: name.to_string(),
            size,
        }),
        _ => Ok(()),
    }
}

/// A downloaded file as inlined text: at most [`MAX_TEXT_FILE_BYTES`], UTF-8, and no
/// NUL bytes (a binary file is refused rather than sent as noise).
pub fn text_file(name: &str, data: &[u8]) -> Result<Attachment, MediaError> {
    let size = data.len() as u64;
    if size > MAX_TEXT_FILE_BYTES {
        return Err(MediaError::TextTooLarge {
            name: name.to_string(),
            size,
        });
    }
    match std::str::from_utf8(data) {
        Ok(t) if !t.contains('\0') => Ok(Attachment::Text {
            name: name.to_string(),
            text: t.to_string(),
        }),
        _ => Err(MediaError::NotText {
            name: name.to_string(),
        }),
    }
}

/// Whether a file the platform describes (its name and claimed media type) should be
/// read as an image; anything else is tried as text.
pub fn looks_like_image(name: &str, mime: Option<&str>) -> bool {
    if let Some(m) = mime {
        return m.starts_with("image/");
    }
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".webp"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Something attached to an inbound message, already downloaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    Image(ImagePart),
    /// A plain-text file, inlined with its name.
    Text {
        name: String,
        text: String,
    },
}

/// The user message for a turn and the one history keeps: text files are inlined in
/// both; images go with the first and are a placeholder line in the second.
pub fn user_message(
    text: String,
    attachments: &[Attachment],
) -> (crate::providers::ChatMessage, crate::providers::ChatMessage) {
    use crate::providers::ChatMessage;
    let mut content = text;
    let mut images = Vec::new();
    let mut placeholders = Vec::new();
    for a in attachments {
        match a {
            Attachment::Image(img) => {
                placeholders.push(format!("[image: {}]", img.media_type));
                images.push(img.clone());
            }
            Attachment::Text { name, text } => {
                if !content.is_empty() {
                    content.push_str("\n\n");
                }
                content.push_str(&format!("[file: {name}]\n{text}"));
            }
        }
    }
    let mut stored = ChatMessage::user(content.clone());
    for p in placeholders {
        if !stored.content.is_empty() {
            stored.content.push('\n');
        }
        stored.content.push_str(&p);
    }
    let mut user = ChatMessage::user(content);
    user.images = images;
    (user, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_media_type_comes_from_the_bytes() {
        assert_eq!(sniff_image(PNG), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"<svg onload=alert(1)>"), None);
        assert_eq!(sniff_image(b""), None);
    }

    #[test]
    fn an_image_over_the_limit_or_of_another_type_is_refused_by_name() {
        let big = ImagePart::from_bytes("cat.png", Bytes::from_static(PNG), 4).unwrap_err();
        assert!(big.to_string().contains("cat.png"), "{big}");
        let svg = ImagePart::from_bytes("x.png", Bytes::from_static(b"<svg/>"), 100).unwrap_err();
        assert_eq!(
            svg,
            MediaError::NotAnImage {
                name: "x.png".into()
            }
        );
        let ok = ImagePart::from_bytes("a", Bytes::from_static(PNG), 100).unwrap();
        assert!(
            ok.data_url()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
    }

    #[test]
    fn text_files_are_utf8_without_nul_and_at_most_100_kb() {
        assert!(matches!(
            text_file("a.txt", b"hello"),
            Ok(Attachment::Text { .. })
        ));
        assert!(text_file("a.bin", b"he\0llo").is_err());
        assert!(text_file("a.txt", &[0xFF, 0xFE]).is_err());
        let big = vec![b'a'; MAX_TEXT_FILE_BYTES as usize + 1];
        assert!(matches!(
            text_file("big.txt", &big),
            Err(MediaError::TextTooLarge { .. })
        ));
        assert!(check_announced("big.txt", MAX_TEXT_FILE_BYTES + 1, false, 0).is_err());
        assert!(check_announced("p.jpg", 6 << 20, true, 5 << 20).is_err());
        assert!(check_announced("p.jpg", 5 << 20, true, 5 << 20).is_ok());
    }

    #[test]
    fn history_keeps_a_placeholder_not_the_bytes() {
        let img = ImagePart::from_bytes("a", Bytes::from_static(PNG), 100).unwrap();
        let atts = [
            Attachment::Image(img),
            Attachment::Text {
                name: "notes.md".into(),
                text: "# hi".into(),
            },
        ];
        let (user, stored) = user_message("look".into(), &atts);
        assert_eq!(user.images.len(), 1);
        assert!(user.content.contains("notes.md") && user.content.contains("# hi"));
        assert!(stored.images.is_empty());
        assert!(
            stored.content.ends_with("[image: image/png]"),
            "{}",
            stored.content
        );
    }
}
