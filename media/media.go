// Package media is parley's hot audio path: 20 ms PCM16 frames, G.711
// companding, WAV files, sample-rate conversion, voice activity detection
// with endpointing, the paced playout queue toward a leg and the mixer for
// bridges. Everything per frame runs without allocation in steady state.
//
// github.com/livekit/media-sdk (Apache-2.0) was weighed as a dependency for
// G.711, resampling and mixing. Its resampler is libsoxr through cgo (with
// gopxl/beep as the non-cgo fallback), its module requires livekit/protocol,
// amrwb-cgo, hraban/opus (cgo) and zap, and its mixer produces one mix for
// one writer (no per-party mix-minus, no whisper) and allocates a frame per
// cycle. What parley needs fits in a few hundred lines here with no cgo and
// no new dependency, so the package keeps livekit's shapes (20 ms frames, a
// per-party bounded buffer mixed on a clock) but not its code.
package media

import "time"

// FrameDuration is the unit of audio on every leg: one 20 ms frame.
const FrameDuration = 20 * time.Millisecond

// FrameSamples returns the number of samples in one 20 ms frame at rate Hz.
func FrameSamples(rate int) int { return rate / 50 }
