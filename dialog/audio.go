package dialog

import "sync"

// sampleRing hands inbound audio from the leg's reader goroutine to the
// dialog loop without allocating: a fixed ring of samples under a mutex
// held only for a copy. Frames that do not fit are dropped whole, so a
// stalled loop loses recent audio rather than growing memory.
type sampleRing struct {
	mu   sync.Mutex
	buf  []int16
	r, n int // read index and samples held
}

func (q *sampleRing) init(size int) { q.buf = make([]int16, size) }

// write copies p in; it reports false (and copies nothing) when p does not fit.
func (q *sampleRing) write(p []int16) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	size := len(q.buf)
	if len(p) > size-q.n {
		return false
	}
	w := (q.r + q.n) % size
	c := copy(q.buf[w:], p)
	copy(q.buf, p[c:])
	q.n += len(p)
	return true
}

// read fills dst completely and reports true, or leaves the ring untouched
// and reports false when fewer than len(dst) samples are held.
func (q *sampleRing) read(dst []int16) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n < len(dst) || len(dst) == 0 {
		return false
	}
	c := copy(dst, q.buf[q.r:min(q.r+len(dst), len(q.buf))])
	copy(dst[c:], q.buf)
	q.r = (q.r + len(dst)) % len(q.buf)
	q.n -= len(dst)
	return true
}

// preRoll keeps the most recent audio (dialog loop only) so the recognizer
// also gets the syllables before the endpointer was sure speech started.
type preRoll struct {
	buf  []int16
	w, n int
}

func newPreRoll(size int) *preRoll { return &preRoll{buf: make([]int16, max(size, 1))} }

func (p *preRoll) push(f []int16) {
	if len(f) >= len(p.buf) {
		copy(p.buf, f[len(f)-len(p.buf):])
		p.w, p.n = 0, len(p.buf)
		return
	}
	c := copy(p.buf[p.w:], f)
	copy(p.buf, f[c:])
	p.w = (p.w + len(f)) % len(p.buf)
	p.n = min(p.n+len(f), len(p.buf))
}

// tail calls fn with the last n samples held (all of them when n is
// negative or more than held), oldest first, in at most two slices.
func (p *preRoll) tail(n int, fn func([]int16)) {
	if n < 0 || n > p.n {
		n = p.n
	}
	if n == 0 {
		return
	}
	start := (p.w - n + len(p.buf)) % len(p.buf)
	if start+n <= len(p.buf) {
		fn(p.buf[start : start+n])
		return
	}
	fn(p.buf[start:])
	fn(p.buf[:p.w])
}

func (p *preRoll) reset() { p.w, p.n = 0, 0 }
