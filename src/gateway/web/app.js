// The web chat, served as /app.js (the page's CSP allows no inline scripts).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), input = $("input"), sendBtn = $("send"), newBtn = $("new-btn");
  const tokenRow = $("token-row"), tokenInput = $("token");
  let busy = false, lastMessage = null;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function store(key, value) { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } }
  function load(key) { try { return localStorage.getItem(key); } catch (_) { return null; } }

  let session = load("remoteclaw.session");
  if (!session) { session = newId(); store("remoteclaw.session", session); }
  $("session").textContent = "session " + session;

  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scroll(force) { if (force || nearBottom()) log.scrollTop = log.scrollHeight; }

  function addMessage(role, text) {
    const wrap = document.createElement("div");
    wrap.className = "msg " + role;
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text || "";
    const meta = document.createElement("div");
    meta.className = "meta";
    wrap.append(bubble, meta);
    log.appendChild(wrap);
    scroll(true);
    return { bubble, meta };
  }
  function showError(msg, text) {
    msg.bubble.classList.add("error");
    msg.bubble.textContent = text;
  }
  function setBusy(on) {
    busy = on;
    sendBtn.disabled = on;
    newBtn.disabled = on;
    log.setAttribute("aria-busy", on ? "true" : "false");
  }

  // Minimal SSE parser: feed() text chunks, calls onEvent(name, data) per complete event.
  function sseParser(onEvent) {
    let buf = "";
    function dispatch(block) {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const idx = line.indexOf(":");
        const field = idx < 0 ? line : line.slice(0, idx);
        let value = idx < 0 ? "" : line.slice(idx + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
    return {
      feed(chunk) {
        // Normalise CRLF / CR to LF; keep a trailing lone CR until the next chunk (it may be half of CRLF).
        buf = (buf + chunk).replace(/\r\n/g, "\n").replace(/\r(?!$)/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          dispatch(block);
        }
      },
      end() { const rest = buf.replace(/\r$/, ""); buf = ""; if (rest.trim()) dispatch(rest); },
    };
  }

  async function send(message, echo) {
    if (busy || !message) return;
    lastMessage = message;
    if (echo) addMessage("user", message);
    const reply = addMessage("assistant", "");
    reply.bubble.classList.add("pending");
    setBusy(true);
    let finished = false;
    try {
      const headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
      const token = load("remoteclaw.token");
      if (token) headers["Authorization"] = "Bearer " + token;
      const res = await fetch("/api/chat", {
        method: "POST", headers, body: JSON.stringify({ session, message }),
      });
      if (res.status === 401) {
        finished = true;
        showError(reply, "This gateway needs a token");
        tokenRow.hidden = false;
        tokenInput.focus();
        return;
      }
      if (!res.ok || !res.body) {
        finished = true;
        const body = await res.text().catch(() => "");
        let detail = body;
        try { detail = JSON.parse(body).error.message || body; } catch (_) { /* not JSON */ }
        showError(reply, `Error ${res.status} ${res.statusText}${detail ? ": " + detail : ""}`);
        return;
      }
      const parser = sseParser((event, raw) => {
        let data = {};
        try { data = JSON.parse(raw); } catch (_) { data = { text: raw, message: raw }; }
        if (event === "delta") {
          reply.bubble.textContent += data.text || "";
          scroll(false);
        } else if (event === "done") {
          finished = true;
          reply.meta.textContent = data.model || "";
          if (data.credential) reply.meta.title = "credential: " + data.credential;
        } else if (event === "error") {
          finished = true;
          showError(reply, data.message || "Unknown error");
        }
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      parser.feed(decoder.decode());
      parser.end();
    } catch (err) {
      finished = true;
      showError(reply, "Network error: " + (err && err.message ? err.message : err));
    } finally {
      reply.bubble.classList.remove("pending");
      if (!finished) reply.meta.textContent = "(connection closed before the reply finished)";
      setBusy(false);
      scroll(false);
      input.focus();
    }
  }

  function submit() {
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    autosize();
    send(text, true);
  }
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  function autosize() { input.style.height = "auto"; input.style.height = input.scrollHeight + 2 + "px"; }
  input.addEventListener("input", autosize);

  newBtn.addEventListener("click", () => {
    if (busy) return;
    log.replaceChildren();
    send("/new", false);
  });
  $("token-btn").addEventListener("click", () => {
    tokenRow.hidden = !tokenRow.hidden;
    if (!tokenRow.hidden) { tokenInput.value = load("remoteclaw.token") || ""; tokenInput.focus(); }
  });
  tokenRow.addEventListener("submit", (e) => {
    e.preventDefault();
    store("remoteclaw.token", tokenInput.value.trim());
    tokenInput.value = "";
    tokenRow.hidden = true;
    if (lastMessage) send(lastMessage, false);
  });
  input.focus();
})();
