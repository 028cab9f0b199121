//! Session keys (DESIGN §4): one session per chat, named by where the chat lives.

/// `telegram:dm:<userId>`
pub fn telegram_dm(user_id: i64) -> String {
    format!("telegram:dm:{user_id}")
}

/// `telegram:group:<chatId>[:thread:<id>]`
pub fn telegram_group(chat_id: i64, thread: Option<i64>) -> String {
    match thread {
        Some(t) => format!("telegram:group:{chat_id}:thread:{t}"),
        None => format!("telegram:group:{chat_id}"),
    }
}

/// `discord:dm:<userId>`
pub fn discord_dm(user_id: &str) -> String {
    format!("discord:dm:{user_id}")
}

/// `discord:channel:<channelId>[:thread:<id>]`
pub fn discord_channel(channel_id: &str, thread: Option<&str>) -> String {
    match thread {
        Some(t) => format!("discord:channel:{channel_id}:thread:{t}"),
        None => format!("discord:channel:{channel_id}"),
    }
}

/// `web:<id>`
pub fn web(id: &str) -> String {
    format!("web:{id}")
}

/// Check a key given by a user or operator: non-empty, at most 200 bytes, no whitespace
/// or control characters. Returns a message naming the problem.
pub fn validate(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 200 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "session key \"{}\" is not valid: use a short name without spaces, e.g. local:default, web:abc or telegram:dm:123",
            crate::pairing::printable(&key.chars().take(80).collect::<String>())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        assert_eq!(telegram_dm(42), "telegram:dm:42");
        assert_eq!(
            telegram_group(-100123, Some(7)),
            "telegram:group:-100123:thread:7"
        );
        assert_eq!(telegram_group(-100123, None), "telegram:group:-100123");
        assert_eq!(discord_dm("222"), "discord:dm:222");
        assert_eq!(
            discord_channel("9", Some("10")),
            "discord:channel:9:thread:10"
        );
        assert_eq!(web("abc"), "web:abc");
        assert!(validate("local:default").is_ok());
        assert!(validate("a b").is_err());
        assert!(validate("").is_err());
    }
}
