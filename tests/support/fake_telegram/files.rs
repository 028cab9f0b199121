//! Files at the fake: photo and document messages from users (complete `PhotoSize` and
//! `Document` objects, albums with a `media_group_id`), `getFile`, and the download
//! route `/file/bot<token>/<file_path>` (404 for an unknown path, 401 for another
//! token), each download recorded so tests can count them.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::objects::{Params, group_chat, private_chat, string, text_entities, unix_now};
use super::{FakeTelegram, Reply, St, bad_request, lock, ok};

/// A file a user sends. Its announced `file_size` is its length unless set otherwise.
#[derive(Clone, Debug)]
pub struct FakeFile {
    pub data: Vec<u8>,
    /// `file_size` in the message (`None`: left out, as the Bot API may).
    pub size: Option<u64>,
    /// `file_size` in the `getFile` answer, when it differs from `size`.
    pub get_file_size: Option<u64>,
    /// The download route answers 404 for it.
    pub missing: bool,
    /// A document's `file_name` and `mime_type`, as the sender's client set them.
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
}

impl FakeFile {
    pub fn new(data: impl Into<Vec<u8>>) -> FakeFile {
        let data = data.into();
        FakeFile {
            size: Some(data.len() as u64),
            get_file_size: None,
            missing: false,
            file_name: None,
            mime_type: None,
            data,
        }
    }

    /// Announce this `file_size` (in the message and `getFile`) whatever the bytes are.
    pub fn announcing(mut self, size: u64) -> FakeFile {
        self.size = Some(size);
        self
    }

    /// Leave `file_size` out of the message.
    pub fn without_size(mut self) -> FakeFile {
        self.size = None;
        self
    }

    /// A document's `file_name`.
    pub fn named(mut self, name: &str) -> FakeFile {
        self.file_name = Some(name.to_string());
        self
    }

    /// A document's `mime_type`.
    pub fn typed(mut self, mime: &str) -> FakeFile {
        self.mime_type = Some(mime.to_string());
        self
    }

    /// The download route answers 404 for it (`getFile` still knows it).
    pub fn missing(mut self) -> FakeFile {
        self.missing = true;
        self
    }

    /// `getFile` announces this `file_size`.
    pub fn get_file_announcing(mut self, size: u64) -> FakeFile {
        self.get_file_size = Some(size);
        self
    }
}

/// A file stored at the fake, by `file_id`.
pub(super) struct StoredFile {
    unique_id: String,
    path: String,
    /// `None`: the download route answers 404.
    data: Option<Vec<u8>>,
    size: Option<u64>,
}

/// One request on the file download route.
#[derive(Clone, Debug)]
pub struct FileDownload {
    /// The `file_path` asked for (percent-decoded).
    pub path: String,
    /// `false` when the URL carried another token.
    pub authorized: bool,
    pub status: u16,
    pub at: Instant,
}

/// Widths of the sizes of a photo, smallest first (as Telegram lists them).
const WIDTHS: [u32; 5] = [90, 320, 800, 1280, 2560];

/// Where a media message goes.
#[derive(Clone, Copy, Debug)]
pub enum To {
    /// The private chat with the sender.
    Dm,
    /// A group (made known if it is new).
    Group(i64),
}

impl St {
    /// Store a file; its `file_id`, as a user's client would have uploaded it.
    fn add_file(&mut self, file: &FakeFile, dir: &str, ext: &str) -> Value {
        self.next_file += 1;
        let n = self.next_file;
        let id = format!("AgACAgIAAxkBAAI{n:06}");
        let stored = StoredFile {
            unique_id: format!("AQAD{n:06}"),
            path: format!("{dir}/file_{n}.{ext}"),
            data: (!file.missing).then(|| file.data.clone()),
            size: file.get_file_size.or(file.size),
        };
        self.files.insert(id.clone(), stored);
        let mut meta = json!({"file_id": id, "file_unique_id": format!("AQAD{n:06}")});
        if let Some(s) = file.size {
            meta["file_size"] = json!(s);
        }
        meta
    }

    /// A user message with `media` fields and an optional caption, queued as an update.
    fn queue_media(
        &mut self,
        to: To,
        user_id: i64,
        username: &str,
        caption: Option<&str>,
        media: Map<String, Value>,
    ) -> i64 {
        let from = self.remember_user(user_id, username);
        let chat = match to {
            To::Dm => {
                let c = private_chat(&from);
                self.chats.insert(user_id, c.clone());
                c
            }
            To::Group(id) => self
                .chats
                .entry(id)
                .or_insert_with(|| group_chat(id, id <= -1_000_000_000_000, false))
                .clone(),
        };
        let chat_id = chat["id"].as_i64().unwrap_or(0);
        let mut msg = json!({
            "message_id": self.next_message_id(chat_id),
            "from": from,
            "chat": chat,
            "date": unix_now(),
        });
        for (k, v) in media {
            msg[k] = v;
        }
        if let Some(c) = caption {
            msg["caption"] = json!(c);
            let entities = text_entities(c);
            if !entities.is_empty() {
                msg["caption_entities"] = Value::Array(entities);
            }
        }
        self.store(chat_id, &msg);
        self.push_update("message", msg)
    }

    fn photo(&mut self, sizes: &[FakeFile]) -> Value {
        let list: Vec<Value> = sizes
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut p = self.add_file(f, "photos", "jpg");
                let w = WIDTHS[i.min(WIDTHS.len() - 1)] + i as u32;
                p["width"] = json!(w);
                p["height"] = json!(w * 3 / 4);
                p
            })
            .collect();
        Value::Array(list)
    }
}

impl FakeTelegram {
    /// Queue a photo message (its sizes smallest first, as Telegram lists them); a
    /// photo without a caption when `caption` is `None`. Returns the update id.
    pub fn send_photo(
        &self,
        to: To,
        user_id: i64,
        username: &str,
        caption: Option<&str>,
        sizes: &[FakeFile],
    ) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let mut media = Map::new();
            media.insert("photo".into(), st.photo(sizes));
            st.queue_media(to, user_id, username, caption, media)
        };
        self.inner.wake();
        id
    }

    /// Queue a document message (its `file_name` and `mime_type` from
    /// [`FakeFile::named`] and [`FakeFile::typed`]; left out when unset). Returns the
    /// update id.
    pub fn send_document(
        &self,
        to: To,
        user_id: i64,
        username: &str,
        caption: Option<&str>,
        file: &FakeFile,
    ) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let ext = file
                .file_name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .map_or("bin", |(_, e)| e);
            let mut doc = st.add_file(file, "documents", ext);
            if let Some(n) = &file.file_name {
                doc["file_name"] = json!(n);
            }
            if let Some(m) = &file.mime_type {
                doc["mime_type"] = json!(m);
            }
            let mut media = Map::new();
            media.insert("document".into(), doc);
            st.queue_media(to, user_id, username, caption, media)
        };
        self.inner.wake();
        id
    }

    /// Queue an album: one photo message per item, sharing a `media_group_id`, the
    /// caption on the first (as Telegram clients send it). Returns the update ids.
    pub fn send_album(
        &self,
        to: To,
        user_id: i64,
        username: &str,
        caption: Option<&str>,
        photos: &[FakeFile],
    ) -> Vec<i64> {
        let ids = {
            let mut st = lock(&self.inner.state);
            st.next_file += 1;
            let group = format!("13{:015}", st.next_file);
            photos
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut media = Map::new();
                    media.insert("photo".into(), st.photo(std::slice::from_ref(p)));
                    media.insert("media_group_id".into(), json!(group));
                    let caption = if i == 0 { caption } else { None };
                    st.queue_media(to, user_id, username, caption, media)
                })
                .collect()
        };
        self.inner.wake();
        ids
    }

    /// Every request on the download route, in order.
    pub fn file_downloads(&self) -> Vec<FileDownload> {
        lock(&self.inner.state).downloads.clone()
    }

    /// Successful downloads so far.
    pub fn download_count(&self) -> usize {
        lock(&self.inner.state)
            .downloads
            .iter()
            .filter(|d| d.status == 200)
            .count()
    }
}

/// `getFile`: the stored file's metadata and `file_path`.
pub(super) fn get_file(st: &St, p: &Params) -> Reply {
    let id = string(p, "file_id").unwrap_or_default();
    match st.files.get(&id) {
        Some(f) => {
            let mut file = json!({
                "file_id": id,
                "file_unique_id": f.unique_id,
                "file_path": f.path,
            });
            if let Some(s) = f.size {
                file["file_size"] = json!(s);
            }
            ok(file)
        }
        None => bad_request("Bad Request: invalid file_id"),
    }
}

/// `GET /file/bot<token>/<file_path>`: the bytes, or a status.
pub(super) fn download(st: &mut St, token: &str, rest: &str) -> (u16, Vec<u8>) {
    let (given, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = percent_decode(path);
    let authorized = given == token;
    let found = st.files.values().find(|f| f.path == path);
    let (status, body) = match found.and_then(|f| f.data.as_ref()) {
        _ if !authorized => (401, b"Unauthorized".to_vec()),
        Some(data) => (200, data.clone()),
        None => (404, b"Not Found".to_vec()),
    };
    st.downloads.push(FileDownload {
        path,
        authorized,
        status,
        at: Instant::now(),
    });
    (status, body)
}

/// `%2F` and friends back to bytes (teloxide sends the file path as one segment).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
