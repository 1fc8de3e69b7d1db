package media

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// event is an endpointer event and the frame index it fired on.
type event struct {
	ev    EndpointEvent
	frame int
}

func runEndpointer(e *Endpointer, pcm []int16) []event {
	frame := FrameSamples(e.Config().Rate)
	var evs []event
	for i := 0; i+frame <= len(pcm); i += frame {
		if ev := e.Push(pcm[i : i+frame]); ev != EndpointNone {
			evs = append(evs, event{ev, i / frame})
		}
	}
	return evs
}

func loadSpeech(t testing.TB, name string) []int16 {
	t.Helper()
	pcm, rate, err := ReadWAVFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 8000 {
		t.Fatalf("%s: rate %d", name, rate)
	}
	return pcm
}

// activeSpan returns the first and last sample index with |x| above thr.
func activeSpan(pcm []int16, thr int16) (int, int) {
	first, last := -1, -1
	for i, v := range pcm {
		if v > thr || v < -thr {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// trimSpeech cuts flite's leading and trailing silence, keeping 20 ms.
func trimSpeech(pcm []int16) []int16 {
	first, last := activeSpan(pcm, 300)
	return pcm[max(first-160, 0):min(last+160, len(pcm))]
}

func silence(n int) []int16 { return make([]int16, n) }

func whiteNoise(n int, rms float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64() * rms
	}
	return out
}

func hum(n, rate int, amp float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		t := float64(i) / float64(rate)
		// Mains hum with the odd harmonics a ground loop produces.
		out[i] = amp * (math.Sin(2*math.Pi*60*t) + 0.5*math.Sin(2*math.Pi*180*t+0.3) + 0.25*math.Sin(2*math.Pi*300*t+1.1))
	}
	return out
}

func mix(pcm []int16, noise []float64) []int16 {
	out := make([]int16, len(pcm))
	for i := range out {
		v := float64(pcm[i])
		if i < len(noise) {
			v += noise[i]
		}
		out[i] = floatToInt16(v)
	}
	return out
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func activeRMS(pcm []int16) float64 {
	var s float64
	n := 0
	for _, v := range pcm {
		if v > 300 || v < -300 {
			s += float64(v) * float64(v)
			n++
		}
	}
	return math.Sqrt(s / float64(n))
}

func frameOf(sample int) int { return sample / 160 }

func TestEndpointerSpeechTurn(t *testing.T) {
	order := trimSpeech(loadSpeech(t, "speech_order_8k.wav"))
	thanks := trimSpeech(loadSpeech(t, "speech_thanks_8k.wav"))
	lead := silence(8000)
	gap := silence(8000 * 3 / 10) // 300 ms pause inside the turn
	tail := silence(8000 * 2)
	clean := concat(lead, order, gap, thanks, tail)
	first, _ := activeSpan(clean, 300)
	_, last := activeSpan(clean[:len(clean)-len(tail)], 300)
	speechRMS := activeRMS(clean)

	tests := []struct {
		name  string
		noise []float64
	}{
		{"clean", nil},
		{"white noise 15 dB SNR", whiteNoise(len(clean), speechRMS/math.Pow(10, 15.0/20), 1)},
		{"white noise 20 dB SNR", whiteNoise(len(clean), speechRMS/math.Pow(10, 20.0/20), 2)},
		{"hum 10 dB below speech", hum(len(clean), 8000, speechRMS/math.Pow(10, 10.0/20))},
		{"low-level hiss", whiteNoise(len(clean), 30, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := mix(clean, tt.noise)
			e := NewEndpointer(EndpointConfig{Rate: 8000})
			evs := runEndpointer(e, sig)
			if len(evs) != 2 || evs[0].ev != EndpointSpeechStart || evs[1].ev != EndpointSpeechEnd {
				t.Fatalf("events %v, want one start and one end (noise floor %.1f dBFS)", evs, e.NoiseFloor())
			}
			// Start: within MinSpeech + 100 ms of the first word.
			startLag := evs[0].frame - frameOf(first)
			if startLag < 5 || startLag > 12 {
				t.Errorf("SpeechStart at frame %d, speech begins at frame %d (lag %d frames)", evs[0].frame, frameOf(first), startLag)
			}
			// End: EndSilence (35 frames) after the last word, within 160 ms.
			endLag := evs[1].frame - frameOf(last)
			if endLag < 33 || endLag > 43 {
				t.Errorf("SpeechEnd at frame %d, speech ends at frame %d (lag %d frames)", evs[1].frame, frameOf(last), endLag)
			}
			t.Logf("start lag %d ms, end lag %d ms, floor %.1f dBFS", startLag*20, endLag*20, e.NoiseFloor())
		})
	}
}

func TestEndpointerIgnoresLineNoise(t *testing.T) {
	const n = 8000 * 6
	click := func(dur time.Duration, amp float64) []float64 {
		// A broadband burst with a fast decay: a handset knock or line click.
		m := durSamples(dur, 8000)
		out := make([]float64, n)
		nz := whiteNoise(m, amp, 9)
		for i := 0; i < m; i++ {
			out[8000*2+i] = nz[i] * math.Exp(-float64(i)/float64(m)*2)
		}
		return out
	}
	impulses := make([]float64, n)
	for i := 8000; i < n; i += 4000 {
		impulses[i] = 30000
		impulses[i+1] = -20000
	}
	addNoise := func(a, b []float64) []float64 {
		out := make([]float64, len(a))
		for i := range a {
			out[i] = a[i] + b[i]
		}
		return out
	}
	tests := []struct {
		name  string
		noise []float64
	}{
		{"digital silence", nil},
		{"white noise -30 dBFS", whiteNoise(n, 1036, 4)},
		{"white noise -50 dBFS", whiteNoise(n, 104, 5)},
		{"60 Hz hum -12 dBFS", hum(n, 8000, 5000)},
		{"hum and hiss", addNoise(hum(n, 8000, 3000), whiteNoise(n, 300, 6))},
		{"80 ms click", click(80*time.Millisecond, 12000)},
		{"80 ms click over hiss", addNoise(click(80*time.Millisecond, 12000), whiteNoise(n, 200, 7))},
		{"100 ms cough-like burst", click(100*time.Millisecond, 8000)},
		{"impulse clicks", impulses},
		{"80 ms voiced blip", toneBurst(n, 8000*2, 640, 300, 8000)},
		{"100 ms voiced blip", toneBurst(n, 8000*2, 800, 200, 8000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEndpointer(EndpointConfig{Rate: 8000})
			evs := runEndpointer(e, mix(silence(n), tt.noise))
			if len(evs) != 0 {
				t.Fatalf("events %v on line noise (floor %.1f dBFS)", evs, e.NoiseFloor())
			}
		})
	}
}

// toneBurst returns n samples with a tone of freq Hz at amp from sample
// at for m samples, with 5 ms ramps.
func toneBurst(n, at, m int, freq, amp float64) []float64 {
	out := make([]float64, n)
	for i := 0; i < m; i++ {
		g := math.Min(1, math.Min(float64(i), float64(m-1-i))/40)
		out[at+i] = g * amp * math.Sin(2*math.Pi*freq*float64(i)/8000)
	}
	return out
}

// resonator is a two-pole formant filter.
type resonator struct{ c1, c2, y1, y2 float64 }

func newResonator(rate int, f, bw float64) *resonator {
	r := math.Exp(-math.Pi * bw / float64(rate))
	return &resonator{c1: 2 * r * math.Cos(2*math.Pi*f/float64(rate)), c2: -r * r}
}

func (r *resonator) step(x float64) float64 {
	y := x + r.c1*r.y1 + r.c2*r.y2
	r.y2, r.y1 = r.y1, y
	return y
}

// syllables synthesizes speech-like audio: a 110 Hz glottal pulse train
// through two formant resonators, shaped into syllables of syl samples
// separated by gaps of gap samples.
func syllables(count, syl, gap int, amp float64) []int16 {
	f1 := newResonator(8000, 700, 90)
	f2 := newResonator(8000, 1800, 120)
	var out []int16
	for s := 0; s < count; s++ {
		for i := 0; i < syl; i++ {
			var x float64
			if i%73 == 0 { // 8000/110 Hz
				x = 1
			}
			env := math.Sin(math.Pi * float64(i) / float64(syl))
			y := f1.step(x)*0.7 + f2.step(x)*0.3
			out = append(out, floatToInt16(amp*env*y*0.1))
		}
		out = append(out, silence(gap)...)
	}
	return out
}

func TestEndpointerSyntheticSyllables(t *testing.T) {
	sp := syllables(4, 1600, 1200, 6000) // 200 ms syllables, 150 ms gaps
	tests := []struct {
		name  string
		noise float64
	}{{"clean", 0}, {"15 dB SNR", activeRMS(sp) / math.Pow(10, 15.0/20)}}
	for _, tt := range tests {
		sig := concat(silence(8000), sp, silence(8000*2))
		if tt.noise > 0 {
			sig = mix(sig, whiteNoise(len(sig), tt.noise, 21))
		}
		e := NewEndpointer(EndpointConfig{Rate: 8000})
		evs := runEndpointer(e, sig)
		if len(evs) != 2 || evs[0].ev != EndpointSpeechStart || evs[1].ev != EndpointSpeechEnd {
			t.Fatalf("%s: events %v", tt.name, evs)
		}
		if evs[0].frame < 50 || evs[0].frame > 60 {
			t.Errorf("%s: start at frame %d, speech begins at 50", tt.name, evs[0].frame)
		}
		lastFrame := 50 + len(sp)/160 - 1200/160
		if lag := evs[1].frame - lastFrame; lag < 30 || lag > 42 {
			t.Errorf("%s: end %d frames after the last syllable", tt.name, lag)
		}
	}
}

func TestEndpointerNoiseStepAdapts(t *testing.T) {
	// The line gets 25 dB noisier while nobody speaks. A burst of white
	// noise never looks voiced, so no turn starts, and the floor follows.
	quiet := mix(silence(8000*2), whiteNoise(8000*2, 60, 10))
	loud := mix(silence(8000*4), whiteNoise(8000*4, 1070, 11))
	e := NewEndpointer(EndpointConfig{Rate: 8000})
	runEndpointer(e, quiet)
	before := e.NoiseFloor()
	if evs := runEndpointer(e, loud); len(evs) != 0 {
		t.Fatalf("noise step produced %v", evs)
	}
	after := e.NoiseFloor()
	if after-before < 20 {
		t.Fatalf("floor moved %.1f -> %.1f dBFS, want it to follow the 25 dB step", before, after)
	}
	// A steady voiced-like hum that switches on mid-call may start a turn,
	// but the steady-level detector must end it within about two seconds.
	e2 := NewEndpointer(EndpointConfig{Rate: 8000})
	runEndpointer(e2, mix(silence(8000*2), whiteNoise(8000*2, 30, 12)))
	evs := runEndpointer(e2, mix(silence(8000*5), hum(8000*5, 8000, 8000)))
	if e2.InSpeech() {
		t.Fatalf("still in speech after 5 s of steady hum (events %v, floor %.1f)", evs, e2.NoiseFloor())
	}
}

func TestEndpointerEndSilenceAndReset(t *testing.T) {
	thanks := loadSpeech(t, "speech_thanks_8k.wav")
	_, last := activeSpan(thanks, 300)
	sig := concat(silence(4000), thanks, silence(8000*3))
	e := NewEndpointer(EndpointConfig{Rate: 8000})
	e.SetEndSilence(2 * time.Second)
	evs := runEndpointer(e, sig)
	if len(evs) != 2 || evs[1].ev != EndpointSpeechEnd {
		t.Fatalf("events %v", evs)
	}
	if lag := evs[1].frame - frameOf(4000+last); lag < 98 || lag > 108 {
		t.Fatalf("with 2 s end silence the turn ended %d frames after speech", lag)
	}
	e.SetEndSilence(0) // back to the configured 700 ms
	floor := e.NoiseFloor()
	e.Reset()
	if e.NoiseFloor() != floor {
		t.Fatalf("Reset changed the noise floor %.1f -> %.1f", floor, e.NoiseFloor())
	}
	evs = runEndpointer(e, sig)
	if len(evs) != 2 {
		t.Fatalf("second turn events %v", evs)
	}
	if lag := evs[1].frame - frameOf(4000+last); lag > 43 {
		t.Fatalf("SetEndSilence(0) did not restore the default: lag %d frames", lag)
	}
}

func TestEndpointerStateAccessors(t *testing.T) {
	order := loadSpeech(t, "speech_order_8k.wav")
	first, last := activeSpan(order, 300)
	e := NewEndpointer(EndpointConfig{})
	if e.Config().Rate != 8000 || e.Config().EndSilence != DefaultEndSilence || e.Config().MinSpeech != DefaultMinSpeech {
		t.Fatalf("defaults not applied: %+v", e.Config())
	}
	if e.InSpeech() || e.SpeechDuration() != 0 || e.IsSpeechFrame() || e.Level() > -90 || e.NoiseFloor() > -90 {
		t.Fatal("fresh endpointer claims speech or level")
	}
	sig := concat(silence(8000), order, silence(8000*2))
	var maxDur time.Duration
	speechFrames := 0
	started := false
	for i := 0; i+160 <= len(sig); i += 160 {
		ev := e.Push(sig[i : i+160])
		if ev == EndpointSpeechStart {
			started = true
			if !e.InSpeech() {
				t.Fatal("SpeechStart but not InSpeech")
			}
			if d := e.SpeechDuration(); d < DefaultMinSpeech || d > 300*time.Millisecond {
				t.Fatalf("SpeechDuration at start = %v", d)
			}
		}
		if ev == EndpointSpeechEnd && (e.InSpeech() || e.SpeechDuration() != 0) {
			t.Fatal("still in speech after SpeechEnd")
		}
		if e.IsSpeechFrame() {
			speechFrames++
			if e.Level() <= e.NoiseFloor() {
				t.Fatalf("speech frame at %.1f dBFS with floor %.1f", e.Level(), e.NoiseFloor())
			}
		}
		maxDur = max(maxDur, e.SpeechDuration())
	}
	if !started {
		t.Fatal("no SpeechStart")
	}
	want := time.Duration(last-first) * time.Second / 8000
	if maxDur < want-100*time.Millisecond || maxDur > want+100*time.Millisecond {
		t.Fatalf("max SpeechDuration %v, speech lasts %v", maxDur, want)
	}
	if speechFrames < frameOf(last-first)/2 {
		t.Fatalf("only %d speech frames in %d frames of speech", speechFrames, frameOf(last-first))
	}
	if got := e.Push(nil); got != EndpointNone {
		t.Fatalf("empty frame gave %v", got)
	}
	for _, ev := range []EndpointEvent{EndpointNone, EndpointSpeechStart, EndpointSpeechEnd, 9} {
		if ev.String() == "" {
			t.Fatal("empty event name")
		}
	}
}

func TestEndpointer16k(t *testing.T) {
	thanks := Resample(loadSpeech(t, "speech_thanks_8k.wav"), 8000, 16000)
	sig := concat(silence(16000), thanks, silence(16000*2))
	sig = mix(sig, whiteNoise(len(sig), activeRMS(thanks)/math.Pow(10, 15.0/20), 13))
	e := NewEndpointer(EndpointConfig{Rate: 16000})
	evs := runEndpointer(e, sig)
	if len(evs) != 2 || evs[0].ev != EndpointSpeechStart || evs[1].ev != EndpointSpeechEnd {
		t.Fatalf("events %v at 16 kHz", evs)
	}
}

func BenchmarkEndpointerPush(b *testing.B) {
	order := loadSpeech(b, "speech_order_8k.wav")
	sig := mix(order, whiteNoise(len(order), 200, 1))
	e := NewEndpointer(EndpointConfig{Rate: 8000})
	frames := len(sig) / 160
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Push(sig[(i%frames)*160 : (i%frames+1)*160])
		i++
	}
}

// dualTone returns ms milliseconds of f1+f2 at amp each, at 8 kHz.
func dualTone(f1, f2 float64, ms int, amp float64) []int16 {
	out := make([]int16, ms*8)
	for i := range out {
		t := float64(i) / 8000
		out[i] = floatToInt16(amp * (math.Sin(2*math.Pi*f1*t) + math.Sin(2*math.Pi*f2*t)))
	}
	return out
}

func TestEndpointerIgnoresTones(t *testing.T) {
	digits := concat(
		dualTone(697, 1209, 200, 6000), silence(800), // 1
		dualTone(697, 1336, 200, 6000), silence(800), // 2
		dualTone(941, 1336, 300, 6000), silence(800), // 0
	)
	tests := []struct {
		name string
		sig  []int16
	}{
		{"DTMF digits", digits},
		{"DTMF over hiss", mix(digits, whiteNoise(len(digits), 150, 31))},
		{"dial tone", dualTone(350, 440, 3000, 5000)},
		{"busy tone", concat(dualTone(480, 620, 500, 5000), silence(4000), dualTone(480, 620, 500, 5000))},
		{"ringback", dualTone(440, 480, 2000, 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEndpointer(EndpointConfig{Rate: 8000})
			evs := runEndpointer(e, concat(silence(4000), tt.sig, silence(8000)))
			if len(evs) != 0 {
				t.Fatalf("tones produced %v", evs)
			}
		})
	}
	// Real speech is never taken for a tone.
	e := NewEndpointer(EndpointConfig{Rate: 8000})
	order := loadSpeech(t, "speech_order_8k.wav")
	tones := 0
	for i := 0; i+160 <= len(order); i += 160 {
		e.Push(order[i : i+160])
		var energy float64
		for _, h := range e.hpBuf {
			energy += h * h
		}
		if e.isTone(energy) {
			tones++
		}
	}
	if tones != 0 {
		t.Fatalf("%d speech frames taken for tones", tones)
	}
}

// TestEndpointerTrailingSilence checks the pause the endpointer reports
// while a turn's end is pending: it grows frame by frame after the last
// speech, never passes EndSilence, is 0 outside speech, and a caller that
// ends the turn early with Reset gets a fresh onset for the next words.
func TestEndpointerTrailingSilence(t *testing.T) {
	thanks := loadSpeech(t, "speech_thanks_8k.wav")
	for _, tc := range []struct {
		name string
		end  time.Duration // SetEndSilence; 0 keeps the default
	}{
		{"default", 0},
		{"digits", 1600 * time.Millisecond},
		{"short", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEndpointer(EndpointConfig{Rate: 8000})
			e.SetEndSilence(tc.end)
			want := tc.end
			if want == 0 {
				want = DefaultEndSilence
			}
			if e.EndSilence() != want {
				t.Fatalf("EndSilence %v, want %v", e.EndSilence(), want)
			}
			if e.TrailingSilence() != 0 {
				t.Fatal("trailing silence before any speech")
			}
			sig := concat(silence(4000), thanks, silence(8000*3))
			var prev, peak time.Duration
			ended := false
			for i := 0; i+160 <= len(sig); i += 160 {
				ev := e.Push(sig[i : i+160])
				ts := e.TrailingSilence()
				switch {
				case ev == EndpointSpeechEnd:
					ended = true
					if ts != 0 {
						t.Fatalf("trailing silence %v after SpeechEnd", ts)
					}
					if peak < want-FrameDuration {
						t.Fatalf("turn ended after %v of trailing silence, want %v", peak, want)
					}
				case !e.InSpeech() && ts != 0:
					t.Fatalf("trailing silence %v outside speech", ts)
				case ts >= want:
					t.Fatalf("trailing silence %v reached EndSilence %v without SpeechEnd", ts, want)
				case ts > prev && ts-prev != FrameDuration:
					t.Fatalf("trailing silence jumped %v -> %v", prev, ts)
				}
				prev, peak = ts, max(peak, ts)
			}
			if !ended {
				t.Fatal("no SpeechEnd")
			}
		})
	}

	// Ending the turn early: Reset at 400 ms of silence (the recording has
	// a 340 ms pause inside it), then the same words again must start a
	// new turn.
	e := NewEndpointer(EndpointConfig{Rate: 8000})
	sig := concat(silence(4000), thanks, silence(2400), thanks, silence(8000*2))
	var evs []EndpointEvent
	early := false
	for i := 0; i+160 <= len(sig); i += 160 {
		ev := e.Push(sig[i : i+160])
		if ev != EndpointNone {
			evs = append(evs, ev)
		}
		if !early && e.TrailingSilence() >= 400*time.Millisecond {
			early = true
			e.Reset()
			evs = append(evs, EndpointSpeechEnd)
		}
	}
	want := []EndpointEvent{EndpointSpeechStart, EndpointSpeechEnd, EndpointSpeechStart, EndpointSpeechEnd}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Fatalf("events %v, want %v", evs, want)
		}
	}
}
