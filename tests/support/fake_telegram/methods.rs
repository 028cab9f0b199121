//! The Bot API methods the fake implements.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::objects::{
    Params, boolean, int, int_value, string, strip_reply, structured, unix_now, utf16_len,
};
use super::{Inner, Queued, Reply, SentMessage, St, bad_request, fail, lock, markup, ok};

const CONFLICT_POLL: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
const CONFLICT_WEBHOOK: &str = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
const QUERY_INVALID: &str =
    "Bad Request: query is too old and response timeout expired or query ID is invalid";

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

const BUTTON_ACTIONS: &[&str] = &[
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
];

/// Long poll: answers as soon as deliverable updates (`update_id >= offset`) are
/// queued, else after `timeout` seconds with `[]`; a newer `getUpdates` ends this one
/// with 409.
pub(super) async fn get_updates(inner: &Arc<Inner>, p: &Params) -> Result<Vec<Arc<Queued>>, Reply> {
    let limit = int(p, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = int(p, "timeout").unwrap_or(0).clamp(0, 3600) as u64;
    let offset = int(p, "offset");
    let generation = {
        let mut st = lock(&inner.state);
        if !st.webhook_url.is_empty() {
            return Err(fail(409, CONFLICT_WEBHOOK));
        }
        st.poll_offsets.push(offset);
        if let Some(offset) = offset {
            st.acknowledge(offset);
        }
        if let Some(Value::Array(kinds)) = structured(p, "allowed_updates") {
            st.allowed_updates = kinds
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    inner.updates_ready.notify_waiters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut shutdown = inner.shutdown.clone();
    loop {
        let mut notified = pin!(inner.updates_ready.notified());
        notified.as_mut().enable();
        {
            let st = lock(&inner.state);
            if st.poll_generation != generation {
                return Err(fail(409, CONFLICT_POLL));
            }
            let ready = st.deliverable(limit, offset);
            if !ready.is_empty() || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
                return Ok(ready);
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

impl St {
    /// `offset > 0` forgets updates below it; `offset < 0` keeps only the last `-offset`.
    fn acknowledge(&mut self, offset: i64) {
        self.highest_offset = self.highest_offset.max(offset);
        if offset > 0 {
            self.queue.retain(|u| u.id >= offset);
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while self.queue.len() > keep {
                self.queue.pop_front();
            }
        }
    }

    /// Queued updates of the allowed kinds, none below a positive `offset` (an update
    /// queued again after it was acknowledged is never handed out).
    fn deliverable(&self, limit: usize, offset: Option<i64>) -> Vec<Arc<Queued>> {
        let floor = offset.filter(|o| *o > 0).unwrap_or(i64::MIN);
        self.queue
            .iter()
            .filter(|u| u.id >= floor)
            .filter(|u| self.allowed_updates.is_empty() || self.allowed_updates.contains(&u.kind))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Every method except `getUpdates`.
pub(super) fn dispatch(inner: &Inner, method: &str, p: &Params) -> Reply {
    let mut st = lock(&inner.state);
    let result = match method {
        "getme" => Ok(ok(get_me(inner))),
        "getfile" => Ok(super::files::get_file(&st, p)),
        "sendmessage" => send_message(inner, &mut st, p),
        "sendmessagedraft" => send_message_draft(&mut st, p),
        "editmessagetext" => edit_message(inner, &mut st, p, true),
        "editmessagereplymarkup" => edit_message(inner, &mut st, p, false),
        "deletemessage" => delete_message(&mut st, p),
        "sendchataction" => send_chat_action(&st, p),
        "answercallbackquery" => answer_callback_query(&mut st, p),
        "setmycommands" => set_my_commands(&mut st, p),
        "getmycommands" => Ok(ok(st
            .registered_commands
            .get(&commands_key(p))
            .cloned()
            .unwrap_or_else(|| json!([])))),
        "deletemycommands" => {
            st.registered_commands.remove(&commands_key(p));
            Ok(ok(json!(true)))
        }
        "setwebhook" | "deletewebhook" => {
            if method == "setwebhook" {
                let url = string(p, "url").unwrap_or_default();
                if url.is_empty() {
                    return bad_request(
                        "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                    );
                }
                let secret = string(p, "secret_token");
                if let Some(s) = &secret
                    && !((1..=256).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                {
                    return bad_request("Bad Request: secret token contains unallowed characters");
                }
                st.webhook_url = url;
                st.webhook_secret = secret;
                st.webhook_allowed_updates = structured(p, "allowed_updates");
            } else {
                st.webhook_url = String::new();
                st.webhook_secret = None;
                st.webhook_allowed_updates = None;
            }
            if boolean(p, "drop_pending_updates") {
                st.queue.clear();
            }
            drop(st);
            inner.updates_ready.notify_waiters();
            return ok(json!(true));
        }
        "getwebhookinfo" => Ok(ok(json!({
            "url": st.webhook_url,
            "has_custom_certificate": false,
            "pending_update_count": st.queue.len(),
        }))),
        "close" | "logout" | "setmessagereaction" => Ok(ok(json!(true))),
        _ => Err(fail(404, "Not Found: method not found")),
    };
    result.unwrap_or_else(|e| e)
}

fn get_me(inner: &Inner) -> Value {
    let mut me = inner.bot_user.clone();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

/// The chat named by `chat_id` (an id, or `@username`), which must be known.
fn chat(st: &St, p: &Params) -> Result<Value, Reply> {
    let raw = p
        .get("chat_id")
        .ok_or_else(|| bad_request("Bad Request: chat_id is empty"))?;
    let found = match int_value(raw) {
        Some(id) => st.chats.get(&id).cloned(),
        None => raw.as_str().and_then(|name| {
            let name = name.trim_start_matches('@');
            st.chats
                .values()
                .find(|c| {
                    c["username"]
                        .as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(name))
                })
                .cloned()
        }),
    };
    found.ok_or_else(|| bad_request("Bad Request: chat not found"))
}

struct Text {
    raw: String,
    plain: String,
    parse_mode: Option<String>,
}

fn checked_text(p: &Params) -> Result<Text, Reply> {
    let empty = || bad_request("Bad Request: message text is empty");
    let raw = string(p, "text").unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(empty());
    }
    let parse_mode = string(p, "parse_mode").filter(|m| !m.is_empty());
    let plain = markup::render(parse_mode.as_deref(), &raw).map_err(bad_request)?;
    if plain.trim().is_empty() {
        return Err(empty());
    }
    if utf16_len(&plain) > 4096 {
        return Err(bad_request("Bad Request: message is too long"));
    }
    Ok(Text {
        raw,
        plain,
        parse_mode,
    })
}

/// `(reply_markup as requested, the inline keyboard if it is one)`.
fn checked_markup(p: &Params) -> Result<(Option<Value>, Option<Value>), Reply> {
    let unparsable = || bad_request("Bad Request: can't parse reply keyboard markup JSON object");
    let Some(markup) = structured(p, "reply_markup") else {
        return match p.get("reply_markup") {
            None | Some(Value::Null) => Ok((None, None)),
            Some(_) => Err(unparsable()),
        };
    };
    let Some(rows) = markup.get("inline_keyboard") else {
        return Ok((Some(markup), None));
    };
    let rows = rows.as_array().ok_or_else(unparsable)?;
    for row in rows {
        for button in row.as_array().ok_or_else(unparsable)? {
            if !BUTTON_ACTIONS.iter().any(|a| button.get(*a).is_some()) {
                return Err(bad_request(
                    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = button.get("callback_data") {
                let len = data.as_str().map_or(0, str::len);
                if !(1..=64).contains(&len) {
                    return Err(bad_request("Bad Request: BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    Ok((Some(markup.clone()), Some(markup)))
}

fn send_message(inner: &Inner, st: &mut St, p: &Params) -> Result<Reply, Reply> {
    let chat = chat(st, p)?;
    let chat_id = chat["id"].as_i64().unwrap_or(0);
    let text = checked_text(p)?;
    let (requested_markup, inline) = checked_markup(p)?;
    let reply_params = structured(p, "reply_parameters");
    let reply_to = reply_params
        .as_ref()
        .and_then(|r| r.get("message_id"))
        .and_then(int_value)
        .or_else(|| int(p, "reply_to_message_id"));
    let allow_missing = boolean(p, "allow_sending_without_reply")
        || reply_params
            .as_ref()
            .is_some_and(|r| r.get("allow_sending_without_reply") == Some(&json!(true)));
    let replied = match reply_to {
        None => None,
        Some(id) => match st.messages.get(&(chat_id, id)) {
            Some(m) => Some(strip_reply(m)),
            None if allow_missing => None,
            None => return Err(bad_request("Bad Request: message to be replied not found")),
        },
    };
    let requested_thread = int(p, "message_thread_id");
    // In forums a reply lands in the replied message's topic.
    let thread = (chat["is_forum"] == json!(true))
        .then(|| {
            requested_thread.or_else(|| {
                replied
                    .as_ref()
                    .and_then(|m| m["message_thread_id"].as_i64())
            })
        })
        .flatten();
    let message_id = st.next_message_id(chat_id);
    let mut msg = json!({
        "message_id": message_id,
        "from": inner.bot_user,
        "chat": chat,
        "date": unix_now(),
        "text": text.plain,
    });
    if let Some(t) = thread {
        msg["message_thread_id"] = json!(t);
        msg["is_topic_message"] = json!(true);
    }
    if let Some(r) = replied {
        msg["reply_to_message"] = r;
    }
    if let Some(k) = inline {
        msg["reply_markup"] = k;
    }
    st.store(chat_id, &msg);
    st.sends += 1;
    st.sent.push(SentMessage {
        method: "sendmessage".into(),
        chat_id,
        message_id,
        text: text.raw,
        plain_text: text.plain,
        parse_mode: text.parse_mode,
        thread_id: requested_thread,
        reply_to_message_id: reply_to,
        reply_markup: requested_markup,
        at: Instant::now(),
    });
    Ok(ok(msg))
}

/// `sendMessageDraft`: private chats only, a non-zero `draft_id`, text checked like a
/// message's. Recorded in `sent` (method `sendmessagedraft`, message id 0); it creates
/// no message.
fn send_message_draft(st: &mut St, p: &Params) -> Result<Reply, Reply> {
    let chat = chat(st, p)?;
    if chat["type"] != json!("private") {
        return Err(bad_request(
            "Bad Request: method is available only in private chats",
        ));
    }
    match int(p, "draft_id") {
        Some(d) if d != 0 => {}
        _ => return Err(bad_request("Bad Request: invalid draft_id specified")),
    }
    let text = checked_text(p)?;
    st.sent.push(SentMessage {
        method: "sendmessagedraft".into(),
        chat_id: chat["id"].as_i64().unwrap_or(0),
        message_id: 0,
        text: text.raw,
        plain_text: text.plain,
        parse_mode: text.parse_mode,
        thread_id: int(p, "message_thread_id"),
        reply_to_message_id: None,
        reply_markup: None,
        at: Instant::now(),
    });
    Ok(ok(json!(true)))
}

/// `editMessageText` (`with_text`) or `editMessageReplyMarkup`.
fn edit_message(inner: &Inner, st: &mut St, p: &Params, with_text: bool) -> Result<Reply, Reply> {
    if p.contains_key("inline_message_id") {
        return Ok(ok(json!(true)));
    }
    let chat = chat(st, p)?;
    let chat_id = chat["id"].as_i64().unwrap_or(0);
    let message_id = int(p, "message_id")
        .ok_or_else(|| bad_request("Bad Request: message identifier is not specified"))?;
    let stored = st
        .messages
        .get(&(chat_id, message_id))
        .cloned()
        .ok_or_else(|| bad_request("Bad Request: message to edit not found"))?;
    if stored["from"]["id"] != inner.bot_user["id"] {
        return Err(bad_request("Bad Request: message can't be edited"));
    }
    let text = if with_text {
        Some(checked_text(p)?)
    } else {
        None
    };
    let (requested_markup, inline) = checked_markup(p)?;
    let new_text = text
        .as_ref()
        .map_or_else(|| stored["text"].clone(), |t| json!(t.plain));
    if new_text == stored["text"] && inline.as_ref() == stored.get("reply_markup") {
        return Err(bad_request(NOT_MODIFIED));
    }
    let mut updated = stored;
    updated["text"] = new_text;
    updated["edit_date"] = json!(unix_now());
    match inline {
        Some(k) => updated["reply_markup"] = k,
        None => {
            if let Some(obj) = updated.as_object_mut() {
                obj.remove("reply_markup");
            }
        }
    }
    st.store(chat_id, &updated);
    if let Some(t) = text {
        st.sent.push(SentMessage {
            method: "editmessagetext".into(),
            chat_id,
            message_id,
            text: t.raw,
            plain_text: t.plain,
            parse_mode: t.parse_mode,
            thread_id: updated["message_thread_id"].as_i64(),
            reply_to_message_id: None,
            reply_markup: requested_markup,
            at: Instant::now(),
        });
    }
    Ok(ok(updated))
}

fn delete_message(st: &mut St, p: &Params) -> Result<Reply, Reply> {
    let chat = chat(st, p)?;
    let chat_id = chat["id"].as_i64().unwrap_or(0);
    let message_id = int(p, "message_id").unwrap_or(0);
    match st.messages.remove(&(chat_id, message_id)) {
        Some(_) => Ok(ok(json!(true))),
        None => Err(bad_request("Bad Request: message to delete not found")),
    }
}

fn send_chat_action(st: &St, p: &Params) -> Result<Reply, Reply> {
    chat(st, p)?;
    let action = string(p, "action").unwrap_or_default();
    if CHAT_ACTIONS.contains(&action.as_str()) {
        Ok(ok(json!(true)))
    } else {
        Err(bad_request(
            "Bad Request: wrong parameter action in request",
        ))
    }
}

fn answer_callback_query(st: &mut St, p: &Params) -> Result<Reply, Reply> {
    let id = string(p, "callback_query_id").unwrap_or_default();
    match st.callback_queries.get_mut(&id) {
        Some(answered) if !*answered => {
            *answered = true;
            Ok(ok(json!(true)))
        }
        _ => Err(bad_request(QUERY_INVALID)),
    }
}

fn set_my_commands(st: &mut St, p: &Params) -> Result<Reply, Reply> {
    let Some(Value::Array(commands)) = structured(p, "commands") else {
        return Err(bad_request(
            "Bad Request: parameter \"commands\" is required",
        ));
    };
    if commands.len() > 100 {
        return Err(bad_request("Bad Request: BOT_COMMANDS_TOO_MUCH"));
    }
    for c in &commands {
        let name = c["command"].as_str().unwrap_or("");
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(bad_request("Bad Request: BOT_COMMAND_INVALID"));
        }
        let description = c["description"].as_str().unwrap_or("");
        if !(1..=256).contains(&description.chars().count()) {
            return Err(bad_request("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"));
        }
    }
    let mut body = p.clone();
    body.insert("commands".into(), Value::Array(commands.clone()));
    st.last_commands = Some(Value::Object(body));
    st.registered_commands
        .insert(commands_key(p), Value::Array(commands));
    Ok(ok(json!(true)))
}

/// Commands are kept per `scope` and `language_code`.
fn commands_key(p: &Params) -> String {
    let scope = structured(p, "scope").unwrap_or_else(|| json!({"type": "default"}));
    format!(
        "{}|{}",
        scope,
        string(p, "language_code").unwrap_or_default()
    )
}
