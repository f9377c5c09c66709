// The junk filter's verdict on a message (the API's `junk`) in words a person understands:
// its reason codes (openapi.yaml, JunkVerdict) each said as a short clause.

const REASON_WORDS = {
  gtube: () => 'it carries the GTUBE test text',
  dnsbl: (zone) => `the server that sent it is on the blocklist ${zone}`,
  'dmarc-quarantine': () => 'it failed DMARC and its domain asks for such mail to be put aside',
  blocked: (entry) => `${entry} is on your block list`,
  allowed: (entry) => `${entry} is on your allow list`,
  'wrote-to': (who) => `you have written to ${who}`,
  kept: (who) => `you kept mail from ${who}`,
  junked: (who) => `you moved mail from ${who} to Junk`,
  untrained: () => 'the filter has not learned enough from you yet to judge the words',
};

function reasonWords(reason, verdict) {
  const at = reason.indexOf(':');
  const [code, detail] = at < 0 ? [reason, ''] : [reason.slice(0, at), reason.slice(at + 1)];
  if (code === 'content') {
    const score = verdict.score === null ? '' : ` (${Math.round(verdict.score * 100)}% likely junk)`;
    return `${verdict.junk ? 'its words look like junk you moved before' : 'its words do not look like junk'}${score}`;
  }
  const words = REASON_WORDS[code];
  return words ? words(detail) : reason;
}

// "Put in Junk: the server that sent it is on the blocklist … ."
export function verdictWords(verdict) {
  const reasons = verdict.reasons.map((reason) => reasonWords(reason, verdict));
  const because = reasons.length > 0 ? `: ${reasons.join('; ')}.` : '.';
  return `${verdict.junk ? 'Put in Junk' : 'Kept out of Junk'} by the junk filter${because}`;
}
