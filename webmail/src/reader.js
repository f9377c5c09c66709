import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, plainWords } from './api.js';
import { displayName, fullDate, relativeDate, size } from './format.js';
import { FRAME_SANDBOX, safeMessageDocument } from './safe_html.js';
import { orderFolders } from './folders.js';
import { verification } from './verification.js';
import { JunkVerdict } from './junk.js';

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function asDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function safeFilename(text, fallback) {
  const cleaned = (text || '').replace(/[\\/:*?"<>|\u0000-\u001f]+/g, ' ').trim().slice(0, 100);
  return cleaned || fallback;
}

// The message's HTML, sanitised and sandboxed (safe_html.js), with its cid: images
// fetched from its own parts first and remote images held back until allowed.
function HtmlBody({ message }) {
  const [inlineImages, setInlineImages] = useState(null);
  const [allowRemote, setAllowRemote] = useState(false);
  useEffect(() => {
    let cancelled = false;
    setAllowRemote(false);
    const inline = message.attachments.filter((part) => part.content_id && part.content_type.startsWith('image/'));
    Promise.all(inline.map(async (part) => [part.content_id, await asDataUrl(await api.attachment(message.id, part.index))]))
      .then((pairs) => !cancelled && setInlineImages(new Map(pairs)))
      .catch(() => !cancelled && setInlineImages(new Map()));
    return () => { cancelled = true; };
  }, [message.id]);
  if (inlineImages === null) return html`<p class="loading" role="status">Loading the message…</p>`;
  const { srcdoc, blockedImages } = safeMessageDocument(message.html, { inlineImages, allowRemoteImages: allowRemote });
  return html`
    ${blockedImages > 0 && html`
      <p class="remote-images" role="status">
        Remote images in this message were blocked, so the sender cannot tell you opened it.
        <button type="button" onClick=${() => setAllowRemote(true)}>Show remote images</button>
      </p>`}
    <iframe class="message-frame" title="Message content" sandbox=${FRAME_SANDBOX}
            referrerpolicy="no-referrer" srcdoc=${srcdoc}></iframe>`;
}

// What our edge verified of the sender: one line that opens to each method's result, and
// a warning, announced when the message opens, where the From could have been forged.
// Not shown on drafts, nor on one's own sent mail that carries no verdict.
function Verification({ message }) {
  const { state, summary, warning, details } = verification(message.authentication, message.from);
  return html`
    ${warning && html`<p class="sender-warning" role="alert">${warning}</p>`}
    <details class=${`verification ${state}`}>
      <summary>${summary}</summary>
      <ul>${details.map((line) => html`<li>${line}</li>`)}</ul>
    </details>`;
}

const STATE_WORDS = { queued: 'Queued', deferred: 'Deferred, will retry', delivered: 'Delivered', bounced: 'Bounced' };

function DeliveryStatus({ id }) {
  const [delivery, setDelivery] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let timer = null;
    let stopped = false;
    async function poll() {
      try {
        const answer = await api.delivery(id);
        if (stopped) return;
        setDelivery(answer);
        // Keep watching while something is still on its way.
        if (answer.recipients.some((recipient) => ['queued', 'deferred'].includes(recipient.state))) {
          timer = setTimeout(poll, 3000);
        }
      } catch (failure) {
        if (!stopped) setError(plainWords(failure));
      }
    }
    poll();
    return () => { stopped = true; clearTimeout(timer); };
  }, [id]);
  if (error) return html`<p class="error">${error}</p>`;
  if (!delivery || delivery.recipients.length === 0) return null;
  return html`
    <section class="delivery" aria-label="Delivery status">
      <h3>Delivery</h3>
      <ul>
        ${delivery.recipients.map((recipient) => html`
          <li class=${`state-${recipient.state}`}>
            <span class="recipient">${recipient.recipient}</span>:
            <strong>${STATE_WORDS[recipient.state]}</strong>
            ${recipient.reply && html` <span class="reply">(${recipient.reply})</span>`}
            ${recipient.next_attempt && html` <span>next try ${relativeDate(recipient.next_attempt)}</span>`}
          </li>`)}
      </ul>
    </section>`;
}

export function Reader({ message, loading, error, folders, conversation, isSent, actions, onOpen, onBack }) {
  const [moveTo, setMoveTo] = useState('');
  if (loading) return html`<section class="reader" aria-busy="true"><p class="loading" role="status">Opening the message…</p></section>`;
  if (error) return html`<section class="reader"><p class="error" role="alert">${error}</p></section>`;
  if (!message) return html`<section class="reader empty-reader"><p>Select a message to read it.</p></section>`;
  const flagged = message.flags.includes('flagged');
  const attachments = message.attachments.filter((part) => !part.content_id);
  const others = orderFolders(folders).filter((folder) => folder.name !== message.mailbox);
  const inJunk = folders.some((folder) => folder.role === 'junk' && folder.name === message.mailbox);
  const isDraftOrSent = message.flags.includes('draft') || isSent;

  async function downloadAttachment(part) {
    try {
      saveBlob(await api.attachment(message.id, part.index), safeFilename(part.filename, `attachment-${part.index}`));
    } catch (failure) {
      actions.fail(failure);
    }
  }

  return html`
    <article class="reader" aria-labelledby="reader-subject">
      <button type="button" class="back" onClick=${onBack}>Back to the list</button>
      <h2 id="reader-subject">${message.subject || '(no subject)'}</h2>
      <div class="toolbar" role="toolbar" aria-label="Message actions">
        ${message.flags.includes('draft') && html`<button type="button" class="primary" onClick=${actions.editDraft}>Edit draft</button>`}
        <button type="button" onClick=${actions.reply}>Reply</button>
        <button type="button" onClick=${actions.replyAll}>Reply all</button>
        <button type="button" onClick=${actions.forward}>Forward</button>
        <button type="button" onClick=${actions.archive}>Archive</button>
        ${!isDraftOrSent && (inJunk
          ? html`<button type="button" aria-keyshortcuts="n" onClick=${actions.notJunk}>Not junk</button>`
          : html`<button type="button" aria-keyshortcuts="!" onClick=${actions.junk}>Junk</button>`)}
        <button type="button" onClick=${actions.remove}>Delete</button>
        <button type="button" onClick=${actions.markUnread}>Mark unread</button>
        <button type="button" aria-pressed=${flagged ? 'true' : 'false'} onClick=${actions.toggleFlag}>${flagged ? 'Unflag' : 'Flag'}</button>
        <button type="button" onClick=${() => actions.saveRaw(safeFilename(message.subject, 'message'))}>Save as .eml</button>
        <span class="move">
          <label for="move-to">Move to</label>
          <select id="move-to" value=${moveTo} onChange=${(e) => setMoveTo(e.target.value)}>
            <option value="">Choose a folder…</option>
            ${others.map((folder) => html`<option value=${folder.name}>${folder.name}</option>`)}
          </select>
          <button type="button" disabled=${!moveTo} onClick=${() => { actions.move(moveTo); setMoveTo(''); }}>Move</button>
        </span>
      </div>
      <dl class="headers">
        <dt>From</dt><dd>${message.from}</dd>
        <dt>To</dt><dd>${message.to.join(', ') || '—'}</dd>
        ${message.cc.length > 0 && html`<dt>Cc</dt><dd>${message.cc.join(', ')}</dd>`}
        <dt>Date</dt><dd><time datetime=${message.date || message.received_at}>${fullDate(message.date || message.received_at)}</time></dd>
      </dl>
      ${!message.flags.includes('draft') && !(isSent && !message.authentication)
        && html`<${Verification} key=${message.id} message=${message} />`}
      <${JunkVerdict} message=${message} />
      ${message.parse_problem && html`<p class="notice">Part of this message could not be read; its bytes are kept as received (Save as .eml).</p>`}
      ${isSent && html`<${DeliveryStatus} id=${message.id} />`}
      <div class="body">
        ${message.html ? html`<${HtmlBody} key=${message.id} message=${message} />`
          : html`<pre class="text">${message.text || ''}</pre>`}
      </div>
      ${attachments.length > 0 && html`
        <section class="attachments" aria-label="Attachments">
          <h3>Attachments</h3>
          <ul>
            ${attachments.map((part) => html`
              <li>
                <span>${part.filename || `attachment ${part.index + 1}`}</span>
                <span class="size">${size(part.size)}</span>
                <button type="button" aria-label=${`Download ${part.filename || `attachment ${part.index + 1}`}`}
                        onClick=${() => downloadAttachment(part)}>Download</button>
              </li>`)}
          </ul>
        </section>`}
      ${conversation.length > 0 && html`
        <section class="conversation" aria-label="Conversation">
          <h3>In this conversation</h3>
          <ul>
            ${conversation.map((other) => html`
              <li><button type="button" onClick=${() => onOpen(other.id)}>
                ${displayName(other.from)}: ${other.subject || '(no subject)'} — ${relativeDate(other.received_at)} (${other.mailbox})
              </button></li>`)}
          </ul>
        </section>`}
    </article>`;
}
