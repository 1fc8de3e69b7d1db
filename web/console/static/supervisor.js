// parley supervisor console: every live call with its signals, transcript
// and escalation decisions as they happen; the queue and the agents; and
// joining a call to listen, whisper to the agent or barge in. One
// sendrecv peer per joined call: the microphone always goes up, the server
// decides who hears it, so switching modes needs no renegotiation.
(() => {
  'use strict';

  const P = window.parley;
  const { el, fill } = P;
  const $ = (id) => document.getElementById(id);

  const S = {
    calls: new Map(), // id -> LiveCall (+ _decisions: [{at, ...Decision}])
    queue: [],
    agents: new Map(),
    skew: 0, // client clock minus server clock, ms
    selected: '',
    ended: null, // the selected call after it ended
    join: { callId: '', mode: '', pc: null, mic: null, audio: 'none' },
  };

  function setNotice(text, isError) {
    const n = $('notice');
    n.hidden = !text;
    n.classList.toggle('error', !!isError);
    fill(n, text || '');
  }

  const since = (iso) => P.duration(Date.now() - S.skew - new Date(iso).getTime());
  const conf = (v) => (typeof v === 'number' ? el('span', { class: v < 0.5 ? 'low' : '' }, v.toFixed(2)) : '—');

  function reasonsOf(c) {
    const ds = c._decisions || c.decisions || [];
    for (let i = ds.length - 1; i >= 0; i--) if (ds[i].reasons && ds[i].reasons.length) return ds[i].reasons;
    if (c.brief && c.brief.reasons) return c.brief.reasons;
    if (c.queue && c.queue.reasons) return c.queue.reasons;
    return [];
  }

  function phaseOf(c) { return c._ended ? 'ended' : c.phase; }

  // --- rendering (batched per frame) ---

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function draw() {
    drawCalls(); drawQueue(); drawAgents(); drawDetail();
  }

  function drawCalls() {
    const calls = [...S.calls.values()].sort((a, b) => new Date(a.started_at) - new Date(b.started_at));
    fill($('calls-count'), calls.length + (calls.length === 1 ? ' call' : ' calls'));
    if (calls.length === 0) {
      fill($('calls'), el('tr', {}, el('td', { colspan: 9, class: 'empty' }, 'No live calls')));
      return;
    }
    fill($('calls'), calls.map((c) => {
      const s = c.signals || {};
      const pick = () => select(c.id);
      return el('tr', {
        class: 'pick', tabindex: 0, 'data-id': c.id, 'aria-selected': String(c.id === S.selected),
        onclick: pick, onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } },
      },
      el('td', {}, c.from || 'unknown', c.channel === 'webrtc' ? el('span', { class: 'muted' }, ' (browser)') : null),
      el('td', {}, el('span', { class: 'pill', 'data-v': phaseOf(c) }, phaseOf(c))),
      el('td', { class: 'num', 'data-since': c.started_at }, since(c.started_at)),
      el('td', {}, c.agent ? c.agent.name : '—', (c.listeners || []).length ? el('span', { class: 'muted' }, ' +' + c.listeners.length) : null),
      el('td', { class: 'num' }, c.signals ? conf(s.asr_confidence) : '—'),
      el('td', { class: 'num' }, c.signals ? conf(s.nlu_confidence) : '—'),
      el('td', { class: 'num' }, c.signals ? el('span', { class: s.frustration >= 0.5 ? 'low' : '' }, (s.frustration || 0).toFixed(2)) : '—'),
      el('td', { class: 'num' }, c.signals ? String(s.repeats || 0) : '—'),
      el('td', {}, el('div', { class: 'chips' }, reasonsOf(c).map((r) => el('span', { class: 'chip' }, P.reason(r))))));
    }));
  }

  function drawQueue() {
    if (S.queue.length === 0) {
      fill($('queue'), el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'Nobody waiting')));
      return;
    }
    fill($('queue'), S.queue.map((w) => el('tr', {},
      el('td', { class: 'num' }, String(w.position)),
      el('td', {}, w.from || w.call_id, w.priority ? el('span', { class: 'chip priority' }, ' priority') : null),
      el('td', { class: 'num', 'data-since': w.queued_at }, since(w.queued_at)),
      el('td', {}, w.skill || 'anyone', w.offered_to ? el('span', { class: 'muted' }, ' · offered to ' + agentName(w.offered_to)) : null))));
  }

  function agentName(id) { const a = S.agents.get(id); return a ? a.name : id; }

  function drawAgents() {
    const agents = [...S.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (agents.length === 0) {
      fill($('agents'), el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No agent signed in')));
      return;
    }
    fill($('agents'), agents.map((a) => el('tr', {},
      el('td', {}, a.name, (a.skills || []).length ? el('span', { class: 'muted' }, ' · ' + a.skills.join(', ')) : null),
      el('td', {}, el('span', { class: 'pill', 'data-v': a.state }, a.state === 'wrapup' ? 'wrap-up' : a.state)),
      el('td', { class: 'num', 'data-since': a.since }, since(a.since)),
      el('td', { class: 'num' }, String(a.handled || 0)))));
  }

  function drawDetail() {
    const c = S.calls.get(S.selected) || (S.ended && S.ended.id === S.selected ? S.ended : null);
    $('detail-empty').hidden = !!c;
    $('detail-body').hidden = !c;
    if (!c) { fill($('detail-phase')); $('detail-phase').dataset.v = ''; return; }
    const ph = $('detail-phase');
    ph.dataset.v = phaseOf(c);
    fill(ph, phaseOf(c));
    fill($('detail-from'), (c.from || 'Unknown caller') + (c.agent ? ' with ' + c.agent.name : '') + (c.node ? ' · server ' + c.node : ''));
    const s = c.signals;
    fill($('detail-signals'), s ? [
      ['Intent', s.intent || '—'], ['ASR confidence', conf(s.asr_confidence)], ['NLU confidence', conf(s.nlu_confidence)],
      ['Frustration', (s.frustration || 0).toFixed(2)], ['Repeats', String(s.repeats || 0)],
      ['Flags', [s.asked_for_human && 'asked for a person', s.out_of_scope && 'out of scope', s.human_only && 'human-only intent',
        s.provider_failure && 'provider failure'].filter(Boolean).join(', ') || 'none'],
    ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]) : [el('dt', {}, 'Signals'), el('dd', {}, 'no caller turn yet')]);
    P.renderTranscript($('detail-transcript'), c.transcript || []);
    const ds = c._decisions || [];
    fill($('detail-decisions'), ds.length === 0 ? el('li', { class: 'muted' }, 'No decision yet') : ds.slice().reverse().map((d) =>
      el('li', { class: d.transfer ? 'transfer' : '' },
        el('strong', {}, d.transfer ? 'Transfer' : 'Stay with the AI'),
        d.at ? ' · ' + P.clock(d.at) : '', ' · score ' + (d.score || 0).toFixed(2),
        d.priority ? ' · priority' : '',
        (d.reasons || []).length ? ' · ' + d.reasons.map(P.reason).join(', ') : '')));
    drawJoin(c);
  }

  function drawJoin(c) {
    const j = S.join;
    const here = j.callId === c.id && j.pc;
    const human = c.phase === 'agent' && !c._ended;
    for (const m of ['listen', 'whisper', 'barge']) {
      const b = $(m);
      b.setAttribute('aria-pressed', String(here && j.mode === m));
      // Whisper needs an agent to whisper to; every mode needs a live call.
      b.disabled = !!c._ended || (m === 'whisper' && !human);
    }
    $('leave').disabled = !here;
    const a = $('audio');
    a.dataset.v = here ? (j.audio === 'connected' ? j.mode : 'offered') : 'none';
    fill(a, here ? j.mode + ' · ' + j.audio : 'not joined');
  }

  function tick() {
    document.querySelectorAll('[data-since]').forEach((n) => { n.textContent = since(n.dataset.since); });
  }

  // --- model ---

  function upsertCall(lc, at) {
    const old = S.calls.get(lc.id);
    const c = Object.assign({}, lc);
    if (old) {
      if (!c.transcript || c.transcript.length < (old.transcript || []).length) c.transcript = old.transcript;
      if (!c.signals) c.signals = old.signals;
      c._decisions = old._decisions;
    }
    if (!c._decisions) c._decisions = (lc.decisions || []).map((d) => Object.assign({ at: '' }, d));
    c.transcript = (c.transcript || []).slice();
    S.calls.set(c.id, c);
    return c;
  }

  function onSnapshot(s) {
    S.skew = Date.now() - new Date(s.now).getTime();
    const old = S.calls;
    S.calls = new Map();
    for (const lc of s.calls || []) {
      const prev = old.get(lc.id);
      const c = upsertCall(lc);
      if (prev && prev._decisions.length > c._decisions.length) c._decisions = prev._decisions;
    }
    S.queue = s.queue || [];
    S.agents = new Map((s.agents || []).map((a) => [a.id, a]));
    render();
  }

  function onUpdate(u) {
    const id = u.call_id || (u.call && u.call.id) || '';
    switch (u.kind) {
      case 'call':
        if (u.call) upsertCall(u.call);
        break;
      case 'ended': {
        const c = S.calls.get(id) || (u.call ? upsertCall(u.call) : null);
        S.calls.delete(id);
        if (c && id === S.selected) { c._ended = true; if (u.call) c.phase = u.call.phase; S.ended = c; }
        if (S.join.callId === id) releaseJoin();
        break;
      }
      case 'turn': {
        const c = S.calls.get(id);
        if (!c || !u.turn) break;
        P.mergeTurn(c.transcript, u.turn);
        c.turns = c.transcript.length;
        if (u.turn.speaker === 'caller' && u.turn.signals) c.signals = u.turn.signals;
        break;
      }
      case 'decision': {
        const c = S.calls.get(id);
        if (c && u.decision) c._decisions.push(Object.assign({ at: u.at }, u.decision));
        break;
      }
      case 'queue':
        S.queue = u.queue || [];
        break;
      case 'agent':
        if (!u.agent) break;
        if (u.agent.state === 'offline') S.agents.delete(u.agent.id);
        else S.agents.set(u.agent.id, u.agent);
        break;
      default:
        return;
    }
    render();
  }

  function select(id) {
    S.selected = id;
    if (S.ended && S.ended.id !== id) S.ended = null;
    render();
  }

  // --- joining a call ---

  function releaseJoin() {
    const j = S.join;
    if (j.mic) j.mic.getTracks().forEach((t) => t.stop());
    if (j.pc) j.pc.close();
    S.join = { callId: '', mode: '', pc: null, mic: null, audio: 'none' };
    $('remote').srcObject = null;
    render();
  }

  async function leave() {
    const id = S.join.callId;
    if (!id) return;
    // Tell the server first: closing the audio first would look like a
    // dropped connection.
    try {
      await P.api('POST', '/api/supervisor/calls/' + encodeURIComponent(id) + '/leave');
    } catch (err) {
      if (err.status !== 404) setNotice('Leaving failed: ' + err.message, true);
    }
    if (S.join.callId === id) releaseJoin();
  }

  async function choose(mode) {
    const id = S.selected;
    if (!id) return;
    setNotice('');
    if (S.join.callId === id && S.join.pc) {
      if (S.join.mode === mode) return;
      try {
        await P.api('POST', '/api/supervisor/calls/' + encodeURIComponent(id) + '/mode', { mode });
        S.join.mode = mode;
      } catch (err) {
        setNotice('Could not switch to ' + mode + ': ' + err.message, true);
      }
      render();
      return;
    }
    if (S.join.callId) await leave();
    const j = { callId: id, mode, pc: null, mic: null, audio: 'connecting' };
    S.join = j;
    render();
    try {
      try {
        j.mic = await P.microphone();
      } catch (err) {
        if (mode !== 'listen') throw err;
        j.mic = null; // listening needs no microphone
      }
      const pc = new RTCPeerConnection();
      j.pc = pc;
      if (j.mic) pc.addTransceiver(j.mic.getAudioTracks()[0], { direction: 'sendrecv', streams: [j.mic] });
      else pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = (e) => {
        const r = $('remote');
        r.srcObject = e.streams[0] || new MediaStream([e.track]);
        r.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (S.join.pc !== pc) return;
        j.audio = pc.connectionState === 'connected' ? 'connected' : pc.connectionState;
        if (pc.connectionState === 'failed') setNotice('The audio connection to the call failed.', true);
        render();
      };
      await pc.setLocalDescription(await pc.createOffer());
      await P.gathered(pc, 3000);
      const r = await P.api('POST', '/api/supervisor/calls/' + encodeURIComponent(id) + '/join',
        { mode, type: 'offer', sdp: pc.localDescription.sdp });
      if (S.join !== j) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
    } catch (err) {
      console.error('join failed:', err);
      if (S.join === j) releaseJoin();
      setNotice(err.name === 'NotAllowedError' ? 'Microphone access was denied; whisper and barge need it.'
        : 'Could not join the call: ' + err.message, true);
    }
    render();
  }

  function linkState(st) {
    const b = $('link');
    if (st === 'live') { b.hidden = true; return; }
    b.hidden = false;
    if (st === 'reconnecting') { fill(b, 'Connection to parley lost; reconnecting…'); return; }
    fill(b, 'Disconnected from parley.');
    P.me().then((u) => { if (!u) location.reload(); }).catch(() => {});
  }

  function ready(user) {
    $('shell-top').hidden = false;
    fill($('who'), user.name);
    render();
    P.events({ onSnapshot, onUpdate, onState: linkState });
    setInterval(tick, 1000);
  }

  for (const m of ['listen', 'whisper', 'barge']) $(m).addEventListener('click', () => choose(m));
  $('leave').addEventListener('click', leave);
  $('logout').addEventListener('click', async () => { await leave(); await P.logout(); location.reload(); });

  // Read-only hook for tests and diagnostics.
  window.parleyConsole = {
    get pc() { return S.join.pc; },
    stats: () => P.stats(S.join.pc),
    state: () => ({
      calls: [...S.calls.keys()], selected: S.selected, joined: S.join.callId, mode: S.join.mode, audio: S.join.audio,
      agents: [...S.agents.values()].map((a) => a.name + ':' + a.state), queue: S.queue.length,
    }),
  };

  P.startSession({ roles: ['supervisor', 'admin'], form: $('login'), shell: $('shell'), ready });
})();
