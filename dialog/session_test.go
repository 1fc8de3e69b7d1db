package dialog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// harness wires a Session to fakes and collects what it reports.
type harness struct {
	t    *testing.T
	leg  *fakeLeg
	tr   *fakeTranscriber
	syn  *fakeSynth
	conv *fakeConv
	sess *Session

	mu     sync.Mutex
	turns  []parley.Turn
	events []Event
}

func newHarness(t *testing.T, cfg Config, leg *fakeLeg, tr *fakeTranscriber, conv *fakeConv) *harness {
	t.Helper()
	h := &harness{t: t, leg: leg, tr: tr, syn: newFakeSynth(), conv: conv}
	if tr.rate == 0 {
		tr.rate = 16000
	}
	if cfg.NoInputTimeout == 0 {
		cfg.NoInputTimeout = time.Minute // tests that want silence set it
	}
	hooks := Hooks{
		OnTurn: func(tn parley.Turn) {
			h.mu.Lock()
			h.turns = append(h.turns, tn)
			h.mu.Unlock()
		},
		OnEvent: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	}
	h.sess = NewSession(cfg, leg, Engines{Transcriber: tr, Responder: &fakeResponder{conv: conv}, Synthesizer: h.syn}, hooks, zerolog.Nop())
	return h
}

func (h *harness) run() (Outcome, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.sess.Run(ctx)
	if ctx.Err() != nil {
		h.t.Fatalf("session did not end on its own: %v", ctx.Err())
	}
	h.leg.mu.Lock()
	werr := h.leg.waitErr
	h.leg.mu.Unlock()
	if werr != nil {
		h.t.Fatal(werr)
	}
	if _, _, _, overlap := h.conv.snapshot(); overlap {
		h.t.Error("conversation methods ran concurrently")
	}
	if open, _, _, _ := h.tr.counts(); open != 0 {
		h.t.Errorf("%d transcribe streams left open", open)
	}
	return out, err
}

func (h *harness) hooked() []parley.Turn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]parley.Turn(nil), h.turns...)
}

func (h *harness) count(kind EventKind) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// markEchoed waits for the leg to have echoed mark name.
func markEchoed(name string) step {
	return waitFor("mark "+name, func(l *fakeLeg) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, m := range l.echoed {
			if m == name {
				return true
			}
		}
		return false
	})
}

func speakers(ts []parley.Turn) string {
	var b []string
	for _, t := range ts {
		s := string(t.Speaker) + ":" + t.Text
		if t.DTMF != "" {
			s += "#" + t.DTMF
		}
		b = append(b, s)
	}
	return strings.Join(b, " | ")
}

func TestGreetingThenQuestionAndAnswer(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Hello, this is parley.", "How can I help?"},
		replies: []reply{{
			say:    []string{"We are open nine to five.", "Goodbye."},
			result: Result{Intent: "hours", Confidence: 0.9, EndCall: true},
		}},
		frustration: 0.25,
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "what are your hours", conf: 0.8}}}
	leg := newFakeLeg(markEchoed("1.2"), speak(600))
	h := newHarness(t, Config{}, leg, tr, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonAIEnded || !out.HungUp {
		t.Fatalf("outcome %+v, %v; want ai_ended with hang-up", out, err)
	}

	syn := h.syn
	wantIDs := []int{syn.id("Hello, this is parley."), syn.id("How can I help?"), syn.id("We are open nine to five."), syn.id("Goodbye.")}
	if got := leg.voiceIDs(); !equalInts(got, wantIDs) {
		t.Errorf("sentences played %v, want %v", got, wantIDs)
	}
	for _, s := range []string{"Hello, this is parley.", "We are open nine to five.", "Goodbye."} {
		if got, want := leg.samplesOf(syn.id(s)), syn.samples(s); got != want {
			t.Errorf("%q: %d samples played, want %d", s, got, want)
		}
	}
	marks, _, clears, hangups, hangupAt, outLen := leg.snapshot()
	if names := markNames(marks); strings.Join(names, ",") != "1.1,1.2,2.1,2.2" {
		t.Errorf("marks %v", names)
	}
	if len(clears) != 0 {
		t.Errorf("clear sent %d times without a barge-in", len(clears))
	}
	if len(hangups) != 1 || hangupAt != outLen {
		t.Errorf("hang-ups %v at %d of %d samples; want one after all audio", hangups, hangupAt, outLen)
	}

	inputs, heard, _, _ := conv.snapshot()
	if len(inputs) != 1 || inputs[0].Kind != InputSpeech || inputs[0].Text != "what are your hours" || inputs[0].Confidence != 0.8 {
		t.Errorf("inputs %+v", inputs)
	}
	if len(heard) != 0 {
		t.Errorf("Heard called without a barge-in: %q", heard)
	}
	if conv.call.CallID != "CAtest" || conv.call.From != "+15550001111" {
		t.Errorf("call context %+v", conv.call)
	}

	turns := h.sess.Turns()
	want := "ai:Hello, this is parley. How can I help? | caller:what are your hours | ai:We are open nine to five. Goodbye."
	if got := speakers(turns); got != want {
		t.Fatalf("turns %q\nwant  %q", got, want)
	}
	if got := speakers(h.hooked()); got != want {
		t.Errorf("OnTurn saw %q", got)
	}
	c := turns[1]
	if c.Seq != 2 || c.CallID != "CAtest" {
		t.Errorf("caller turn seq %d call %q", c.Seq, c.CallID)
	}
	if !(c.Start.Before(c.EndOfSpeech) && c.EndOfSpeech.Before(c.End) && c.End.Before(c.FirstAudio)) {
		t.Errorf("caller turn times out of order: start %v eos %v end %v first audio %v", c.Start, c.EndOfSpeech, c.End, c.FirstAudio)
	}
	if c.Latency() <= 0 {
		t.Errorf("latency %v", c.Latency())
	}
	sig := c.Signals
	if sig == nil || sig.ASRConfidence != 0.8 || sig.NLUConfidence != 0.9 || sig.Intent != "hours" || sig.Frustration != 0.25 || sig.ProviderFailure || sig.AITime <= 0 {
		t.Errorf("signals %+v", sig)
	}
	if a := turns[2]; a.Interrupted || a.Intended != "" || a.Start.Before(c.End) || a.End.Before(a.Start) {
		t.Errorf("ai turn %+v", a)
	}
	// The recognizer got the speech with its pre-roll, at its own rate.
	_, _, finished, samples := tr.counts()
	if finished != 1 || len(samples) != 1 || samples[0] < (600+700+200)*16 {
		t.Errorf("transcriber: %d finished, samples %v; want speech + pre-roll + end silence at 16 kHz", finished, samples)
	}
	if n := h.count(EventSpeechStart); n != 1 {
		t.Errorf("%d speech-start events", n)
	}
}

func markNames(ms []markAt) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFirstSentencePlaysWhileTheRestIsProduced(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Hi."},
		gate:     make(chan struct{}),
		replies: []reply{{
			say:       []string{"Let me check that for you.", "Your balance is ten dollars."},
			gateAfter: 1,
			result:    Result{EndCall: true},
		}},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "what is my balance", conf: 0.9}}}
	var heardFirstWhileGated bool
	var h *harness
	leg := newFakeLeg(markEchoed("1.1"), speak(500),
		waitFor("first sentence on the line", func(l *fakeLeg) bool {
			return l.samplesOf(h.syn.id("Let me check that for you.")) > 0
		}),
		step{do: func(parley.LegHandler) {
			conv.mu.Lock()
			heardFirstWhileGated = conv.gated
			conv.mu.Unlock()
			close(conv.gate)
		}},
	)
	h = newHarness(t, Config{}, leg, tr, conv)
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if !heardFirstWhileGated {
		t.Error("the first sentence reached the leg only after the responder finished")
	}
	want := []int{h.syn.id("Hi."), h.syn.id("Let me check that for you."), h.syn.id("Your balance is ten dollars.")}
	if got := leg.voiceIDs(); !equalInts(got, want) {
		t.Errorf("played %v, want %v", got, want)
	}
}

func TestBargeIn(t *testing.T) {
	long := strings.Repeat("and this part goes on for a while ", 6) + "end."
	conv := &fakeConv{
		greeting: []string{"Hi."},
		gate:     make(chan struct{}), // never opened: the third sentence waits until cancelled
		replies: []reply{
			{say: []string{"Sure thing.", long, "Never said."}, gateAfter: 2},
			{say: []string{"Okay, stopping."}, result: Result{EndCall: true}},
		},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "tell me everything", conf: 0.9}, {text: "stop please", conf: 0.9}}}
	var h *harness
	leg := newFakeLeg(markEchoed("1.1"), speak(500),
		waitFor("the long sentence to be playing", func(l *fakeLeg) bool {
			return l.samplesOf(h.syn.id(long)) > 800
		}),
		speak(900),
	)
	leg.markDelay = 3
	h = newHarness(t, Config{}, leg, tr, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	_, _, clears, _, _, _ := leg.snapshot()
	if len(clears) != 1 {
		t.Fatalf("%d clears, want 1", len(clears))
	}
	inputs, heard, cancelled, _ := conv.snapshot()
	if cancelled != 1 {
		t.Errorf("%d responder turns cancelled, want 1", cancelled)
	}
	if len(heard) != 1 {
		t.Fatalf("Heard calls %q, want 1", heard)
	}
	full := "Sure thing. " + strings.TrimSpace(long)
	if !strings.HasPrefix(heard[0], "Sure thing. and this") || len(heard[0]) >= len(full) || !strings.HasPrefix(full, heard[0]) {
		t.Errorf("heard %q; want the first sentence and a prefix of the second", heard[0])
	}
	if len(inputs) != 2 || inputs[1].Text != "stop please" {
		t.Errorf("inputs %+v; the barging speech must be the next turn", inputs)
	}
	turns := h.sess.Turns()
	var ai *parley.Turn
	for i := range turns {
		if turns[i].Interrupted {
			ai = &turns[i]
		}
	}
	if ai == nil || ai.Text != heard[0] || ai.Intended != full || ai.Speaker != parley.SpeakerAI {
		t.Fatalf("interrupted turn %+v among %q", ai, speakers(turns))
	}
	if strings.Contains(speakers(turns), "Never said") {
		t.Error("a sentence produced after the barge-in was recorded")
	}
	// No audio of the cut reply went out after the clear.
	if n := leg.samplesOf(h.syn.id("Never said.")); n != 0 {
		t.Errorf("%d samples of an unsaid sentence played", n)
	}
	if s := h.sess.Stats(); s.BargeIns != 1 {
		t.Errorf("stats %+v", s)
	}
	if h.count(EventBargeIn) != 1 {
		t.Error("no barge-in event")
	}
}

func TestShortSpeechOverTheAIDoesNotInterrupt(t *testing.T) {
	greeting := []string{strings.Repeat("please listen to these long options ", 8) + "now."}
	tests := []struct {
		name    string
		speech  int
		partial string
		stats   func(Stats) bool
	}{
		{name: "blip", speech: 180, stats: func(s Stats) bool { return s.Blips == 1 }},
		{name: "backchannel partial", speech: 600, partial: "mm hm", stats: func(s Stats) bool { return s.Blips == 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConv{
				greeting: greeting,
				replies:  []reply{{say: []string{"Goodbye."}, result: Result{EndCall: true}}},
			}
			tr := &fakeTranscriber{partial: tc.partial, results: []fakeResult{{text: "mm hm"}}}
			leg := newFakeLeg(
				waitFor("the greeting to be playing", func(l *fakeLeg) bool { return l.samplesOf(1) > 1600 }),
				speak(tc.speech),
			)
			h := newHarness(t, Config{NoInputTimeout: 200 * time.Millisecond}, leg, tr, conv)
			out, err := h.run()
			if err != nil || out.Reason != ReasonAIEnded {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			if _, _, clears, _, _, _ := leg.snapshot(); len(clears) != 0 {
				t.Errorf("cleared %d times", len(clears))
			}
			inputs, heard, _, _ := conv.snapshot()
			if len(inputs) != 1 || inputs[0].Kind != InputSilence || len(heard) != 0 {
				t.Errorf("inputs %+v heard %q; want only the no-input turn", inputs, heard)
			}
			turns := h.sess.Turns()
			if len(turns) == 0 || turns[0].Interrupted || turns[0].Text != greeting[0] {
				t.Errorf("greeting turn %+v", turns)
			}
			if s := h.sess.Stats(); !tc.stats(s) || s.BargeIns != 0 {
				t.Errorf("stats %+v", s)
			}
			if _, closed, finished, _ := tr.counts(); closed != 1 || finished != 0 {
				t.Errorf("streams closed %d finished %d; want the blip's stream abandoned", closed, finished)
			}
		})
	}
}

func TestKeypadTurns(t *testing.T) {
	tests := []struct {
		name      string
		script    []step
		want      string
		human     bool
		interrupt bool
	}{
		{name: "digits and pound", script: []step{markEchoed("1.1"), key('1'), key('2'), pause(60), key('3'), key('#')}, want: "123"},
		{name: "zero alone asks for a human", script: []step{markEchoed("1.1"), key('0')}, want: "0", human: true},
		{name: "keys barge in", script: []step{waitFor("greeting playing", func(l *fakeLeg) bool { return l.samplesOf(1) > 800 }), key('4'), key('#')}, want: "4", interrupt: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConv{
				greeting: []string{"Press one for sales or say what you need, we are always happy to help you today."},
				replies:  []reply{{say: []string{"Thanks."}, result: Result{EndCall: true, WantsHuman: tc.human}}},
			}
			leg := newFakeLeg(tc.script...)
			h := newHarness(t, Config{InterDigitTimeout: time.Second}, leg, &fakeTranscriber{}, conv)
			out, err := h.run()
			if err != nil || out.Reason != ReasonAIEnded {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			inputs, heard, _, _ := conv.snapshot()
			if len(inputs) != 1 || inputs[0].Kind != InputDTMF || inputs[0].Digits != tc.want {
				t.Fatalf("inputs %+v, want DTMF %q", inputs, tc.want)
			}
			turns := h.sess.Turns()
			var caller parley.Turn
			for _, tn := range turns {
				if tn.Speaker == parley.SpeakerCaller {
					caller = tn
				}
			}
			if caller.DTMF != tc.want || caller.Signals == nil || caller.Signals.AskedForHuman != tc.human {
				t.Errorf("caller turn %+v", caller)
			}
			_, _, clears, _, _, _ := leg.snapshot()
			if tc.interrupt != (len(clears) == 1) || tc.interrupt != (len(heard) == 1) || tc.interrupt != turns[0].Interrupted {
				t.Errorf("interrupt=%v: clears %d heard %q greeting %+v", tc.interrupt, len(clears), heard, turns[0])
			}
		})
	}
}

func TestSilence(t *testing.T) {
	tests := []struct {
		name    string
		replies []reply
		reason  Reason
	}{
		{
			name: "reprompt then the conversation's goodbye",
			replies: []reply{
				{say: []string{"Are you still there?"}},
				{say: []string{"Goodbye for now."}, result: Result{EndCall: true}},
			},
			reason: ReasonAIEnded,
		},
		{
			name: "the session ends after MaxNoInput even without a goodbye",
			replies: []reply{
				{say: []string{"Are you still there?"}},
				{say: []string{"Hello?"}},
			},
			reason: ReasonNoInput,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConv{greeting: []string{"Hi."}, replies: tc.replies}
			leg := newFakeLeg()
			h := newHarness(t, Config{NoInputTimeout: 150 * time.Millisecond}, leg, &fakeTranscriber{}, conv)
			out, err := h.run()
			if err != nil || out.Reason != tc.reason || !out.HungUp {
				t.Fatalf("outcome %+v, %v; want %s with hang-up", out, err, tc.reason)
			}
			inputs, _, _, _ := conv.snapshot()
			if len(inputs) != 2 || inputs[0].Kind != InputSilence || inputs[1].Kind != InputSilence {
				t.Fatalf("inputs %+v; want two silences", inputs)
			}
			marks, echoed, _, hangups, hangupAt, outLen := leg.snapshot()
			if len(hangups) != 1 || hangupAt != outLen || len(echoed) != len(marks) {
				t.Errorf("hang-up %v at %d/%d samples, %d of %d marks echoed: the goodbye must play out first", hangups, hangupAt, outLen, len(echoed), len(marks))
			}
			last := tc.replies[1].say[0]
			if leg.samplesOf(h.syn.id(last)) != h.syn.samples(last) {
				t.Errorf("the last reply did not play in full")
			}
		})
	}
}

func TestFailuresNeverLeaveSilence(t *testing.T) {
	tests := []struct {
		name     string
		results  []fakeResult
		replies  []reply
		failTTS  string
		wantSaid string // the fallback sentence the caller hears
		stats    func(Stats) bool
	}{
		{
			name:     "transcriber error",
			results:  []fakeResult{{err: errors.New("decoder died")}, {text: "hello", conf: 0.9}},
			replies:  []reply{{say: []string{"Hello, goodbye."}, result: Result{EndCall: true}}},
			wantSaid: DefaultNotUnderstood,
			stats:    func(s Stats) bool { return s.ASRFailures == 1 },
		},
		{
			name:     "transcriber cannot start",
			results:  []fakeResult{{startErr: errors.New("pool exhausted")}, {text: "hello", conf: 0.9}},
			replies:  []reply{{say: []string{"Hello, goodbye."}, result: Result{EndCall: true}}},
			wantSaid: DefaultNotUnderstood,
			stats:    func(s Stats) bool { return s.ASRFailures == 1 },
		},
		{
			name:     "no decoder free in time",
			results:  []fakeResult{{block: true}, {text: "hello", conf: 0.9}},
			replies:  []reply{{say: []string{"Hello, goodbye."}, result: Result{EndCall: true}}},
			wantSaid: DefaultNotUnderstood,
			stats:    func(s Stats) bool { return s.ASRFailures == 1 },
		},
		{
			name:     "responder error",
			results:  []fakeResult{{text: "hello", conf: 0.9}, {text: "hello again", conf: 0.9}},
			replies:  []reply{{err: errors.New("llm timeout")}, {say: []string{"Hello, goodbye."}, result: Result{EndCall: true}}},
			wantSaid: DefaultApology,
			stats:    func(s Stats) bool { return s.NLUFailures == 1 },
		},
		{
			name:     "synthesizer error skips the sentence",
			results:  []fakeResult{{text: "hello", conf: 0.9}, {text: "hello again", conf: 0.9}},
			replies:  []reply{{say: []string{"Broken sentence.", "Working sentence."}}, {say: []string{"Hello, goodbye."}, result: Result{EndCall: true}}},
			failTTS:  "Broken sentence.",
			wantSaid: "Working sentence.",
			stats:    func(s Stats) bool { return s.TTSFailures == 1 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConv{greeting: []string{"Hi."}, replies: tc.replies}
			tr := &fakeTranscriber{results: tc.results}
			var h *harness
			leg := newFakeLeg(markEchoed("1.1"), speak(500),
				waitFor("the fallback sentence", func(l *fakeLeg) bool { return l.samplesOf(h.syn.id(tc.wantSaid)) > 0 }),
				markEchoed("2."+lastMarkIndex(tc.failTTS)), speak(500))
			h = newHarness(t, Config{}, leg, tr, conv)
			if tc.failTTS != "" {
				h.syn.fail[tc.failTTS] = true
			}
			out, err := h.run()
			if err != nil || out.Reason != ReasonAIEnded {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			if s := h.sess.Stats(); !tc.stats(s) {
				t.Errorf("stats %+v", s)
			}
			inputs, _, _, _ := conv.snapshot()
			for _, in := range inputs {
				if in.Kind == InputSpeech && in.Text == "" {
					t.Errorf("an empty input reached the conversation: %+v", inputs)
				}
			}
			turns := h.sess.Turns()
			var first *parley.Turn
			for i := range turns {
				if turns[i].Speaker == parley.SpeakerCaller {
					first = &turns[i]
					break
				}
			}
			if first == nil || first.Signals == nil || !first.Signals.ProviderFailure {
				t.Fatalf("first caller turn %+v; want ProviderFailure", first)
			}
			if !strings.Contains(speakers(turns), "ai:"+tc.wantSaid) {
				t.Errorf("turns %q lack the fallback %q", speakers(turns), tc.wantSaid)
			}
		})
	}
}

// lastMarkIndex is the sentence number of the fallback reply's last mark.
func lastMarkIndex(failTTS string) string {
	if failTTS != "" {
		return "2" // the failed sentence has no mark; the working one is the second
	}
	return "1"
}

func TestNoiseIsNotATurn(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{{say: []string{"Bye."}, result: Result{EndCall: true}}}}
	tr := &fakeTranscriber{results: []fakeResult{{text: ""}, {text: "hello", conf: 0.7}}}
	leg := newFakeLeg(markEchoed("1.1"), speak(400), pause(1500), speak(400))
	h := newHarness(t, Config{}, leg, tr, conv)
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	inputs, _, _, _ := conv.snapshot()
	if len(inputs) != 1 || inputs[0].Text != "hello" {
		t.Errorf("inputs %+v", inputs)
	}
	if s := h.sess.Stats(); s.Noise != 1 || s.Utterances != 2 {
		t.Errorf("stats %+v", s)
	}
	if got := speakers(h.sess.Turns()); got != "ai:Hi. | caller:hello | ai:Bye." {
		t.Errorf("turns %q", got)
	}
}

func TestLegEnds(t *testing.T) {
	tests := []struct {
		name   string
		end    step
		reason Reason
		err    bool
	}{
		{name: "caller hangs up", end: step{hangup: true}, reason: ReasonCallerHangup},
		{name: "connection drops", end: step{drop: true}, reason: ReasonDropped, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConv{
				greeting: []string{"Hi."},
				gate:     make(chan struct{}),
				replies:  []reply{{say: []string{"One moment.", "Still working."}, gateAfter: 1}},
			}
			tr := &fakeTranscriber{results: []fakeResult{{text: "hello", conf: 0.9}}}
			leg := newFakeLeg(markEchoed("1.1"), speak(400), markEchoed("2.1"), tc.end)
			h := newHarness(t, Config{}, leg, tr, conv)
			out, err := h.run()
			if out.Reason != tc.reason || (err != nil) != tc.err || out.HungUp {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			if got := speakers(h.sess.Turns()); got != "ai:Hi. | caller:hello | ai:One moment." {
				t.Errorf("turns kept %q", got)
			}
			if _, _, cancelled, _ := conv.snapshot(); cancelled != 1 {
				t.Errorf("the responder turn was not cancelled at teardown")
			}
		})
	}
}

func TestHandOff(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{{say: []string{"Let me get someone."}, result: Result{WantsHuman: true, Confidence: 0.2}}}}
	tr := &fakeTranscriber{results: []fakeResult{{text: "agent please", conf: 0.9}}}
	leg := newFakeLeg(markEchoed("1.1"), speak(400))
	h := newHarness(t, Config{}, leg, tr, conv)
	var got parley.Signals
	h.sess.hooks.OnResult = func(r Result, s parley.Signals) Action {
		got = s
		if r.WantsHuman {
			return ActionHandOff
		}
		return ActionContinue
	}
	out, err := h.run()
	if err != nil || out.Reason != ReasonHandOff || out.HungUp || out.CallOutcome() != parley.OutcomeEscalated {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if !got.AskedForHuman || got.NLUConfidence != 0.2 {
		t.Errorf("signals given to OnResult %+v", got)
	}
	if _, _, _, hangups, _, _ := leg.snapshot(); len(hangups) != 0 {
		t.Errorf("hung up on a hand-off: %v", hangups)
	}
	if l := "Let me get someone."; leg.samplesOf(h.syn.id(l)) != h.syn.samples(l) {
		t.Error("the hand-off sentence did not play before Run returned")
	}
}

func TestCloseAndMaxDuration(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi."}}
	leg := newFakeLeg()
	h := newHarness(t, Config{MaxCallDuration: 300 * time.Millisecond}, leg, &fakeTranscriber{}, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonMaxDuration || !out.HungUp {
		t.Fatalf("outcome %+v, %v", out, err)
	}

	leg2 := newFakeLeg()
	h2 := newHarness(t, Config{}, leg2, &fakeTranscriber{}, &fakeConv{greeting: []string{"Hi."}})
	go func() {
		time.Sleep(100 * time.Millisecond)
		h2.sess.Close()
		h2.sess.Close()
	}()
	if out, err := h2.run(); err != nil || out.Reason != ReasonCancelled {
		t.Fatalf("outcome after Close %+v, %v", out, err)
	}
	if _, err := h2.sess.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestConverseWithTheOwnersReader(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi there."}}
	leg := newFakeLeg(markEchoed("1.1"), step{hangup: true})
	h := newHarness(t, Config{}, leg, &fakeTranscriber{}, conv)
	h.syn.rate = 16000 // the synthesizer's rate differs from the leg's
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		h.sess.LegDone(leg.Run(ctx, h.sess))
	}()
	out, err := h.sess.Converse(ctx)
	<-readerDone
	if err != nil || out.Reason != ReasonCallerHangup || out.HungUp {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	// 2 words of 60 ms at 16 kHz become 960 samples at 8 kHz, sent as six
	// whole frames.
	if _, _, _, _, _, n := leg.snapshot(); n != 960 {
		t.Errorf("%d samples sent, want 960 (resampled to the leg rate)", n)
	}
	if got := speakers(h.sess.Turns()); got != "ai:Hi there." {
		t.Errorf("turns %q", got)
	}
}

func TestSpeakingOverTheGoodbyeKeepsTheCall(t *testing.T) {
	bye := "Thanks for calling, goodbye and have a wonderful day, we will be here whenever you need us again."
	conv := &fakeConv{
		greeting: []string{"Hi."},
		replies: []reply{
			{say: []string{bye}, result: Result{EndCall: true}},
			{say: []string{"Of course, what else?"}},
			{say: []string{"Bye now."}, result: Result{EndCall: true}},
		},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "thanks", conf: 0.9}, {text: "wait one more thing", conf: 0.9}, {text: "nothing", conf: 0.9}}}
	var h *harness
	leg := newFakeLeg(markEchoed("1.1"), speak(400),
		waitFor("the goodbye playing", func(l *fakeLeg) bool { return l.samplesOf(h.syn.id(bye)) > 1600 }),
		speak(700), markEchoed("3.1"), speak(400))
	h = newHarness(t, Config{}, leg, tr, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	inputs, heard, _, _ := conv.snapshot()
	if len(inputs) != 3 || inputs[1].Text != "wait one more thing" || len(heard) != 1 {
		t.Errorf("inputs %+v heard %q", inputs, heard)
	}
	if _, _, _, hangups, _, _ := leg.snapshot(); len(hangups) != 1 {
		t.Errorf("hang-ups %v", hangups)
	}
}

func TestSlowReplyGetsAFiller(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Hi."},
		gate:     make(chan struct{}),
		replies:  []reply{{say: []string{"", "Found it, goodbye."}, gateAfter: 1, result: Result{EndCall: true}}},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "find my order", conf: 0.9}}}
	var h *harness
	leg := newFakeLeg(markEchoed("1.1"), speak(400),
		waitFor("the filler", func(l *fakeLeg) bool { return l.samplesOf(h.syn.id(DefaultFiller)) > 0 }),
		step{do: func(parley.LegHandler) { close(conv.gate) }})
	h = newHarness(t, Config{FillerAfter: 200 * time.Millisecond}, leg, tr, conv)
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	want := []int{h.syn.id("Hi."), h.syn.id(DefaultFiller), h.syn.id("Found it, goodbye.")}
	if got := leg.voiceIDs(); !equalInts(got, want) {
		t.Errorf("played %v, want greeting, filler, reply %v", got, want)
	}
	if got := speakers(h.sess.Turns()); got != "ai:Hi. | caller:find my order | ai:Found it, goodbye." {
		t.Errorf("turns %q: the filler must not be part of the reply", got)
	}
	if s := h.sess.Stats(); s.Fillers != 1 {
		t.Errorf("stats %+v", s)
	}
}

// pcmStep feeds recorded audio, one 20 ms frame per tick.
func pcmStep(pcm []int16) step {
	return step{pcm: pcm}
}

// TestRealSpeechBargesInAndIsTranscribedWhole drives the Session with
// recorded speech (flite, 8 kHz, from the media package's test data) over
// the AI's reply: the endpointer must find it, it must barge in, and the
// recognizer must get the whole utterance with its pre-roll.
func TestRealSpeechBargesInAndIsTranscribedWhole(t *testing.T) {
	order, rate, err := media.ReadWAVFile("../media/testdata/speech_order_8k.wav")
	if err != nil || rate != testRate {
		t.Fatalf("test speech: %v (rate %d)", err, rate)
	}
	first, last := -1, 0
	for i, v := range order {
		if v > 1000 || v < -1000 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	long := strings.Repeat("here is a long list of things you could ask me about ", 6) + "done."
	conv := &fakeConv{
		greeting: []string{long},
		replies:  []reply{{say: []string{"Let me look that up."}, result: Result{EndCall: true}}},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "hello i would like to check the status of my order please", conf: 0.8}}}
	leg := newFakeLeg(
		waitFor("the greeting playing", func(l *fakeLeg) bool { return l.samplesOf(1) > 2400 }),
		pcmStep(order), pause(300))
	h := newHarness(t, Config{}, leg, tr, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if s := h.sess.Stats(); s.BargeIns != 1 || s.Utterances != 1 {
		t.Errorf("stats %+v; want one utterance that barged in", s)
	}
	inputs, heard, _, _ := conv.snapshot()
	if len(inputs) != 1 || len(heard) != 1 || heard[0] == "" || len(heard[0]) >= len(strings.TrimSpace(long)) {
		t.Errorf("inputs %+v heard %q", inputs, heard)
	}
	// Speech span + end silence, plus at least 200 ms of pre-roll, at 16 kHz.
	_, _, _, samples := tr.counts()
	want := 2 * (last - first + 700*testRate/1000 + 200*testRate/1000)
	if len(samples) != 1 || samples[0] < want {
		t.Errorf("recognizer got %v samples, want at least %d", samples, want)
	}
}

func TestMaxUtteranceForcesTheEndOfATurn(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Hi."},
		replies: []reply{
			{say: []string{"Go on."}, result: Result{EndCall: true}},
			{say: []string{"Thanks, bye."}, result: Result{EndCall: true}},
		},
	}
	tr := &fakeTranscriber{results: []fakeResult{{text: "a very long story", conf: 0.9}, {text: "and the rest", conf: 0.9}}}
	inputsWhileSpeaking := -1
	// 1.8 s of speech: the first turn is cut at 1 s, the rest (about
	// 0.6 s, too short to be cut again) is the second.
	leg := newFakeLeg(markEchoed("1.1"), speak(1800), step{do: func(parley.LegHandler) {
		conv.mu.Lock()
		inputsWhileSpeaking = len(conv.inputs)
		conv.mu.Unlock()
	}})
	h := newHarness(t, Config{MaxUtterance: time.Second}, leg, tr, conv)
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if inputsWhileSpeaking < 1 {
		t.Errorf("no turn ended while the caller was still speaking (MaxUtterance ignored)")
	}
	if inputs, _, _, _ := conv.snapshot(); len(inputs) != 2 || inputs[1].Text != "and the rest" {
		t.Errorf("inputs %+v", inputs)
	}
}

func TestKeyToneInTheAudioIsNotSpeech(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{{say: []string{"Option five, goodbye."}, result: Result{EndCall: true}}}}
	tr := &fakeTranscriber{results: []fakeResult{{text: "five", conf: 0.3}}}
	// Twilio reports the key and its tone also reaches the audio.
	leg := newFakeLeg(markEchoed("1.1"), key('5'), speak(400))
	h := newHarness(t, Config{InterDigitTimeout: 300 * time.Millisecond}, leg, tr, conv)
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	inputs, _, _, _ := conv.snapshot()
	if len(inputs) != 1 || inputs[0].Kind != InputDTMF || inputs[0].Digits != "5" {
		t.Errorf("inputs %+v; want only the key", inputs)
	}
	if s := h.sess.Stats(); s.BargeIns != 0 {
		t.Errorf("the key tone barged in: %+v", s)
	}
}

// A key pressed while the greeting is still being synthesized (a slow,
// uncancellable synthesis) still reaches the conversation, and a hand-off
// it causes ends the session even though the caller keeps talking.
func TestKeyDuringSlowGreetingThenHandOffWhileTalking(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Thanks for calling.", "How can I help you today?"},
		replies:  []reply{{say: []string{"Connecting you."}, result: Result{WantsHuman: true, Confidence: 1}}},
	}
	leg := newFakeLeg(pause(200), key('0'), pause(100), speak(6000))
	h := newHarness(t, Config{InterDigitTimeout: 300 * time.Millisecond}, leg, &fakeTranscriber{}, conv)
	h.syn.onCall = func(text string) {
		if text == "How can I help you today?" {
			time.Sleep(800 * time.Millisecond) // synthesis that does not look at its context
		}
	}
	h.sess.hooks.OnResult = func(r Result, s parley.Signals) Action {
		if r.WantsHuman {
			return ActionHandOff
		}
		return ActionContinue
	}
	start := time.Now()
	out, err := h.run()
	if err != nil || out.Reason != ReasonHandOff {
		t.Fatalf("outcome %+v, %v after %v", out, err, time.Since(start))
	}
	if got := speakers(h.sess.Turns()); !strings.Contains(got, "caller:") {
		t.Fatalf("the keypad turn was lost: %q", got)
	}
}

// TestKeyWhileTheRecognizerFallsBehind: when recognition is slower than
// the audio arrives (a starved CPU: here 30 ms of work per 20 ms frame),
// the loop still takes keys, turn results and timers between bounded
// batches of frames. It used to drain its audio buffer before anything
// else, which never ended while the caller talked: the caller's 0 went
// unanswered for as long as they spoke (8 calls stuck for good in a
// 300-call burst on a saturated machine).
func TestKeyWhileTheRecognizerFallsBehind(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Hi."},
		replies:  []reply{{say: []string{"Connecting you."}, result: Result{WantsHuman: true, Confidence: 1}}},
	}
	const talk = 8000 // ms the caller goes on talking after the key
	leg := newFakeLeg(speak(600), key('0'), speak(talk))
	tr := &fakeTranscriber{writeDelay: 30 * time.Millisecond}
	h := newHarness(t, Config{InterDigitTimeout: 200 * time.Millisecond}, leg, tr, conv)
	h.sess.hooks.OnResult = func(r Result, s parley.Signals) Action {
		if r.WantsHuman {
			return ActionHandOff
		}
		return ActionContinue
	}
	out, err := h.run()
	if err != nil || out.Reason != ReasonHandOff {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	leg.mu.Lock()
	ticks := leg.ticks
	leg.mu.Unlock()
	if all := (600 + talk) / 20; ticks >= all {
		t.Fatalf("the key was answered after the caller's %d frames of speech (%d frames sent), want while they talked", all, ticks)
	}
	inputs, _, _, _ := conv.snapshot()
	if len(inputs) == 0 || inputs[0].Kind != InputDTMF || inputs[0].Digits != "0" {
		t.Fatalf("inputs %+v, want the key 0 first", inputs)
	}
}

// A caller who hangs up while the AI speaks may break the writes before
// the reader has read their hang-up: it is still a hang-up, not a drop.
func TestHangupSeenAfterAFailedWriteIsAHangup(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hello, this is parley, and this greeting goes on for quite a while so the caller hangs up over it."}}
	tr := &fakeTranscriber{}
	leg := newFakeLeg(pause(300), step{lateHangup: 300 * time.Millisecond})
	h := newHarness(t, Config{}, leg, tr, conv)
	out, err := h.run()
	if err != nil || out.Reason != ReasonCallerHangup {
		t.Fatalf("outcome %+v, %v; want caller_hangup", out, err)
	}
}

// babble is a caller who talks on and on with only micro-pauses: bursts of
// speech separated by pauses longer than EarlyEndSilence and shorter than
// EndSilence.
func babble(bursts, speechMS, pauseMS int) []step {
	var s []step
	for range bursts {
		s = append(s, speak(speechMS), pause(pauseMS))
	}
	return s
}

// sameText gives n streams the same transcript.
func sameText(n int, text string) []fakeResult {
	r := make([]fakeResult, n)
	for i := range r {
		r[i] = fakeResult{text: text, conf: 0.8}
	}
	return r
}

// The '0' pressed during a greeting whose synthesis is stuck waits for
// that turn to return; the caller then talks without real pauses, and a
// part of their speech that ended early (a complete-looking hypothesis at
// a micro-pause) waits behind it too. The key press must still reach the
// conversation (the hand-off it asks for ends the session) and the words
// must be recorded.
func TestKeyDuringStuckGreetingSurvivesSpeechThatEndsEarly(t *testing.T) {
	conv := &fakeConv{
		greeting: []string{"Thanks for calling.", "How can I help you today?"},
		replies:  []reply{{say: []string{"Connecting you."}, result: Result{Confidence: 1}}},
	}
	tr := &fakeTranscriber{partial: "I need to talk to someone", results: sameText(100, "I need to talk to someone")}
	gate := make(chan struct{})
	var h *harness
	script := []step{pause(200), key('0'), pause(600)}
	script = append(script, babble(2, 800, 400)...)
	// The greeting is still stuck once the caller's first words ended
	// early and were continued (a second speech start).
	script = append(script, waitFor("speech continued after an early end", func(*fakeLeg) bool {
		return h.count(EventSpeechStart) >= 2
	}), step{do: func(parley.LegHandler) { close(gate) }})
	script = append(script, babble(12, 800, 400)...)
	leg := newFakeLeg(append(script, step{hangup: true})...)
	h = newHarness(t, Config{InterDigitTimeout: 300 * time.Millisecond}, leg, tr, conv)
	h.syn.onCall = func(text string) {
		if text == "How can I help you today?" {
			<-gate // synthesis that does not look at its context
		}
	}
	// Only the '0' asks for a person (as the server's router decides).
	h.sess.hooks.OnResult = func(r Result, s parley.Signals) Action {
		if s.AskedForHuman {
			return ActionHandOff
		}
		return ActionContinue
	}
	out, err := h.run()
	inputs, _, _, _ := conv.snapshot()
	if err != nil || out.Reason != ReasonHandOff {
		t.Fatalf("outcome %+v, %v; inputs %+v; turns %q", out, err, inputs, speakers(h.sess.Turns()))
	}
	if len(inputs) == 0 || inputs[0].Kind != InputDTMF || inputs[0].Digits != "0" {
		t.Errorf("the key press did not reach the conversation first: %+v", inputs)
	}
	got := speakers(h.sess.Turns())
	if !strings.Contains(got, "caller:#0") || !strings.Contains(got, "caller:I need to talk to someone") {
		t.Errorf("turns %q; want the key and the caller's words", got)
	}
	if strings.Contains(got, "ai:I am not sure.") {
		t.Errorf("turns %q; the AI answered after the transfer announcement", got)
	}
}

// A caller who talks on with only micro-pauses, each ending their words
// early (a complete-looking hypothesis) and continuing them before the
// slow reply is heard, still gets turns: MaxUtterance bounds the whole
// caller turn, its continued parts included, so the conversation hears
// the caller and the words are recorded rather than merged forever.
func TestCallerTalkingWithoutPauseStillGetsTurns(t *testing.T) {
	conv := &fakeConv{greeting: []string{"Hi."}}
	tr := &fakeTranscriber{partial: "I need help", results: sameText(200, "I need help")}
	script := []step{markEchoed("1.1")}
	script = append(script, babble(14, 700, 400)...)
	// Recorded while the caller is still talking.
	callerTurns := -1
	var h *harness
	script = append(script, step{do: func(parley.LegHandler) {
		callerTurns = 0
		for _, tn := range h.sess.Turns() {
			if tn.Speaker == parley.SpeakerCaller {
				callerTurns++
			}
		}
	}}, step{hangup: true})
	leg := newFakeLeg(script...)
	h = newHarness(t, Config{MaxUtterance: 3 * time.Second}, leg, tr, conv)
	h.syn.onCall = func(text string) {
		if text == "I am not sure." {
			time.Sleep(time.Second) // a starved synthesizer: no audio before the caller goes on
		}
	}
	if _, err := h.run(); err != nil {
		t.Fatal(err)
	}
	if callerTurns < 2 {
		t.Errorf("%d caller turns recorded in 15 s of speech with MaxUtterance 3 s: %q", callerTurns, speakers(h.sess.Turns()))
	}
}

// A caller continues words that ended early while no decoder is free for
// the continuation (the pool ran dry): the words already recognized are
// still the caller's turn, recorded and answered, not an "I did not
// understand".
func TestContinuationWithoutDecoderKeepsTheEarlierWords(t *testing.T) {
	// The first reply is dropped when the caller goes on (merged turn).
	answer := reply{say: []string{"Sure, your balance."}, result: Result{EndCall: true}}
	conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{answer, answer}}
	tr := &fakeTranscriber{partial: "my balance please", results: sameText(10, "my balance please"), freeStarts: 1}
	leg := newFakeLeg(markEchoed("1.1"), speak(800), pause(400), speak(1500), pause(8000), step{hangup: true})
	h := newHarness(t, Config{}, leg, tr, conv)
	h.syn.onCall = func(text string) {
		if text == "Sure, your balance." {
			time.Sleep(time.Second) // no audio before the caller goes on
		}
	}
	if out, err := h.run(); err != nil || out.Reason != ReasonAIEnded {
		t.Fatalf("outcome %+v, %v; turns %q", out, err, speakers(h.sess.Turns()))
	}
	got := speakers(h.sess.Turns())
	if !strings.Contains(got, "caller:my balance please") || strings.Contains(got, "ai:"+DefaultNotUnderstood) {
		t.Errorf("turns %q; want the earlier words answered", got)
	}
	if inputs, _, _, _ := conv.snapshot(); len(inputs) == 0 || inputs[len(inputs)-1].Text != "my balance please" {
		t.Errorf("inputs %+v", inputs)
	}
}
