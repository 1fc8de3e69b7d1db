package switchboard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/redact"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeLeg plays a caller who presses keys once the greeting has played, then hangs up.
type fakeLeg struct {
	info   parley.LegInfo
	keys   string
	mu     sync.Mutex
	frames int
	marks  []string
	h      parley.LegHandler
	marked chan struct{}
	once   sync.Once
}

func (l *fakeLeg) Info() parley.LegInfo { return l.info }
func (l *fakeLeg) SampleRate() int      { return 8000 }
func (l *fakeLeg) WriteFrame([]int16) error {
	l.mu.Lock()
	l.frames++
	l.mu.Unlock()
	return nil
}
func (l *fakeLeg) Mark(name string) error {
	l.mu.Lock()
	l.marks = append(l.marks, name)
	l.mu.Unlock()
	l.once.Do(func() { close(l.marked) })
	return nil
}
func (l *fakeLeg) Clear() error                         { return nil }
func (l *fakeLeg) Hangup(context.Context, string) error { return nil }
func (l *fakeLeg) Run(ctx context.Context, h parley.LegHandler) error {
	silence := make([]int16, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	sent := false
	for i := 0; i < 400; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		h.OnAudio(silence)
		select {
		case <-l.marked:
			if !sent {
				for j := 0; j < len(l.keys); j++ {
					h.OnDTMF(l.keys[j])
				}
				sent = true
			}
		default:
		}
		if sent && i > 0 && i%50 == 0 {
			l.mu.Lock()
			n := len(l.marks)
			l.mu.Unlock()
			if n >= 2 {
				return nil // the caller hangs up after the answer
			}
		}
	}
	return nil
}

type nopTranscriber struct{}

func (nopTranscriber) SampleRate() int { return 16000 }
func (nopTranscriber) Start(context.Context, dialog.Mode) (dialog.TranscribeStream, error) {
	return nopStream{}, nil
}

type nopStream struct{}

func (nopStream) Write([]int16) error                { return nil }
func (nopStream) Finish() (dialog.Transcript, error) { return dialog.Transcript{}, nil }
func (nopStream) Close() error                       { return nil }

type toneSynth struct{}

func (toneSynth) SampleRate() int { return 8000 }
func (toneSynth) Synthesize(_ context.Context, text string, emit func([]int16) error) error {
	return emit(make([]int16, 1600)) // 200 ms per sentence
}

// keypadResponder asks for a person when 0 is pressed, echoing the keys otherwise.
type keypadResponder struct{}

func (keypadResponder) NewConversation(dialog.CallContext) dialog.Conversation { return &keypadConv{} }

type keypadConv struct{}

func (*keypadConv) Greeting(_ context.Context, say func(string) error) error {
	return say("Hello, how can I help?")
}
func (*keypadConv) Respond(_ context.Context, in dialog.Input, say func(string) error) (dialog.Result, error) {
	if in.Digits == "9" {
		return dialog.Result{EndCall: true, Confidence: 1}, say("Goodbye.")
	}
	if in.Digits == "0" {
		return dialog.Result{WantsHuman: true, Confidence: 1}, say("Nobody is here yet.")
	}
	return dialog.Result{Confidence: 1}, say("You pressed " + in.Digits + ".")
}
func (*keypadConv) Heard(string) {}

// memStore records what the switchboard writes.
type memStore struct {
	parley.Store
	mu     sync.Mutex
	calls  map[string]parley.Call
	turns  []parley.Turn
	events []parley.Event
	ended  map[string]parley.Outcome
}

func (m *memStore) CreateCall(_ context.Context, c parley.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[c.ID] = c
	return nil
}
func (m *memStore) AppendTurn(_ context.Context, t parley.Turn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.turns = append(m.turns, t)
	return nil
}
func (m *memStore) AppendEvent(_ context.Context, e parley.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}
func (m *memStore) EndCall(_ context.Context, id string, _ time.Time, o parley.Outcome, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended[id] = o
	return nil
}

func TestHandleRecordsTheCallTurnsAndDecisions(t *testing.T) {
	cases := []struct {
		keys       string
		transfer   bool
		wantDigits string
		outcome    parley.Outcome
	}{
		// Nobody is on duty: the caller would be asked for a voicemail, but hangs up.
		{"0", true, "0", parley.OutcomeAbandoned},
		{"4111111111111111#", false, "[card ••••1111]", parley.OutcomeResolved},
	}
	for _, tc := range cases {
		t.Run(tc.keys, func(t *testing.T) {
			st := &memStore{calls: map[string]parley.Call{}, ended: map[string]parley.Outcome{}}
			sb := New(dialog.Engines{Transcriber: nopTranscriber{}, Responder: keypadResponder{}, Synthesizer: toneSynth{}},
				Options{Store: st, Log: zerolog.Nop(), Redact: redact.New(redact.Policy{}), Session: dialog.Config{InterDigitTimeout: 300 * time.Millisecond}})
			leg := &fakeLeg{info: parley.LegInfo{CallID: "CA1", Channel: parley.ChannelTwilio, From: "+1555"}, keys: tc.keys, marked: make(chan struct{})}
			done := make(chan struct{})
			go func() { sb.Handle(context.Background(), leg); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("call did not end")
			}
			if sb.Active() != 0 {
				t.Fatalf("%d calls still active", sb.Active())
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if _, ok := st.calls["CA1"]; !ok {
				t.Fatal("call not created in the store")
			}
			if st.ended["CA1"] != tc.outcome {
				t.Fatalf("outcome %q", st.ended["CA1"])
			}
			var keyed string
			for _, tu := range st.turns {
				if tu.Speaker == parley.SpeakerCaller {
					keyed = tu.DTMF
				}
			}
			if keyed != tc.wantDigits {
				t.Fatalf("stored keypad turn %q, want %q (turns %+v)", keyed, tc.wantDigits, st.turns)
			}
			var decided bool
			for _, e := range st.events {
				if e.Kind == "decision" {
					decided = true
					if got := string(e.Data); tc.transfer != (len(got) > 0 && contains(got, `"transfer":true`)) {
						t.Fatalf("decision %s, want transfer=%v", got, tc.transfer)
					}
				}
			}
			if !decided {
				t.Fatal("no decision stored")
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
