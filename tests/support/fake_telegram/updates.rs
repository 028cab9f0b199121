//! Queuing incoming updates at the fake: messages in private chats, groups and forum
//! topics, button presses, raw updates, and an update delivered again.

use serde_json::{Map, Value, json};

use super::objects::{group_chat, private_chat, strip_reply, user};
use super::{FakeTelegram, lock, topic_root};

impl FakeTelegram {
    /// Queue an incoming text message from a user in a private chat; returns the update_id.
    pub fn send_dm(&self, user_id: i64, username: &str, text: &str) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let from = st.remember_user(user_id, username);
            let chat = private_chat(&from);
            st.chats.insert(user_id, chat.clone());
            let msg = st.user_message(chat, from, text);
            st.push_update("message", msg)
        };
        self.inner.wake();
        id
    }

    /// Queue a group message. `thread_id` puts it in a forum topic (the chat
    /// becomes a forum supergroup); `reply_to_bot_message` makes it a reply to
    /// that bot message (a stand-in bot message if the id is unknown).
    /// Chat ids `<= -1_000_000_000_000` are supergroups, other negative ids
    /// basic groups (until a `thread_id` turns them into forums).
    pub fn send_group(
        &self,
        chat_id: i64,
        user_id: i64,
        username: &str,
        text: &str,
        thread_id: Option<i64>,
        reply_to_bot_message: Option<i64>,
    ) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let from = st.remember_user(user_id, username);
            let chat = st.ensure_group(chat_id, thread_id.is_some());
            let reply = match (reply_to_bot_message, thread_id) {
                (Some(mid), _) => Some(st.stored_or_stand_in(&self.inner.bot_user, &chat, mid)),
                (None, Some(t)) => Some(topic_root(&chat, &from, t)),
                (None, None) => None,
            };
            let mut msg = st.user_message(chat, from, text);
            if let Some(t) = thread_id {
                msg["message_thread_id"] = json!(t);
                msg["is_topic_message"] = json!(true);
            }
            if let Some(r) = reply {
                msg["reply_to_message"] = strip_reply(&r);
            }
            st.store(chat_id, &msg);
            st.push_update("message", msg)
        };
        self.inner.wake();
        id
    }

    /// Queue a callback query (inline keyboard press) from a user on a bot
    /// message (a stand-in bot message if `message_id` is unknown). Its
    /// `id` is accepted once by `answerCallbackQuery`.
    pub fn press_button(&self, user_id: i64, chat_id: i64, message_id: i64, data: &str) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let from = st
                .users
                .get(&user_id)
                .cloned()
                .unwrap_or_else(|| user(user_id, ""));
            let chat = st.chat_or_default(chat_id);
            let message = st.stored_or_stand_in(&self.inner.bot_user, &chat, message_id);
            st.next_callback += 1;
            let query_id = format!("{}{:06}", self.inner.bot_id, st.next_callback);
            st.callback_queries.insert(query_id.clone(), false);
            let query = json!({
                "id": query_id,
                "from": from,
                "message": message,
                "chat_instance": format!("{}", (chat_id as u64) ^ 0x5eed_5eed_5eed),
                "data": data,
            });
            st.push_update("callback_query", query)
        };
        self.inner.wake();
        id
    }

    /// Queue any update object; its `update_id` is assigned (and returned).
    pub fn send_raw_update(&self, update: Value) -> i64 {
        let id = {
            let mut st = lock(&self.inner.state);
            st.next_update_id += 1;
            let id = st.next_update_id;
            let mut update = match update {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            update.insert("update_id".into(), json!(id));
            st.enqueue(Value::Object(update));
            id
        };
        self.inner.wake();
        id
    }

    /// Makes a private chat known without a message (so the bot may write first).
    pub fn register_dm(&self, user_id: i64, username: &str) {
        let mut st = lock(&self.inner.state);
        let from = st.remember_user(user_id, username);
        st.chats.insert(user_id, private_chat(&from));
    }

    /// Makes a group known: a basic group, or a supergroup (forum if `forum`).
    pub fn register_group(&self, chat_id: i64, supergroup: bool, forum: bool) {
        lock(&self.inner.state)
            .chats
            .insert(chat_id, group_chat(chat_id, supergroup || forum, forum));
    }

    /// Updates queued and not yet acknowledged by an `offset`.
    pub fn pending_updates(&self) -> usize {
        lock(&self.inner.state).queue.len()
    }

    /// Every update ever queued, in order (acknowledged ones included).
    pub fn updates(&self) -> Vec<Value> {
        lock(&self.inner.state)
            .history
            .iter()
            .map(|u| u.value.clone())
            .collect()
    }

    /// The `message_id` of a queued message update.
    pub fn message_id_of(&self, update_id: i64) -> Option<i64> {
        lock(&self.inner.state)
            .history
            .iter()
            .find(|u| u.id == update_id)
            .and_then(|u| u.value["message"]["message_id"].as_i64())
    }

    /// Current state of a stored message (user or bot, after edits).
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        lock(&self.inner.state)
            .messages
            .get(&(chat_id, message_id))
            .cloned()
    }

    /// Queue an update again, exactly as it was first delivered (same `update_id`),
    /// as Telegram does when the bot did not acknowledge it. Returns false for an
    /// unknown id.
    pub fn redeliver(&self, update_id: i64) -> bool {
        let found = {
            let mut st = lock(&self.inner.state);
            let update = st.history.iter().find(|u| u.id == update_id).cloned();
            match update {
                Some(u) => {
                    st.queue.push_back(u);
                    true
                }
                None => false,
            }
        };
        self.inner.wake();
        found
    }
}
