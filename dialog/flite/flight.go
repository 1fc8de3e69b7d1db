package flite

import (
	"context"
	"fmt"
	"sync"
)

// A burst of calls often asks for the same sentence at once (the same
// answer to the same question): rather than each synthesizing it while the
// others wait for CPU, one call synthesizes it and the others stream its
// audio as it is produced. flights is keyed by the sanitized sentence.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one sentence being synthesized, readable while it grows.
type flight struct {
	mu      sync.Mutex
	pcm     []int16       // appended only
	done    bool          // synthesis over
	ok      bool          // ... complete and usable
	readers int           // calls following it
	changed chan struct{} // closed (and replaced) at every append and at the end
}

// join returns the flight of text and whether the caller leads it (and
// must finish it).
func (fs *flights) join(text string) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[text]; f != nil {
		f.mu.Lock()
		f.readers++
		f.mu.Unlock()
		return f, false
	}
	if fs.m == nil {
		fs.m = map[string]*flight{}
	}
	f := &flight{changed: make(chan struct{})}
	fs.m[text] = f
	return f, true
}

// finish ends the leader's flight.
func (fs *flights) finish(text string, f *flight, ok bool) {
	fs.mu.Lock()
	if fs.m[text] == f {
		delete(fs.m, text)
	}
	fs.mu.Unlock()
	f.mu.Lock()
	f.done, f.ok = true, ok
	close(f.changed)
	f.mu.Unlock()
}

func (f *flight) add(pcm []int16) {
	f.mu.Lock()
	f.pcm = append(f.pcm, pcm...)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// follow streams the flight's audio to emit as it is produced. It reports
// false (having emitted nothing) when the leader failed before any audio;
// a leader failing midway is an error, since part of the sentence was
// already played.
func (f *flight) follow(ctx context.Context, emit func([]int16) error) (bool, error) {
	pos := 0
	for {
		f.mu.Lock()
		n, done, ok, changed := len(f.pcm), f.done, f.ok, f.changed
		var chunk []int16
		if n > pos {
			chunk = make([]int16, min(n-pos, replaySamples))
			copy(chunk, f.pcm[pos:])
		}
		f.mu.Unlock()
		switch {
		case chunk != nil:
			pos += len(chunk)
			if err := emit(chunk); err != nil {
				return true, fmt.Errorf("flite: emit: %w", err)
			}
			continue
		case done && ok:
			return true, nil
		case done && pos == 0:
			return false, nil
		case done:
			return true, fmt.Errorf("flite: synthesize: the shared synthesis of this sentence failed midway")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return true, fmt.Errorf("flite: synthesize: %w", ctx.Err())
		}
	}
}

// followed reports whether any other call follows the flight.
func (f *flight) followed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readers > 0
}
