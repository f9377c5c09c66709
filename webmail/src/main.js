// The app's state and the actions on it; each screen is its own module.
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, currentSession, onSessionEnded, plainWords, signOut } from './api.js';
import { bareAddress, fullDate } from './format.js';
import { SignIn } from './signin.js';
import { FolderList } from './folders.js';
import { MessageList } from './list.js';
import { Reader, saveBlob } from './reader.js';
import { Compose, attachmentFromBlob, compositionBody, emptyComposition } from './compose.js';
import { Help } from './help.js';
import { JunkSettings } from './junk.js';

const PAGE_SIZE = 50;
const REFRESH_MS = 10_000;

function plainText(message) {
  if (message.text) return message.text;
  // An inert document: nothing in it loads or runs; only its text is taken.
  const document_ = new DOMParser().parseFromString(message.html || '', 'text/html');
  return (document_.body && document_.body.textContent) || '';
}

function quoted(message) {
  const lines = plainText(message).replace(/\s+$/, '').split('\n').map((line) => `> ${line}`);
  return `\n\nOn ${fullDate(message.date || message.received_at)}, ${message.from} wrote:\n${lines.join('\n')}\n`;
}

function forwarded(message) {
  return ['', '', '---------- Forwarded message ----------', `From: ${message.from}`,
          `Date: ${fullDate(message.date || message.received_at)}`, `Subject: ${message.subject}`,
          `To: ${message.to.join(', ')}`, '', plainText(message)].join('\n');
}

function isTyping(target) {
  return target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

function App() {
  const [session, setSession] = useState(currentSession());
  const [notice, setNotice] = useState('');
  const [folders, setFolders] = useState([]);
  const [view, setView] = useState({ folder: null, query: null });
  const [list, setList] = useState({ messages: [], cursor: null, loading: false, error: '' });
  const [selectedId, setSelectedId] = useState(null);
  const [open, setOpen] = useState({ message: null, loading: false, error: '' });
  const [conversation, setConversation] = useState([]);
  const [compose, setCompose] = useState(null);
  const [sending, setSending] = useState(false);
  const [composeError, setComposeError] = useState('');
  const [toast, setToast] = useState('');
  const [help, setHelp] = useState(false);
  const [settings, setSettings] = useState(false);
  const listRequest = useRef(0);
  const composeRef = useRef(null);
  const keyHandler = useRef(() => {});
  const lastAddress = useRef(session && session.address);
  composeRef.current = compose;

  const say = (words) => { setToast(words); setTimeout(() => setToast((now) => (now === words ? '' : now)), 6000); };
  const fail = (failure) => say(plainWords(failure));
  const role = (name) => folders.find((folder) => folder.role === name);

  useEffect(() => onSessionEnded(() => {
    // The compose in progress stays in memory: it is there again after signing in.
    setSession(null);
    setNotice('Your session has ended. Sign in again to go on; nothing you were writing is lost.');
  }), []);

  const refreshFolders = useCallback(async () => {
    try {
      const { mailboxes } = await api.folders();
      setFolders(mailboxes);
      return mailboxes;
    } catch (failure) {
      fail(failure);
      return null;
    }
  }, []);

  useEffect(() => {
    if (!session) return;
    refreshFolders().then((mailboxes) => {
      if (mailboxes && !view.folder && !view.query) {
        const inbox = mailboxes.find((folder) => folder.role === 'inbox');
        setView({ folder: inbox ? inbox.name : mailboxes[0].name, query: null });
      }
    });
  }, [session]);

  const loadPage = useCallback(async (cursor) => {
    if (!view.folder && !view.query) return;
    const request = ++listRequest.current;
    setList((now) => ({ ...now, loading: true, error: '' }));
    try {
      const page = view.query ? await api.search(view.query, cursor)
        : await api.messages(view.folder, cursor, PAGE_SIZE);
      if (request !== listRequest.current) return;
      setList((now) => ({ messages: cursor ? [...now.messages, ...page.messages] : page.messages,
                          cursor: page.cursor, loading: false, error: '' }));
    } catch (failure) {
      if (request === listRequest.current) setList((now) => ({ ...now, loading: false, error: plainWords(failure) }));
    }
  }, [view]);

  useEffect(() => {
    if (!session) return;
    setList({ messages: [], cursor: null, loading: true, error: '' });
    setSelectedId(null);
    setOpen({ message: null, loading: false, error: '' });
    loadPage(null);
  }, [session, view]);

  // New mail, and changes made elsewhere (IMAP, another tab), show without a reload: the
  // folder counts and the first page are asked for again while the tab is visible.
  useEffect(() => {
    if (!session) return undefined;
    const timer = setInterval(async () => {
      if (document.hidden) return;
      refreshFolders();
      if (view.query || !view.folder) return;
      const request = listRequest.current;
      try {
        const page = await api.messages(view.folder, null, PAGE_SIZE);
        if (request !== listRequest.current) return;
        setList((now) => {
          const fresh = new Map(page.messages.map((m) => [m.id, m]));
          const known = new Set(now.messages.map((m) => m.id));
          const arrived = page.messages.filter((m) => !known.has(m.id));
          return { ...now, messages: [...arrived, ...now.messages.map((m) => fresh.get(m.id) || m)] };
        });
      } catch {
        // The next round tries again; a lasting problem shows at the next action.
      }
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [session, view]);

  const loadMore = useCallback(() => {
    if (list.cursor && !list.loading) loadPage(list.cursor);
  }, [list, loadPage]);

  function patchListed(id, change) {
    setList((now) => ({ ...now, messages: now.messages.map((m) => (m.id === id ? { ...m, ...change(m) } : m)) }));
  }

  // Changes go to the server one after another, in the order they were made: the read
  // mark sent on opening, then a quick "Mark unread", must not land the other way round.
  const changesSent = useRef(Promise.resolve());

  function sendChange(id, fields) {
    const sent = changesSent.current.then(() => api.change(id, fields));
    changesSent.current = sent.catch(() => {});
    return sent;
  }

  // A change applied to the message as shown now, rather than the server's answer put in
  // its place: answers to two changes may arrive in either order, and the later answer
  // to the earlier change would undo the other (seen, then a quick flag, lost the flag).
  function applyChange(id, fields, mailbox) {
    const update = (message) => {
      const flags = new Set(message.flags);
      for (const flag of ['seen', 'flagged', 'answered']) {
        if (fields[flag] === true) flags.add(flag);
        if (fields[flag] === false) flags.delete(flag);
      }
      if (fields.junk !== undefined) {
        flags.delete('$Junk');
        flags.delete('$NotJunk');
        flags.add(fields.junk ? '$Junk' : '$NotJunk');
      }
      return { flags: [...flags], ...(mailbox ? { mailbox } : {}) };
    };
    patchListed(id, update);
    setOpen((now) => (now.message && now.message.id === id
      ? { ...now, message: { ...now.message, ...update(now.message) } } : now));
  }

  function dropListed(id) {
    const index = list.messages.findIndex((m) => m.id === id);
    const next = list.messages[index + 1] || list.messages[index - 1];
    setList((now) => ({ ...now, messages: now.messages.filter((m) => m.id !== id) }));
    setOpen({ message: null, loading: false, error: '' });
    setSelectedId(next ? next.id : null);
  }

  async function findConversation(message) {
    if (!message.in_reply_to && !message.references) return [];
    // The rest of a conversation is usually in Inbox and Sent: look at their newest pages.
    const places = [role('inbox'), role('sent')].filter(Boolean).map((folder) => folder.name);
    const pages = await Promise.all(places.map((name) => api.messages(name, null, PAGE_SIZE).catch(() => ({ messages: [] }))));
    return pages.flatMap((page) => page.messages)
      .filter((other) => other.thread_id === message.thread_id && other.id !== message.id)
      .sort((a, b) => a.received_at.localeCompare(b.received_at));
  }

  async function openMessage(id) {
    setSettings(false);
    setSelectedId(id);
    setOpen({ message: null, loading: true, error: '' });
    setConversation([]);
    document.body.dataset.pane = 'reader';
    try {
      const message = await api.message(id);
      setOpen({ message, loading: false, error: '' });
      if (!message.flags.includes('seen')) {
        await sendChange(id, { seen: true });
        applyChange(id, { seen: true });
        // The count is put right here rather than asked for again (one request fewer per
        // message read); the 10-second refresh brings anything else.
        countUnread(message.mailbox, -1);
      }
      setConversation(await findConversation(message));
    } catch (failure) {
      setOpen({ message: null, loading: false, error: plainWords(failure) });
    }
  }

  function countUnread(folderName, by) {
    setFolders((now) => now.map((folder) => (folder.name === folderName
      ? { ...folder, unread: Math.max(0, folder.unread + by) } : folder)));
  }

  async function change(id, fields, words) {
    try {
      const changed = await sendChange(id, fields);
      if (fields.mailbox && !view.query) {
        dropListed(id);
      } else {
        applyChange(id, fields, changed.mailbox);
      }
      refreshFolders();
      if (words) say(words);
    } catch (failure) {
      fail(failure);
    }
  }

  const target = () => open.message || list.messages.find((m) => m.id === selectedId) || null;

  const actions = {
    fail,
    reply: () => startReply(false),
    replyAll: () => startReply(true),
    forward: () => {
      const message = open.message;
      if (message) startCompose({ forward_of: message.id, text: forwarded(message) });
    },
    archive: () => {
      const message = target();
      const archive = role('archive');
      if (message && archive) change(message.id, { mailbox: archive.name }, 'Archived.');
    },
    remove: async () => {
      const message = target();
      if (!message) return;
      try {
        const { result } = await api.remove(message.id);
        dropListed(message.id);
        refreshFolders();
        say(result === 'deleted' ? 'Deleted for good.' : 'Moved to Trash.');
      } catch (failure) {
        fail(failure);
      }
    },
    // The move teaches the filter; `junk` says it too, in the message's own keywords.
    junk: () => {
      const message = target();
      const junk = role('junk');
      if (message && junk && message.mailbox !== junk.name) {
        change(message.id, { mailbox: junk.name, junk: true }, 'Moved to Junk.');
      }
    },
    notJunk: () => {
      const message = target();
      const [junk, inbox] = [role('junk'), role('inbox')];
      if (message && junk && inbox && message.mailbox === junk.name) {
        change(message.id, { mailbox: inbox.name, junk: false }, 'Not junk: moved to the Inbox.');
      }
    },
    markUnread: () => {
      const message = target();
      if (message) change(message.id, { seen: false }, 'Marked unread.');
    },
    toggleFlag: () => {
      const message = target();
      if (message) change(message.id, { flagged: !message.flags.includes('flagged') });
    },
    move: (name) => {
      const message = target();
      if (message) change(message.id, { mailbox: name }, `Moved to ${name}.`);
    },
    // A draft opened again: its fields and its files back in the compose form. What it
    // answers stays with it on the server (the API keeps a draft's In-Reply-To).
    editDraft: async () => {
      const message = open.message;
      try {
        const parts = message.attachments.filter((part) => !part.content_id);
        const attachments = await Promise.all(parts.map(async (part) => attachmentFromBlob(
          await api.attachment(message.id, part.index),
          part.filename || `attachment-${part.index + 1}`, part.content_type)));
        startCompose({ to: message.to.join(', '), cc: message.cc.join(', '), bcc: message.bcc.join(', '),
                       subject: message.subject, text: message.text || '', attachments,
                       draftId: message.id, saved: 'saved' });
      } catch (failure) {
        fail(failure);
      }
    },
    saveRaw: async (filename) => {
      try {
        saveBlob(await api.raw(open.message.id), `${filename}.eml`);
      } catch (failure) {
        fail(failure);
      }
    },
  };

  function startCompose(fields = {}) {
    if (composeRef.current && composeRef.current.saved === 'dirty' && !window.confirm('Discard the message you are writing?')) return;
    setComposeError('');
    setSettings(false);
    setCompose(emptyComposition(fields));
    document.body.dataset.pane = 'compose';
  }

  function startReply(all) {
    const message = open.message;
    if (!message) return;
    const me = bareAddress(session.address);
    const others = (addresses) => addresses.filter((address) => bareAddress(address) !== me);
    // A reply to one's own message (from Sent) goes to those it was sent to.
    const fromMe = bareAddress(message.from) === me;
    const to = fromMe ? message.to : all ? others([message.from, ...message.to]) : [message.from];
    startCompose({ in_reply_to: message.id, to: to.join(', '),
                   cc: all ? others(message.cc).join(', ') : '', text: quoted(message) });
  }

  // The save in flight, if any: sending or discarding waits for it, or a draft made by a
  // save that lands after the send would stay behind in Drafts.
  const savingRef = useRef(Promise.resolve());

  function saveDraft() {
    savingRef.current = savingRef.current.then(saveDraftNow);
    return savingRef.current;
  }

  async function saveDraftNow() {
    const now = composeRef.current;
    if (!now || now.saved === 'saved') return;
    composeRef.current = { ...now, saved: 'saving' };
    setCompose(composeRef.current);
    try {
      const body = compositionBody(now);
      const draft = now.draftId ? await api.updateDraft(now.draftId, body) : await api.createDraft(body);
      // What was typed while saving stays marked as unsaved.
      setCompose((latest) => {
        const next = latest && ({ ...latest, draftId: draft.id,
                                  saved: latest.saved === 'saving' ? 'saved' : latest.saved });
        composeRef.current = next;
        return next;
      });
    } catch (failure) {
      setCompose((latest) => latest && ({ ...latest, saved: 'failed' }));
      setComposeError(plainWords(failure));
    }
  }

  async function send() {
    await savingRef.current;
    const now = composeRef.current;
    if (!compositionBody(now).to.length && !compositionBody(now).cc.length && !compositionBody(now).bcc.length) {
      setComposeError('Add at least one recipient.');
      return;
    }
    setSending(true);
    setComposeError('');
    try {
      const body = compositionBody(now);
      if (now.draftId) {
        await api.updateDraft(now.draftId, body);
        await api.sendDraft(now.draftId);
      } else {
        await api.send(body);
      }
      setCompose(null);
      if (now.draftId) {
        // A sent draft leaves Drafts.
        setList((shown) => ({ ...shown, messages: shown.messages.filter((m) => m.id !== now.draftId) }));
        setOpen((shown) => (shown.message && shown.message.id === now.draftId
          ? { message: null, loading: false, error: '' } : shown));
      }
      document.body.dataset.pane = 'list';
      say('Message sent. Its delivery status is shown with it in Sent.');
      refreshFolders();
      const sent = role('sent');
      if (sent && view.folder === sent.name) loadPage(null);
    } catch (failure) {
      setComposeError(plainWords(failure));
    } finally {
      setSending(false);
    }
  }

  async function discard() {
    await savingRef.current;
    const now = composeRef.current;
    setCompose(null);
    document.body.dataset.pane = open.message ? 'reader' : 'list';
    if (now && now.draftId) {
      try {
        // A discarded draft goes for good: once to Trash, then out of Trash.
        const { result } = await api.remove(now.draftId);
        if (result === 'moved_to_trash') await api.remove(now.draftId);
      } catch (failure) {
        fail(failure);
      }
      refreshFolders();
    }
  }

  async function createFolder(name) {
    try {
      await api.createFolder(name);
      await refreshFolders();
      say(`Folder ${name} created.`);
      return true;
    } catch (failure) {
      fail(failure);
      return false;
    }
  }

  async function renameFolder(name, newName) {
    try {
      await api.renameFolder(name, newName);
      await refreshFolders();
      setView({ folder: newName, query: null });
      say(`Folder renamed to ${newName}.`);
      return true;
    } catch (failure) {
      fail(failure);
      return false;
    }
  }

  async function deleteFolder(name) {
    if (!window.confirm(`Delete the folder ${name}? Only an empty folder can be deleted.`)) return;
    try {
      await api.deleteFolder(name);
      const inbox = role('inbox');
      setView({ folder: inbox ? inbox.name : null, query: null });
      await refreshFolders();
      say(`Folder ${name} deleted.`);
    } catch (failure) {
      fail(failure);
    }
  }

  // Keyboard shortcuts (help.js lists them); never while typing or in a dialog. The one
  // listener calls the handler of the latest render: an effect re-registering it would lag
  // a render behind (effects run after paint), and a key pressed then would see old state.
  keyHandler.current = (event) => {
    if (!session || help || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === 'Escape') {
      if (document.body.dataset.pane === 'reader') document.body.dataset.pane = 'list';
      return;
    }
    if (isTyping(event.target) || compose) return;
    const messages = list.messages;
    const index = messages.findIndex((m) => m.id === selectedId);
    const focusRow = (i) => {
      const row = messages[i] && document.querySelector(`#row-${messages[i].id} button`);
      if (row) row.focus();
    };
    const handlers = {
      j: () => focusRow(Math.min(index + 1, messages.length - 1)),
      k: () => focusRow(Math.max(index - 1, 0)),
      o: () => selectedId && openMessage(selectedId),
      r: actions.reply,
      a: actions.replyAll,
      f: actions.forward,
      c: () => startCompose(),
      e: actions.archive,
      '#': actions.remove,
      u: actions.markUnread,
      s: actions.toggleFlag,
      '!': actions.junk,
      n: actions.notJunk,
      '/': () => document.getElementById('search').focus(),
      '?': () => setHelp(true),
    };
    const handler = handlers[event.key];
    if (handler) {
      event.preventDefault();
      handler();
    }
  };
  useEffect(() => {
    const onKey = (event) => keyHandler.current(event);
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  if (!session) {
    return html`<${SignIn} notice=${notice} onSignedIn=${(signedIn) => {
      // What was being written comes back only to the account that was writing it.
      if (signedIn.address !== lastAddress.current) setCompose(null);
      lastAddress.current = signedIn.address;
      setNotice('');
      setSession(signedIn);
    }} />`;
  }

  const sentFolder = role('sent');
  const title = view.query ? `Search results for “${view.query}”` : view.folder || 'Loading…';
  return html`
    <div class="app">
      <a class="skip" href="#list-title">Skip to messages</a>
      <header class="top">
        <h1>mailpipe</h1>
        <button type="button" class="phone-only" onClick=${() => { document.body.dataset.pane = 'folders'; }}>Folders</button>
        <form role="search" class="search" onSubmit=${(e) => {
          e.preventDefault();
          const q = e.target.elements.q.value.trim();
          if (q) setView({ folder: null, query: q });
        }}>
          <label for="search" class="visually-hidden">Search mail</label>
          <input id="search" name="q" type="search" placeholder="Search mail" maxlength="200" />
          <button type="submit">Search</button>
        </form>
        <button type="button" class="primary" onClick=${() => startCompose()}>Compose</button>
        <button type="button" aria-label="Keyboard shortcuts" onClick=${() => setHelp(true)}>?</button>
        <button type="button" onClick=${() => { setSettings(true); document.body.dataset.pane = 'reader'; }}>Junk filter settings</button>
        <span class="account">${session.address}</span>
        <button type="button" onClick=${() => { signOut(); setSession(null); setCompose(null); setNotice('You have signed out.'); }}>Sign out</button>
      </header>
      <div class="panes">
        <${FolderList} folders=${folders} current=${view.folder}
                       onSelect=${(name) => { setView({ folder: name, query: null }); setSettings(false); document.body.dataset.pane = 'list'; }}
                       onCreate=${createFolder} onRename=${renameFolder} onDelete=${deleteFolder} />
        <${MessageList} title=${title} messages=${list.messages} selectedId=${selectedId} loading=${list.loading}
                        hasMore=${Boolean(list.cursor)} error=${list.error} onOpen=${openMessage}
                        onSelect=${setSelectedId} onMore=${loadMore}
                        sentFolder=${Boolean(sentFolder && view.folder === sentFolder.name)} />
        <main class="main-pane">
          ${settings ? html`<${JunkSettings} onClose=${() => { setSettings(false); document.body.dataset.pane = compose ? 'compose' : 'list'; }} />`
          : compose ? html`
            <${Compose} compose=${compose} onChange=${setCompose} onSend=${send} onDiscard=${discard}
                        onSaveDraft=${saveDraft} busy=${sending} error=${composeError} />`
          : html`
            <${Reader} message=${open.message} loading=${open.loading} error=${open.error} folders=${folders}
                       conversation=${conversation} actions=${actions} onOpen=${openMessage}
                       isSent=${Boolean(open.message && sentFolder && open.message.mailbox === sentFolder.name)}
                       onBack=${() => { document.body.dataset.pane = 'list'; }} />`}
        </main>
      </div>
      <p class="toast" role="status" aria-live="polite">${toast}</p>
      ${help && html`<${Help} onClose=${() => setHelp(false)} />`}
    </div>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "Loading" line, shown until the modules have arrived
render(html`<${App} />`, root);
