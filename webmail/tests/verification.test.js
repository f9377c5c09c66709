// What the reader says of a sender, from the API's `authentication`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verification } from '../src/verification.js';

const dkim = (result, algorithm) => ({ result, domain: 'crepes.fr', selector: 's', algorithm });
const VERIFIED = {
  from_domain: 'crepes.fr', from_verified: true,
  spf: { result: 'pass', domain: 'crepes.fr' },
  dkim: [dkim('pass', 'rsa-sha256'), dkim('pass', 'ed25519-sha256')],
  dmarc: { result: 'pass', from_domain: 'crepes.fr', policy: 'quarantine' },
  auth: null,
};

test('a verified sender reads as one line that opens to each method', () => {
  const shown = verification(VERIFIED, 'Alice <alice@crepes.fr>');
  assert.equal(shown.state, 'verified');
  assert.equal(shown.warning, null);
  assert.equal(shown.summary, 'Verified: crepes.fr (DKIM, SPF, DMARC pass)');
  assert.deepEqual(shown.details, [
    'DKIM: pass, signed by crepes.fr (rsa-sha256)', 'DKIM: pass, signed by crepes.fr (ed25519-sha256)',
    'SPF: pass for crepes.fr', 'DMARC: pass for crepes.fr, its policy: quarantine']);
});

test('mail of our own users is verified by their sign-in', () => {
  const shown = verification({ from_domain: 'crepes.fr', from_verified: true, spf: null, dkim: [], dmarc: null,
    auth: { result: 'pass', account: 'alice@crepes.fr' } }, 'alice@crepes.fr');
  assert.equal(shown.summary, 'Verified: sent by alice@crepes.fr, signed in');
  assert.deepEqual(shown.details, ['Sign-in: pass, as alice@crepes.fr']);
});

test('a From that could not be verified is a warning naming it', () => {
  const spoofed = { ...VERIFIED, from_domain: 'hamburger.edu', from_verified: false,
    dkim: [{ result: 'none', domain: null, selector: null, algorithm: null }], dmarc: { result: 'fail', from_domain: 'hamburger.edu', policy: null },
    spf: { result: 'temperror', domain: 'evil.example' } };
  const shown = verification(spoofed, '"The CEO" <CEO@hamburger.edu>');
  assert.equal(shown.state, 'unverified');
  assert.equal(shown.warning,
    'Be careful: this message says it is from ceo@hamburger.edu, but that could not be verified.');
  assert.deepEqual(shown.details, ['DKIM: none, not signed', 'SPF: temporary error for evil.example',
    'DMARC: fail for hamburger.edu']);
  const noFrom = verification({ ...spoofed, dkim: [], from_domain: null }, '');
  assert.equal(noFrom.warning, 'Be careful: who sent this message could not be verified.');
  assert.deepEqual(noFrom.details.slice(0, 2), ['The From field does not name one sender domain.',
    'DKIM: none, not signed']);
});

test('a message without a verdict is said to be unchecked, quietly', () => {
  const shown = verification(null, 'alice@crepes.fr');
  assert.deepEqual([shown.state, shown.summary, shown.warning], ['unchecked', 'Sender not checked', null]);
});
