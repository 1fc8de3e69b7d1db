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
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
	RampS        float64 `json:"ramp_s,omitempty"`
	Calls        int     `json:"calls"`
	Failed       int     `json:"failed_calls"`
	Turns        int     `json:"turns"`
	NoAnswer     int     `json:"unanswered_turns"`
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	LatencyP99MS float64 `json:"latency_p99_ms"`
	LatencyMaxMS float64 `json:"latency_max_ms"`
	// Over900 counts answered turns slower than the 900 ms p95 target.
	Over900    int     `json:"turns_over_900ms"`
	Frames     int     `json:"frames"`
	LateFrames int     `json:"late_frames"`
	LatePct    float64 `json:"late_frames_pct"`
	RSSBaseMB  float64 `json:"server_rss_base_mb,omitempty"`
	RSSPeakMB  float64 `json:"server_rss_peak_mb,omitempty"`
	MBPerCall  float64 `json:"server_mb_per_call,omitempty"`
	// CPUSeconds is the server process's user+system CPU time while the
	// calls ran (warm-up excluded); less sensitive to a noisy machine than
	// latency. CPUPerCallMin normalizes it to one minute of one call.
	CPUSeconds    float64 `json:"server_cpu_s,omitempty"`
	CPUPerCallMin float64 `json:"server_cpu_s_per_call_minute,omitempty"`
	// Go runtime figures of the server at the end of the measured period
	// (--profile only): the rest of RSS is C memory (decoders, voices).
	GoHeapMB   float64 `json:"server_go_heap_inuse_mb,omitempty"`
	GoSysMB    float64 `json:"server_go_sys_mb,omitempty"`
	Goroutines int     `json:"server_goroutines,omitempty"`
	NumGC      uint32  `json:"server_gc_cycles,omitempty"`
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
	if len(args) > 0 && args[0] == "seed" {
		return runBenchSeed(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bridges" {
		return runBenchBridges(ctx, args[1:], stdout, stderr)
	}
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
	ramp := fs.Duration("ramp", 0, "spread the callers' first calls over this long (default 150 ms apart: all first questions within a few seconds, a burst)")
	profile := fs.String("profile", "", "directory for the started server's CPU profile (cpu.pprof, the measured period) and heap profiles (heap.pprof, allocs.pprof, goroutine.txt, at its end); read them with go tool pprof")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *n < 1 || *n > 1000 || *dur <= 0 || *dur > time.Hour {
		return errors.New("bench: --concurrency 1-1000 and --duration up to 1h")
	}
	if *profile != "" && *to != "" {
		return errors.New("bench: --profile needs the server this command starts (no --to)")
	}
	var srv *exec.Cmd
	var prof *benchProfiler
	if *to == "" {
		var env []string
		if *decoders > 0 {
			env = append(env, "PARLEY_STT_MAX_DECODERS="+strconv.Itoa(*decoders))
		}
		if *profile != "" {
			if err := os.MkdirAll(*profile, 0o755); err != nil {
				return fmt.Errorf("bench: profile dir: %w", err)
			}
			addr, err := freeLoopbackAddr()
			if err != nil {
				return err
			}
			prof = &benchProfiler{dir: *profile, base: "http://" + addr}
			env = append(env, benchProfileEnv+"="+addr)
		}
		var err error
		srv, *to, err = startServerProcess(ctx, stderr, env)
		if err != nil {
			return err
		}
		defer stopServerProcess(srv)
	}
	if *ramp < 0 || *ramp >= *dur {
		return errors.New("bench: --ramp must be shorter than --duration")
	}
	res, err := benchCalls(ctx, *to, *token, *n, *dur, *ramp, srv, prof, stderr)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func benchCalls(ctx context.Context, url, token string, n int, dur, ramp time.Duration, srv *exec.Cmd, prof *benchProfiler, stderr io.Writer) (*benchResult, error) {
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
	res := &benchResult{Concurrency: n, DurationS: dur.Seconds(), RampS: ramp.Seconds()}
	var cpu0 float64
	if srv != nil {
		res.RSSBaseMB = rssMB(srv.Process.Pid)
		cpu0 = cpuSeconds(srv.Process.Pid)
	}
	var profWG sync.WaitGroup
	if prof != nil {
		// The CPU profile covers the time new calls are placed; calls in
		// progress at the deadline are still running when it ends.
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			prof.fetch(ctx, stderr, "cpu.pprof", fmt.Sprintf("/cpu?seconds=%d", max(1, int(dur.Seconds()))))
		}()
	}
	deadline := time.Now().Add(dur)
	var (
		mu        sync.Mutex
		latencies []float64
		wg        sync.WaitGroup
		peak      float64
		callTime  time.Duration
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
			gap := 150 * time.Millisecond
			if ramp > 0 {
				gap = ramp / time.Duration(n)
			}
			time.Sleep(time.Duration(i) * gap)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				steps := make([]callStep, 3)
				for j := range steps {
					steps[j] = callStep{stepSay, benchQuestions[rng.IntN(len(benchQuestions))]}
				}
				fc := &frameClock{}
				began := time.Now()
				rep, err := placeCall(ctx, callOptions{
					Dialer:      twilio.Dialer{ServerURL: url, AuthToken: token, From: fmt.Sprintf("+1415555%04d", i), OnAudio: fc.onAudio, MaxRecording: 3 * time.Minute},
					Steps:       steps,
					HangupAfter: true,
				}, say)
				mu.Lock()
				callTime += time.Since(began)
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
	// The heap and goroutine profiles are taken when the last calls are
	// still up: right after the deadline.
	if prof != nil {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			select {
			case <-time.After(time.Until(deadline)):
			case <-ctx.Done():
				return
			}
			prof.fetch(ctx, stderr, "heap.pprof", "/heap")
			prof.fetch(ctx, stderr, "allocs.pprof", "/allocs")
			prof.fetch(ctx, stderr, "goroutine.txt", "/goroutine")
			if ms, err := prof.memStats(ctx); err == nil {
				res.GoHeapMB, res.GoSysMB = float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20)
				res.Goroutines, res.NumGC = ms.Goroutines, ms.NumGC
			} else {
				fmt.Fprintln(stderr, "bench: memstats:", err)
			}
		}()
	}
	wg.Wait()
	close(stopPeak)
	profWG.Wait()
	if srv != nil {
		res.CPUSeconds = cpuSeconds(srv.Process.Pid) - cpu0
		if callTime > 0 {
			res.CPUPerCallMin = res.CPUSeconds / callTime.Minutes()
		}
	}
	sort.Float64s(latencies)
	res.LatencyP50MS = percentile(latencies, 0.50)
	res.LatencyP95MS = percentile(latencies, 0.95)
	res.LatencyP99MS = percentile(latencies, 0.99)
	for _, l := range latencies {
		if l > 900 {
			res.Over900++
		}
	}
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

// cpuSeconds reads a process's user+system CPU time from /proc (Linux), 0 if unknown.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at state;
	// utime and stime are fields 14 and 15 of the line, in clock ticks.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// startServerProcess runs `parley serve` (this binary) on a free loopback
// port with a temporary data dir and the extra environment env, and waits
// until it is healthy. Stop it with stopServerProcess.
func startServerProcess(ctx context.Context, stderr io.Writer, env []string) (*exec.Cmd, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, "serve")
	cmd.Env = append(os.Environ(), "PARLEY_LISTEN="+addr, "PARLEY_DATA_DIR="+dir, "PARLEY_LOG_LEVEL=warn",
		"PARLEY_PUBLIC_URL=http://"+addr, "PARLEY_TWILIO_AUTH_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
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

// benchProfileEnv names the environment variable by which `parley bench
// calls --profile` asks the server process it starts to serve its runtime
// profiles, on the 127.0.0.1 address it holds. Every parley process checks
// it at start-up; unset (the normal case) nothing is served.
const benchProfileEnv = "PARLEY_BENCH_PROFILE_ADDR"

func init() {
	if addr := os.Getenv(benchProfileEnv); addr != "" {
		go serveBenchProfiles(addr)
	}
}

// serveBenchProfiles serves CPU, heap, allocation and goroutine profiles
// and runtime memory figures on a loopback address, for the bench only.
func serveBenchProfiles(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "parley: %s=%q ignored: profiles are served on a loopback address only\n", benchProfileEnv, addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/cpu", func(w http.ResponseWriter, r *http.Request) {
		sec, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || sec < 1 || sec > 3600 {
			http.Error(w, "seconds: 1-3600", http.StatusBadRequest)
			return
		}
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(sec) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	profile := func(name string, debug int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if name == "heap" {
				runtime.GC() // in-use figures as of the last collection: make it now
			}
			if err := pprof.Lookup(name).WriteTo(w, debug); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	}
	mux.Handle("/heap", profile("heap", 0))
	mux.Handle("/allocs", profile("allocs", 0))
	mux.Handle("/goroutine", profile("goroutine", 1))
	mux.HandleFunc("/memstats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(w).Encode(benchMemStats{HeapInuse: ms.HeapInuse, Sys: ms.Sys, NumGC: ms.NumGC, Goroutines: runtime.NumGoroutine()})
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "parley: bench profiles:", err)
	}
}

// benchMemStats is what the bench reads from /memstats.
type benchMemStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
	Goroutines int    `json:"goroutines"`
}

// benchProfiler fetches the started server's profiles into dir.
type benchProfiler struct {
	dir  string
	base string // http://127.0.0.1:port
}

// fetch saves the answer to path into dir/name; failures are reported on
// stderr and do not stop the bench.
func (p *benchProfiler) fetch(ctx context.Context, stderr io.Writer, name, path string) {
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		f, err := os.Create(filepath.Join(p.dir, name))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	if err != nil {
		fmt.Fprintf(stderr, "bench: profile %s: %v\n", name, err)
	}
}

// memStats reads the server's Go runtime memory figures.
func (p *benchProfiler) memStats(ctx context.Context) (benchMemStats, error) {
	var ms benchMemStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/memstats", nil)
	if err != nil {
		return ms, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ms, err
	}
	defer resp.Body.Close()
	return ms, json.NewDecoder(resp.Body).Decode(&ms)
}
