import { useState } from 'preact/hooks';
import { html } from './html.js';

const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];

// Part by part, so that "A/B" comes right after "A" and before "A-old".
function byPath(a, b) {
  const left = a.name.split('/');
  const right = b.name.split('/');
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    const order = left[i].localeCompare(right[i], undefined, { sensitivity: 'base' });
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

// Role folders first in a fixed order, then the user's, each parent before its children.
export function orderFolders(folders) {
  const roles = ROLE_ORDER.map((role) => folders.find((folder) => folder.role === role)).filter(Boolean);
  const own = folders.filter((folder) => !folder.role).sort(byPath);
  return [...roles, ...own];
}

export function FolderList({ folders, current, onSelect, onCreate, onRename, onDelete }) {
  const [editing, setEditing] = useState(null); // null | {kind: 'create'|'rename', value}
  const ordered = orderFolders(folders);
  const selected = folders.find((folder) => folder.name === current);

  function submit(event) {
    event.preventDefault();
    const value = editing.value.trim();
    if (!value) return;
    (editing.kind === 'create' ? onCreate(value) : onRename(current, value))
      .then((ok) => ok && setEditing(null));
  }

  return html`
    <nav class="folders" aria-label="Folders">
      <ul>
        ${ordered.map((folder) => {
          const depth = folder.role ? 0 : folder.name.split('/').length - 1;
          const label = folder.role ? folder.name : folder.name.split('/').pop();
          return html`
            <li key=${folder.id} style=${{ paddingInlineStart: `${depth * 0.9}rem` }}>
              <button type="button" class=${folder.name === current ? 'current' : ''}
                      aria-current=${folder.name === current ? 'page' : undefined}
                      onClick=${() => onSelect(folder.name)}>
                <span class="name">${label}</span>
                ${folder.unread > 0 && html`<span class="count">${folder.unread}<span class="visually-hidden"> unread</span></span>`}
              </button>
            </li>`;
        })}
      </ul>
      ${editing ? html`
        <form class="folder-form" onSubmit=${submit}>
          <label for="folder-name">${editing.kind === 'create' ? 'New folder name' : `Rename ${current} to`}</label>
          <input id="folder-name" value=${editing.value} required maxlength="200" autofocus
                 onInput=${(e) => setEditing({ ...editing, value: e.target.value })} />
          <div class="row">
            <button type="submit">${editing.kind === 'create' ? 'Create' : 'Rename'}</button>
            <button type="button" onClick=${() => setEditing(null)}>Cancel</button>
          </div>
        </form>` : html`
        <div class="folder-actions">
          <button type="button" onClick=${() => setEditing({ kind: 'create', value: '' })}>New folder</button>
          ${selected && !selected.role && html`
            <button type="button" onClick=${() => setEditing({ kind: 'rename', value: selected.name })}>Rename folder</button>
            <button type="button" onClick=${() => onDelete(selected.name)}>Delete folder</button>`}
        </div>`}
    </nav>`;
}
