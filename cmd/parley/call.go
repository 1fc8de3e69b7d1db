package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/flite"
	"github.com/parley-ai/parley/dialog/sphinx"
	"github.com/parley-ai/parley/media"
	"github.com/parley-ai/parley/telephony/twilio"
)

// stepKind is what the simulated caller does next.
type stepKind int

const (
	stepSay  stepKind = iota // speak a text (synthesized locally)
	stepWAV                  // play a WAV file
	stepDTMF                 // press keys
)

type callStep struct {
	kind  stepKind
	value string
}

// stepFlag collects --say, --wav and --dtmf in the order given.
type stepFlag struct {
	kind  stepKind
	steps *[]callStep
}

func (f stepFlag) String() string { return "" }
func (f stepFlag) Set(v string) error {
	*f.steps = append(*f.steps, callStep{f.kind, v})
	return nil
}

// callOptions describe one simulated call.
type callOptions struct {
	Dialer       twilio.Dialer
	Steps        []callStep
	Quiet        time.Duration // the AI's turn is over after this much silence
	ReplyTimeout time.Duration // longest wait for the AI to start answering
	HangupAfter  bool          // hang up after the last step (else wait for the AI to end the call)
}

// aiSegment is one stretch of AI audio as the caller heard it.
type aiSegment struct {
	start, end time.Time
}

// turnReport is one exchange of a simulated call.
type turnReport struct {
	Caller    string        `json:"caller,omitempty"` // what the caller said or pressed
	AI        string        `json:"ai"`               // the AI's reply, recognized back from the audio
	Latency   time.Duration `json:"latency_ns"`       // caller's last word → first reply audio
	AIAudio   time.Duration `json:"ai_audio_ns"`      // how long the reply played
	Barged    bool          `json:"barged,omitempty"`
	callerEnd time.Time
	segStart  time.Time
	segEnd    time.Time
}

// callReport is what a simulated call produced.
type callReport struct {
	CallSID string          `json:"call_sid"`
	Turns   []turnReport    `json:"turns"`
	Sim     twilio.SimStats `json:"sim"`
	Clears  []time.Time     `json:"clears,omitempty"`
	Caller  []int16         `json:"-"`
	AI      []int16         `json:"-"`
	Started time.Time       `json:"started"`
	EndedBy string          `json:"ended_by"` // "caller" or "server"
}

// audioWatch follows the AI audio a simulated caller hears.
type audioWatch struct {
	mu       sync.Mutex
	segs     []aiSegment
	lastPlay time.Time // end of the last frame's playback
}

const segmentGap = 400 * time.Millisecond

func (w *audioWatch) onAudio(pcm []int16, at time.Time) {
	end := at.Add(time.Duration(len(pcm)) * time.Second / twilio.MulawSampleRate)
	w.mu.Lock()
	if n := len(w.segs); n > 0 && at.Sub(w.segs[n-1].end) < segmentGap {
		w.segs[n-1].end = end
	} else {
		w.segs = append(w.segs, aiSegment{at, end})
	}
	w.lastPlay = end
	w.mu.Unlock()
}

// firstAfter returns the first AI audio starting at or after t.
func (w *audioWatch) firstAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.segs {
		if !s.end.Before(t) {
			if s.start.Before(t) {
				return t, true
			}
			return s.start, true
		}
	}
	return time.Time{}, false
}

// waitReply waits until the AI has answered after t and then been quiet
// for quiet; it returns the span of the reply.
func (w *audioWatch) waitReply(ctx context.Context, done <-chan struct{}, t time.Time, quiet, timeout time.Duration) (start, end time.Time, ok bool) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		start, got := w.firstAfter(t)
		w.mu.Lock()
		last := w.lastPlay
		w.mu.Unlock()
		now := time.Now()
		if got && now.Sub(last) >= quiet {
			return start, last, true
		}
		if !got && now.After(deadline) {
			return time.Time{}, time.Time{}, false
		}
		select {
		case <-ctx.Done():
			return start, last, got
		case <-done:
			return start, last, got
		case <-tick.C:
		}
	}
}

// trailingSilence is how long pcm ends in silence (below -45 dBFS per 10 ms).
func trailingSilence(pcm []int16, rate int) time.Duration {
	win := rate / 100
	n := len(pcm)
	for n >= win {
		var e float64
		for _, s := range pcm[n-win : n] {
			e += float64(s) * float64(s)
		}
		if 10*math.Log10(e/float64(win)/(32768*32768)+1e-12) > -45 {
			break
		}
		n -= win
	}
	return time.Duration(len(pcm)-n) * time.Second / time.Duration(rate)
}

// placeCall runs one simulated call: the greeting, then each step and the
// AI's reply to it, then hangs up (or waits for the server to).
func placeCall(ctx context.Context, opt callOptions, say func(string) ([]int16, error)) (*callReport, error) {
	if opt.Quiet == 0 {
		opt.Quiet = 1200 * time.Millisecond
	}
	if opt.ReplyTimeout == 0 {
		opt.ReplyTimeout = 15 * time.Second
	}
	w := &audioWatch{}
	d := opt.Dialer
	prev := d.OnAudio
	d.OnAudio = func(pcm []int16, at time.Time) {
		w.onAudio(pcm, at)
		if prev != nil {
			prev(pcm, at)
		}
	}
	call, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	rep := &callReport{CallSID: call.CallSID, Started: call.Started()}
	defer func() {
		rep.Sim = call.Stats()
		rep.Clears = call.ClearTimes()
		rep.Caller, rep.AI = call.Recording()
	}()
	start, end, ok := w.waitReply(ctx, call.Done(), call.Started(), opt.Quiet, opt.ReplyTimeout)
	if !ok {
		call.Hangup()
		return rep, errors.New("call: no greeting from the server")
	}
	rep.Turns = append(rep.Turns, turnReport{AIAudio: end.Sub(start), segStart: start, segEnd: end})
	for _, st := range opt.Steps {
		var said string
		var callerEnd time.Time
		switch st.kind {
		case stepSay, stepWAV:
			var pcm []int16
			if st.kind == stepSay {
				said = st.value
				pcm, err = say(st.value)
			} else {
				said = "[" + st.value + "]"
				var rate int
				pcm, rate, err = media.ReadWAVFile(st.value)
				if err == nil && rate != twilio.MulawSampleRate {
					pcm = media.Resample(pcm, rate, twilio.MulawSampleRate)
				}
			}
			if err != nil {
				call.Hangup()
				return rep, fmt.Errorf("call: %w", err)
			}
			if err := call.SendAudio(pcm); err != nil {
				return rep, fmt.Errorf("call: sending speech: %w", err)
			}
			callerEnd = time.Now().Add(-trailingSilence(pcm, twilio.MulawSampleRate))
		case stepDTMF:
			said = "[keys " + st.value + "]"
			for i := 0; i < len(st.value); i++ {
				if err := call.SendDTMF(st.value[i]); err != nil {
					return rep, fmt.Errorf("call: %w", err)
				}
				time.Sleep(150 * time.Millisecond)
			}
			callerEnd = time.Now()
		}
		t := turnReport{Caller: said, callerEnd: callerEnd}
		start, end, ok := w.waitReply(ctx, call.Done(), callerEnd, opt.Quiet, opt.ReplyTimeout)
		if ok {
			t.Latency, t.AIAudio, t.segStart, t.segEnd = start.Sub(callerEnd), end.Sub(start), start, end
		}
		rep.Turns = append(rep.Turns, t)
		select {
		case <-call.Done():
			rep.EndedBy = "server"
			return rep, nil
		default:
		}
	}
	if opt.HangupAfter {
		rep.EndedBy = "caller"
		return rep, call.Hangup()
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := call.Wait(wctx); err != nil {
		call.Hangup()
		rep.EndedBy = "caller"
		return rep, nil
	}
	rep.EndedBy = "server"
	return rep, nil
}

// recognizeTurns fills each turn's AI text by recognizing the reply audio
// the caller heard, exactly as a person on the phone would get it.
func recognizeTurns(ctx context.Context, rec *sphinx.Recognizer, rep *callReport) {
	for i := range rep.Turns {
		t := &rep.Turns[i]
		if t.segStart.IsZero() {
			continue
		}
		a := int(t.segStart.Sub(rep.Started) * twilio.MulawSampleRate / time.Second)
		b := int(t.segEnd.Sub(rep.Started) * twilio.MulawSampleRate / time.Second)
		a, b = max(0, a-400), min(len(rep.AI), b+400)
		if a >= b {
			continue
		}
		tr, err := rec.TranscribePCM(ctx, rep.AI[a:b], twilio.MulawSampleRate, dialog.ModeOpen)
		if err == nil {
			t.AI = tr.Text
		}
	}
}

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var steps []callStep
	to := fs.String("to", "http://127.0.0.1:8080", "the parley server to call")
	public := fs.String("public-url", "", "the server's public URL, used for signing (default --to)")
	token := fs.String("token", os.Getenv("PARLEY_TWILIO_AUTH_TOKEN"), "Twilio auth token the server checks (default $PARLEY_TWILIO_AUTH_TOKEN)")
	from := fs.String("from", "+14155550100", "caller number")
	number := fs.String("number", "+18005550199", "dialled number")
	fs.Var(stepFlag{stepSay, &steps}, "say", "say TEXT (synthesized); repeatable, in order with --wav and --dtmf")
	fs.Var(stepFlag{stepWAV, &steps}, "wav", "play a WAV FILE as the caller's speech; repeatable")
	fs.Var(stepFlag{stepDTMF, &steps}, "dtmf", "press DIGITS on the keypad; repeatable")
	record := fs.String("record", "", "save both directions to this stereo WAV (left caller, right AI)")
	voice := fs.String("voice", "slt", "flite voice for --say: slt, kal, rms, awb")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	wait := fs.Bool("wait", false, "after the last step, wait for the AI to end the call instead of hanging up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.Load("", func(string) string { return "" })
	if err != nil {
		return err
	}
	log := cliLogger(stderr, "warn")
	tts, err := flite.New(flite.Config{Voice: *voice})
	if err != nil {
		return err
	}
	rec, done, err := localRecognizer(cfg, log)
	if err != nil {
		return err
	}
	defer done()
	say := func(text string) ([]int16, error) {
		pcm, err := tts.SynthesizeAll(ctx, text)
		if err != nil {
			return nil, err
		}
		return media.Resample(pcm, tts.SampleRate(), twilio.MulawSampleRate), nil
	}
	rep, err := placeCall(ctx, callOptions{
		Dialer:      twilio.Dialer{ServerURL: *to, PublicURL: *public, AuthToken: *token, From: *from, To: *number},
		Steps:       steps,
		HangupAfter: !*wait,
	}, say)
	if rep != nil {
		recognizeTurns(ctx, rec, rep)
		if *record != "" {
			if werr := writeStereo(*record, rep.Caller, rep.AI, twilio.MulawSampleRate); werr != nil {
				fmt.Fprintln(stderr, "call: record:", werr)
			}
		}
		if *asJSON {
			json.NewEncoder(stdout).Encode(rep)
		} else {
			printReport(stdout, rep, *record)
		}
	}
	return err
}

func printReport(w io.Writer, rep *callReport, record string) {
	fmt.Fprintf(w, "call %s\n", rep.CallSID)
	for i, t := range rep.Turns {
		if i > 0 {
			fmt.Fprintf(w, "caller: %s\n", t.Caller)
		}
		switch {
		case t.segStart.IsZero():
			fmt.Fprintf(w, "AI    : (no answer)\n")
		case i == 0:
			fmt.Fprintf(w, "AI    : %s   [greeting, %.1f s]\n", orDots(t.AI), t.AIAudio.Seconds())
		default:
			fmt.Fprintf(w, "AI    : %s   [latency %d ms, %.1f s]\n", orDots(t.AI), t.Latency.Milliseconds(), t.AIAudio.Seconds())
		}
	}
	fmt.Fprintf(w, "ended by %s; frames in %d, marks %d, clears %d\n", rep.EndedBy, rep.Sim.MediaIn, rep.Sim.MarksIn, rep.Sim.Clears)
	if record != "" {
		fmt.Fprintf(w, "recording: %s (left: caller, right: AI)\n", record)
	}
}

func orDots(s string) string {
	if strings.TrimSpace(s) == "" {
		return "…"
	}
	return `"` + s + `"`
}

// writeStereo writes two equal-rate tracks as a stereo 16-bit WAV.
func writeStereo(path string, left, right []int16, rate int) error {
	n := max(len(left), len(right))
	inter := make([]int16, 2*n)
	for i := 0; i < n; i++ {
		if i < len(left) {
			inter[2*i] = left[i]
		}
		if i < len(right) {
			inter[2*i+1] = right[i]
		}
	}
	return media.WriteWAVFileChannels(path, inter, rate, 2)
}
