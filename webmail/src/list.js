import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { displayName, relativeDate, fullDate } from './format.js';

// Drawn here rather than taken from a font: emoji fonts are not everywhere.
const ICONS = {
  flag: 'M5 2v20h2v-8h9l-2-4 2-4H7V2z',
  clip: 'M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z',
};

function Icon({ name }) {
  return html`<svg class=${`icon ${name}`} viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path d=${ICONS[name]} /></svg>`;
}

export function MessageList({ title, messages, selectedId, loading, hasMore, error, onOpen, onSelect, onMore, sentFolder }) {
  const sentinel = useRef(null);
  useEffect(() => {
    // Infinite scroll: the next page is asked for when the list's end comes into view.
    if (!sentinel.current || !hasMore) return undefined;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) onMore();
    });
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [hasMore, onMore, messages.length]);

  useEffect(() => {
    const row = document.getElementById(`row-${selectedId}`);
    if (row) row.scrollIntoView({ block: 'nearest' });
  }, [selectedId]);

  return html`
    <section class="list" aria-labelledby="list-title" aria-busy=${loading ? 'true' : 'false'}>
      <h2 id="list-title">${title}</h2>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${!loading && !error && messages.length === 0 && html`<p class="empty">No messages here.</p>`}
      <ul aria-label="Messages">
        ${messages.map((message) => {
          const unread = !message.flags.includes('seen');
          const flagged = message.flags.includes('flagged');
          const who = sentFolder ? `To ${message.to.map(displayName).join(', ')}` : displayName(message.from);
          return html`
            <li key=${message.id} id=${`row-${message.id}`}
                class=${[unread && 'unread', message.id === selectedId && 'selected'].filter(Boolean).join(' ')}>
              <button type="button" aria-current=${message.id === selectedId ? 'true' : undefined}
                      onFocus=${() => onSelect(message.id)} onClick=${() => onOpen(message.id)}>
                <span class="who"><span class="visually-hidden">${unread ? 'Unread, ' : ''}${flagged ? 'Flagged, ' : ''}</span>${who}</span>
                <span class="marks">
                  ${flagged && html`<${Icon} name="flag" />`}
                  ${message.has_attachments && html`<${Icon} name="clip" /><span class="visually-hidden">, has attachments,</span>`}
                </span>
                <time datetime=${message.received_at} title=${fullDate(message.received_at)}>${relativeDate(message.received_at)}</time>
                <span class="subject">${message.subject || '(no subject)'}</span>
                <span class="snippet">${message.snippet}</span>
              </button>
            </li>`;
        })}
      </ul>
      ${loading && html`<p class="loading" role="status">Loading messages…</p>`}
      ${hasMore && !loading && html`
        <div ref=${sentinel}><button type="button" class="more" onClick=${onMore}>Load more messages</button></div>`}
    </section>`;
}
