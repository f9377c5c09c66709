// What the reader says of the junk filter's verdict, from the API's `junk`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verdictWords } from '../src/junk_words.js';

test('a content verdict gives its score as a percentage', () => {
  assert.equal(verdictWords({ junk: true, decided_by: 'content', score: 0.9871, reasons: ['content'] }),
               'Put in Junk by the junk filter: its words look like junk you moved before (99% likely junk).');
});

test('each reason code is said in words, its detail kept', () => {
  const verdict = { junk: true, decided_by: 'signal', score: null,
                    reasons: ['gtube', 'dnsbl:bl.example', 'dmarc-quarantine', 'blocked:spam.example'] };
  assert.equal(verdictWords(verdict),
               'Put in Junk by the junk filter: it carries the GTUBE test text; the server that sent it is on'
               + ' the blocklist bl.example; it failed DMARC and its domain asks for such mail to be put aside;'
               + ' spam.example is on your block list.');
});

test('a verdict that kept mail out of Junk says why, and an unknown code is shown as it is', () => {
  assert.equal(verdictWords({ junk: false, decided_by: 'history', score: null,
                              reasons: ['wrote-to:crepes.fr', 'something:new'] }),
               'Kept out of Junk by the junk filter: you have written to crepes.fr; something:new.');
  assert.equal(verdictWords({ junk: false, decided_by: 'default', score: null, reasons: [] }),
               'Kept out of Junk by the junk filter.');
});
