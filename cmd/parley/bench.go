package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-ai/parley/dialog/flite"
	"github.com/parley-ai/parley/media"
	"github.com/parley-ai/parley/telephony/twilio"
)

// benchQuestions are asked by the simulated callers; each has a one-step
// answer in the sample knowledge base.
var benchQuestions = []string{
	"what are your opening hours",
	"how do I activate my card",
	"what are your fees",
	"where is the nearest cash machine",
	"how do I top up my account",
	"my card was declined",
	"how do I change my address",
	"what are the exchange rates",
}

// benchResult is what `parley bench calls` prints.
type benchResult struct {
	Concurrency  int     `json:"concurrency"`
	DurationS    float64 `json:"duration_s"`
	Calls        int     `json:"calls"`
	Failed       int     `json:"failed_calls"`
	Turns        int     `json:"turns"`
	NoAnswer     int     `json:"unanswered_turns"`
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	LatencyMaxMS float64 `json:"latency_max_ms"`
	Frames       int     `json:"frames"`
	LateFrames   int     `json:"late_frames"`
	LatePct      float64 `json:"late_frames_pct"`
	RSSBaseMB    float64 `json:"server_rss_base_mb,omitempty"`
	RSSPeakMB    float64 `json:"server_rss_peak_mb,omitempty"`
	MBPerCall    float64 `json:"server_mb_per_call,omitempty"`
}

// frameClock counts late frames as a caller hears them: a frame that starts
// playing more than one frame after the previous one ended, inside a reply,
// is a gap the caller hears.
type frameClock struct {
	mu      sync.Mutex
	prevEnd time.Time
	frames  int
	late    int
}

func (f *frameClock) onAudio(pcm []int16, at time.Time) {
	end := at.Add(time.Duration(len(pcm)) * time.Second / twilio.MulawSampleRate)
	f.mu.Lock()
	f.frames++
	if gap := at.Sub(f.prevEnd); !f.prevEnd.IsZero() && gap > 20*time.Millisecond && gap < segmentGap {
		f.late++
	}
	f.prevEnd = end
	f.mu.Unlock()
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "calls" {
		return errors.New("bench: usage: bench calls --concurrency N --duration D [--to URL]")
	}
	fs := flag.NewFlagSet("bench calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("concurrency", 20, "simultaneous calls")
	dur := fs.Duration("duration", 60*time.Second, "how long to keep calling")
	to := fs.String("to", "", "server to call; empty starts one (this binary, embedded defaults) and measures its memory too")
	token := fs.String("token", os.Getenv("PARLEY_TWILIO_AUTH_TOKEN"), "Twilio auth token the server checks")
	decoders := fs.Int("decoders", 0, "speech decoders for the server this command starts (default: the server's own default)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *n < 1 || *n > 1000 || *dur <= 0 || *dur > time.Hour {
		return errors.New("bench: --concurrency 1-1000 and --duration up to 1h")
	}
	var srv *exec.Cmd
	if *to == "" {
		var err error
		srv, *to, err = startServerProcess(ctx, stderr, *decoders)
		if err != nil {
			return err
		}
		defer stopServerProcess(srv)
	}
	res, err := benchCalls(ctx, *to, *token, *n, *dur, srv, stderr)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func benchCalls(ctx context.Context, url, token string, n int, dur time.Duration, srv *exec.Cmd, stderr io.Writer) (*benchResult, error) {
	tts, err := flite.New(flite.Config{Voice: "slt"})
	if err != nil {
		return nil, err
	}
	speech := make([][]int16, len(benchQuestions))
	for i, q := range benchQuestions {
		pcm, err := tts.SynthesizeAll(ctx, q)
		if err != nil {
			return nil, err
		}
		speech[i] = media.Resample(pcm, tts.SampleRate(), twilio.MulawSampleRate)
	}
	say := func(text string) ([]int16, error) {
		for i, q := range benchQuestions {
			if q == text {
				return speech[i], nil
			}
		}
		return nil, fmt.Errorf("bench: no audio for %q", text)
	}
	// One warm-up call loads every lazy part of the server before measuring.
	if _, err := placeCall(ctx, callOptions{Dialer: twilio.Dialer{ServerURL: url, AuthToken: token}, Steps: []callStep{{stepSay, benchQuestions[0]}}, HangupAfter: true}, say); err != nil {
		return nil, fmt.Errorf("bench: warm-up call: %w", err)
	}
	res := &benchResult{Concurrency: n, DurationS: dur.Seconds()}
	if srv != nil {
		res.RSSBaseMB = rssMB(srv.Process.Pid)
	}
	deadline := time.Now().Add(dur)
	var (
		mu        sync.Mutex
		latencies []float64
		wg        sync.WaitGroup
		peak      float64
	)
	stopPeak := make(chan struct{})
	if srv != nil {
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopPeak:
					return
				case <-t.C:
					if r := rssMB(srv.Process.Pid); r > 0 {
						mu.Lock()
						peak = max(peak, r)
						mu.Unlock()
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Stagger the callers so their turns do not all line up.
			time.Sleep(time.Duration(i) * 150 * time.Millisecond)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				steps := make([]callStep, 3)
				for j := range steps {
					steps[j] = callStep{stepSay, benchQuestions[rng.IntN(len(benchQuestions))]}
				}
				fc := &frameClock{}
				rep, err := placeCall(ctx, callOptions{
					Dialer:      twilio.Dialer{ServerURL: url, AuthToken: token, From: fmt.Sprintf("+1415555%04d", i), OnAudio: fc.onAudio, MaxRecording: 3 * time.Minute},
					Steps:       steps,
					HangupAfter: true,
				}, say)
				mu.Lock()
				res.Calls++
				if err != nil {
					res.Failed++
					fmt.Fprintln(stderr, "bench: call failed:", err)
				}
				if rep != nil {
					for _, t := range rep.Turns[min(1, len(rep.Turns)):] {
						res.Turns++
						if t.Latency <= 0 {
							res.NoAnswer++
							continue
						}
						latencies = append(latencies, float64(t.Latency.Microseconds())/1000)
					}
				}
				fc.mu.Lock()
				res.Frames += fc.frames
				res.LateFrames += fc.late
				fc.mu.Unlock()
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	close(stopPeak)
	sort.Float64s(latencies)
	res.LatencyP50MS = percentile(latencies, 0.50)
	res.LatencyP95MS = percentile(latencies, 0.95)
	if len(latencies) > 0 {
		res.LatencyMaxMS = latencies[len(latencies)-1]
	}
	if res.Frames > 0 {
		res.LatePct = 100 * float64(res.LateFrames) / float64(res.Frames)
	}
	if srv != nil && peak > 0 {
		res.RSSPeakMB = peak
		res.MBPerCall = (peak - res.RSSBaseMB) / float64(n)
	}
	return res, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

// rssMB reads a process's resident memory from /proc (Linux), 0 if unknown.
func rssMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// startServerProcess runs `parley serve` (this binary) on a free loopback
// port with a temporary data dir and waits until it is healthy.
// Stop it with stopServerProcess.
func startServerProcess(ctx context.Context, stderr io.Writer, decoders int) (*exec.Cmd, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, "serve")
	cmd.Env = append(os.Environ(), "PARLEY_LISTEN="+addr, "PARLEY_DATA_DIR="+dir, "PARLEY_LOG_LEVEL=warn",
		"PARLEY_PUBLIC_URL=http://"+addr, "PARLEY_TWILIO_AUTH_TOKEN=")
	if decoders > 0 {
		cmd.Env = append(cmd.Env, "PARLEY_STT_MAX_DECODERS="+strconv.Itoa(decoders))
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	for i := 0; i < 600; i++ {
		if r, err := http.Get(url + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return cmd, url, nil
			}
		}
		select {
		case <-ctx.Done():
			stopServerProcess(cmd)
			return nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	stopServerProcess(cmd)
	return nil, "", errors.New("bench: the server did not become healthy in 60 s")
}

// stopServerProcess stops a server started by startServerProcess and removes its data.
func stopServerProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	for _, e := range cmd.Env {
		if dir, ok := strings.CutPrefix(e, "PARLEY_DATA_DIR="); ok && strings.Contains(dir, "parley-bench-") {
			os.RemoveAll(dir)
		}
	}
}
