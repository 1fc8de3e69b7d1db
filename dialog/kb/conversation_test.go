package kb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/kb/nlu"
)

func speech(text string) dialog.Input {
	return dialog.Input{Kind: dialog.InputSpeech, Text: text, Confidence: 0.9}
}
func keys(d string) dialog.Input { return dialog.Input{Kind: dialog.InputDTMF, Digits: d} }

var silence = dialog.Input{Kind: dialog.InputSilence}

// step is one caller turn of a scripted dialog and what must come back.
type step struct {
	in     dialog.Input
	say    []string // substrings the reply must contain, in order
	intent string   // Result.Intent; "-" means it must be empty, "" is not checked
	expect dialog.Mode
	flags  outcome
	// repeats is the expected Result.Repeats.
	repeats int
	// slots, when not nil, must equal Result.Slots.
	slots map[string]string
}

// outcome lists the boolean results a step expects to be true; all others must be false.
type outcome uint8

const (
	fOOS outcome = 1 << iota
	fWantsHuman
	fHumanOnly
	fEnd
)

// run plays a script against a new conversation of e.
func run(t *testing.T, e *Engine, steps []step) *Conversation {
	t.Helper()
	c := e.newConversation(dialog.CallContext{CallID: "CA1"})
	ctx := context.Background()
	if err := c.Greeting(ctx, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		var said []string
		res, err := c.Respond(ctx, s.in, func(sentence string) error {
			said = append(said, sentence)
			return nil
		})
		if err != nil {
			t.Fatalf("turn %d: %v", i+1, err)
		}
		reply := strings.Join(said, " ")
		where := fmt.Sprintf("turn %d (%q%s)", i+1, s.in.Text, s.in.Digits)
		rest := reply
		for _, want := range s.say {
			j := strings.Index(rest, want)
			if j < 0 {
				t.Errorf("%s: reply %q lacks %q", where, reply, want)
				break
			}
			rest = rest[j+len(want):]
		}
		switch {
		case s.intent == "-" && res.Intent != "":
			t.Errorf("%s: intent %q, want none", where, res.Intent)
		case s.intent != "" && s.intent != "-" && res.Intent != s.intent:
			t.Errorf("%s: intent %q, want %q", where, res.Intent, s.intent)
		}
		if res.Expect != s.expect {
			t.Errorf("%s: expect %v, want %v", where, res.Expect, s.expect)
		}
		got := outcome(0)
		for _, f := range []struct {
			on bool
			f  outcome
		}{{res.OutOfScope, fOOS}, {res.WantsHuman, fWantsHuman}, {res.HumanOnly, fHumanOnly}, {res.EndCall, fEnd}} {
			if f.on {
				got |= f.f
			}
		}
		if got != s.flags {
			t.Errorf("%s: flags %04b (oos, human, human-only, end), want %04b; reply %q", where, got, s.flags, reply)
		}
		if res.Repeats != s.repeats {
			t.Errorf("%s: repeats %d, want %d", where, res.Repeats, s.repeats)
		}
		if s.slots != nil && !maps.Equal(res.Slots, s.slots) {
			t.Errorf("%s: slots %v, want %v", where, res.Slots, s.slots)
		}
		if res.Confidence < 0 || res.Confidence > 1 {
			t.Errorf("%s: confidence %v out of range", where, res.Confidence)
		}
	}
	return c
}

const (
	askLast4   = "Please say or key in the last four digits of your card."
	anyElse    = "Is there anything else I can help you with?"
	noHuman    = "I can't put you through to a person on this line yet."
	goodbye    = "Thanks for calling Northwind Pay. Goodbye."
	backPhrase = "Okay, let's go back."
)

// scripted returns a copy of the sample engine whose classifier gives fixed
// predictions for the utterances in fixedPredictions, so tests of the dialog
// policy (uncertain guesses, out of scope) do not move when the classifier
// is retrained or improved. Every other utterance goes to the real model.
func scripted(t testing.TB) *Engine {
	e := *engine(t)
	real := e.classify
	e.classify = func(text string) nlu.Prediction {
		if p, ok := fixedPredictions[text]; ok {
			return p
		}
		return real(text)
	}
	return &e
}

func top(pairs ...any) []nlu.Scored {
	var out []nlu.Scored
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, nlu.Scored{Intent: pairs[i].(string), Confidence: pairs[i+1].(float64)})
	}
	return out
}

var fixedPredictions = map[string]nlu.Prediction{
	// In scope but unsure: confirm first.
	"what does it cost to send money abroad": {Intent: "transfer_money", Confidence: 0.3, Top: top("transfer_money", 0.3, "fees", 0.25)},
	// Rejected by the classifier's out-of-scope threshold, yet a likely guess.
	"how much to send money overseas": {Intent: nlu.OutOfScope, OutOfScope: true, Confidence: 0.3, Top: top("transfer_money", 0.7, "fees", 0.2)},
	// Out of scope, nothing close: decline.
	"what's the weather like tomorrow": {Intent: nlu.OutOfScope, OutOfScope: true, Confidence: 0.99, Top: top("fees", 0.001)},
	"tell me a joke":                   {Intent: nlu.OutOfScope, OutOfScope: true, Confidence: 0.98, Top: top("hello", 0.002)},
	// Out of scope with a weak guess: ask again.
	"blah blah the thing": {Intent: nlu.OutOfScope, OutOfScope: true, Confidence: 0.6, Top: top("fees", 0.3)},
	// Confident answers with and without a runner-up.
	"I need a new card my card is lost":                           {Intent: "replacement_card", Confidence: 0.95, Top: top("replacement_card", 0.95, "card_lost", 0.045)},
	"my refund hasn't come through":                               {Intent: "refund_status", Confidence: 0.999, Top: top("refund_status", 0.999, "fees", 0.0001)},
	"what's the balance on my card ending forty eight twenty one": {Intent: "balance", Confidence: 0.97, Top: top("balance", 0.97)},
	"no but how do I change my address":                           {Intent: "change_address", Confidence: 0.97, Top: top("change_address", 0.97)},
	"that's not what I asked":                                     {Intent: "correction", Confidence: 0.99, Top: top("correction", 0.99)},
	// A correction that is really a new value for a read-back.
	"no you got it wrong it's four eight two two": {Intent: "correction", Confidence: 0.9, Top: top("correction", 0.9)},
}

func TestDialogs(t *testing.T) {
	e := scripted(t)
	last4 := map[string]string{"last4": "4821"}
	tests := []struct {
		name  string
		steps []step
	}{
		{"balance by speech with confirmation", []step{
			{in: speech("what's my balance"), say: []string{askLast4}, intent: "balance", expect: dialog.ModeDigits, slots: map[string]string{}},
			{in: speech("four eight two one"), say: []string{"I heard 4 8 2 1. Is that right?"}, intent: "balance", expect: dialog.ModeYesNo},
			{in: speech("yes"), say: []string{"card ending in 4 8 2 1", anyElse}, intent: "balance", slots: last4},
			{in: speech("no thanks"), say: []string{goodbye}, flags: fEnd, slots: last4},
		}},
		{"balance by keypad", []step{
			{in: speech("how much money do I have"), say: []string{askLast4}, intent: "balance", expect: dialog.ModeDigits},
			{in: keys("4821#"), say: []string{"card ending in 4 8 2 1"}, intent: "balance", slots: last4},
		}},
		{"balance with the digits in the request", []step{
			{in: speech("what's the balance on my card ending forty eight twenty one"), say: []string{"I heard 4 8 2 1."}, intent: "balance", expect: dialog.ModeYesNo},
			{in: keys("1"), say: []string{"card ending in 4 8 2 1"}, intent: "balance", slots: last4},
		}},
		{"wrong digits, then corrected", []step{
			{in: speech("check balance"), say: []string{askLast4}, intent: "balance", expect: dialog.ModeDigits},
			{in: speech("one two three"), say: []string{"Sorry, I need exactly four digits."}, intent: "balance", expect: dialog.ModeDigits, repeats: 1},
			{in: speech("one two three four"), say: []string{"I heard 1 2 3 4."}, intent: "balance", expect: dialog.ModeYesNo},
			{in: speech("no"), say: []string{"Sorry about that.", askLast4}, intent: "balance", expect: dialog.ModeDigits},
			{in: speech("it's four eight two one"), say: []string{"I heard 4 8 2 1."}, expect: dialog.ModeYesNo},
			{in: speech("no you got it wrong it's four eight two two"), say: []string{"I heard 4 8 2 2."}, expect: dialog.ModeYesNo, repeats: 1},
			{in: speech("that's right"), say: []string{"card ending in 4 8 2 2"}, slots: map[string]string{"last4": "4822"}},
		}},
		{"slot reused by the next intent", []step{
			{in: keys("7"), say: []string{"Sorry, I didn't quite get that."}, intent: "-"},
			{in: speech("I lost my card"), say: []string{"last four digits of the card"}, intent: "card_lost", expect: dialog.ModeDigits},
			{in: keys("4821"), say: []string{"freeze the card ending in 4 8 2 1", "Would you like to hear how to order a replacement card?"}, intent: "card_lost", expect: dialog.ModeYesNo},
			{in: speech("yes please"), say: []string{"order a replacement card in the app", anyElse}, intent: "replacement_card"},
			{in: speech("what are my recent transactions"), say: []string{"card ending in 4 8 2 1"}, intent: "recent_transactions", slots: last4},
		}},
		{"follow-up declined", []step{
			{in: speech("my card hasn't arrived"), say: []string{"seven working days", "Would you like to report the card as lost instead?"}, intent: "card_not_arrived", expect: dialog.ModeYesNo},
			{in: speech("no"), say: []string{anyElse}, intent: "card_not_arrived"},
			{in: speech("yes"), say: []string{"What else can I help you with?"}},
		}},
		{"free slot", []step{
			{in: speech("I need a statement"), say: []string{"Which month or period do you need the statement for?"}, intent: "statement_request"},
			{in: speech("last March"), say: []string{"the statement for last March"}, intent: "statement_request", slots: map[string]string{"period": "last March"}},
		}},
		{"repeat says the last reply in full", []step{
			{in: speech("how do I top up"), say: []string{"You can top up in the app.", anyElse}, intent: "top_up"},
			{in: speech("can you say that again"), say: []string{"You can top up in the app.", "Auto top up.", anyElse}, intent: "repeat"},
			{in: keys("*"), say: []string{"You can top up in the app."}, intent: "repeat", repeats: 1},
		}},
		{"repeat before anything", []step{
			{in: speech("repeat that"), say: []string{"Thanks for calling Northwind Pay."}, intent: "repeat"},
		}},
		{"go back to the previous question", []step{
			{in: speech("what's my balance"), say: []string{askLast4}, expect: dialog.ModeDigits},
			{in: speech("four eight two one"), say: []string{"I heard 4 8 2 1."}, expect: dialog.ModeYesNo},
			{in: speech("go back"), say: []string{backPhrase, askLast4}, intent: "go_back", expect: dialog.ModeDigits},
			{in: speech("go back"), say: []string{backPhrase, "In a few words, how can I help you today?"}, intent: "go_back", repeats: 1},
			{in: speech("go back"), say: []string{backPhrase, "how can I help you today?"}, intent: "go_back", repeats: 2},
		}},
		{"go back forgets the slot filled since", []step{
			{in: speech("what's my balance"), expect: dialog.ModeDigits},
			{in: keys("4821"), say: []string{"card ending in 4 8 2 1"}, slots: last4},
			{in: speech("go back"), say: []string{backPhrase, askLast4}, expect: dialog.ModeDigits},
		}},
		{"that's not what I asked", []step{
			{in: speech("I need a new card my card is lost"), say: []string{"You can order a replacement card in the app."}, intent: "replacement_card"},
			{in: speech("that's not what I asked"), say: []string{"Sorry about that.", "Just to check, did you mean reporting a lost or stolen card?"}, intent: "correction", expect: dialog.ModeYesNo},
			{in: speech("yes"), say: []string{"last four digits of the card"}, intent: "card_lost", expect: dialog.ModeDigits},
		}},
		{"not what I asked with no alternative", []step{
			{in: speech("my refund hasn't come through"), intent: "refund_status"},
			{in: speech("that's not what I meant"), say: []string{"Sorry about that. Could you tell me again in a few words?"}, intent: "correction"},
		}},
		{"uncertain guess confirmed, then refused", []step{
			{in: speech("what does it cost to send money abroad"), say: []string{"Just to check, did you mean sending money?"}, intent: "transfer_money", expect: dialog.ModeYesNo},
			{in: speech("no"), say: []string{"Could you tell me again in a few words?"}},
			{in: speech("how much to send money overseas"), say: []string{"did you mean sending money?"}, intent: "transfer_money", expect: dialog.ModeYesNo},
			{in: speech("yes"), say: []string{"You can send money in the app."}, intent: "transfer_money"},
		}},
		{"out of scope", []step{
			{in: speech("what's the weather like tomorrow"), say: []string{"I can only help with your Northwind Pay cards", anyElse}, intent: "-", flags: fOOS},
			{in: speech("tell me a joke"), flags: fOOS, intent: "-", repeats: 1},
		}},
		{"a weak guess is not offered", []step{
			{in: speech("blah blah the thing"), say: []string{"Sorry, I didn't quite get that."}, intent: "-"},
		}},
		{"not understood", []step{
			{in: speech("um uh"), say: []string{"Sorry, I didn't quite get that."}, intent: "-"},
			{in: speech(""), say: []string{"Sorry, I'm still not sure what you need."}, intent: "-", repeats: 1},
		}},
		{"silence twice ends the call", []step{
			{in: silence, say: []string{"Are you still there?", "how can I help you today?"}},
			{in: silence, say: []string{"I still can't hear you"}, flags: fEnd},
		}},
		{"silence re-asks the open question", []step{
			{in: speech("what's my balance"), expect: dialog.ModeDigits},
			{in: silence, say: []string{"Are you still there?", askLast4}, intent: "balance", expect: dialog.ModeDigits},
			{in: keys("4821"), say: []string{"card ending in 4 8 2 1"}},
			{in: silence, say: []string{"Are you still there?", anyElse}},
		}},
		{"agent in words", []step{
			{in: speech("can I speak to a real person please"), say: []string{noHuman, anyElse}, intent: "agent", flags: fWantsHuman},
		}},
		{"agent by keypad while a digit is asked", []step{
			{in: speech("what's my balance"), expect: dialog.ModeDigits},
			{in: keys("0"), say: []string{noHuman}, intent: "agent", flags: fWantsHuman},
		}},
		{"fraud is for humans", []step{
			{in: speech("someone has used my card without permission"), say: []string{"Fraud needs one of our specialists", noHuman, anyElse}, intent: "fraud", flags: fHumanOnly},
		}},
		{"dispute leads to fraud", []step{
			{in: speech("there's a charge on my card I didn't make"), say: []string{"Do you think someone used your card without your permission?"}, intent: "dispute_charge", expect: dialog.ModeYesNo},
			{in: speech("yes"), say: []string{"Fraud needs one of our specialists"}, intent: "fraud", flags: fHumanOnly},
		}},
		{"bereavement and complaint", []step{
			{in: speech("my husband passed away"), say: []string{"I'm very sorry for your loss."}, intent: "bereavement", flags: fHumanOnly},
			{in: speech("I want to make a complaint"), say: []string{"A complaint needs one of our team"}, intent: "complaint", flags: fHumanOnly},
		}},
		{"going round in circles", []step{
			{in: speech("what are your fees"), intent: "fees"},
			{in: speech("is there a monthly fee"), intent: "fees", repeats: 1},
			{in: speech("how much do you charge"), intent: "fees", repeats: 2},
			{in: speech("what's my balance"), intent: "balance", expect: dialog.ModeDigits},
		}},
		{"hello and goodbye", []step{
			{in: speech("hello"), say: []string{"Hello. In a few words, what can I help you with today?"}, intent: "hello"},
			{in: speech("bye thanks"), say: []string{"Have a good day. Goodbye."}, intent: "goodbye", flags: fEnd},
		}},
		{"a new request answers anything else", []step{
			{in: speech("how do I activate my new card"), intent: "activate_card"},
			{in: speech("no but how do I change my address"), say: []string{"change your address in the app"}, intent: "change_address"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, e, tt.steps) })
	}
}

func TestHumansAvailable(t *testing.T) {
	e := engine(t)
	withHumans := *e
	withHumans.opt.HumansAvailable = true
	run(t, &withHumans, []step{
		{in: speech("agent"), say: []string{"I'm connecting you to a colleague now."}, intent: "agent", flags: fWantsHuman},
	})
	c := run(t, &withHumans, []step{
		{in: speech("I think I've been scammed"), say: []string{"Fraud needs one of our specialists", "I'm connecting you to a colleague now."}, intent: "fraud", flags: fHumanOnly},
	})
	if h := c.History(); strings.Contains(h[len(h)-1].Text, anyElse) {
		t.Errorf("asked anything else before a transfer: %q", h[len(h)-1].Text)
	}
}

// TestBargeIn checks that an interrupted reply stops, that the history
// keeps only what was heard, and that "repeat that" says the full reply.
func TestBargeIn(t *testing.T) {
	c := engine(t).newConversation(dialog.CallContext{})
	ctx := context.Background()
	var said []string
	res, err := c.Respond(ctx, speech("how do I top up"), func(s string) error {
		if len(said) == 1 {
			return fmt.Errorf("playout: %w", dialog.ErrInterrupted)
		}
		said = append(said, s)
		return nil
	})
	if err != nil || res.Intent != "top_up" {
		t.Fatalf("Respond = %+v, %v", res, err)
	}
	if len(said) != 1 {
		t.Fatalf("said %q after the barge-in", said)
	}
	c.Heard("You can top up in the app.")
	h := c.History()
	last := h[len(h)-1]
	if last.Speaker != SpeakerAI || last.Text != "You can top up in the app." || !strings.HasSuffix(last.Intended, anyElse) {
		t.Errorf("history after barge-in = %+v", last)
	}
	said = nil
	if _, err := c.Respond(ctx, speech("repeat that"), func(s string) error { said = append(said, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(said, " "); got != last.Intended {
		t.Errorf("repeat said %q, want the full reply %q", got, last.Intended)
	}
}

func TestRespondErrors(t *testing.T) {
	c := engine(t).newConversation(dialog.CallContext{})
	boom := errors.New("synthesizer failed")
	_, err := c.Respond(context.Background(), speech("what are your fees"), func(string) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("say error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Respond(ctx, speech("fees"), func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v", err)
	}
	if err := c.Greeting(ctx, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled greeting: got %v", err)
	}
}

func TestConversationFrustration(t *testing.T) {
	c := engine(t).newConversation(dialog.CallContext{})
	var conv dialog.Conversation = c
	f, ok := conv.(interface{ Frustration() float64 })
	if !ok {
		t.Fatal("conversation does not expose Frustration")
	}
	ctx := context.Background()
	nop := func(string) error { return nil }
	steps := []struct {
		text     string
		min, max float64
	}{
		{"what are your fees", 0, 0},
		{"this is ridiculous I already told you", 0.8, 1},
		{"what are your fees", 0.45, 0.6}, // decays by 0.6 a calm turn
		{"what are your fees", 0.25, 0.4}, // said again: a cue of its own, and still decaying
	}
	for _, s := range steps {
		if _, err := c.Respond(ctx, speech(s.text), nop); err != nil {
			t.Fatal(err)
		}
		if got := f.Frustration(); got < s.min || got > s.max {
			t.Errorf("after %q frustration %.3f, want %.2f..%.2f", s.text, got, s.min, s.max)
		}
	}
}

// TestTranscript plays a whole call and compares it with
// testdata/transcript.golden.
func TestTranscript(t *testing.T) {
	c := scripted(t).newConversation(dialog.CallContext{CallID: "CA-golden"})
	ctx := context.Background()
	var b strings.Builder
	sayTo := func(s string) error { fmt.Fprintf(&b, "AI:     %s\n", s); return nil }
	if err := c.Greeting(ctx, sayTo); err != nil {
		t.Fatal(err)
	}
	for _, in := range []dialog.Input{
		speech("hi I'm calling about my account"),
		speech("I lost my card"),
		speech("forty eight twenty one"),
		speech("yeah"),
		speech("what"),
		speech("what's my balance"),
		silence,
		speech("what does it cost to send money abroad"),
		speech("no"),
		speech("how much to send money overseas"),
		speech("yes"),
		speech("that's not what I asked"),
		speech("yes"),
		speech("this is ridiculous I want to speak to a human"),
		keys("2"),
	} {
		switch in.Kind {
		case dialog.InputSilence:
			b.WriteString("CALLER: (silence)\n")
		case dialog.InputDTMF:
			fmt.Fprintf(&b, "CALLER: (keys %s)\n", in.Digits)
		default:
			fmt.Fprintf(&b, "CALLER: %s\n", in.Text)
		}
		res, err := c.Respond(ctx, in, sayTo)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "        [%s frustration=%.1f]\n", describe(res), c.Frustration())
		if res.EndCall {
			break
		}
	}
	golden(t, "transcript.golden", b.String())
}

// describe renders the stable parts of a result for the golden transcript
// (not the confidence, which moves with the classifier).
func describe(r dialog.Result) string {
	parts := []string{"intent=" + r.Intent, "expect=" + r.Expect.String()}
	for _, f := range []struct {
		on   bool
		name string
	}{{r.OutOfScope, "out-of-scope"}, {r.WantsHuman, "wants-human"}, {r.HumanOnly, "human-only"}, {r.EndCall, "end-call"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	if r.Repeats > 0 {
		parts = append(parts, fmt.Sprintf("repeats=%d", r.Repeats))
	}
	if len(r.Slots) > 0 {
		parts = append(parts, fmt.Sprintf("slots=%v", r.Slots))
	}
	return strings.Join(parts, " ")
}

func TestSentences(t *testing.T) {
	e := engine(t)
	s := e.Sentences()
	have := map[string]bool{}
	for _, x := range s {
		if have[x] {
			t.Errorf("duplicate sentence %q", x)
		}
		have[x] = true
		if strings.ContainsAny(x, "{}") {
			t.Errorf("sentence with a placeholder: %q", x)
		}
	}
	for _, want := range []string{
		"I lost my card", askLast4, "Would you like to hear how to order a replacement card?",
		"tell me a joke", e.KB().Company.Greeting, "Just to check, did you mean checking your balance?",
	} {
		if !have[want] {
			t.Errorf("Sentences lacks %q", want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	k := sampleKB(t)
	tests := []struct {
		name string
		opt  Options
		want string
	}{
		{"thresholds", Options{RejectBelow: 0.9, ConfirmBelow: 0.5}, "RejectBelow"},
		{"label map", Options{LabelMap: map[string]string{"x": "nope"}}, "no such intent"},
		{"train file", Options{TrainFiles: []string{"testdata/missing.csv"}}, "train file"},
	}
	for _, tt := range tests {
		if _, err := New(k, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := New(&KB{}, Options{}); err == nil {
		t.Error("New with an empty KB succeeded")
	}
}

func BenchmarkRespond(b *testing.B) {
	c := engine(b).newConversation(dialog.CallContext{})
	ctx := context.Background()
	nop := func(string) error { return nil }
	utterances := []dialog.Input{speech("how do I top up"), speech("what's my balance"), keys("4821"), speech("no thanks")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Respond(ctx, utterances[i%len(utterances)], nop); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTrainFiles checks that extra training rows reach the classifier only
// under knowledge-base intents (directly or through LabelMap) or oos.
func TestTrainFiles(t *testing.T) {
	k := sampleKB(t)
	opt := Options{TrainFiles: []string{"testdata/train.csv"}, LabelMap: map[string]string{"lost_or_stolen_card": "card_lost"}}
	ex, err := trainingExamples(k, opt)
	if err != nil {
		t.Fatal(err)
	}
	base, err := trainingExamples(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	extra := ex[len(base):]
	want := []string{"card_lost", "card_lost", "oos", "fees"}
	if len(extra) != len(want) {
		t.Fatalf("extra rows %v, want intents %v", extra, want)
	}
	for i, e := range extra {
		if e.Intent != want[i] {
			t.Errorf("row %d (%q): intent %q, want %q", i, e.Text, e.Intent, want[i])
		}
	}
	opt.NLU = nlu.Options{Seed: 1, Epochs: 5, Folds: 2} // a quick model: only its labels are checked
	e, err := New(k, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(e.Model().Intents()), len(k.Intents); got != want {
		t.Errorf("model knows %d intents, the knowledge base has %d", got, want)
	}
}

// TestConcurrentConversations runs calls in parallel on one engine (run with -race).
func TestConcurrentConversations(t *testing.T) {
	e := engine(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.NewConversation(dialog.CallContext{CallID: fmt.Sprint("CA", i)})
			for _, in := range []dialog.Input{speech("what's my balance"), keys("4821"), speech("I lost my card"), silence, speech("no")} {
				if _, err := c.Respond(context.Background(), in, func(string) error { return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzRespond drives one conversation with arbitrary caller turns: it must
// never panic or fail, and its results must stay within their ranges.
func FuzzRespond(f *testing.F) {
	f.Add("what's my balance", "4821#", uint8(0))
	f.Add("four eight two one", "", uint8(1))
	f.Add("go back", "0", uint8(2))
	f.Add("no no no this is ridiculous", "*", uint8(3))
	f.Add("\x00\xff{last4}", "##", uint8(4))
	f.Fuzz(func(t *testing.T, text, digits string, kind uint8) {
		c := engine(t).newConversation(dialog.CallContext{})
		ctx := context.Background()
		nop := func(string) error { return nil }
		inputs := []dialog.Input{
			{Kind: dialog.InputKind(kind % 3), Text: text, Digits: digits, Confidence: 0.5},
			speech(text), keys(digits), speech("what's my balance"), speech(text), keys(digits), silence,
		}
		for _, in := range inputs {
			res, err := c.Respond(ctx, in, nop)
			if err != nil {
				t.Fatalf("Respond(%+v): %v", in, err)
			}
			if res.Confidence < 0 || res.Confidence > 1 || res.Repeats < 0 {
				t.Fatalf("Respond(%+v) = %+v", in, res)
			}
			if f := c.Frustration(); f < 0 || f > 1 {
				t.Fatalf("frustration %v", f)
			}
			if res.EndCall {
				return
			}
		}
	})
}
