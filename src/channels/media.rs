//! What the chat channels share when a message brings images or files (DESIGN §10):
//! which files are worth fetching and as what (`classify`), how many images one
//! message may pass on, a download read up to a cap whatever the server announced
//! (`read_capped`), and what the person is told about the files that were not taken
//! (`Gathered::notice`). The platform calls (Telegram `getFile`, Discord's CDN) live in
//! `telegram/media.rs` and `discord/media.rs`; the checks themselves in `crate::media`.

use crate::media::{self, Attachment, ImagePart, MAX_IMAGES, MAX_TEXT_FILE_BYTES, MediaError};
use bytes::Bytes;

/// How a file is read once downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Text,
}

/// Media types that are text although they are not `text/*`.
const TEXT_APPLICATION_TYPES: &[&str] = &[
    "application/json",
    "application/ld+json",
    "application/xml",
    "application/javascript",
    "application/x-javascript",
    "application/typescript",
    "application/x-typescript",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/x-toml",
    "application/sql",
    "application/x-sh",
    "application/x-shellscript",
    "application/x-python",
    "application/x-ndjson",
    "application/csv",
    "application/x-subrip",
    "application/x-httpd-php",
    "application/x-perl",
    "application/x-ruby",
];

/// How to read a file its platform describes by name and claimed media type: as an
/// image, as text, or not at all (a PDF, a video, an archive: refused without a byte
/// downloaded). A file whose type says nothing (`application/octet-stream`, or none)
/// is tried as text; its bytes decide.
pub(crate) fn classify(name: &str, mime: Option<&str>) -> Result<Kind, MediaError> {
    // A type that says nothing leaves it to the file name.
    let essence = mime
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|m| !m.is_empty() && m != "application/octet-stream");
    if media::looks_like_image(name, essence.as_deref()) {
        return Ok(Kind::Image);
    }
    match essence.as_deref() {
        None => Ok(Kind::Text),
        Some(m)
            if m.starts_with("text/")
                || TEXT_APPLICATION_TYPES.contains(&m)
                || m.ends_with("+json")
                || m.ends_with("+xml") =>
        {
            Ok(Kind::Text)
        }
        Some(_) => Err(MediaError::NotText {
            name: name.to_string(),
        }),
    }
}

/// The most bytes read of a download of this kind: an image's limit, or the text
/// file limit.
pub(crate) fn cap(kind: Kind, max_image_bytes: u64) -> u64 {
    match kind {
        Kind::Image => max_image_bytes,
        Kind::Text => MAX_TEXT_FILE_BYTES,
    }
}

/// A size check before downloading. `None` = the platform did not say.
pub(crate) fn check_size(
    name: &str,
    kind: Kind,
    size: Option<u64>,
    max_image_bytes: u64,
) -> Result<(), MediaError> {
    match size {
        Some(s) => media::check_announced(name, s, kind == Kind::Image, max_image_bytes),
        None => Ok(()),
    }
}

pub(crate) use crate::media::read_capped;

/// Downloaded bytes as an attachment: an image (its type from its bytes) or text.
pub(crate) fn finish(
    name: &str,
    kind: Kind,
    data: Vec<u8>,
    max_image_bytes: u64,
) -> Result<Attachment, MediaError> {
    match kind {
        Kind::Image => {
            ImagePart::from_bytes(name, Bytes::from(data), max_image_bytes).map(Attachment::Image)
        }
        Kind::Text => media::text_file(name, &data),
    }
}

/// Which of a message's images are fetched: the first [`MAX_IMAGES`]; `true` for each
/// later one (refused, once, with [`MediaError::TooManyImages`]).
pub(crate) fn over_image_limit(kinds: &[Kind]) -> Vec<bool> {
    let mut images = 0;
    kinds
        .iter()
        .map(|k| {
            if *k == Kind::Image {
                images += 1;
            }
            *k == Kind::Image && images > MAX_IMAGES
        })
        .collect()
}

/// What came of a message's images and files.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Downloaded and checked, in the message's order.
    pub attachments: Vec<Attachment>,
    /// Not taken, each with the reason the person is told.
    pub refused: Vec<MediaError>,
}

impl Gathered {
    pub fn refuse(&mut self, e: MediaError) {
        if !(e == MediaError::TooManyImages && self.refused.contains(&e)) {
            self.refused.push(e);
        }
    }

    /// The reply about the files that were not taken, one line each (`None`: all were).
    pub fn notice(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .refused
            .iter()
            .map(|e| {
                let line = e.to_string();
                // A file's own name is shown as it is; our own words start a sentence.
                match file_name(e) {
                    Some(n) if !is_generic(n) => line,
                    _ => capitalize(&line),
                }
            })
            .collect();
        Some(lines.join("\n"))
    }

    /// Whether the message goes to the model. A file that was refused leaves the rest
    /// answered only when some file was taken: text alone was written about the file
    /// (a caption), and answering it without the file would spend a call on a guess.
    /// Only images over the per-message limit never stop a turn (the first ones go).
    pub fn answer(&self, text: &str) -> bool {
        let blocking = self.refused.iter().any(|e| *e != MediaError::TooManyImages);
        if !self.attachments.is_empty() {
            return true;
        }
        !blocking && !text.trim().is_empty()
    }
}

/// How a photo is named to the person (Telegram photos have no file name).
pub(crate) const YOUR_PHOTO: &str = "your photo";
/// How a file without a name is named to the person.
pub(crate) const YOUR_FILE: &str = "your file";

/// The name of the photo at `n` (from 1) of an album.
pub(crate) fn album_photo(n: usize) -> String {
    format!("photo {n} of the album")
}

fn is_generic(name: &str) -> bool {
    name == YOUR_PHOTO
        || name == YOUR_FILE
        || (name.starts_with("photo ") && name.ends_with(" of the album"))
}

/// The name an error's text starts with, if it starts with one.
fn file_name(e: &MediaError) -> Option<&str> {
    match e {
        MediaError::ImageTooLarge { name, .. }
        | MediaError::NotAnImage { name }
        | MediaError::TextTooLarge { name, .. }
        | MediaError::NotText { name }
        | MediaError::RemoteUrl { name, .. }
        | MediaError::BadDataUrl { name, .. } => Some(name),
        MediaError::Download { .. } | MediaError::TooManyImages => None,
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_by_their_name_and_claimed_type() {
        // (name, mime, expected)
        let cases: &[(&str, Option<&str>, Option<Kind>)] = &[
            ("cat.jpg", None, Some(Kind::Image)),
            ("cat", Some("image/png"), Some(Kind::Image)),
            ("cat.bin", Some("image/webp"), Some(Kind::Image)),
            ("x.svg", Some("image/svg+xml"), Some(Kind::Image)), // refused by its bytes later
            (
                "notes.txt",
                Some("text/plain; charset=utf-8"),
                Some(Kind::Text),
            ),
            ("main.rs", Some("text/x-rust"), Some(Kind::Text)),
            ("data.json", Some("application/json"), Some(Kind::Text)),
            ("feed", Some("application/atom+xml"), Some(Kind::Text)),
            ("Makefile", None, Some(Kind::Text)),
            ("blob", Some("application/octet-stream"), Some(Kind::Text)),
            (
                "scan.JPG",
                Some("application/octet-stream"),
                Some(Kind::Image),
            ),
            ("report.pdf", Some("application/pdf"), None),
            ("clip.mp4", Some("video/mp4"), None),
            ("a.zip", Some("application/zip"), None),
        ];
        for (name, mime, want) in cases {
            let got = classify(name, *mime).ok();
            assert_eq!(got, *want, "{name} {mime:?}");
        }
        assert_eq!(
            classify("report.pdf", Some("application/pdf")),
            Err(MediaError::NotText {
                name: "report.pdf".into()
            })
        );
    }

    #[test]
    fn only_the_first_four_images_are_fetched() {
        use Kind::{Image as I, Text as T};
        assert_eq!(
            over_image_limit(&[I, T, I, I, I, T, I, I]),
            [false, false, false, false, false, false, true, true]
        );
    }

    #[tokio::test]
    async fn a_download_is_read_no_further_than_just_past_its_cap() {
        let chunks = (0..100).map(|_| Ok::<_, ()>(Bytes::from_static(&[7u8; 10])));
        let got = read_capped(futures_util::stream::iter(chunks), 25)
            .await
            .unwrap();
        assert_eq!(got.len(), 30, "stops at the first chunk past the cap");
        let small = futures_util::stream::iter([Ok::<_, ()>(Bytes::from_static(b"hi"))]);
        assert_eq!(read_capped(small, 25).await.unwrap(), b"hi");
    }

    #[test]
    fn refusals_are_told_and_stop_the_turn_unless_a_file_was_taken() {
        let big = MediaError::ImageTooLarge {
            name: "your photo".into(),
            size: 9,
            max: 4,
        };
        let mut g = Gathered::default();
        assert_eq!(g.notice(), None);
        assert!(g.answer("hi") && !g.answer(" "));
        g.refuse(big.clone());
        assert!(
            g.notice().unwrap().starts_with("Your photo is 9 bytes"),
            "{:?}",
            g.notice()
        );
        assert!(
            !g.answer("what is this?"),
            "the caption alone is not answered"
        );
        g.attachments.push(Attachment::Text {
            name: "a.txt".into(),
            text: "x".into(),
        });
        assert!(g.answer(""), "what was taken is answered");

        let mut many = Gathered::default();
        many.refuse(MediaError::TooManyImages);
        many.refuse(MediaError::TooManyImages);
        assert_eq!(many.refused.len(), 1, "said once");
        assert!(many.answer("compare"));
    }

    #[test]
    fn a_file_name_is_never_capitalized_but_our_words_are() {
        let mut g = Gathered::default();
        g.refuse(MediaError::NotText {
            name: "report.pdf".into(),
        });
        g.refuse(MediaError::NotAnImage {
            name: album_photo(2),
        });
        g.refuse(MediaError::Download {
            name: "a.txt".into(),
            reason: "HTTP 404".into(),
        });
        let notice = g.notice().unwrap();
        let lines: Vec<&str> = notice.lines().collect();
        assert!(lines[0].starts_with("report.pdf is not"), "{notice}");
        assert!(
            lines[1].starts_with("Photo 2 of the album is not"),
            "{notice}"
        );
        assert!(lines[2].starts_with("Could not download a.txt"), "{notice}");
    }
}
