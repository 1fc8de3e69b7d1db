package switchboard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/redact"
)

// scriptLeg is a phone caller driven by the test: it sends 20 ms frames on
// a real clock (queued audio, else silence), echoes marks, presses keys
// when told, keeps everything it hears, and hangs up when told.
type scriptLeg struct {
	info parley.LegInfo

	mu       sync.Mutex
	out      []int16 // queued audio to say
	heard    []int16 // everything received, frame by frame
	heardAt  []time.Time
	marks    []string
	keys     []byte
	hungUp   atomic.Bool
	hangupCh chan struct{}
	once     sync.Once
	greeted  chan struct{}
	gonce    sync.Once
}

func newScriptLeg(id string) *scriptLeg {
	return &scriptLeg{
		info:     parley.LegInfo{CallID: id, Channel: parley.ChannelTwilio, From: "+15550001111", To: "+15559990000"},
		hangupCh: make(chan struct{}),
		greeted:  make(chan struct{}),
	}
}

func (l *scriptLeg) Info() parley.LegInfo { return l.info }
func (l *scriptLeg) SampleRate() int      { return 8000 }
func (l *scriptLeg) WriteFrame(pcm []int16) error {
	l.mu.Lock()
	l.heard = append(l.heard, pcm...)
	l.heardAt = append(l.heardAt, time.Now())
	l.mu.Unlock()
	return nil
}
func (l *scriptLeg) Mark(name string) error {
	l.mu.Lock()
	l.marks = append(l.marks, name)
	l.mu.Unlock()
	l.gonce.Do(func() { close(l.greeted) })
	return nil
}
func (l *scriptLeg) Clear() error { return nil }
func (l *scriptLeg) Hangup(context.Context, string) error {
	l.hungUp.Store(true)
	l.hangUp()
	return nil
}
func (l *scriptLeg) hangUp() { l.once.Do(func() { close(l.hangupCh) }) }

func (l *scriptLeg) say(pcm []int16) {
	l.mu.Lock()
	l.out = append(l.out, pcm...)
	l.mu.Unlock()
}

func (l *scriptLeg) press(keys string) {
	l.mu.Lock()
	l.keys = append(l.keys, keys...)
	l.mu.Unlock()
}

// heardSince returns what the caller heard since sample n.
func (l *scriptLeg) heardLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.heard)
}

func (l *scriptLeg) heardFrom(n int) []int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int16(nil), l.heard[min(n, len(l.heard)):]...)
}

func (l *scriptLeg) Run(ctx context.Context, h parley.LegHandler) error {
	frame := make([]int16, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	echoed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.hangupCh:
			return nil
		case <-tick.C:
		}
		l.mu.Lock()
		clear(frame)
		n := copy(frame, l.out)
		l.out = l.out[n:]
		keys := l.keys
		l.keys = nil
		marks := append([]string(nil), l.marks[echoed:]...)
		echoed = len(l.marks)
		l.mu.Unlock()
		h.OnAudio(frame)
		for _, k := range keys {
			h.OnDTMF(k)
		}
		for _, m := range marks {
			h.OnMark(m)
		}
	}
}

// babble is speech-like sound: a glottal pulse train with a wandering pitch
// through a formant-ish resonance, at a syllable rhythm, so endpointers take
// it for a voice (not a tone, not steady noise).
func babble(d time.Duration, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := int(d.Seconds() * 8000)
	out := make([]int16, n)
	phase, y1, y2 := 0.0, 0.0, 0.0
	for i := range out {
		t := float64(i) / 8000
		f0 := 120 + 30*math.Sin(2*math.Pi*0.7*t) + 10*rng.Float64()
		phase += f0 / 8000
		x := 0.0
		if phase >= 1 {
			phase--
			x = 1
		}
		// Two-pole resonator near 700 Hz.
		r, w := 0.95, 2*math.Pi*700/8000
		y := x + 2*r*math.Cos(w)*y1 - r*r*y2
		y2, y1 = y1, y
		syll := 0.5 + 0.5*math.Sin(2*math.Pi*4*t)
		out[i] = int16(math.Max(-32000, math.Min(32000, 2500*y*syll)))
	}
	return out
}

// tone is a steady sine at f Hz.
func tone(d time.Duration, f float64, amp float64) []int16 {
	n := int(d.Seconds() * 8000)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*f*float64(i)/8000))
	}
	return out
}

// goertzel is the power of pcm at f Hz relative to its total power.
func toneShare(pcm []int16, f float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * f / 8000
	c := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, v := range pcm {
		x := float64(v)
		s := x + c*s1 - s2
		s2, s1 = s1, s
		total += x * x
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	if total == 0 {
		return 0
	}
	return p / (total * float64(len(pcm)) / 2)
}

func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)))
}

// listStore adds call history to memStore.
func (m *memStore) ListCalls(_ context.Context, q parley.CallQuery) ([]parley.Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []parley.Call
	for _, c := range m.calls {
		if q.Number == "" || c.From == q.Number || c.To == q.Number {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) eventsOf(kind string) []parley.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []parley.Event
	for _, e := range m.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (m *memStore) outcome(id string) parley.Outcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended[id]
}

func newMemStore() *memStore {
	return &memStore{calls: map[string]parley.Call{}, ended: map[string]parley.Outcome{}}
}

func peerConfig() mwebrtc.Config {
	return mwebrtc.Config{LoopbackOnly: true, ICEDisconnectedTimeout: time.Second, DropTimeout: time.Second, ConnectTimeout: 10 * time.Second}
}

type rig struct {
	t    *testing.T
	sb   *Switchboard
	st   *memStore
	upd  <-chan Update
	stop func()
	wg   sync.WaitGroup
}

func newRig(t *testing.T, q QueueOptions, desk escalation.DeskOptions) *rig {
	t.Helper()
	return newRigSynth(t, q, desk, toneSynth{})
}

func newRigSynth(t *testing.T, q QueueOptions, desk escalation.DeskOptions, synth dialog.Synthesizer) *rig {
	t.Helper()
	return newRigEngines(t, q, desk, dialog.Engines{Transcriber: nopTranscriber{}, Responder: keypadResponder{}, Synthesizer: synth})
}

func newRigEngines(t *testing.T, q QueueOptions, desk escalation.DeskOptions, eng dialog.Engines) *rig {
	t.Helper()
	st := newMemStore()
	if q.Dir == "" {
		q.Dir = t.TempDir()
	}
	sb := New(eng,
		Options{Store: st, Log: zerolog.Nop(), Redact: redact.New(redact.Policy{}), Queue: q, Desk: desk, Peer: peerConfig(),
			Session: dialog.Config{InterDigitTimeout: 200 * time.Millisecond}})
	upd, stop := sb.Subscribe(4096)
	r := &rig{t: t, sb: sb, st: st, upd: upd, stop: stop}
	t.Cleanup(func() {
		r.wg.Wait()
		stop()
	})
	return r
}

// call starts a call on leg and returns a channel closed when it ends.
func (r *rig) call(leg *scriptLeg) chan struct{} {
	done := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sb.Handle(context.Background(), leg)
		close(done)
	}()
	return done
}

// next waits for an update matching ok.
func (r *rig) next(what string, ok func(Update) bool) Update {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case u := <-r.upd:
			if ok(u) {
				return u
			}
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *rig) waitPhase(id string, p Phase) {
	r.t.Helper()
	r.next("phase "+string(p), func(u Update) bool {
		return u.Kind == UpdateCall && u.CallID == id && u.Call != nil && u.Call.Phase == p
	})
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("call did not end")
	}
}

// agentPeer is an agent's browser: a WebRTC peer that sends and keeps audio.
type agentPeer struct {
	peer  *mwebrtc.Peer
	mu    sync.Mutex
	heard []int16
	done  chan struct{}
	send  atomic.Pointer[[]int16]
	stop  chan struct{}
}

func (r *rig) accept(agentID, callID string) *agentPeer {
	r.t.Helper()
	p, offer, err := mwebrtc.NewOffer(peerConfig())
	if err != nil {
		r.t.Fatal(err)
	}
	answer, err := r.sb.Accept(context.Background(), agentID, callID, offer)
	if err != nil {
		_ = p.Close()
		r.t.Fatalf("accept: %v", err)
	}
	if err := p.SetAnswer(answer); err != nil {
		r.t.Fatal(err)
	}
	return runPeer(r.t, p)
}

func runPeer(t *testing.T, p *mwebrtc.Peer) *agentPeer {
	a := &agentPeer{peer: p, done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(a.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pos := 0
		for {
			select {
			case <-p.Done():
				return
			case <-a.stop:
				return
			case f := <-p.Audio():
				a.mu.Lock()
				a.heard = append(a.heard, f...)
				a.mu.Unlock()
				p.Release(f)
			case <-tick.C:
				if s := a.send.Load(); s != nil && len(*s) > 0 {
					src := *s
					if pos+160 > len(src) {
						pos = 0
					}
					_ = p.WriteFrame(src[pos : pos+160])
					pos += 160
				}
			}
		}
	}()
	t.Cleanup(func() { a.close() })
	return a
}

func (a *agentPeer) close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	_ = a.peer.Close()
	<-a.done
}

func (a *agentPeer) heardLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.heard)
}

func (a *agentPeer) heardFrom(n int) []int16 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int16(nil), a.heard[min(n, len(a.heard)):]...)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func agentUser(id string) parley.User {
	return parley.User{ID: id, Name: "Agent " + strings.ToUpper(id), Role: parley.RoleAgent}
}

func TestWarmTransferBridgesCallerAndAgent(t *testing.T) {
	r := newRig(t, QueueOptions{}, escalation.DeskOptions{})
	r.sb.AgentOnline(agentUser("a1"))
	if err := r.sb.SetAgentState("a1", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	// An earlier call from the same number is in the history.
	r.st.calls["CAold"] = parley.Call{ID: "CAold", From: "+15550001111", StartedAt: time.Now().Add(-time.Hour), Outcome: parley.OutcomeResolved}
	leg := newScriptLeg("CA1")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")

	u := r.next("offer", func(u Update) bool { return u.Kind == UpdateOffer && u.AgentID == "a1" })
	o := u.Offer
	if o.CallID != "CA1" || o.From != "+15550001111" || len(o.Reasons) == 0 || o.Reasons[0] != escalation.ReasonAskedForHuman {
		t.Fatalf("offer brief %+v", o.Brief)
	}
	if len(o.History) != 1 || o.History[0].ID != "CAold" {
		t.Fatalf("history %+v", o.History)
	}
	if !strings.Contains(o.Summary, "asked for a person") {
		t.Fatalf("summary %q", o.Summary)
	}
	if po, ok := r.sb.PendingOffer("a1"); !ok || po.CallID != "CA1" || po.ExpiresAt.Before(po.OfferedAt) {
		t.Fatalf("pending offer %+v %v", po, ok)
	}
	// Another agent cannot take it.
	if _, err := r.sb.Accept(context.Background(), "nobody", "CA1", "v=0"); err == nil {
		t.Fatal("a stranger accepted the call")
	}
	agent := r.accept("a1", "CA1")
	r.waitPhase("CA1", PhaseAgent)
	lc, ok := r.sb.AgentCall("a1")
	if !ok || lc.ID != "CA1" || lc.Agent == nil || lc.Agent.ID != "a1" || lc.Transfer == nil || lc.Transfer.ConnectedAt.IsZero() {
		t.Fatalf("agent call %+v %v", lc, ok)
	}

	// Audio both ways: the agent's 600 Hz reaches the caller, the caller's
	// voice reaches the agent.
	from := leg.heardLen()
	speech := tone(2*time.Second, 600, 8000)
	agent.send.Store(&speech)
	waitFor(t, "agent audio at the caller", func() bool {
		h := leg.heardFrom(from)
		return len(h) > 8000 && rms(h[len(h)-4000:]) > 2000 && toneShare(h[len(h)-4000:], 600) > 0.5
	})
	afrom := agent.heardLen()
	leg.say(babble(2*time.Second, 1))
	waitFor(t, "caller audio at the agent", func() bool {
		h := agent.heardFrom(afrom)
		return len(h) > 4000 && rms(h) > 500
	})

	// Mute: the caller hears nothing more from the agent.
	if err := r.sb.AgentMute("a1", "CA1", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	from = leg.heardLen()
	time.Sleep(500 * time.Millisecond)
	if h := leg.heardFrom(from); rms(h) > 100 {
		t.Fatalf("muted agent still heard (rms %.0f)", rms(h))
	}
	if err := r.sb.AgentMute("a1", "CA1", false); err != nil {
		t.Fatal(err)
	}
	if err := r.sb.AgentHangup("other", "CA1"); err == nil {
		t.Fatal("another agent hung up the call")
	}
	if err := r.sb.AgentHangup("a1", "CA1"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
	if got := r.st.outcome("CA1"); got != parley.OutcomeEscalated {
		t.Fatalf("outcome %q", got)
	}
	if !leg.hungUp.Load() {
		t.Fatal("caller not hung up when the agent ended the call")
	}
	tr := r.st.eventsOf("transfer")
	if len(tr) != 1 {
		t.Fatalf("%d transfer events", len(tr))
	}
	var rec struct {
		Agent       string `json:"agent_id"`
		TimeToHuman int64  `json:"time_to_human_ms"`
	}
	if err := json.Unmarshal(tr[0].Data, &rec); err != nil || rec.Agent != "a1" || rec.TimeToHuman <= 0 {
		t.Fatalf("transfer event %s (%v)", tr[0].Data, err)
	}
	// Wrap-up, then the agent is available again.
	if a, _ := r.sb.Desk().Agent("a1"); a.State != escalation.AgentWrapUp {
		t.Fatalf("agent state after the call %s", a.State)
	}
	if lc, ok := r.sb.AgentCall("a1"); !ok || lc.ID != "CA1" {
		t.Fatalf("wrap-up call %+v %v", lc, ok)
	}
	if err := r.sb.WrapUp(context.Background(), "a1", "CA1", WrapUp{}); err == nil {
		t.Fatal("wrap-up without disposition accepted")
	}
	if err := r.sb.WrapUp(context.Background(), "a1", "CA1", WrapUp{Disposition: "resolved", Notes: "card 4111 1111 1111 1111 blocked"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.sb.Desk().Agent("a1"); a.State != escalation.AgentAvailable {
		t.Fatalf("agent state after wrap-up %s", a.State)
	}
	w := r.st.eventsOf("wrapup")
	if len(w) != 1 || strings.Contains(string(w[0].Data), "4111 1111") || !strings.Contains(string(w[0].Data), "resolved") {
		t.Fatalf("wrap-up events %v", w)
	}
}

func TestNoAgentOnDutyTakesAVoicemail(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, QueueOptions{Dir: dir, VoicemailSilence: time.Second}, escalation.DeskOptions{})
	leg := newScriptLeg("CAvm")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")
	r.waitPhase("CAvm", PhaseVoicemail)
	// After the prompt and the beep, the caller speaks, then stays quiet.
	waitFor(t, "the beep", func() bool {
		h := leg.heardFrom(0)
		return len(h) > 3200 && toneShare(h[len(h)-3200:], 1000) > 0.5
	})
	leg.say(babble(2*time.Second, 2))
	waitDone(t, done)
	if got := r.st.outcome("CAvm"); got != parley.OutcomeVoicemail {
		t.Fatalf("outcome %q", got)
	}
	vm := r.st.eventsOf("voicemail")
	if len(vm) != 1 {
		t.Fatalf("%d voicemail events", len(vm))
	}
	var rec struct {
		Path     string `json:"path"`
		Duration int    `json:"duration_ms"`
	}
	if err := json.Unmarshal(vm[0].Data, &rec); err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := media.ReadWAVFile(rec.Path)
	if err != nil || rate != 8000 || len(pcm) < 8000*2 || !strings.HasPrefix(rec.Path, dir) {
		t.Fatalf("voicemail %s: %d samples at %d Hz (%v)", rec.Path, len(pcm), rate, err)
	}
	if rms(pcm) < 200 {
		t.Fatalf("voicemail is silent (rms %.0f)", rms(pcm))
	}
	if _, err := os.Stat(rec.Path); err != nil {
		t.Fatal(err)
	}
}

func TestCallbackOnOneWhileQueued(t *testing.T) {
	r := newRig(t, QueueOptions{}, escalation.DeskOptions{})
	// On duty, but the offer to them stays unanswered.
	r.sb.AgentOnline(agentUser("slow"))
	if err := r.sb.SetAgentState("slow", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	leg := newScriptLeg("CAcb")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")
	r.next("offer", func(u Update) bool { return u.Kind == UpdateOffer && u.CallID == "CAcb" })
	r.waitPhase("CAcb", PhaseQueued)
	leg.press("1")
	r.next("withdrawn", func(u Update) bool { return u.Kind == UpdateWithdrawn && u.AgentID == "slow" })
	waitDone(t, done)
	if got := r.st.outcome("CAcb"); got != parley.OutcomeCallback {
		t.Fatalf("outcome %q", got)
	}
	if cb := r.st.eventsOf("callback"); len(cb) != 1 || !strings.Contains(string(cb[0].Data), "+15550001111") {
		t.Fatalf("callback events %v", cb)
	}
	if a, _ := r.sb.Desk().Agent("slow"); a.State != escalation.AgentAvailable {
		t.Fatalf("agent after the caller left: %s", a.State)
	}
}

func TestDeclinedOfferGoesToTheNextAgentAndDroppedAgentRequeues(t *testing.T) {
	r := newRig(t, QueueOptions{}, escalation.DeskOptions{})
	for _, id := range []string{"a", "b"} {
		r.sb.AgentOnline(agentUser(id))
		if err := r.sb.SetAgentState(id, escalation.AgentAvailable); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // a is idle longest
	}
	leg := newScriptLeg("CAdr")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")
	r.next("offer to a", func(u Update) bool { return u.Kind == UpdateOffer && u.AgentID == "a" })
	if err := r.sb.Decline("a", "CAdr"); err != nil {
		t.Fatal(err)
	}
	r.next("offer to b", func(u Update) bool { return u.Kind == UpdateOffer && u.AgentID == "b" })
	agent := r.accept("b", "CAdr")
	r.waitPhase("CAdr", PhaseAgent)
	// b's browser disappears: the caller is told and goes back to the
	// front of the queue, where a is offered the call again.
	agent.close()
	r.next("notice to b", func(u Update) bool { return u.Kind == UpdateNotice && u.AgentID == "b" })
	r.waitPhase("CAdr", PhaseQueued)
	if a, _ := r.sb.Desk().Agent("b"); a.State != escalation.AgentAway {
		t.Fatalf("lost agent's state %s", a.State)
	}
	if ev := r.st.eventsOf("queue"); !strings.Contains(string(ev[len(ev)-1].Data), "requeued") &&
		!strings.Contains(string(ev[len(ev)-2].Data), "requeued") {
		t.Fatalf("no requeue event: %s", ev[len(ev)-1].Data)
	}
	leg.hangUp()
	waitDone(t, done)
	if got := r.st.outcome("CAdr"); got != parley.OutcomeAbandoned {
		t.Fatalf("outcome %q", got)
	}
}

func TestSupervisorListensWhispersAndBarges(t *testing.T) {
	r := newRig(t, QueueOptions{}, escalation.DeskOptions{})
	r.sb.AgentOnline(agentUser("a"))
	if err := r.sb.SetAgentState("a", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	leg := newScriptLeg("CAsv")
	done := r.call(leg)
	<-leg.greeted

	// Listening in during the AI phase.
	sup := parley.User{ID: "s", Name: "Sue", Role: parley.RoleSupervisor}
	if _, err := r.sb.Join(context.Background(), sup, "CAsv", JoinWhisper, "v=0"); err != ErrNoAgent {
		t.Fatalf("whisper with no agent: %v", err)
	}
	sp, offer, err := mwebrtc.NewOffer(peerConfig())
	if err != nil {
		t.Fatal(err)
	}
	answer, err := r.sb.Join(context.Background(), sup, "CAsv", JoinListen, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	s := runPeer(t, sp)
	leg.say(babble(time.Second, 3))
	waitFor(t, "the caller at the listening supervisor", func() bool { return rms(s.heardFrom(0)) > 300 })

	leg.press("0")
	r.next("offer", func(u Update) bool { return u.Kind == UpdateOffer })
	agent := r.accept("a", "CAsv")
	r.waitPhase("CAsv", PhaseAgent)

	// Whisper: the supervisor's 1200 Hz reaches the agent, not the caller.
	whisper := tone(2*time.Second, 1200, 8000)
	s.send.Store(&whisper)
	if err := r.sb.SetJoinMode("s", "CAsv", JoinWhisper); err != nil {
		t.Fatal(err)
	}
	afrom := agent.heardLen()
	waitFor(t, "the whisper at the agent", func() bool {
		h := agent.heardFrom(afrom)
		return len(h) > 4000 && toneShare(h[len(h)-4000:], 1200) > 0.5
	})
	from := leg.heardLen()
	time.Sleep(time.Second)
	if h := leg.heardFrom(from); toneShare(h, 1200) > 0.05 && rms(h) > 100 {
		t.Fatalf("the caller heard the whisper (share %.2f, rms %.0f)", toneShare(h, 1200), rms(h))
	}
	// Barge: now the caller hears the supervisor too.
	if err := r.sb.SetJoinMode("s", "CAsv", JoinBarge); err != nil {
		t.Fatal(err)
	}
	from = leg.heardLen()
	waitFor(t, "the supervisor at the caller", func() bool {
		h := leg.heardFrom(from)
		return len(h) > 4000 && toneShare(h[len(h)-4000:], 1200) > 0.5
	})
	lc, _ := r.sb.LiveCall("CAsv")
	if len(lc.Listeners) != 1 || lc.Listeners[0].Mode != JoinBarge {
		t.Fatalf("listeners %+v", lc.Listeners)
	}
	if err := r.sb.Leave("s", "CAsv"); err != nil {
		t.Fatal(err)
	}
	leg.hangUp()
	waitDone(t, done)
	if got := r.st.outcome("CAsv"); got != parley.OutcomeEscalated {
		t.Fatalf("outcome %q", got)
	}
}

// failingResponder greets, then fails every turn (a dead LLM provider).
type failingResponder struct{}

func (failingResponder) NewConversation(dialog.CallContext) dialog.Conversation { return failingConv{} }

type failingConv struct{}

func (failingConv) Greeting(_ context.Context, say func(string) error) error { return say("Hello.") }
func (failingConv) Respond(context.Context, dialog.Input, func(string) error) (dialog.Result, error) {
	return dialog.Result{}, errors.New("provider: 503 service unavailable")
}
func (failingConv) Heard(string) {}

func TestRepeatedProviderFailuresGoToAHuman(t *testing.T) {
	st := newMemStore()
	sb := New(dialog.Engines{Transcriber: nopTranscriber{}, Responder: failingResponder{}, Synthesizer: toneSynth{}},
		Options{Store: st, Log: zerolog.Nop(), Queue: QueueOptions{Dir: t.TempDir()}, Peer: peerConfig(),
			Session: dialog.Config{InterDigitTimeout: 200 * time.Millisecond}})
	upd, stop := sb.Subscribe(1024)
	defer stop()
	sb.AgentOnline(agentUser("a"))
	if err := sb.SetAgentState("a", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	leg := newScriptLeg("CApf")
	done := make(chan struct{})
	go func() { sb.Handle(context.Background(), leg); close(done) }()
	<-leg.greeted
	// Two turns in a row the provider fails: the caller hears an apology
	// each time, then is offered to an agent.
	leg.press("5")
	time.Sleep(time.Second)
	leg.press("6")
	deadline := time.After(20 * time.Second)
	for offered := false; !offered; {
		select {
		case u := <-upd:
			if u.Kind == UpdateOffer && u.CallID == "CApf" {
				offered = true
				if len(u.Offer.Reasons) == 0 || u.Offer.Reasons[0] != escalation.ReasonProviderFailure {
					t.Fatalf("reasons %v", u.Offer.Reasons)
				}
			}
		case <-deadline:
			t.Fatal("no offer after two provider failures")
		}
	}
	leg.hangUp()
	waitDone(t, done)
	if got := st.outcome("CApf"); got != parley.OutcomeAbandoned {
		t.Fatalf("outcome %q", got)
	}
}

// sineSynth speaks every sentence as 300 ms of 500 Hz.
type sineSynth struct{}

func (sineSynth) SampleRate() int { return 8000 }
func (sineSynth) Synthesize(_ context.Context, _ string, emit func([]int16) error) error {
	return emit(tone(300*time.Millisecond, 500, 6000))
}

func TestCallsAreRecordedInStereoAfterAnAnnouncement(t *testing.T) {
	st := newMemStore()
	dir := t.TempDir()
	sb := New(dialog.Engines{Transcriber: nopTranscriber{}, Responder: keypadResponder{}, Synthesizer: sineSynth{}},
		Options{Store: st, Log: zerolog.Nop(), Queue: QueueOptions{Dir: t.TempDir()}, Peer: peerConfig(),
			Recording: RecordingOptions{Dir: dir, Announcement: "This call is recorded.", URL: func(id string) string { return "/api/calls/" + id + "/recording.wav" }}})
	leg := newScriptLeg("CArec")
	done := make(chan struct{})
	go func() { sb.Handle(context.Background(), leg); close(done) }()
	<-leg.greeted
	leg.say(babble(2*time.Second, 9))
	time.Sleep(3 * time.Second)
	leg.hangUp()
	waitDone(t, done)

	ev := st.eventsOf("recording")
	if len(ev) != 1 {
		t.Fatalf("%d recording events", len(ev))
	}
	var rec struct {
		Path     string `json:"path"`
		URL      string `json:"url"`
		Duration int64  `json:"duration_ms"`
	}
	if err := json.Unmarshal(ev[0].Data, &rec); err != nil || rec.URL != "/api/calls/CArec/recording.wav" {
		t.Fatalf("recording event %s (%v)", ev[0].Data, err)
	}
	raw, err := os.ReadFile(rec.Path)
	if err != nil || len(raw) < 44 || string(raw[0:4]) != "RIFF" || binary.LittleEndian.Uint16(raw[22:]) != 2 ||
		binary.LittleEndian.Uint32(raw[24:]) != 8000 || int(binary.LittleEndian.Uint32(raw[40:])) != len(raw)-44 {
		t.Fatalf("not a complete 8 kHz stereo WAV (%d bytes, %v)", len(raw), err)
	}
	var left, right []int16
	for i := 44; i+3 < len(raw); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(raw[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(raw[i+2:])))
	}
	secs := float64(len(left)) / 8000
	if secs < 3 || secs > 30 || rec.Duration != int64(secs*1000) {
		t.Fatalf("recording is %.1f s (event says %d ms)", secs, rec.Duration)
	}
	// What the caller heard (the announcement and the greeting, 500 Hz) is
	// on the right; the caller's voice is on the left, and not on the right.
	// (per 100 ms window: the bursts do not share one phase).
	toneWindows := func(x []int16) (loud, tonal int) {
		for i := 0; i+800 <= len(x); i += 800 {
			if w := x[i : i+800]; rms(w) > 500 {
				loud++
				if toneShare(w, 500) > 0.5 {
					tonal++
				}
			}
		}
		return loud, tonal
	}
	if loud, tonal := toneWindows(right); loud < 4 || tonal < loud*3/4 {
		t.Fatalf("right channel: %d loud windows, %d of them 500 Hz", loud, tonal)
	}
	if loud, tonal := toneWindows(left); loud < 5 || tonal > 0 {
		t.Fatalf("left channel: %d loud windows, %d of them 500 Hz", loud, tonal)
	}
	if n, err := SweepRecordings(context.Background(), dir, time.Hour, time.Now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v)", n, err)
	}
	if _, err := os.Stat(rec.Path); !os.IsNotExist(err) {
		t.Fatal("old recording not deleted")
	}
}

func TestSurveyAfterTheAISaysGoodbye(t *testing.T) {
	st := newMemStore()
	sb := New(dialog.Engines{Transcriber: nopTranscriber{}, Responder: keypadResponder{}, Synthesizer: sineSynth{}},
		Options{Store: st, Log: zerolog.Nop(), Queue: QueueOptions{Dir: t.TempDir()}, Peer: peerConfig(),
			Session: dialog.Config{InterDigitTimeout: 200 * time.Millisecond},
			Survey:  SurveyOptions{Prompt: "How did we do? Press 1 to 5.", Wait: 5 * time.Second}})
	leg := newScriptLeg("CAsurvey")
	done := make(chan struct{})
	go func() { sb.Handle(context.Background(), leg); close(done) }()
	<-leg.greeted
	leg.press("9") // the AI says goodbye
	waitFor(t, "the goodbye and the survey prompt", func() bool {
		leg.mu.Lock()
		defer leg.mu.Unlock()
		return len(leg.marks) >= 2
	})
	time.Sleep(700 * time.Millisecond)
	leg.press("4")
	waitDone(t, done)
	cs := st.eventsOf("csat")
	if len(cs) != 1 || string(cs[0].Data) != `{"score":4}` {
		t.Fatalf("csat events %v", cs)
	}
	if !leg.hungUp.Load() {
		t.Fatal("the caller was not hung up after the survey")
	}
	if got := st.outcome("CAsurvey"); got != parley.OutcomeResolved {
		t.Fatalf("outcome %q", got)
	}
}

// whisperSynth speaks the whisper summary as a 1750 Hz tone and everything
// else as silence, so the test can tell who hears it.
type whisperSynth struct{ texts chan string }

func (whisperSynth) SampleRate() int { return 8000 }
func (w whisperSynth) Synthesize(_ context.Context, text string, emit func([]int16) error) error {
	if strings.HasPrefix(text, "Call from") {
		select {
		case w.texts <- text:
		default:
		}
		return emit(tone(1500*time.Millisecond, 1750, 9000))
	}
	return emit(make([]int16, 1600))
}

func TestWhisperSummaryIsHeardByTheAgentOnly(t *testing.T) {
	ws := whisperSynth{texts: make(chan string, 1)}
	r := newRigSynth(t, QueueOptions{WhisperSummary: true}, escalation.DeskOptions{}, ws)
	r.sb.AgentOnline(agentUser("w1"))
	if err := r.sb.SetAgentState("w1", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	leg := newScriptLeg("CAw")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")
	r.next("offer", func(u Update) bool { return u.Kind == UpdateOffer && u.AgentID == "w1" })
	from := leg.heardLen()
	agent := r.accept("w1", "CAw")
	var text string
	select {
	case text = <-ws.texts:
	case <-time.After(20 * time.Second):
		t.Fatal("no whisper summary synthesized")
	}
	if !strings.Contains(text, "5 5 5 0 0 0 1 1 1 1") || !strings.Contains(text, "asked for a person") {
		t.Fatalf("whisper text %q", text)
	}
	waitFor(t, "the whisper at the agent", func() bool {
		h := agent.heardFrom(0)
		for i := 0; i+4000 <= len(h); i += 800 {
			if rms(h[i:i+4000]) > 2000 && toneShare(h[i:i+4000], 1750) > 0.5 {
				return true
			}
		}
		return false
	})
	r.waitPhase("CAw", PhaseAgent)
	// Never at the caller, who heard hold music meanwhile.
	h := leg.heardFrom(from)
	for i := 0; i+2000 <= len(h); i += 400 {
		if toneShare(h[i:i+2000], 1750) > 0.3 && rms(h[i:i+2000]) > 500 {
			t.Fatalf("the caller heard the whisper at %v", time.Duration(i)*time.Second/8000)
		}
	}
	if len(r.st.eventsOf("whisper")) != 1 {
		t.Fatal("whisper not recorded")
	}
	agent.close()
	leg.hangUp()
	waitDone(t, done)
}

// scriptTranscriber recognizes each utterance as the next of its texts.
type scriptTranscriber struct {
	mu    sync.Mutex
	texts []string
}

func (*scriptTranscriber) SampleRate() int { return 16000 }
func (s *scriptTranscriber) Start(context.Context, dialog.Mode) (dialog.TranscribeStream, error) {
	return &scriptStream{s: s}, nil
}

type scriptStream struct{ s *scriptTranscriber }

func (*scriptStream) Write([]int16) error { return nil }
func (st *scriptStream) Finish() (dialog.Transcript, error) {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if len(st.s.texts) == 0 {
		return dialog.Transcript{}, nil
	}
	t := st.s.texts[0]
	st.s.texts = st.s.texts[1:]
	return dialog.Transcript{Text: t, Confidence: 0.9}, nil
}
func (*scriptStream) Close() error { return nil }

// hoursResponder is keypadResponder that also knows the opening hours
// and hears requests for a person.
type hoursResponder struct{ keypadResponder }

func (hoursResponder) NewConversation(dialog.CallContext) dialog.Conversation { return &hoursConv{} }

type hoursConv struct{ keypadConv }

func (c *hoursConv) Respond(ctx context.Context, in dialog.Input, say func(string) error) (dialog.Result, error) {
	if in.Kind != dialog.InputSpeech {
		return c.keypadConv.Respond(ctx, in, say)
	}
	switch {
	case strings.Contains(in.Text, "open"):
		return dialog.Result{Intent: "opening_hours", Confidence: 0.92}, say("We're open from eight to eight.")
	case strings.Contains(in.Text, "person"):
		return dialog.Result{Intent: "agent", Confidence: 0.95, WantsHuman: true}, say("Let me get you a person.")
	}
	return dialog.Result{OutOfScope: true, Confidence: 0.2}, say("Sorry?")
}

func TestWaitingCallerStillGetsAnswers(t *testing.T) {
	tr := &scriptTranscriber{texts: []string{"when are you open", "i want a person now"}}
	r := newRigEngines(t, QueueOptions{Assist: true}, escalation.DeskOptions{},
		dialog.Engines{Transcriber: tr, Responder: hoursResponder{}, Synthesizer: toneSynth{}})
	r.sb.AgentOnline(agentUser("h1"))
	if err := r.sb.SetAgentState("h1", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	leg := newScriptLeg("CAh")
	done := r.call(leg)
	<-leg.greeted
	leg.press("0")
	r.waitPhase("CAh", PhaseQueued)
	ask := func(want string) parley.Turn {
		t.Helper()
		leg.say(babble(1500*time.Millisecond, 3))
		leg.say(make([]int16, 8000*3/2))
		u := r.next("the assistant's reply", func(u Update) bool {
			return u.Kind == UpdateTurn && u.CallID == "CAh" && u.Turn.Speaker == parley.SpeakerAI && strings.Contains(u.Turn.Text, "still in line")
		})
		if !strings.Contains(u.Turn.Text, want) {
			t.Fatalf("assistant said %q, want %q", u.Turn.Text, want)
		}
		return *u.Turn
	}
	ask("We're open from eight to eight. You're still in line")
	// A request for a person is not answered by the AI: they are in line.
	if got := ask("You're still in line"); strings.Contains(got.Text, "Let me get you") {
		t.Fatalf("the assistant answered a request for a person: %q", got.Text)
	}
	var caller []string
	for _, e := range r.st.eventsOf("queue") {
		var d map[string]any
		if json.Unmarshal(e.Data, &d) == nil && d["state"] == "assisted" {
			caller = append(caller, fmt.Sprint(d["answered"]))
		}
	}
	if strings.Join(caller, ",") != "true,false" {
		t.Fatalf("assisted events: %v", caller)
	}
	// The call kept its place: the agent still takes it.
	agent := r.accept("h1", "CAh")
	r.waitPhase("CAh", PhaseAgent)
	agent.close()
	leg.hangUp()
	waitDone(t, done)
}
