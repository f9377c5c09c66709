// The one place untrusted HTML from mail is handled. It is sanitised with DOMPurify,
// then shown in a sandboxed frame (no allow-scripts, no allow-same-origin, no forms)
// whose own Content-Security-Policy allows no scripts, no fetches and no images but
// data: ones (and remote ones only once the reader has allowed them for this message).
// Each layer would stop a script on its own; together a mistake in one is not enough.
import DOMPurify from 'dompurify';

export const FRAME_SANDBOX = 'allow-popups allow-popups-to-escape-sandbox';

const REMOTE = /^\s*(https?:)?\/\//i;
const URL_ATTRIBUTES = ['src', 'background', 'poster'];

function frameCsp(allowRemoteImages) {
  const images = allowRemoteImages ? "data: blob: https: http:" : "data: blob:";
  return `default-src 'none'; img-src ${images}; style-src 'unsafe-inline'; ` +
    "form-action 'none'; base-uri 'none'";
}

// html: the message's HTML; inlineImages: Map of Content-ID -> data: URL, for cid: links;
// returns the frame's srcdoc and how many remote images were held back.
export function safeMessageDocument(html, { inlineImages = new Map(), allowRemoteImages = false } = {}) {
  let blockedImages = 0;
  const purify = DOMPurify();
  purify.addHook('uponSanitizeElement', (node, data) => {
    // CSS can fetch (url(), @import); the frame's policy refuses those fetches, and a
    // <style> that imports is dropped here so nothing is even attempted.
    if (data.tagName === 'style' && /@import|url\(\s*['"]?\s*(https?:)?\/\//i.test(node.textContent || '')
        && !allowRemoteImages) {
      blockedImages += 1;
      node.textContent = '';
    }
  });
  purify.addHook('afterSanitizeAttributes', (node) => {
    for (const name of URL_ATTRIBUTES) {
      const value = node.getAttribute(name);
      if (value === null) continue;
      if (/^\s*cid:/i.test(value)) {
        const id = value.trim().slice(4).replace(/^<|>$/g, '');
        const inline = inlineImages.get(id);
        if (inline) node.setAttribute(name, inline);
        else node.removeAttribute(name);
      } else if (REMOTE.test(value) && !allowRemoteImages) {
        blockedImages += 1;
        node.removeAttribute(name);
      }
    }
    if (node.hasAttribute('srcset') && !allowRemoteImages) {
      blockedImages += 1;
      node.removeAttribute('srcset');
    }
    const style = node.getAttribute('style');
    if (style && /url\(/i.test(style) && !allowRemoteImages) {
      blockedImages += 1;
      node.setAttribute('style', style.replace(/url\([^)]*\)/gi, 'none'));
    }
    if (node.tagName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
  const body = purify.sanitize(html, {
    FORBID_TAGS: ['base', 'meta', 'link', 'form', 'input', 'button', 'select', 'textarea',
                  'iframe', 'frame', 'object', 'embed'],
    FORBID_ATTR: ['action', 'formaction', 'ping'],
    WHOLE_DOCUMENT: false,
  });
  const escapedCsp = frameCsp(allowRemoteImages).replace(/"/g, '&quot;');
  const srcdoc = '<!doctype html><html><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${escapedCsp}">` +
    '<style>body{font:15px/1.5 system-ui,sans-serif;margin:0;padding:4px;overflow-wrap:anywhere}' +
    'img{max-width:100%;height:auto}</style></head>' +
    `<body>${body}</body></html>`;
  return { srcdoc, blockedImages };
}
