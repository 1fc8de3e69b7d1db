package media

import (
	"math"
	"time"
)

// EndpointConfig tunes an Endpointer. Zero fields take the documented
// defaults, so EndpointConfig{Rate: 8000} is a complete configuration.
type EndpointConfig struct {
	Rate       int           // sample rate of frames pushed (default 8000)
	EndSilence time.Duration // silence that ends a turn (default 700 ms)
	MinSpeech  time.Duration // speech needed before SpeechStart fires (default 120 ms)
	// ThresholdDB is how far above the tracked noise floor a frame must be
	// to count as speech while not in speech (default 9 dB).
	ThresholdDB float64
	// HysteresisDB lowers the threshold while in speech, so soft word
	// endings do not chop a turn (default 4 dB, giving 5 dB above the floor).
	HysteresisDB float64
	// MinLevelDB is the absolute level (dBFS, after the 200 Hz high-pass)
	// below which nothing is speech, however quiet the line (default -55).
	MinLevelDB float64
}

// Endpointer defaults.
const (
	DefaultEndSilence   = 700 * time.Millisecond
	DefaultMinSpeech    = 120 * time.Millisecond
	DefaultThresholdDB  = 9.0
	DefaultHysteresisDB = 4.0
	DefaultMinLevelDB   = -55.0
)

// Tuning that is not worth exposing.
const (
	epHighPassHz   = 200.0  // removes hum and its first harmonics, DC and handling noise
	epSplitHz      = 1000.0 // low band (voicing, F1) vs high band (F2, fricatives)
	epVoicedZCR    = 2500.0 // zero crossings per second below which a frame looks voiced
	epFloorMinDB   = -96.0  // floor never goes below this
	epFallRate     = 0.3    // share of the gap closed per frame when the level drops below the floor
	epRiseRate     = 0.05   // share closed per frame for quiet non-speech frames (~400 ms)
	epDriftDB      = 0.02   // dB per frame the floor may creep up during speech (1 dB/s)
	epStatFrames   = 50     // frames (1 s at 20 ms) watched for a steady level
	epStatStdDB    = 1.0    // a level steadier than this over epStatFrames is noise, not speech
	epGapTolerance = 40 * time.Millisecond
	epMinVoiced    = 40 * time.Millisecond // voiced frames an onset needs (a click's ringing tail is one frame)
	epSubBlocks    = 4                     // sub-blocks per frame for measuring how much of it is sound
	epResume       = 40 * time.Millisecond // speech needed to cancel a running end-of-turn silence
)

// EndpointEvent is what a pushed frame changed in the turn.
type EndpointEvent int

// Endpoint events.
const (
	EndpointNone        EndpointEvent = iota // nothing changed
	EndpointSpeechStart                      // the caller started speaking (after MinSpeech)
	EndpointSpeechEnd                        // the caller stopped for EndSilence: end of turn
)

// String names the event for logs and test failures.
func (e EndpointEvent) String() string {
	switch e {
	case EndpointNone:
		return "none"
	case EndpointSpeechStart:
		return "speech-start"
	case EndpointSpeechEnd:
		return "speech-end"
	}
	return "unknown"
}

// biquad is a direct-form-I second-order IIR section.
type biquad struct {
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64
}

// newBiquad designs an RBJ-cookbook Butterworth (Q = 1/√2) low- or
// high-pass section at fc Hz for the given sample rate.
func newBiquad(rate int, fc float64, highPass bool) biquad {
	fc = math.Min(fc, 0.45*float64(rate))
	w := 2 * math.Pi * fc / float64(rate)
	cw, sw := math.Cos(w), math.Sin(w)
	alpha := sw / math.Sqrt2 // sin(w)/(2Q) with Q = 1/√2
	a0 := 1 + alpha
	var b0, b1 float64
	if highPass {
		b0, b1 = (1+cw)/2, -(1 + cw)
	} else {
		b0, b1 = (1-cw)/2, 1-cw
	}
	return biquad{b0: b0 / a0, b1: b1 / a0, b2: b0 / a0, a1: -2 * cw / a0, a2: (1 - alpha) / a0}
}

func (f *biquad) step(x float64) float64 {
	y := f.b0*x + f.b1*f.x1 + f.b2*f.x2 - f.a1*f.y1 - f.a2*f.y2
	f.x2, f.x1 = f.x1, x
	f.y2, f.y1 = f.y1, y
	return y
}

// epBands indexes the per-band state: the whole high-passed signal, its
// low band and its high band.
const (
	bandAll = iota
	bandLow
	bandHigh
	numBands
)

// Endpointer is a voice activity detector with end-of-turn detection for
// one caller. Each 20 ms frame is high-passed at 200 Hz (hum, DC), split
// into a low band (voicing) and a high band, and each band's energy is
// compared with a noise floor that tracks the line: the floor falls fast
// when the level drops and rises slowly, and a level that stays steady
// for a second (hum, hiss, a fan) becomes the new floor even in the middle
// of "speech". A frame is speech when any band is ThresholdDB above its
// floor (HysteresisDB less once in speech) and the frame is above
// MinLevelDB. SpeechStart needs MinSpeech of speech frames of which at
// least 40 ms look voiced (low zero-crossing rate), which rejects
// clicks, coughs and bursts of hiss. Frames whose energy sits in one or
// two DTMF or call-progress tone frequencies (Goertzel) are not speech, so
// keyed digits and dial, busy or ringback tones never open a turn.
// SpeechEnd follows EndSilence of non-speech. An Endpointer is not safe for concurrent use; Push does not
// allocate.
type Endpointer struct {
	cfg        EndpointConfig
	endSilence int // samples
	minSpeech  int
	gapTol     int
	resume     int
	minVoiced  int

	hp, lp biquad
	hpBuf  []float64 // this frame's high-passed samples, for the tone check
	goertz [len(toneFreqs)]float64

	floor    [numBands]float64 // dBFS
	level    float64           // last frame's level, dBFS
	hasFloor bool
	hist     [numBands][epStatFrames]float64
	histN    int
	histPos  int

	pos          int64 // samples pushed since creation
	inSpeech     bool
	lastSpeech   bool
	onsetStart   int64 // absolute sample where the candidate run began (-1: none)
	onsetSamples int   // speech samples in the candidate run
	onsetGap     int   // non-speech samples since the last speech frame of the run
	onsetVoiced  int   // voiced speech samples in the candidate run
	speechStart  int64 // absolute sample where the current turn's speech began
	speechEnd    int64 // end of the last speech frame
	silence      int   // non-speech samples since the last speech while in speech
	resumeRun    int   // consecutive speech samples during that silence
}

// NewEndpointer returns an endpointer for cfg, filling zero fields with
// their defaults.
func NewEndpointer(cfg EndpointConfig) *Endpointer {
	if cfg.Rate <= 0 {
		cfg.Rate = 8000
	}
	if cfg.EndSilence <= 0 {
		cfg.EndSilence = DefaultEndSilence
	}
	if cfg.MinSpeech <= 0 {
		cfg.MinSpeech = DefaultMinSpeech
	}
	if cfg.ThresholdDB <= 0 {
		cfg.ThresholdDB = DefaultThresholdDB
	}
	if cfg.HysteresisDB <= 0 {
		cfg.HysteresisDB = DefaultHysteresisDB
	}
	if cfg.HysteresisDB >= cfg.ThresholdDB {
		cfg.HysteresisDB = cfg.ThresholdDB / 2
	}
	if cfg.MinLevelDB == 0 {
		cfg.MinLevelDB = DefaultMinLevelDB
	}
	e := &Endpointer{
		cfg:       cfg,
		hpBuf:     make([]float64, 0, FrameSamples(cfg.Rate)),
		minSpeech: durSamples(cfg.MinSpeech, cfg.Rate),
		gapTol:    durSamples(epGapTolerance, cfg.Rate),
		resume:    durSamples(epResume, cfg.Rate),
		minVoiced: durSamples(epMinVoiced, cfg.Rate),
		hp:        newBiquad(cfg.Rate, epHighPassHz, true),
		lp:        newBiquad(cfg.Rate, epSplitHz, false),
	}
	e.endSilence = durSamples(cfg.EndSilence, cfg.Rate)
	for i, f := range toneFreqs {
		e.goertz[i] = 2 * math.Cos(2*math.Pi*f/float64(cfg.Rate))
	}
	e.Reset()
	return e
}

func durSamples(d time.Duration, rate int) int {
	return int(d * time.Duration(rate) / time.Second)
}

// Config returns the configuration in use, defaults filled in.
func (e *Endpointer) Config() EndpointConfig { return e.cfg }

// SetEndSilence changes the silence that ends a turn, e.g. longer while the
// caller is expected to key in digits; d <= 0 restores the configured value.
func (e *Endpointer) SetEndSilence(d time.Duration) {
	if d <= 0 {
		d = e.cfg.EndSilence
	}
	e.endSilence = durSamples(d, e.cfg.Rate)
}

// EndSilence is the silence that ends a turn now: the configured value or
// the last SetEndSilence.
func (e *Endpointer) EndSilence() time.Duration {
	return time.Duration(e.endSilence) * time.Second / time.Duration(e.cfg.Rate)
}

// TrailingSilence is how long the caller has been silent in the current
// turn: the non-speech since the last speech frame, which SpeechEnd waits
// to reach EndSilence. It is 0 when not in speech or while speaking. A
// caller of the endpointer may end the turn earlier (and Reset) when it
// knows more, e.g. that the words so far form a complete answer.
func (e *Endpointer) TrailingSilence() time.Duration {
	if !e.inSpeech {
		return 0
	}
	return time.Duration(e.silence) * time.Second / time.Duration(e.cfg.Rate)
}

// Reset starts a new turn: speech state is cleared, the noise floor and
// filter state are kept, because the line has not changed.
func (e *Endpointer) Reset() {
	e.inSpeech = false
	e.lastSpeech = false
	e.onsetStart = -1
	e.onsetSamples, e.onsetGap, e.onsetVoiced = 0, 0, 0
	e.speechStart, e.speechEnd = 0, 0
	e.silence, e.resumeRun = 0, 0
}

// InSpeech reports whether the caller is speaking (between SpeechStart and
// SpeechEnd).
func (e *Endpointer) InSpeech() bool { return e.inSpeech }

// IsSpeechFrame reports whether the last pushed frame was classified as
// speech, whatever the turn state.
func (e *Endpointer) IsSpeechFrame() bool { return e.lastSpeech }

// NoiseFloor is the tracked line noise level in dBFS (after the high-pass).
func (e *Endpointer) NoiseFloor() float64 {
	if !e.hasFloor {
		return epFloorMinDB
	}
	return e.floor[bandAll]
}

// Level is the last pushed frame's level in dBFS (after the high-pass),
// for meters and logs; compare it with NoiseFloor for the frame's SNR.
func (e *Endpointer) Level() float64 {
	if !e.hasFloor {
		return epFloorMinDB
	}
	return e.level
}

// SpeechDuration is the length of the current speech run, from its first
// speech frame to its latest one; 0 when not in speech.
func (e *Endpointer) SpeechDuration() time.Duration {
	if !e.inSpeech {
		return 0
	}
	return time.Duration(e.speechEnd-e.speechStart) * time.Second / time.Duration(e.cfg.Rate)
}

// Push classifies one frame (normally 20 ms) and advances the turn state.
func (e *Endpointer) Push(frame []int16) EndpointEvent {
	n := len(frame)
	if n == 0 {
		return EndpointNone
	}
	var (
		energy [numBands]float64
		sub    [epSubBlocks][numBands]float64
	)
	crossings := 0
	prevPos := e.hp.y1 >= 0
	e.hpBuf = e.hpBuf[:0]
	for i, s := range frame {
		x := float64(s) / 32768
		h := e.hp.step(x)
		e.hpBuf = append(e.hpBuf, h)
		l := e.lp.step(h)
		hi := h - l
		k := i * epSubBlocks / n
		sub[k][bandAll] += h * h
		sub[k][bandLow] += l * l
		sub[k][bandHigh] += hi * hi
		if pos := h >= 0; pos != prevPos {
			crossings++
			prevPos = pos
		}
	}
	for k := range sub {
		for b := range energy {
			energy[b] += sub[k][b]
		}
	}
	var level [numBands]float64
	for b := range level {
		level[b] = 10 * math.Log10(energy[b]/float64(n)+1e-10)
	}
	zcr := float64(crossings) * float64(e.cfg.Rate) / float64(n)
	e.level = level[bandAll]

	if !e.hasFloor {
		e.floor = level
		for b := range e.floor {
			e.floor[b] = math.Max(e.floor[b], epFloorMinDB)
		}
		e.hasFloor = true
	}

	threshold := e.cfg.ThresholdDB
	if e.inSpeech {
		threshold -= e.cfg.HysteresisDB
	}
	snr := math.Inf(-1)
	for b := range level {
		snr = math.Max(snr, level[b]-e.floor[b])
	}
	speech := snr >= threshold && level[bandAll] >= e.cfg.MinLevelDB
	if speech && e.isTone(energy[bandAll]) {
		speech = false // DTMF or a call-progress tone, not a talker
	}
	active := 0
	if speech && !e.inSpeech {
		active = e.activeSamples(&sub, n)
	}

	e.recordLevels(&level)
	if (speech || e.inSpeech) && e.steady() {
		// A level this steady for a second is the line, not a talker:
		// adopt it as the floor.
		for b := range e.floor {
			e.floor[b] = e.histMean(b) - 1
		}
		speech = false
	} else {
		e.trackFloor(&level, speech)
	}

	e.lastSpeech = speech
	start := e.pos
	e.pos += int64(n)
	if !e.inSpeech {
		return e.onset(speech, zcr < epVoicedZCR, start, n, active)
	}
	return e.continueSpeech(speech, n)
}

// trackFloor moves each band's floor toward the frame level.
func (e *Endpointer) trackFloor(level *[numBands]float64, speech bool) {
	for b := range e.floor {
		d := level[b] - e.floor[b]
		switch {
		case d < 0:
			e.floor[b] += epFallRate * d
		case !speech && !e.inSpeech:
			e.floor[b] += epRiseRate * d
		default:
			e.floor[b] += math.Min(d, epDriftDB)
		}
		if e.floor[b] < epFloorMinDB {
			e.floor[b] = epFloorMinDB
		}
	}
}

// onset handles a frame while not in speech.
// active is the part of the frame, in samples, whose 5 ms sub-blocks are
// above the floor: it makes MinSpeech measure the sound itself, not the
// whole frames a short blip and its filter ringing happen to touch.
func (e *Endpointer) onset(speech, voiced bool, start int64, n, active int) EndpointEvent {
	if !speech {
		if e.onsetStart >= 0 {
			e.onsetGap += n
			if e.onsetGap > e.gapTol {
				e.onsetStart = -1
				e.onsetSamples, e.onsetGap, e.onsetVoiced = 0, 0, 0
			}
		}
		return EndpointNone
	}
	if e.onsetStart < 0 {
		e.onsetStart = start
	}
	e.onsetSamples += active
	e.onsetGap = 0
	if voiced {
		e.onsetVoiced += active
	}
	e.speechEnd = e.pos
	if e.onsetSamples >= e.minSpeech && e.onsetVoiced >= min(e.minVoiced, e.minSpeech) {
		e.inSpeech = true
		e.speechStart = e.onsetStart
		e.silence, e.resumeRun = 0, 0
		e.onsetStart = -1
		e.onsetSamples, e.onsetGap, e.onsetVoiced = 0, 0, 0
		return EndpointSpeechStart
	}
	return EndpointNone
}

// continueSpeech handles a frame while in speech.
func (e *Endpointer) continueSpeech(speech bool, n int) EndpointEvent {
	if speech {
		e.speechEnd = e.pos
		if e.silence == 0 {
			return EndpointNone
		}
		// Speech during the trailing silence must last a little before it
		// cancels the end of turn, so a lone click does not extend it.
		e.resumeRun += n
		if e.resumeRun >= e.resume {
			e.silence, e.resumeRun = 0, 0
			return EndpointNone
		}
	} else {
		e.resumeRun = 0
	}
	e.silence += n
	if e.silence >= e.endSilence {
		e.Reset()
		return EndpointSpeechEnd
	}
	return EndpointNone
}

// toneFreqs are the DTMF row and column frequencies and the North
// American call-progress tones (dial 350+440, ringback 440+480, busy
// 480+620).
var toneFreqs = [12]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633, 350, 440, 480, 620}

// isTone runs its filters four at a time: keep the count a multiple of 4.
var _ [0]struct{} = [len(toneFreqs) % 4]struct{}{}

// epToneShare is the share of a frame's energy that two tone frequencies
// must hold for the frame to count as a tone. Voice spreads its energy
// over many harmonics and formants and never comes close.
const epToneShare = 0.7

// isTone reports whether the frame in hpBuf is essentially one or two of
// toneFreqs (Goertzel power at each, compared with the frame's energy).
func (e *Endpointer) isTone(energy float64) bool {
	n := len(e.hpBuf)
	if n < 40 || energy <= 0 {
		return false
	}
	var top1, top2 float64
	// Four filters per pass over the samples: independent recurrences
	// run in parallel in the CPU instead of one long dependency chain.
	for k := 0; k < len(e.goertz); k += 4 {
		c0, c1, c2, c3 := e.goertz[k], e.goertz[k+1], e.goertz[k+2], e.goertz[k+3]
		var a1, a2, b1, b2, d1, d2, f1, f2 float64
		for _, x := range e.hpBuf {
			a1, a2 = x+c0*a1-a2, a1
			b1, b2 = x+c1*b1-b2, b1
			d1, d2 = x+c2*d1-d2, d1
			f1, f2 = x+c3*f1-f2, f1
		}
		for _, st := range [4][3]float64{{a1, a2, c0}, {b1, b2, c1}, {d1, d2, c2}, {f1, f2, c3}} {
			// |X|² of the tone, scaled to the energy it contributes.
			p := 2 * (st[0]*st[0] + st[1]*st[1] - st[2]*st[0]*st[1]) / float64(n)
			switch {
			case p > top1:
				top1, top2 = p, top1
			case p > top2:
				top2 = p
			}
		}
	}
	return top1+top2 >= epToneShare*energy
}

// activeSamples counts the samples of the frame in sub-blocks whose level
// is above MinLevelDB and, in some band, ThresholdDB-HysteresisDB above
// that band's floor.
func (e *Endpointer) activeSamples(sub *[epSubBlocks][numBands]float64, n int) int {
	rel := e.cfg.ThresholdDB - e.cfg.HysteresisDB
	active := 0
	for k := range sub {
		lo, hi := k*n/epSubBlocks, (k+1)*n/epSubBlocks
		m := hi - lo
		if m == 0 {
			continue
		}
		on := false
		for b := range sub[k] {
			lv := 10 * math.Log10(sub[k][b]/float64(m)+1e-10)
			if b == bandAll && lv < e.cfg.MinLevelDB {
				on = false
				break
			}
			on = on || lv >= e.floor[b]+rel
		}
		if on {
			active += m
		}
	}
	return active
}

func (e *Endpointer) recordLevels(level *[numBands]float64) {
	for b := range level {
		e.hist[b][e.histPos] = level[b]
	}
	e.histPos = (e.histPos + 1) % epStatFrames
	if e.histN < epStatFrames {
		e.histN++
	}
}

func (e *Endpointer) histMean(b int) float64 {
	var s float64
	for _, v := range e.hist[b][:e.histN] {
		s += v
	}
	return s / float64(e.histN)
}

// steady reports whether the overall level has been within epStatStdDB
// (standard deviation) for the last epStatFrames frames.
func (e *Endpointer) steady() bool {
	if e.histN < epStatFrames {
		return false
	}
	m := e.histMean(bandAll)
	var v float64
	for _, x := range e.hist[bandAll] {
		v += (x - m) * (x - m)
	}
	return math.Sqrt(v/epStatFrames) < epStatStdDB
}
