// The web chat's reply renderer, served inside /app.js. The gateway sends a reply's Markdown
// as a tree (src/format/tree.rs: {kind, text, href, lang, start, children}); this builds it
// into DOM nodes with createElement and textContent only. No model text is ever parsed as
// HTML: only the element names below are created, links only for http/https/mailto.
"use strict";
const rcRender = (function () {
  const ELEMENTS = new Set([
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "a", "br",
    "blockquote", "ul", "ol", "li", "hr", "table", "thead", "tbody", "tr", "th", "td",
  ]);
  const SCHEMES = new Set(["http:", "https:", "mailto:"]);
  const MAX_DEPTH = 64;

  function safeHref(href) {
    if (typeof href !== "string") return null;
    try {
      const url = new URL(href);
      return SCHEMES.has(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function flash(button, text) {
    button.textContent = text;
    clearTimeout(button.rcTimer);
    button.rcTimer = setTimeout(() => { button.textContent = "Copy"; }, 2500);
  }

  // Copy a code block: the Clipboard API, else select the code and try the old way, else
  // say how to copy it by hand (the code is left selected).
  function copy(code, button) {
    const fallback = () => {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      flash(button, ok ? "Copied" : "Copy failed: press Ctrl+C");
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(code.textContent).then(() => flash(button, "Copied"), fallback);
    } else {
      fallback();
    }
  }

  function codeBlock(node) {
    const wrap = document.createElement("div");
    wrap.className = "codeblock";
    const head = document.createElement("div");
    head.className = "codehead";
    const lang = document.createElement("span");
    lang.className = "lang";
    lang.textContent = typeof node.lang === "string" ? node.lang : "";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code");
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    code.textContent = String(node.text ?? "");
    if (lang.textContent) code.dataset.lang = lang.textContent;
    pre.appendChild(code);
    button.addEventListener("click", () => copy(code, button));
    head.append(lang, button);
    wrap.append(head, pre);
    return wrap;
  }

  function build(nodes, parent, depth) {
    if (!Array.isArray(nodes)) return;
    for (const n of nodes) {
      if (!n || typeof n !== "object") continue;
      if (n.kind === "text") {
        parent.appendChild(document.createTextNode(String(n.text ?? "")));
      } else if (n.kind === "pre") {
        parent.appendChild(codeBlock(n));
      } else if (!ELEMENTS.has(n.kind) || depth >= MAX_DEPTH) {
        // Unknown or too deep: its content joins the parent.
        if (depth < MAX_DEPTH * 4) build(n.children, parent, depth + 1);
      } else {
        const el = document.createElement(n.kind);
        if (n.kind === "code") {
          el.textContent = String(n.text ?? "");
        } else if (n.kind === "a") {
          const href = safeHref(n.href);
          if (href) {
            el.href = href;
            el.rel = "noopener noreferrer";
            el.target = "_blank";
          }
        } else if (n.kind === "ol" && Number.isSafeInteger(n.start)) {
          el.start = n.start;
        }
        build(n.children, el, depth + 1);
        parent.appendChild(el);
      }
    }
  }

  // Replace `bubble`'s content with the rendered tree.
  function render(bubble, tree) {
    const frag = document.createDocumentFragment();
    build(tree, frag, 0);
    bubble.replaceChildren(frag);
    bubble.classList.add("md");
  }

  return { render, safeHref };
})();
