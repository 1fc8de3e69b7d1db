// Package dialog runs the conversation of one call: it listens (endpointing
// and a Transcriber), understands and answers (a Responder) and speaks (a
// Synthesizer), with barge-in, DTMF and silence handling. It declares the
// engine interfaces it consumes; dialog/sphinx, dialog/flite, dialog/kb and
// dialog/openai implement them.
package dialog

import (
	"context"
	"errors"
	"time"
)

// Mode tells the recognizer and the endpointer what the caller is expected to say.
type Mode int

// Recognition modes.
const (
	ModeOpen   Mode = iota // free speech
	ModeDigits             // a digit string (account number, last four digits)
	ModeYesNo              // a confirmation
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case ModeDigits:
		return "digits"
	case ModeYesNo:
		return "yesno"
	default:
		return "open"
	}
}

// Word is one recognized word with its confidence and timing in the utterance.
type Word struct {
	Text       string        `json:"text"`
	Confidence float64       `json:"confidence"`
	Start      time.Duration `json:"start"`
	End        time.Duration `json:"end"`
}

// Transcript is the recognizer's final result for one utterance.
type Transcript struct {
	Text       string  `json:"text"`       // lower-case words; "" when nothing was recognized
	Confidence float64 `json:"confidence"` // 0..1, low on noise, mumbling and out-of-vocabulary speech
	Words      []Word  `json:"words,omitempty"`
}

// Transcriber turns caller speech into text.
type Transcriber interface {
	// SampleRate is the rate TranscribeStream.Write expects.
	SampleRate() int
	// Start begins one utterance. The stream holds engine resources (a pooled
	// decoder) until Finish or Close, so a call holds one only while the
	// caller speaks.
	Start(ctx context.Context, mode Mode) (TranscribeStream, error)
}

// TranscribeStream recognizes one utterance as its audio arrives.
type TranscribeStream interface {
	// Write adds audio (any length, at the Transcriber's SampleRate).
	Write(pcm []int16) error
	// Finish ends the utterance and returns the final result. It releases the stream.
	Finish() (Transcript, error)
	// Close abandons the utterance; it is idempotent and safe after Finish.
	Close() error
}

// Synthesizer turns text into speech.
type Synthesizer interface {
	// SampleRate of the audio it emits.
	SampleRate() int
	// Synthesize speaks text (one or more sentences), calling emit with audio
	// chunks as they are produced so the first audio goes out early. It stops
	// when ctx ends or emit returns an error.
	Synthesize(ctx context.Context, text string, emit func(pcm []int16) error) error
}

// InputKind says what a caller turn consists of.
type InputKind int

// Kinds of caller input.
const (
	InputSpeech  InputKind = iota // recognized speech
	InputDTMF                     // keypad digits
	InputSilence                  // the caller said nothing within the no-input timeout
)

// Input is one caller turn as the responder sees it.
type Input struct {
	Kind       InputKind
	Text       string  // recognized text (InputSpeech)
	Confidence float64 // recognizer confidence (InputSpeech)
	Digits     string  // keypad digits (InputDTMF)
}

// Result is what the responder understood from a caller turn.
type Result struct {
	Intent     string            // best intent ("" when none)
	Confidence float64           // calibrated understanding confidence 0..1
	OutOfScope bool              // the request is outside what the AI handles
	WantsHuman bool              // the caller asked for a person
	HumanOnly  bool              // the intent must go to a human
	Repeats    int               // consecutive turns going round in circles
	Slots      map[string]string // slots filled so far
	Expect     Mode              // what the next caller turn should be recognized as
	EndCall    bool              // the conversation is over; hang up after speaking
	Transfer   bool              // the responder itself asks for a human (LLM tool call)
	Summary    string            // the responder's summary, when it asks for a transfer
}

// Responder understands callers and answers them.
type Responder interface {
	// NewConversation starts the dialog state of one call.
	NewConversation(call CallContext) Conversation
}

// CallContext is what a responder knows about the call when it starts.
type CallContext struct {
	CallID string
	From   string
	To     string
}

// Conversation is the dialog state of one call. Its methods are called from
// one goroutine at a time.
type Conversation interface {
	// Greeting is what the AI says when the call connects.
	Greeting(ctx context.Context, say func(sentence string) error) error
	// Respond answers one caller turn, calling say for each sentence as soon
	// as it is ready (so speech starts while the rest is produced). When say
	// returns an error (barge-in), Respond stops and returns what it has.
	Respond(ctx context.Context, in Input, say func(sentence string) error) (Result, error)
	// Heard tells the conversation what the caller actually heard of the last
	// reply after a barge-in, so its history holds only that.
	Heard(text string)
}

// ErrInterrupted is returned by say callbacks when the caller barged in.
var ErrInterrupted = errors.New("dialog: interrupted by the caller")
