//! Reading the most common update, a text message, without teloxide's general reader.
//!
//! teloxide reads a `Message` through several layers of `#[serde(flatten)]` and
//! `#[serde(untagged)]`: the message is buffered, then each media kind is tried in turn
//! (animation, audio, contact, … text), each failed try building an error. For a plain
//! text message that is about 30,000 instructions, the largest single cost of taking
//! in an update (callgrind, `benches/telegram_load.rs`).
//!
//! An update whose message has exactly the fields of a plain text message (id, sender,
//! a private chat or a group, date, text, entities) is read here into the very same
//! `Update` value teloxide would make; anything else — another field, another update
//! kind, another chat type — goes to teloxide's reader unchanged. A property test holds
//! the two readers to the same result.

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use teloxide::types::{
    Chat, ChatId, ChatKind, ChatPrivate, ChatPublic, MediaKind, MediaText, Message, MessageCommon,
    MessageEntity, MessageId, MessageKind, PublicChatKind, PublicChatSupergroup, Update, UpdateId,
    UpdateKind, User,
};

/// One update (of a `getUpdates` answer or a webhook delivery), read by [`read`].
pub struct Polled(pub Update);

impl<'de> Deserialize<'de> for Polled {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Polled, D::Error> {
        d.deserialize_map(Fields)
    }
}

/// An update's top-level fields in the order they came: teloxide takes the update's
/// kind from the first field other than `update_id`, so the order is kept (a
/// `serde_json::Value` object would sort it), duplicates too.
struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = Polled;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Telegram Update object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Polled, A::Error> {
        let mut fields: Vec<(String, Value)> = Vec::with_capacity(2);
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value()?));
        }
        read(&fields).map(Polled).map_err(A::Error::custom)
    }
}

/// The update made of `fields` (in their order), as teloxide reads it.
pub fn read(fields: &[(String, Value)]) -> Result<Update, serde_json::Error> {
    if let Some(update) = short(fields) {
        return Ok(update);
    }
    // Anything else as teloxide reads it, from the fields as they came.
    let mut text = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(key)?);
        text.push(':');
        text.push_str(&serde_json::to_string(value)?);
    }
    text.push('}');
    serde_json::from_str(&text)
}

/// `update_id` and a plain text `message`, in either order (teloxide takes `update_id`
/// by name wherever it stands), read the short way; `None` for anything else.
fn short(fields: &[(String, Value)]) -> Option<Update> {
    let (id, message) = match fields {
        [(a, x), (b, y)] if a == "update_id" && b == "message" => (x, y),
        [(a, x), (b, y)] if a == "message" && b == "update_id" => (y, x),
        _ => return None,
    };
    plain(id, message)
}

/// A plain text message update read the short way; `None` for any other shape.
fn plain(id: &Value, message: &Value) -> Option<Update> {
    let id = u32::deserialize(id).ok()?;
    PlainMessage::deserialize(message).ok()?.into_update(id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMessage {
    message_id: i32,
    #[serde(default)]
    from: Option<User>,
    chat: PlainChat,
    date: i64,
    text: String,
    #[serde(default)]
    entities: Vec<MessageEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainChat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    /// Kept as given: teloxide reads `"is_forum": null` as an error, not as absent.
    #[serde(default, deserialize_with = "given")]
    is_forum: Option<Value>,
}

/// A field's value as given, `null` included (`Some(Value::Null)`, not `None`).
fn given<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl PlainChat {
    /// The chat as teloxide reads it; `None` for a shape left to teloxide.
    fn into_chat(self) -> Option<Chat> {
        let kind = match self.kind.as_str() {
            "private" if self.title.is_none() && self.is_forum.is_none() => {
                ChatKind::Private(ChatPrivate {
                    username: self.username,
                    first_name: self.first_name,
                    last_name: self.last_name,
                })
            }
            "group"
                if self.username.is_none()
                    && self.first_name.is_none()
                    && self.last_name.is_none()
                    && self.is_forum.is_none() =>
            {
                ChatKind::Public(ChatPublic {
                    title: self.title,
                    kind: PublicChatKind::Group,
                })
            }
            "supergroup" if self.first_name.is_none() && self.last_name.is_none() => {
                let is_forum = match self.is_forum {
                    None => false,
                    Some(Value::Bool(b)) => b,
                    Some(_) => return None,
                };
                ChatKind::Public(ChatPublic {
                    title: self.title,
                    kind: PublicChatKind::Supergroup(PublicChatSupergroup {
                        username: self.username,
                        is_forum,
                    }),
                })
            }
            _ => return None,
        };
        Some(Chat {
            id: ChatId(self.id),
            kind,
        })
    }
}

impl PlainMessage {
    fn into_update(self, update_id: u32) -> Option<Update> {
        let m = self;
        let date = chrono::DateTime::from_timestamp(m.date, 0)?;
        let chat = m.chat.into_chat()?;
        let common = MessageCommon {
            author_signature: None,
            paid_star_count: None,
            effect_id: None,
            forward_origin: None,
            reply_to_message: None,
            external_reply: None,
            quote: None,
            reply_to_story: None,
            sender_boost_count: None,
            edit_date: None,
            media_kind: MediaKind::Text(MediaText {
                text: m.text,
                entities: m.entities,
                link_preview_options: None,
            }),
            reply_markup: None,
            is_automatic_forward: false,
            has_protected_content: false,
            is_from_offline: false,
            business_connection_id: None,
        };
        let message = Message {
            id: MessageId(m.message_id),
            thread_id: None,
            from: m.from,
            sender_chat: None,
            date,
            chat,
            is_topic_message: false,
            via_bot: None,
            sender_business_bot: None,
            kind: MessageKind::Common(common),
        };
        Some(Update {
            id: UpdateId(update_id),
            kind: UpdateKind::Message(message),
        })
    }
}

#[cfg(test)]
mod tests;
