//! Images and files from Telegram (DESIGN §10): which file of a message is fetched
//! (the largest photo size within `maxImageBytes`, an image document, a text document),
//! its size checked before a byte is downloaded (the message's `file_size`, then
//! `getFile`'s), the download through the bot's own client (`{apiRoot}/file/bot<token>/
//! <file_path>`, read no further than the limit), and albums: the photos of one
//! `media_group_id` that arrive one after another are answered as one message
//! (`collect_album`). The bot token is in every file URL: errors are logged with it
//! taken out and the person is told only what went wrong.

use super::{Ctx, describe};
use crate::channels::media::{self as shared, Gathered, Kind};
use crate::media::{Attachment, MediaError};
use std::time::Duration;
use teloxide::RequestError;
use teloxide::net::Download;
use teloxide::prelude::Requester;
use teloxide::types::{FileId, Message, PhotoSize};
use tokio::sync::mpsc;

/// How long a session's worker waits for the next photo of an album (Telegram sends
/// each as its own message, close together).
pub(super) const ALBUM_WINDOW: Duration = Duration::from_millis(800);
/// Telegram albums hold at most 10 items.
pub(super) const MAX_ALBUM: usize = 10;

/// The file of a message that is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    pub file_id: String,
    /// How the person knows the file: its file name, or "your photo".
    pub name: String,
    pub kind: Kind,
    /// As the message announced it (`None`: it did not).
    pub size: Option<u64>,
}

/// Whether a message brings something to answer: text, a photo or a document
/// (captioned or not).
pub(super) fn carries_input(msg: &Message) -> bool {
    msg.text().is_some() || msg.photo().is_some() || msg.document().is_some()
}

/// Whether a message or the rest of its album has a photo or a document.
pub(super) fn has_files(msg: &Message, album: &[&Message]) -> bool {
    std::iter::once(msg)
        .chain(album.iter().copied())
        .any(|m| m.photo().is_some() || m.document().is_some())
}

/// The text of a message (its text, else its caption), with the captions of the rest
/// of its album after it.
pub(super) fn text_of(msg: &Message, album: &[&Message]) -> String {
    std::iter::once(msg)
        .chain(album.iter().copied())
        .filter_map(|m| m.text().or_else(|| m.caption()))
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// teloxide reads a missing `file_size` as `u32::MAX`.
fn announced(size: u32) -> Option<u64> {
    (size != u32::MAX).then_some(u64::from(size))
}

/// The photo size sent to the model: the largest (by pixels) whose announced size is
/// within `max`; one that announces none is taken only when no other fits (its size
/// is checked again by `getFile` and while downloading).
pub(super) fn best_photo(sizes: &[PhotoSize], max: u64) -> Option<&PhotoSize> {
    let area = |p: &PhotoSize| u64::from(p.width) * u64::from(p.height);
    let fits = |p: &&PhotoSize| announced(p.file.size).is_some_and(|s| s <= max);
    sizes
        .iter()
        .filter(fits)
        .max_by_key(|p| area(p))
        .or_else(|| {
            sizes
                .iter()
                .filter(|p| announced(p.file.size).is_none())
                .max_by_key(|p| area(p))
        })
}

/// The file of one message to fetch (`None`: it has no photo or document), or why it
/// is refused before any download. `photo_name` names a photo to the person.
pub(super) fn plan(
    msg: &Message,
    photo_name: &str,
    max: u64,
) -> Option<Result<Planned, MediaError>> {
    if let Some(sizes) = msg.photo() {
        if sizes.is_empty() {
            return Some(Err(MediaError::Download {
                name: photo_name.to_string(),
                reason: "Telegram sent no file for it".to_string(),
            }));
        }
        return Some(match best_photo(sizes, max) {
            Some(p) => Ok(Planned {
                file_id: p.file.id.0.clone(),
                name: photo_name.to_string(),
                kind: Kind::Image,
                size: announced(p.file.size),
            }),
            None => Err(MediaError::ImageTooLarge {
                name: photo_name.to_string(),
                size: sizes
                    .iter()
                    .filter_map(|p| announced(p.file.size))
                    .min()
                    .unwrap_or(u64::MAX),
                max,
            }),
        });
    }
    let doc = msg.document()?;
    let name = doc
        .file_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| shared::YOUR_FILE.to_string());
    let mime = doc.mime_type.as_ref().map(|m| m.essence_str().to_string());
    let size = announced(doc.file.size);
    Some(shared::classify(&name, mime.as_deref()).and_then(|kind| {
        shared::check_size(&name, kind, size, max).map(|()| Planned {
            file_id: doc.file.id.0.clone(),
            name,
            kind,
            size,
        })
    }))
}

/// Fetch and check the photos and documents of a message and the rest of its album.
/// At most [`crate::media::MAX_IMAGES`] images are downloaded.
pub(super) async fn gather(ctx: &Ctx, msg: &Message, album: &[&Message]) -> Gathered {
    let max = ctx.app.config().agents.defaults.max_image_bytes();
    let all: Vec<&Message> = std::iter::once(msg).chain(album.iter().copied()).collect();
    let photos = all.iter().filter(|m| m.photo().is_some()).count();
    let mut n = 0;
    let plans: Vec<Result<Planned, MediaError>> = all
        .iter()
        .filter_map(|m| {
            if m.photo().is_some() {
                n += 1;
            }
            let name = if photos > 1 {
                shared::album_photo(n)
            } else {
                shared::YOUR_PHOTO.to_string()
            };
            plan(m, &name, max)
        })
        .collect();
    let kinds: Vec<Kind> = plans
        .iter()
        .map(|p| p.as_ref().map_or(Kind::Text, |p| p.kind))
        .collect();
    let over = shared::over_image_limit(&kinds);
    let mut out = Gathered::default();
    let mut wanted = Vec::new();
    for (p, over) in plans.into_iter().zip(over) {
        match p {
            Err(e) => out.refuse(e),
            Ok(_) if over => out.refuse(MediaError::TooManyImages),
            Ok(p) => wanted.push(p),
        }
    }
    let fetched = futures_util::future::join_all(wanted.iter().map(|p| fetch(ctx, p, max))).await;
    for r in fetched {
        match r {
            Ok(a) => out.attachments.push(a),
            Err(e) => out.refuse(e),
        }
    }
    out
}

/// `getFile` (its size checked), then the download, read up to the limit.
async fn fetch(ctx: &Ctx, p: &Planned, max: u64) -> Result<Attachment, MediaError> {
    let failed = |reason: &str| MediaError::Download {
        name: p.name.clone(),
        reason: reason.to_string(),
    };
    let file = ctx
        .bot
        .get_file(FileId(p.file_id.clone()))
        .await
        .map_err(|e| {
            tracing::warn!(
                "Telegram getFile failed for {}: {}",
                p.name,
                describe(&e, &ctx.token)
            );
            match e {
                RequestError::Api(api) => failed(&format!("Telegram said \"{api}\"")),
                _ => failed("Telegram could not be reached"),
            }
        })?;
    shared::check_size(&p.name, p.kind, announced(file.size), max)?;
    let stream = ctx.bot.download_file_stream(&file.path);
    let data = shared::read_capped(stream, shared::cap(p.kind, max))
        .await
        .map_err(|e| {
            let reason = match e.status() {
                Some(s) => format!("Telegram answered HTTP {}", s.as_u16()),
                None => "the download was cut off".to_string(),
            };
            // reqwest quotes the URL, and the URL holds the bot token.
            let detail = ctx.token.redact_in(&e.without_url().to_string());
            tracing::warn!("downloading {} from Telegram failed: {detail}", p.name);
            failed(&reason)
        })?;
    shared::finish(&p.name, p.kind, data, max)
}

/// The rest of an album whose first message a session's worker just took: the
/// messages of the same `group` that follow it in the queue, each within
/// [`ALBUM_WINDOW`] of the one before (at most [`MAX_ALBUM`] in all). Also returns
/// the first message that is not part of it, which is answered next.
pub(super) async fn collect_album<T>(
    rx: &mut mpsc::Receiver<T>,
    group: &str,
    group_of: impl Fn(&T) -> Option<&str>,
) -> (Vec<T>, Option<T>) {
    let mut album = Vec::new();
    while album.len() + 1 < MAX_ALBUM {
        match tokio::time::timeout(ALBUM_WINDOW, rx.recv()).await {
            Ok(Some(next)) if group_of(&next) == Some(group) => album.push(next),
            Ok(Some(other)) => return (album, Some(other)),
            Ok(None) | Err(_) => break,
        }
    }
    (album, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(extra: serde_json::Value) -> Message {
        let mut m = json!({
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "U"},
            "from": {"id": 42, "is_bot": false, "first_name": "U"},
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_value(m).unwrap()
    }

    fn size(id: &str, w: u32, bytes: Option<u64>) -> serde_json::Value {
        let mut s =
            json!({"file_id": id, "file_unique_id": format!("u{id}"), "width": w, "height": w});
        if let Some(b) = bytes {
            s["file_size"] = json!(b);
        }
        s
    }

    #[test]
    fn the_largest_photo_size_within_the_limit_is_taken() {
        let photo = message(json!({"photo": [
            size("s", 90, Some(1_000)),
            size("m", 320, Some(20_000)),
            size("l", 1280, Some(200_000)),
        ]}));
        let pick = |max| plan(&photo, "your photo", max).unwrap();
        assert_eq!(pick(1_000_000).unwrap().file_id, "l");
        assert_eq!(pick(100_000).unwrap().file_id, "m");
        assert_eq!(pick(1_000).unwrap().file_id, "s");
        assert_eq!(
            pick(999).unwrap_err(),
            MediaError::ImageTooLarge {
                name: "your photo".into(),
                size: 1_000,
                max: 999
            }
        );
        let empty = message(json!({"photo": []}));
        assert!(matches!(
            plan(&empty, "p", 10),
            Some(Err(MediaError::Download { .. }))
        ));
        let no_size = message(json!({"photo": [size("x", 90, None)]}));
        assert_eq!(
            plan(&no_size, "p", 10).unwrap().unwrap().size,
            None,
            "no announced size: checked by getFile and the download"
        );
    }

    #[test]
    fn documents_are_images_text_or_refused_before_downloading() {
        let doc = |name: &str, mime: &str, bytes: u64| {
            message(json!({"document": {
                "file_id": "d", "file_unique_id": "ud", "file_size": bytes,
                "file_name": name, "mime_type": mime,
            }}))
        };
        let max = 5 << 20;
        let kind = |m: &Message| plan(m, "p", max).unwrap().map(|p| p.kind);
        assert_eq!(kind(&doc("cat.png", "image/png", 10)), Ok(Kind::Image));
        assert_eq!(kind(&doc("notes.md", "text/markdown", 10)), Ok(Kind::Text));
        assert!(matches!(
            kind(&doc("big.png", "image/png", max + 1)),
            Err(MediaError::ImageTooLarge { .. })
        ));
        assert!(matches!(
            kind(&doc("big.log", "text/plain", 200_000)),
            Err(MediaError::TextTooLarge { .. })
        ));
        assert_eq!(
            kind(&doc("a.pdf", "application/pdf", 10)),
            Err(MediaError::NotText {
                name: "a.pdf".into()
            })
        );
        assert!(plan(&message(json!({"text": "hi"})), "p", max).is_none());
    }

    #[test]
    fn captions_are_the_text_and_photos_count_as_input() {
        let photo = message(json!({"photo": [size("s", 90, Some(1))], "caption": "what is this?"}));
        let bare = message(json!({"photo": [size("t", 90, Some(1))]}));
        let sticker_like = message(json!({"location": {"latitude": 1.0, "longitude": 2.0}}));
        assert!(carries_input(&photo) && carries_input(&bare));
        assert!(!carries_input(&sticker_like));
        assert_eq!(text_of(&bare, &[&photo]), "what is this?");
        assert_eq!(text_of(&bare, &[]), "");
    }

    #[tokio::test(start_paused = true)]
    async fn an_album_is_collected_until_a_pause_or_another_message() {
        let (tx, mut rx) = mpsc::channel::<(u32, Option<&'static str>)>(16);
        fn group<'a>(m: &'a (u32, Option<&'static str>)) -> Option<&'a str> {
            m.1
        }
        tx.send((2, Some("g"))).await.unwrap();
        tx.send((3, Some("g"))).await.unwrap();
        tx.send((4, None)).await.unwrap();
        let (album, next) = collect_album(&mut rx, "g", group).await;
        assert_eq!(album.iter().map(|m| m.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(next, Some((4, None)), "the next message is answered next");

        // A late photo, within the window of the one before, still joins.
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ALBUM_WINDOW / 2).await;
            sender.send((6, Some("h"))).await.unwrap();
            tokio::time::sleep(ALBUM_WINDOW * 2).await;
            sender.send((7, Some("h"))).await.unwrap();
        });
        let (album, next) = collect_album(&mut rx, "h", group).await;
        assert_eq!(album.iter().map(|m| m.0).collect::<Vec<_>>(), [6]);
        assert_eq!(next, None, "a pause ends the album");

        for i in 0..12 {
            tx.send((100 + i, Some("big"))).await.unwrap();
        }
        let (album, _) = collect_album(&mut rx, "big", group).await;
        assert_eq!(album.len(), MAX_ALBUM - 1, "ten items at most");
    }
}
