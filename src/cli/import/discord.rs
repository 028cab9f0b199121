//! `channels.discord` of openclaw.json → `[channels.discord]`: the token, policies, the
//! DM allowlist (top level or the legacy `dm` table), guilds with their member
//! allowlists, channel prompts and mention-free channels, owners and the bound agent. Pure.

use super::channels::{
    Owners, discord_id, discord_id_value, group_policy, ids, mapped, policy, push_unique, secret,
    set_or_skip, streaming,
};
use super::toml_out::{str_array, try_set};
use super::walk::{Obj, Skipped};
use serde_json::Value;
use toml_edit::{DocumentMut, value};

const DC: [&str; 2] = ["channels", "discord"];

pub fn discord(
    doc: &mut DocumentMut,
    dc: &mut Obj,
    owners: &Owners,
    agent: Option<&String>,
    skipped: &mut Skipped,
) {
    let enabled = dc.take("enabled").and_then(Value::as_bool).unwrap_or(true);
    try_set(doc, &DC, "enabled", value(enabled));
    secret(doc, dc, &DC, "token", "token", "tokenRef", skipped);
    mapped(
        doc,
        dc,
        &DC,
        "groupPolicy",
        "groupPolicy",
        group_policy,
        skipped,
    );
    for key in ["streaming", "streamMode"] {
        mapped(doc, dc, &DC, key, "streaming", streaming, skipped);
    }
    let mut allow: Vec<String> = Vec::new();
    if let Some(v) = dc.take("allowFrom") {
        allow = ids(v, &dc.key_path("allowFrom"), discord_id_value, skipped);
    }
    mapped(doc, dc, &DC, "dmPolicy", "dmPolicy", policy, skipped);
    // The legacy `dm` table: policy, allowlist and an off switch.
    if let Some(mut dm) = dc.take_obj("dm", skipped) {
        if let Some(v) = dm.take("allowFrom") {
            for id in ids(v, &dm.key_path("allowFrom"), discord_id_value, skipped) {
                push_unique(&mut allow, id);
            }
        }
        if dm.take("enabled").and_then(Value::as_bool) == Some(false) {
            try_set(doc, &DC, "dmPolicy", value("disabled"));
            dm.take("policy");
        } else {
            mapped(doc, &mut dm, &DC, "policy", "dmPolicy", policy, skipped);
        }
        dm.finish(skipped);
    }
    if !allow.is_empty() {
        set_or_skip(
            doc,
            &DC,
            "allowFrom",
            str_array(allow.iter().map(String::as_str)),
            dc.key_path("allowFrom"),
            skipped,
        );
    }
    if !owners.discord.is_empty() {
        set_or_skip(
            doc,
            &DC,
            "owners",
            str_array(owners.discord.iter().map(String::as_str)),
            "commands.ownerAllowFrom".into(),
            skipped,
        );
    }
    if let Some(a) = agent {
        set_or_skip(
            doc,
            &DC,
            "agent",
            value(a.as_str()),
            "bindings".into(),
            skipped,
        );
    }
    let Some(mut guilds) = dc.take_obj("guilds", skipped) else {
        return;
    };
    let (mut ids_out, mut users, mut free) = (Vec::new(), Vec::new(), Vec::new());
    for (id, v) in guilds.entries() {
        let path = guilds.key_path(id);
        let (Some(gid), Some(mut g)) = (discord_id(id), Obj::new(v, path.clone(), skipped)) else {
            skipped.push(path);
            continue;
        };
        ids_out.push(gid);
        if let Some(u) = g.take("users") {
            for id in ids(u, &g.key_path("users"), discord_id_value, skipped) {
                push_unique(&mut users, id);
            }
        }
        if let Some(mut chans) = g.take_obj("channels", skipped) {
            for (cid, cv) in chans.entries() {
                let cpath = chans.key_path(cid);
                let (Some(cid), Some(mut c)) =
                    (discord_id(cid), Obj::new(cv, cpath.clone(), skipped))
                else {
                    skipped.push(cpath);
                    continue;
                };
                if c.take("requireMention").and_then(Value::as_bool) == Some(false) {
                    free.push(cid.clone());
                }
                // A per-channel allowlist has no RemoteClaw equivalent (every channel of
                // an allowed guild is allowed): listed whatever its value, since even
                // `allow = true` narrowed the guild to the listed channels.
                if c.take("allow").is_some() {
                    skipped.push(c.key_path("allow"));
                }
                if let Some(p) = c.take("systemPrompt") {
                    let ok = p.as_str().is_some_and(|p| {
                        try_set(
                            doc,
                            &["channels", "discord", "channelPrompts"],
                            &cid,
                            value(p),
                        )
                    });
                    if !ok {
                        skipped.push(c.key_path("systemPrompt"));
                    }
                }
                c.finish(skipped);
            }
            chans.finish(skipped);
        }
        g.finish(skipped);
    }
    let path = guilds.path.clone();
    guilds.finish(skipped);
    set_or_skip(
        doc,
        &DC,
        "guilds",
        str_array(ids_out.iter().map(String::as_str)),
        path.clone(),
        skipped,
    );
    if !users.is_empty() {
        set_or_skip(
            doc,
            &DC,
            "groupAllowFrom",
            str_array(users.iter().map(String::as_str)),
            path.clone(),
            skipped,
        );
    }
    if !free.is_empty() {
        set_or_skip(
            doc,
            &DC,
            "channels",
            str_array(free.iter().map(String::as_str)),
            path,
            skipped,
        );
    }
}
