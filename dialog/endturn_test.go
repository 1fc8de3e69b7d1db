package dialog

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-ai/parley/media"
)

// fedAudio is the audio a stream got, at the fake transcriber's 16 kHz.
func fedAudio(samples int) time.Duration {
	return time.Duration(samples) * time.Second / 16000
}

// TestEarlyEndOfTurn checks when a caller turn ends, by the audio its
// recognizer stream was fed (the endpointer runs on the audio's own frame
// clock, so this does not depend on how fast the machine is): a partial
// hypothesis that reads as complete ends the turn at EarlyEndSilence,
// anything else waits for the mode's full end silence.
func TestEarlyEndOfTurn(t *testing.T) {
	const speechMS = 600
	tests := []struct {
		name    string
		digits  bool   // the first reply asks for digits
		partial string // the measured utterance's partial hypothesis ("" = no Partial)
		early   time.Duration
		want    time.Duration // trailing silence that should end the turn
	}{
		{name: "complete", partial: "how do i activate my card", want: 300 * time.Millisecond},
		{name: "ends in a continuation", partial: "how do i activate my", want: 700 * time.Millisecond},
		{name: "only a filler", partial: "um", want: 700 * time.Millisecond},
		{name: "stream without partials", partial: "", want: 700 * time.Millisecond},
		{name: "early end disabled", partial: "how do i activate my card", early: -1, want: 700 * time.Millisecond},
		{name: "four digits", digits: true, partial: "four one two seven", want: 600 * time.Millisecond},
		{name: "three digits", digits: true, partial: "four one two", want: 1600 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conv := &fakeConv{greeting: []string{"Hi."}}
			tr := &fakeTranscriber{}
			var script []step
			if tc.digits {
				conv.replies = []reply{{say: []string{"Your account number?"}, result: Result{Expect: ModeDigits}}, {say: []string{"Thanks."}}}
				tr.results = []fakeResult{{text: "my balance"}, {text: "four one two seven"}}
				tr.partials = []string{"", tc.partial}
				script = []step{markEchoed("1.1"), speak(speechMS), markEchoed("2.1"), pause(600), speak(speechMS), markEchoed("3.1")}
			} else {
				conv.replies = []reply{{say: []string{"Sure."}}}
				tr.results = []fakeResult{{text: "how do i activate my card"}}
				tr.partials = []string{tc.partial}
				script = []step{markEchoed("1.1"), pause(600), speak(speechMS), markEchoed("2.1")}
			}
			h := newHarness(t, Config{EarlyEndSilence: tc.early}, newFakeLeg(append(script, step{hangup: true})...), tr, conv)
			if _, err := h.run(); err != nil {
				t.Fatal(err)
			}
			_, _, finished, samples := tr.counts()
			if finished != len(tr.results) {
				t.Fatalf("%d streams finished, want %d", finished, len(tr.results))
			}
			// The stream got the pre-roll (PreRoll + 2*MinSpeech, of which
			// up to MinSpeech is speech), the speech and the trailing
			// silence up to the end of the turn.
			fed := fedAudio(samples[len(samples)-1])
			lo := speechMS*time.Millisecond + tc.want + DefaultPreRoll
			hi := lo + 3*media.DefaultMinSpeech
			if fed < lo || fed > hi {
				t.Errorf("stream fed %v of audio, want %v..%v (turn ending after %v of silence)", fed, lo, hi, tc.want)
			}
			inputs, _, _, _ := conv.snapshot()
			if len(inputs) != len(tr.results) {
				t.Errorf("responder got %d inputs, want %d", len(inputs), len(tr.results))
			}
		})
	}
}

// TestEarlyEndThenMoreSpeech covers a caller who goes on speaking after a
// turn ended early. Before the reply plays, the reply is dropped and the
// words join the same caller turn (one turn, both parts' text, the first
// part's start); with an incomplete partial the pause never ended the turn
// at all; once the reply plays, the new speech is an ordinary barge-in.
func TestEarlyEndThenMoreSpeech(t *testing.T) {
	t.Run("merged before the reply plays", func(t *testing.T) {
		t.Parallel()
		conv := &fakeConv{
			greeting: []string{"Hi."},
			replies:  []reply{{holdFirst: true, say: []string{"About your card."}}, {say: []string{"Let me check the decline."}}},
		}
		tr := &fakeTranscriber{
			results:  []fakeResult{{text: "my card", conf: 0.9}, {text: "was declined", conf: 0.6}},
			partials: []string{"my card", "my card was declined"},
		}
		leg := newFakeLeg(markEchoed("1.1"), speak(600), pause(400), speak(600), markEchoed("3.1"), step{hangup: true})
		h := newHarness(t, Config{}, leg, tr, conv)
		if _, err := h.run(); err != nil {
			t.Fatal(err)
		}
		if _, _, finished, _ := tr.counts(); finished != 2 {
			t.Fatalf("%d streams finished, want 2 (the early part and its continuation)", finished)
		}
		inputs, heard, _, _ := conv.snapshot()
		if len(inputs) != 2 || inputs[0].Text != "my card" || inputs[1].Text != "my card was declined" {
			t.Fatalf("responder inputs %+v, want the first part, then the whole turn", inputs)
		}
		if len(heard) != 1 || heard[0] != "" {
			t.Errorf("Heard %q, want one empty (the dropped reply never played)", heard)
		}
		turns := h.sess.Turns()
		want := "ai:Hi. | caller:my card was declined | ai:Let me check the decline."
		if got := speakers(turns); got != want {
			t.Fatalf("turns %q\nwant  %q", got, want)
		}
		c := turns[1]
		if !(c.Start.Before(c.EndOfSpeech) && c.EndOfSpeech.Before(c.End) && c.End.Before(c.FirstAudio)) {
			t.Errorf("caller turn times out of order: %+v", c)
		}
		if c.Signals == nil || c.Signals.ASRConfidence < 0.6 || c.Signals.ASRConfidence > 0.9 {
			t.Errorf("merged turn signals %+v, want a confidence between the parts'", c.Signals)
		}
		if got := leg.voiceIDs(); !equalInts(got, []int{h.syn.id("Hi."), h.syn.id("Let me check the decline.")}) {
			t.Errorf("sentences played %v: the dropped reply must not be heard", got)
		}
		if _, _, clears, _, _, _ := leg.snapshot(); len(clears) != 0 {
			t.Errorf("%d clears: nothing had been played, so nothing to clear", len(clears))
		}
		if n := h.count(EventBargeIn); n != 0 {
			t.Errorf("%d barge-ins, want none", n)
		}
		if st := h.sess.Stats(); st.Utterances != 1 || st.BargeIns != 0 {
			t.Errorf("stats %+v, want one utterance", st)
		}
	})

	t.Run("incomplete partial keeps the turn open", func(t *testing.T) {
		t.Parallel()
		conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{{say: []string{"Let me check the decline."}}}}
		tr := &fakeTranscriber{results: []fakeResult{{text: "my card was declined"}}, partials: []string{"my card was"}}
		leg := newFakeLeg(markEchoed("1.1"), speak(600), pause(400), speak(600), markEchoed("2.1"), step{hangup: true})
		h := newHarness(t, Config{}, leg, tr, conv)
		if _, err := h.run(); err != nil {
			t.Fatal(err)
		}
		if _, _, finished, _ := tr.counts(); finished != 1 {
			t.Fatalf("%d streams finished, want 1", finished)
		}
		inputs, heard, _, _ := conv.snapshot()
		if len(inputs) != 1 || inputs[0].Text != "my card was declined" || len(heard) != 0 {
			t.Fatalf("inputs %+v heard %q", inputs, heard)
		}
		if n := h.count(EventSpeechEnd); n != 1 {
			t.Errorf("%d speech ends, want 1", n)
		}
	})

	t.Run("reply already playing is a barge-in", func(t *testing.T) {
		t.Parallel()
		long := "This is a long answer about your card that goes on and on for quite a while, so the caller hears it start."
		conv := &fakeConv{greeting: []string{"Hi."}, replies: []reply{{say: []string{long}}, {say: []string{"Go on."}}}}
		tr := &fakeTranscriber{
			results:  []fakeResult{{text: "my card"}, {text: "was declined"}},
			partials: []string{"my card", "was declined"},
		}
		// The caller starts again only once the reply is on the wire, and
		// still within EndSilence of their last word.
		var h *harness
		started := waitFor("reply audio", func(l *fakeLeg) bool {
			id := h.syn.id(long)
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, v := range l.out {
				if v != 0 && idOf(v) == id {
					return true
				}
			}
			return false
		})
		leg := newFakeLeg(markEchoed("1.1"), speak(600), started, speak(600), markEchoed("3.1"), step{hangup: true})
		h = newHarness(t, Config{}, leg, tr, conv)
		if _, err := h.run(); err != nil {
			t.Fatal(err)
		}
		inputs, heard, _, _ := conv.snapshot()
		if len(inputs) != 2 || inputs[0].Text != "my card" || inputs[1].Text != "was declined" {
			t.Fatalf("inputs %+v, want two separate turns", inputs)
		}
		if len(heard) != 1 {
			t.Errorf("Heard %q, want the interrupted reply's part", heard)
		}
		if n := h.count(EventBargeIn); n != 1 {
			t.Errorf("%d barge-ins, want 1", n)
		}
		if got := speakers(h.sess.Turns()); len(h.sess.Turns()) != 5 {
			t.Errorf("turns %q, want greeting, two caller turns and two replies", got)
		}
	})
}

// TestLaterSentencesWaitForTheQueue checks that a long reply does not
// synthesize far ahead of what plays: the synthesizer is shared by all
// calls, and its time goes first to replies that have not started.
func TestLaterSentencesWaitForTheQueue(t *testing.T) {
	words := wordsOf
	// 50 words of 60 ms: 3 s each. The third sentence may only start once
	// the queue is down to synthAhead (5 s), so after 1 s has played.
	s1, s2, s3 := "One "+words(49), "Two "+words(49), "Three "+words(49)
	conv := &fakeConv{greeting: []string{s1, s2, s3}}
	leg := newFakeLeg(markEchoed("1.3"), step{hangup: true})
	h := newHarness(t, Config{FillerAfter: -1}, leg, &fakeTranscriber{}, conv)
	var mu sync.Mutex
	playedAt := map[string]int{}
	h.syn.onCall = func(text string) {
		leg.mu.Lock()
		n := len(leg.out)
		leg.mu.Unlock()
		mu.Lock()
		playedAt[text] = n
		mu.Unlock()
	}
	if _, err := h.run(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	sentence := h.syn.samples(s1)
	ahead := int(synthAhead.Seconds() * testRate)
	if playedAt[s2] >= sentence/2 {
		t.Errorf("second sentence waited until %d samples had played; the queue was below synthAhead", playedAt[s2])
	}
	if want := 2*sentence - ahead; playedAt[s3] < want {
		t.Errorf("third sentence synthesized after %d samples played, want at least %d (queue at most synthAhead)", playedAt[s3], want)
	}
	if got := leg.voiceIDs(); !equalInts(got, []int{h.syn.id(s1), h.syn.id(s2), h.syn.id(s3)}) {
		t.Errorf("sentences played %v", got)
	}
}

// wordsOf returns n words and a full stop.
func wordsOf(n int) string {
	return strings.TrimSuffix(strings.Repeat("word ", n), " ") + "."
}
