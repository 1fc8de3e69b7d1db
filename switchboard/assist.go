package switchboard

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
)

// The AI keeps helping while a caller waits for a person: what the caller
// says in the queue is transcribed and put to the same responder as the AI
// phase (in a conversation of its own). A confident answer to an in-scope
// question is spoken over the hold music; anything else — a request for a
// person, an unclear or out-of-scope one — gets a short reassurance that
// they are still in line. The call keeps its place in the queue
// throughout, and both sides are recorded as turns.

// assistant is the queue-phase helper of one call.
type assistant struct {
	asr   *liveASR
	asked chan question
	conv  dialog.Conversation
}

// question is one utterance of the waiting caller.
type question struct {
	turn       parley.Turn
	confidence float64 // the recognizer's
}

// startAssistant listens to a waiting caller (nil when QueueOptions.Assist
// is off or an engine is missing).
func (sb *Switchboard) startAssistant(ctx context.Context, c *call, kp *keypad) *assistant {
	if !sb.opt.Queue.Assist || sb.eng.Transcriber == nil || sb.eng.Responder == nil {
		return nil
	}
	a := &assistant{asked: make(chan question, 4)}
	a.conv = sb.eng.Responder.NewConversation(dialog.CallContext{CallID: c.info.CallID, From: c.info.From, To: c.info.To})
	a.asr = startASR(ctx, sb.eng.Transcriber, c.leg.SampleRate(), parley.SpeakerCaller, func(t parley.Turn, conf float64) {
		select {
		case a.asked <- question{t, conf}:
		default: // still answering the last ones
		}
	})
	kp.setAlso(a.asr.push)
	return a
}

// questions is where the caller's utterances arrive (nil when off: never ready).
func (a *assistant) questions() <-chan question {
	if a == nil {
		return nil
	}
	return a.asked
}

// stop ends listening; an utterance in progress is dropped (the caller is
// being put through to a person, or has left).
func (a *assistant) stop(kp *keypad) {
	if a == nil {
		return
	}
	kp.setAlso(nil)
	a.asr.abort()
}

// answer records the caller's question and speaks the answer (or the
// reassurance) on v, replacing the music for as long as it lasts.
func (sb *Switchboard) answer(ctx context.Context, c *call, a *assistant, v *voice, q question, log zerolog.Logger) {
	var said []string
	rctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	r, err := a.conv.Respond(rctx, dialog.Input{Kind: dialog.InputSpeech, Text: q.turn.Text, Confidence: q.confidence},
		func(s string) error { said = append(said, s); return nil })
	cancel()
	q.turn.Signals = &parley.Signals{Intent: r.Intent, ASRConfidence: q.confidence, NLUConfidence: r.Confidence,
		OutOfScope: r.OutOfScope, AskedForHuman: r.WantsHuman}
	sb.recordTurn(c, q.turn)
	p := sb.opt.Policy
	answered := err == nil && len(said) > 0 && !r.OutOfScope && !r.WantsHuman && !r.HumanOnly && !r.Transfer && !r.EndCall &&
		r.Confidence >= p.MinNLUConfidence && q.confidence >= p.MinASRConfidence
	text := sb.opt.Prompts.StillWaiting
	if answered {
		text = strings.Join(said, " ") + " " + sb.opt.Prompts.StillWaiting
	} else if err != nil {
		log.Warn().Err(err).Msg("switchboard: the queue assistant could not answer")
	}
	sb.event(c.info.CallID, "queue", map[string]any{"state": "assisted", "intent": r.Intent, "answered": answered})
	v.clear()
	start := time.Now()
	if err := v.say(ctx, text); err != nil {
		log.Warn().Err(err).Msg("switchboard: queue assistant reply failed")
		return
	}
	sb.recordTurn(c, parley.Turn{Speaker: parley.SpeakerAI, Text: text, Start: start, End: time.Now()})
}
