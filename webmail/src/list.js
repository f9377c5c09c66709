import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { displayName, relativeDate, fullDate } from './format.js';

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
          const label = [unread ? 'Unread' : null, flagged ? 'Flagged' : null, who,
                         message.subject || '(no subject)',
                         message.has_attachments ? 'has attachments' : null,
                         relativeDate(message.received_at)].filter(Boolean).join(', ');
          return html`
            <li key=${message.id} id=${`row-${message.id}`}
                class=${[unread && 'unread', message.id === selectedId && 'selected'].filter(Boolean).join(' ')}>
              <button type="button" aria-label=${label} aria-current=${message.id === selectedId ? 'true' : undefined}
                      onFocus=${() => onSelect(message.id)} onClick=${() => onOpen(message.id)}>
                <span class="who">${who}</span>
                <span class="marks" aria-hidden="true">
                  ${flagged && html`<span class="flag" title="Flagged">⚑</span>`}
                  ${message.has_attachments && html`<span class="clip" title="Has attachments">📎</span>`}
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
