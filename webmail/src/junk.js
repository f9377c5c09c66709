// The junk filter as the webmail shows it: the verdict on a message, in words, and the
// account's settings (allow list, block list, days Junk keeps mail). Text only: entries
// and reasons are untrusted and go through htm's escaping, never innerHTML.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, plainWords } from './api.js';
import { verdictWords } from './junk_words.js';

export function JunkVerdict({ message }) {
  if (!message.junk) return null;
  return html`<p class=${`junk-verdict ${message.junk.junk ? 'junk' : 'not-junk'}`}
                 role="note" aria-label="Junk filter verdict">${verdictWords(message.junk)}</p>`;
}

const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);

// The field the API's error names ("block[2]"), as the form's own field name.
const fieldOf = (error) => (error.field || '').replace(/\[.*$/, '');

export function JunkSettings({ onClose }) {
  const [form, setForm] = useState(null); // {allow, block, junk_days} as typed
  const [trained, setTrained] = useState(null);
  const [state, setState] = useState({ busy: false, error: '', field: '', saved: false });

  function show(filter) {
    setForm({ allow: filter.allow.join('\n'), block: filter.block.join('\n'), junk_days: String(filter.junk_days) });
    setTrained(filter.trained);
  }

  useEffect(() => {
    api.junkFilter().then(show).catch((failure) => setState({ busy: false, error: plainWords(failure), field: '', saved: false }));
  }, []);

  async function save(event) {
    event.preventDefault();
    setState({ busy: true, error: '', field: '', saved: false });
    try {
      show(await api.saveJunkFilter({ allow: lines(form.allow), block: lines(form.block),
                                      junk_days: Number(form.junk_days) }));
      setState({ busy: false, error: '', field: '', saved: true });
    } catch (failure) {
      setState({ busy: false, error: plainWords(failure), field: fieldOf(failure), saved: false });
    }
  }

  const edit = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const invalid = (name) => (state.field === name ? 'true' : undefined);
  return html`
    <section class="junk-settings" aria-labelledby="junk-settings-title">
      <h2 id="junk-settings-title">Junk filter</h2>
      <p>Mail goes to Junk when the filter thinks it is junk; moving mail into Junk, or out of it with “Not junk”, teaches it.</p>
      ${state.error && html`<p class="error" role="alert" id="junk-settings-error">${state.error}</p>`}
      ${form === null ? (!state.error && html`<p class="loading" role="status">Loading the settings…</p>`) : html`
        <form onSubmit=${save}>
          <label for="junk-allow">Allow list</label>
          <p class="hint" id="junk-allow-hint">Addresses or domains, one per line, never put in Junk for their words.</p>
          <textarea id="junk-allow" rows="5" value=${form.allow} onInput=${edit('allow')}
                    aria-describedby=${state.field === 'allow' ? 'junk-allow-hint junk-settings-error' : 'junk-allow-hint'}
                    aria-invalid=${invalid('allow')}></textarea>
          <label for="junk-block">Block list</label>
          <p class="hint" id="junk-block-hint">Addresses or domains, one per line, always put in Junk.</p>
          <textarea id="junk-block" rows="5" value=${form.block} onInput=${edit('block')}
                    aria-describedby=${state.field === 'block' ? 'junk-block-hint junk-settings-error' : 'junk-block-hint'}
                    aria-invalid=${invalid('block')}></textarea>
          <label for="junk-days">Days to keep junk</label>
          <input id="junk-days" type="number" min="1" max="3650" required value=${form.junk_days}
                 onInput=${edit('junk_days')} aria-invalid=${invalid('junk_days')} />
          ${trained && html`<p class="hint">The filter has learned from ${trained.junk} junk and ${trained.not_junk} other messages; it judges mail by its words once it has ${trained.minimum} of each.</p>`}
          <div class="row">
            <button type="submit" class="primary" disabled=${state.busy}>Save</button>
            <button type="button" onClick=${onClose}>Close</button>
          </div>
          <p role="status" class="saved">${state.saved ? 'Junk filter settings saved.' : ''}</p>
        </form>`}
    </section>`;
}
