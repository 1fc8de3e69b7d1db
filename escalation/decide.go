// Package escalation decides when a call leaves the AI for a human, and
// (later) queues it, routes it to an agent and carries out the warm
// transfer. Decide is a pure function: the same signals and policy always
// give the same decision, so a stored call can be replayed to explain why it
// went to a human.
package escalation

import (
	"sort"
	"time"

	"github.com/parley-ai/parley"
)

// Reason names one cause of a transfer.
type Reason string

// Reasons a call goes to a human.
const (
	ReasonAskedForHuman   Reason = "asked_for_human"
	ReasonHumanOnly       Reason = "human_only_intent"
	ReasonProviderFailure Reason = "provider_failure"
	ReasonLowConfidence   Reason = "low_confidence"
	ReasonOutOfScope      Reason = "out_of_scope"
	ReasonCircles         Reason = "going_in_circles"
	ReasonFrustration     Reason = "frustration"
	ReasonAITime          Reason = "ai_time"
)

// Policy holds the thresholds and weights of the decision. The zero value
// is not useful; start from DefaultPolicy.
type Policy struct {
	// A turn counts as "not understood" when the recognizer or the
	// understanding confidence is below these.
	MinASRConfidence float64 `yaml:"min_asr_confidence" json:"min_asr_confidence"`
	MinNLUConfidence float64 `yaml:"min_nlu_confidence" json:"min_nlu_confidence"`
	// Soft signals add their weight when present; a transfer happens when
	// the sum reaches Threshold. Streak signals weigh more the longer they last.
	WeightLowConfidence float64 `yaml:"weight_low_confidence" json:"weight_low_confidence"` // per consecutive low-confidence turn
	WeightOutOfScope    float64 `yaml:"weight_out_of_scope" json:"weight_out_of_scope"`     // per consecutive out-of-scope turn
	WeightRepeat        float64 `yaml:"weight_repeat" json:"weight_repeat"`                 // per repeat (dialog going round in circles)
	WeightFrustration   float64 `yaml:"weight_frustration" json:"weight_frustration"`       // times the frustration score 0..1
	Threshold           float64 `yaml:"threshold" json:"threshold"`
	// Hard limits.
	MaxProviderFailures int           `yaml:"max_provider_failures" json:"max_provider_failures"` // failed turns in a row
	MaxAITime           time.Duration `yaml:"max_ai_time" json:"max_ai_time"`                     // 0 = no limit
}

// DefaultPolicy is a sensible starting point: a caller who asks for a
// person, or needs a human-only service, is transferred at once; two turns
// in a row the AI did not understand, or clear frustration, also transfer.
func DefaultPolicy() Policy {
	return Policy{
		MinASRConfidence:    0.35,
		MinNLUConfidence:    0.45,
		WeightLowConfidence: 0.5,
		WeightOutOfScope:    0.5,
		WeightRepeat:        0.5,
		WeightFrustration:   1.0,
		Threshold:           1.0,
		MaxProviderFailures: 2,
		MaxAITime:           15 * time.Minute,
	}
}

// State is what Decide carries from one turn to the next: the streaks.
// It is a value: replaying the same signals from the zero State gives the
// same decisions.
type State struct {
	LowConfidence    int `json:"low_confidence"`
	OutOfScope       int `json:"out_of_scope"`
	ProviderFailures int `json:"provider_failures"`
}

// Decision is the outcome for one turn, with everything that explains it.
type Decision struct {
	Transfer bool           `json:"transfer"`
	Reasons  []Reason       `json:"reasons,omitempty"` // most important first
	Score    float64        `json:"score"`             // sum of soft-signal weights
	Priority bool           `json:"priority"`          // route ahead of others (human-only intents)
	Signals  parley.Signals `json:"signals"`
	State    State          `json:"state"` // the state after this turn
}

// Decide weighs one turn's signals, given the state after the previous
// turn, against the policy.
func Decide(s parley.Signals, st State, p Policy) Decision {
	d := Decision{Signals: s}
	low := s.ASRConfidence < p.MinASRConfidence || s.NLUConfidence < p.MinNLUConfidence
	switch {
	case s.NoInput:
		// Silence is not a misunderstanding; the dialog re-prompts and
		// says goodbye on its own. The streaks carry over unchanged.
	case low && !s.OutOfScope:
		st.LowConfidence++
	default:
		st.LowConfidence = 0
	}
	switch {
	case s.NoInput:
	case s.OutOfScope:
		st.OutOfScope++
	default:
		st.OutOfScope = 0
	}
	if s.ProviderFailure {
		st.ProviderFailures++
	} else {
		st.ProviderFailures = 0
	}
	d.State = st

	type weighed struct {
		r Reason
		w float64
	}
	var hard, soft []weighed
	if s.AskedForHuman {
		hard = append(hard, weighed{ReasonAskedForHuman, 3})
	}
	if s.HumanOnly {
		hard = append(hard, weighed{ReasonHumanOnly, 4})
		d.Priority = true
	}
	if p.MaxProviderFailures > 0 && st.ProviderFailures >= p.MaxProviderFailures {
		hard = append(hard, weighed{ReasonProviderFailure, 2})
	}
	if p.MaxAITime > 0 && s.AITime >= p.MaxAITime {
		hard = append(hard, weighed{ReasonAITime, 1})
	}
	if st.LowConfidence > 0 {
		soft = append(soft, weighed{ReasonLowConfidence, p.WeightLowConfidence * float64(st.LowConfidence)})
	}
	if st.OutOfScope > 0 {
		soft = append(soft, weighed{ReasonOutOfScope, p.WeightOutOfScope * float64(st.OutOfScope)})
	}
	if s.Repeats > 0 {
		soft = append(soft, weighed{ReasonCircles, p.WeightRepeat * float64(s.Repeats)})
	}
	if s.Frustration > 0 {
		soft = append(soft, weighed{ReasonFrustration, p.WeightFrustration * s.Frustration})
	}
	for _, w := range soft {
		d.Score += w.w
	}
	d.Transfer = len(hard) > 0 || (p.Threshold > 0 && d.Score >= p.Threshold)
	if !d.Transfer {
		return d
	}
	sort.SliceStable(hard, func(i, j int) bool { return hard[i].w > hard[j].w })
	sort.SliceStable(soft, func(i, j int) bool { return soft[i].w > soft[j].w })
	for _, w := range append(hard, soft...) {
		if w.w > 0 {
			d.Reasons = append(d.Reasons, w.r)
		}
	}
	return d
}

// Replay runs Decide over a call's stored signals from the zero state and
// returns every decision, so "why did this call go to a human?" can be
// answered again from the store.
func Replay(signals []parley.Signals, p Policy) []Decision {
	var st State
	out := make([]Decision, 0, len(signals))
	for _, s := range signals {
		d := Decide(s, st, p)
		st = d.State
		out = append(out, d)
	}
	return out
}
