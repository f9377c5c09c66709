// What the reader says of a message's sender, from the API's `authentication` (what our
// edge verified when the message arrived): words a person understands, no markup.
import { bareAddress } from './format.js';

const RESULT_WORDS = {
  pass: 'pass', fail: 'fail', softfail: 'soft fail', neutral: 'neutral', none: 'none',
  temperror: 'temporary error', permerror: 'permanent error', policy: 'not accepted by policy',
};

function resultWords(result) {
  return RESULT_WORDS[result] || 'unknown';
}

// One line per method, as "DKIM: pass, signed by crepes.fr (rsa-sha256)".
function methodLines(authentication) {
  const lines = [];
  if (authentication.dkim.length === 0 && !authentication.auth) lines.push('DKIM: none, not signed');
  for (const dkim of authentication.dkim) {
    const signer = dkim.domain ? `, signed by ${dkim.domain}` : (dkim.result === 'none' ? ', not signed' : '');
    const algorithm = dkim.algorithm ? ` (${dkim.algorithm})` : '';
    lines.push(`DKIM: ${resultWords(dkim.result)}${signer}${algorithm}`);
  }
  const { spf, dmarc, auth } = authentication;
  if (spf) lines.push(`SPF: ${resultWords(spf.result)}${spf.domain ? ` for ${spf.domain}` : ''}`);
  if (dmarc) {
    const policy = dmarc.policy ? `, its policy: ${dmarc.policy}` : '';
    lines.push(`DMARC: ${resultWords(dmarc.result)}${dmarc.from_domain ? ` for ${dmarc.from_domain}` : ''}${policy}`);
  }
  if (auth) lines.push(`Sign-in: ${resultWords(auth.result)}${auth.account ? `, as ${auth.account}` : ''}`);
  return lines;
}

function passed(authentication) {
  const names = [];
  if (authentication.dkim.some((dkim) => dkim.result === 'pass')) names.push('DKIM');
  if (authentication.spf?.result === 'pass') names.push('SPF');
  if (authentication.dmarc?.result === 'pass') names.push('DMARC');
  return names;
}

// { state, summary, warning, details }: state is 'verified', 'unverified' or 'unchecked'.
// 'unchecked' (no verdict at all: the message was stored before checking was on, or
// where it is off) is said quietly: marking all such mail as suspect would teach people
// to look past the warning that matters.
export function verification(authentication, from) {
  if (!authentication) {
    return {
      state: 'unchecked', summary: 'Sender not checked', warning: null,
      details: ['This message has no verification result: it was stored before sender checks were on, or they are off. Nothing is known about its sender either way.'],
    };
  }
  const details = methodLines(authentication);
  if (authentication.from_verified) {
    const { auth } = authentication;
    const summary = auth?.result === 'pass'
      ? `Verified: sent by ${auth.account || 'an account here'}, signed in`
      : `Verified: ${authentication.from_domain} (${passed(authentication).join(', ')} pass)`;
    return { state: 'verified', summary, warning: null, details };
  }
  if (!authentication.from_domain) details.unshift('The From field does not name one sender domain.');
  const address = bareAddress(from);
  const warning = address
    ? `Be careful: this message says it is from ${address}, but that could not be verified.`
    : 'Be careful: who sent this message could not be verified.';
  return { state: 'unverified', summary: 'What was checked', warning, details };
}
