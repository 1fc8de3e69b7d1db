// parley consoles: what the agent and supervisor pages share — the session
// (login, CSRF token), JSON calls, the event stream, WebRTC helpers and a
// small DOM builder that only ever sets text (never HTML).
(() => {
  'use strict';

  const prefix = document.body.dataset.prefix || '';
  const session = { csrf: '', user: null };

  // el('div', {class: 'x', onclick: f}, 'text', child, ...) builds an element.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fill(node, ...children) {
    node.replaceChildren();
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // api('POST', '/api/agent/state', {state: 'available'}) -> parsed JSON (or null).
  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: 'same-origin' };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = session.csrf;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(prefix + path, opts);
    let data = null;
    if (resp.status !== 204) data = await resp.json().catch(() => null);
    if (!resp.ok) throw new APIError(resp.status, (data && data.error) || ('the server answered ' + resp.status));
    return data;
  }

  // me() -> the logged-in user, or null.
  async function me() {
    try {
      const r = await api('GET', '/api/me');
      session.csrf = r.csrf; session.user = r.user;
      return r.user;
    } catch (err) {
      if (err.status === 401) return null;
      throw err;
    }
  }

  async function login(name, password) {
    const r = await api('POST', '/api/login', { name, password });
    session.csrf = r.csrf; session.user = r.user;
    return r.user;
  }

  async function logout() {
    try { await api('POST', '/api/logout'); } catch (_) { /* gone anyway */ }
    session.csrf = ''; session.user = null;
  }

  // startSession wires the login form and calls ready(user) once someone
  // with an allowed role is logged in.
  async function startSession({ roles, form, ready, shell }) {
    const error = form.querySelector('.error');
    const show = (user) => {
      if (user && !roles.includes(user.role)) {
        fill(error, 'This console is for the role ' + roles.join(' or ') + '; you are logged in as ' + user.role + '.');
        form.hidden = false; shell.hidden = true;
        return;
      }
      form.hidden = !!user; shell.hidden = !user;
      if (user) ready(user);
    };
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      fill(error);
      const fd = new FormData(form);
      try {
        show(await login(String(fd.get('name') || ''), String(fd.get('password') || '')));
        form.reset();
      } catch (err) {
        fill(error, err.message);
      }
    });
    try {
      show(await me());
    } catch (err) {
      fill(error, err.message); form.hidden = false; shell.hidden = true;
    }
  }

  // events follows the console's event stream: onSnapshot(data) first and
  // after every reconnection, onUpdate(update) for each change,
  // onState('live' | 'reconnecting' | 'closed').
  function events({ onSnapshot, onUpdate, onState }) {
    const es = new EventSource(prefix + '/api/console/events');
    es.addEventListener('snapshot', (e) => { onState('live'); onSnapshot(JSON.parse(e.data)); });
    es.onmessage = (e) => { onUpdate(JSON.parse(e.data)); };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) onState('closed');
      else onState('reconnecting');
    };
    return es;
  }

  // gathered resolves when ICE gathering is complete (non-trickle offers).
  function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  // microphone asks for the mic; ?raw=1 turns the browser's echo
  // cancellation, noise suppression and gain control off (tests that feed
  // a known recording).
  const raw = new URLSearchParams(location.search).get('raw') === '1';
  function microphone() {
    const processing = !raw;
    return navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
      video: false,
    });
  }

  // stats sums what a peer connection receives and sends.
  async function stats(pc) {
    const out = { connection: pc ? pc.connectionState : 'none', packetsReceived: 0, bytesReceived: 0, totalAudioEnergy: 0,
      audioLevel: 0, packetsSent: 0, bytesSent: 0, codec: '' };
    if (!pc) return out;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.packetsReceived += s.packetsReceived || 0;
        out.bytesReceived += s.bytesReceived || 0;
        out.totalAudioEnergy += s.totalAudioEnergy || 0;
        out.audioLevel = Math.max(out.audioLevel, s.audioLevel || 0);
        const c = s.codecId && report.get(s.codecId);
        if (c) out.codec = c.mimeType;
      } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.packetsSent += s.packetsSent || 0;
        out.bytesSent += s.bytesSent || 0;
      }
    });
    return out;
  }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const two = (n) => String(n).padStart(2, '0');
    return h > 0 ? h + ':' + two(m % 60) + ':' + two(s % 60) : m + ':' + two(s % 60);
  }

  // A Go zero time ("0001-01-01...") means unknown.
  const known = (d) => !isNaN(d) && d.getUTCFullYear() > 1;

  function clock(iso) {
    const d = new Date(iso);
    return !known(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function day(iso) {
    const d = new Date(iso);
    return !known(d) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  const reasonText = {
    asked_for_human: 'Asked for a person', human_only_intent: 'Needs a person', provider_failure: 'Speech or AI failure',
    low_confidence: 'Not understood', out_of_scope: 'Out of scope', going_in_circles: 'Going in circles',
    frustration: 'Frustrated caller', ai_time: 'Long with the AI',
  };
  function reason(r) { return reasonText[r] || String(r).replace(/_/g, ' '); }

  // transcriptNodes renders turns as chat bubbles.
  function turnNode(t) {
    const who = { caller: 'Caller', ai: 'Assistant', agent: 'Agent' }[t.speaker] || t.speaker;
    const text = t.dtmf ? '[keys ' + t.dtmf + ']' : t.text;
    return el('div', { class: 'turn ' + t.speaker, 'data-seq': t.seq },
      el('span', { class: 'who' }, who, clock(t.start) ? ' · ' + clock(t.start) : ''),
      text || '…',
      t.interrupted ? el('span', { class: 'cut' }, ' (interrupted)') : null);
  }

  // mergeTurn adds or replaces a turn (by seq) in a list kept in order.
  function mergeTurn(list, t) {
    const i = list.findIndex((x) => x.seq === t.seq);
    if (i >= 0) list[i] = t; else list.push(t);
    list.sort((a, b) => a.seq - b.seq);
    return list;
  }

  function renderTranscript(node, turns) {
    const atEnd = node.scrollHeight - node.scrollTop - node.clientHeight < 40;
    if (!turns || turns.length === 0) fill(node, el('div', { class: 'empty' }, 'Nothing said yet'));
    else fill(node, turns.map(turnNode));
    if (atEnd) node.scrollTop = node.scrollHeight;
  }

  window.parley = {
    prefix, session, el, fill, api, me, login, logout, startSession, events, gathered, microphone, stats,
    duration, clock, day, reason, mergeTurn, renderTranscript,
  };
})();
