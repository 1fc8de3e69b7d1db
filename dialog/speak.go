package dialog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
)

// jobKind says what an AI turn answers.
type jobKind int

const (
	jobGreeting jobKind = iota // the call connected
	jobSpeech                  // a caller utterance (transcribe, then respond)
	jobDTMF                    // keypad digits
	jobSilence                 // the no-input timeout
	jobSay                     // a fixed sentence of the Session's own (not the conversation's)
)

// turnJob is one caller turn handed to a turn goroutine.
type turnJob struct {
	kind     jobKind
	stream   TranscribeStream   // jobSpeech; nil when Start failed
	cancel   context.CancelFunc // ends the stream's context (jobSpeech)
	startErr error              // why stream is nil
	mode     Mode               // what the utterance was recognized as
	digits   string             // jobDTMF
	text     string             // jobSay
	// ignoreBackchannel drops a backchannel-only transcript (speech that
	// overlapped the AI's reply without interrupting it).
	ignoreBackchannel bool
	bargedIn          bool // the utterance interrupted the AI
	// prev is the earlier part of the same caller turn (ended early, then
	// continued); its transcript is set by the dialog loop before this
	// job's turn starts.
	prev *turnJob
	// keepText asks a cancelled turn to finish its recognizer stream
	// anyway: the turn was merged into its continuation, which needs the
	// words (set by the dialog loop before it cancels the turn).
	keepText atomic.Bool
	// transcript is what the turn recognized, kept for a continuation
	// (dialog loop only, set when the merged turn returned).
	transcript Transcript
	// frames counts the turn's speech frames, earlier parts included
	// (jobSpeech; dialog loop only), for MaxUtterance.
	frames int

	start, end, endOfSpeech time.Time
}

// close abandons the job's recognizer stream, if any.
func (j *turnJob) close() {
	if j == nil {
		return
	}
	if j.stream != nil {
		_ = j.stream.Close()
		j.stream = nil
	}
	j.release()
}

// release ends the stream's context once the stream is finished or closed.
func (j *turnJob) release() {
	if j.cancel != nil {
		j.cancel()
		j.cancel = nil
	}
}

// turnDone is what a turn goroutine reports back to the dialog loop.
type turnDone struct {
	job         *turnJob
	ai          *aiTurn
	transcript  Transcript
	result      Result
	responded   bool    // Conversation.Respond ran
	ignored     string  // why the turn produced no caller input ("noise", "backchannel")
	asrErr      error   // transcriber failure
	nluErr      error   // responder failure
	frustration float64 // from the conversation's optional detector
	interrupted bool    // the turn's context was cancelled (barge-in, teardown)
	filler      []int16 // the greeting turn's synthesized filler (leg rate)
}

// spoken is one sentence of an AI turn and where its audio sits in the
// playout's sample count.
type spoken struct {
	text       string
	start, end int64  // leg-rate sample positions; end == start when no audio went out
	mark       string // playout mark queued after it ("" when none)
}

// aiTurn is one reply as it is produced and played; guarded by Session.mu
// (the turn goroutine appends, OnMark and a barge-in read).
type aiTurn struct {
	num       int
	started   time.Time
	sentences []spoken
	heardUpTo int   // sentences confirmed played by an echoed mark
	cleared   bool  // a barge-in cleared the playout
	clearPos  int64 // Playout.Position at the clear
	ttsFailed bool  // a sentence could not be synthesized
	hasAudio  bool  // some of the reply went to the playout
	filled    bool  // the filler was played while the reply was slow
	merged    bool  // the caller continued the turn before the reply played: drop the reply

	// Dialog-loop-only fields.
	done     bool // the turn goroutine returned
	fromConv bool // the conversation produced the reply (it gets Heard after a barge-in)
	caller   *parley.Turn
	signals  *parley.Signals
	idleAt   time.Time // when the playout was last seen idle after done
	finished bool
}

// heard returns the text the caller heard and the full text of the reply.
// Sentences confirmed by an echoed mark were heard whole; the next ones
// count by the share of their samples handed to the leg before the clear
// (or before now, when the call ended mid-reply). Call with Session.mu held.
func (ai *aiTurn) heard(pos int64, interruptedAt bool) (heard, full string) {
	var h, f []string
	partial := false
	for i, sn := range ai.sentences {
		f = append(f, sn.text)
		if partial || sn.end == sn.start {
			continue
		}
		if i < ai.heardUpTo || !interruptedAt {
			h = append(h, sn.text)
			continue
		}
		frac := float64(pos-sn.start) / float64(sn.end-sn.start)
		if frac < 1 {
			partial = true
		}
		if p := wordPrefix(sn.text, frac); p != "" {
			h = append(h, p)
		}
	}
	return strings.Join(h, " "), strings.Join(f, " ")
}

// runTurn produces one AI turn on its own goroutine: transcribe (for
// speech), respond, and speak each sentence as soon as it is ready. It
// always reports to doneCh, which has room for it.
func (s *Session) runTurn(ctx context.Context, conv Conversation, job *turnJob, ai *aiTurn, out *media.Resampler) {
	d := turnDone{job: job, ai: ai}
	sp := speaker{s: s, ctx: ctx, ai: ai, res: out}
	awaiting.Add(1)
	defer func() {
		sp.firstOut()
		job.close()
		d.interrupted = ctx.Err() != nil
		s.doneCh <- d
	}()
	switch job.kind {
	case jobGreeting:
		if err := conv.Greeting(ctx, sp.say); err != nil && ctx.Err() == nil && !errors.Is(err, ErrInterrupted) {
			d.nluErr = err
			s.stats.nluFailures.Add(1)
			s.logFailure(failNLU, err, "dialog: greeting failed")
			_ = sp.say(s.cfg.Apology)
		}
		// Prepare the filler once per call, after the greeting is on its way.
		if s.cfg.FillerAfter > 0 && ctx.Err() == nil {
			d.filler = sp.render(s.cfg.Filler)
		}
	case jobSpeech:
		var tr Transcript
		var err error
		switch {
		case job.stream != nil:
			// The words are recognized even when a later caller turn
			// already cancelled this one: they are the caller's and are
			// recorded, though not answered.
			cancelled := ctx.Err() != nil && !job.keepText.Load()
			tr, err = job.stream.Finish()
			job.stream = nil
			if err == nil && job.prev != nil {
				tr = joinTranscripts(job.prev.transcript, tr)
			}
			if cancelled && !job.keepText.Load() {
				if err == nil {
					d.transcript = tr
				}
				return
			}
		case job.prev != nil && !isBlank(job.prev.transcript.Text):
			// No recognizer for the continuation (none free): the words of
			// the earlier part are the turn.
			tr = job.prev.transcript
		default:
			d.asrErr = job.startErr
			_ = sp.say(s.cfg.NotUnderstood)
			return
		}
		if job.keepText.Load() {
			d.transcript = tr // merged into the continuation: no reply
			return
		}
		if err != nil {
			d.asrErr = fmt.Errorf("dialog: transcribe: %w", err)
			s.stats.asrFailures.Add(1)
			s.logFailure(failASR, err, "dialog: transcriber failed")
			_ = sp.say(s.cfg.NotUnderstood)
			return
		}
		d.transcript = tr
		text := strings.TrimSpace(tr.Text)
		switch {
		case text == "":
			d.ignored = "noise"
			return
		case job.ignoreBackchannel && isBackchannel(text, job.mode):
			d.ignored = "backchannel"
			return
		}
		s.respond(ctx, conv, Input{Kind: InputSpeech, Text: text, Confidence: tr.Confidence}, &sp, &d)
	case jobDTMF:
		s.respond(ctx, conv, Input{Kind: InputDTMF, Digits: job.digits}, &sp, &d)
	case jobSilence:
		s.respond(ctx, conv, Input{Kind: InputSilence}, &sp, &d)
	case jobSay:
		_ = sp.say(job.text)
	}
}

// joinTranscripts makes one transcript of the two parts of a caller turn
// that ended early and was continued: the texts joined, the confidence
// weighted by each part's words, the word timings of the second part
// moved behind the first's.
func joinTranscripts(a, b Transcript) Transcript {
	na, nb := len(strings.Fields(a.Text)), len(strings.Fields(b.Text))
	out := Transcript{Text: joinTexts(a.Text, b.Text), Confidence: b.Confidence}
	if na+nb > 0 {
		out.Confidence = (a.Confidence*float64(na) + b.Confidence*float64(nb)) / float64(na+nb)
	}
	if len(a.Words)+len(b.Words) > 0 {
		var off time.Duration
		if len(a.Words) > 0 {
			off = a.Words[len(a.Words)-1].End
		}
		out.Words = append(make([]Word, 0, len(a.Words)+len(b.Words)), a.Words...)
		for _, w := range b.Words {
			w.Start += off
			w.End += off
			out.Words = append(out.Words, w)
		}
	}
	return out
}

// respond lets the conversation answer in, speaking as it goes, and says
// the apology when it fails so the caller is never left in silence.
func (s *Session) respond(ctx context.Context, conv Conversation, in Input, sp *speaker, d *turnDone) {
	d.responded = true
	res, err := conv.Respond(ctx, in, sp.say)
	d.result = res
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrInterrupted) {
		d.nluErr = fmt.Errorf("dialog: respond: %w", err)
		s.stats.nluFailures.Add(1)
		s.logFailure(failNLU, err, "dialog: responder failed")
		_ = sp.say(s.cfg.Apology)
	}
	if f, ok := conv.(interface{ Frustration() float64 }); ok {
		d.frustration = f.Frustration()
	}
}

// speaker turns sentences into paced audio for one AI turn.
type speaker struct {
	s   *Session
	ctx context.Context
	ai  *aiTurn
	res *media.Resampler // synthesizer rate to leg rate, owned by the turn goroutine
	buf []int16
	idx int  // sentence being synthesized
	any bool // this sentence produced audio
	// outDone: the reply's first audio was written or the turn ended
	// (awaiting no longer counts it).
	outDone bool
}

// say synthesizes one sentence and queues it behind the reply so far,
// followed by a mark "<turn>.<n>" so its playing is confirmed. A sentence
// the synthesizer fails on is skipped (counted, signalled); a barge-in
// makes say return ErrInterrupted so the responder stops.
func (sp *speaker) say(sentence string) error {
	s := sp.s
	if sp.ctx.Err() != nil {
		return ErrInterrupted
	}
	sentence = strings.TrimSpace(sentence)
	if sentence == "" {
		return nil
	}
	// Later sentences are made only as the queue drains to synthAhead: the
	// synthesizer is shared by every call, and a sentence made long before
	// it plays only delays the first sentence of another caller's reply.
	if err := sp.waitQueued(int(synthAhead.Seconds() * float64(s.rate))); err != nil {
		return err
	}
	if err := sp.yield(); err != nil {
		return err
	}
	s.mu.Lock()
	if sp.ai.cleared {
		s.mu.Unlock()
		return ErrInterrupted
	}
	sp.idx = len(sp.ai.sentences)
	sp.ai.sentences = append(sp.ai.sentences, spoken{text: sentence, start: s.outPos, end: s.outPos})
	s.mu.Unlock()
	sp.any = false

	sp.res.Reset()
	sp.buf = sp.buf[:0]
	err := s.eng.Synthesizer.Synthesize(sp.ctx, sentence, sp.emit)
	if err == nil {
		sp.buf = sp.res.Flush(sp.buf)
		err = sp.write(sp.buf)
	}
	sp.buf = sp.buf[:0]
	if sp.ctx.Err() != nil || errors.Is(err, ErrInterrupted) {
		return ErrInterrupted
	}
	if err != nil {
		s.stats.ttsFailures.Add(1)
		s.logFailure(failTTS, err, "dialog: synthesizer failed on a sentence")
		s.mu.Lock()
		sp.ai.ttsFailed = true
		s.mu.Unlock()
		if !sp.any {
			return nil
		}
	}
	if !sp.any {
		return nil
	}
	name := strconv.Itoa(sp.ai.num) + "." + strconv.Itoa(sp.idx+1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp.ai.cleared {
		return ErrInterrupted
	}
	sp.ai.sentences[sp.idx].mark = name
	s.playout.Mark(name)
	return nil
}

// render synthesizes text into a new leg-rate buffer; nil on failure.
func (sp *speaker) render(text string) []int16 {
	var out []int16
	sp.res.Reset()
	err := sp.s.eng.Synthesizer.Synthesize(sp.ctx, text, func(pcm []int16) error {
		out = sp.res.Process(out, pcm)
		return nil
	})
	out = sp.res.Flush(out)
	if err != nil || len(out) == 0 {
		if err != nil && sp.ctx.Err() == nil {
			sp.s.stats.ttsFailures.Add(1)
			sp.s.logFailure(failTTS, err, "dialog: synthesizer failed on the filler")
		}
		return nil
	}
	return out
}

// emit receives synthesized audio, converts it to the leg rate and queues
// it in whole frames: a partial frame would reach the leg padded with
// silence (a gap inside a word) if the playout ran dry before the next
// chunk. The remainder waits for the next chunk or the sentence's end.
func (sp *speaker) emit(pcm []int16) error {
	if sp.ctx.Err() != nil {
		return ErrInterrupted
	}
	sp.buf = sp.res.Process(sp.buf, pcm)
	frame := media.FrameSamples(sp.s.rate)
	n := len(sp.buf) / frame * frame
	if n == 0 {
		return nil
	}
	err := sp.write(sp.buf[:n])
	sp.buf = sp.buf[:copy(sp.buf, sp.buf[n:])]
	return err
}

// synthAhead is how much queued reply audio lets the next sentence wait
// before it is synthesized: enough to cover synthesizing it on a busy
// machine, little enough that replies already playing leave the
// synthesizer to the first sentences of new replies.
const synthAhead = 5 * time.Second

// awaiting counts the replies in this process that have not written their
// first audio yet: the latency the caller waits for. Sentences that only
// fill the queue ahead of playback give them the CPU and the synthesizer.
var awaiting atomic.Int64

// yieldFloor is the queued audio below which a sentence no longer yields
// to other calls' first sentences, so its own reply never runs dry.
const yieldFloor = 2 * time.Second

// firstOut marks this reply's first audio as written (or the turn as
// over); it runs once per turn.
func (sp *speaker) firstOut() {
	if !sp.outDone {
		sp.outDone = true
		awaiting.Add(-1)
	}
}

// yield holds a sentence that follows queued audio while another reply
// waits for its first audio, unless the queue is down to yieldFloor.
func (sp *speaker) yield() error {
	s := sp.s
	floor := int(yieldFloor.Seconds() * float64(s.rate))
	var wait *time.Timer
	for awaiting.Load() > 0 && s.playout.Queued() > floor {
		if wait == nil {
			wait = time.NewTimer(yieldPoll)
			defer wait.Stop()
		} else {
			wait.Reset(yieldPoll)
		}
		select {
		case <-sp.ctx.Done():
			return ErrInterrupted
		case <-wait.C:
		}
	}
	return nil
}

// yieldPoll is how often a yielding sentence looks again.
const yieldPoll = 20 * time.Millisecond

// waitQueued waits, polling, until the playout holds at most limit
// samples or nothing at all; it returns ErrInterrupted when the turn ends.
func (sp *speaker) waitQueued(limit int) error {
	s := sp.s
	var wait *time.Timer
	for q := s.playout.Queued(); q > limit && q > 0; q = s.playout.Queued() {
		if wait == nil {
			wait = time.NewTimer(100 * time.Millisecond)
			defer wait.Stop()
		} else {
			wait.Reset(100 * time.Millisecond)
		}
		select {
		case <-sp.ctx.Done():
			return ErrInterrupted
		case <-wait.C:
		}
	}
	return nil
}

// write queues leg-rate audio on the playout, waiting while the queue is
// full so a long reply is produced at the pace it is played.
func (sp *speaker) write(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	s := sp.s
	if err := sp.waitQueued(int(s.cfg.MaxQueue.Seconds()*float64(s.rate)) - len(pcm)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp.ai.cleared {
		return ErrInterrupted
	}
	if !sp.ai.hasAudio {
		sp.ai.hasAudio = true
		s.armFirst.Store(true)
		sp.firstOut()
	}
	if err := s.playout.Write(pcm); err != nil {
		return fmt.Errorf("dialog: queue reply audio: %w", err)
	}
	s.outPos += int64(len(pcm))
	sp.ai.sentences[sp.idx].end = s.outPos
	sp.any = true
	return nil
}
