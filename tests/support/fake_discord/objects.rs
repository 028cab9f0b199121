//! Discord API v10 object builders (complete enough for serenity 0.12) and
//! small wire helpers (timestamps, snowflakes, multipart bodies, error bodies).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Milliseconds of the Discord epoch (2015-01-01T00:00:00Z).
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Permissions string used for members and `app_permissions` (a realistic
/// "everything but administrator" set).
pub const ALL_PERMISSIONS: &str = "2248473465835073";

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Snowflake for "now"; strictly greater than `last`.
pub fn next_snowflake(last: &mut u64) -> u64 {
    let base = unix_ms().saturating_sub(DISCORD_EPOCH_MS) << 22;
    let id = base.max(*last + 1);
    *last = id;
    id
}

/// ISO 8601 timestamp as Discord writes it: `2024-05-01T12:34:56.789000+00:00`.
pub fn iso_now() -> String {
    iso_from_ms(unix_ms())
}

pub fn iso_from_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let micros = (ms % 1000) * 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A complete user object (new username system: discriminator "0").
pub fn user(id: u64, username: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": username,
        "discriminator": "0",
        "global_name": if bot { Value::Null } else { json!(username) },
        "avatar": null,
        "bot": bot,
        "system": false,
        "banner": null,
        "accent_color": null,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null,
    })
}

/// The bot as `GET /users/@me` and READY describe it.
pub fn current_user(id: u64, username: &str) -> Value {
    let mut u = user(id, username, true);
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(false);
    u["email"] = Value::Null;
    u["locale"] = json!("en-US");
    u["premium_type"] = json!(0);
    u
}

/// A guild member. `with_user` adds `user` (omitted inside MESSAGE_CREATE);
/// `with_permissions` adds `permissions` (interactions only).
pub fn member(user: &Value, guild_id: u64, with_user: bool, with_permissions: bool) -> Value {
    let mut m = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": [],
        "joined_at": iso_from_ms(unix_ms().saturating_sub(86_400_000)),
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "unusual_dm_activation_until": null,
        "guild_id": guild_id.to_string(),
    });
    if with_user {
        m["user"] = user.clone();
    }
    if with_permissions {
        m["permissions"] = json!(ALL_PERMISSIONS);
    }
    m
}

/// A guild text channel.
pub fn guild_text_channel(id: u64, guild_id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "type": 0,
        "guild_id": guild_id.to_string(),
        "name": format!("channel-{id}"),
        "position": 0,
        "permission_overwrites": [],
        "nsfw": false,
        "parent_id": null,
        "topic": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

/// A DM channel with one recipient.
pub fn dm_channel(id: u64, recipient: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "type": 1,
        "last_message_id": null,
        "last_pin_timestamp": null,
        "flags": 0,
        "recipients": [recipient],
    })
}

/// Message skeleton with every field serenity requires.
pub fn message(id: u64, channel_id: u64, author: &Value, content: &str) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
    })
}

/// Discord's generic error body.
pub fn error(code: u64, message: &str) -> Value {
    json!({"message": message, "code": code})
}

/// `400 Invalid Form Body` with one field error.
pub fn form_error(field: &str, code: &str, message: &str) -> Value {
    let mut errors = json!({"_errors": [{"code": code, "message": message}]});
    for part in field.rsplit('.') {
        errors = json!({ part: errors });
    }
    json!({"code": 50035, "errors": errors, "message": "Invalid Form Body"})
}

/// A file part of a multipart request.
#[derive(Clone, Debug)]
pub struct UploadedFile {
    /// Form field name, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Splits a `multipart/form-data` body: the `payload_json` part (parsed) and files.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<UploadedFile>) {
    let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return (Value::Null, Vec::new());
    };
    let delim = format!("--{boundary}").into_bytes();
    let mut payload = Value::Null;
    let mut files = Vec::new();
    for part in split_bytes(body, &delim) {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..head_end]).into_owned();
        let mut data = &part[head_end + 4..];
        data = data.strip_suffix(b"\r\n").unwrap_or(data);
        let attr = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let start = head.find(&key)? + key.len();
            let len = head[start..].find('"')?;
            Some(head[start..start + len].to_string())
        };
        let field = attr("name").unwrap_or_default();
        let ctype = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        });
        if field == "payload_json" {
            payload = serde_json::from_slice(data).unwrap_or(Value::Null);
        } else if let Some(filename) = attr("filename") {
            files.push(UploadedFile {
                field,
                filename,
                content_type: ctype,
                data: data.to_vec(),
            });
        }
    }
    (payload, files)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delim) {
        out.push(&hay[..i]);
        hay = &hay[i + delim.len()..];
    }
    out.push(hay);
    out.into_iter()
        .skip(1)
        .filter(|p| !p.starts_with(b"--"))
        .collect()
}

/// Parses a snowflake path segment.
pub fn snowflake(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// A JSON id (string or number) as u64.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}
