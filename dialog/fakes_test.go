package dialog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	parley "github.com/parley-ai/parley"
)

const testRate = 8000

// frameLen is one 20 ms frame at testRate.
const frameLen = testRate / 50

// speechFrame returns the i-th frame of a synthetic voiced "talker": two
// low harmonics whose loudness rises and falls like syllables, so the
// endpointer sees voiced, non-steady speech.
func speechFrame(i int) []int16 {
	f := make([]int16, frameLen)
	env := 0.55 + 0.45*math.Sin(2*math.Pi*4*float64(i)*0.02)
	for n := range f {
		t := float64(i*frameLen+n) / testRate
		v := 0.6*math.Sin(2*math.Pi*260*t) + 0.3*math.Sin(2*math.Pi*520*t)
		f[n] = int16(9000 * env * v)
	}
	return f
}

// step is one scripted action of the fake caller.
type step struct {
	lateHangup time.Duration             // the caller hangs up; writes fail at once, the reader sees it this much later
	speech     int                       // frames of speech
	silence    int                       // frames of silence
	until      func(l *fakeLeg) bool     // send silence until this holds
	what       string                    // description of until, for failures
	digit      byte                      // a keypad digit
	hangup     bool                      // the caller hangs up
	drop       bool                      // the connection fails
	do         func(h parley.LegHandler) // anything else, on the reader goroutine
	pcm        []int16                   // recorded audio
}

func speak(ms int) step { return step{speech: ms / 20} }
func pause(ms int) step { return step{silence: ms / 20} }
func key(d byte) step   { return step{digit: d} }
func waitFor(what string, f func(l *fakeLeg) bool) step {
	return step{until: f, what: what}
}

// fakeLeg is a caller that follows a script in real time (one frame every
// 20 ms, like Twilio) and records everything parley sends back. Marks are
// echoed from the reader goroutine markDelay frame ticks after they were
// sent (the far end's buffer and the network); a clear echoes pending
// marks at once, as Twilio does.
type fakeLeg struct {
	script    []step
	markDelay int // frames

	echo chan string

	mu       sync.Mutex
	out      []int16
	marks    []markAt // Mark calls
	pending  []markAt
	echoed   []string // marks delivered to the handler
	clears   []int    // len(out) at each Clear
	hangups  []string
	hangupAt int // len(out) at the first Hangup
	ticks    int // frames the reader has ticked
	hungup   chan struct{}
	waitErr  error
	once     sync.Once
	broken   bool // writes fail (the connection is gone)
}

type markAt struct {
	name string
	at   int // len(out) when sent; for pending marks, the tick they echo at
}

func newFakeLeg(script ...step) *fakeLeg {
	return &fakeLeg{script: script, echo: make(chan string, 256), hungup: make(chan struct{})}
}

func (l *fakeLeg) Info() parley.LegInfo {
	return parley.LegInfo{CallID: "CAtest", Channel: parley.ChannelTwilio, From: "+15550001111", To: "+15550002222"}
}

func (l *fakeLeg) SampleRate() int { return testRate }

func (l *fakeLeg) Run(ctx context.Context, h parley.LegHandler) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	silence := make([]int16, frameLen)
	frame := 0
	deliver := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-l.hungup:
			return false
		case <-tick.C:
		}
		l.mu.Lock()
		l.ticks++
		keep := l.pending[:0]
		for _, m := range l.pending {
			if l.ticks >= m.at {
				l.echo <- m.name
			} else {
				keep = append(keep, m)
			}
		}
		l.pending = keep
		l.mu.Unlock()
		for {
			select {
			case m := <-l.echo:
				l.mu.Lock()
				l.echoed = append(l.echoed, m)
				l.mu.Unlock()
				h.OnMark(m)
				continue
			default:
			}
			break
		}
		return true
	}
	send := func(f []int16) bool {
		if !deliver() {
			return false
		}
		h.OnAudio(f)
		frame++
		return true
	}
	for _, st := range l.script {
		switch {
		case st.speech > 0:
			for i := 0; i < st.speech; i++ {
				if !send(speechFrame(i)) {
					return l.end(ctx)
				}
			}
		case len(st.pcm) > 0:
			for i := 0; i < len(st.pcm); i += frameLen {
				f := make([]int16, frameLen)
				copy(f, st.pcm[i:])
				if !send(f) {
					return l.end(ctx)
				}
			}
		case st.silence > 0:
			for i := 0; i < st.silence; i++ {
				if !send(silence) {
					return l.end(ctx)
				}
			}
		case st.until != nil:
			deadline := time.Now().Add(15 * time.Second)
			for !st.until(l) {
				if time.Now().After(deadline) {
					l.mu.Lock()
					l.waitErr = fmt.Errorf("fake leg: timed out waiting for %s", st.what)
					l.mu.Unlock()
					return l.waitErr
				}
				if !send(silence) {
					return l.end(ctx)
				}
			}
		case st.digit != 0:
			h.OnDTMF(st.digit)
		case st.do != nil:
			st.do(h)
		case st.hangup:
			return nil
		case st.lateHangup > 0:
			// The caller hung up, but the reader sees it only after the
			// writes have started failing (it is still in the buffer).
			l.mu.Lock()
			l.broken = true
			l.mu.Unlock()
			time.Sleep(st.lateHangup)
			return nil
		case st.drop:
			return errors.New("fake leg: connection reset")
		}
	}
	for send(silence) {
	}
	return l.end(ctx)
}

func (l *fakeLeg) end(ctx context.Context) error {
	select {
	case <-l.hungup:
		return nil
	default:
	}
	return ctx.Err()
}

func (l *fakeLeg) WriteFrame(pcm []int16) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken {
		return errors.New("fake leg: write: broken pipe")
	}
	l.out = append(l.out, pcm...)
	return nil
}

func (l *fakeLeg) Mark(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := markAt{name: name, at: len(l.out)}
	l.marks = append(l.marks, m)
	if l.markDelay == 0 {
		l.echo <- name
	} else {
		l.pending = append(l.pending, markAt{name: name, at: l.ticks + l.markDelay})
	}
	return nil
}

func (l *fakeLeg) Clear() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clears = append(l.clears, len(l.out))
	for _, m := range l.pending {
		l.echo <- m.name
	}
	l.pending = nil
	return nil
}

func (l *fakeLeg) Hangup(ctx context.Context, reason string) error {
	l.mu.Lock()
	l.hangups = append(l.hangups, reason)
	if len(l.hangups) == 1 {
		l.hangupAt = len(l.out)
	}
	l.mu.Unlock()
	l.once.Do(func() { close(l.hungup) })
	return nil
}

// voiceIDs lists the sentence ids (see fakeSynth) in the audio written so
// far, in order of first appearance.
func (l *fakeLeg) voiceIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []int
	last := 0
	for _, v := range l.out {
		if v == 0 || int(v) == last {
			continue
		}
		last = int(v)
		if len(ids) == 0 || ids[len(ids)-1] != idOf(v) {
			ids = append(ids, idOf(v))
		}
	}
	return ids
}

// samplesOf counts the written samples of sentence id.
func (l *fakeLeg) samplesOf(id int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.out {
		if v != 0 && idOf(v) == id {
			n++
		}
	}
	return n
}

func (l *fakeLeg) echoedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.echoed)
}

func (l *fakeLeg) snapshot() (marks []markAt, echoed []string, clears []int, hangups []string, hangupAt, out int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]markAt(nil), l.marks...), append([]string(nil), l.echoed...),
		append([]int(nil), l.clears...), append([]string(nil), l.hangups...), l.hangupAt, len(l.out)
}

// fakeSynth speaks wordMS of a constant level per word; the level encodes
// the sentence (1000 + 10*id) so the leg can tell which sentence it got.
type fakeSynth struct {
	rate   int
	wordMS int
	fail   map[string]bool
	// onCall, when set, sees each sentence as its synthesis starts.
	onCall func(text string)

	mu     sync.Mutex
	ids    map[string]int
	calls  []string
	cancel int // syntheses stopped by their context
}

func newFakeSynth() *fakeSynth {
	return &fakeSynth{rate: testRate, wordMS: 60, ids: map[string]int{}, fail: map[string]bool{}}
}

func idOf(v int16) int { return (int(v) - 1000) / 10 }

// id returns the sentence id of text (assigned on first use).
func (f *fakeSynth) id(text string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.ids[text]; ok {
		return id
	}
	id := len(f.ids) + 1
	f.ids[text] = id
	return id
}

// samples is how many leg samples text becomes.
func (f *fakeSynth) samples(text string) int {
	return len(strings.Fields(text)) * f.wordMS * testRate / 1000
}

func (f *fakeSynth) SampleRate() int { return f.rate }

func (f *fakeSynth) Synthesize(ctx context.Context, text string, emit func([]int16) error) error {
	f.mu.Lock()
	f.calls = append(f.calls, text)
	fail := f.fail[text]
	onCall := f.onCall
	f.mu.Unlock()
	if onCall != nil {
		onCall(text)
	}
	if fail {
		return errors.New("fake synth: voice crashed")
	}
	v := int16(1000 + 10*f.id(text))
	n := len(strings.Fields(text)) * f.wordMS * f.rate / 1000
	chunk := make([]int16, f.rate/50)
	for i := range chunk {
		chunk[i] = v
	}
	for n > 0 {
		if ctx.Err() != nil {
			f.mu.Lock()
			f.cancel++
			f.mu.Unlock()
			return ctx.Err()
		}
		c := min(n, len(chunk))
		if err := emit(chunk[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// fakeTranscriber returns one scripted result per utterance.
type fakeTranscriber struct {
	rate    int
	results []fakeResult
	partial string // when set, streams implement PartialStream
	// partials, when set, gives each stream (in the order they start) its
	// own partial hypothesis; "" means the stream has no Partial.
	partials []string
	// freeStarts, when > 0, is how many Start calls find a decoder; later
	// ones wait for their context (the shared pool ran dry).
	freeStarts int
	// writeDelay is how long each stream Write takes (a recognizer on a
	// starved CPU).
	writeDelay time.Duration

	mu       sync.Mutex
	calls    int // Start calls
	starts   int // streams started
	n        int
	samples  []int // per finished stream
	open     int
	closed   int
	finished int
}

type fakeResult struct {
	text     string
	conf     float64
	err      error
	startErr error
	block    bool // Start waits for its context (no decoder free)
}

func (f *fakeTranscriber) SampleRate() int { return f.rate }

func (f *fakeTranscriber) Start(ctx context.Context, mode Mode) (TranscribeStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r fakeResult
	if f.n < len(f.results) {
		r = f.results[f.n]
	}
	f.calls++
	if f.freeStarts > 0 && f.calls > f.freeStarts {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return nil, ctx.Err()
	}
	if r.block {
		f.n++
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return nil, ctx.Err()
	}
	if r.startErr != nil {
		f.n++
		return nil, r.startErr
	}
	f.open++
	st := &fakeStream{f: f}
	p := f.partial
	if f.starts < len(f.partials) {
		p = f.partials[f.starts]
	}
	f.starts++
	if p != "" {
		return &partialStream{st, p}, nil
	}
	return st, nil
}

type fakeStream struct {
	f    *fakeTranscriber
	n    int
	done bool
}

func (s *fakeStream) Write(pcm []int16) error {
	time.Sleep(s.f.writeDelay)
	s.n += len(pcm)
	return nil
}

func (s *fakeStream) Finish() (Transcript, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.done {
		return Transcript{}, errors.New("fake stream: finished twice")
	}
	s.done = true
	f.open--
	f.finished++
	f.samples = append(f.samples, s.n)
	var r fakeResult
	if f.n < len(f.results) {
		r = f.results[f.n]
	}
	f.n++
	if r.err != nil {
		return Transcript{}, r.err
	}
	return Transcript{Text: r.text, Confidence: r.conf}, nil
}

func (s *fakeStream) Close() error {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if !s.done {
		s.done = true
		f.open--
		f.closed++
	}
	return nil
}

type partialStream struct {
	*fakeStream
	text string
}

func (p *partialStream) Partial() (string, error) { return p.text, nil }

func (f *fakeTranscriber) counts() (open, closed, finished int, samples []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open, f.closed, f.finished, append([]int(nil), f.samples...)
}

// reply is the conversation's scripted answer to one input.
type reply struct {
	say    []string
	result Result
	err    error
	// gateAfter blocks after that many sentences until gate is closed or
	// the turn is cancelled.
	gateAfter int
	// holdFirst blocks before the first sentence until the turn is
	// cancelled (a reply that never starts).
	holdFirst bool
}

// fakeResponder hands out one fakeConv.
type fakeResponder struct{ conv *fakeConv }

func (r *fakeResponder) NewConversation(call CallContext) Conversation {
	r.conv.mu.Lock()
	r.conv.call = call
	r.conv.mu.Unlock()
	return r.conv
}

type fakeConv struct {
	greeting    []string
	replies     []reply // in order of inputs
	gate        chan struct{}
	frustration float64

	mu        sync.Mutex
	call      CallContext
	inputs    []Input
	heard     []string
	cancelled int  // turns whose context was cancelled
	gated     bool // Respond is waiting at the gate
	busy      bool
	overlap   bool // methods ran concurrently
}

func (c *fakeConv) enter() {
	c.mu.Lock()
	if c.busy {
		c.overlap = true
	}
	c.busy = true
	c.mu.Unlock()
}

func (c *fakeConv) leave(ctx context.Context) {
	c.mu.Lock()
	c.busy = false
	if ctx != nil && ctx.Err() != nil {
		c.cancelled++
	}
	c.mu.Unlock()
}

func (c *fakeConv) Greeting(ctx context.Context, say func(string) error) error {
	c.enter()
	defer c.leave(ctx)
	for _, s := range c.greeting {
		if err := say(s); err != nil {
			return err
		}
	}
	return nil
}

func (c *fakeConv) Respond(ctx context.Context, in Input, say func(string) error) (Result, error) {
	c.enter()
	defer c.leave(ctx)
	c.mu.Lock()
	i := len(c.inputs)
	c.inputs = append(c.inputs, in)
	c.mu.Unlock()
	r := reply{say: []string{"I am not sure."}}
	if i < len(c.replies) {
		r = c.replies[i]
	}
	if r.err != nil {
		return Result{}, r.err
	}
	if r.holdFirst {
		<-ctx.Done()
		return r.result, ErrInterrupted
	}
	for n, s := range r.say {
		if r.gateAfter > 0 && n == r.gateAfter {
			c.mu.Lock()
			c.gated = true
			c.mu.Unlock()
			select {
			case <-c.gate:
			case <-ctx.Done():
				return r.result, ErrInterrupted
			}
			c.mu.Lock()
			c.gated = false
			c.mu.Unlock()
		}
		if err := say(s); err != nil {
			return r.result, err
		}
	}
	return r.result, nil
}

func (c *fakeConv) Heard(text string) {
	c.enter()
	defer c.leave(nil)
	c.mu.Lock()
	c.heard = append(c.heard, text)
	c.mu.Unlock()
}

func (c *fakeConv) Frustration() float64 { return c.frustration }

func (c *fakeConv) snapshot() (inputs []Input, heard []string, cancelled int, overlap bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Input(nil), c.inputs...), append([]string(nil), c.heard...), c.cancelled, c.overlap
}
