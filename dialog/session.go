package dialog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
)

// Config tunes the conversation loop of one call. Zero fields take the
// defaults that WithDefaults documents, so Config{} is a working setup.
type Config struct {
	// EndSilence is the pause that ends a caller turn in open speech (700 ms).
	EndSilence time.Duration
	// EarlyEndSilence is the short pause that ends a caller turn when the
	// recognizer's partial hypothesis already reads as complete: words that
	// do not end in "and", "my", "the" or a filler in open speech, a yes or
	// no to a yes/no question, at least four digits (and twice this pause)
	// for a digit string. Other turns wait for EndSilence. It needs a
	// TranscribeStream with Partial (PartialStream). If the caller goes on
	// speaking before EndSilence has passed and the reply has not started
	// playing, the reply is dropped and the words join the same turn
	// (300 ms; negative disables early ends).
	EarlyEndSilence time.Duration
	// DigitsEndSilence is the longer pause allowed while the AI expects a
	// digit string, so callers reading a number are not cut off (1.6 s).
	DigitsEndSilence time.Duration
	// YesNoEndSilence is the short pause that ends a yes/no answer (500 ms).
	YesNoEndSilence time.Duration
	// NoInputTimeout is how long the caller may stay silent after the AI
	// finished speaking before the conversation gets InputSilence (7 s).
	NoInputTimeout time.Duration
	// MaxNoInput is the number of consecutive silent turns after which the
	// call ends once the conversation's reply to the last one has played;
	// the conversation is expected to say goodbye on that turn (2).
	MaxNoInput int
	// BargeInMinSpeech is the sustained speech over the AI that counts as a
	// barge-in; shorter blips and backchannels do not interrupt (300 ms).
	BargeInMinSpeech time.Duration
	// MaxUtterance forces the end of a caller turn that goes on longer (20 s):
	// its speech in all, the parts continued after an early end included.
	MaxUtterance time.Duration
	// PreRoll is the audio kept from before the detected speech start and
	// fed to the recognizer, so first syllables are not lost (300 ms).
	PreRoll time.Duration
	// InterDigitTimeout ends a keypad turn when no further key comes (2 s);
	// '#' ends it at once.
	InterDigitTimeout time.Duration
	// MaxCallDuration hangs up a call that lasts longer; zero means no limit.
	MaxCallDuration time.Duration
	// MaxQueue bounds the synthesized audio queued ahead of the caller; a
	// longer reply is produced as the queue drains (20 s).
	MaxQueue time.Duration
	// NoHangup leaves the line open when the conversation ends (goodbye,
	// silence, maximum duration): Run returns and the owner hangs up, for
	// example after a satisfaction survey. Outcome.HungUp is then false.
	NoHangup bool
	// NotUnderstood is said when the recognizer fails on a caller turn.
	NotUnderstood string
	// Apology is said when the responder fails, so the caller is never left
	// in silence.
	Apology string
	// FillerAfter is how long a reply may take to start before the caller
	// hears Filler, so a slow responder never means dead air (2 s; negative
	// disables it). The filler is not part of the conversation's history.
	FillerAfter time.Duration
	// Filler is the short sentence played when a reply is slow.
	Filler string
}

// Defaults used by Config.WithDefaults.
const (
	DefaultEndSilence        = 700 * time.Millisecond
	DefaultEarlyEndSilence   = 300 * time.Millisecond
	DefaultDigitsEndSilence  = 1600 * time.Millisecond
	DefaultYesNoEndSilence   = 500 * time.Millisecond
	DefaultNoInputTimeout    = 7 * time.Second
	DefaultMaxNoInput        = 2
	DefaultBargeInMinSpeech  = 300 * time.Millisecond
	DefaultMaxUtterance      = 20 * time.Second
	DefaultPreRoll           = 300 * time.Millisecond
	DefaultInterDigitTimeout = 2 * time.Second
	DefaultMaxQueue          = 20 * time.Second
	DefaultNotUnderstood     = "Sorry, I didn't catch that."
	DefaultApology           = "I'm sorry, I'm having trouble on my side. Could you say that again?"
	DefaultFillerAfter       = 2 * time.Second
	DefaultFiller            = "One moment, please."
)

// WithDefaults returns c with every zero (or negative) field set to its
// default; a negative FillerAfter or EarlyEndSilence stays negative
// (no filler, no early end of turn).
func (c Config) WithDefaults() Config {
	dur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	dur(&c.EndSilence, DefaultEndSilence)
	dur(&c.DigitsEndSilence, DefaultDigitsEndSilence)
	dur(&c.YesNoEndSilence, DefaultYesNoEndSilence)
	dur(&c.NoInputTimeout, DefaultNoInputTimeout)
	dur(&c.BargeInMinSpeech, DefaultBargeInMinSpeech)
	dur(&c.MaxUtterance, DefaultMaxUtterance)
	dur(&c.PreRoll, DefaultPreRoll)
	dur(&c.InterDigitTimeout, DefaultInterDigitTimeout)
	dur(&c.MaxQueue, DefaultMaxQueue)
	if c.FillerAfter == 0 {
		c.FillerAfter = DefaultFillerAfter
	}
	if c.EarlyEndSilence == 0 {
		c.EarlyEndSilence = DefaultEarlyEndSilence
	}
	if c.Filler == "" {
		c.Filler = DefaultFiller
	}
	if c.MaxCallDuration < 0 {
		c.MaxCallDuration = 0
	}
	if c.MaxNoInput <= 0 {
		c.MaxNoInput = DefaultMaxNoInput
	}
	if c.NotUnderstood == "" {
		c.NotUnderstood = DefaultNotUnderstood
	}
	if c.Apology == "" {
		c.Apology = DefaultApology
	}
	return c
}

// endSilence is the end-of-turn pause for what the AI asked for.
func (c Config) endSilence(m Mode) time.Duration {
	switch m {
	case ModeDigits:
		return c.DigitsEndSilence
	case ModeYesNo:
		return c.YesNoEndSilence
	default:
		return c.EndSilence
	}
}

// Engines are the speech and language engines one call uses; all three are
// required. They are shared between calls; a Session holds engine resources
// (a TranscribeStream) only while the caller speaks.
type Engines struct {
	Transcriber Transcriber
	Responder   Responder
	Synthesizer Synthesizer
}

// Action is what the owner of a Session wants after a caller turn was answered.
type Action int

// Actions returned by Hooks.OnResult.
const (
	// ActionContinue keeps the AI conversation going.
	ActionContinue Action = iota
	// ActionHandOff ends the AI conversation once the current reply has
	// played: the Session returns ReasonHandOff without hanging up, so the
	// owner (the switchboard) can transfer the caller to a human. Run stops
	// reading the leg when it returns; an owner that keeps the call
	// running after the hand-off reads the leg itself and uses Converse.
	ActionHandOff
)

// Hooks let the owner of a Session observe and steer it. Every hook is
// optional and is called from the Session's dialog loop (the goroutine that
// called Run); a hook must return quickly and must not call back into Run.
type Hooks struct {
	// OnTurn receives every finished turn (caller and AI), in order. Caller
	// turns carry the Signals the escalation policy reads; a caller turn is
	// recorded together with the reply to it, once that has played or been
	// cut (so FirstAudio is known). EventTranscript carries the words live.
	OnTurn func(parley.Turn)
	// OnEvent receives live events: speech started and ended, barge-ins,
	// transcripts and state changes, for consoles and metrics.
	OnEvent func(Event)
	// OnResult is asked after each answered caller turn, with what the
	// responder understood and the turn's signals, as soon as the reply is
	// produced (before it has finished playing). Returning ActionHandOff
	// stops the AI loop after the reply; nil means ActionContinue.
	OnResult func(Result, parley.Signals) Action
}

// EventKind names a live event.
type EventKind string

// Live events of a Session.
const (
	EventSpeechStart EventKind = "speech_start" // the caller started speaking
	EventSpeechEnd   EventKind = "speech_end"   // the caller's turn ended (endpointer)
	EventBargeIn     EventKind = "barge_in"     // the caller interrupted the AI
	EventIgnored     EventKind = "ignored"      // speech over the AI that did not interrupt (blip, backchannel, noise)
	EventTranscript  EventKind = "transcript"   // the caller's words (Text) or keys (Digits)
	EventState       EventKind = "state"        // the Session changed State
)

// State is what the Session is doing.
type State string

// Session states.
const (
	StateListening State = "listening" // waiting for the caller
	StateThinking  State = "thinking"  // transcribing and producing a reply (its first sentences may already play)
	StateSpeaking  State = "speaking"  // the whole reply is produced and still playing
	StateEnded     State = "ended"     // the conversation is over
)

// Event is one live event of a Session.
type Event struct {
	Kind   EventKind
	Time   time.Time
	State  State  // EventState
	Text   string // EventTranscript: recognized words; EventIgnored: why
	Digits string // EventTranscript: keypad digits
}

// Reason says why a Session ended.
type Reason string

// Reasons a Session ends.
const (
	ReasonCallerHangup Reason = "caller_hangup" // the caller hung up
	ReasonAIEnded      Reason = "ai_ended"      // the conversation ended the call (Result.EndCall)
	ReasonNoInput      Reason = "no_input"      // the caller stayed silent MaxNoInput times
	ReasonHandOff      Reason = "hand_off"      // the owner took the call over (ActionHandOff)
	ReasonMaxDuration  Reason = "max_duration"  // MaxCallDuration elapsed
	ReasonDropped      Reason = "dropped"       // the connection failed
	ReasonCancelled    Reason = "cancelled"     // Run's context ended or Close was called
)

// Outcome is why and how a Session ended.
type Outcome struct {
	Reason Reason
	// HungUp reports that the Session hung the leg up itself.
	HungUp bool
}

// CallOutcome maps the Session's end to the call's outcome for the record.
func (o Outcome) CallOutcome() parley.Outcome {
	switch o.Reason {
	case ReasonHandOff:
		return parley.OutcomeEscalated
	case ReasonDropped:
		return parley.OutcomeDropped
	case ReasonCancelled, ReasonMaxDuration:
		return parley.OutcomeFailed
	default:
		return parley.OutcomeResolved
	}
}

// Stats counts what happened on the media path of one call.
type Stats struct {
	FramesIn      uint64 // inbound frames delivered by the leg
	FramesDropped uint64 // inbound frames dropped because the dialog loop fell behind
	DigitsDropped uint64 // keypad digits dropped for the same reason
	Utterances    uint64 // speech segments the endpointer found
	Blips         uint64 // speech over the AI too short to interrupt
	Backchannels  uint64 // utterances ignored as backchannels ("mm-hm")
	Noise         uint64 // utterances with an empty transcript
	BargeIns      uint64 // times the caller interrupted the AI
	ASRFailures   uint64 // transcriber errors
	NLUFailures   uint64 // responder errors
	TTSFailures   uint64 // sentences the synthesizer failed on
	Fillers       uint64 // fillers played because a reply was slow
}

// inputQueueDuration bounds the inbound audio waiting for the dialog loop.
const inputQueueDuration = 2 * time.Second

// Session runs the AI conversation of one call: it listens to the leg,
// detects the end of each caller turn, transcribes it, lets the
// conversation answer and speaks the answer sentence by sentence, with
// barge-in, keypad input and silence handling. It implements
// parley.LegHandler: the leg's reader goroutine only copies audio into a
// bounded buffer; all decisions happen on the dialog loop.
type Session struct {
	cfg   Config
	leg   parley.Leg
	eng   Engines
	hooks Hooks
	log   zerolog.Logger
	rate  int // leg sample rate

	// Inbound path, written by the leg's reader goroutine.
	in      sampleRing
	audioCh chan struct{} // cap 1: audio is waiting in in
	dtmfCh  chan byte
	markCh  chan struct{} // cap 1: a mark was echoed
	idleCh  chan struct{} // cap 1: the playout ran empty
	doneCh  chan turnDone // cap 1: the one turn goroutine reports
	started atomic.Bool
	startCh chan struct{}
	startMu sync.Once

	playout  *media.Playout
	playExit chan struct{} // closed when Playout.Run returns
	playErr  error         // what it returned (read after playExit)

	// mu guards the current AI turn (cur), the output position and the
	// ordering of Playout writes against a barge-in clear.
	mu     sync.Mutex
	cur    *aiTurn
	outPos int64 // leg-rate samples written to the playout (its Position after the last of them)

	// First reply audio: armed when a turn writes its first audio, taken
	// by the sink wrapper on the next frame it hands to the leg.
	armFirst   atomic.Bool
	firstAudio atomic.Int64

	turnsMu sync.Mutex
	turns   []parley.Turn

	stats struct {
		framesIn, framesDropped, digitsDropped, utterances, blips, backchannels,
		noise, bargeIns, asrFailures, nluFailures, ttsFailures, fillers atomic.Uint64
	}
	logged atomic.Uint32 // failure kinds already logged

	closeOnce sync.Once
	closeCh   chan struct{}
	runOnce   atomic.Bool

	legDoneOnce sync.Once
	legDone     chan struct{}
	legErr      error
}

// NewSession prepares the conversation of one call on leg. Call Run to
// start it. log should carry the call's fields; the Session adds call_id.
func NewSession(cfg Config, leg parley.Leg, eng Engines, hooks Hooks, log zerolog.Logger) *Session {
	cfg = cfg.WithDefaults()
	rate := leg.SampleRate()
	s := &Session{
		cfg:      cfg,
		leg:      leg,
		eng:      eng,
		hooks:    hooks,
		log:      log,
		rate:     rate,
		audioCh:  make(chan struct{}, 1),
		dtmfCh:   make(chan byte, 32),
		markCh:   make(chan struct{}, 1),
		idleCh:   make(chan struct{}, 1),
		doneCh:   make(chan turnDone, 1),
		startCh:  make(chan struct{}),
		closeCh:  make(chan struct{}),
		legDone:  make(chan struct{}),
		playExit: make(chan struct{}),
	}
	if rate > 0 {
		s.in.init(int(inputQueueDuration / media.FrameDuration * time.Duration(media.FrameSamples(rate))))
	}
	return s
}

// Turns returns a copy of the turns recorded so far; it is safe to call
// from any goroutine, during and after Run.
func (s *Session) Turns() []parley.Turn {
	s.turnsMu.Lock()
	defer s.turnsMu.Unlock()
	out := make([]parley.Turn, len(s.turns))
	copy(out, s.turns)
	return out
}

// Stats returns the media-path counters of the call so far.
func (s *Session) Stats() Stats {
	st := &s.stats
	return Stats{
		FramesIn:      st.framesIn.Load(),
		FramesDropped: st.framesDropped.Load(),
		DigitsDropped: st.digitsDropped.Load(),
		Utterances:    st.utterances.Load(),
		Blips:         st.blips.Load(),
		Backchannels:  st.backchannels.Load(),
		Noise:         st.noise.Load(),
		BargeIns:      st.bargeIns.Load(),
		ASRFailures:   st.asrFailures.Load(),
		NLUFailures:   st.nluFailures.Load(),
		TTSFailures:   st.ttsFailures.Load(),
		Fillers:       st.fillers.Load(),
	}
}

// Close ends the conversation: Run tears down and returns ReasonCancelled.
// It is idempotent and safe from any goroutine.
func (s *Session) Close() {
	s.closeOnce.Do(func() { close(s.closeCh) })
}

// Run reads the leg and runs the conversation until the caller hangs up,
// the conversation ends the call, the owner hands the call off, the
// connection drops, MaxCallDuration passes or ctx ends. It returns why the
// conversation ended; the error is non-nil only when the leg failed or the
// Session could not start. Run may be called once.
func (s *Session) Run(ctx context.Context) (Outcome, error) {
	return s.run(ctx, true)
}

// Converse runs the conversation like Run but without reading the leg: the
// owner runs leg.Run with a handler that forwards OnAudio, OnDTMF and
// OnMark to the Session (it is a parley.LegHandler) and calls LegDone when
// leg.Run returns. This lets the owner keep the leg after a hand-off and
// route its audio elsewhere. Converse may be called once, instead of Run.
func (s *Session) Converse(ctx context.Context) (Outcome, error) {
	return s.run(ctx, false)
}

// LegDone tells a Session started with Converse that the leg's reader
// returned with err (nil on a normal hang-up). It is idempotent.
func (s *Session) LegDone(err error) {
	s.legDoneOnce.Do(func() {
		s.legErr = err
		close(s.legDone)
	})
}

// OnAudio takes one inbound frame from the leg's reader goroutine. It only
// copies the samples into a bounded buffer (dropping and counting the
// frame when the dialog loop is behind) and wakes the loop; it does not
// allocate.
func (s *Session) OnAudio(pcm []int16) {
	s.noteStarted()
	s.stats.framesIn.Add(1)
	if !s.in.write(pcm) {
		s.stats.framesDropped.Add(1)
		return
	}
	s.wakeAudio()
}

// wakeAudio tells the loop audio is waiting in in.
func (s *Session) wakeAudio() {
	select {
	case s.audioCh <- struct{}{}:
	default:
	}
}

// OnDTMF takes one keypad digit from the leg's reader goroutine.
func (s *Session) OnDTMF(digit byte) {
	s.noteStarted()
	select {
	case s.dtmfCh <- digit:
	default:
		s.stats.digitsDropped.Add(1)
	}
}

// OnMark takes an echoed playout mark from the leg's reader goroutine: the
// audio before it has been played to the caller. Marks of a reply that was
// already cleared by a barge-in do not count as heard.
func (s *Session) OnMark(name string) {
	s.noteStarted()
	s.mu.Lock()
	if ai := s.cur; ai != nil && !ai.cleared {
		for i := range ai.sentences {
			if ai.sentences[i].mark == name {
				if i+1 > ai.heardUpTo {
					ai.heardUpTo = i + 1
				}
				break
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.markCh <- struct{}{}:
	default:
	}
}

func (s *Session) noteStarted() {
	if !s.started.Load() {
		s.startMu.Do(func() {
			s.started.Store(true)
			close(s.startCh)
		})
	}
}

// Failure kinds, logged once per call each.
const (
	failASR uint32 = 1 << iota
	failASRStart
	failNLU
	failTTS
	failHangup
	failPlayout
)

// logFailure logs err once per call and kind.
func (s *Session) logFailure(kind uint32, err error, msg string) {
	for {
		old := s.logged.Load()
		if old&kind != 0 {
			return
		}
		if s.logged.CompareAndSwap(old, old|kind) {
			break
		}
	}
	s.log.Warn().Err(err).Msg(msg)
}

// sinkTap is the playout's view of the leg: it notes when the first frame
// of a reply is handed to the leg (for Turn.FirstAudio) with one atomic
// load per frame.
type sinkTap struct{ s *Session }

func (t sinkTap) WriteFrame(pcm []int16) error {
	if t.s.armFirst.Load() && t.s.armFirst.CompareAndSwap(true, false) {
		t.s.firstAudio.Store(time.Now().UnixNano())
	}
	return t.s.leg.WriteFrame(pcm)
}

func (t sinkTap) Mark(name string) error { return t.s.leg.Mark(name) }
func (t sinkTap) Clear() error           { return t.s.leg.Clear() }

var _ media.FrameSink = sinkTap{}
var _ parley.LegHandler = (*Session)(nil)

// errNoRate reports a leg without a usable sample rate.
var errNoRate = errors.New("dialog: leg has no sample rate")
