// Package media is parley's hot audio path: 20 ms PCM16 frames, G.711
// companding, WAV files, sample-rate conversion, voice activity detection
// with endpointing, the paced playout queue toward a leg and the mixer for
// bridges. Everything per frame runs without allocation in steady state.
package media

import "time"

// FrameDuration is the unit of audio on every leg: one 20 ms frame.
const FrameDuration = 20 * time.Millisecond

// FrameSamples returns the number of samples in one 20 ms frame at rate Hz.
func FrameSamples(rate int) int { return rate / 50 }
