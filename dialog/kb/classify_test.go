package kb

import (
	"testing"

	"github.com/parley-ai/parley/dialog/kb/nlu"
)

// heldOut splits the sample KB's examples: every fourth example of each
// intent is held out, the rest (with the out-of-scope examples) train.
func heldOut(k *KB) (train, test []nlu.Example) {
	for _, in := range k.Intents {
		for i, ex := range in.Examples {
			e := nlu.Example{Text: ex, Intent: in.Name}
			if i%4 == 3 {
				test = append(test, e)
			} else {
				train = append(train, e)
			}
		}
	}
	for _, s := range k.OutOfScope {
		train = append(train, nlu.Example{Text: s, Intent: nlu.OutOfScope})
	}
	return train, test
}

// TestHeldOutAccuracy trains on three quarters of the sample KB's examples
// and checks that the held-out quarter classifies to its own intent: the
// examples are varied enough to generalise, and no two intents overlap.
func TestHeldOutAccuracy(t *testing.T) {
	k := sampleKB(t)
	train, test := heldOut(k)
	m, err := nlu.Train(train, nlu.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	right, answered := 0, 0
	// What the conversation would do with each held-out utterance under the
	// default thresholds: answer, offer ("Did you mean ...?") or re-prompt.
	var answeredRight, answeredWrong, offeredRight, offeredWrong, reprompted int
	perIntent := map[string][2]int{}
	for _, ex := range test {
		p := m.Predict(ex.Text)
		c := perIntent[ex.Intent]
		c[1]++
		if p.Intent == ex.Intent {
			right++
			c[0]++
		} else {
			t.Logf("%-22s %q → %s %.2f", ex.Intent, ex.Text, p.Intent, p.Confidence)
		}
		if len(p.Top) > 0 && p.Top[0].Intent == ex.Intent {
			answered++
		}
		switch {
		case !p.OutOfScope && p.Confidence >= DefaultConfirmBelow && p.Intent == ex.Intent:
			answeredRight++
		case !p.OutOfScope && p.Confidence >= DefaultConfirmBelow:
			answeredWrong++
		case len(p.Top) > 0 && p.Top[0].Confidence >= DefaultRejectBelow && p.Top[0].Intent == ex.Intent:
			offeredRight++
		case len(p.Top) > 0 && p.Top[0].Confidence >= DefaultRejectBelow:
			offeredWrong++
		default:
			reprompted++
		}
		perIntent[ex.Intent] = c
	}
	acc := float64(right) / float64(len(test))
	top1 := float64(answered) / float64(len(test))
	t.Logf("held-out: %d examples, accuracy %.3f (with out-of-scope rejection), top-1 in scope %.3f", len(test), acc, top1)
	t.Logf("dialog: answered right %d, answered wrong %d, offered right %d, offered wrong %d, re-prompted %d",
		answeredRight, answeredWrong, offeredRight, offeredWrong, reprompted)
	if wrong := float64(answeredWrong) / float64(len(test)); wrong > maxWrongAnswers {
		t.Errorf("%.3f of held-out utterances answered with the wrong intent, want at most %.2f", wrong, maxWrongAnswers)
	}
	// Measured with seed 1: accuracy 0.69, top-1 0.81, wrong answers 0.05;
	// the bounds leave a margin for classifier changes.
	if acc < minHeldOutAccuracy {
		t.Errorf("held-out accuracy %.3f < %.2f", acc, minHeldOutAccuracy)
	}
	if top1 < minHeldOutTop1 {
		t.Errorf("held-out top-1 %.3f < %.2f", top1, minHeldOutTop1)
	}
	for name, c := range perIntent {
		if c[0] == 0 {
			t.Errorf("intent %s: none of its %d held-out examples classified to it", name, c[1])
		}
	}
}

const (
	minHeldOutAccuracy = 0.6
	minHeldOutTop1     = 0.72
	maxWrongAnswers    = 0.1
)

// TestTrainingExamplesClassify checks the trained engine on its own
// examples: a knowledge-base author expects every example to work.
func TestTrainingExamplesClassify(t *testing.T) {
	e := engine(t)
	wrong := 0
	total := 0
	for _, in := range e.KB().Intents {
		for _, ex := range in.Examples {
			total++
			if p := e.Model().Predict(ex); p.Intent != in.Name {
				wrong++
				t.Logf("%s: %q → %s %.2f", in.Name, ex, p.Intent, p.Confidence)
			}
		}
	}
	if rate := float64(wrong) / float64(total); rate > 0.02 {
		t.Errorf("%d of %d training examples misclassified", wrong, total)
	}
}
