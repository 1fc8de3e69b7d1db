// Package sphinx is parley's embedded offline speech-to-text: pocketsphinx
// (Debian's 5prealpha) through cgo, with a domain language model that is
// generated at start-up from the knowledge base's sentences mixed with an
// embedded corpus of real caller questions (Banking77), grammars for digit
// strings (with a one-digit second pass) and yes/no answers, phone-band
// pronunciation variants, an optional spectral noise reduction and
// calibrated per-utterance confidence. It implements dialog.Transcriber
// and dialog.PartialStream.
//
// Decoders are expensive (each loads its own acoustic model: about 12 MB
// and 100 ms of CPU), so a Recognizer keeps a bounded pool, made lazily
// with one spare made ahead in the background; a stream holds one decoder
// only while its utterance is decoded. When every decoder is busy a new
// stream buffers its audio and catches up (decoding runs about 25 times
// faster than real time) as soon as one is free, so a burst of callers
// speaking at once delays some results a little instead of failing them.
package sphinx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parley-ai/parley/dialog"
)

var _ dialog.Transcriber = (*Recognizer)(nil)

// DefaultModelDir is where Debian's pocketsphinx-en-us package installs the
// 16 kHz US English acoustic model and cmudict.
const DefaultModelDir = "/usr/share/pocketsphinx/model/en-us"

// DefaultNoiseReduction is the default gain floor of the spectral noise
// reduction (Config.NoiseReduction): 0.1 (-20 dB) measured 1-2 points of
// WER better than 0.2 in 15 dB white noise.
const DefaultNoiseReduction = 0.1

// sampleRate is the only rate the en-us acoustic model accepts.
const sampleRate = 16000

// ErrClosed is returned by a Recognizer (and its streams) after Close.
var ErrClosed = errors.New("sphinx: recognizer closed")

// Config configures a Recognizer.
type Config struct {
	// DataDir receives the generated decoder files (feat.params, ARPA
	// models, dictionary). It is created if needed; required.
	DataDir string
	// Sentences are the domain's example utterances and answer keywords
	// (the knowledge base). Common call phrases, numbers, yes/no and
	// escalation words are always added.
	Sentences []string
	// MaxDecoders bounds the pool of decoders, that is the number of
	// utterances decoded at once (default 4); more streams wait with their
	// audio buffered. Each decoder costs about 12 MB.
	MaxDecoders int
	// Preload is how many decoders to have ready before calls need them
	// (at most MaxDecoders): New makes the first, the rest are made one
	// after another in the background. Default 0 (1): decoders are made
	// as calls need them, with one spare made ahead. Preloading moves the
	// 100 ms of CPU each decoder takes to load out of a burst of calls
	// and into start-up, and its memory into the shared engines.
	Preload int
	// ModelDir holds the en-us acoustic model and cmudict-en-us.dict
	// (default DefaultModelDir).
	ModelDir string
	// CMNInit overrides the initial cepstral mean written to feat.params
	// (13 comma-separated numbers). The default fits upsampled 8 kHz phone audio.
	CMNInit string
	// LogFile, when set, receives pocketsphinx's own log (process-wide);
	// by default it is discarded.
	LogFile string
	// NoCallerCorpus leaves the built-in caller corpus (Banking77's
	// customer questions) out of the open-speech language model: for a
	// domain far from retail banking, or to save memory and start-up time.
	// With it the model hears open wording much better; without it only
	// the knowledge base's phrasing is known.
	NoCallerCorpus bool
	// WideBand is for callers whose audio really is 16 kHz wide-band,
	// such as WebRTC Opus: it leaves out the pronunciation variants for
	// phone audio, which has no /s/ above 4 kHz.
	WideBand bool
	// NoiseReduction is the gain floor of the spectral noise reduction in
	// front of the decoder (0.05-0.5; lower removes more noise and more
	// speech); 0 means the default, DefaultNoiseReduction, and a negative
	// value turns it off. On synthesized phone speech in 15 dB white noise
	// it took WER from 58 % to 43 %; on clean speech and recorded digits
	// it changed nothing (it learns the line noise from the audio before
	// the speech, so a clean line passes through).
	NoiseReduction float64
}

// modeTuning is the signal side of a recognition mode: its front end and
// the fixed cepstral mean each of its utterances starts from (nil: the
// decoder's adapted mean).
type modeTuning struct {
	fe  frontEnd
	cmn []float32
}

// Recognizer is a pool of pocketsphinx decoders sharing one domain model.
type Recognizer struct {
	cfg    Config
	open   modeTuning // open speech and yes/no answers
	digits modeTuning // digit strings

	modelMu sync.Mutex
	cur     atomic.Pointer[model]
	gen     uint64
	old     []*model

	sem      chan struct{} // one token per decoder in use by a stream
	poolMu   sync.Mutex
	poolCond *sync.Cond // signalled when a spare decoder is made or fails
	idle     []*decoder
	made     int            // decoders alive or being made, at most MaxDecoders
	making   bool           // a spare is being made
	loads    sync.WaitGroup // background decoder loads (spare, preload)
	closed   bool
	done     chan struct{}
}

// New generates the model files into cfg.DataDir and returns a Recognizer.
// One decoder is created at once so configuration errors show at start-up.
func New(cfg Config) (*Recognizer, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("sphinx: Config.DataDir is required")
	}
	if cfg.ModelDir == "" {
		cfg.ModelDir = DefaultModelDir
	}
	if cfg.MaxDecoders <= 0 {
		cfg.MaxDecoders = 4
	}
	if cfg.CMNInit == "" {
		cfg.CMNInit = phoneCMNInit
	}
	switch {
	case cfg.NoiseReduction == 0:
		cfg.NoiseReduction = DefaultNoiseReduction
	case cfg.NoiseReduction < 0:
		cfg.NoiseReduction = 0
	case !(cfg.NoiseReduction < 1):
		return nil, fmt.Errorf("sphinx: Config.NoiseReduction %g outside (0, 1)", cfg.NoiseReduction)
	}
	if cfg.LogFile != "" {
		if err := setLogFile(cfg.LogFile); err != nil {
			return nil, err
		}
	}
	cmn, err := parseCMNInit(cfg.CMNInit)
	if err != nil {
		return nil, err
	}
	fe := defaultFrontEnd(cfg.NoiseReduction)
	// Every utterance starts from CMNInit (decoder.start) and adapts
	// within itself. Decoders are pooled across calls: a mean carried from
	// utterance to utterance is whatever the decoder heard last — another
	// caller, an agent, a noisy line — and garbled the next caller's first
	// words (after a burst of babbling test callers, "i want to speak to an
	// agent" came out as "i want to do you need the").
	r := &Recognizer{
		cfg:    cfg,
		open:   modeTuning{fe: fe, cmn: cmn},
		digits: modeTuning{fe: fe, cmn: cmn},
		sem:    make(chan struct{}, cfg.MaxDecoders),
		done:   make(chan struct{}),
	}
	r.poolCond = sync.NewCond(&r.poolMu)
	if err := r.Rebuild(cfg.Sentences); err != nil {
		return nil, err
	}
	d, err := r.newDecoder(r.cur.Load())
	if err != nil {
		return nil, err
	}
	r.idle = append(r.idle, d)
	r.made = 1
	if n := min(cfg.Preload, cfg.MaxDecoders); n > 1 {
		r.loads.Add(1)
		go func() {
			defer r.loads.Done()
			r.preload(n)
		}()
	}
	return r, nil
}

// preload makes decoders in the background until n exist (fewer if the
// recognizer closes or a load fails).
func (r *Recognizer) preload(n int) {
	for {
		r.poolMu.Lock()
		if r.closed || r.made >= n {
			r.poolMu.Unlock()
			return
		}
		r.made++
		r.poolMu.Unlock()
		d, err := r.newDecoder(r.cur.Load())
		r.poolMu.Lock()
		if err != nil || r.closed {
			r.made--
			r.poolCond.Broadcast()
			r.poolMu.Unlock()
			if d != nil {
				d.free()
			}
			return
		}
		r.idle = append(r.idle, d)
		r.poolCond.Broadcast()
		r.poolMu.Unlock()
	}
}

// parseCMNInit reads a -cmninit value: 13 comma-separated numbers.
func parseCMNInit(s string) ([]float32, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 13 {
		return nil, fmt.Errorf("sphinx: CMNInit needs 13 numbers, got %d", len(parts))
	}
	out := make([]float32, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("sphinx: CMNInit: %w", err)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// SampleRate is the rate Write expects: the acoustic model is 16 kHz only,
// so phone audio is upsampled by the caller (media.Resampler).
func (r *Recognizer) SampleRate() int { return sampleRate }

// Rebuild regenerates the domain language model and dictionary from new
// sentences (the knowledge base changed). New decoders load the new model;
// pooled decoders are replaced when they are next taken from the pool, so an
// utterance in progress finishes with the model it started with.
func (r *Recognizer) Rebuild(sentences []string) error {
	r.modelMu.Lock()
	defer r.modelMu.Unlock()
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	gen := r.gen + 1
	dir := filepath.Join(r.cfg.DataDir, "sphinx", "model-"+strconv.FormatUint(gen, 10))
	var corpus [][]string
	if !r.cfg.NoCallerCorpus {
		corpus = callerCorpus()
	}
	m, err := buildModel(dir, gen, r.cfg.ModelDir, r.cfg.CMNInit, sentences, corpus, !r.cfg.WideBand)
	if err != nil {
		return err
	}
	// Check that a decoder accepts the files before any stream depends on them.
	d, err := newModelDecoder(m, r.cfg.ModelDir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	d.free()
	r.gen = gen
	prev := r.cur.Swap(m)
	if prev != nil {
		r.old = append(r.old, prev)
	}
	// Keep the previous generation for a decoder that may be loading it
	// right now; remove older ones once no load holds them.
	for len(r.old) > 1 {
		r.old[0].remove()
		r.old = r.old[1:]
	}
	return nil
}

// Dropped lists the domain words with no pronunciation in cmudict and no
// fallback spelling; they were left out of the language model.
func (r *Recognizer) Dropped() []string {
	return append([]string(nil), r.cur.Load().dropped...)
}

// Guessed lists the domain words missing from cmudict that the
// letter-to-sound fallback spelled (plurals, compounds, acronyms).
func (r *Recognizer) Guessed() []string {
	return append([]string(nil), r.cur.Load().guessed...)
}

// remove deletes a superseded model's files once no decoder is loading them.
func (m *model) remove() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed = true
	_ = os.RemoveAll(m.dir)
}

// newModelDecoder creates a decoder with the open, yes/no and digits
// searches of model m.
func newModelDecoder(m *model, modelDir string) (*decoder, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.removed {
		return nil, errStaleModel
	}
	d, err := newDecoder(append([]string{
		"-hmm", filepath.Join(modelDir, "en-us"),
		"-featparams", m.featp,
		"-dict", m.dict,
		"-lm", m.openLM,
		"-bestpath", "yes",
	}, testDecoderArgs...))
	if err != nil {
		return nil, err
	}
	d.gen = m.gen
	if err := d.setLMFile(searchYesNo, m.yesNoLM); err != nil {
		d.free()
		return nil, err
	}
	if err := d.setJSGF(searchDigits, digitsGrammar, digitsWIP); err != nil {
		d.free()
		return nil, err
	}
	if err := setDigitSearch(d, m.digitVariants); err != nil {
		d.free()
		return nil, err
	}
	return d, nil
}

// expArgs are extra decoder arguments (experiments).
// testDecoderArgs are extra decoder arguments appended by tests and
// tuning experiments (nil in production).
var testDecoderArgs []string

var errStaleModel = errors.New("sphinx: model superseded while loading")

// newDecoder makes a decoder for the current model, retrying when a Rebuild
// superseded the model during the load.
func (r *Recognizer) newDecoder(m *model) (*decoder, error) {
	for i := 0; ; i++ {
		d, err := newModelDecoder(m, r.cfg.ModelDir)
		if errors.Is(err, errStaleModel) && i < 3 {
			m = r.cur.Load()
			continue
		}
		return d, err
	}
}

// acquire takes a decoder from the pool, creating one if fewer than
// MaxDecoders exist, or waits for one to be released until ctx ends.
func (r *Recognizer) acquire(ctx context.Context) (*decoder, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("sphinx: wait for a decoder: %w", ctx.Err())
	case <-r.done:
		return nil, ErrClosed
	}
	return r.take(true)
}

// tryAcquire takes an idle decoder without waiting; it returns nil when
// none is idle, after starting to make one in the background if fewer
// than MaxDecoders exist, so a stream on a call's dialog loop never waits
// for a decoder to load.
func (r *Recognizer) tryAcquire() (*decoder, error) {
	select {
	case r.sem <- struct{}{}:
	default:
		return nil, nil
	}
	return r.take(false)
}

// take hands out a decoder for the token just taken from sem: an idle one
// (replaced if built from an older model), else a new one. With create
// false it does not load one itself; it returns nil (and gives the token
// back) instead. Whenever the pool runs out of idle decoders, a spare is
// made in the background for the next stream.
func (r *Recognizer) take(create bool) (*decoder, error) {
	m := r.cur.Load()
	r.poolMu.Lock()
	var d *decoder
	for {
		if r.closed {
			r.poolMu.Unlock()
			<-r.sem
			return nil, ErrClosed
		}
		if n := len(r.idle); n > 0 {
			d = r.idle[n-1]
			r.idle = r.idle[:n-1]
			break
		}
		if !create {
			break
		}
		if r.made < r.cfg.MaxDecoders {
			r.made++
			break
		}
		// Every decoder is in use or being made, and this token's holder
		// has none: a spare is on its way.
		r.poolCond.Wait()
	}
	r.spareLocked()
	r.poolMu.Unlock()
	if d != nil && d.gen == m.gen {
		return d, nil
	}
	if d == nil && !create {
		<-r.sem
		return nil, nil
	}
	if d != nil {
		d.free() // built from an older model: replace it between utterances
	}
	d, err := r.newDecoder(m)
	if err != nil {
		r.poolMu.Lock()
		r.made--
		r.poolCond.Broadcast()
		r.poolMu.Unlock()
		<-r.sem
		return nil, err
	}
	return d, nil
}

// spareLocked starts making a decoder in the background when none is idle
// and the pool may grow: it keeps one ready for the next stream, so a
// stream rarely waits for the 100 ms a decoder takes to load (more under
// load). Called with poolMu held.
func (r *Recognizer) spareLocked() {
	if len(r.idle) > 0 || r.making || r.made >= r.cfg.MaxDecoders || r.closed {
		return
	}
	r.made++
	r.making = true
	r.loads.Add(1)
	go func() {
		defer r.loads.Done()
		d, err := r.newDecoder(r.cur.Load())
		r.poolMu.Lock()
		defer r.poolMu.Unlock()
		defer r.poolCond.Broadcast()
		r.making = false
		if err != nil || r.closed {
			r.made--
			if d != nil {
				d.free()
			}
			return
		}
		r.idle = append(r.idle, d)
	}()
}

// release returns a decoder to the pool (or frees it after Close).
func (r *Recognizer) release(d *decoder, healthy bool) {
	r.poolMu.Lock()
	if r.closed || !healthy {
		r.made--
		r.poolCond.Broadcast()
		r.poolMu.Unlock()
		d.free()
	} else {
		r.idle = append(r.idle, d)
		r.poolMu.Unlock()
	}
	<-r.sem
}

// Close frees the idle decoders and the generated files; streams still
// running keep their decoder until they finish, then free it. Idempotent.
func (r *Recognizer) Close() error {
	r.poolMu.Lock()
	if r.closed {
		r.poolMu.Unlock()
		return nil
	}
	r.closed = true
	idle := r.idle
	r.idle = nil
	r.made -= len(idle)
	r.poolCond.Broadcast()
	r.poolMu.Unlock()
	r.modelMu.Lock()
	close(r.done)
	models := append(r.old, r.cur.Load())
	r.old = nil
	r.modelMu.Unlock()
	for _, d := range idle {
		d.free()
	}
	// A decoder loading in the background frees itself on seeing closed.
	r.loads.Wait()
	// Decoders hold their models in memory; the files are only read at load.
	for _, m := range models {
		m.remove()
	}
	return nil
}

// Start begins recognizing one utterance in mode. It does not wait for a
// decoder: when all are busy the stream buffers its audio (up to
// maxBacklog) and starts decoding as soon as one is free; Finish waits for
// one until ctx ends. ctx should live as long as the utterance.
func (r *Recognizer) Start(ctx context.Context, mode dialog.Mode) (dialog.TranscribeStream, error) {
	return r.start(ctx, mode, false)
}

// start opens a stream; with wait it blocks until it has a decoder (batch
// transcription, which has all its audio at once).
func (r *Recognizer) start(ctx context.Context, mode dialog.Mode, wait bool) (*stream, error) {
	select {
	case <-r.done:
		return nil, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sphinx: start: %w", err)
	}
	search, tune := searchOpen, r.open
	switch mode {
	case dialog.ModeDigits:
		search, tune = searchDigits, r.digits
	case dialog.ModeYesNo:
		search = searchYesNo
	}
	s := &stream{r: r, ctx: ctx, mode: mode, search: search, cmn: tune.cmn, fe: tune.fe.newState()}
	if mode == dialog.ModeDigits {
		s.keep = make([]int16, 0, keepInitial)
	} else {
		s.prime = livePrime
	}
	var d *decoder
	var err error
	if wait {
		d, err = r.acquire(ctx)
	} else {
		d, err = r.tryAcquire()
	}
	if err != nil {
		return nil, err
	}
	// The utterance itself begins with the first audio (stream.begin).
	s.d = d
	return s, nil
}
