// parley "Call us" page: one WebRTC call to the assistant. The server
// answers a complete offer (non-trickle ICE) at the API in data-api; the
// "dtmf" data channel carries keypad digits, the "control" channel carries
// hang-up both ways.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const api = document.body.dataset.api;
  const params = new URLSearchParams(location.search);
  // ?processing=off turns the browser's echo cancellation, noise
  // suppression and gain control off (tests that feed a known recording).
  const processing = params.get('processing') !== 'off';
  const DIGITS = '0123456789*#';

  const ui = {
    status: $('status'), call: $('call'), mute: $('mute'), hangup: $('hangup'),
    remote: $('remote'), digits: $('digits'),
    keys: Array.from(document.querySelectorAll('#keypad button')),
  };

  const call = { phase: 'idle', id: '', pc: null, mic: null, dtmf: null, control: null, typed: '' };

  function show(phase, text) {
    call.phase = phase;
    ui.status.dataset.state = phase;
    ui.status.textContent = text;
    const live = phase === 'connecting' || phase === 'connected';
    ui.call.disabled = live;
    ui.hangup.disabled = !live;
    ui.mute.disabled = phase !== 'connected';
    ui.keys.forEach((k) => { k.disabled = phase !== 'connected'; });
  }

  function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  function end(text) {
    if (call.phase === 'ended' || call.phase === 'idle' || call.phase === 'error') return;
    show('ended', text);
    release();
  }

  function fail(err) {
    console.error('call failed:', err);
    const msg = err && err.name === 'NotAllowedError'
      ? 'Microphone access was denied'
      : 'Call failed: ' + ((err && err.message) || err);
    show('error', msg);
    release();
  }

  function release() {
    const { pc, mic } = call;
    if (mic) mic.getTracks().forEach((t) => t.stop());
    // Let a goodbye on the control channel leave before closing.
    if (pc) setTimeout(() => pc.close(), 300);
    call.pc = null; call.mic = null; call.dtmf = null; call.control = null;
  }

  async function start() {
    call.typed = ''; ui.digits.textContent = '';
    ui.mute.setAttribute('aria-pressed', 'false'); ui.mute.textContent = 'Mute';
    show('connecting', 'Connecting…');
    try {
      call.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
        video: false,
      });
      const pc = new RTCPeerConnection();
      call.pc = pc;
      call.mic.getAudioTracks().forEach((t) => pc.addTrack(t, call.mic));
      call.dtmf = pc.createDataChannel('dtmf');
      call.control = pc.createDataChannel('control');
      // Events of an earlier call's channels must not end this one.
      call.control.onmessage = (e) => {
        if (call.pc !== pc) return;
        let m = null;
        try { m = JSON.parse(e.data); } catch (_) { return; }
        if (m && m.type === 'hangup') end('Call ended');
      };
      call.control.onclose = () => { if (call.pc === pc) end('Call ended'); };
      pc.ontrack = (e) => {
        ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]);
        ui.remote.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (call.pc !== pc) return;
        switch (pc.connectionState) {
          case 'connected': show('connected', 'Connected'); break;
          case 'disconnected': show('connecting', 'Reconnecting…'); break;
          case 'failed': end('Call dropped'); break;
          case 'closed': end('Call ended'); break;
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 3000);
      const resp = await fetch(api, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || 'the server answered ' + resp.status);
      if (call.pc !== pc) return; // hung up meanwhile
      call.id = body.call_id || '';
      await pc.setRemoteDescription({ type: 'answer', sdp: body.sdp });
    } catch (err) {
      fail(err);
    }
  }

  function hangup() {
    if (call.control && call.control.readyState === 'open') {
      call.control.send(JSON.stringify({ type: 'hangup' }));
    }
    end('Call ended');
  }

  function toggleMute() {
    if (!call.mic) return;
    const muted = ui.mute.getAttribute('aria-pressed') !== 'true';
    call.mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    ui.mute.setAttribute('aria-pressed', String(muted));
    ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  }

  function sendDigit(d) {
    if (call.phase !== 'connected' || !DIGITS.includes(d)) return false;
    if (!call.dtmf || call.dtmf.readyState !== 'open') return false;
    call.dtmf.send(d);
    call.typed = (call.typed + d).slice(-16);
    ui.digits.textContent = call.typed;
    return true;
  }

  ui.call.addEventListener('click', start);
  ui.hangup.addEventListener('click', hangup);
  ui.mute.addEventListener('click', toggleMute);
  ui.keys.forEach((k) => k.addEventListener('click', () => sendDigit(k.dataset.digit)));
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (DIGITS.includes(e.key) && sendDigit(e.key)) e.preventDefault();
  });

  // Read-only hook for tests and diagnostics: call state and the audio
  // the browser receives and sends, from getStats.
  window.parleyCall = {
    state: () => ({ phase: call.phase, callId: call.id, connection: call.pc ? call.pc.connectionState : 'none' }),
    stats: async () => {
      const out = { bytesReceived: 0, packetsReceived: 0, audioLevel: 0, totalAudioEnergy: 0, bytesSent: 0, packetsSent: 0, codec: '' };
      if (!call.pc) return out;
      const report = await call.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.bytesReceived = s.bytesReceived || 0;
          out.packetsReceived = s.packetsReceived || 0;
          out.audioLevel = s.audioLevel || 0;
          out.totalAudioEnergy = s.totalAudioEnergy || 0;
          const c = s.codecId && report.get(s.codecId);
          if (c) out.codec = c.mimeType;
        } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
          out.bytesSent = s.bytesSent || 0;
          out.packetsSent = s.packetsSent || 0;
        }
      });
      return out;
    },
  };
})();
