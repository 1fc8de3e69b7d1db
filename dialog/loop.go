package dialog

import (
	"context"
	"errors"
	"fmt"
	"time"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
)

const (
	// startWait bounds how long Run waits for the leg's first event (when
	// its Info becomes valid) before greeting anyway.
	startWait = 2 * time.Second
	// markGrace is how long after the playout ran empty a reply counts as
	// played even if the leg has not echoed its last mark.
	markGrace = time.Second
	// backchannelHold is how much longer than BargeInMinSpeech a barge-in
	// may wait while the partial transcript is only a backchannel.
	backchannelHold = 700 * time.Millisecond
	// dtmfEcho is how long after a key press detected speech is taken for
	// the key's tone rather than the caller's voice.
	dtmfEcho = 500 * time.Millisecond
	// maxDigits ends a keypad turn that goes on without '#' or a pause.
	maxDigits = 32
	// partialEvery is how many frames apart the partial hypothesis is read
	// while deciding a barge-in.
	partialEvery = 5
	// earlyEvery is how many frames apart it is read while an incomplete
	// turn waits in its trailing pause.
	earlyEvery = 2
	// hangupTimeout bounds the leg's Hangup request.
	hangupTimeout = 5 * time.Second
	// resumeOnsetFrames is how long after the resume window an onset may
	// still be detected (MinSpeech and the onset's gap tolerance, with room).
	resumeOnsetFrames = int64(3 * media.DefaultMinSpeech / media.FrameDuration)
	// startTimeout bounds Transcriber.Start (waiting for a pooled decoder),
	// which runs on the dialog loop; the audio meanwhile waits in the
	// inbound ring (inputQueueDuration).
	startTimeout = time.Second
	// framesPerWake bounds the frames the loop takes from its buffer
	// before it looks at its other events again (100 ms of audio).
	framesPerWake = 5
)

// utterance is the caller speech segment in progress.
type utterance struct {
	stream    TranscribeStream
	cancel    context.CancelFunc // ends the stream's context
	err       error              // Start or Write failed; the stream is closed
	mode      Mode
	start     time.Time
	frames    int
	duringAI  bool // it began while the AI was speaking or thinking
	bargedIn  bool // it interrupted the AI
	tainted   bool // it overlaps a key press (the key's tone)
	nextCheck int  // frame count of the next partial-hypothesis check (barge-in)
	nextEarly int  // frame count of the next partial-hypothesis check (early end of turn)
	// turnFrames counts the speech frames of the whole caller turn, the
	// earlier parts it continues included: MaxUtterance bounds the turn,
	// so a caller who talks on with only short pauses still gets answered.
	turnFrames int
	// prev is the earlier part of the same caller turn, ended early and
	// merged back when the caller went on speaking; its transcript comes
	// before this one's.
	prev *turnJob
}

// earlyEnd is a caller turn that ended at the short EarlyEndSilence: if
// the caller speaks again within window frames of its last speech frame,
// the new words belong to the same turn.
type earlyEnd struct {
	job       *turnJob
	lastFrame int64 // loop.frameNo of the turn's last speech frame
	window    int64 // frames of EndSilence when the turn ended
}

// loop is the dialog loop's state; only the goroutine in Session.run touches it.
type loop struct {
	s    *Session
	ctx  context.Context
	conv Conversation
	info parley.LegInfo

	ep     *media.Endpointer
	frame  []int16
	pre    *preRoll
	asrRes *media.Resampler
	asrBuf []int16
	ttsRes *media.Resampler
	expect Mode

	inUtt     bool
	utt       utterance
	lastVoice time.Time

	// Frame clock of the inbound audio, for decisions that must follow the
	// audio rather than the wall clock (frames arrive in bursts under load).
	frameNo        int64 // frames pushed so far
	lastVoiceFrame int64 // frameNo of the last speech frame
	uttEndFrame    int64 // lastVoiceFrame when the last utterance ended; the pre-roll stops there
	early          *earlyEnd

	digits      []byte
	digitsStart time.Time
	lastDigitAt time.Time

	running    bool // a turn goroutine is out
	turnCancel context.CancelFunc
	curJob     *turnJob // what the running turn answers
	// pending holds the caller turns waiting for the running turn to
	// return, oldest first. None is dropped: each reaches the
	// conversation in order (a key press is never lost to later speech).
	pending   []*turnJob
	aiNum     int
	noInputs  int
	ending    Reason // end the call once the current reply has played
	closing   bool
	startedAt time.Time
	state     State

	filler []int16 // leg-rate audio of Config.Filler, once the greeting made it

	noInput, digitTimer, grace, fillerTimer *time.Timer
}

// newLoop prepares the dialog loop's per-call state: every buffer the
// per-frame path uses is allocated here, once.
func newLoop(ctx context.Context, s *Session) *loop {
	return &loop{
		s:     s,
		ctx:   ctx,
		frame: make([]int16, media.FrameSamples(s.rate)),
		ep:    media.NewEndpointer(media.EndpointConfig{Rate: s.rate, EndSilence: s.cfg.EndSilence}),
		// PreRoll before the detected onset, plus the endpointer's MinSpeech
		// delay in detecting it.
		pre:         newPreRoll(int((s.cfg.PreRoll + 2*media.DefaultMinSpeech).Seconds() * float64(s.rate))),
		asrRes:      media.NewResampler(s.rate, s.eng.Transcriber.SampleRate()),
		asrBuf:      make([]int16, 0, 4*media.FrameSamples(max(s.rate, s.eng.Transcriber.SampleRate()))),
		ttsRes:      media.NewResampler(s.eng.Synthesizer.SampleRate(), s.rate),
		noInput:     stoppedTimer(),
		digitTimer:  stoppedTimer(),
		grace:       stoppedTimer(),
		fillerTimer: stoppedTimer(),
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (s *Session) run(ctx context.Context, ownReader bool) (Outcome, error) {
	if !s.runOnce.CompareAndSwap(false, true) {
		return Outcome{Reason: ReasonCancelled}, errors.New("dialog: session already ran")
	}
	switch {
	case s.rate <= 0 || media.FrameSamples(s.rate) == 0:
		return Outcome{Reason: ReasonCancelled}, fmt.Errorf("%w (%d Hz)", errNoRate, s.rate)
	case s.eng.Transcriber == nil || s.eng.Responder == nil || s.eng.Synthesizer == nil:
		return Outcome{Reason: ReasonCancelled}, errors.New("dialog: engines missing (transcriber, responder and synthesizer are required)")
	case s.eng.Transcriber.SampleRate() <= 0 || s.eng.Synthesizer.SampleRate() <= 0:
		return Outcome{Reason: ReasonCancelled}, errors.New("dialog: engine sample rate must be positive")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Outputs start first and stop last.
	s.playout = media.NewPlayout(sinkTap{s}, s.rate, media.PlayoutOptions{MaxQueue: s.cfg.MaxQueue + 2*time.Second})
	s.playout.OnIdle(s.notifyIdle)
	playCtx, stopPlay := context.WithCancel(context.Background())
	go func() {
		s.playErr = s.playout.Run(playCtx)
		close(s.playExit)
	}()

	legCtx, stopLeg := context.WithCancel(ctx)
	if ownReader {
		go func() { s.LegDone(s.leg.Run(legCtx, s)) }()
	}

	l := newLoop(ctx, s)
	out, err := l.run()

	// Teardown: inputs, then the dialog, then outputs.
	stopLeg()
	if ownReader {
		<-s.legDone
	}
	l.stop()
	stopPlay()
	<-s.playExit
	return out, err
}

func (s *Session) notifyIdle() {
	select {
	case s.idleCh <- struct{}{}:
	default:
	}
}

// run is the dialog loop: it waits for the leg, greets, then reacts to
// audio, keys, marks, turn results and timers until the call ends.
func (l *loop) run() (Outcome, error) {
	s := l.s
	wait := time.NewTimer(startWait)
	select {
	case <-s.startCh:
	case <-wait.C:
	case <-s.legDone:
	case <-l.ctx.Done():
	case <-s.closeCh:
	}
	wait.Stop()

	l.info = s.leg.Info()
	s.log = s.log.With().Str("call_id", l.info.CallID).Logger()
	l.conv = s.eng.Responder.NewConversation(CallContext{CallID: l.info.CallID, From: l.info.From, To: l.info.To})
	l.startedAt = time.Now()

	var maxCall <-chan time.Time
	if s.cfg.MaxCallDuration > 0 {
		t := time.NewTimer(s.cfg.MaxCallDuration)
		defer t.Stop()
		maxCall = t.C
	}

	select {
	case <-s.legDone:
	case <-l.ctx.Done():
	case <-s.closeCh:
	default:
		l.startTurn(&turnJob{kind: jobGreeting})
	}
	for {
		select {
		case <-l.ctx.Done():
			return Outcome{Reason: ReasonCancelled}, nil
		case <-s.closeCh:
			return Outcome{Reason: ReasonCancelled}, nil
		case <-s.legDone:
			if s.legErr != nil {
				return Outcome{Reason: ReasonDropped}, fmt.Errorf("dialog: leg: %w", s.legErr)
			}
			return Outcome{Reason: ReasonCallerHangup}, nil
		case <-s.playExit:
			// The leg refused audio: the caller can no longer hear us. A
			// caller who hung up while we spoke has their hang-up still in
			// the socket's buffer: give the reader a moment to tell a
			// hang-up from a dropped line.
			select {
			case <-s.legDone:
				if s.legErr == nil {
					return Outcome{Reason: ReasonCallerHangup}, nil
				}
			case <-time.After(time.Second):
			case <-l.ctx.Done():
			}
			perr := s.playErr
			if perr == nil {
				perr = errors.New("stopped")
			}
			s.logFailure(failPlayout, perr, "dialog: playout failed")
			return Outcome{Reason: ReasonDropped}, fmt.Errorf("dialog: playout: %w", perr)
		case <-maxCall:
			s.log.Info().Dur("max", s.cfg.MaxCallDuration).Msg("dialog: call reached its maximum duration")
			return l.end(ReasonMaxDuration), nil
		case <-s.audioCh:
			// A bounded batch, then the other events get their turn: a
			// loop decoding slower than the audio arrives (a starved CPU)
			// must still take keys, turn results and timers.
			n := 0
			for n < framesPerWake && s.in.read(l.frame) {
				l.onFrame(time.Now())
				n++
			}
			if n == framesPerWake {
				s.wakeAudio()
			}
		case d := <-s.dtmfCh:
			l.onDigit(d, time.Now())
		case d := <-s.doneCh:
			l.onTurnDone(d)
		case <-s.markCh:
			l.checkSpoken()
		case <-s.idleCh:
			l.checkSpoken()
		case <-l.grace.C:
			l.checkSpoken()
		case <-l.noInput.C:
			l.onNoInput()
		case <-l.digitTimer.C:
			l.finishDigits(time.Now())
		case <-l.fillerTimer.C:
			l.playFiller()
		}
		// The call ends once the last reply has played and the caller is
		// not in the middle of saying or keying something.
		if l.ending != "" && s.cur == nil && !l.running && len(l.pending) == 0 && !l.inUtt && !l.ep.IsSpeechFrame() && len(l.digits) == 0 {
			return l.end(l.ending), nil
		}
		// A hand-off does not wait for the caller to stop talking: what
		// they say next is for the person they are handed to.
		if l.ending == ReasonHandOff && s.cur == nil && !l.running && len(l.pending) == 0 {
			return l.end(l.ending), nil
		}
	}
}

// end finishes the call for reason, hanging up when the Session decided to.
func (l *loop) end(reason Reason) Outcome {
	out := Outcome{Reason: reason}
	if reason == ReasonHandOff || l.s.cfg.NoHangup {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
	defer cancel()
	if err := l.s.leg.Hangup(ctx, string(reason)); err != nil {
		l.s.logFailure(failHangup, err, "dialog: hang up failed")
	} else {
		out.HungUp = true
	}
	return out
}

// stop releases what the loop still holds: the turn goroutine, recognizer
// streams and timers. Unfinished turns are recorded with what was heard.
func (l *loop) stop() {
	l.closing = true
	if l.running {
		l.turnCancel()
		l.onTurnDone(<-l.s.doneCh)
	}
	for _, job := range l.pending {
		job.close()
	}
	l.pending = nil
	l.early = nil
	if l.inUtt {
		l.inUtt = false
		if l.utt.stream != nil {
			_ = l.utt.stream.Close()
		}
		if l.utt.cancel != nil {
			l.utt.cancel()
		}
	}
	if l.s.cur != nil {
		l.finishAITurn(time.Now())
	}
	l.noInput.Stop()
	l.digitTimer.Stop()
	l.grace.Stop()
	l.fillerTimer.Stop()
	l.setState(StateEnded)
}

func (l *loop) emit(e Event) {
	if h := l.s.hooks.OnEvent; h != nil {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		h(e)
	}
}

func (l *loop) setState(st State) {
	if l.state != st {
		l.state = st
		l.emit(Event{Kind: EventState, State: st})
	}
}

// onFrame runs one 20 ms frame through pre-roll, endpointer and recognizer.
func (l *loop) onFrame(now time.Time) {
	f := l.frame
	l.frameNo++
	l.pre.push(f)
	ev := l.ep.Push(f)
	if l.ep.IsSpeechFrame() {
		l.lastVoice = now
		l.lastVoiceFrame = l.frameNo
	}
	if e := l.early; e != nil && l.frameNo-e.lastFrame > e.window+resumeOnsetFrames {
		l.early = nil // too late for the onset of a continuation
	}
	switch ev {
	case media.EndpointSpeechStart:
		l.speechStart(now)
	case media.EndpointSpeechEnd:
		if l.inUtt {
			l.feed(f)
			l.speechEnd(now, false)
		}
	default:
		if !l.inUtt {
			return
		}
		l.feed(f)
		l.utt.frames++
		l.utt.turnFrames++
		if time.Duration(l.utt.turnFrames)*media.FrameDuration >= l.s.cfg.MaxUtterance {
			l.ep.Reset()
			l.speechEnd(now, false)
			return
		}
		if l.utt.duringAI && !l.utt.bargedIn {
			l.considerBargeIn()
		}
		if l.earlyEndDue() {
			l.ep.Reset()
			l.speechEnd(now, true)
		}
	}
}

// earlyEndDue reports whether the utterance in progress may end now, at
// the short EarlyEndSilence: its partial hypothesis reads as a complete
// turn for what the AI asked (turnLooksComplete). Digit strings need
// twice the pause, since callers read numbers in groups. Speech over the
// AI that did not interrupt it is left alone: it ends as a blip anyway.
func (l *loop) earlyEndDue() bool {
	s := l.s
	u := &l.utt
	early := s.cfg.EarlyEndSilence
	if early <= 0 || u.tainted || u.stream == nil {
		return false
	}
	if u.duringAI && !u.bargedIn && s.cur != nil && !s.cur.cleared {
		return false
	}
	if u.mode == ModeDigits {
		early *= 2
	}
	sil := l.ep.TrailingSilence()
	if sil < early || sil >= l.ep.EndSilence() || u.frames < u.nextEarly {
		return false
	}
	ps, ok := u.stream.(PartialStream)
	if !ok {
		return false
	}
	// The first check comes as soon as the pause is long enough; while the
	// words stay incomplete, the hypothesis is read again every other frame.
	u.nextEarly = u.frames + earlyEvery
	text, err := ps.Partial()
	return err == nil && turnLooksComplete(text, u.mode)
}

func (l *loop) speechStart(now time.Time) {
	s := l.s
	if e := l.early; e != nil {
		l.early = nil
		onset := l.frameNo - int64(l.ep.SpeechDuration()/media.FrameDuration)
		if onset-e.lastFrame < e.window && l.resume(e, now) {
			return
		}
	}
	s.stats.utterances.Add(1)
	l.noInput.Stop()
	l.utt = utterance{
		mode:     l.expect,
		start:    now.Add(-l.ep.SpeechDuration()),
		duringAI: s.cur != nil && !s.cur.cleared,
		tainted:  !l.lastDigitAt.IsZero() && now.Sub(l.lastDigitAt) < dtmfEcho,
	}
	l.inUtt = true
	l.openStream()
	l.emit(Event{Kind: EventSpeechStart, Time: l.utt.start})
	if l.utt.duringAI {
		l.considerBargeIn()
	}
}

// resume handles speech that starts within EndSilence of a turn that
// ended early. While the reply to that turn has not reached the caller,
// the reply is dropped and the new words join the turn: a turn still
// waiting for an earlier reply to unwind keeps its recognizer stream; a
// running one is cancelled, its stream finished for the words so far, and
// a new stream takes the rest (the texts are joined). Once the reply plays
// it reports false: the speech is a new utterance and may barge in.
func (l *loop) resume(e *earlyEnd, now time.Time) bool {
	s := l.s
	job := e.job
	switch {
	case len(l.pending) > 0 && l.pending[len(l.pending)-1] == job:
		l.pending = l.pending[:len(l.pending)-1]
		l.utt = utterance{
			stream: job.stream, cancel: job.cancel, err: job.startErr, mode: job.mode,
			start: job.start, bargedIn: job.bargedIn, prev: job.prev, turnFrames: job.frames,
		}
		job.stream, job.cancel = nil, nil
		l.inUtt = true
		if l.utt.stream != nil {
			l.asrRes.Reset()
			l.feedPreRoll()
		}
	case l.running && l.curJob == job:
		ai := s.cur
		s.mu.Lock()
		ok := ai != nil && !ai.cleared && !ai.hasAudio && !ai.filled
		if ok {
			ai.cleared, ai.merged = true, true
		}
		s.mu.Unlock()
		if !ok {
			return false
		}
		job.keepText.Store(true)
		l.turnCancel()
		l.fillerTimer.Stop()
		l.utt = utterance{mode: job.mode, start: job.start, bargedIn: job.bargedIn, prev: job, turnFrames: job.frames}
		l.inUtt = true
		l.openStream()
	default:
		return false
	}
	l.noInput.Stop()
	l.setState(StateListening)
	l.emit(Event{Kind: EventSpeechStart, Time: now.Add(-l.ep.SpeechDuration())})
	return true
}

// openStream starts the recognizer for the utterance in l.utt and feeds it
// the pre-roll.
func (l *loop) openStream() {
	s := l.s
	// The stream's context lives as long as the utterance; it is cancelled
	// early only when Start waits too long for a decoder.
	uctx, cancel := context.WithCancel(l.ctx)
	guard := time.AfterFunc(startTimeout, cancel)
	st, err := s.eng.Transcriber.Start(uctx, l.utt.mode)
	if !guard.Stop() && err == nil {
		_ = st.Close()
		st, err = nil, fmt.Errorf("no decoder within %v", startTimeout)
	}
	l.utt.cancel = cancel
	if err != nil {
		cancel()
		l.utt.err = fmt.Errorf("dialog: start transcription: %w", err)
		s.stats.asrFailures.Add(1)
		s.logFailure(failASRStart, err, "dialog: transcriber could not start")
	} else {
		l.utt.stream = st
		l.asrRes.Reset()
		l.feedPreRoll()
	}
}

// feedPreRoll sends the recognizer the recent audio, which already holds
// the current frame, but not further back than the end of the previous
// utterance's speech: after an early end of turn the pre-roll may reach
// into words already transcribed.
func (l *loop) feedPreRoll() {
	n := -1
	if l.uttEndFrame > 0 {
		n = int(l.frameNo-l.uttEndFrame) * len(l.frame)
	}
	l.pre.tail(n, l.feed)
}

// feed sends leg audio to the recognizer at its rate.
func (l *loop) feed(pcm []int16) {
	u := &l.utt
	if u.stream == nil {
		return
	}
	l.asrBuf = l.asrRes.Process(l.asrBuf[:0], pcm)
	if len(l.asrBuf) == 0 {
		return
	}
	if err := u.stream.Write(l.asrBuf); err != nil {
		_ = u.stream.Close()
		u.stream = nil
		u.err = fmt.Errorf("dialog: transcribe: %w", err)
		l.s.stats.asrFailures.Add(1)
		l.s.logFailure(failASR, err, "dialog: transcriber failed")
	}
}

// considerBargeIn interrupts the AI once the overlapping speech has lasted
// BargeInMinSpeech, holding off a little while a partial hypothesis shows
// only a backchannel or nothing at all.
func (l *loop) considerBargeIn() {
	if l.ending == ReasonHandOff {
		return // the caller hears the transfer announcement out
	}
	u := &l.utt
	d := l.ep.SpeechDuration()
	if u.tainted || d < l.s.cfg.BargeInMinSpeech {
		return
	}
	if ps, ok := u.stream.(PartialStream); ok && d < l.s.cfg.BargeInMinSpeech+backchannelHold {
		if u.frames < u.nextCheck {
			return
		}
		u.nextCheck = u.frames + partialEvery
		if text, err := ps.Partial(); err == nil && (isBlank(text) || isBackchannel(text, l.expect)) {
			return
		}
	}
	u.bargedIn = true
	l.bargeIn("speech")
}

// speechEnd submits the utterance as a caller turn. After an early end
// (at EarlyEndSilence) the turn stays open to a continuation (resume).
func (l *loop) speechEnd(now time.Time, early bool) {
	s := l.s
	l.inUtt = false
	l.uttEndFrame = l.lastVoiceFrame
	if l.utt.stream != nil {
		// feed appends into asrBuf, so flush into a separate slice of it.
		tail := l.asrRes.Flush(l.asrBuf[len(l.asrBuf):])
		if len(tail) > 0 && l.utt.stream.Write(tail) != nil {
			_ = l.utt.stream.Close()
			l.utt.stream = nil
			l.utt.err = errors.New("dialog: transcribe: write failed")
		}
		l.asrBuf = tail[:0]
	}
	u := l.utt
	l.emit(Event{Kind: EventSpeechEnd, Time: now})
	job := &turnJob{
		kind: jobSpeech, stream: u.stream, cancel: u.cancel, startErr: u.err, mode: u.mode,
		start: u.start, end: now, endOfSpeech: l.lastVoice, bargedIn: u.bargedIn, prev: u.prev,
		frames: u.turnFrames,
	}
	if job.endOfSpeech.Before(job.start) {
		job.endOfSpeech = now
	}
	if u.tainted {
		job.close()
		l.emit(Event{Kind: EventIgnored, Time: now, Text: "dtmf tone"})
		l.resumeListening()
		return
	}
	if u.duringAI && !u.bargedIn {
		if cur := s.cur; cur != nil && !cur.cleared {
			job.close()
			s.stats.blips.Add(1)
			l.emit(Event{Kind: EventIgnored, Time: now, Text: "blip"})
			return
		}
		job.ignoreBackchannel = true
	}
	l.submit(job)
	if early && ((len(l.pending) > 0 && l.pending[len(l.pending)-1] == job) || (l.running && l.curJob == job)) {
		l.early = &earlyEnd{job: job, lastFrame: l.lastVoiceFrame, window: int64(l.ep.EndSilence() / media.FrameDuration)}
	}
}

// bargeIn stops the AI: it cancels the turn goroutine (synthesis and the
// responder's stream), clears the playout (Twilio "clear") and notes how
// far the reply had been handed to the leg, all under the lock that orders
// playout writes, so nothing of this reply is queued after the clear.
func (l *loop) bargeIn(why string) {
	s := l.s
	ai := s.cur
	if ai == nil || ai.cleared {
		return
	}
	// A keypad turn is not cancelled: the cleared reply stops at its next
	// sentence, but the conversation still gets the keys (a responder may
	// drop an input whose context is already cancelled).
	if l.running && l.curJob.kind != jobDTMF {
		l.turnCancel()
	}
	s.mu.Lock()
	ai.cleared = true
	s.playout.Clear()
	ai.clearPos = s.playout.Position()
	s.outPos = ai.clearPos
	s.mu.Unlock()
	s.armFirst.Store(false)
	s.stats.bargeIns.Add(1)
	l.emit(Event{Kind: EventBargeIn, Text: why})
	if l.ending == ReasonAIEnded || l.ending == ReasonNoInput {
		// The caller spoke over the goodbye: they are still there, so the
		// conversation goes on rather than hanging up on them.
		l.ending = ""
		l.noInputs = 0
	}
	if !l.running {
		l.finishAITurn(time.Now())
	}
}

// submit starts the AI's answer to a caller turn. A new caller turn always
// interrupts what the AI is saying; when the interrupted turn is still
// unwinding, the job waits for it.
func (l *loop) submit(job *turnJob) {
	if l.ending == ReasonAIEnded || l.ending == ReasonNoInput {
		// The caller answered the goodbye with keys or real speech: they
		// are still there, so the conversation goes on.
		if job.kind == jobDTMF || (job.kind == jobSpeech && job.endOfSpeech.Sub(job.start) >= l.s.cfg.BargeInMinSpeech) {
			l.ending = ""
			l.noInputs = 0
			job.ignoreBackchannel = job.kind == jobSpeech
		}
	}
	if l.ending != "" {
		job.close()
		return
	}
	if l.s.cur != nil {
		l.bargeIn("turn")
	}
	if l.running {
		l.pending = append(l.pending, job)
		return
	}
	l.startTurn(job)
}

func (l *loop) startTurn(job *turnJob) {
	s := l.s
	l.noInput.Stop()
	l.grace.Stop()
	ctx, cancel := context.WithCancel(l.ctx)
	if l.ending == ReasonHandOff {
		// The caller is being handed off: what they said meanwhile is
		// recorded, not answered after the transfer announcement. The
		// turn starts cancelled, so it cannot look before the cancel.
		cancel()
	}
	l.aiNum++
	ai := &aiTurn{num: l.aiNum, started: time.Now()}
	s.armFirst.Store(false)
	s.firstAudio.Store(0)
	s.mu.Lock()
	s.cur = ai
	s.mu.Unlock()
	l.running = true
	l.turnCancel = cancel
	l.curJob = job
	l.setState(StateThinking)
	if l.filler != nil && job.kind != jobGreeting && job.kind != jobSay {
		l.fillerTimer.Reset(s.cfg.FillerAfter)
	}
	go s.runTurn(ctx, l.conv, job, ai, l.ttsRes)
}

// onTurnDone takes a turn goroutine's report: it records the caller turn
// and its signals, applies the result and, after a barge-in, tells the
// conversation what was heard.
func (l *loop) onTurnDone(d turnDone) {
	s := l.s
	l.running = false
	l.turnCancel()
	l.fillerTimer.Stop()
	if d.filler != nil {
		l.filler = d.filler
	}
	ai := d.ai
	ai.done = true
	job := d.job
	now := time.Now()
	l.curJob = nil

	if ai.merged {
		// The caller went on speaking before this reply played: the words
		// so far open the continuation's transcript, the reply is dropped.
		job.transcript = d.transcript
		ai.fromConv = d.responded
		l.finishAITurn(now)
		l.next()
		return
	}

	if d.ignored != "" {
		if d.ignored == "noise" {
			s.stats.noise.Add(1)
		} else {
			s.stats.backchannels.Add(1)
		}
		l.emit(Event{Kind: EventIgnored, Text: d.ignored})
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		if job.bargedIn && len(l.pending) == 0 && !l.closing && l.ending == "" {
			// The AI stopped for this sound; say so rather than leave dead air.
			l.startTurn(&turnJob{kind: jobSay, text: s.cfg.NotUnderstood})
			return
		}
		l.next()
		return
	}

	if job.kind != jobGreeting && job.kind != jobSay {
		l.recordCaller(d, now)
	}
	// A reply cleared by a barge-in was interrupted even when its turn was
	// left to finish (a keypad turn).
	interrupted := d.interrupted || ai.cleared
	if d.responded {
		res := d.result
		l.expect = res.Expect
		l.ep.SetEndSilence(s.cfg.endSilence(res.Expect))
		if job.kind == jobSilence && !interrupted {
			l.noInputs++
			if l.noInputs >= s.cfg.MaxNoInput && l.ending == "" {
				l.ending = ReasonNoInput
			}
		} else {
			l.noInputs = 0
		}
		if res.EndCall && !interrupted {
			l.ending = ReasonAIEnded
		}
		if h := s.hooks.OnResult; h != nil && ai.caller != nil && ai.caller.Signals != nil && !l.closing {
			if h(res, *ai.caller.Signals) == ActionHandOff {
				l.ending = ReasonHandOff
			}
		}
	}
	ai.fromConv = d.responded || (job.kind == jobGreeting && d.nluErr == nil)
	if len(l.pending) > 0 && !l.closing && l.ending != ReasonHandOff {
		// A later caller turn is waiting: it interrupts this reply.
		l.bargeIn("turn")
	}
	if ai.cleared || l.closing {
		l.finishAITurn(now)
		if !l.closing {
			l.next()
		}
		return
	}
	if ai.hasAudio {
		l.setState(StateSpeaking)
	}
	l.checkSpoken()
}

// playFiller plays the filler when the running turn has not started its
// reply yet. The filler takes its place in the playout before any
// sentence, so sentence positions (and what the caller heard) stay exact;
// it is not a sentence of the reply, so the history never holds it.
func (l *loop) playFiller() {
	s := l.s
	ai := s.cur
	if ai == nil || !l.running || l.filler == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ai.cleared || len(ai.sentences) > 0 {
		return
	}
	if err := s.playout.Write(l.filler); err != nil {
		return
	}
	ai.filled = true
	s.outPos += int64(len(l.filler))
	s.stats.fillers.Add(1)
}

// next starts a waiting caller turn or goes back to listening.
func (l *loop) next() {
	if l.closing {
		return
	}
	if len(l.pending) > 0 {
		job := l.pending[0]
		l.pending[0] = nil
		l.pending = l.pending[1:]
		l.startTurn(job)
		return
	}
	l.resumeListening()
}

// resumeListening arms the no-input timer when nothing is going on.
func (l *loop) resumeListening() {
	if l.s.cur != nil || l.running || l.inUtt || len(l.digits) > 0 || l.ending != "" || l.closing {
		return
	}
	l.setState(StateListening)
	l.noInput.Reset(l.s.cfg.NoInputTimeout)
}

// recordCaller builds the caller turn and its signals; they are recorded
// with the AI's reply when that has played, so FirstAudio is known.
func (l *loop) recordCaller(d turnDone, now time.Time) {
	s := l.s
	job := d.job
	t := &parley.Turn{Speaker: parley.SpeakerCaller, Start: job.start, End: job.end, EndOfSpeech: job.endOfSpeech}
	sig := &parley.Signals{AITime: now.Sub(l.startedAt)}
	switch job.kind {
	case jobSpeech:
		t.Text = d.transcript.Text
		sig.ASRConfidence = d.transcript.Confidence
		if d.asrErr == nil && job.startErr == nil {
			l.emit(Event{Kind: EventTranscript, Text: t.Text})
		}
	case jobDTMF:
		t.DTMF = job.digits
		sig.ASRConfidence = 1
		sig.AskedForHuman = job.digits == "0"
	case jobSilence:
		t.Start, t.End, t.EndOfSpeech = now, now, time.Time{}
		sig.NoInput = true
	}
	if d.responded {
		r := d.result
		sig.Intent = r.Intent
		sig.NLUConfidence = r.Confidence
		sig.OutOfScope = r.OutOfScope
		sig.AskedForHuman = sig.AskedForHuman || r.WantsHuman
		sig.HumanOnly = r.HumanOnly || r.Transfer
		sig.Repeats = r.Repeats
		sig.Frustration = d.frustration
	}
	s.mu.Lock()
	tts := d.ai.ttsFailed
	s.mu.Unlock()
	sig.ProviderFailure = d.asrErr != nil || job.startErr != nil || d.nluErr != nil || tts
	t.Signals = sig
	d.ai.caller = t
}

// checkSpoken ends the AI turn once its reply has played: its last mark
// was echoed, or the playout has been empty for markGrace (legs that do
// not echo marks).
func (l *loop) checkSpoken() {
	s := l.s
	ai := s.cur
	if ai == nil || !ai.done || ai.cleared {
		return
	}
	s.mu.Lock()
	last := 0
	for i, sn := range ai.sentences {
		if sn.mark != "" {
			last = i + 1
		}
	}
	played := last == 0 || ai.heardUpTo >= last
	s.mu.Unlock()
	now := time.Now()
	switch {
	case played:
	case s.playout.Busy():
		ai.idleAt = time.Time{}
		l.grace.Reset(markGrace)
		return
	case ai.idleAt.IsZero():
		ai.idleAt = now
		l.grace.Reset(markGrace)
		return
	case now.Sub(ai.idleAt) < markGrace:
		l.grace.Reset(markGrace - now.Sub(ai.idleAt))
		return
	}
	l.grace.Stop()
	l.finishAITurn(now)
	l.next()
}

// finishAITurn records the caller turn the reply answered and the reply
// itself with what the caller heard, and after a barge-in tells the
// conversation.
func (l *loop) finishAITurn(now time.Time) {
	s := l.s
	ai := s.cur
	if ai == nil || ai.finished {
		return
	}
	ai.finished = true
	if ai.merged {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		if ai.fromConv && !l.closing {
			l.conv.Heard("") // nothing of the reply was played
		}
		return
	}
	s.mu.Lock()
	var heard, full string
	switch {
	case ai.cleared:
		heard, full = ai.heard(ai.clearPos, true)
	case !ai.done || l.closing:
		heard, full = ai.heard(s.playout.Position(), ai.heardUpTo < len(ai.sentences))
	default:
		heard, full = ai.heard(0, false)
	}
	hasAudio := ai.hasAudio
	s.cur = nil
	s.mu.Unlock()

	first := time.Time{}
	if ns := s.firstAudio.Load(); ns != 0 && hasAudio {
		first = time.Unix(0, ns)
	}
	if ai.caller != nil {
		ai.caller.FirstAudio = first
		l.record(*ai.caller)
	}
	if ai.cleared && ai.fromConv && !l.closing {
		l.conv.Heard(heard)
	}
	if full == "" {
		return
	}
	t := parley.Turn{Speaker: parley.SpeakerAI, Text: heard, Start: ai.started, End: now, Interrupted: ai.cleared}
	if !first.IsZero() {
		t.Start = first
	}
	if heard != full {
		t.Intended = full
	}
	l.record(t)
}

// record stores a finished turn and hands it to the OnTurn hook.
func (l *loop) record(t parley.Turn) {
	s := l.s
	t.CallID = l.info.CallID
	s.turnsMu.Lock()
	t.Seq = len(s.turns) + 1
	s.turns = append(s.turns, t)
	s.turnsMu.Unlock()
	if h := s.hooks.OnTurn; h != nil {
		h(t)
	}
}

// onDigit collects keypad input into one turn; a key also interrupts the AI.
func (l *loop) onDigit(d byte, now time.Time) {
	l.lastDigitAt = now
	l.early = nil // keys start a turn of their own
	l.noInput.Stop()
	if l.inUtt {
		l.utt.tainted = true
	}
	if cur := l.s.cur; cur != nil && !cur.cleared {
		l.bargeIn("dtmf")
	}
	if d == '#' {
		if len(l.digits) == 0 {
			l.digitsStart = now
			l.digits = append(l.digits, d)
		}
		l.finishDigits(now)
		return
	}
	if len(l.digits) == 0 {
		l.digitsStart = now
	}
	l.digits = append(l.digits, d)
	if len(l.digits) >= maxDigits {
		l.finishDigits(now)
		return
	}
	l.digitTimer.Reset(l.s.cfg.InterDigitTimeout)
}

func (l *loop) finishDigits(now time.Time) {
	l.digitTimer.Stop()
	if len(l.digits) == 0 {
		return
	}
	job := &turnJob{kind: jobDTMF, digits: string(l.digits), start: l.digitsStart, end: now, endOfSpeech: l.lastDigitAt}
	l.digits = l.digits[:0]
	l.emit(Event{Kind: EventTranscript, Digits: job.digits})
	l.submit(job)
}

func (l *loop) onNoInput() {
	if l.s.cur != nil || l.running || l.inUtt || len(l.digits) > 0 || l.ending != "" {
		return
	}
	l.submit(&turnJob{kind: jobSilence})
}

func isBlank(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' {
			return false
		}
	}
	return true
}
