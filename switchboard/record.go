package switchboard

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-ai/parley"
)

// RecordingOptions turn call recording on.
type RecordingOptions struct {
	// Dir is where recordings are written, one stereo WAV per call (left:
	// the caller, right: what the caller heard: the AI, the queue, the
	// agent); empty means no recording.
	Dir string
	// Announcement is played before the greeting of every recorded call,
	// so callers know (and consent by staying on the line).
	Announcement string
	// URL turns a call id into the link stored with the recording event,
	// e.g. /api/calls/{id}/recording.wav.
	URL func(callID string) string
}

// recorder writes a call's two directions into a stereo WAV as the call
// goes, placing each frame by the wall clock so both sides stay aligned
// and silences keep their length. Memory stays bounded: samples are
// written out as soon as both channels have them, and a channel that is
// silent (nothing sent) is filled with silence once it lags.
type recorder struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	path   string
	rate   int
	start  time.Time
	ch     [2][]int16 // pending samples of each channel
	done   int64      // samples written per channel
	buf    []byte
	closed bool
	err    error
}

// Recording channels.
const (
	recCaller = 0
	recHeard  = 1
)

// maxRecGap bounds the silence inserted for one gap (a stalled clock must
// not write minutes of zeros at once).
const maxRecGap = 10 * time.Second

func newRecorder(dir, callID string, rate int) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording dir: %w", err)
	}
	path := filepath.Join(dir, callID+".wav")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &recorder{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path, rate: rate, start: time.Now()}
	if _, err := r.w.Write(wavHeader(rate, 0)); err != nil {
		f.Close()
		return nil, fmt.Errorf("recording: %w", err)
	}
	return r, nil
}

// wavHeader is the 44-byte header of a 16-bit stereo PCM WAV holding
// frames sample frames.
func wavHeader(rate int, frames int64) []byte {
	data := uint32(min(frames*4, 0xFFFFFFF0))
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 2) // stereo
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*4))
	binary.LittleEndian.PutUint16(h[32:], 4)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}

// write adds one frame of channel ch, heard now.
func (r *recorder) write(ch int, pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.err != nil {
		return
	}
	now := int64(time.Since(r.start) * time.Duration(r.rate) / time.Second)
	at := now - int64(len(pcm)) // where this frame starts
	have := r.done + int64(len(r.ch[ch]))
	if gap := at - have; gap > int64(len(pcm)) {
		r.ch[ch] = append(r.ch[ch], make([]int16, min(gap, int64(maxRecGap.Seconds())*int64(r.rate)))...)
	}
	r.ch[ch] = append(r.ch[ch], pcm...)
	// The other side said nothing lately: its silence is written as such,
	// keeping a little slack for its frames still on their way.
	other := 1 - ch
	slack := int64(r.rate / 5)
	if lag := (now - slack) - (r.done + int64(len(r.ch[other]))); lag > 0 {
		r.ch[other] = append(r.ch[other], make([]int16, min(lag, int64(maxRecGap.Seconds())*int64(r.rate)))...)
	}
	r.flushLocked()
}

// flushLocked writes the samples both channels have.
func (r *recorder) flushLocked() {
	n := min(len(r.ch[0]), len(r.ch[1]))
	if n == 0 {
		return
	}
	if cap(r.buf) < n*4 {
		r.buf = make([]byte, n*4)
	}
	b := r.buf[:n*4]
	for i := range n {
		binary.LittleEndian.PutUint16(b[i*4:], uint16(r.ch[0][i]))
		binary.LittleEndian.PutUint16(b[i*4+2:], uint16(r.ch[1][i]))
	}
	if _, err := r.w.Write(b); err != nil {
		r.err = err
	}
	r.ch[0] = append(r.ch[0][:0], r.ch[0][n:]...)
	r.ch[1] = append(r.ch[1][:0], r.ch[1][n:]...)
	r.done += int64(n)
}

// close writes what is left, fixes the header and returns the path and
// the recorded duration.
func (r *recorder) close() (string, time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.path, 0, r.err
	}
	r.closed = true
	n := max(len(r.ch[0]), len(r.ch[1]))
	for c := range r.ch {
		r.ch[c] = append(r.ch[c], make([]int16, n-len(r.ch[c]))...)
	}
	r.flushLocked()
	err := r.err
	if ferr := r.w.Flush(); err == nil {
		err = ferr
	}
	if err == nil {
		_, err = r.f.WriteAt(wavHeader(r.rate, r.done), 0)
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return r.path, time.Duration(r.done) * time.Second / time.Duration(r.rate), err
}

// recLeg is the caller's leg with everything sent to it recorded.
type recLeg struct {
	parley.Leg
	rec *recorder
}

func (l *recLeg) WriteFrame(pcm []int16) error {
	l.rec.write(recHeard, pcm)
	return l.Leg.WriteFrame(pcm)
}

// recHandler records what the caller says before handing it on.
type recHandler struct {
	parley.LegHandler
	rec *recorder
}

func (h recHandler) OnAudio(pcm []int16) {
	h.rec.write(recCaller, pcm)
	h.LegHandler.OnAudio(pcm)
}

// SweepRecordings deletes recordings in dir older than maxAge and returns
// how many went; the server runs it periodically (audio retention).
func SweepRecordings(ctx context.Context, dir string, maxAge time.Duration, now time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if e.IsDir() || filepath.Ext(e.Name()) != ".wav" {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < maxAge {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
