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

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use teloxide::types::{
    Chat, ChatId, ChatKind, ChatPrivate, ChatPublic, MediaKind, MediaText, Message, MessageCommon,
    MessageEntity, MessageId, MessageKind, PublicChatKind, PublicChatSupergroup, Update, UpdateId,
    UpdateKind, User,
};

/// One update of a `getUpdates` answer, read by [`read`].
pub struct Polled(pub Update);

impl<'de> Deserialize<'de> for Polled {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Polled, D::Error> {
        let value = Value::deserialize(d)?;
        read(&value).map(Polled).map_err(D::Error::custom)
    }
}

/// The update `value` holds, as teloxide reads it.
pub fn read(value: &Value) -> Result<Update, serde_json::Error> {
    if let Some(update) = PlainUpdate::deserialize(value)
        .ok()
        .and_then(PlainUpdate::into_update)
    {
        return Ok(update);
    }
    Update::deserialize(value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainUpdate {
    update_id: u32,
    message: PlainMessage,
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
    #[serde(default)]
    is_forum: Option<bool>,
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
                ChatKind::Public(ChatPublic {
                    title: self.title,
                    kind: PublicChatKind::Supergroup(PublicChatSupergroup {
                        username: self.username,
                        is_forum: self.is_forum.unwrap_or(false),
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

impl PlainUpdate {
    fn into_update(self) -> Option<Update> {
        let m = self.message;
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
            id: UpdateId(self.update_id),
            kind: UpdateKind::Message(message),
        })
    }
}

#[cfg(test)]
mod tests;
