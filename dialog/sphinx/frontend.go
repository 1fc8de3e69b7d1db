package sphinx

import "math"

// frontEnd holds the signal settings applied to audio before the decoder.
//
// Phone audio has nothing above 4 kHz, but the en-us model's filter bank
// reaches 6.8 kHz and expects the fricative energy there ("six", "seven",
// "three"). Multiplying the signal by (-1)^n mirrors the 0-4 kHz band onto
// 4-8 kHz (f -> 8000-f); adding a little of that image is a cheap, stateless
// bandwidth extension that works sample by sample in a stream.
type frontEnd struct {
	foldGain float64 // share of the mirrored band added (0 = off)
	dcPole   float64 // DC-blocking high-pass pole (0 = off)
}

// defaultFrontEnd returns the tuned phone-band front end, or a plain one for
// wide-band audio.
func defaultFrontEnd(wideBand bool) frontEnd {
	if wideBand {
		return frontEnd{dcPole: 0.995}
	}
	return frontEnd{foldGain: 0.5, dcPole: 0.995}
}

// feState is the per-stream state of the front end.
type feState struct {
	fe     frontEnd
	prevX  float64
	prevY  float64
	parity bool
	buf    []int16

	// Level statistics for the confidence: a histogram of 10 ms frame
	// energies in dB, so a stream keeps no per-frame list.
	acc    float64
	accN   int
	levels [levelBins]int32
}

// levelBins is the range of the frame-energy histogram, in 1 dB steps of
// mean square sample value (0 dB = 1 LSB, 90 dB = full scale).
const levelBins = 100

// levelFloorDB is where frame energies are floored: digital silence and
// faint line hiss count alike.
const levelFloorDB = 20

// addLevels accumulates 10 ms frame energies of pcm.
func (s *feState) addLevels(pcm []int16) {
	for _, v := range pcm {
		x := float64(v)
		s.acc += x * x
		s.accN++
		if s.accN == trimFrame {
			db := levelFloorDB
			if ms := s.acc / trimFrame; ms > 0 {
				db = max(levelFloorDB, min(levelBins-1, int(10*math.Log10(ms))))
			}
			s.levels[db]++
			s.acc, s.accN = 0, 0
		}
	}
}

// dynamicRange is the spread in dB between loud (95th percentile) and quiet
// (10th percentile) frames: speech comes in syllables and pauses (20 dB and
// more), steady noise and hum stay within a few dB. Frames at the floor
// (digital silence, padding) carry no information and are left out.
func (s *feState) dynamicRange() float64 {
	var n int32
	for _, c := range s.levels[levelFloorDB+1:] {
		n += c
	}
	if n == 0 {
		return 0
	}
	pct := func(q float64) int {
		want := int32(math.Ceil(q * float64(n)))
		var acc int32
		for i := levelFloorDB + 1; i < levelBins; i++ {
			acc += s.levels[i]
			if acc >= want {
				return i
			}
		}
		return levelBins - 1
	}
	return float64(pct(0.95) - pct(0.10))
}

func (fe frontEnd) newState() feState { return feState{fe: fe} }

// process filters pcm into the state's buffer (reused between calls, so a
// stream allocates only when a chunk is longer than any before).
func (s *feState) process(pcm []int16) []int16 {
	if cap(s.buf) < len(pcm) {
		s.buf = make([]int16, len(pcm))
	}
	out := s.buf[:len(pcm)]
	s.addLevels(pcm)
	if s.fe.foldGain == 0 && s.fe.dcPole == 0 {
		copy(out, pcm)
		return out
	}
	g := s.fe.foldGain
	for i, v := range pcm {
		x := float64(v)
		y := x
		if s.fe.dcPole != 0 {
			y = x - s.prevX + s.fe.dcPole*s.prevY
			s.prevX, s.prevY = x, y
		}
		if g != 0 {
			if s.parity {
				y -= g * y
			} else {
				y += g * y
			}
			s.parity = !s.parity
		}
		out[i] = clip16(y)
	}
	return out
}

func clip16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}
