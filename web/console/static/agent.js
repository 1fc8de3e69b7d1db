// parley agent console: state, incoming offers with their brief, the call
// itself over WebRTC (browser microphone <-> caller, bridged by parley's
// mixer), live transcript, mute, hold, hang up and the wrap-up form.
(() => {
  'use strict';

  const P = window.parley;
  const { el, fill } = P;
  const $ = (id) => document.getElementById(id);

  const S = {
    user: null,
    agent: null, // escalation.Agent (own state)
    phase: 'idle', // idle | offer | call | wrapup
    offer: null, // the Offer on screen
    offerDeadline: 0, // client clock, ms
    brief: null, // the brief of the offer or call
    callId: '',
    call: null, // LiveCall while on it
    turns: [],
    pc: null,
    mic: null,
    muted: false,
    hold: false,
    startedAt: 0,
    wrapForce: false, // the wrap-up form may be saved without the server's word
    wrapTimer: 0,
    audio: 'none', // none | connecting | connected | lost
  };

  // --- rendering ---

  function setNotice(text, isError) {
    const n = $('notice');
    n.hidden = !text;
    n.classList.toggle('error', !!isError);
    fill(n, text || '');
  }

  function renderState() {
    const st = S.agent ? S.agent.state : 'offline';
    const pill = $('state');
    pill.dataset.v = st;
    fill(pill, st === 'wrapup' ? 'wrap-up' : st);
    $('go-available').setAttribute('aria-pressed', String(st === 'available'));
    $('go-away').setAttribute('aria-pressed', String(st === 'away'));
    const locked = S.phase === 'call' || S.phase === 'offer';
    $('go-available').disabled = locked || st === 'available';
    $('go-away').disabled = locked || st === 'away';
    fill($('idle-text'), st === 'available'
      ? 'You are available. The next call for you appears here with its brief.'
      : 'You are ' + (st === 'offline' ? 'not connected' : st) + '. Set yourself available to take calls.');
  }

  function renderBrief() {
    const b = S.brief;
    if (!b) return;
    fill($('brief-reasons'),
      (b.reasons || []).map((r) => el('span', { class: 'chip' }, P.reason(r))),
      b.priority ? el('span', { class: 'chip priority' }, 'Priority') : null);
    fill($('brief-summary'), b.summary || 'No summary.');
    const facts = [
      ['Number', b.from || 'unknown'],
      ['Channel', b.channel === 'webrtc' ? 'Browser' : 'Phone'],
      ['Called', b.to || ''],
      ['Call started', P.clock(b.started_at)],
    ];
    // Several nodes: the call's audio is on this server; the browser's
    // WebRTC connects there when the agent accepts.
    if (b.node) facts.push(['Server', b.node]);
    fill($('brief-facts'), facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const intent = [['Intent', b.intent || 'not recognized']];
    if (b.skill) intent.push(['Skill', b.skill]);
    for (const [k, v] of Object.entries(b.slots || {})) intent.push([k.replace(/_/g, ' '), v]);
    fill($('brief-intent'), intent.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const hist = b.history || [];
    fill($('brief-history'), hist.length === 0
      ? el('li', { class: 'muted' }, 'First call from this number')
      : hist.slice(0, 10).map((c) => el('li', {}, P.day(c.started_at), ' — ', c.outcome || 'open',
        c.turns && c.turns.length ? ' — "' + firstCallerWords(c.turns) + '"' : '')));
  }

  function firstCallerWords(turns) {
    const t = turns.find((x) => x.speaker === 'caller' && x.text);
    return t ? t.text.slice(0, 80) : '';
  }

  function render() {
    const p = S.phase;
    $('idle').hidden = p !== 'idle';
    $('work').hidden = p === 'idle';
    $('offer').hidden = p !== 'offer';
    $('call').hidden = p !== 'call';
    $('wrapup').hidden = p !== 'wrapup';
    if (p === 'offer' && S.offer) {
      fill($('offer-from'), S.offer.from || 'Unknown caller');
      $('accept').disabled = false; $('decline').disabled = false;
    }
    if (p === 'call') {
      fill($('call-from'), (S.brief && S.brief.from) || (S.call && S.call.from) || 'Caller');
      const st = $('call-status');
      const label = S.hold ? 'on hold' : S.audio;
      st.dataset.v = S.audio === 'connected' && !S.hold ? 'connected' : 'offered';
      fill(st, label + (S.muted ? ' · muted' : ''));
      $('mute').setAttribute('aria-pressed', String(S.muted));
      fill($('mute'), S.muted ? 'Unmute' : 'Mute');
      $('hold').setAttribute('aria-pressed', String(S.hold));
      fill($('hold'), S.hold ? 'Resume' : 'Hold');
      const others = ((S.call && S.call.listeners) || []).map((l) => l.name + ' (' + l.mode + ')');
      fill($('call-with'), others.length ? 'Also on the call: ' + others.join(', ') : '');
    }
    if (p === 'wrapup') {
      // The server moves the agent to wrap-up once the call is really
      // over; saving before that would race it (fallback after 10 s).
      const ready = (S.agent && S.agent.state === 'wrapup') || S.wrapForce;
      const submit = $('wrapup-form').querySelector('button[type=submit]');
      submit.disabled = !ready;
      fill($('wrapup-call'), ready ? 'Call with ' + ((S.brief && S.brief.from) || 'the caller') + ' has ended.' : 'Ending the call…');
    }
    renderBrief();
    P.renderTranscript($('transcript'), S.turns);
    renderState();
  }

  function tick() {
    if (S.phase === 'offer' && S.offer) {
      const total = Math.max(1, new Date(S.offer.expires_at) - new Date(S.offer.offered_at));
      const left = Math.max(0, S.offerDeadline - Date.now());
      $('offer-bar').style.width = (100 * left / total).toFixed(1) + '%';
      fill($('offer-left'), left > 0 ? Math.ceil(left / 1000) + ' s to answer' : 'time is up');
    }
    if (S.phase === 'call' && S.startedAt) fill($('call-time'), P.duration(Date.now() - S.startedAt));
  }

  // --- state changes ---

  function showOffer(offer, serverNow) {
    S.offer = offer;
    S.brief = offer;
    // Count down from the server's view of the remaining time (clocks differ).
    const now = serverNow ? new Date(serverNow) : new Date(offer.offered_at);
    S.offerDeadline = Date.now() + Math.max(0, new Date(offer.expires_at) - now);
    S.turns = (offer.transcript || []).slice();
    S.phase = 'offer';
    setNotice('');
    render();
    tick();
  }

  function showCall(call) {
    S.call = call;
    S.callId = call.id;
    if (call.brief) S.brief = call.brief;
    if (call.transcript) S.turns = call.transcript.slice();
    const t = call.transfer && call.transfer.connected_at;
    if (t && !t.startsWith('0001')) S.startedAt = new Date(t).getTime();
  }

  function release() {
    const { pc, mic } = S;
    if (mic) mic.getTracks().forEach((t) => t.stop());
    if (pc) pc.close();
    S.pc = null; S.mic = null; S.audio = 'none';
    $('remote').srcObject = null;
  }

  function toWrapUp() {
    release();
    S.phase = 'wrapup';
    S.wrapForce = false;
    clearTimeout(S.wrapTimer);
    S.wrapTimer = setTimeout(() => { S.wrapForce = true; render(); }, 10000);
    S.offer = null;
    render();
    $('disposition').focus();
  }

  function toIdle() {
    release();
    clearTimeout(S.wrapTimer);
    S.phase = 'idle';
    S.offer = null; S.call = null; S.callId = ''; S.brief = null; S.turns = [];
    S.muted = false; S.hold = false; S.startedAt = 0;
    render();
  }

  function onSnapshot(s) {
    S.agent = s.agent;
    if (s.call) {
      showCall(s.call);
      if (S.agent && S.agent.state === 'wrapup') toWrapUp();
      else {
        S.phase = 'call';
        if (!S.pc) S.audio = 'lost'; // reloaded mid-call: the audio went with the old page
      }
    } else if (s.offer) {
      showOffer(s.offer, s.now);
    } else if (S.agent && S.agent.state === 'wrapup' && S.agent.call_id) {
      S.callId = S.agent.call_id;
      toWrapUp();
    } else if (S.phase !== 'wrapup') {
      toIdle();
    }
    render();
  }

  function mine(id) {
    return id && (id === S.callId || (S.offer && id === S.offer.call_id));
  }

  function onUpdate(u) {
    const id = u.call_id || (u.call && u.call.id) || (u.turn && u.turn.call_id) || '';
    switch (u.kind) {
      case 'agent':
        S.agent = u.agent;
        if (S.agent.state === 'wrapup' && S.phase === 'call') toWrapUp();
        else if (['available', 'away', 'offline'].includes(S.agent.state) && (S.phase === 'wrapup' || S.phase === 'call')) {
          // Off the call without a wrap-up: the audio was lost and the
          // caller went back to the queue (a notice says so).
          toIdle();
        }
        else if (S.phase === 'wrapup') render();
        renderState();
        break;
      case 'offer':
        if (S.phase !== 'call') showOffer(u.offer, u.at);
        break;
      case 'withdrawn':
        if (S.phase === 'offer' && S.offer && S.offer.call_id === id) {
          toIdle();
          const why = { declined: 'you declined it', missed: 'nobody answered in time', cancelled: 'the caller left', signed_out: 'you signed out' }[u.text] || u.text;
          setNotice('The offered call is gone: ' + why + '.');
        }
        break;
      case 'turn':
        if (mine(id)) { P.mergeTurn(S.turns, u.turn); P.renderTranscript($('transcript'), S.turns); }
        break;
      case 'call':
        if (id === S.callId && u.call) {
          const turns = S.turns;
          showCall(u.call);
          if (!u.call.transcript || u.call.transcript.length < turns.length) S.turns = turns;
          render();
        }
        break;
      case 'ended':
        if (id === S.callId && S.phase === 'call') {
          setNotice('The caller hung up.');
          toWrapUp();
        }
        break;
      case 'notice':
        if (mine(id) || !id) setNotice(u.text);
        break;
    }
  }

  // --- actions ---

  async function setState(state) {
    try {
      await P.api('POST', '/api/agent/state', { state });
    } catch (err) {
      setNotice('Could not change your state: ' + err.message, true);
    }
  }

  async function accept() {
    const offer = S.offer;
    if (!offer) return;
    $('accept').disabled = true; $('decline').disabled = true;
    S.callId = offer.call_id;
    S.brief = offer;
    S.phase = 'call';
    S.audio = 'connecting';
    S.muted = false; S.hold = false;
    render();
    try {
      S.mic = await P.microphone();
      const pc = new RTCPeerConnection();
      S.pc = pc;
      const track = S.mic.getAudioTracks()[0];
      pc.addTransceiver(track, { direction: 'sendrecv', streams: [S.mic] });
      pc.ontrack = (e) => {
        const r = $('remote');
        r.srcObject = e.streams[0] || new MediaStream([e.track]);
        r.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (S.pc !== pc) return;
        const st = pc.connectionState;
        if (st === 'connected') { S.audio = 'connected'; if (!S.startedAt) S.startedAt = Date.now(); }
        else if (st === 'disconnected') S.audio = 'reconnecting';
        else if (st === 'failed') { S.audio = 'lost'; setNotice('The audio connection failed.', true); }
        render();
      };
      await pc.setLocalDescription(await pc.createOffer());
      await P.gathered(pc, 3000);
      const r = await P.api('POST', '/api/agent/offers/' + encodeURIComponent(offer.call_id) + '/accept',
        { type: 'offer', sdp: pc.localDescription.sdp });
      if (S.pc !== pc) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
      S.offer = null;
    } catch (err) {
      console.error('accept failed:', err);
      release();
      const gone = err.status === 409 || err.status === 404;
      if (gone) { toIdle(); setNotice('Could not take the call: ' + err.message, true); return; }
      S.phase = 'offer';
      S.callId = '';
      setNotice(err.name === 'NotAllowedError' ? 'Microphone access was denied; allow it to take calls.'
        : 'Could not take the call: ' + err.message, true);
      render();
    }
  }

  async function decline() {
    const offer = S.offer;
    if (!offer) return;
    $('accept').disabled = true; $('decline').disabled = true;
    try {
      await P.api('POST', '/api/agent/offers/' + encodeURIComponent(offer.call_id) + '/decline');
    } catch (err) {
      if (err.status !== 409) setNotice('Could not decline: ' + err.message, true);
    }
    toIdle();
  }

  async function hangup() {
    const id = S.callId;
    $('hangup').disabled = true;
    try {
      await P.api('POST', '/api/agent/calls/' + encodeURIComponent(id) + '/hangup');
    } catch (err) {
      if (err.status !== 404) setNotice('Hang-up failed: ' + err.message, true);
    } finally {
      $('hangup').disabled = false;
    }
    if (S.phase === 'call') toWrapUp();
  }

  async function toggleMute() {
    const muted = !S.muted;
    // The microphone stops at once here; the server mutes the bridge too.
    if (S.mic) S.mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    S.muted = muted;
    render();
    try {
      await P.api('POST', '/api/agent/calls/' + encodeURIComponent(S.callId) + '/mute', { muted });
    } catch (err) {
      setNotice('Mute failed on the server: ' + err.message, true);
    }
  }

  async function toggleHold() {
    const hold = !S.hold;
    try {
      await P.api('POST', '/api/agent/calls/' + encodeURIComponent(S.callId) + '/hold', { hold });
      S.hold = hold;
      if (S.mic) S.mic.getAudioTracks().forEach((t) => { t.enabled = !hold && !S.muted; });
    } catch (err) {
      setNotice('Hold failed: ' + err.message, true);
    }
    render();
  }

  async function wrapUp(e) {
    e.preventDefault();
    const form = $('wrapup-form');
    const error = form.querySelector('.error');
    fill(error);
    const fd = new FormData(form);
    try {
      await P.api('POST', '/api/agent/calls/' + encodeURIComponent(S.callId) + '/wrapup',
        { disposition: String(fd.get('disposition')), notes: String(fd.get('notes') || '') });
      form.reset();
      setNotice('');
      toIdle();
    } catch (err) {
      fill(error, err.message);
    }
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
    S.user = user;
    $('shell-top').hidden = false;
    fill($('who'), user.name);
    render();
    P.events({ onSnapshot, onUpdate, onState: linkState });
    setInterval(tick, 250);
  }

  $('go-available').addEventListener('click', () => setState('available'));
  $('go-away').addEventListener('click', () => setState('away'));
  $('accept').addEventListener('click', accept);
  $('decline').addEventListener('click', decline);
  $('hangup').addEventListener('click', hangup);
  $('mute').addEventListener('click', toggleMute);
  $('hold').addEventListener('click', toggleHold);
  $('wrapup-form').addEventListener('submit', wrapUp);
  $('logout').addEventListener('click', async () => { release(); await P.logout(); location.reload(); });

  // Read-only hook for tests and diagnostics.
  window.parleyConsole = {
    get pc() { return S.pc; },
    stats: () => P.stats(S.pc),
    state: () => ({
      phase: S.phase, agentState: S.agent ? S.agent.state : 'offline', callId: S.callId,
      offerCallId: S.offer ? S.offer.call_id : '', audio: S.audio, muted: S.muted, hold: S.hold,
      transcript: S.turns.map((t) => t.speaker + ': ' + (t.text || '')),
    }),
  };

  P.startSession({ roles: ['agent'], form: $('login'), shell: $('shell'), ready });
})();
