package kb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/kb/nlu"
)

// Bounds on per-call memory: a very long call keeps only the most recent turns.
const (
	maxHistory       = 200 // transcript lines kept
	maxStack         = 50  // questions "go back" can return to
	callerMemory     = 5   // caller utterances the frustration detector looks back on
	frustrationDecay = 0.6 // share of the previous turn's frustration carried over
)

// switchFromFree is the classifier confidence a reply to a free slot's
// question needs to count as a new request instead of the answer.
const switchFromFree = 0.9

// Speakers in a conversation's history.
const (
	SpeakerCaller = "caller"
	SpeakerAI     = "ai"
)

// Line is one utterance of a conversation's history.
type Line struct {
	Speaker string // SpeakerCaller or SpeakerAI
	// Text is what was said; for the AI after a barge-in, only what the
	// caller heard (Conversation.Heard).
	Text string
	// Intended is the AI's full reply when a barge-in cut it short.
	Intended string
}

// waitKind is what the conversation waits for from the caller.
type waitKind int

const (
	waitNone         waitKind = iota
	waitSlot                  // a value for intent.Slots[slot]
	waitSlotConfirm           // yes/no to "I heard 4 8 2 1. Is that right?"
	waitConfirm               // yes/no to "Did you mean ...?"
	waitFollowUp              // yes/no to intent.FollowUp.Question
	waitAnythingElse          // "Is there anything else ...?"
)

// pending is the open question of the conversation.
type pending struct {
	kind   waitKind
	intent *Intent
	slot   int
	value  string // digits awaiting confirmation (waitSlotConfirm)
}

// snapshot is the state after one reply, so "go back" can return to it.
type snapshot struct {
	pend     pending
	slots    map[string]string
	question string // the question asked in that reply, said again on "go back"
	intent   string
}

// Conversation is the dialog state of one call with an Engine. Its methods
// are called from one goroutine at a time (dialog.Conversation).
//
// Besides dialog.Conversation it offers Frustration, which the session reads
// through the optional interface{ Frustration() float64 }, and History.
type Conversation struct {
	e    *Engine
	call dialog.CallContext

	pend      pending
	slots     map[string]string
	lastReply string // full text of the last reply worth repeating
	question  string // the open question of the last reply
	stack     []snapshot

	lastPred   nlu.Prediction // last classification, for "that's not what I asked"
	lastIntent string
	lastKey    string // what the last turn did, to notice going round in circles
	repeats    int
	silences   int // consecutive silent turns
	fallbacks  int // consecutive turns not understood

	callerTexts []string
	frustration float64
	history     []Line
}

var _ dialog.Conversation = (*Conversation)(nil)

// reply is what one turn says and reports, built before anything is spoken.
type reply struct {
	texts    []string // spoken in order, each split into sentences
	question string   // the question the reply ends with, if any
	key      string   // what the turn did; the same key twice in a row is a circle
	record   bool     // the reply becomes the one "repeat that" says
	res      dialog.Result
}

func (r *reply) say(texts ...string) {
	for _, t := range texts {
		if t != "" {
			r.texts = append(r.texts, t)
		}
	}
}

func (r *reply) ask(q string) {
	r.say(q)
	r.question = q
}

// Frustration is how annoyed the caller sounds, 0..1: the Frustration score
// of their latest utterance, or what remains of earlier ones (each turn keeps
// 60% of the previous level), whichever is higher.
func (c *Conversation) Frustration() float64 { return c.frustration }

// History returns a copy of the conversation so far (at most the last 200 lines).
func (c *Conversation) History() []Line { return append([]Line(nil), c.history...) }

// Greeting says the knowledge base's greeting.
func (c *Conversation) Greeting(ctx context.Context, say func(sentence string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kb: greeting: %w", err)
	}
	g := c.e.kb.Company.Greeting
	c.lastReply = g
	c.question = c.e.opening
	c.stack[0].question = c.e.opening
	c.addLine(SpeakerAI, g)
	return speak(splitSentences(g), say, "greeting")
}

// Heard records what the caller actually heard of the last reply after a
// barge-in: the history keeps only that, while "repeat that" still says the
// full reply.
func (c *Conversation) Heard(text string) {
	for i := len(c.history) - 1; i >= 0; i-- {
		if l := &c.history[i]; l.Speaker == SpeakerAI {
			if l.Intended == "" {
				l.Intended = l.Text
			}
			l.Text = normalizeSpace(text)
			return
		}
	}
}

// Respond answers one caller turn. It works out the whole reply first (it
// takes microseconds), then says it sentence by sentence. When say reports
// dialog.ErrInterrupted, Respond stops speaking and returns the result with
// a nil error: the state already reflects the full reply, and Heard tells
// the history what was actually heard. Any other say error is returned.
//
// Result.Confidence is the classifier's calibrated confidence when the turn
// was classified, 1 when it was understood by rule (keypad digits, a yes or
// no to the pending question, spoken digits of the right length) and 0 when
// there was nothing to understand (silence, no words).
func (c *Conversation) Respond(ctx context.Context, in dialog.Input, say func(sentence string) error) (dialog.Result, error) {
	if err := ctx.Err(); err != nil {
		return dialog.Result{}, fmt.Errorf("kb: respond: %w", err)
	}
	var r reply
	switch in.Kind {
	case dialog.InputSilence:
		c.onSilence(&r)
	case dialog.InputDTMF:
		c.silences = 0
		c.addLine(SpeakerCaller, "DTMF "+in.Digits)
		c.onDTMF(&r, in.Digits)
	default:
		c.silences = 0
		c.addLine(SpeakerCaller, in.Text)
		c.onSpeech(&r, in)
	}
	res := c.finish(&r)
	var sents []string
	for _, t := range r.texts {
		sents = append(sents, splitSentences(t)...)
	}
	return res, speak(sents, say, "respond")
}

// speak says each sentence, stopping at the first error.
func speak(sents []string, say func(string) error, op string) error {
	for _, s := range sents {
		if err := say(s); err != nil {
			if errors.Is(err, dialog.ErrInterrupted) {
				return nil
			}
			return fmt.Errorf("kb: %s: say: %w", op, err)
		}
	}
	return nil
}

// finish records the reply in the conversation state and completes the result.
func (c *Conversation) finish(r *reply) dialog.Result {
	if r.key != "" && r.key == c.lastKey {
		c.repeats++
	} else {
		c.repeats = 0
	}
	c.lastKey = r.key
	text := strings.Join(r.texts, " ")
	if r.record {
		c.lastReply = text
	}
	c.question = r.question
	c.addLine(SpeakerAI, text)
	// Only a new question or answer is a step "go back" returns from.
	if r.record && r.key != "back" && r.key != "repeat" {
		c.push()
	}
	res := r.res
	res.Repeats = c.repeats
	if len(c.slots) > 0 {
		res.Slots = maps.Clone(c.slots)
	}
	res.Expect = c.expect()
	return res
}

// expect is the recognition mode for the caller's next turn. "Anything
// else?" stays open because callers often answer it with the next request.
func (c *Conversation) expect() dialog.Mode {
	switch c.pend.kind {
	case waitSlot:
		switch c.pend.intent.Slots[c.pend.slot].Type {
		case SlotDigits:
			return dialog.ModeDigits
		case SlotYesNo:
			return dialog.ModeYesNo
		}
	case waitSlotConfirm, waitConfirm, waitFollowUp:
		return dialog.ModeYesNo
	}
	return dialog.ModeOpen
}

func (c *Conversation) push() {
	s := snapshot{pend: c.pend, slots: maps.Clone(c.slots), question: c.question, intent: c.lastIntent}
	if len(c.stack) >= maxStack {
		c.stack = append(c.stack[:1], c.stack[2:]...) // keep the start of the call
	}
	c.stack = append(c.stack, s)
}

func (c *Conversation) addLine(speaker, text string) {
	if len(c.history) >= maxHistory {
		c.history = append(c.history[:0], c.history[1:]...)
	}
	c.history = append(c.history, Line{Speaker: speaker, Text: text})
}

// onSilence re-prompts with the open question; the second silence in a row ends the call.
func (c *Conversation) onSilence(r *reply) {
	c.silences++
	co := c.e.kb.Company
	if c.silences >= 2 {
		r.say(co.SilenceGoodbye)
		r.res.EndCall = true
		r.key = "silence"
		c.pend = pending{}
		return
	}
	r.say(co.Reprompt[min(c.silences-1, len(co.Reprompt)-1)])
	q := c.question
	if q == "" {
		q = co.AskMore
	}
	r.ask(q)
	r.key = "reprompt"
	r.res.Intent = c.pendingIntent()
}

// pendingIntent names the intent the open question belongs to.
func (c *Conversation) pendingIntent() string {
	if c.pend.intent != nil {
		return c.pend.intent.Name
	}
	return ""
}

// onDTMF handles keypad input: 0 asks for a person, * repeats, 1 and 2 answer
// yes/no questions, and digit strings fill a digits slot (a trailing # ends the entry).
func (c *Conversation) onDTMF(r *reply, keys string) {
	keys = strings.TrimRight(keys, "#")
	r.res.Confidence = 1
	p := c.pend
	digitSlot := p.kind == waitSlot && p.intent.Slots[p.slot].Type == SlotDigits
	switch {
	case keys == "0" && !(digitSlot && p.intent.Slots[p.slot].Length == 1):
		c.wantsHuman(r)
		return
	case keys == "*":
		c.repeat(r)
		return
	}
	switch p.kind {
	case waitSlot:
		s := p.intent.Slots[p.slot]
		switch s.Type {
		case SlotDigits:
			if isDigits(keys) && len(keys) == s.Length {
				c.fill(r, s.Name, keys)
				return
			}
		case SlotYesNo:
			if yn := keyYesNo(keys); yn != answerNone {
				c.fill(r, s.Name, yesNoValue(yn))
				return
			}
		}
		c.retrySlot(r)
		return
	case waitSlotConfirm:
		s := p.intent.Slots[p.slot]
		if isDigits(keys) && len(keys) == s.Length {
			c.fill(r, s.Name, keys)
			return
		}
	}
	if yn := keyYesNo(keys); yn != answerNone && p.kind != waitNone {
		c.answerYesNo(r, yn)
		return
	}
	c.notUnderstood(r, 0)
}

// keyYesNo maps the keypad's 1 and 2 to yes and no.
func keyYesNo(keys string) yesNo {
	switch keys {
	case "1":
		return answerYes
	case "2":
		return answerNo
	}
	return answerNone
}

func yesNoValue(yn yesNo) string {
	if yn == answerYes {
		return "yes"
	}
	return "no"
}

// onSpeech handles a recognized utterance.
func (c *Conversation) onSpeech(r *reply, in dialog.Input) {
	text := normalizeSpace(in.Text)
	ws := dropFillers(words(text))
	if len(ws) == 0 || (c.e.opt.MinASRConfidence > 0 && in.Confidence < c.e.opt.MinASRConfidence) {
		c.notUnderstood(r, 0)
		return
	}
	c.frustration = max(Frustration(text, c.callerTexts...), c.frustration*frustrationDecay)
	c.callerTexts = append(c.callerTexts, text)
	if len(c.callerTexts) > callerMemory {
		c.callerTexts = c.callerTexts[1:]
	}

	pred := c.e.classify(text)
	conf := c.e.opt.ConfirmBelow
	top := pred.Intent
	action := ActionNone
	if !pred.OutOfScope {
		action = c.e.actionOf(top)
	}
	confidentOther := !pred.OutOfScope && action == ActionNone && pred.Confidence >= conf &&
		(c.pend.intent == nil || top != c.pend.intent.Name)
	// A confident control request wins over the open question: "go back"
	// while a card number is asked for goes back.
	control := action != ActionNone && action != ActionYes && action != ActionNo && pred.Confidence >= conf
	if control && c.answersPending(text, action) {
		control = false
	}

	if asksForHuman(ws) || (action == ActionAgent && pred.Confidence >= conf) {
		r.res.Confidence = 1 // by rule
		if action == ActionAgent {
			r.res.Confidence = pred.Confidence
		}
		c.wantsHuman(r)
		return
	}

	if c.pend.kind != waitNone && !control && c.onPending(r, text, ws, pred, confidentOther) {
		return
	}

	r.res.Confidence = pred.Confidence
	if action != ActionNone {
		if pred.Confidence < conf && action != ActionYes && action != ActionNo {
			c.notUnderstood(r, pred.Confidence)
			return
		}
		c.control(r, action, top)
		return
	}
	best := nlu.Scored{}
	if len(pred.Top) > 0 {
		best = pred.Top[0]
	}
	c.lastPred = pred
	switch {
	case !pred.OutOfScope && c.e.kb.Intent(top) == nil:
		c.notUnderstood(r, 0) // a label the knowledge base does not have
	case !pred.OutOfScope && pred.Confidence >= conf:
		c.start(r, c.e.kb.Intent(top), text, pred.Confidence)
	case !pred.OutOfScope && pred.Confidence >= c.e.opt.RejectBelow:
		c.offer(r, c.e.kb.Intent(top), pred.Confidence)
	case pred.OutOfScope && best.Confidence >= conf && c.e.kb.Intent(best.Intent) != nil && !c.e.isControl(best.Intent):
		// A likely in-scope guess the classifier still rejected (its
		// out-of-scope threshold is stricter): asking beats a wrong refusal.
		c.offer(r, c.e.kb.Intent(best.Intent), best.Confidence)
	case pred.OutOfScope && best.Confidence < c.e.opt.RejectBelow:
		// Nothing in the knowledge base comes close: decline politely.
		c.outOfScope(r)
	default:
		c.notUnderstood(r, pred.Confidence)
	}
}

// answersPending reports whether an utterance the classifier took for a
// control request really answers the open question: digits of the expected
// length for a digits slot ("no, it's 4 8 2 2"), or a correction of a
// read-back or a guess, which means no.
func (c *Conversation) answersPending(text string, a Action) bool {
	p := c.pend
	switch p.kind {
	case waitSlot, waitSlotConfirm:
		s := p.intent.Slots[p.slot]
		if s.Type == SlotDigits && len(ParseDigits(text, true)) == s.Length {
			return true
		}
	}
	return a == ActionCorrection && (p.kind == waitSlotConfirm || p.kind == waitConfirm)
}

// onPending treats the utterance as the answer to the open question. It
// reports false when the utterance is something else (a new request), which
// the caller then handles as usual.
func (c *Conversation) onPending(r *reply, text string, ws []string, pred nlu.Prediction, confidentOther bool) bool {
	p := c.pend
	yn := parseYesNo(text)
	// "no, I want to know about fees": a long reply with a confident other
	// request is that request.
	if yn != answerNone && confidentOther && len(ws) > 3 {
		yn = answerNone
	}
	if yn == answerNone && !pred.OutOfScope && pred.Confidence >= c.e.opt.ConfirmBelow {
		switch c.e.actionOf(pred.Intent) {
		case ActionYes:
			yn = answerYes
		case ActionNo, ActionCorrection:
			yn = answerNo
		}
	}
	r.res.Confidence = 1
	switch p.kind {
	case waitSlot:
		s := p.intent.Slots[p.slot]
		switch s.Type {
		case SlotDigits:
			d := ParseDigits(text, true)
			if len(d) == s.Length {
				c.fillSpoken(r, s, d)
				return true
			}
			if confidentOther && d == "" {
				return false
			}
		case SlotYesNo:
			if yn != answerNone {
				c.fill(r, s.Name, yesNoValue(yn))
				return true
			}
			if confidentOther {
				return false
			}
		case SlotFree:
			// Any words answer an open question ("last March"); only a
			// longer, very clear request for something else changes the subject.
			if confidentOther && pred.Confidence >= switchFromFree && len(ws) >= 3 {
				return false
			}
			c.fill(r, s.Name, text)
			return true
		}
		r.res.Confidence = pred.Confidence
		c.retrySlot(r)
		return true
	case waitSlotConfirm:
		s := p.intent.Slots[p.slot]
		if d := ParseDigits(text, true); len(d) == s.Length && d != p.value {
			c.fillSpoken(r, s, d) // "no, it's 4 8 2 2"
			return true
		}
		switch yn {
		case answerYes:
			c.fill(r, s.Name, p.value)
			return true
		case answerNo:
			c.pend = pending{kind: waitSlot, intent: p.intent, slot: p.slot}
			r.say(c.e.kb.Company.Sorry)
			r.ask(s.Prompt)
			r.key = "ask:" + p.intent.Name + ":" + s.Name
			r.record = true
			r.res.Intent = p.intent.Name
			return true
		}
	case waitConfirm:
		switch yn {
		case answerYes:
			c.start(r, p.intent, "", 1)
			return true
		case answerNo:
			c.pend = pending{}
			r.ask(c.e.kb.Company.Rephrase)
			r.key = "reprompt"
			r.record = true
			return true
		}
	case waitFollowUp:
		f := p.intent.FollowUp
		next := f.No
		if yn == answerYes {
			next = f.Yes
		}
		switch {
		case yn == answerNone:
		case next != "":
			c.start(r, c.e.kb.Intent(next), "", 1)
			return true
		case yn == answerYes:
			c.pend = pending{}
			r.ask(c.e.kb.Company.AskMore)
			r.key = "askmore"
			r.res.Intent = p.intent.Name
			return true
		default:
			c.pend = pending{kind: waitAnythingElse}
			r.ask(c.e.kb.Company.AnythingElse)
			r.key = "anything_else"
			r.res.Intent = p.intent.Name
			return true
		}
	case waitAnythingElse:
		switch yn {
		case answerYes:
			c.pend = pending{}
			r.ask(c.e.kb.Company.AskMore)
			r.key = "askmore"
			return true
		case answerNo:
			c.pend = pending{}
			r.say(c.e.kb.Company.Goodbye)
			r.key = "goodbye"
			r.res.EndCall = true
			r.res.Intent = c.e.intentFor(ActionNo)
			return true
		}
	}
	return false
}

// answerYesNo answers the open question with a keypad yes or no.
func (c *Conversation) answerYesNo(r *reply, yn yesNo) {
	word := yesNoValue(yn)
	if !c.onPending(r, word, []string{word}, nlu.Prediction{}, false) {
		c.notUnderstood(r, 1)
	}
}

// fillSpoken fills a digits slot from speech, reading it back first when
// the slot asks for confirmation.
func (c *Conversation) fillSpoken(r *reply, s Slot, digits string) {
	if !s.Confirm {
		c.fill(r, s.Name, digits)
		return
	}
	in := c.pend.intent
	c.pend = pending{kind: waitSlotConfirm, intent: in, slot: c.pend.slot, value: digits}
	r.ask(strings.ReplaceAll(c.e.kb.Company.ConfirmDigits, "{digits}", sayDigits(digits)))
	r.key = "confirm:" + in.Name + ":" + s.Name
	r.record = true
	r.res.Intent = in.Name
}

// fill stores a slot value and carries on with the pending intent.
func (c *Conversation) fill(r *reply, name, value string) {
	c.slots[name] = value
	in := c.pend.intent
	c.pend = pending{}
	c.proceed(r, in)
}

// retrySlot asks for the pending slot again.
func (c *Conversation) retrySlot(r *reply) {
	in := c.pend.intent
	s := in.Slots[c.pend.slot]
	q := s.Retry
	if q == "" {
		q = s.Prompt
	}
	c.pend = pending{kind: waitSlot, intent: in, slot: c.pend.slot}
	r.ask(q)
	r.key = "ask:" + in.Name + ":" + s.Name
	r.record = true
	r.res.Intent = in.Name
}

// start begins answering intent: it takes slot values the request already
// contains ("balance for the card ending 4 8 2 1"), then asks for the rest.
func (c *Conversation) start(r *reply, in *Intent, text string, confidence float64) {
	r.res.Confidence = confidence
	c.lastIntent = in.Name
	c.fallbacks = 0
	if text != "" {
		// Digits in the request fill the intent's first digits slot, even
		// one filled before ("and the card ending 1 2 3 4?").
		for i, s := range in.Slots {
			if s.Type != SlotDigits {
				continue
			}
			if d := ParseDigits(text, false); len(d) == s.Length {
				c.pend = pending{kind: waitSlot, intent: in, slot: i}
				c.fillSpoken(r, s, d)
				return
			}
			break
		}
	}
	c.proceed(r, in)
}

// proceed asks for the intent's first missing slot, or answers it.
func (c *Conversation) proceed(r *reply, in *Intent) {
	r.res.Intent = in.Name
	r.record = true
	for i, s := range in.Slots {
		if _, ok := c.slots[s.Name]; ok {
			continue
		}
		c.pend = pending{kind: waitSlot, intent: in, slot: i}
		r.ask(s.Prompt)
		r.key = "ask:" + in.Name + ":" + s.Name
		return
	}
	c.answer(r, in)
}

// answer says the intent's answer and what comes after it.
func (c *Conversation) answer(r *reply, in *Intent) {
	co := c.e.kb.Company
	r.key = "answer:" + in.Name
	r.say(c.fillAnswer(in))
	c.pend = pending{}
	switch {
	case in.Human:
		r.res.HumanOnly = true
		if c.e.opt.HumansAvailable {
			r.say(co.Transfer)
			return
		}
		r.say(co.NoHuman)
		c.pend = pending{kind: waitAnythingElse}
		r.ask(co.AnythingElse)
	case in.End:
		r.res.EndCall = true
	case strings.HasSuffix(in.Answer, "?"):
		sents := splitSentences(in.Answer)
		r.question = sents[len(sents)-1] // an open question: the caller's next request answers it
	case in.FollowUp != nil:
		c.pend = pending{kind: waitFollowUp, intent: in}
		r.ask(in.FollowUp.Question)
	default:
		c.pend = pending{kind: waitAnythingElse}
		r.ask(co.AnythingElse)
	}
}

// fillAnswer replaces {slot} references with the collected values; digits
// are spelt out so the synthesizer reads them one by one.
func (c *Conversation) fillAnswer(in *Intent) string {
	return refPattern.ReplaceAllStringFunc(in.Answer, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v := c.slots[name]
		for _, s := range in.Slots {
			if s.Name == name && s.Type == SlotDigits {
				return sayDigits(v)
			}
		}
		return v
	})
}

// offer asks whether an uncertain guess is right.
func (c *Conversation) offer(r *reply, in *Intent, confidence float64) {
	c.pend = pending{kind: waitConfirm, intent: in}
	r.ask(strings.ReplaceAll(c.e.kb.Company.Confirm, "{title}", in.DisplayTitle()))
	r.key = "confirm:" + in.Name
	r.record = true
	r.res.Intent = in.Name
	r.res.Confidence = confidence
}

// control handles the control intents outside an open question.
func (c *Conversation) control(r *reply, a Action, name string) {
	r.res.Intent = name
	switch a {
	case ActionRepeat:
		c.repeat(r)
		r.res.Intent = name
	case ActionBack:
		c.back(r)
		r.res.Intent = name
	case ActionCorrection:
		c.correction(r)
		r.res.Intent = name
	case ActionAgent:
		c.wantsHuman(r)
	default: // a yes or no with nothing to answer
		in := c.e.kb.Intent(name)
		q := in.Answer
		if q == "" {
			q = c.e.kb.Company.AskMore
		}
		c.pend = pending{}
		r.ask(q)
		r.key = "reprompt"
	}
}

// repeat says the last reply again, in full even if the caller heard only part.
func (c *Conversation) repeat(r *reply) {
	r.key = "repeat"
	r.res.Intent = c.e.intentFor(ActionRepeat)
	if c.lastReply == "" {
		r.ask(c.e.kb.Company.NothingToRepeat)
		return
	}
	r.say(c.lastReply)
	r.question = c.question
}

// back returns to the question before the current one.
func (c *Conversation) back(r *reply) {
	r.key = "back"
	co := c.e.kb.Company
	if len(c.stack) > 1 {
		c.stack = c.stack[:len(c.stack)-1]
	}
	prev := c.stack[len(c.stack)-1]
	c.pend = prev.pend
	c.slots = maps.Clone(prev.slots)
	if c.slots == nil {
		c.slots = map[string]string{}
	}
	c.lastIntent = prev.intent
	q := prev.question
	if q == "" {
		q = co.AskMore
	}
	r.say(co.Back)
	r.ask(q)
	r.record = true
}

// correction offers the next best guess for the caller's last request.
func (c *Conversation) correction(r *reply) {
	alts := c.e.alternatives(c.lastPred, c.lastIntent)
	if len(alts) == 0 {
		c.pend = pending{}
		r.ask(c.e.kb.Company.Rephrase)
		r.key = "reprompt"
		r.record = true
		return
	}
	next := c.e.kb.Intent(alts[0].Intent)
	// The next "that's not what I asked" moves one further down the list.
	c.lastPred.Top = removeIntent(c.lastPred.Top, c.lastIntent)
	c.lastIntent = next.Name
	r.say(c.e.kb.Company.Sorry)
	c.offer(r, next, alts[0].Confidence)
}

func removeIntent(top []nlu.Scored, name string) []nlu.Scored {
	out := top[:0:0]
	for _, s := range top {
		if s.Intent != name {
			out = append(out, s)
		}
	}
	return out
}

// wantsHuman answers a request for a person.
func (c *Conversation) wantsHuman(r *reply) {
	co := c.e.kb.Company
	r.res.WantsHuman = true
	r.res.Intent = c.e.intentFor(ActionAgent)
	r.key = "agent"
	r.record = true
	c.pend = pending{}
	if c.e.opt.HumansAvailable {
		r.say(co.Transfer)
		return
	}
	r.say(co.NoHuman)
	c.pend = pending{kind: waitAnythingElse}
	r.ask(co.AnythingElse)
}

// outOfScope declines politely.
func (c *Conversation) outOfScope(r *reply) {
	co := c.e.kb.Company
	r.res.OutOfScope = true
	r.key = "reprompt"
	r.record = true
	c.pend = pending{kind: waitAnythingElse}
	r.say(co.OutOfScope)
	r.ask(co.AnythingElse)
}

// notUnderstood asks the caller to say it again, keeping the open question.
func (c *Conversation) notUnderstood(r *reply, confidence float64) {
	co := c.e.kb.Company
	c.fallbacks++
	r.res.Confidence = confidence
	r.key = "reprompt"
	fb := co.Fallback[min(c.fallbacks-1, len(co.Fallback)-1)]
	if c.pend.kind != waitNone && c.question != "" {
		r.say(fb)
		r.ask(c.question)
	} else {
		r.ask(fb)
	}
	r.res.Intent = c.pendingIntent()
}
