//! Images given as `http(s)://` links (an OpenAI `image_url` part, DESIGN §10): the
//! gateway downloads them and sends the bytes inline, like a Telegram or Discord image.
//! The size the server announces is checked before the body is read, the body is read
//! up to the limit and no further, the bytes decide the type, no redirect is followed
//! and no credential or cookie is sent. Only `http` and `https` links are fetched.

use super::{ImagePart, MediaError, check_announced};
use std::sync::OnceLock;
use std::time::Duration;

/// A link that does not answer within this long is refused.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .use_rustls_tls()
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether `url` is a link this module fetches (`http://` or `https://`).
pub fn is_link(url: &str) -> bool {
    reqwest::Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Download the image at `url` (named `name` in errors) within `max` bytes.
pub async fn fetch(name: &str, url: &str, max: u64) -> Result<ImagePart, MediaError> {
    let failed = |reason: String| MediaError::Download {
        name: name.to_string(),
        reason,
    };
    let url = reqwest::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| failed("it is not an http(s) link".into()))?;
    let host = url.host_str().unwrap_or("").to_string();
    let client = client().map_err(|e| failed(format!("no HTTP client: {e}")))?;
    let response = client.get(url).send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "did not answer in time"
        } else {
            "could not be reached"
        };
        tracing::debug!("image link {name}: {}", e.without_url());
        failed(format!("{host} {why}"))
    })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(failed(format!(
            "{host} answered HTTP {} (a redirect; links are not followed) — link the image itself",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(failed(format!("{host} answered HTTP {}", status.as_u16())));
    }
    if let Some(len) = response.content_length() {
        check_announced(name, len, true, max)?;
    }
    // Over the limit, reading stops; from_bytes names the size.
    let data = super::read_capped(response.bytes_stream(), max)
        .await
        .map_err(|_| failed(format!("the download from {host} was cut off")))?;
    ImagePart::from_bytes(name, bytes::Bytes::from(data), max)
}
