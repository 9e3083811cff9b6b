// com.example.js-hostile-chat: a channel that misbehaves on purpose on the webhook path, for the
// hostile-plugin suite (services/channel/tests/channel/hostile.rs). Config `behaviour` picks what
// `verify-webhook` does:
//
// - `loop`: spins forever (the call's CPU limit stops it, and the webhook gets a 5xx);
// - `trap`: throws a plain Error (a bug, not a rejection): the guest traps;
// - `bomb`: allocates until memory runs out (the memory limit stops it).
//
// Nothing it is sent is ever accepted, so nothing it verifies may be stored.

import { config } from 'tributary:plugin/host@0.1.0';

const BEHAVIOURS = {
  loop: () => {
    let n = 0;
    for (;;) n = (n + 1) % 1_000_003;
  },
  trap: () => {
    throw new Error('hostile: a plain Error, not a rejection');
  },
  bomb: () => {
    const hoard = [];
    for (;;) hoard.push(new Uint8Array(1 << 20).fill(hoard.length & 0xff));
  },
};

export const messaging = {
  verifyWebhook(_request) {
    const { behaviour } = JSON.parse(config());
    const act = BEHAVIOURS[behaviour];
    if (!act) throw { status: 500, reason: `misconfigured (config field \`behaviour\`: ${JSON.stringify(behaviour)})` };
    return act();
  },
  headersToKeep() {
    return ['content-type'];
  },
  handleIncoming(_request) {
    return '[]';
  },
  sendMessage(_message) {
    throw { tag: 'other', val: 'this channel sends nothing' };
  },
};
