//! Attachments users send, and the fake's loopback CDN: a MESSAGE_CREATE carries
//! complete attachment objects (`id`, `filename`, `size`, `url`, `proxy_url`,
//! `content_type`, …) whose `url` points at `GET /attachments/{channel}/{id}/{name}` on
//! the fake, which serves the bytes (404 for anything else) and records every download,
//! headers included (a download must not carry the bot token).

use std::time::Instant;

use serde_json::{Value, json};

use super::{FakeDiscord, St, lock};

/// A file a user attaches. Its announced `size` is its length unless set otherwise.
#[derive(Clone, Debug)]
pub struct FakeAttachment {
    pub filename: String,
    /// `content_type` as Discord guessed it (`None`: left out).
    pub content_type: Option<String>,
    pub data: Vec<u8>,
    pub size: u64,
    /// Serve 404 instead of the bytes.
    pub missing: bool,
}

impl FakeAttachment {
    pub fn new(filename: &str, content_type: Option<&str>, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        FakeAttachment {
            filename: filename.to_string(),
            content_type: content_type.map(str::to_string),
            size: data.len() as u64,
            data,
            missing: false,
        }
    }

    /// Announce this `size` whatever the bytes are.
    pub fn announcing(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// The CDN answers 404 for it.
    pub fn missing(mut self) -> Self {
        self.missing = true;
        self
    }
}

/// One request on the CDN route.
#[derive(Clone, Debug)]
pub struct CdnDownload {
    pub path: String,
    /// Request headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub status: u16,
    pub at: Instant,
}

impl CdnDownload {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl St {
    /// Attachment objects for a message, their bytes kept for the CDN route.
    pub(super) fn attachments_of(
        &mut self,
        base: &str,
        channel_id: u64,
        files: &[FakeAttachment],
    ) -> Vec<Value> {
        files
            .iter()
            .map(|f| {
                let id = self.snowflake();
                let path = format!("/attachments/{channel_id}/{id}/{}", f.filename);
                // Real CDN URLs carry signed expiry parameters.
                let url = format!("{base}{path}?ex=67a1b2c3&is=67a06143&hm=feedface");
                if !f.missing {
                    self.cdn.insert(path, f.data.clone());
                }
                let mut a = json!({
                    "id": id.to_string(),
                    "filename": f.filename,
                    "size": f.size,
                    "url": url,
                    "proxy_url": url.replace("/attachments/", "/proxy/attachments/"),
                });
                if let Some(t) = &f.content_type {
                    a["content_type"] = json!(t);
                }
                if f.content_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("image/"))
                {
                    a["width"] = json!(640);
                    a["height"] = json!(480);
                    a["placeholder"] = json!("1wcKDQJ4eIePd4h3h3eIh3eHd4eHeHc=");
                    a["placeholder_version"] = json!(1);
                }
                a
            })
            .collect()
    }

    /// `GET /attachments/...`: the bytes or 404.
    pub(super) fn serve_cdn(
        &mut self,
        path: &str,
        headers: Vec<(String, String)>,
    ) -> (u16, Vec<u8>) {
        let (status, body) = match self.cdn.get(path) {
            Some(data) => (200, data.clone()),
            None => (404, b"Not Found".to_vec()),
        };
        self.cdn_downloads.push(CdnDownload {
            path: path.to_string(),
            headers,
            status,
            at: Instant::now(),
        });
        (status, body)
    }
}

impl FakeDiscord {
    /// Queues a MESSAGE_CREATE with attachments (see [`FakeDiscord::send_message`]).
    /// Returns the message id.
    #[allow(clippy::too_many_arguments)]
    pub fn send_message_with_attachments(
        &self,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        username: &str,
        content: &str,
        mentions_bot: bool,
        files: &[FakeAttachment],
    ) -> u64 {
        self.queue_message(
            channel_id,
            guild_id,
            author_id,
            username,
            content,
            mentions_bot,
            files,
        )
    }

    /// Every request on the CDN route, in order.
    pub fn cdn_downloads(&self) -> Vec<CdnDownload> {
        lock(&self.inner.state).cdn_downloads.clone()
    }

    /// Successful CDN downloads so far.
    pub fn cdn_download_count(&self) -> usize {
        lock(&self.inner.state)
            .cdn_downloads
            .iter()
            .filter(|d| d.status == 200)
            .count()
    }
}
