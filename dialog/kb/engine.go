package kb

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/kb/nlu"
)

// Default confidence thresholds (see Options). With the sample knowledge
// base alone, on 6,002 Banking77 utterances of the intents it shares
// (TestBanking77Generalization), answering at 0.7 and above answers 60% of
// them right and 9% wrong; the rest are confirmed first. At 0.5 it would be
// 66% right and 13% wrong.
const (
	DefaultConfirmBelow = 0.7
	DefaultRejectBelow  = 0.15
)

// Options tunes an Engine. The zero value uses the knowledge base alone with
// the default thresholds and tells callers honestly that no person is available.
type Options struct {
	// TrainFiles are extra labelled utterances for the classifier, read with
	// nlu.LoadExamples (CSV text,category or JSONL text,intent). Only rows
	// whose label is a knowledge-base intent (after LabelMap) or nlu.OutOfScope
	// are used; every other row is skipped, so a public data set with many
	// labels can be pointed at the few intents the knowledge base has.
	TrainFiles []string
	// LabelMap renames labels of TrainFiles to knowledge-base intent names,
	// e.g. "lost_or_stolen_card" → "card_lost". Every target must be an
	// intent of the knowledge base.
	LabelMap map[string]string
	// NLU tunes the classifier.
	NLU nlu.Options
	// ConfirmBelow: a best guess with a lower calibrated confidence is
	// confirmed ("Did you mean ...?") before it is answered. 0 means
	// DefaultConfirmBelow.
	ConfirmBelow float64
	// RejectBelow: a best guess with a lower confidence is not offered at
	// all; the caller is asked to rephrase. An utterance the classifier
	// calls out of scope whose best in-scope intent scores below it is
	// declined politely (Result.OutOfScope). 0 means DefaultRejectBelow.
	RejectBelow float64
	// MinASRConfidence: speech recognized with a lower confidence is treated
	// as not understood, whatever its words. 0 disables the check.
	MinASRConfidence float64
	// HumansAvailable says a colleague can take the call, so the engine says
	// the knowledge base's transfer phrase when a person is needed; when
	// false it says the honest no_human phrase instead.
	HumansAvailable bool
}

// Engine answers callers from a knowledge base. It is immutable once built
// and safe for concurrent use; each call gets its own Conversation.
type Engine struct {
	kb        *KB
	model     *nlu.Model
	classify  func(text string) nlu.Prediction // model.Predict; tests substitute it
	opt       Options
	sentences []string
	byAction  map[Action]*Intent
	opening   string // the greeting's last sentence, asked again after silence or "go back" at the start
}

var _ dialog.Responder = (*Engine)(nil)

// New trains the classifier from the knowledge base's examples (plus
// Options.TrainFiles) and returns an engine ready for calls.
func New(k *KB, opt Options) (*Engine, error) {
	if k == nil {
		return nil, fmt.Errorf("kb: new engine: nil knowledge base")
	}
	if c := k.Company; c.Greeting == "" || len(c.Fallback) == 0 || len(c.Reprompt) == 0 || k.byName == nil {
		return nil, fmt.Errorf("kb: new engine: knowledge base lacks a greeting, fallback or reprompt phrases; build it with Load or LoadFS")
	}
	if opt.ConfirmBelow <= 0 {
		opt.ConfirmBelow = DefaultConfirmBelow
	}
	if opt.RejectBelow <= 0 {
		opt.RejectBelow = DefaultRejectBelow
	}
	if opt.RejectBelow > opt.ConfirmBelow {
		return nil, fmt.Errorf("kb: new engine: RejectBelow %.2f is above ConfirmBelow %.2f", opt.RejectBelow, opt.ConfirmBelow)
	}
	examples, err := trainingExamples(k, opt)
	if err != nil {
		return nil, err
	}
	model, err := nlu.Train(examples, opt.NLU)
	if err != nil {
		return nil, fmt.Errorf("kb: new engine: %w", err)
	}
	e := &Engine{kb: k, model: model, classify: model.Predict, opt: opt, byAction: map[Action]*Intent{}}
	for _, in := range k.Intents {
		if in.Action != ActionNone {
			e.byAction[in.Action] = in
		}
	}
	e.sentences = sentences(k)
	g := splitSentences(k.Company.Greeting)
	e.opening = g[len(g)-1]
	return e, nil
}

// trainingExamples gathers the classifier's training data.
func trainingExamples(k *KB, opt Options) ([]nlu.Example, error) {
	var out []nlu.Example
	for _, in := range k.Intents {
		for _, ex := range in.Examples {
			out = append(out, nlu.Example{Text: ex, Intent: in.Name})
		}
	}
	for _, s := range k.OutOfScope {
		out = append(out, nlu.Example{Text: s, Intent: nlu.OutOfScope})
	}
	for from, to := range opt.LabelMap {
		if k.Intent(to) == nil {
			return nil, fmt.Errorf("kb: new engine: label map %q → %q: no such intent in the knowledge base", from, to)
		}
	}
	for _, path := range opt.TrainFiles {
		rows, err := nlu.LoadExamples(path)
		if err != nil {
			return nil, fmt.Errorf("kb: new engine: train file: %w", err)
		}
		for _, r := range rows {
			label := r.Intent
			if to, ok := opt.LabelMap[label]; ok {
				label = to
			}
			if label != nlu.OutOfScope && k.Intent(label) == nil {
				continue
			}
			out = append(out, nlu.Example{Text: r.Text, Intent: label})
		}
	}
	return out, nil
}

// sentences lists every text the engine hears or says, without slot
// placeholders, deduplicated in knowledge-base order.
func sentences(k *KB) []string {
	seen := map[string]bool{}
	var out []string
	add := func(texts ...string) {
		for _, t := range texts {
			t = normalizeSpace(refPattern.ReplaceAllString(t, ""))
			if t != "" && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	c := k.Company
	add(c.Greeting, c.Goodbye, c.SilenceGoodbye, c.Sorry, c.Rephrase, c.OutOfScope, c.AnythingElse,
		c.AskMore, c.Back, c.NothingToRepeat, c.Transfer, c.NoHuman, c.Confirm, c.ConfirmDigits)
	add(c.Fallback...)
	add(c.Reprompt...)
	for _, in := range k.Intents {
		add(in.Examples...)
		add(in.Answer)
		if in.Title != "" {
			add(strings.ReplaceAll(c.Confirm, "{title}", in.Title))
		}
		for _, s := range in.Slots {
			add(s.Prompt, s.Retry)
		}
		if in.FollowUp != nil {
			add(in.FollowUp.Question)
		}
	}
	add(k.OutOfScope...)
	return out
}

// Sentences returns every example utterance, answer, slot prompt, follow-up
// question and company phrase, without slot placeholders: the speech
// recognizer builds its language model from them. The slice is shared; do
// not modify it.
func (e *Engine) Sentences() []string { return e.sentences }

// KB returns the knowledge base the engine answers from.
func (e *Engine) KB() *KB { return e.kb }

// Model returns the trained classifier, for evaluation tools.
func (e *Engine) Model() *nlu.Model { return e.model }

// NewConversation starts the dialog state of one call.
func (e *Engine) NewConversation(call dialog.CallContext) dialog.Conversation {
	return e.newConversation(call)
}

func (e *Engine) newConversation(call dialog.CallContext) *Conversation {
	c := &Conversation{e: e, call: call, slots: map[string]string{}}
	c.stack = []snapshot{{question: e.opening}}
	return c
}

// actionOf returns the control action of the named intent.
func (e *Engine) actionOf(name string) Action {
	if in := e.kb.Intent(name); in != nil {
		return in.Action
	}
	return ActionNone
}

// intentFor returns the intent handling action, if the knowledge base has one.
func (e *Engine) intentFor(a Action) string {
	if in := e.byAction[a]; in != nil {
		return in.Name
	}
	return string(a)
}

// isControl reports whether name is a control intent.
func (e *Engine) isControl(name string) bool { return e.actionOf(name) != ActionNone }

// minAlternative is the least confidence of an intent offered after
// "that's not what I asked"; below it the caller is asked to rephrase.
const minAlternative = 0.01

// alternatives returns the in-scope intents of p other than exclude that
// are worth offering, best first.
func (e *Engine) alternatives(p nlu.Prediction, exclude string) []nlu.Scored {
	var out []nlu.Scored
	for _, s := range p.Top {
		if s.Intent == exclude || e.isControl(s.Intent) || s.Confidence < minAlternative {
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out)
}
