package dialog

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	want := Config{
		EndSilence: 700 * time.Millisecond, EarlyEndSilence: 300 * time.Millisecond, DigitsEndSilence: 1600 * time.Millisecond, YesNoEndSilence: 500 * time.Millisecond,
		NoInputTimeout: 7 * time.Second, MaxNoInput: 2, BargeInMinSpeech: 300 * time.Millisecond, MaxUtterance: 20 * time.Second,
		PreRoll: 300 * time.Millisecond, InterDigitTimeout: 2 * time.Second, MaxQueue: 20 * time.Second,
		NotUnderstood: DefaultNotUnderstood, Apology: DefaultApology, FillerAfter: 2 * time.Second, Filler: DefaultFiller,
	}
	if c != want {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
	kept := Config{EndSilence: time.Second, MaxNoInput: 3, MaxCallDuration: time.Hour, EarlyEndSilence: -1}.WithDefaults()
	if kept.EndSilence != time.Second || kept.MaxNoInput != 3 || kept.MaxCallDuration != time.Hour || kept.EarlyEndSilence >= 0 {
		t.Errorf("set fields overwritten: %+v", kept)
	}
	for _, tc := range []struct {
		mode Mode
		want time.Duration
	}{{ModeOpen, c.EndSilence}, {ModeDigits, c.DigitsEndSilence}, {ModeYesNo, c.YesNoEndSilence}} {
		if got := c.endSilence(tc.mode); got != tc.want {
			t.Errorf("endSilence(%v) = %v, want %v", tc.mode, got, tc.want)
		}
	}
}

func TestIsBackchannel(t *testing.T) {
	tests := []struct {
		text   string
		expect Mode
		want   bool
	}{
		{"mm hm", ModeOpen, true},
		{"Mm-hm.", ModeOpen, true},
		{"uh huh", ModeOpen, true},
		{"okay", ModeOpen, true},
		{"yeah right", ModeOpen, true},
		{"i see", ModeOpen, true},
		{"got it", ModeOpen, true},
		{"yeah", ModeYesNo, false}, // the answer to a yes/no question
		{"okay", ModeYesNo, false},
		{"hmm", ModeYesNo, true},
		{"", ModeOpen, false},
		{"i", ModeOpen, false},
		{"it", ModeOpen, false},
		{"stop", ModeOpen, false},
		{"yeah but wait", ModeOpen, false},
		{"okay okay okay okay", ModeOpen, false},
		{"no", ModeOpen, false},
	}
	for _, tc := range tests {
		if got := isBackchannel(tc.text, tc.expect); got != tc.want {
			t.Errorf("isBackchannel(%q, %v) = %v, want %v", tc.text, tc.expect, got, tc.want)
		}
	}
}

func TestTurnLooksComplete(t *testing.T) {
	tests := []struct {
		text   string
		expect Mode
		want   bool
	}{
		{"what are your opening hours", ModeOpen, true},
		{"how do I activate my card", ModeOpen, true},
		{"How do I activate my card?", ModeOpen, true},
		{"how do I activate my", ModeOpen, false},
		{"I want to", ModeOpen, false},
		{"my card was declined and", ModeOpen, false},
		{"what is the", ModeOpen, false},
		{"it's because", ModeOpen, false},
		{"can you help me with", ModeOpen, false},
		{"I need um", ModeOpen, false},
		{"uh", ModeOpen, false},
		{"um uh", ModeOpen, false},
		{"", ModeOpen, false},
		{"   ", ModeOpen, false},
		{"my number is four one", ModeOpen, false}, // a number being read out
		{"my number is 41", ModeOpen, false},
		{"thank you", ModeOpen, true},
		{"yes", ModeYesNo, true},
		{"yeah that's right", ModeYesNo, true},
		{"no thanks", ModeYesNo, true},
		{"yes but", ModeYesNo, false},
		{"I think", ModeYesNo, false},
		{"what did you say", ModeYesNo, false},
		{"four one", ModeDigits, false},
		{"four one two", ModeDigits, false},
		{"four one two seven", ModeDigits, true},
		{"one two three oh", ModeDigits, true}, // "oh" is a digit here
		{"4127", ModeDigits, true},
		{"it is four one two seven and", ModeDigits, false},
		{"my account", ModeDigits, false},
	}
	for _, tc := range tests {
		if got := turnLooksComplete(tc.text, tc.expect); got != tc.want {
			t.Errorf("turnLooksComplete(%q, %v) = %v, want %v", tc.text, tc.expect, got, tc.want)
		}
	}
}

func TestJoinTranscripts(t *testing.T) {
	tests := []struct {
		name string
		a, b Transcript
		want Transcript
	}{
		{"both", Transcript{Text: "my card", Confidence: 0.9}, Transcript{Text: "was declined today", Confidence: 0.5},
			Transcript{Text: "my card was declined today", Confidence: 0.66}},
		{"first empty", Transcript{}, Transcript{Text: "hello", Confidence: 0.7}, Transcript{Text: "hello", Confidence: 0.7}},
		{"second empty", Transcript{Text: " hello ", Confidence: 0.7}, Transcript{Confidence: 0.2}, Transcript{Text: "hello", Confidence: 0.7}},
		{"nothing", Transcript{}, Transcript{Confidence: 0.3}, Transcript{Confidence: 0.3}},
		{"words", Transcript{Text: "my card", Confidence: 1, Words: []Word{{Text: "my", End: time.Second}, {Text: "card", Start: time.Second, End: 2 * time.Second}}},
			Transcript{Text: "declined", Confidence: 1, Words: []Word{{Text: "declined", Start: 100 * time.Millisecond, End: time.Second}}},
			Transcript{Text: "my card declined", Confidence: 1, Words: []Word{{Text: "my", End: time.Second}, {Text: "card", Start: time.Second, End: 2 * time.Second},
				{Text: "declined", Start: 2100 * time.Millisecond, End: 3 * time.Second}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := joinTranscripts(tc.a, tc.b)
			if got.Text != tc.want.Text || got.Confidence < tc.want.Confidence-1e-9 || got.Confidence > tc.want.Confidence+1e-9 || len(got.Words) != len(tc.want.Words) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got.Words {
				if got.Words[i] != tc.want.Words[i] {
					t.Fatalf("word %d: got %+v, want %+v", i, got.Words[i], tc.want.Words[i])
				}
			}
		})
	}
}

func TestWordPrefix(t *testing.T) {
	tests := []struct {
		text string
		frac float64
		want string
	}{
		{"one two three four", 1, "one two three four"},
		{"one two three four", 1.5, "one two three four"},
		{"one two three four", 0.5, "one two"},
		{"one two three four", 0.74, "one two"},
		{"one two three four", 0.2, ""},
		{"one two three four", 0, ""},
		{"one two three four", -1, ""},
		{"", 0.5, ""},
	}
	for _, tc := range tests {
		if got := wordPrefix(tc.text, tc.frac); got != tc.want {
			t.Errorf("wordPrefix(%q, %v) = %q, want %q", tc.text, tc.frac, got, tc.want)
		}
	}
}

func TestHeard(t *testing.T) {
	// Three sentences of 4 words, 400 samples each, back to back from 1000;
	// the second one failed to synthesize in some cases (no audio).
	sentences := func(skipSecond bool) []spoken {
		s := []spoken{
			{text: "a b c d", start: 1000, end: 1400, mark: "2.1"},
			{text: "e f g h", start: 1400, end: 1800, mark: "2.2"},
			{text: "i j k l", start: 1800, end: 2200, mark: "2.3"},
		}
		if skipSecond {
			s[1] = spoken{text: "e f g h", start: 1400, end: 1400}
			s[2].start, s[2].end = 1400, 1800
		}
		return s
	}
	tests := []struct {
		name        string
		skipSecond  bool
		heardUpTo   int
		pos         int64
		interrupted bool
		want        string
	}{
		{name: "played out", heardUpTo: 3, pos: 2200, want: "a b c d e f g h i j k l"},
		{name: "not interrupted counts every sentence with audio", heardUpTo: 0, pos: 0, want: "a b c d e f g h i j k l"},
		{name: "cut in the second sentence", heardUpTo: 1, pos: 1600, interrupted: true, want: "a b c d e f"},
		{name: "cut before any audio", heardUpTo: 0, pos: 1000, interrupted: true, want: ""},
		{name: "first sentence handed but its mark still pending", heardUpTo: 0, pos: 1450, interrupted: true, want: "a b c d"},
		{name: "mark beats position", heardUpTo: 2, pos: 1500, interrupted: true, want: "a b c d e f g h"},
		{name: "skipped sentence is not heard", skipSecond: true, heardUpTo: 1, pos: 1700, interrupted: true, want: "a b c d i j k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ai := &aiTurn{sentences: sentences(tc.skipSecond), heardUpTo: tc.heardUpTo}
			heard, full := ai.heard(tc.pos, tc.interrupted)
			if heard != tc.want {
				t.Errorf("heard %q, want %q", heard, tc.want)
			}
			if full != "a b c d e f g h i j k l" {
				t.Errorf("full %q", full)
			}
		})
	}
}

func TestMarksAfterClearDoNotCount(t *testing.T) {
	s := NewSession(Config{}, newFakeLeg(), Engines{}, Hooks{}, zerolog.Nop())
	ai := &aiTurn{sentences: []spoken{{text: "a", start: 0, end: 10, mark: "1.1"}, {text: "b", start: 10, end: 20, mark: "1.2"}}}
	s.cur = ai
	s.OnMark("1.1")
	s.OnMark("unknown")
	if ai.heardUpTo != 1 {
		t.Fatalf("heardUpTo %d after the first mark", ai.heardUpTo)
	}
	ai.cleared = true // a barge-in cleared the playout
	s.OnMark("1.2")   // Twilio echoes pending marks at clear
	if ai.heardUpTo != 1 {
		t.Errorf("a mark echoed after the clear counted as heard")
	}
}

func TestSampleRing(t *testing.T) {
	var q sampleRing
	q.init(10)
	frame := make([]int16, 4)
	if q.read(frame) {
		t.Fatal("read from an empty ring")
	}
	if !q.write([]int16{1, 2, 3}) || !q.write([]int16{4, 5, 6, 7, 8}) {
		t.Fatal("write refused with room")
	}
	if q.write([]int16{9, 10, 11}) {
		t.Fatal("write accepted beyond capacity")
	}
	if !q.read(frame) || frame[0] != 1 || frame[3] != 4 {
		t.Fatalf("read %v", frame)
	}
	if !q.write([]int16{9, 10, 11, 12, 13}) { // wraps
		t.Fatal("write refused after a read")
	}
	var got []int16
	for q.read(frame) {
		got = append(got, frame...)
	}
	want := []int16{5, 6, 7, 8, 9, 10, 11, 12}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if q.n != 1 {
		t.Errorf("%d samples left, want 1 (13)", q.n)
	}
}

func TestPreRoll(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		pushes [][]int16
		tail   int // samples asked for; -1 for all
		want   []int16
	}{
		{name: "partly filled", size: 5, pushes: [][]int16{{1, 2}}, tail: -1, want: []int16{1, 2}},
		{name: "wrapped", size: 5, pushes: [][]int16{{1, 2, 3}, {4, 5, 6}}, tail: -1, want: []int16{2, 3, 4, 5, 6}},
		{name: "frame longer than the ring", size: 3, pushes: [][]int16{{1}, {2, 3, 4, 5, 6}}, tail: -1, want: []int16{4, 5, 6}},
		{name: "exactly full", size: 4, pushes: [][]int16{{1, 2}, {3, 4}}, tail: -1, want: []int16{1, 2, 3, 4}},
		{name: "tail within", size: 5, pushes: [][]int16{{1, 2, 3}, {4}}, tail: 2, want: []int16{3, 4}},
		{name: "tail across the wrap", size: 5, pushes: [][]int16{{1, 2, 3}, {4, 5, 6, 7}}, tail: 4, want: []int16{4, 5, 6, 7}},
		{name: "tail after the wrap", size: 5, pushes: [][]int16{{1, 2, 3}, {4, 5, 6, 7}}, tail: 2, want: []int16{6, 7}},
		{name: "tail longer than held", size: 5, pushes: [][]int16{{1, 2}}, tail: 9, want: []int16{1, 2}},
		{name: "tail of nothing", size: 5, pushes: [][]int16{{1, 2}}, tail: 0, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPreRoll(tc.size)
			for _, f := range tc.pushes {
				p.push(f)
			}
			var got []int16
			p.tail(tc.tail, func(s []int16) { got = append(got, s...) })
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			p.reset()
			got = got[:0]
			p.tail(-1, func(s []int16) { got = append(got, s...) })
			if len(got) != 0 {
				t.Errorf("after reset: %v", got)
			}
		})
	}
}

func TestOutcomeMapping(t *testing.T) {
	for r, want := range map[Reason]string{
		ReasonCallerHangup: "resolved", ReasonAIEnded: "resolved", ReasonNoInput: "resolved",
		ReasonHandOff: "escalated", ReasonDropped: "dropped", ReasonCancelled: "failed", ReasonMaxDuration: "failed",
	} {
		if got := string(Outcome{Reason: r}.CallOutcome()); got != want {
			t.Errorf("%s → %s, want %s", r, got, want)
		}
	}
}

// BenchmarkOnAudio is the leg reader's per-frame cost: copy into the ring
// and wake the loop. It must not allocate.
func BenchmarkOnAudio(b *testing.B) {
	s := NewSession(Config{}, newFakeLeg(), Engines{}, Hooks{}, zerolog.Nop())
	frame := speechFrame(3)
	out := make([]int16, len(frame))
	b.ReportAllocs()
	for b.Loop() {
		s.OnAudio(frame)
		s.in.read(out) // the dialog loop's side
		select {
		case <-s.audioCh:
		default:
		}
	}
}

// BenchmarkDialogFrame is the dialog loop's per-frame cost while the
// caller speaks: pre-roll, endpointer, resampling 8→16 kHz and the
// recognizer write. It must not allocate in steady state.
func BenchmarkDialogFrame(b *testing.B) {
	tr := &fakeTranscriber{rate: 16000}
	s := NewSession(Config{MaxUtterance: time.Duration(1<<62 - 1)}, newFakeLeg(), Engines{Transcriber: tr, Synthesizer: newFakeSynth()}, Hooks{}, zerolog.Nop())
	l := newLoop(b.Context(), s)
	frames := make([][]int16, 50)
	for i := range frames {
		frames[i] = speechFrame(i)
	}
	now := time.Now()
	for i := 0; i < 100; i++ { // warm up: speech starts, buffers reach their size
		copy(l.frame, frames[i%len(frames)])
		l.onFrame(now)
	}
	if !l.inUtt {
		b.Fatal("the synthetic talker did not start an utterance")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(l.frame, frames[i%len(frames)])
		i++
		l.onFrame(now)
	}
}
