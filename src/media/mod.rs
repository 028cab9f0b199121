//! Images and files that come with a user message (DESIGN §10): the types every
//! channel hands over and every wire API sends, and the limits they are checked
//! against. Channels download (size checked first); this module never sees a platform.
//!
//! - An image reaches the model inline, with the media type of its bytes, never a URL.
//! - A plain-text file up to [`MAX_TEXT_FILE_BYTES`] is inlined as text with its name.
//! - History keeps a placeholder for an image, never its bytes.

use bytes::Bytes;

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
