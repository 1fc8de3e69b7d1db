package switchboard

import (
	"fmt"
	"strings"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
)

// reasonText says a transfer reason the way an agent reads it.
var reasonText = map[escalation.Reason]string{
	escalation.ReasonAskedForHuman:   "the caller asked for a person",
	escalation.ReasonHumanOnly:       "the request needs a person",
	escalation.ReasonProviderFailure: "the AI's speech or language service failed",
	escalation.ReasonLowConfidence:   "the AI did not understand the caller",
	escalation.ReasonOutOfScope:      "the request is outside what the AI handles",
	escalation.ReasonCircles:         "the conversation was going round in circles",
	escalation.ReasonFrustration:     "the caller sounded frustrated",
	escalation.ReasonAITime:          "the call had been with the AI too long",
}

// ReasonText is the readable form of a transfer reason.
func ReasonText(r escalation.Reason) string {
	if t, ok := reasonText[r]; ok {
		return t
	}
	return strings.ReplaceAll(string(r), "_", " ")
}

// summary is the brief's short account of the call: the responder's own
// when it asked for the transfer (an LLM), otherwise drawn from the
// transcript: what the caller wanted, their first and last words, and why
// the AI handed over. c.mu must be held.
func (sb *Switchboard) summary(c *call, r dialog.Result, d escalation.Decision) string {
	if s := strings.TrimSpace(r.Summary); s != "" {
		return sb.redactText(s)
	}
	var callerSaid []string
	for _, t := range c.briefTranscriptLocked() {
		if t.Speaker == parley.SpeakerCaller && strings.TrimSpace(t.Text) != "" {
			callerSaid = append(callerSaid, strings.TrimSpace(t.Text))
		}
	}
	var b strings.Builder
	if r.Intent != "" {
		fmt.Fprintf(&b, "Topic: %s. ", sb.intentTitle(r.Intent))
	}
	switch len(callerSaid) {
	case 0:
		b.WriteString("The caller has not said anything the AI recognized. ")
	case 1:
		fmt.Fprintf(&b, "The caller said: %q. ", callerSaid[0])
	default:
		fmt.Fprintf(&b, "The caller first said: %q, and last: %q. ", callerSaid[0], callerSaid[len(callerSaid)-1])
	}
	var why []string
	for _, reason := range d.Reasons {
		why = append(why, ReasonText(reason))
	}
	if len(why) > 0 {
		fmt.Fprintf(&b, "Transferred because %s.", strings.Join(why, ", and "))
	}
	return strings.TrimSpace(b.String())
}

// intentTitle is the readable name of an intent, when Options.Intents knows it.
func (sb *Switchboard) intentTitle(intent string) string {
	if sb.opt.Intents != nil {
		if title, _ := sb.opt.Intents(intent); title != "" {
			return title
		}
	}
	return strings.ReplaceAll(intent, "_", " ")
}

// skillFor is the routing skill of the call's intent, if any.
func (sb *Switchboard) skillFor(r dialog.Result) string {
	if sb.opt.Intents == nil || r.Intent == "" {
		return ""
	}
	_, skill := sb.opt.Intents(r.Intent)
	return skill
}
