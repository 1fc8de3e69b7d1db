package sphinx

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/parley-ai/parley/dialog"
)

// frameDur is the decoder's frame shift.
const frameDur = 10 * time.Millisecond

// stream recognizes one utterance; it holds a pooled decoder from the
// first moment one is free until Finish or Close.
type stream struct {
	r      *Recognizer
	ctx    context.Context // bounds Finish's wait for a decoder
	mode   dialog.Mode
	search string // the decoder search of mode

	mu      sync.Mutex
	d       *decoder
	ended   bool      // Finish or Close ran
	backlog []int16   // front-end output waiting for a decoder
	cmn     []float32 // initial cepstral mean of the mode
	// prime, when > 0, is how much audio (samples) the stream gathers
	// before its utterance starts: the cepstral mean the utterance starts
	// from is then measured on that audio (blended with cmn), see begin.
	// begun says the utterance runs on d.
	prime   int
	begun   bool
	fe      feState
	samples int
	err     error
	// keep holds the front end's output of a digits utterance for the
	// one-digit second pass (nil in other modes, or once it grew past
	// keepMax: a long answer is not one digit).
	keep []int16
}

const (
	keepInitial = 3 * sampleRate  // 3 s: most digit answers fit without growing
	keepMax     = 20 * sampleRate // longer than any one-digit answer
	// maxBacklog bounds the audio a stream buffers while every decoder is
	// busy (30 s, 960 KB); a stream that waits longer fails.
	maxBacklog = 30 * sampleRate
)

// errNoDecoder is returned by Write when a stream waited for a decoder for
// longer than maxBacklog of audio.
var errNoDecoder = errors.New("sphinx: no decoder free for 30 s of speech")

var (
	_ dialog.TranscribeStream = (*stream)(nil)
	_ dialog.PartialStream    = (*stream)(nil)
)

// errStreamDone is returned by Write and Finish after the stream ended.
var errStreamDone = errors.New("sphinx: stream already finished")

// Write feeds 16 kHz audio to the decoder as it arrives, or buffers it
// while the stream waits for a decoder.
func (s *stream) Write(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errStreamDone
	}
	if s.err != nil {
		return s.err
	}
	out := s.fe.process(pcm)
	s.keepAudio(out)
	s.samples += len(pcm)
	if s.d == nil {
		d, err := s.r.tryAcquire()
		if err != nil {
			s.err = err
			return err
		}
		s.d = d
	}
	if !s.begun {
		if len(s.backlog)+len(out) > maxBacklog {
			s.err, s.backlog = errNoDecoder, nil
			return s.err
		}
		s.backlog = append(s.backlog, out...)
		if s.d != nil && len(s.backlog) >= s.prime {
			return s.begin()
		}
		return nil
	}
	if err := s.d.process(out, false); err != nil {
		s.err = err
		return err
	}
	return nil
}

// begin starts the utterance on the stream's decoder and decodes the audio
// buffered so far (while the stream waited for a decoder, or gathered its
// prime). On failure the decoder goes back to the pool as unhealthy.
//
// With a prime the utterance starts from the cepstral mean of the buffered
// audio (the frames the decoder's voice detection keeps), weighted against
// the mode's fixed phone mean as if that had been measured on cmnPrior
// frames: a fixed mean fits a call's own line and voice badly, and live
// CMN barely moves within a short utterance (it updates after 3 s).
func (s *stream) begin() error {
	d := s.d
	s.begun = true
	cmn := s.cmn
	err := d.setSearch(s.search)
	if err == nil && s.prime > 0 && len(s.cmn) == 13 {
		if sum, n := d.cepSum(s.backlog); n > 0 {
			mean := make([]float32, 13)
			for i := range mean {
				mean[i] = float32((sum[i] + cmnPrior*float64(s.cmn[i])) / (float64(n) + cmnPrior))
			}
			cmn = mean
		}
	}
	if err == nil {
		err = d.start(cmn)
	}
	if err == nil && len(s.backlog) > 0 {
		if err = d.process(s.backlog, false); err != nil {
			d.abort()
		}
	}
	s.backlog = nil
	if err != nil {
		s.d = nil
		s.err = err
		s.r.release(d, false)
		return err
	}
	return nil
}

// cmnPrior is the weight of the fixed phone mean, in frames, against the
// mean measured on a stream's prime (0, 20 and 60 measured alike on whole
// utterances).
var cmnPrior = 20.0

// livePrime is the prime of a live stream in open and yes/no mode (1.5 s
// at 16 kHz, pre-roll included): shorter utterances start from their
// whole mean at Finish. The decoder catches up with the buffered audio in
// a fraction of its length and is real-time from then on, so the result
// is as quick at the end of the turn. Measured with the evaluation's
// padded recordings cut to a prime of this length (60 questions x 4
// voices): 500 ms 11.2 % clean / 47.6 % at 15 dB (worse than the phone
// mean: a few phones give a biased mean), 1 s 8.4 / 41.5 %, 1.5 s 7.9 /
// 36.2 %, whole utterance 7.8 / 34.1 %.
var livePrime = 3 * sampleRate / 2

// finishWait bounds how long Finish waits for a decoder for a stream that
// never got one. A decoder is normally free within an utterance's length;
// but a call's later utterance holds a decoder until its own turn finishes
// it, after this one, so when every decoder is held that way by calls whose
// earlier turn waits here, only this bound ends the wait (it once left 8
// calls silent for good when 8 decoders were held so). The turn then fails
// as a recognition failure ("sorry, could you say that again") and the
// later turns release their decoders.
var finishWait = 8 * time.Second

// Finish ends the utterance, returns the decoder to the pool and maps the
// best path to a Transcript with calibrated confidences. A stream still
// waiting for a decoder waits for one here, until the context given to
// Start ends or for finishWait.
func (s *stream) Finish() (dialog.Transcript, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return dialog.Transcript{}, errStreamDone
	}
	s.ended = true
	if s.d == nil && s.err == nil {
		wctx, cancel := context.WithTimeout(s.ctx, finishWait)
		d, err := s.r.acquire(wctx)
		cancel()
		if err != nil {
			s.backlog = nil
			return dialog.Transcript{}, err
		}
		s.d = d
	}
	if s.d != nil && s.err == nil && !s.begun {
		if err := s.begin(); err != nil {
			return dialog.Transcript{}, err
		}
	}
	d := s.d
	s.d = nil
	if s.err != nil {
		if d != nil {
			d.abort()
			s.r.release(d, false)
		}
		return dialog.Transcript{}, s.err
	}
	tail := s.fe.flush()
	s.keepAudio(tail)
	if err := d.process(tail, false); err != nil {
		d.abort()
		s.r.release(d, false)
		return dialog.Transcript{}, err
	}
	h, err := d.end()
	if err == nil && s.keep != nil {
		h, err = s.secondPass(d, h)
	}
	s.r.release(d, err == nil)
	if err != nil {
		return dialog.Transcript{}, err
	}
	return transcriptOf(h, s.mode, s.fe.dynamicRange()), nil
}

// attached returns the stream's decoder, nil while it waits for one.
func (s *stream) attached() *decoder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d
}

// Partial returns the hypothesis so far, in the same spelling as Finish's
// text ("oh" reads "zero" in digits mode), or "" when nothing has been
// recognized yet. It does not end the utterance; it costs a partial
// back-trace of the search, so callers poll it every few frames, not on
// every Write.
func (s *stream) Partial() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return "", errStreamDone
	}
	if s.err != nil {
		return "", s.err
	}
	if s.d == nil {
		return "", nil // still waiting for a decoder: nothing decoded yet
	}
	if !s.begun {
		// A partial result is wanted before the prime is complete (a
		// barge-in check): start from the audio there is.
		if err := s.begin(); err != nil {
			return "", err
		}
	}
	text, err := s.d.partial()
	if err != nil || text == "" {
		return "", err
	}
	words := strings.Fields(text)
	for i, w := range words {
		w = baseWord(w)
		if s.mode == dialog.ModeDigits && w == "oh" {
			w = "zero"
		}
		words[i] = w
	}
	return strings.Join(words, " "), nil
}

// keepAudio appends decoder input to the digits buffer while it is short.
func (s *stream) keepAudio(pcm []int16) {
	if s.keep == nil {
		return
	}
	if len(s.keep)+len(pcm) > keepMax {
		s.keep = nil
		return
	}
	s.keep = append(s.keep, pcm...)
}

// Close abandons the utterance and releases the decoder; idempotent.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	s.ended = true
	s.backlog = nil
	if s.d == nil {
		return nil
	}
	s.d.abort()
	s.r.release(s.d, s.err == nil)
	s.d = nil
	return nil
}

// isFiller reports decoder tokens that are not words: silence and noise.
func isFiller(w string) bool {
	return w == "<s>" || w == "</s>" || w == "<sil>" || w == "(NULL)" || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "++")
}

// baseWord strips an alternate-pronunciation suffix: "zero(2)" -> "zero".
func baseWord(w string) string {
	if i := strings.IndexByte(w, '('); i > 0 {
		return w[:i]
	}
	return w
}

// transcriptOf turns a hypothesis into a Transcript.
func transcriptOf(h hypothesis, mode dialog.Mode, dynRange float64) dialog.Transcript {
	var t dialog.Transcript
	var texts []string
	for _, sg := range h.words {
		if isFiller(sg.word) {
			continue
		}
		w := baseWord(sg.word)
		if mode == dialog.ModeDigits && w == "oh" {
			w = "zero"
		}
		texts = append(texts, w)
		t.Words = append(t.Words, dialog.Word{
			Text:       w,
			Confidence: wordConfidence(sg),
			Start:      time.Duration(sg.start) * frameDur,
			End:        time.Duration(sg.end+1) * frameDur,
		})
	}
	t.Text = strings.Join(texts, " ")
	t.Confidence = utteranceConfidence(h, t.Words, dynRange)
	return t
}
