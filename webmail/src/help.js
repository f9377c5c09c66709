import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';

export const SHORTCUTS = [
  ['j', 'Next message'],
  ['k', 'Previous message'],
  ['o or Enter', 'Open the selected message'],
  ['r', 'Reply'],
  ['a', 'Reply to all'],
  ['f', 'Forward'],
  ['c', 'Compose a new message'],
  ['e', 'Archive'],
  ['#', 'Delete (to Trash)'],
  ['u', 'Mark unread'],
  ['s', 'Flag or unflag'],
  ['!', 'Junk (move to Junk)'],
  ['n', 'Not junk (move from Junk to the Inbox)'],
  ['/', 'Search'],
  ['?', 'This list'],
  ['Escape', 'Close a dialog or the message'],
];

export function Help({ onClose }) {
  const dialog = useRef(null);
  useEffect(() => {
    dialog.current.showModal();
  }, []);
  return html`
    <dialog ref=${dialog} class="help" aria-labelledby="help-title" onClose=${onClose}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <table>
        <thead><tr><th scope="col">Key</th><th scope="col">Action</th></tr></thead>
        <tbody>
          ${SHORTCUTS.map(([key, action]) => html`<tr><td><kbd>${key}</kbd></td><td>${action}</td></tr>`)}
        </tbody>
      </table>
      <button type="button" onClick=${() => dialog.current.close()}>Close</button>
    </dialog>`;
}
