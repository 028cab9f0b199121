// The web chat's image attachments, served inside /app.js: the images waiting to be sent
// (picked, pasted or dropped), their thumbnails with a remove button, the checks the
// gateway makes (type, count, size: it checks again, from the bytes), and base64 for the
// request. Thumbnails are drawn on a <canvas> from the local file (createImageBitmap), so
// the page's CSP needs no img-src for data: or blob: URLs.
"use strict";
const rcAttach = (function () {
  const THUMB = 64;

  // Draw `file` scaled into a canvas; a file that does not decode shows its name instead.
  function thumbnail(file) {
    const canvas = document.createElement("canvas");
    canvas.width = THUMB;
    canvas.height = THUMB;
    canvas.className = "thumb-img";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", file.name || "image");
    const holder = document.createElement("span");
    holder.className = "thumb-box";
    holder.appendChild(canvas);
    if (typeof createImageBitmap !== "function") {
      holder.replaceChildren(label(file));
      return holder;
    }
    createImageBitmap(file).then((bmp) => {
      const scale = Math.min(THUMB / bmp.width, THUMB / bmp.height, 1);
      const w = Math.max(1, Math.round(bmp.width * scale));
      const h = Math.max(1, Math.round(bmp.height * scale));
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext("2d");
      if (ctx) ctx.drawImage(bmp, 0, 0, w, h);
      if (bmp.close) bmp.close();
      canvas.dataset.drawn = "1";
    }, () => holder.replaceChildren(label(file)));
    return holder;
  }

  function label(file) {
    const span = document.createElement("span");
    span.className = "thumb-name";
    span.textContent = file.name || "image";
    return span;
  }

  // A row of thumbnails for `items` ({file, name}); with `onRemove`, each gets a × button.
  function thumbs(container, items, onRemove) {
    container.replaceChildren();
    items.forEach((item, i) => {
      const cell = document.createElement("span");
      cell.className = "thumb";
      cell.title = item.name;
      cell.appendChild(thumbnail(item.file));
      if (onRemove) {
        const x = document.createElement("button");
        x.type = "button";
        x.className = "thumb-remove";
        x.textContent = "×";
        x.setAttribute("aria-label", "Remove " + item.name);
        x.addEventListener("click", () => onRemove(i));
        cell.appendChild(x);
      }
      container.appendChild(cell);
    });
    container.hidden = items.length === 0;
  }

  // Why `file` cannot be added to `pending`, in the gateway's words; null when it can.
  function refusal(file, pending, limits) {
    const name = file.name || "the pasted image";
    if (!file.type || !file.type.startsWith("image/")) {
      return `${name} is not a PNG, JPEG, GIF or WebP image — send it in one of those formats`;
    }
    if (pending.length >= limits.maxImages) {
      return `a message may carry at most ${limits.maxImages} images — send the others in another message`;
    }
    if (file.size > limits.maxImageBytes) {
      return `${name} is ${file.size} bytes, over the ${limits.maxImageBytes}-byte limit for images — send a smaller or compressed image`;
    }
    return null;
  }

  function base64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result || "");
        resolve(url.slice(url.indexOf(",") + 1));
      };
      reader.onerror = () => reject(reader.error || new Error("could not read " + file.name));
      reader.readAsDataURL(file);
    });
  }

  // The request's `images` field.
  function payload(items) {
    return Promise.all(items.map(async (item) => ({ name: item.name, data: await base64(item.file) })));
  }

  return { thumbs, refusal, payload };
})();
