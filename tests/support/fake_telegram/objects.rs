//! Bot API objects (User, Chat, Message, entities) and request-parameter helpers.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Request parameters: the JSON body object, or form/query fields.
pub(super) type Params = Map<String, Value>;

/// Current Unix time in seconds (Bot API `date` fields).
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A human user. An empty `username` leaves the optional field out.
pub(super) fn user(id: i64, username: &str) -> Value {
    let mut u = json!({
        "id": id,
        "is_bot": false,
        "first_name": if username.is_empty() { format!("User {id}") } else { username.to_string() },
        "language_code": "en",
    });
    if !username.is_empty() {
        u["username"] = json!(username);
    }
    u
}

/// The private chat with a user (same id as the user).
pub(super) fn private_chat(user: &Value) -> Value {
    let mut c = json!({
        "id": user["id"],
        "type": "private",
        "first_name": user["first_name"],
    });
    if let Some(name) = user.get("username") {
        c["username"] = name.clone();
    }
    c
}

/// A basic group, or a supergroup (forum when `forum`).
pub(super) fn group_chat(id: i64, supergroup: bool, forum: bool) -> Value {
    let title = format!("Test Group {id}");
    if supergroup {
        let mut c = json!({"id": id, "type": "supergroup", "title": title});
        if forum {
            c["is_forum"] = json!(true);
        }
        c
    } else {
        json!({"id": id, "type": "group", "title": title})
    }
}

/// Chat object for an id nobody registered: positive ids are private chats,
/// `-100…` ids supergroups, other negative ids basic groups.
pub(super) fn default_chat(id: i64) -> Value {
    if id > 0 {
        private_chat(&user(id, ""))
    } else {
        group_chat(id, id <= -1_000_000_000_000, false)
    }
}

/// A copy of a message without its own `reply_to_message` (the Bot API never
/// nests replies more than one level).
pub(super) fn strip_reply(msg: &Value) -> Value {
    let mut m = msg.clone();
    if let Some(obj) = m.as_object_mut() {
        obj.remove("reply_to_message");
    }
    m
}

/// Length in UTF-16 code units, the unit of every Bot API text limit and offset.
pub(super) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `bot_command` and `mention` entities the server would attach to user text.
pub(super) fn text_entities(text: &str) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut offsets = Vec::with_capacity(chars.len() + 1);
    let mut acc = 0;
    for c in &chars {
        offsets.push(acc);
        acc += c.len_utf16();
    }
    offsets.push(acc);
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let run = |from: usize| {
        let mut j = from;
        while j < chars.len() && word(chars[j]) {
            j += 1;
        }
        j
    };
    let entity = |kind: &str, from: usize, to: usize| json!({"type": kind, "offset": offsets[from], "length": offsets[to] - offsets[from]});
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '/' && (i == 0 || chars[i - 1].is_whitespace()) {
            let mut j = run(i + 1);
            if (1..=32).contains(&(j - i - 1)) {
                if j < chars.len() && chars[j] == '@' {
                    let k = run(j + 1);
                    if k > j + 1 {
                        j = k;
                    }
                }
                out.push(entity("bot_command", i, j));
                i = j;
                continue;
            }
        }
        if chars[i] == '@' && (i == 0 || !word(chars[i - 1])) {
            let j = run(i + 1);
            if (5..=32).contains(&(j - i - 1)) {
                out.push(entity("mention", i, j));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Integer parameter given as a JSON number or a numeric string.
pub(super) fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn int(p: &Params, key: &str) -> Option<i64> {
    p.get(key).and_then(int_value)
}

/// String parameter (numbers and booleans are rendered as text).
pub(super) fn string(p: &Params, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

pub(super) fn boolean(p: &Params, key: &str) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    }
}

/// Object/array parameter, also accepted as a JSON-serialised string (the
/// form-encoded way of passing `reply_markup`, `commands`, ...).
pub(super) fn structured(p: &Params, key: &str) -> Option<Value> {
    match p.get(key)? {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(|v| v.is_object() || v.is_array()),
        v @ (Value::Object(_) | Value::Array(_)) => Some(v.clone()),
        _ => None,
    }
}

/// Parameters of a request: query-string fields, then the body (JSON object,
/// `application/x-www-form-urlencoded`, or the text fields of `multipart/form-data`;
/// file parts are left out).
pub(super) fn parse_params(content_type: Option<&str>, query: Option<&str>, body: &[u8]) -> Params {
    let mut p = Params::new();
    if let Some(q) = query {
        p.extend(form_pairs(q));
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/") {
        p.extend(multipart_text_fields(content_type.unwrap_or(""), body));
        return p;
    }
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        p.extend(obj);
    } else if let Ok(text) = std::str::from_utf8(body)
        && !text.trim().is_empty()
        && (ct.starts_with("application/x-www-form-urlencoded")
            || !text.trim_start().starts_with('{'))
    {
        p.extend(form_pairs(text));
    }
    p
}

/// The text fields of a `multipart/form-data` body (parts without a `filename`).
fn multipart_text_fields(content_type: &str, body: &[u8]) -> Vec<(String, Value)> {
    let Some(boundary) = content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    }) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str())
        .filter_map(|part| {
            let part = part.strip_prefix("\r\n")?;
            let (head, value) = part.split_once("\r\n\r\n")?;
            let disposition = head
                .split("\r\n")
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
            if disposition.contains("filename=") {
                return None;
            }
            let name = disposition
                .split(';')
                .find_map(|p| p.trim().strip_prefix("name="))?
                .trim_matches('"')
                .to_string();
            let value = value.strip_suffix("\r\n").unwrap_or(value);
            Some((name, Value::String(value.to_string())))
        })
        .collect()
}

fn form_pairs(s: &str) -> Vec<(String, Value)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), Value::String(url_decode(v)))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
