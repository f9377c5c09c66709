// The parts of the app that need no browser, under node's own test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orderFolders } from '../src/folders.js';
import { bareAddress, displayName, relativeDate, size, splitAddresses } from '../src/format.js';

test('role folders come first in a fixed order, then the user\'s, each child after its parent', () => {
  const folders = ['Projects-old', 'Trash', 'Projects/2026', 'Inbox', 'archive-2019', 'Projects', 'Sent']
    .map((name, id) => ({ id, name, role: ['Inbox', 'Sent', 'Trash'].includes(name) ? name.toLowerCase() : null }));
  assert.deepEqual(orderFolders(folders).map((folder) => folder.name),
    ['Inbox', 'Sent', 'Trash', 'archive-2019', 'Projects', 'Projects/2026', 'Projects-old']);
});

test('dates read as a person says them', () => {
  const now = new Date('2026-11-27T12:00:00Z');
  assert.equal(relativeDate('2026-11-27T11:59:30Z', now), 'just now');
  assert.equal(relativeDate('2026-11-27T11:35:00Z', now), '25 min ago');
  assert.equal(relativeDate(new Date(now - 26 * 3600 * 1000).toISOString(), now), 'Yesterday');
  assert.equal(relativeDate(null, now), '');
});

test('addresses: the bare address, the name shown, and a typed list', () => {
  assert.equal(bareAddress('Bob <Bob@Example.com>'), 'bob@example.com');
  assert.equal(displayName('"Bob B." <bob@example.com>'), 'Bob B.');
  assert.equal(displayName('bob@example.com'), 'bob@example.com');
  assert.deepEqual(splitAddresses('a@x.test, b@y.test;\n c@z.test,,'), ['a@x.test', 'b@y.test', 'c@z.test']);
  assert.equal(size(3 * 1024 * 1024), '3.0 MB');
});
