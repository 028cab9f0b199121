//! Images and files from Discord (DESIGN §10): a message's attachments, each read as
//! an image or as text by its name and `content_type` (other types refused without a
//! download), its announced `size` checked first, then fetched from its `url` on a
//! client of its own (no bot token on it, a timeout, redirects followed only on the
//! same host) and read no further than the limit. Only Discord's CDN hosts, or the
//! host of a custom `apiBase`, are fetched from.

use crate::channels::media::{self as shared, Gathered, Kind};
use crate::media::{Attachment, MediaError};
use reqwest::Url;
use serenity::all::Attachment as DiscordAttachment;
use std::time::Duration;

/// Longest a download may take, connection included.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed (same host only).
const MAX_REDIRECTS: usize = 3;

/// Discord's own hosts for attachments.
const DISCORD_HOSTS: &[&str] = &["discordapp.com", "discordapp.net", "discord.com"];

/// Fetches attachments; one per channel.
#[derive(Debug, Clone)]
pub(super) struct Downloader {
    client: reqwest::Client,
    /// `host[:port]` of a custom `apiBase` (a proxy or a test fake), also fetched from.
    api_host: Option<String>,
}

/// `host[:port]` of a URL.
fn authority(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Whether an attachment URL may be fetched: https on one of Discord's hosts, or the
/// custom `apiBase`'s host (any scheme).
pub(super) fn allowed(url: &Url, api_host: Option<&str>) -> bool {
    if api_host.is_some() && authority(url).as_deref() == api_host {
        return matches!(url.scheme(), "http" | "https");
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    url.scheme() == "https"
        && DISCORD_HOSTS
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

impl Downloader {
    /// A client for attachments; `api_base` is the channel's `apiBase`.
    pub fn new(api_base: &str) -> Result<Downloader, reqwest::Error> {
        let api_host = Url::parse(api_base)
            .ok()
            .filter(|u| u.host_str() != Some("discord.com"))
            .and_then(|u| authority(&u));
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .first()
                .is_some_and(|first| authority(first) == authority(attempt.url()));
            if attempt.previous().len() > MAX_REDIRECTS || !same_host {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(DOWNLOAD_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(policy)
            .build()?;
        Ok(Downloader { client, api_host })
    }

    /// Fetch and check a message's attachments, in order; at most
    /// [`crate::media::MAX_IMAGES`] images are downloaded.
    pub async fn gather(&self, attachments: &[DiscordAttachment], max: u64) -> Gathered {
        let kinds: Vec<Result<Kind, MediaError>> = attachments
            .iter()
            .map(|a| {
                let kind = shared::classify(&a.filename, a.content_type.as_deref())?;
                shared::check_size(&a.filename, kind, Some(u64::from(a.size)), max)?;
                Ok(kind)
            })
            .collect();
        let over = shared::over_image_limit(
            &kinds
                .iter()
                .map(|k| *k.as_ref().unwrap_or(&Kind::Text))
                .collect::<Vec<_>>(),
        );
        let mut out = Gathered::default();
        let mut wanted = Vec::new();
        for ((a, kind), over) in attachments.iter().zip(kinds).zip(over) {
            match kind {
                Err(e) => out.refuse(e),
                Ok(_) if over => out.refuse(MediaError::TooManyImages),
                Ok(kind) => wanted.push((a, kind)),
            }
        }
        let fetched =
            futures_util::future::join_all(wanted.iter().map(|(a, k)| self.fetch(a, *k, max)))
                .await;
        for r in fetched {
            match r {
                Ok(a) => out.attachments.push(a),
                Err(e) => out.refuse(e),
            }
        }
        out
    }

    async fn fetch(
        &self,
        a: &DiscordAttachment,
        kind: Kind,
        max: u64,
    ) -> Result<Attachment, MediaError> {
        let name = a.filename.as_str();
        let failed = |reason: &str| MediaError::Download {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(&a.url)
            .ok()
            .filter(|u| allowed(u, self.api_host.as_deref()))
            .ok_or_else(|| {
                tracing::warn!(attachment = %a.id, "not fetched: its URL is not on Discord's CDN");
                failed("its address is not on Discord's CDN")
            })?;
        let response = self.client.get(url).send().await.map_err(|e| {
            tracing::warn!(attachment = %a.id, "downloading {name} from Discord failed: {}", e.without_url());
            failed("Discord's CDN could not be reached")
        })?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(attachment = %a.id, "Discord's CDN answered HTTP {status} for {name}");
            return Err(failed(&format!(
                "Discord's CDN answered HTTP {}",
                status.as_u16()
            )));
        }
        if let Some(len) = response.content_length() {
            shared::check_size(name, kind, Some(len), max)?;
        }
        let data = shared::read_capped(response.bytes_stream(), shared::cap(kind, max))
            .await
            .map_err(|e| {
                tracing::warn!(attachment = %a.id, "downloading {name} from Discord failed: {}", e.without_url());
                failed("the download was cut off")
            })?;
        shared::finish(name, kind, data, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_come_only_from_discord_or_the_custom_api_base() {
        let fake = Some("127.0.0.1:4000");
        // (url, api host, allowed)
        let cases = [
            (
                "https://cdn.discordapp.com/attachments/1/2/a.png?ex=1",
                None,
                true,
            ),
            (
                "https://media.discordapp.net/attachments/1/2/a.png",
                None,
                true,
            ),
            (
                "http://cdn.discordapp.com/attachments/1/2/a.png",
                None,
                false,
            ),
            ("https://evil.com/cdn.discordapp.com/a.png", None, false),
            ("https://cdn.discordapp.com.evil.com/a.png", None, false),
            ("http://127.0.0.1:4000/attachments/1/2/a.png", fake, true),
            ("http://127.0.0.1:4001/attachments/1/2/a.png", fake, false),
            ("http://169.254.169.254/latest/meta-data", fake, false),
            ("file:///etc/passwd", None, false),
        ];
        for (url, api, want) in cases {
            let u = Url::parse(url).unwrap();
            assert_eq!(allowed(&u, api), want, "{url} with {api:?}");
        }
        assert_eq!(
            Downloader::new("https://discord.com").unwrap().api_host,
            None
        );
        assert_eq!(
            Downloader::new("http://127.0.0.1:4000/")
                .unwrap()
                .api_host
                .as_deref(),
            Some("127.0.0.1:4000")
        );
    }
}
