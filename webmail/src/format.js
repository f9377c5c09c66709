// How dates, sizes and addresses read to a person.

const MINUTE = 60 * 1000;
const DAY = 24 * 60 * MINUTE;

export function relativeDate(iso, now = new Date()) {
  if (!iso) return '';
  const date = new Date(iso);
  const ago = now - date;
  if (ago < MINUTE) return 'just now';
  if (ago < 60 * MINUTE) return `${Math.floor(ago / MINUTE)} min ago`;
  const sameDay = date.toDateString() === now.toDateString();
  if (sameDay) return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const yesterday = new Date(now - DAY);
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  if (ago < 6 * DAY) return date.toLocaleDateString([], { weekday: 'long' });
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString([], sameYear
    ? { day: 'numeric', month: 'short' }
    : { day: 'numeric', month: 'short', year: 'numeric' });
}

export function fullDate(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// "Bob <bob@example.com>" -> "bob@example.com"; a bare address stays as it is.
export function bareAddress(address) {
  const match = /<([^>]+)>\s*$/.exec(address || '');
  return (match ? match[1] : address || '').trim().toLowerCase();
}

// The name shown for a sender: the display name when there is one.
export function displayName(address) {
  const match = /^\s*"?([^"<]*?)"?\s*<[^>]+>\s*$/.exec(address || '');
  return (match && match[1]) || address || '(unknown sender)';
}

export function splitAddresses(text) {
  return text.split(/[,;\n]/).map((part) => part.trim()).filter(Boolean);
}
