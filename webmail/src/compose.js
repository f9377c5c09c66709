import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, plainWords } from './api.js';
import { size, splitAddresses } from './format.js';

// The API takes at most 10 MB a request, and base64 makes a file a third larger: files up
// to INLINE_MAX_BYTES travel inside the request, larger ones go to /v1/uploads first.
export const INLINE_MAX_BYTES = 2 * 1024 * 1024;
export const MAX_INLINE_TOTAL_BYTES = 7 * 1024 * 1024;
export const MAX_MESSAGE_BYTES = 25 * 1024 * 1024; // the server's limit for a message
const AUTOSAVE_AFTER_MS = 1500;

export function emptyComposition(fields = {}) {
  return { to: '', cc: '', bcc: '', subject: '', text: '', attachments: [],
           in_reply_to: null, forward_of: null, draftId: null, saved: 'new', ...fields };
}

// What the API's Composition schema takes, from what the form holds.
export function compositionBody(compose) {
  const body = {
    to: splitAddresses(compose.to),
    cc: splitAddresses(compose.cc),
    bcc: splitAddresses(compose.bcc),
    text: compose.text,
    attachments: compose.attachments.map(({ filename, content_type, content, upload_id }) => (
      upload_id ? { filename, content_type, upload_id } : { filename, content_type, content })),
  };
  // On a reply or forward with the subject left as it was, the server writes Re:/Fwd:.
  if (compose.subject || !(compose.in_reply_to || compose.forward_of)) body.subject = compose.subject;
  if (compose.in_reply_to) body.in_reply_to = compose.in_reply_to;
  if (compose.forward_of) body.forward_of = compose.forward_of;
  return body;
}

async function attachmentOf(file, inline) {
  if (!inline) {
    return { filename: file.name, content_type: file.type || 'application/octet-stream',
             upload_id: await api.upload(file), size: file.size };
  }
  return readFile(file);
}

function readFile(file) {
  return attachmentFromBlob(file, file.name, file.type);
}

// An attachment carried in the request: its bytes as base64.
export function attachmentFromBlob(blob, filename, contentType) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({
      filename,
      content_type: contentType || 'application/octet-stream',
      content: String(reader.result).split(',', 2)[1] || '',
      size: blob.size,
    });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export function Compose({ compose, onChange, onSend, onDiscard, onSaveDraft, busy, error }) {
  const [dragging, setDragging] = useState(false);
  const [fileError, setFileError] = useState('');
  const [uploading, setUploading] = useState(0);
  const first = useRef(null);
  useEffect(() => {
    first.current && first.current.focus();
  }, []);
  // Drafts are saved as you type: a pause of AUTOSAVE_AFTER_MS after the last change.
  useEffect(() => {
    if (compose.saved !== 'dirty') return undefined;
    const timer = setTimeout(onSaveDraft, AUTOSAVE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [compose]);

  const set = (field) => (event) => onChange({ ...compose, [field]: event.target.value, saved: 'dirty' });

  async function addFiles(files) {
    setFileError('');
    const chosen = [...files];
    const total = [...compose.attachments, ...chosen].reduce((sum, part) => sum + part.size, 0);
    if (total > MAX_MESSAGE_BYTES) {
      setFileError(`A message can carry ${size(MAX_MESSAGE_BYTES)} of attachments; these would be ${size(total)}.`);
      return;
    }
    // Small files ride in the request while they fit; the rest are uploaded first.
    let inlineBytes = compose.attachments.filter((part) => !part.upload_id).reduce((sum, part) => sum + part.size, 0);
    const inline = chosen.map((file) => {
      const fits = file.size <= INLINE_MAX_BYTES && inlineBytes + file.size <= MAX_INLINE_TOTAL_BYTES;
      if (fits) inlineBytes += file.size;
      return fits;
    });
    setUploading((count) => count + chosen.length);
    try {
      const added = await Promise.all(chosen.map((file, index) => attachmentOf(file, inline[index])));
      onChange((latest) => latest && ({ ...latest, attachments: [...latest.attachments, ...added], saved: 'dirty' }));
    } catch (failure) {
      setFileError(plainWords(failure));
    } finally {
      setUploading((count) => count - chosen.length);
    }
  }

  function drop(event) {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  }

  const title = compose.in_reply_to ? 'Reply' : compose.forward_of ? 'Forward' : 'New message';
  const savedWords = { new: '', dirty: 'Not saved yet', saving: 'Saving draft…', saved: 'Draft saved', failed: 'Draft not saved' }[compose.saved];
  return html`
    <section class=${`compose${dragging ? ' dragging' : ''}`} aria-labelledby="compose-title"
             onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
             onDragLeave=${() => setDragging(false)} onDrop=${drop}>
      <h2 id="compose-title">${title}</h2>
      <form onSubmit=${(e) => { e.preventDefault(); onSend(); }}>
        <label for="compose-to">To</label>
        <input id="compose-to" ref=${first} value=${compose.to} onInput=${set('to')} autocomplete="off"
               placeholder="name@example.com, another@example.com" />
        <label for="compose-cc">Cc</label>
        <input id="compose-cc" value=${compose.cc} onInput=${set('cc')} autocomplete="off" />
        <label for="compose-bcc">Bcc</label>
        <input id="compose-bcc" value=${compose.bcc} onInput=${set('bcc')} autocomplete="off" />
        <label for="compose-subject">Subject</label>
        <input id="compose-subject" value=${compose.subject} onInput=${set('subject')} maxlength="998"
               placeholder=${compose.in_reply_to || compose.forward_of ? 'Leave empty to keep the original subject' : ''} />
        <label for="compose-text">Message text</label>
        <textarea id="compose-text" rows="14" value=${compose.text} onInput=${set('text')}></textarea>
        ${compose.forward_of && html`<p class="notice">The original message goes with it as an attachment, with its own attachments.</p>`}
        <div class="attach">
          <label for="compose-files" class="button">Attach files</label>
          <input id="compose-files" type="file" multiple class="visually-hidden"
                 onChange=${(e) => { addFiles(e.target.files); e.target.value = ''; }} />
          <span class="hint">or drop files here</span>
        </div>
        ${uploading > 0 && html`<p class="loading" role="status">Attaching ${uploading} file${uploading > 1 ? 's' : ''}…</p>`}
        ${fileError && html`<p class="error" role="alert">${fileError}</p>`}
        ${compose.attachments.length > 0 && html`
          <ul class="attached" aria-label="Attached files">
            ${compose.attachments.map((part, index) => html`
              <li>${part.filename} <span class="size">${size(part.size)}</span>
                <button type="button" aria-label=${`Remove ${part.filename}`}
                        onClick=${() => onChange({ ...compose, attachments: compose.attachments.filter((_, i) => i !== index), saved: 'dirty' })}>Remove</button>
              </li>`)}
          </ul>`}
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <div class="row">
          <button type="submit" class="primary" disabled=${busy || uploading > 0}>${busy ? 'Sending…' : 'Send'}</button>
          <button type="button" onClick=${onSaveDraft} disabled=${busy}>Save draft</button>
          <button type="button" onClick=${onDiscard} disabled=${busy}>Discard</button>
          <span class="saved" role="status">${savedWords}</span>
        </div>
      </form>
    </section>`;
}
