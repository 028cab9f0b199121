// The web chat, served as /app.js after render.js and attach.js (the page's CSP allows no
// inline scripts). Streams a reply as plain text, then shows it rendered (rcRender); sends
// images (rcAttach) with the message; shows the session's history when opened.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), input = $("input"), sendBtn = $("send"), newBtn = $("new-btn");
  const tokenRow = $("token-row"), tokenInput = $("token");
  const composer = $("composer"), thumbsRow = $("thumbs"), fileInput = $("file"), attachBtn = $("attach");
  let busy = false, last = null;
  // Images waiting to be sent: {file, name}. The limits come with the history.
  let pending = [];
  let limits = { maxImages: 4, maxImageBytes: 5 * 1024 * 1024 };

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

  function addMessage(role, text, images) {
    const wrap = document.createElement("div");
    wrap.className = "msg " + role;
    if (images && images.length) {
      const row = document.createElement("div");
      row.className = "thumbs";
      rcAttach.thumbs(row, images, null);
      wrap.appendChild(row);
    }
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
    msg.bubble.classList.remove("md");
    msg.bubble.classList.add("error");
    msg.bubble.textContent = text;
  }
  // A message from the page itself (an image it cannot take), shown in the chat.
  function notice(text) {
    showError(addMessage("notice", ""), text);
  }
  function setBusy(on) {
    busy = on;
    sendBtn.disabled = on;
    newBtn.disabled = on;
    log.setAttribute("aria-busy", on ? "true" : "false");
  }
  function authHeaders(extra) {
    const headers = Object.assign({}, extra);
    const token = load("remoteclaw.token");
    if (token) headers["Authorization"] = "Bearer " + token;
    return headers;
  }

  function showPending() {
    rcAttach.thumbs(thumbsRow, pending, (i) => { pending.splice(i, 1); showPending(); });
  }
  function addFiles(files) {
    for (const file of files) {
      const why = rcAttach.refusal(file, pending, limits);
      if (why) { notice(why); continue; }
      pending.push({ file, name: file.name || "pasted image " + (pending.length + 1) });
    }
    showPending();
  }

  // The session's stored messages (past images are their placeholder text) and the limits.
  async function loadHistory() {
    setBusy(true);
    try {
      const res = await fetch("/api/history?session=" + encodeURIComponent(session), { headers: authHeaders() });
      if (res.status === 401) { tokenRow.hidden = false; return; }
      if (!res.ok) return;
      const data = await res.json();
      if (data.limits) limits = data.limits;
      log.replaceChildren();
      for (const m of data.messages || []) {
        if (m.role === "user") addMessage("user", m.text);
        else if (m.role === "assistant") rcRender.render(addMessage("assistant", "").bubble, m.tree);
      }
    } catch (_) {
      /* offline: start empty */
    } finally {
      setBusy(false);
    }
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

  async function send(message, echo, images) {
    images = images || [];
    if (busy || (!message && !images.length)) return;
    last = { message, images };
    if (echo) addMessage("user", message, images);
    const reply = addMessage("assistant", "");
    reply.bubble.classList.add("pending");
    setBusy(true);
    let finished = false;
    try {
      const headers = authHeaders({ "Content-Type": "application/json", "Accept": "text/event-stream" });
      const body = { session, message };
      if (images.length) body.images = await rcAttach.payload(images);
      const res = await fetch("/api/chat", { method: "POST", headers, body: JSON.stringify(body) });
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
        let detail = body, code = null;
        try { ({ code, message: detail } = JSON.parse(body).error); } catch (_) { /* not JSON */ }
        if (code === "image_refused") {
          // Said in the gateway's words; the images come back to the composer.
          showError(reply, detail);
          if (!pending.length) { pending = images; showPending(); }
          if (!input.value) input.value = message;
          return;
        }
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
          if (Array.isArray(data.tree) && data.tree.length) rcRender.render(reply.bubble, data.tree);
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
    // Sent as typed (indentation kept, DESIGN §8); the gateway drops only blank lines
    // before it and whitespace after it.
    const text = input.value.trim() ? input.value : "";
    if ((!text && !pending.length) || busy) return;
    const images = pending;
    pending = [];
    showPending();
    input.value = "";
    autosize();
    send(text, true, images);
  }
  composer.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  function autosize() { input.style.height = "auto"; input.style.height = input.scrollHeight + 2 + "px"; }
  input.addEventListener("input", autosize);
  // Pasted images are attached; pasted text goes into the box as usual.
  input.addEventListener("paste", (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (files.length) addFiles(files);
  });
  attachBtn.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    addFiles(Array.from(fileInput.files || []));
    fileInput.value = "";
  });
  composer.addEventListener("dragover", (e) => { e.preventDefault(); });
  composer.addEventListener("drop", (e) => {
    e.preventDefault();
    addFiles(Array.from((e.dataTransfer && e.dataTransfer.files) || []));
  });

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
    if (last) send(last.message, false, last.images);
    else loadHistory();
  });
  loadHistory();
  input.focus();
})();
