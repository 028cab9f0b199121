//! REST routes under `/api/v10`, plus the websocket upgrade on any other path.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::objects::{self, UploadedFile, error, form_error, snowflake};
use super::{
    APPLICATION_ID, BOT_USER_ID, EPHEMERAL, Failure, Inner, RecordedCall, St, gateway, lock,
};

const LOADING: u64 = 128;

/// Status, JSON body (`None` = empty 204 body) and extra headers.
pub(super) struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

fn ok(body: Value) -> Reply {
    reply(200, body)
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: Some(body),
        headers: Vec::new(),
    }
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        body: None,
        headers: Vec::new(),
    }
}

fn not_found() -> Reply {
    reply(404, error(0, "404: Not Found"))
}

pub(super) async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if !path.starts_with("/api/")
        && let Ok(ws) = ws
    {
        return ws.on_upgrade(move |socket| gateway::run(inner, socket));
    }
    let header_list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if method == Method::GET && path.starts_with("/attachments/") {
        let (status, bytes) = lock(&inner.state).serve_cdn(&path, header_list);
        inner.notify();
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
        return resp;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let (json_body, files) = if content_type.starts_with("multipart/form-data") {
        objects::parse_multipart(&content_type, &body)
    } else if body.is_empty() {
        (Value::Null, Vec::new())
    } else {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        )
    };
    let route = path.strip_prefix("/api/v10").map(str::to_string);
    let segs: Vec<String> = route
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();

    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let open_route = matches!(
        segs.first().map(String::as_str),
        Some("interactions" | "webhooks")
    ) || route.as_deref() == Some("/gateway");
    let authorized = match &auth {
        Some(a) => *a == format!("Bot {}", inner.token),
        None => open_route,
    };

    let (seq, scripted) = {
        let mut st = lock(&inner.state);
        st.next_seq += 1;
        let seq = st.next_seq;
        let interaction_id = interaction_of(&st, &segs);
        st.calls.push(RecordedCall {
            method: method.as_str().to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_string),
            headers: header_list,
            body: json_body.clone(),
            raw_body: String::from_utf8_lossy(&body).into_owned(),
            files: files.clone(),
            status: 0,
            response: Value::Null,
            interaction_id,
            at: Instant::now(),
            seq,
        });
        let scripted = if authorized && route.is_some() {
            take_scripted(&mut st, &path)
        } else {
            None
        };
        (seq, scripted)
    };
    inner.notify();

    let out = if route.is_none() {
        not_found()
    } else if !authorized {
        reply(401, error(0, "401: Unauthorized"))
    } else if let Some(f) = scripted {
        f
    } else {
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        dispatch(&inner, &method, &segs, &json_body, &files)
    };

    {
        let mut st = lock(&inner.state);
        if let Some(call) = st.calls.iter_mut().rev().find(|c| c.seq == seq) {
            call.status = out.status;
            call.response = out.body.clone().unwrap_or(Value::Null);
        }
    }
    inner.notify();
    respond(out)
}

fn respond(out: Reply) -> Response {
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match out.body {
        Some(b) => {
            let mut r = Response::new(Body::from(b.to_string()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        None => ().into_response(),
    };
    *resp.status_mut() = status;
    for (k, v) in out.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// Interaction id a request refers to (by id or by token).
fn interaction_of(st: &St, segs: &[String]) -> Option<u64> {
    match segs {
        [first, id, ..] if first == "interactions" => snowflake(id),
        [first, _, token, ..] if first == "webhooks" => st.tokens.get(token).copied(),
        _ => None,
    }
}

fn take_scripted(st: &mut St, path: &str) -> Option<Reply> {
    let s = st
        .scripted
        .iter_mut()
        .find(|s| s.remaining > 0 && path.contains(&s.route))?;
    s.remaining -= 1;
    let out = match &s.failure {
        Failure::RateLimit(secs) => {
            let secs = *secs;
            let mut r = reply(
                429,
                json!({"message": "You are being rate limited.", "retry_after": secs, "global": false}),
            );
            r.headers = vec![
                ("retry-after", format!("{}", secs.ceil() as u64)),
                ("x-ratelimit-global", "false".into()),
                ("x-ratelimit-scope", "user".into()),
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", format!("{secs:.3}")),
                ("x-ratelimit-bucket", "fakebucket".into()),
            ];
            r
        }
        Failure::Status(status, body) => reply(*status, body.clone()),
    };
    st.scripted.retain(|s| s.remaining > 0);
    Some(out)
}

fn dispatch(
    inner: &Inner,
    method: &Method,
    segs: &[&str],
    body: &Value,
    files: &[UploadedFile],
) -> Reply {
    let m = method.as_str();
    let mut st = lock(&inner.state);
    let st = &mut *st;
    match (m, segs) {
        ("GET", ["gateway"]) => ok(json!({"url": inner.ws_url()})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": inner.ws_url(),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": st.max_concurrency},
        })),
        ("GET", ["users", "@me"]) => ok(inner.bot_user.clone()),
        ("GET", ["users", "@me", "guilds"]) => ok(json!([])),
        ("GET", ["users", id]) => match snowflake(id) {
            Some(BOT_USER_ID) => ok(objects::user(BOT_USER_ID, super::BOT_USERNAME, true)),
            Some(id) => match st.users.get(&id) {
                Some(u) => ok(u.clone()),
                None => reply(404, error(10013, "Unknown User")),
            },
            None => not_found(),
        },
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            ok(application(inner))
        }
        ("POST", ["users", "@me", "channels"]) => create_dm(st, body),
        (_, ["applications", app, rest @ ..]) => {
            if snowflake(app) != Some(APPLICATION_ID) {
                return reply(403, error(50001, "Missing Access"));
            }
            match rest {
                ["commands"] => commands(st, m, None, body),
                ["commands", id] => command(st, m, None, id, body),
                ["guilds", g, "commands"] => match snowflake(g) {
                    Some(g) => commands(st, m, Some(g), body),
                    None => not_found(),
                },
                ["guilds", g, "commands", id] => match snowflake(g) {
                    Some(g) => command(st, m, Some(g), id, body),
                    None => not_found(),
                },
                _ => not_found(),
            }
        }
        (_, ["channels", c, rest @ ..]) => match snowflake(c) {
            Some(c) => channel_route(inner, st, m, c, rest, body, files),
            None => not_found(),
        },
        ("POST", ["interactions", id, token, "callback"]) => {
            callback(inner, st, id, token, body, files)
        }
        (_, ["webhooks", app, token, rest @ ..]) => {
            webhook(inner, st, m, app, token, rest, body, files)
        }
        _ => not_found(),
    }
}

fn application(inner: &Inner) -> Value {
    json!({
        "id": APPLICATION_ID.to_string(),
        "name": super::BOT_USERNAME,
        "icon": null,
        "description": "",
        "summary": "",
        "type": null,
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": "5f0c0cf1a1e3d2b4c6a8e0f2d4b6a8c0e2f4d6b8a0c2e4f6d8b0a2c4e6f8d0b2",
        "team": null,
        "owner": objects::user(1_100_000_000_000_000_009, "fakeowner", false),
        "flags": 1 << 19,
        "hook": true,
        "rpc_origins": [],
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "terms_of_service_url": null,
        "privacy_policy_url": null,
        "custom_install_url": null,
        "install_params": null,
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "is_monetized": false,
        "bot": inner.bot_user,
    })
}

fn create_dm(st: &mut St, body: &Value) -> Reply {
    let Some(user_id) = objects::id_of(&body["recipient_id"]) else {
        return reply(
            400,
            form_error(
                "recipient_id",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ),
        );
    };
    let user = st.user_or_default(user_id);
    let channel_id = match st.dm_by_user.get(&user_id) {
        Some(c) => *c,
        None => {
            let c = st.snowflake();
            st.note_channel(c, None, user_id);
            c
        }
    };
    ok(objects::dm_channel(channel_id, &user))
}

// --- commands ----------------------------------------------------------------

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c == '\'' || c.is_alphanumeric())
        && name.to_lowercase() == name
}

fn bad_length(s: &str, max: usize) -> bool {
    !(1..=max).contains(&s.chars().count())
}

fn validate_options(options: &Value, prefix: &str) -> Option<Value> {
    let list = options.as_array()?;
    if list.len() > 25 {
        return Some(form_error(
            prefix,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut seen_optional = false;
    for (i, o) in list.iter().enumerate() {
        let p = format!("{prefix}.{i}");
        let name = o["name"].as_str().unwrap_or("");
        if !valid_name(name) {
            return Some(form_error(
                &format!("{p}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                &format!("Command name is invalid: {name:?}"),
            ));
        }
        if bad_length(o["description"].as_str().unwrap_or(""), 100) {
            return Some(form_error(
                &format!("{p}.description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        let required = o["required"].as_bool().unwrap_or(false);
        if required && seen_optional {
            return Some(form_error(
                &p,
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            ));
        }
        seen_optional |= !required;
        if o["choices"].as_array().is_some_and(|c| c.len() > 25) {
            return Some(form_error(
                &format!("{p}.choices"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        if let Some(e) = validate_options(&o["options"], &format!("{p}.options")) {
            return Some(e);
        }
    }
    None
}

fn validate_command(c: &Value, prefix: &str) -> Option<Value> {
    let kind = c["type"].as_u64().unwrap_or(1);
    let name = c["name"].as_str().unwrap_or("");
    let name_ok = if kind == 1 {
        valid_name(name)
    } else {
        !bad_length(name, 32)
    };
    if !name_ok {
        return Some(form_error(
            &format!("{prefix}name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            &format!("Command name is invalid: {name:?}"),
        ));
    }
    let description = c["description"].as_str().unwrap_or("");
    if kind == 1 && bad_length(description, 100) {
        return Some(form_error(
            &format!("{prefix}description"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    validate_options(&c["options"], &format!("{prefix}options"))
}

/// The command as Discord returns it, keeping `id` of an existing command
/// with the same name and type.
fn command_object(st: &mut St, guild: Option<u64>, input: &Value) -> Value {
    let kind = input["type"].as_u64().unwrap_or(1);
    let existing = st
        .commands
        .get(&guild)
        .into_iter()
        .flatten()
        .find(|c| c["name"] == input["name"] && c["type"].as_u64() == Some(kind))
        .and_then(|c| objects::id_of(&c["id"]));
    let id = match existing {
        Some(id) => id,
        None => st.snowflake(),
    };
    let mut c = match input {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let version = st.snowflake();
    c.insert("id".into(), json!(id.to_string()));
    c.insert("application_id".into(), json!(APPLICATION_ID.to_string()));
    c.insert("version".into(), json!(version.to_string()));
    c.insert("type".into(), json!(kind));
    let defaults = [
        ("description", json!("")),
        ("default_member_permissions", Value::Null),
        ("dm_permission", json!(true)),
        ("nsfw", json!(false)),
        ("integration_types", json!([0])),
        ("contexts", Value::Null),
        ("name_localizations", Value::Null),
        ("description_localizations", Value::Null),
    ];
    for (k, v) in defaults {
        if c.get(k).is_none_or(Value::is_null) {
            c.insert(k.into(), v);
        }
    }
    if let Some(g) = guild {
        c.insert("guild_id".into(), json!(g.to_string()));
    }
    Value::Object(c)
}

fn commands(st: &mut St, m: &str, guild: Option<u64>, body: &Value) -> Reply {
    match m {
        "GET" => ok(Value::Array(
            st.commands.get(&guild).cloned().unwrap_or_default(),
        )),
        "PUT" => {
            let Some(list) = body.as_array() else {
                return reply(
                    400,
                    form_error("_root", "MODEL_TYPE_CONVERT", "Expected an array."),
                );
            };
            if list.len() > 100 {
                return reply(
                    400,
                    form_error(
                        "_root",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    ),
                );
            }
            for (i, c) in list.iter().enumerate() {
                if let Some(e) = validate_command(c, &format!("{i}.")) {
                    return reply(400, e);
                }
                if list[..i]
                    .iter()
                    .any(|o| o["name"] == c["name"] && o["type"] == c["type"])
                {
                    return reply(
                        400,
                        form_error(
                            &format!("{i}.name"),
                            "APPLICATION_COMMANDS_DUPLICATE_NAME",
                            "Application command names must be unique",
                        ),
                    );
                }
            }
            let out: Vec<Value> = list.iter().map(|c| command_object(st, guild, c)).collect();
            st.commands.insert(guild, out.clone());
            ok(Value::Array(out))
        }
        "POST" => {
            if let Some(e) = validate_command(body, "") {
                return reply(400, e);
            }
            let c = command_object(st, guild, body);
            let list = st.commands.entry(guild).or_default();
            let status = match list.iter_mut().find(|o| o["id"] == c["id"]) {
                Some(o) => {
                    *o = c.clone();
                    200
                }
                None => {
                    list.push(c.clone());
                    201
                }
            };
            reply(status, c)
        }
        _ => reply(405, error(0, "405: Method Not Allowed")),
    }
}

fn command(st: &mut St, m: &str, guild: Option<u64>, id: &str, body: &Value) -> Reply {
    let list = st.commands.entry(guild).or_default();
    let Some(pos) = list.iter().position(|c| c["id"] == json!(id)) else {
        return reply(404, error(10063, "Unknown application command"));
    };
    match m {
        "GET" => ok(list[pos].clone()),
        "DELETE" => {
            list.remove(pos);
            no_content()
        }
        "PATCH" => {
            if let Some(patch) = body.as_object() {
                for (k, v) in patch {
                    list[pos][k] = v.clone();
                }
            }
            ok(list[pos].clone())
        }
        _ => reply(405, error(0, "405: Method Not Allowed")),
    }
}

// --- channels and messages -------------------------------------------------------

/// Validation shared by every message-creating route.
fn validate_message(body: &Value, files: &[UploadedFile], creating: bool) -> Option<Reply> {
    let content = body["content"].as_str().unwrap_or("");
    if content.chars().count() > 2000 {
        return Some(reply(
            400,
            form_error(
                "content",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 2000 or fewer in length.",
            ),
        ));
    }
    if body["embeds"].as_array().is_some_and(|e| e.len() > 10) {
        return Some(reply(
            400,
            form_error(
                "embeds",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 10 or fewer in length.",
            ),
        ));
    }
    let non_empty = |k: &str| body[k].as_array().is_some_and(|a| !a.is_empty());
    if creating
        && content.is_empty()
        && files.is_empty()
        && !non_empty("embeds")
        && !non_empty("components")
        && !non_empty("sticker_ids")
        && body["poll"].is_null()
    {
        return Some(reply(400, error(50006, "Cannot send an empty message")));
    }
    None
}

fn attachments(st: &mut St, base: &str, files: &[UploadedFile]) -> Vec<Value> {
    files
        .iter()
        .map(|f| {
            let id = st.snowflake();
            let url = format!("{base}/attachments/{id}/{}", f.filename);
            json!({
                "id": id.to_string(),
                "filename": f.filename,
                "size": f.data.len(),
                "url": url,
                "proxy_url": url,
                "content_type": f.content_type,
            })
        })
        .collect()
}

/// A message authored by the bot from a create payload.
fn bot_message(
    inner: &Inner,
    st: &mut St,
    channel_id: u64,
    body: &Value,
    files: &[UploadedFile],
) -> Value {
    let id = st.snowflake();
    let mut msg = objects::message(
        id,
        channel_id,
        &inner.bot_user,
        body["content"].as_str().unwrap_or(""),
    );
    apply_payload(inner, st, &mut msg, body, files);
    if let Some(n) = body.get("nonce").filter(|n| !n.is_null()) {
        msg["nonce"] = n.clone();
    }
    if body["tts"].as_bool() == Some(true) {
        msg["tts"] = json!(true);
    }
    if let Some(r) = body.get("message_reference").filter(|r| r.is_object()) {
        let mut r = r.clone();
        if r.get("channel_id").is_none_or(Value::is_null) {
            r["channel_id"] = json!(channel_id.to_string());
        }
        if r.get("type").is_none() {
            r["type"] = json!(0);
        }
        let referenced = objects::id_of(&r["message_id"])
            .and_then(|m| st.all_messages.get(&m).cloned())
            .unwrap_or(Value::Null);
        msg["message_reference"] = r;
        msg["referenced_message"] = referenced;
        msg["type"] = json!(19);
    }
    msg
}

/// Applies content / embeds / components / flags / files of a payload.
fn apply_payload(
    inner: &Inner,
    st: &mut St,
    msg: &mut Value,
    body: &Value,
    files: &[UploadedFile],
) {
    if let Some(c) = body.get("content").and_then(Value::as_str) {
        msg["content"] = json!(c);
    }
    if let Some(e) = body.get("embeds").and_then(Value::as_array) {
        let embeds: Vec<Value> = e
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if e.get("type").is_none() {
                    e["type"] = json!("rich");
                }
                e
            })
            .collect();
        msg["embeds"] = json!(embeds);
    }
    if let Some(c) = body.get("components").filter(|c| c.is_array()) {
        msg["components"] = c.clone();
    }
    if let Some(f) = body.get("flags").and_then(Value::as_u64) {
        msg["flags"] = json!(f);
    }
    if !files.is_empty() {
        let base = format!("http://{}", inner.addr);
        let mut list = match body.get("attachments").and_then(Value::as_array) {
            // Kept attachments (`{"id": existing}`) of an edit.
            Some(keep) => msg["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| keep.iter().any(|k| k["id"] == a["id"]))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        list.extend(attachments(st, &base, files));
        msg["attachments"] = json!(list);
    } else if let Some(keep) = body.get("attachments").and_then(Value::as_array) {
        let kept: Vec<Value> = msg["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| keep.iter().any(|k| k["id"] == a["id"]))
            .cloned()
            .collect();
        msg["attachments"] = json!(kept);
    }
}

fn channel_object(st: &St, channel_id: u64) -> Option<Value> {
    let info = st.channels.get(&channel_id)?;
    Some(match (info.guild_id, info.recipient) {
        (Some(g), _) => objects::guild_text_channel(channel_id, g),
        (None, Some(u)) => {
            let user = st
                .users
                .get(&u)
                .cloned()
                .unwrap_or_else(|| objects::user(u, &format!("user{u}"), false));
            objects::dm_channel(channel_id, &user)
        }
        (None, None) => return None,
    })
}

fn channel_route(
    inner: &Inner,
    st: &mut St,
    m: &str,
    channel_id: u64,
    rest: &[&str],
    body: &Value,
    files: &[UploadedFile],
) -> Reply {
    match (m, rest) {
        ("GET", []) => match channel_object(st, channel_id) {
            Some(c) => ok(c),
            None => reply(404, error(10003, "Unknown Channel")),
        },
        ("POST", ["typing"]) => no_content(),
        ("POST", ["messages"]) => {
            if let Some(r) = validate_message(body, files, true) {
                return r;
            }
            let msg = bot_message(inner, st, channel_id, body, files);
            let id = objects::id_of(&msg["id"]).unwrap_or(0);
            st.all_messages.insert(id, msg.clone());
            st.bot_messages.entry(channel_id).or_default().push(id);
            ok(msg)
        }
        ("GET", ["messages"]) => {
            let mut list: Vec<Value> = st
                .all_messages
                .values()
                .filter(|m| objects::id_of(&m["channel_id"]) == Some(channel_id))
                .cloned()
                .collect();
            list.sort_by_key(|m| std::cmp::Reverse(objects::id_of(&m["id"])));
            list.truncate(50);
            ok(json!(list))
        }
        (_, ["messages", mid, tail @ ..]) => {
            let Some(mid) = snowflake(mid) else {
                return not_found();
            };
            let known = st
                .all_messages
                .get(&mid)
                .is_some_and(|m| objects::id_of(&m["channel_id"]) == Some(channel_id));
            if !known {
                return reply(404, error(10008, "Unknown Message"));
            }
            match (m, tail) {
                ("GET", []) => ok(st.all_messages[&mid].clone()),
                ("PATCH", []) => {
                    if st.all_messages[&mid]["author"]["id"] != json!(BOT_USER_ID.to_string()) {
                        return reply(
                            403,
                            error(50005, "Cannot edit a message authored by another user"),
                        );
                    }
                    if let Some(r) = validate_message(body, files, false) {
                        return r;
                    }
                    let mut msg = st.all_messages[&mid].clone();
                    apply_payload(inner, st, &mut msg, body, files);
                    msg["edited_timestamp"] = json!(objects::iso_now());
                    st.all_messages.insert(mid, msg.clone());
                    ok(msg)
                }
                ("DELETE", []) => {
                    st.all_messages.remove(&mid);
                    if let Some(list) = st.bot_messages.get_mut(&channel_id) {
                        list.retain(|id| *id != mid);
                    }
                    no_content()
                }
                ("PUT" | "DELETE", ["reactions", _emoji, "@me"]) => no_content(),
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

// --- interactions ------------------------------------------------------------------

fn callback(
    inner: &Inner,
    st: &mut St,
    id: &str,
    token: &str,
    body: &Value,
    files: &[UploadedFile],
) -> Reply {
    let deadline = st.ack_deadline;
    let unknown = || reply(404, error(10062, "Unknown interaction"));
    let Some(iid) = snowflake(id) else {
        return unknown();
    };
    let Some(rec) = st.interactions.get(&iid) else {
        return unknown();
    };
    if rec.token != token {
        return unknown();
    }
    if let (Some(at), Some(limit)) = (rec.dispatched_at, deadline)
        && at.elapsed() > limit
    {
        return unknown();
    }
    if rec.acknowledged {
        return reply(
            400,
            error(40060, "Interaction has already been acknowledged."),
        );
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    let allowed: &[u64] = if rec.kind == 4 { &[8] } else { &[4, 5, 9, 12] };
    if !allowed.contains(&kind) {
        return reply(
            400,
            form_error(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Interaction response type is invalid for this interaction.",
            ),
        );
    }
    let channel_id = rec.channel_id;
    let data = &body["data"];
    let original = match kind {
        4 => {
            if let Some(r) = validate_message(data, files, true) {
                return r;
            }
            let mut msg = bot_message(inner, st, channel_id, data, files);
            msg["type"] = json!(20);
            msg["webhook_id"] = json!(APPLICATION_ID.to_string());
            msg["application_id"] = json!(APPLICATION_ID.to_string());
            Some(msg)
        }
        5 => {
            let mut msg = bot_message(inner, st, channel_id, &json!({"content": ""}), &[]);
            let flags = data["flags"].as_u64().unwrap_or(0) & EPHEMERAL;
            msg["flags"] = json!(flags | LOADING);
            msg["type"] = json!(20);
            msg["webhook_id"] = json!(APPLICATION_ID.to_string());
            msg["application_id"] = json!(APPLICATION_ID.to_string());
            Some(msg)
        }
        8 => {
            let choices = data["choices"].as_array().map_or(0, Vec::len);
            if choices > 25 {
                return reply(
                    400,
                    form_error(
                        "data.choices",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 25 or fewer in length.",
                    ),
                );
            }
            None
        }
        _ => None,
    };
    if let Some(msg) = &original
        && let Some(mid) = objects::id_of(&msg["id"])
    {
        st.all_messages.insert(mid, msg.clone());
    }
    if let Some(rec) = st.interactions.get_mut(&iid) {
        rec.acknowledged = true;
        rec.original = original;
    }
    no_content()
}

#[allow(clippy::too_many_arguments)]
fn webhook(
    inner: &Inner,
    st: &mut St,
    m: &str,
    app: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
    files: &[UploadedFile],
) -> Reply {
    let unknown_webhook = || reply(404, error(10015, "Unknown Webhook"));
    if snowflake(app) != Some(APPLICATION_ID) {
        return unknown_webhook();
    }
    let Some(iid) = st.tokens.get(token).copied() else {
        return reply(401, error(50027, "Invalid Webhook Token"));
    };
    let Some(rec) = st.interactions.get(&iid) else {
        return unknown_webhook();
    };
    if !rec.acknowledged {
        return unknown_webhook();
    }
    let channel_id = rec.channel_id;
    let unknown_message = || reply(404, error(10008, "Unknown Message"));
    match (m, rest) {
        (_, ["messages", "@original"]) => {
            let Some(orig) = rec.original.clone() else {
                return unknown_message();
            };
            match m {
                "GET" => ok(orig),
                "PATCH" => {
                    if let Some(r) = validate_message(body, files, false) {
                        return r;
                    }
                    let mut msg = orig;
                    let flags = msg["flags"].as_u64().unwrap_or(0) & !LOADING;
                    apply_payload(inner, st, &mut msg, body, files);
                    msg["flags"] = json!(flags);
                    if msg["content"] != json!("") || !body.is_null() {
                        msg["edited_timestamp"] = json!(objects::iso_now());
                    }
                    if let Some(mid) = objects::id_of(&msg["id"]) {
                        st.all_messages.insert(mid, msg.clone());
                    }
                    if let Some(rec) = st.interactions.get_mut(&iid) {
                        rec.original = Some(msg.clone());
                    }
                    ok(msg)
                }
                "DELETE" => {
                    if let Some(rec) = st.interactions.get_mut(&iid) {
                        rec.original = None;
                    }
                    no_content()
                }
                _ => reply(405, error(0, "405: Method Not Allowed")),
            }
        }
        ("POST", []) => {
            if let Some(r) = validate_message(body, files, true) {
                return r;
            }
            let mut msg = bot_message(inner, st, channel_id, body, files);
            msg["type"] = json!(20);
            msg["webhook_id"] = json!(APPLICATION_ID.to_string());
            msg["application_id"] = json!(APPLICATION_ID.to_string());
            if let Some(mid) = objects::id_of(&msg["id"]) {
                st.all_messages.insert(mid, msg.clone());
            }
            ok(msg)
        }
        (_, ["messages", mid]) => {
            let Some(mid) = snowflake(mid) else {
                return unknown_message();
            };
            let Some(mut msg) = st.all_messages.get(&mid).cloned() else {
                return unknown_message();
            };
            match m {
                "GET" => ok(msg),
                "PATCH" => {
                    if let Some(r) = validate_message(body, files, false) {
                        return r;
                    }
                    apply_payload(inner, st, &mut msg, body, files);
                    msg["edited_timestamp"] = json!(objects::iso_now());
                    st.all_messages.insert(mid, msg.clone());
                    ok(msg)
                }
                "DELETE" => {
                    st.all_messages.remove(&mid);
                    no_content()
                }
                _ => reply(405, error(0, "405: Method Not Allowed")),
            }
        }
        _ => not_found(),
    }
}
