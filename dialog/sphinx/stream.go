package sphinx

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/parley-ai/parley/dialog"
)

// frameDur is the decoder's frame shift.
const frameDur = 10 * time.Millisecond

// stream recognizes one utterance; it holds a pooled decoder until Finish or Close.
type stream struct {
	r    *Recognizer
	mode dialog.Mode

	mu      sync.Mutex
	d       *decoder
	fe      feState
	samples int
	err     error
}

var (
	_ dialog.TranscribeStream = (*stream)(nil)
	_ dialog.PartialStream    = (*stream)(nil)
)

// errStreamDone is returned by Write and Finish after the stream ended.
var errStreamDone = errors.New("sphinx: stream already finished")

// Write feeds 16 kHz audio to the decoder as it arrives.
func (s *stream) Write(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return errStreamDone
	}
	if s.err != nil {
		return s.err
	}
	if err := s.d.process(s.fe.process(pcm), false); err != nil {
		s.err = err
		return err
	}
	s.samples += len(pcm)
	return nil
}

// Finish ends the utterance, returns the decoder to the pool and maps the
// best path to a Transcript with calibrated confidences.
func (s *stream) Finish() (dialog.Transcript, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return dialog.Transcript{}, errStreamDone
	}
	d := s.d
	s.d = nil
	if s.err != nil {
		d.abort()
		s.r.release(d, false)
		return dialog.Transcript{}, s.err
	}
	h, err := d.end()
	s.r.release(d, err == nil)
	if err != nil {
		return dialog.Transcript{}, err
	}
	return transcriptOf(h, s.mode, s.fe.dynamicRange()), nil
}

// Partial returns the hypothesis so far, in the same spelling as Finish's
// text ("oh" reads "zero" in digits mode), or "" when nothing has been
// recognized yet. It does not end the utterance; it costs a partial
// back-trace of the search, so callers poll it every few frames, not on
// every Write.
func (s *stream) Partial() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return "", errStreamDone
	}
	if s.err != nil {
		return "", s.err
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

// Close abandons the utterance and releases the decoder; idempotent.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
