package console

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/switchboard"
)

// The pages themselves, driven in headless Chromium against the fake
// backend: login, live updates, the offer's brief, accepting with real
// WebRTC audio both ways (a pion peer stands in for parley's mixer),
// mute, hang-up and wrap-up; the supervisor's table, details and joining.

// chromium finds the browser; the test command installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found (Debian packages chromium and chromium-driver): run scripts/setup.sh test")
	return ""
}

// browser starts a headless Chromium of its own (profile, cookies) with a
// fake microphone (Chromium's beep, or wav when given).
func browser(t *testing.T, wav string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
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
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	if wav != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-audio-capture", wav))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// artifacts is where screenshots go: $PARLEY_ARTIFACTS or a temp dir.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// poll waits for a JavaScript condition, reporting what it last saw.
func poll(t *testing.T, ctx context.Context, what, expr, show string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		seen, _ := chromedp.Run(ctx, chromedp.Evaluate[any](show, chromedp.EvalAwaitPromise))
		t.Fatalf("%s: %v (page shows %v)", what, err, seen)
	}
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		seen, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : document.documentElement.outerHTML`))
		t.Fatalf("%s: %v (page shows %q)", what, err, seen)
	}
}

// remote is the server's end of a page's audio: a pion peer that plays a
// tone to the page and keeps what the page sends.
type remote struct {
	peer *mwebrtc.Peer
	mu   sync.Mutex
	got  []int16
	done chan struct{}
}

func answerer(t *testing.T, out chan<- *remote) func(string) (string, error) {
	return func(offer string) (string, error) {
		p, answer, err := mwebrtc.NewPeer(mwebrtc.Config{LoopbackOnly: true}, offer)
		if err != nil {
			return "", err
		}
		r := &remote{peer: p, done: make(chan struct{})}
		go r.run()
		t.Cleanup(func() { p.Close(); <-r.done })
		out <- r
		return answer, nil
	}
}

func (r *remote) run() {
	defer close(r.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := make([]int16, 160)
	n := 0
	for {
		select {
		case <-r.peer.Done():
			return
		case f := <-r.peer.Audio():
			r.mu.Lock()
			r.got = append(r.got, f...)
			r.mu.Unlock()
			r.peer.Release(f)
		case <-tick.C:
			select {
			case <-r.peer.Connected():
			default:
				continue
			}
			for i := range frame {
				frame[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(n)/8000))
				n++
			}
			_ = r.peer.WriteFrame(frame)
		}
	}
}

func (r *remote) level() (samples int, rms float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var e float64
	for _, s := range r.got {
		e += float64(s) * float64(s)
	}
	if len(r.got) == 0 {
		return 0, 0
	}
	return len(r.got), math.Sqrt(e / float64(len(r.got)))
}

// waitAudio waits until the peer has received a second of sound.
func (r *remote) waitAudio(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, level := r.level()
		if n >= 8000 && level > 100 {
			t.Logf("server side received %d samples of the page's audio, %.0f RMS", n, level)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's audio did not arrive: %d samples, %.0f RMS", n, level)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func login(t *testing.T, ctx context.Context, url string, u parley.User) {
	t.Helper()
	run(t, ctx, "open "+url, chromedp.Navigate(url))
	run(t, ctx, "login form", chromedp.WaitVisible(chromedp.CSS("#login")))
	run(t, ctx, "type", chromedp.SendKeys(chromedp.CSS("#name"), u.Name), chromedp.SendKeys(chromedp.CSS("#password"), password))
	run(t, ctx, "submit", chromedp.Click(chromedp.CSS(`#login button[type=submit]`)))
	run(t, ctx, "logged in as "+u.Name, chromedp.WaitVisible(chromedp.CSS("#shell-top")))
}

func waitCalled(t *testing.T, f *fakeBackend, want string) {
	t.Helper()
	method := strings.Fields(want)[0]
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range f.calledWith(method) {
			if l == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend never got %q (got %v)", want, f.calledWith(method))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentPageInBrowser(t *testing.T) {
	s := startServer(t, Options{})
	f := s.fake
	remotes := make(chan *remote, 4)
	f.acceptFn = answerer(t, remotes)
	f.stateFn = func(id string, st escalation.AgentState) {
		f.publish(switchboard.Update{Kind: switchboard.UpdateAgent, AgentID: id, Agent: &escalation.Agent{ID: id, Name: "alice", State: st, Since: time.Now()}})
	}
	ctx := browser(t, "")
	login(t, ctx, s.url+AgentPage+"?raw=1", alice)
	<-f.online
	run(t, ctx, "go available", chromedp.Click(chromedp.CSS("#go-available")))
	waitCalled(t, f, "SetAgentState u-alice available")
	poll(t, ctx, "state shown", `document.getElementById('state').textContent === 'available'`, `document.getElementById('state').textContent`)

	t0 := time.Now().Add(-40 * time.Second)
	offer := &switchboard.Offer{OfferedAt: time.Now(), ExpiresAt: time.Now().Add(20 * time.Second), Brief: switchboard.Brief{
		CallID: "CA-42", Channel: parley.ChannelTwilio, From: "+14155550111", To: "+18005550199", StartedAt: t0, DecidedAt: time.Now(),
		Reasons: []escalation.Reason{escalation.ReasonAskedForHuman, escalation.ReasonFrustration}, Intent: "card_lost",
		Slots: map[string]string{"card_last4": "4821"}, Summary: "Caller lost their card and asked for a person.",
		Transcript: []parley.Turn{
			{CallID: "CA-42", Seq: 0, Speaker: parley.SpeakerAI, Text: "Thanks for calling Northwind, how can I help?", Start: t0},
			{CallID: "CA-42", Seq: 1, Speaker: parley.SpeakerCaller, Text: "I lost my card and I want to speak to a person", Start: t0.Add(4 * time.Second)},
		},
		History: []parley.Call{{ID: "CA-old", StartedAt: t0.Add(-48 * time.Hour), Outcome: parley.OutcomeResolved,
			Turns: []parley.Turn{{Speaker: parley.SpeakerCaller, Text: "what are your opening hours"}}}},
	}}
	f.publish(switchboard.Update{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentOffered, CallID: "CA-42"}})
	f.publish(switchboard.Update{Kind: switchboard.UpdateOffer, AgentID: alice.ID, CallID: "CA-42", Offer: offer})
	poll(t, ctx, "offer with its brief shown",
		`!document.getElementById('offer').hidden && document.getElementById('transcript').textContent.includes('speak to a person')
		 && document.getElementById('brief-reasons').textContent.includes('Asked for a person')
		 && document.getElementById('brief-intent').textContent.includes('4821')
		 && document.getElementById('brief-history').textContent.includes('opening hours')
		 && /\d+ s to answer/.test(document.getElementById('offer-left').textContent)`,
		`document.getElementById('work').innerText`)
	screenshot(t, ctx, "console-agent-offer.png")

	run(t, ctx, "accept", chromedp.Click(chromedp.CSS("#accept")))
	var r *remote
	select {
	case r = <-remotes:
	case <-time.After(20 * time.Second):
		t.Fatal("accept never reached the backend")
	}
	poll(t, ctx, "audio connected", `window.parleyConsole.state().audio === 'connected'`, `JSON.stringify(window.parleyConsole.state())`)
	f.publish(switchboard.Update{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentBusy, CallID: "CA-42"}})
	f.publish(switchboard.Update{Kind: switchboard.UpdateCall, CallID: "CA-42", Call: &switchboard.LiveCall{
		CallSummary: switchboard.CallSummary{ID: "CA-42", From: "+14155550111", Phase: "agent"}, Agent: &switchboard.AgentRef{ID: alice.ID, Name: "alice"}}})
	f.publish(switchboard.Update{Kind: switchboard.UpdateTurn, CallID: "CA-42", Turn: &parley.Turn{CallID: "CA-42", Seq: 2, Speaker: parley.SpeakerAgent, Text: "Hello, this is Alice, I have your details here", Start: time.Now()}})
	poll(t, ctx, "live transcript", `document.getElementById('transcript').textContent.includes('this is Alice')`, `document.getElementById('transcript').innerText`)
	poll(t, ctx, "page receives audio", `(async () => { const s = await window.parleyConsole.stats(); return s.packetsReceived > 50 && s.totalAudioEnergy > 0.001; })()`,
		`window.parleyConsole.stats().then(JSON.stringify)`)
	r.waitAudio(t)
	screenshot(t, ctx, "console-agent-call.png")

	run(t, ctx, "mute", chromedp.Click(chromedp.CSS("#mute")))
	waitCalled(t, f, "AgentMute u-alice CA-42 true")
	run(t, ctx, "hold", chromedp.Click(chromedp.CSS("#hold")))
	waitCalled(t, f, "AgentHold u-alice CA-42 true")
	run(t, ctx, "hang up", chromedp.Click(chromedp.CSS("#hangup")))
	waitCalled(t, f, "AgentHangup u-alice CA-42")
	poll(t, ctx, "wrap-up form", `!document.getElementById('wrapup').hidden && window.parleyConsole.pc === null`, `window.parleyConsole.state().phase`)
	// Saving waits for the server to say the call is over.
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#wrapup-form button[type=submit]').disabled`)); !v {
		t.Fatal("wrap-up can be saved before the server ended the call")
	}
	f.publish(switchboard.Update{Kind: switchboard.UpdateEnded, CallID: "CA-42"})
	f.publish(switchboard.Update{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentWrapUp, CallID: "CA-42"}})
	poll(t, ctx, "wrap-up can be saved", `!document.querySelector('#wrapup-form button[type=submit]').disabled`, `document.getElementById('wrapup').innerText`)
	run(t, ctx, "wrap up",
		chromedp.SetValue(chromedp.CSS("#disposition"), "follow_up"),
		chromedp.SendKeys(chromedp.CSS("#notes"), "Card blocked, new one ordered"),
		chromedp.Click(chromedp.CSS(`#wrapup-form button[type=submit]`)))
	waitCalled(t, f, "WrapUp u-alice CA-42 follow_up Card blocked, new one ordered")
	poll(t, ctx, "back to waiting", `window.parleyConsole.state().phase === 'idle'`, `window.parleyConsole.state().phase`)
}

func TestSupervisorPageInBrowser(t *testing.T) {
	s := startServer(t, Options{})
	f := s.fake
	remotes := make(chan *remote, 4)
	f.joinFn = answerer(t, remotes)
	now := time.Now()
	f.live = switchboard.Snapshot{
		Calls: []switchboard.LiveCall{
			{CallSummary: switchboard.CallSummary{ID: "CA-ai", Channel: parley.ChannelTwilio, From: "+14155550122", StartedAt: now.Add(-75 * time.Second), Phase: "ai", Turns: 2},
				Signals: &parley.Signals{Intent: "fees", ASRConfidence: 0.91, NLUConfidence: 0.88},
				Transcript: []parley.Turn{{CallID: "CA-ai", Seq: 0, Speaker: parley.SpeakerAI, Text: "How can I help?"},
					{CallID: "CA-ai", Seq: 1, Speaker: parley.SpeakerCaller, Text: "what are your fees"}}},
			{CallSummary: switchboard.CallSummary{ID: "CA-human", Channel: parley.ChannelWebRTC, From: "+14155550111", StartedAt: now.Add(-200 * time.Second), Phase: "agent", Turns: 3},
				Signals:   &parley.Signals{Intent: "card_lost", ASRConfidence: 0.41, NLUConfidence: 0.35, Frustration: 0.8, Repeats: 2, AskedForHuman: true},
				Agent:     &switchboard.AgentRef{ID: alice.ID, Name: "alice"},
				Decisions: []escalation.Decision{{Transfer: true, Score: 1.4, Reasons: []escalation.Reason{escalation.ReasonAskedForHuman, escalation.ReasonLowConfidence}}},
				Transcript: []parley.Turn{{CallID: "CA-human", Seq: 0, Speaker: parley.SpeakerAI, Text: "How can I help?"},
					{CallID: "CA-human", Seq: 1, Speaker: parley.SpeakerCaller, Text: "I lost my card, get me a person"},
					{CallID: "CA-human", Seq: 2, Speaker: parley.SpeakerAgent, Text: "Hi, Alice here"}}},
		},
		Queue: []escalation.Waiting{{Request: escalation.Request{CallID: "CA-q", From: "+14155550133", Skill: "fraud", Priority: true}, QueuedAt: now.Add(-30 * time.Second), Position: 1}},
		Agents: []escalation.Agent{{ID: alice.ID, Name: "alice", State: escalation.AgentBusy, Since: now.Add(-60 * time.Second), CallID: "CA-human", Handled: 3, Skills: []string{"cards"}},
			{ID: bob.ID, Name: "bob", State: escalation.AgentAvailable, Since: now.Add(-10 * time.Second)}},
	}
	ctx := browser(t, "")
	login(t, ctx, s.url+SupervisorPage+"?raw=1", sam)
	poll(t, ctx, "calls, queue and agents shown",
		`document.querySelectorAll('#calls tr.pick').length === 2 && document.getElementById('queue').textContent.includes('+14155550133')
		 && document.getElementById('agents').textContent.includes('bob')`,
		`document.getElementById('shell').innerText`)
	run(t, ctx, "pick the call", chromedp.Click(chromedp.CSS(`#calls tr[data-id="CA-human"]`)))
	poll(t, ctx, "call detail", `document.getElementById('detail-transcript').textContent.includes('get me a person')
		&& document.getElementById('detail-decisions').textContent.includes('Transfer')`, `document.getElementById('detail').innerText`)

	// Live: a new turn with its signals, a decision on the other call, a new call.
	f.publish(switchboard.Update{Kind: switchboard.UpdateTurn, CallID: "CA-human", Turn: &parley.Turn{CallID: "CA-human", Seq: 3, Speaker: parley.SpeakerCaller,
		Text: "it was stolen yesterday", Signals: &parley.Signals{ASRConfidence: 0.77, NLUConfidence: 0.66, Frustration: 0.3}}})
	f.publish(switchboard.Update{Kind: switchboard.UpdateDecision, CallID: "CA-ai", Decision: &escalation.Decision{Score: 0.2}})
	f.publish(switchboard.Update{Kind: switchboard.UpdateCall, CallID: "CA-new", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-new", From: "+14155550144", StartedAt: time.Now(), Phase: "ai"}}})
	poll(t, ctx, "live updates", `document.getElementById('detail-transcript').textContent.includes('stolen yesterday')
		&& document.getElementById('detail-signals').textContent.includes('0.77') && document.querySelectorAll('#calls tr.pick').length === 3`,
		`document.getElementById('shell').innerText`)

	run(t, ctx, "listen", chromedp.Click(chromedp.CSS("#listen")))
	var r *remote
	select {
	case r = <-remotes:
	case <-time.After(20 * time.Second):
		t.Fatal("join never reached the backend")
	}
	waitCalled(t, f, "Join u-sam CA-human listen")
	poll(t, ctx, "listening", `window.parleyConsole.state().audio === 'connected'`, `JSON.stringify(window.parleyConsole.state())`)
	poll(t, ctx, "supervisor hears the call", `(async () => { const s = await window.parleyConsole.stats(); return s.packetsReceived > 50 && s.totalAudioEnergy > 0.001; })()`,
		`window.parleyConsole.stats().then(JSON.stringify)`)
	r.waitAudio(t) // the microphone always goes up; the server decides who hears it
	run(t, ctx, "whisper", chromedp.Click(chromedp.CSS("#whisper")))
	waitCalled(t, f, "SetJoinMode u-sam CA-human whisper")
	poll(t, ctx, "whisper shown", `document.getElementById('whisper').getAttribute('aria-pressed') === 'true'`, `document.getElementById('audio').textContent`)
	screenshot(t, ctx, "console-supervisor.png")
	run(t, ctx, "leave", chromedp.Click(chromedp.CSS("#leave")))
	waitCalled(t, f, "Leave u-sam CA-human")

	// The call ends: it leaves the table.
	f.publish(switchboard.Update{Kind: switchboard.UpdateEnded, CallID: "CA-human", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-human", Phase: "ending"}}})
	poll(t, ctx, "ended call gone", `document.querySelectorAll('#calls tr.pick').length === 2 && document.getElementById('detail-phase').textContent === 'ended'`,
		`document.getElementById('shell').innerText`)
}
