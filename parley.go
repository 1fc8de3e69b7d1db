// Package parley holds the domain types every part of the call center shares:
// calls, legs, turns and the per-turn signals the escalation policy reads.
// It imports nothing from the project, so every package can depend on it.
package parley

import (
	"context"
	"time"
)

// Channel is how a caller reached parley.
type Channel string

// Channels parley answers on.
const (
	ChannelTwilio Channel = "twilio"
	ChannelWebRTC Channel = "webrtc"
)

// Speaker says who spoke a turn.
type Speaker string

// Speakers of a call.
const (
	SpeakerCaller Speaker = "caller"
	SpeakerAI     Speaker = "ai"
	SpeakerAgent  Speaker = "agent"
)

// LegInfo describes a caller's connection as the channel reported it.
type LegInfo struct {
	CallID    string            // parley's id for the call (Twilio CallSid for phone calls)
	StreamID  string            // channel-specific media stream id
	Channel   Channel           // how the caller reached us
	From      string            // caller number or identity
	To        string            // dialled number
	Params    map[string]string // channel parameters (Twilio <Parameter>s)
	StartedAt time.Time
}

// Leg is one party's media connection to parley: a phone call over Twilio
// Media Streams, or a browser over WebRTC. Audio moves as 20 ms PCM16 frames
// at SampleRate in both directions.
type Leg interface {
	// Info describes the leg; it is valid once Run has delivered the first event.
	Info() LegInfo
	// SampleRate is the rate of inbound and outbound frames.
	SampleRate() int
	// Run reads the leg on the calling goroutine, delivering everything to h,
	// until the far end hangs up, the connection drops or ctx ends. It
	// returns nil on a normal hang-up.
	Run(ctx context.Context, h LegHandler) error
	// WriteFrame sends one 20 ms frame now; pacing is the caller's job.
	WriteFrame(pcm []int16) error
	// Mark asks to be told (LegHandler.OnMark) when the audio sent so far
	// has been played to the caller.
	Mark(name string) error
	// Clear drops audio the far end has buffered but not yet played.
	Clear() error
	// Hangup ends the call.
	Hangup(ctx context.Context, reason string) error
}

// LegHandler receives a leg's inbound events, all from the leg's one reader
// goroutine. The audio slice is only valid during the call.
type LegHandler interface {
	OnAudio(pcm []int16)
	OnDTMF(digit byte)
	OnMark(name string)
}

// Signals are what one turn tells the escalation policy.
type Signals struct {
	Intent          string        `json:"intent,omitempty"`
	ASRConfidence   float64       `json:"asr_confidence"`   // recognizer confidence 0..1
	NLUConfidence   float64       `json:"nlu_confidence"`   // understanding confidence 0..1
	OutOfScope      bool          `json:"out_of_scope"`     // request outside what the AI handles
	AskedForHuman   bool          `json:"asked_for_human"`  // words or DTMF 0
	Frustration     float64       `json:"frustration"`      // 0..1 from the embedded detector
	Repeats         int           `json:"repeats"`          // consecutive turns going round in circles
	HumanOnly       bool          `json:"human_only"`       // intent flagged for humans only
	ProviderFailure bool          `json:"provider_failure"` // a speech or language provider failed
	AITime          time.Duration `json:"ai_time"`          // time spent with the AI so far
	// NoInput marks a turn in which the caller said nothing: it neither
	// breaks nor extends a streak of turns the AI did not understand.
	NoInput bool `json:"no_input,omitempty"`
}

// Turn is one utterance of a call, stored as the call goes.
type Turn struct {
	CallID  string  `json:"call_id"`
	Seq     int     `json:"seq"`
	Speaker Speaker `json:"speaker"`
	// Text is what was said; for the AI, only what the caller actually heard.
	Text string `json:"text"`
	// Intended is the AI's full reply when a barge-in cut it short.
	Intended    string    `json:"intended,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
	DTMF        string    `json:"dtmf,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	// For caller turns: when speech ended and when the first reply audio went out.
	EndOfSpeech time.Time `json:"end_of_speech,omitempty"`
	FirstAudio  time.Time `json:"first_audio,omitempty"`
	Signals     *Signals  `json:"signals,omitempty"`
}

// Latency is the response latency of a caller turn: last word to first reply audio.
func (t Turn) Latency() time.Duration {
	if t.EndOfSpeech.IsZero() || t.FirstAudio.IsZero() {
		return 0
	}
	return t.FirstAudio.Sub(t.EndOfSpeech)
}

// Outcome is how a call ended.
type Outcome string

// Call outcomes.
const (
	OutcomeResolved  Outcome = "resolved"  // the AI handled it, caller hung up or said goodbye
	OutcomeEscalated Outcome = "escalated" // handed to a human
	OutcomeAbandoned Outcome = "abandoned" // caller hung up while waiting for a human
	OutcomeCallback  Outcome = "callback"  // caller asked to be called back instead of waiting
	OutcomeVoicemail Outcome = "voicemail" // nobody could take the call; the caller left a message
	OutcomeDropped   Outcome = "dropped"   // the connection failed
	OutcomeFailed    Outcome = "failed"    // parley could not serve the call
)

// Call is one conversation with a caller.
type Call struct {
	ID        string    `json:"id"`
	Channel   Channel   `json:"channel"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitempty"`
	Outcome   Outcome   `json:"outcome,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Node is the parley server that answered the call (several nodes
	// share one PostgreSQL); a call left open by a node that stopped is
	// ended by another (see Cluster).
	Node  string `json:"node,omitempty"`
	Turns []Turn `json:"turns,omitempty"`
}
