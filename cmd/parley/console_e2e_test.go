package main

// End to end through the consoles: a phone call (Twilio-protocol
// simulator) asks for a person; an agent logged into /agent in headless
// Chromium sees the brief, accepts, and talks with the caller over WebRTC
// bridged by parley's mixer; a supervisor in a second Chromium listens in,
// whispers (heard by the agent, not by the caller) and barges in (heard by
// the caller); the agent hangs up and wraps up.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/telephony/twilio"
	"github.com/parley-ai/parley/web/auth"
)

const (
	consolePassword = "console e2e password"
	agentSays       = "Hello, this is the card team. How can I help you today?"
	whisperHz       = 1200.0
	// toneHeard is the 1.2 kHz prominence (toneProminence) from which the
	// supervisor's tone counts as heard on the caller's line. The agent's
	// speech alone reaches about 50 in its loudest half second (a voiced
	// harmonic near 1.2 kHz); the barging supervisor's tone is the
	// positive control for the same threshold.
	toneHeard = 100.0
)

// consoleArtifacts is where screenshots and recordings go: $PARLEY_ARTIFACTS
// or a temporary directory.
func consoleArtifacts(t *testing.T) string {
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleUser stores a console account directly in the server's user store.
func consoleUser(t *testing.T, name string, role parley.Role) parley.User {
	t.Helper()
	users, ok := testServer.srv.base.(parley.UserStore)
	if !ok {
		t.Fatalf("store %T keeps no users", testServer.srv.base)
	}
	id, err := auth.NewUserID()
	if err != nil {
		t.Fatal(err)
	}
	u := parley.User{ID: id, Name: fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e6), Role: role, CreatedAt: time.Now()}
	// Cheap hashing parameters: the hash carries them, login verifies with them.
	u.PasswordHash, err = auth.HashPasswordWith(consolePassword, auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = users.DeleteUser(context.Background(), u.Name) })
	return u
}

// consoleBrowser starts a headless Chromium of its own whose fake
// microphone plays wav (looped).
func consoleBrowser(t *testing.T, wav string) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium not found (Debian packages chromium and chromium-driver): run scripts/setup.sh test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page wraps one browser tab with failing helpers.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func (p page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		seen, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		p.t.Fatalf("%s: %s: %v\npage shows:\n%s", p.name, what, err, seen)
	}
}

// wait polls a JavaScript condition; show is evaluated for the failure message.
func (p page) wait(what, cond, show string, timeout time.Duration) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		seen, _ := chromedp.Run(p.ctx, chromedp.Evaluate[any](show, chromedp.EvalAwaitPromise))
		p.t.Fatalf("%s: %s: %v\npage shows: %v", p.name, what, err, seen)
	}
}

func (p page) eval(expr string) any {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

func (p page) stats() pageAudio {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[pageAudio](`window.parleyConsole.stats()`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: stats: %v", p.name, err)
	}
	return s
}

func (p page) screenshot(dir, file string) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot of %s: %s", p.name, path)
}

func (p page) login(url string, u parley.User) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#login")))
	p.do("log in as "+u.Name,
		chromedp.SendKeys(chromedp.CSS("#name"), u.Name),
		chromedp.SendKeys(chromedp.CSS("#password"), consolePassword),
		chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#shell-top")))
}

// pageAudio is what window.parleyConsole.stats() reports.
type pageAudio struct {
	Connection       string  `json:"connection"`
	PacketsReceived  float64 `json:"packetsReceived"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
	PacketsSent      float64 `json:"packetsSent"`
	Codec            string  `json:"codec"`
}

// toneProbe measures, in the page, how far the strongest bin near freq in
// the call's received audio stands above the spectrum around it (dB), the
// best of several looks over ms milliseconds. A steady tone stands 30 dB
// and more above its neighbourhood; speech or silence does not.
const toneProbe = `(async (freq, ms) => {
  const pc = window.parleyConsole.pc;
  const rx = pc && pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
  if (!rx) return -1;
  const ac = window.__probeAC || (window.__probeAC = new AudioContext());
  await ac.resume();
  const src = ac.createMediaStreamSource(new MediaStream([rx.track]));
  const an = ac.createAnalyser();
  an.fftSize = 8192; an.smoothingTimeConstant = 0;
  src.connect(an);
  const buf = new Float32Array(an.frequencyBinCount);
  const hz = ac.sampleRate / an.fftSize;
  const at = Math.round(freq / hz);
  const far = Math.round(80 / hz), near = Math.round(40 / hz);
  let best = -1;
  for (let t = 0; t < ms; t += 100) {
    await new Promise((r) => setTimeout(r, 100));
    an.getFloatFrequencyData(buf);
    const peak = Math.max(buf[at - 1], buf[at], buf[at + 1]);
    let sum = 0, n = 0;
    for (let d = near; d <= far; d++) { sum += buf[at - d] + buf[at + d]; n += 2; }
    if (isFinite(peak) && isFinite(sum)) best = Math.max(best, peak - sum / n);
  }
  src.disconnect();
  return best;
})`

// heardSince is what the caller heard from t on (8 kHz).
func heardSince(call *twilio.SimCall, t time.Time) []int16 {
	_, heard := call.Recording()
	i := int(t.Sub(call.Started()) * twilio.MulawSampleRate / time.Second)
	if i < 0 {
		i = 0
	}
	if i >= len(heard) {
		return nil
	}
	return heard[i:]
}

// goertzel is the power of pcm at freq.
func goertzel(pcm []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x) + c*s1 - s2
		s2, s1 = s1, s
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / float64(len(pcm)*len(pcm))
}

// toneProminence is the largest ratio, over 0.5 s windows of pcm, of the
// power at freq to the mean power 60-120 Hz either side: a steady tone
// gives hundreds and more, speech and silence a few.
func toneProminence(pcm []int16, freq float64) float64 {
	const win = twilio.MulawSampleRate / 2
	best := 0.0
	for i := 0; i+win <= len(pcm); i += win / 2 {
		w := pcm[i : i+win]
		var side float64
		for _, d := range []float64{60, 80, 100, 120} {
			side += goertzel(w, freq-d, twilio.MulawSampleRate) + goertzel(w, freq+d, twilio.MulawSampleRate)
		}
		side /= 8
		p := goertzel(w, freq, twilio.MulawSampleRate)
		if p < 1 { // below one unit of power: silence
			continue
		}
		best = math.Max(best, p/(side+1e-9))
	}
	return best
}

func rmsOf(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return math.Sqrt(e / float64(len(pcm)))
}

// loudestWindow returns the n-sample window of pcm with the most energy.
func loudestWindow(pcm []int16, n int) []int16 {
	best, at := -1.0, 0
	for i := 0; i+n <= len(pcm); i += n / 4 {
		if e := rmsOf(pcm[i : i+n]); e > best {
			best, at = e, i
		}
	}
	return pcm[at : at+n]
}

// correlation is the best normalized cross-correlation of ref anywhere
// in got (steps of 2 samples, then refined).
func correlation(ref, got []int16) float64 {
	if len(got) < len(ref) {
		return 0
	}
	var rr float64
	for _, x := range ref {
		rr += float64(x) * float64(x)
	}
	at := func(off int) float64 {
		var rg, gg float64
		for i, x := range ref {
			g := float64(got[off+i])
			rg += float64(x) * g
			gg += g * g
		}
		if gg == 0 || rr == 0 {
			return 0
		}
		return rg / math.Sqrt(rr*gg)
	}
	best, bestAt := -1.0, 0
	for off := 0; off+len(ref) <= len(got); off += 2 {
		if c := at(off); c > best {
			best, bestAt = c, off
		}
	}
	if bestAt+1+len(ref) <= len(got) {
		best = math.Max(best, at(bestAt+1))
	}
	return best
}

// outsider is a second agent's console over plain HTTP: logged in and
// signed in (its event stream is open) but away, so no call is offered
// to it. It keeps everything its stream carried.
type outsider struct{ *consoleClient }

func newOutsider(t *testing.T, u parley.User) *outsider {
	t.Helper()
	return &outsider{loginConsole(t, testServer.url, u)}
}

// post sends a state-changing request with the session's CSRF token.
func (o *outsider) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	code, b := o.postRaw(t, path, body)
	return code, string(b)
}

// stream is what the outsider's event stream carried so far and how many
// events it held.
func (o *outsider) stream() (string, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.raw.String(), len(o.events)
}

func TestConsoleWarmTransferInBrowsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	art := consoleArtifacts(t)
	dir := t.TempDir()
	begin := time.Now()

	// The agent's microphone says a sentence; the supervisor's is a
	// steady 1.2 kHz tone nobody could mistake for speech.
	agentPCM, err := testServer.tts.SynthesizeAll(ctx, agentSays)
	if err != nil {
		t.Fatal(err)
	}
	// A pause after the sentence (the microphone loops) ends the agent's
	// utterance, so that it is transcribed.
	agentPCM = append(agentPCM, make([]int16, testServer.tts.SampleRate()*3/2)...)
	agentWAV := filepath.Join(dir, "agent.wav")
	if err := media.WriteWAVFile(agentWAV, agentPCM, testServer.tts.SampleRate()); err != nil {
		t.Fatal(err)
	}
	agent8k := media.Resample(agentPCM, testServer.tts.SampleRate(), twilio.MulawSampleRate)
	tone := make([]int16, 16000*10)
	for i := range tone {
		tone[i] = int16(9000 * math.Sin(2*math.Pi*whisperHz*float64(i)/16000))
	}
	toneWAV := filepath.Join(dir, "supervisor.wav")
	if err := media.WriteWAVFile(toneWAV, tone, 16000); err != nil {
		t.Fatal(err)
	}

	agentUser := consoleUser(t, "e2e-agent", parley.RoleAgent)
	supUser := consoleUser(t, "e2e-supervisor", parley.RoleSupervisor)
	other := newOutsider(t, consoleUser(t, "e2e-other-agent", parley.RoleAgent))

	agent := page{t: t, ctx: consoleBrowser(t, agentWAV), name: "agent page"}
	sup := page{t: t, ctx: consoleBrowser(t, toneWAV), name: "supervisor page"}
	agent.login(testServer.url+"/agent?raw=1", agentUser)
	agent.wait("agent signed in", `window.parleyConsole.state().agentState === 'away'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	agent.do("go available", chromedp.Click(chromedp.CSS("#go-available")))
	agent.wait("agent available", `window.parleyConsole.state().agentState === 'available'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	sup.login(testServer.url+"/supervisor?raw=1", supUser)
	sup.wait("agent listed for the supervisor", fmt.Sprintf(`document.getElementById('agents').textContent.includes(%q)`, agentUser.Name),
		`document.getElementById('agents').innerText`, 10*time.Second)

	// The caller asks for a person.
	d := dialer()
	d.From = "+14155550166"
	w := &audioWatch{}
	d.OnAudio = w.onAudio
	call, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup()
	defer func() {
		caller, heard := call.Recording()
		writeStereo(filepath.Join(art, "console-e2e-caller.wav"), caller, heard, twilio.MulawSampleRate)
		t.Logf("caller's recording (left: said, right: heard): %s", filepath.Join(art, "console-e2e-caller.wav"))
	}()
	if _, _, ok := w.waitReply(ctx, call.Done(), call.Started(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no greeting")
	}
	if err := call.SendAudio(speak(t, "I want to speak to an agent")); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()

	agent.wait("offer with the brief and the caller's words",
		`window.parleyConsole.state().phase === 'offer' && document.getElementById('transcript').textContent.includes('agent')
		 && document.getElementById('brief-reasons').textContent.includes('Asked for a person')
		 && document.getElementById('brief-facts').textContent.includes('+14155550166')`,
		`document.getElementById('work').innerText`, 30*time.Second)
	t.Logf("offer shown %v after the caller asked", time.Since(asked).Round(time.Millisecond))
	sup.wait("call listed for the supervisor", fmt.Sprintf(`!!document.querySelector('#calls tr[data-id=%q]')`, call.CallSID),
		`document.getElementById('calls').innerText`, 10*time.Second)
	agent.screenshot(art, "console-e2e-agent-offer.png")

	// Nobody else gets at the call: not without a session, not as another
	// agent (who cannot take it or hang it up, and never gets an answer SDP).
	_, probeOffer, err := func() (*mwebrtc.Peer, string, error) {
		p, sdp, err := mwebrtc.NewOffer(mwebrtc.Config{LoopbackOnly: true})
		if p != nil {
			p.Close()
		}
		return p, sdp, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	offerBody, _ := json.Marshal(map[string]string{"sdp": probeOffer})
	resp, err := http.Post(testServer.url+"/api/agent/offers/"+call.CallSID+"/accept", "application/json", strings.NewReader(string(offerBody)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("accept without a session: %d, want 401", resp.StatusCode)
	}
	if code, body := other.post(t, "/api/agent/offers/"+call.CallSID+"/accept", string(offerBody)); code != http.StatusConflict || strings.Contains(body, "sdp") {
		t.Fatalf("another agent accepting the call: %d %s, want 409 without an answer", code, body)
	}
	if code, body := other.post(t, "/api/supervisor/calls/"+call.CallSID+"/join", `{"mode":"listen","sdp":"v=0"}`); code != http.StatusForbidden {
		t.Fatalf("an agent joining as a supervisor: %d %s, want 403", code, body)
	}

	// Accept: the audio is bridged.
	agent.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	accepted := time.Now()
	agent.wait("agent audio connected", `window.parleyConsole.state().audio === 'connected'`, `JSON.stringify(window.parleyConsole.state())`, 20*time.Second)
	connected := time.Now()
	t.Logf("agent audio connected %v after Accept", connected.Sub(accepted).Round(time.Millisecond))

	// The caller hears the agent once the AI has said it is connecting
	// them: wait for the agent's recording to show up in what the caller
	// hears, then let a whole sentence (it loops) play.
	ref := loudestWindow(agent8k, twilio.MulawSampleRate/2)
	corr, heardAt := 0.0, time.Time{}
	for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if corr = correlation(ref, heardSince(call, connected)); corr >= 0.8 {
			heardAt = time.Now()
			break
		}
	}
	time.Sleep(time.Duration(len(agent8k)) * time.Second / twilio.MulawSampleRate)
	heard := heardSince(call, connected)
	tr, err := testServer.srv.eng.stt.TranscribePCM(ctx, heard, twilio.MulawSampleRate, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	words := 0
	for _, k := range []string{"hello", "team", "help", "today"} { // not in the AI's hand-over message
		if strings.Contains(tr.Text, k) {
			words++
		}
	}
	t.Logf("caller heard the agent (%v after the agent's audio connected): correlation %.3f with the agent's recording; recognized %q",
		heardAt.Sub(connected).Round(100*time.Millisecond), corr, tr.Text)
	if corr < 0.8 && words < 2 {
		t.Fatalf("the agent's speech did not reach the caller: correlation %.3f, recognized %q", corr, tr.Text)
	}

	// The agent hears the caller.
	before := agent.stats()
	if err := call.SendAudio(speak(t, "my card was stolen yesterday")); err != nil {
		t.Fatal(err)
	}
	after := agent.stats()
	t.Logf("agent page while the caller spoke: packets %v -> %v, energy %.4f -> %.4f (codec %s)",
		before.PacketsReceived, after.PacketsReceived, before.TotalAudioEnergy, after.TotalAudioEnergy, after.Codec)
	if after.PacketsReceived-before.PacketsReceived < 50 || after.TotalAudioEnergy-before.TotalAudioEnergy < 0.005 {
		t.Fatalf("the caller's speech did not reach the agent page: %+v -> %+v", before, after)
	}
	// The transcript keeps running for the human part of the call.
	// (The words themselves depend on the recognizer under this machine's
	// load; the caller's new turn after the bridge is what must appear.)
	agent.wait("caller's words in the agent's live transcript", `[...document.querySelectorAll('#transcript .turn.caller')].some((n) => /stolen|yesterday|card/.test(n.textContent))`,
		`document.getElementById('transcript').innerText`, 15*time.Second)

	// The agent's side is transcribed too.
	agent.wait("agent's words in the live transcript", `[...document.querySelectorAll('#transcript .turn.agent')].some((n) => /help|today|team/.test(n.textContent))`,
		`document.getElementById('transcript').innerText`, 15*time.Second)

	// The supervisor listens in.
	sup.do("pick the call", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#calls tr[data-id=%q]`, call.CallSID))))
	sup.do("listen", chromedp.Click(chromedp.CSS("#listen")))
	sup.wait("supervisor audio connected", `window.parleyConsole.state().audio === 'connected'`, `JSON.stringify(window.parleyConsole.state())`, 20*time.Second)
	s0 := sup.stats()
	sup.wait("supervisor hears the call", fmt.Sprintf(`(async () => { const s = await window.parleyConsole.stats(); return s.packetsReceived > %v + 100 && s.totalAudioEnergy > %v + 0.005; })()`,
		s0.PacketsReceived, s0.TotalAudioEnergy), `window.parleyConsole.stats().then(JSON.stringify)`, 20*time.Second)
	listening := time.Now()
	// Nobody hears a listening supervisor (and the probes can tell).
	listenTone, _ := agent.eval(toneProbe + fmt.Sprintf(`(%v, 1500)`, whisperHz)).(float64)
	callerListen := toneProminence(heardSince(call, listening), whisperHz)
	t.Logf("listen: the agent's page hears 1.2 kHz %.1f dB above its surroundings; caller's 1.2 kHz prominence %.1f", listenTone, callerListen)
	if listenTone >= 20 || callerListen >= toneHeard {
		t.Fatalf("a listening supervisor is heard: by the agent %.1f dB, by the caller %.1f", listenTone, callerListen)
	}

	// Whisper: the agent hears the supervisor's tone, the caller does not.
	sup.do("whisper", chromedp.Click(chromedp.CSS("#whisper")))
	sup.wait("whisper mode", `window.parleyConsole.state().mode === 'whisper'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	whispering := time.Now()
	a0 := agent.stats()
	agentTone, ok := agent.eval(toneProbe + fmt.Sprintf(`(%v, 2500)`, whisperHz)).(float64)
	a1 := agent.stats()
	callerTone := toneProminence(heardSince(call, whispering.Add(300*time.Millisecond)), whisperHz)
	t.Logf("whisper: the agent's page hears 1.2 kHz %.1f dB above its surroundings (energy +%.4f); caller's 1.2 kHz prominence %.1f",
		agentTone, a1.TotalAudioEnergy-a0.TotalAudioEnergy, callerTone)
	if !ok || agentTone < 20 {
		t.Errorf("the agent does not hear the whisper: tone %.1f dB", agentTone)
	}
	if a1.TotalAudioEnergy-a0.TotalAudioEnergy < 0.005 {
		t.Errorf("no audio energy reached the agent during the whisper: %+v -> %+v", a0, a1)
	}
	if callerTone >= toneHeard {
		t.Errorf("the caller hears the whisper: 1.2 kHz prominence %.1f", callerTone)
	}
	sup.screenshot(art, "console-e2e-supervisor.png")
	agent.screenshot(art, "console-e2e-agent-call.png")

	// Barge: now the caller hears the supervisor (the detector's positive control).
	sup.do("barge", chromedp.Click(chromedp.CSS("#barge")))
	sup.wait("barge mode", `window.parleyConsole.state().mode === 'barge'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	barging := time.Now()
	time.Sleep(2500 * time.Millisecond)
	bargeTone := toneProminence(heardSince(call, barging.Add(300*time.Millisecond)), whisperHz)
	t.Logf("barge: caller's 1.2 kHz prominence %.1f", bargeTone)
	if bargeTone < toneHeard {
		t.Errorf("the caller does not hear a barging supervisor: 1.2 kHz prominence %.1f", bargeTone)
	}
	if code, body := other.post(t, "/api/agent/calls/"+call.CallSID+"/hangup", ""); code != http.StatusForbidden {
		t.Fatalf("another agent hanging up the call: %d %s, want 403", code, body)
	}
	sup.do("leave", chromedp.Click(chromedp.CSS("#leave")))
	sup.wait("left", `window.parleyConsole.state().joined === ''`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)

	// The agent hangs up and wraps up; then they are available again.
	agent.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	agent.wait("wrap-up form", `window.parleyConsole.state().phase === 'wrapup'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	agent.wait("call over (agent in wrap-up)", `window.parleyConsole.state().agentState === 'wrapup' && !document.querySelector('#wrapup-form button[type=submit]').disabled`,
		`JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	agent.do("wrap up",
		chromedp.SetValue(chromedp.CSS("#disposition"), "resolved"),
		chromedp.SendKeys(chromedp.CSS("#notes"), "Stolen card blocked, replacement ordered."),
		chromedp.Click(chromedp.CSS(`#wrapup-form button[type=submit]`)))
	agent.wait("available after wrap-up", `window.parleyConsole.state().phase === 'idle' && window.parleyConsole.state().agentState === 'available'`,
		`JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	// Away again, so that no later test's call is offered to this agent.
	agent.do("go away", chromedp.Click(chromedp.CSS("#go-away")))
	agent.wait("agent away", `window.parleyConsole.state().agentState === 'away'`, `JSON.stringify(window.parleyConsole.state())`, 10*time.Second)
	select {
	case <-call.Done():
		t.Logf("the caller's call ended after the agent hung up")
	case <-time.After(10 * time.Second):
		t.Errorf("the caller's call is still up 10 s after the agent hung up")
	}
	// The other agent's stream carried their own state and nothing of the call.
	seen, events := other.stream()
	if events == 0 || !strings.Contains(seen, "event: snapshot") {
		t.Fatalf("the other agent's stream carried nothing: %q", seen)
	}
	for _, secret := range []string{call.CallSID, "+14155550166", "stolen", agentUser.ID} {
		if strings.Contains(seen, secret) {
			t.Fatalf("the other agent's stream carried %q:\n%s", secret, seen)
		}
	}
	t.Logf("the other agent's stream: %d events, none about the call", events)
	stored := storedCall(t, call.CallSID)
	t.Logf("stored call: outcome %q (%s), %d turns", stored.Outcome, stored.Reason, len(stored.Turns))
	if stored.Outcome != parley.OutcomeEscalated {
		t.Errorf("stored outcome %q, want escalated", stored.Outcome)
	}

	// The customer's own page, for the record.
	tab, closeTab := chromedp.NewContext(sup.ctx)
	defer closeTab()
	if err := chromedp.Do(tab); err != nil { // the tab lives as long as this first call's context
		t.Fatalf("open a tab: %v", err)
	}
	cust := page{t: t, ctx: tab, name: "customer page"}
	cust.do("open /call", chromedp.Navigate(testServer.url+"/call?processing=off"), chromedp.WaitVisible(chromedp.CSS("#call")))
	cust.do("call", chromedp.Click(chromedp.CSS("#call")))
	cust.wait("browser call connected", `window.parleyCall.state().phase === 'connected'`, `JSON.stringify(window.parleyCall.state())`, 20*time.Second)
	time.Sleep(time.Second)
	cust.screenshot(art, "console-e2e-call-page.png")
	cust.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	t.Logf("whole console test: %v", time.Since(begin).Round(100*time.Millisecond))
}
