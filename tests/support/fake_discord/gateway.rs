//! The gateway websocket: Hello, Heartbeat/ACK, Identify → READY, Resume →
//! replay + RESUMED (or Invalid Session), queued dispatches. Every connection runs one
//! shard (`[id, total]` from its Identify, `[0, 1]` without one) with a session of its
//! own, and takes only the events Discord would route to that shard
//! ([`shard_of`](super::shard_of)).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{APPLICATION_ID, Ctl, IdentifyRecord, Inner, Session, lock, shard_of};

enum Next {
    Continue,
    /// Send a close frame and end.
    Close(u16, &'static str),
    /// End without a close frame.
    Drop,
}

pub(super) async fn run(inner: Arc<Inner>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (conn_id, hello) = {
        let mut st = lock(&inner.state);
        st.connections += 1;
        st.next_conn_id += 1;
        let id = st.next_conn_id;
        st.conns.push((id, tx));
        (
            id,
            json!({"op": 10, "d": {"heartbeat_interval": st.heartbeat_interval_ms, "_trace": ["fake-discord-gateway"]}, "s": null, "t": null}),
        )
    };
    inner.notify();
    let mut conn = Conn {
        inner: inner.clone(),
        authed: false,
        identified: false,
        shard: [0, 1],
    };
    if send(&mut socket, &hello).await {
        loop {
            let next = tokio::select! {
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(t))) => conn.frame(&mut socket, t.as_str()).await,
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => conn.frame(&mut socket, t).await,
                        Err(_) => Next::Close(4002, "Error while decoding payload."),
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Next::Continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Next::Drop,
                },
                ctl = rx.recv() => match ctl {
                    Some(Ctl::Flush) => conn.flush(&mut socket).await,
                    Some(Ctl::Raw(v)) => if send(&mut socket, &v).await { Next::Continue } else { Next::Drop },
                    Some(Ctl::Close(code, reason)) => {
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                            .await;
                        Next::Drop
                    }
                    Some(Ctl::Drop) | None => Next::Drop,
                },
            };
            match next {
                Next::Continue => {}
                Next::Drop => break,
                Next::Close(code, reason) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            }
        }
    }
    lock(&inner.state).conns.retain(|(id, _)| *id != conn_id);
    inner.notify();
    // `socket` is dropped here: the TCP connection closes.
}

async fn send(socket: &mut WebSocket, payload: &Value) -> bool {
    socket
        .send(Message::Text(payload.to_string().into()))
        .await
        .is_ok()
}

struct Conn {
    inner: Arc<Inner>,
    authed: bool,
    identified: bool,
    /// `[shard_id, num_shards]` of this connection's session.
    shard: [u64; 2],
}

impl Conn {
    async fn frame(&mut self, socket: &mut WebSocket, text: &str) -> Next {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return Next::Close(4002, "Error while decoding payload.");
        };
        lock(&self.inner.state).frames.push(frame.clone());
        self.inner.notify();
        let op = frame["op"].as_u64();
        let d = &frame["d"];
        match op {
            Some(1) => {
                lock(&self.inner.state).heartbeats += 1;
                self.inner.notify();
                let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                if send(socket, &ack).await {
                    Next::Continue
                } else {
                    Next::Drop
                }
            }
            Some(2) => self.identify(socket, d).await,
            Some(6) => self.resume(socket, d).await,
            Some(_) if !self.authed => Next::Close(4003, "Not authenticated."),
            Some(3 | 4 | 8 | 31) => Next::Continue,
            _ => Next::Close(4001, "Unknown opcode."),
        }
    }

    async fn identify(&mut self, socket: &mut WebSocket, d: &Value) -> Next {
        let token_ok = d["token"]
            .as_str()
            .is_some_and(|t| self.inner.token_matches(t));
        {
            let mut st = lock(&self.inner.state);
            st.identifies += 1;
            st.last_identify = Some(d.clone());
            st.identify_log.push(IdentifyRecord {
                shard: d["shard"].clone(),
                at: std::time::Instant::now(),
            });
        }
        self.inner.notify();
        if self.identified {
            return Next::Close(4005, "Already authenticated.");
        }
        if !token_ok {
            return Next::Close(4004, "Authentication failed.");
        }
        // `shard` is optional; when present, `[shard_id, num_shards]` with id < num.
        let shard = match &d["shard"] {
            Value::Null => [0, 1],
            v => match v
                .as_array()
                .map(|a| a.iter().map(Value::as_u64).collect::<Vec<_>>())
            {
                Some(ids) if ids.len() == 2 => match (ids[0], ids[1]) {
                    (Some(id), Some(total)) if id < total => [id, total],
                    _ => return Next::Close(4010, "Invalid shard."),
                },
                _ => return Next::Close(4010, "Invalid shard."),
            },
        };
        self.identified = true;
        self.shard = shard;
        let ready = {
            let mut st = lock(&self.inner.state);
            let session_id = format!(
                "{:032x}",
                st.snowflake().wrapping_mul(0x9e37_79b9_7f4a_7c15)
            );
            let ready = json!({
                "op": 0,
                "s": 1,
                "t": "READY",
                "d": {
                    "v": 10,
                    "user": self.inner.bot_user,
                    "user_settings": {},
                    "guilds": [],
                    "presences": [],
                    "private_channels": [],
                    "relationships": [],
                    "guild_join_requests": [],
                    "geo_ordered_rtc_regions": ["fake"],
                    "session_type": "normal",
                    "session_id": session_id,
                    "resume_gateway_url": self.inner.ws_url(),
                    "shard": shard,
                    "application": {"id": APPLICATION_ID.to_string(), "flags": 1 << 19},
                    "auth": {},
                    "_trace": ["fake-discord-gateway"],
                },
            });
            // A new session replaces this shard's earlier one (its Resume now fails).
            st.sessions.retain(|s| s.shard != shard);
            st.sessions.push(Session {
                id: session_id,
                seq: 1,
                log: vec![ready.clone()],
                shard,
            });
            st.readies += 1;
            st.dispatched.push((shard, ready.clone()));
            ready
        };
        if !send(socket, &ready).await {
            return Next::Drop;
        }
        self.authed = true;
        self.inner.notify();
        self.flush(socket).await
    }

    async fn resume(&mut self, socket: &mut WebSocket, d: &Value) -> Next {
        let token_ok = d["token"]
            .as_str()
            .is_some_and(|t| self.inner.token_matches(t));
        let replay = {
            let mut guard = lock(&self.inner.state);
            let st = &mut *guard;
            st.resumes += 1;
            if !token_ok {
                None
            } else {
                let allowed = st.resume_allowed;
                let client_seq = d["seq"].as_u64().unwrap_or(0);
                let session_id = d["session_id"].as_str();
                match st
                    .sessions
                    .iter_mut()
                    .find(|s| Some(s.id.as_str()) == session_id)
                {
                    Some(s) if allowed => {
                        let mut out: Vec<Value> = s
                            .log
                            .iter()
                            .filter(|e| e["s"].as_u64().unwrap_or(0) > client_seq)
                            .cloned()
                            .collect();
                        s.seq += 1;
                        let resumed = json!({
                            "op": 0,
                            "s": s.seq,
                            "t": "RESUMED",
                            "d": {"_trace": ["fake-discord-gateway"]},
                        });
                        s.log.push(resumed.clone());
                        out.push(resumed);
                        let shard = s.shard;
                        st.resumed += 1;
                        st.dispatched.extend(out.iter().map(|e| (shard, e.clone())));
                        Some(Some((shard, out)))
                    }
                    _ => Some(None),
                }
            }
        };
        self.inner.notify();
        match replay {
            None => Next::Close(4004, "Authentication failed."),
            Some(None) => {
                let invalid = json!({"op": 9, "d": false, "s": null, "t": null});
                if send(socket, &invalid).await {
                    Next::Continue
                } else {
                    Next::Drop
                }
            }
            Some(Some((shard, events))) => {
                self.shard = shard;
                for e in &events {
                    if !send(socket, e).await {
                        return Next::Drop;
                    }
                }
                self.identified = true;
                self.authed = true;
                self.flush(socket).await
            }
        }
    }

    /// Writes every pending event routed to this connection's shard (when
    /// authenticated).
    async fn flush(&mut self, socket: &mut WebSocket) -> Next {
        if !self.authed {
            return Next::Continue;
        }
        let [shard_id, total] = self.shard;
        loop {
            let payload = {
                let mut guard = lock(&self.inner.state);
                let st = &mut *guard;
                let shard = self.shard;
                let Some(session) = st.sessions.iter_mut().find(|s| s.shard == shard) else {
                    return Next::Continue;
                };
                let Some(at) = st
                    .pending
                    .iter()
                    .position(|(_, d)| shard_of(d, total) == shard_id)
                else {
                    return Next::Continue;
                };
                let Some((t, d)) = st.pending.remove(at) else {
                    return Next::Continue;
                };
                session.seq += 1;
                let payload = json!({"op": 0, "s": session.seq, "t": t, "d": d});
                session.log.push(payload.clone());
                if t == "INTERACTION_CREATE" {
                    let id = d["id"].as_str().and_then(|s| s.parse::<u64>().ok());
                    if let Some(rec) = id.and_then(|id| st.interactions.get_mut(&id)) {
                        rec.dispatched_at = Some(tokio::time::Instant::now());
                    }
                }
                st.dispatched.push((shard, payload.clone()));
                payload
            };
            self.inner.notify();
            if !send(socket, &payload).await {
                return Next::Drop;
            }
        }
    }
}
