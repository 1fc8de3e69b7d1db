package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/auth"
)

// Remote mode of `parley bench bridges`: the load (simulated phone callers
// and agents) runs in this process, the server in another one — started
// here (--spawn) or by the user (--target) — so the two do not share a
// process and the server's CPU and memory are read on their own. Agents
// work as the agent console does: they log in over the console HTTP API,
// follow their event stream (SSE), set themselves available and accept
// each offer with a WebRTC offer of their own.

// remoteBridgeOptions are the flags of the remote mode.
type remoteBridgeOptions struct {
	target      string // server URL; empty with spawn
	spawn       bool   // start `parley serve` in its own process
	n           int
	dur         time.Duration
	transcribe  bool // spawn: the server transcribes both sides
	token       string
	prefix      string // agent account names: prefix0000, prefix0001, ...
	password    string
	create      bool   // target: create missing agent accounts in the store the config names
	configPath  string // target with create: the server's config
	serverPID   int    // target: read the server's CPU and RSS from /proc/PID
	nice        int    // lower the load process's priority by this much
	cpuProfile  string // spawn: the server's CPU profile over the measured period
	logLevel    string
	codec       string        // the agents' WebRTC codec
	serverStart time.Duration // spawn: how long the server may take to become healthy
}

// benchAgentPassword is the password of the accounts a spawned server's
// agents log in with (a throwaway store).
const benchAgentPassword = "bench-bridges agent password"

// runBenchBridgesRemote runs the remote mode and prints the result as JSON.
func runBenchBridgesRemote(ctx context.Context, o remoteBridgeOptions, stdout, stderr io.Writer) error {
	res, err := benchBridgesRemote(ctx, o, stderr)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// benchBridgesRemote measures o.n bridges through a server in another
// process (or, for tests, any server reachable over HTTP).
func benchBridgesRemote(ctx context.Context, o remoteBridgeOptions, stderr io.Writer) (*bridgeResult, error) {
	var srv *exec.Cmd
	var prof *benchProfiler
	token := o.token
	o.codec = cmp.Or(o.codec, mwebrtc.CodecPCMU)
	if o.spawn {
		var err error
		if o.password == "" {
			o.password = benchAgentPassword
		}
		var profAddr string
		if o.cpuProfile != "" {
			if profAddr, err = freeLoopbackAddr(); err != nil {
				return nil, err
			}
			prof = &benchProfiler{dir: filepath.Dir(o.cpuProfile), base: "http://" + profAddr}
		}
		token = "bench-bridges-token"
		srv, o.target, err = spawnBridgeServer(ctx, o, token, profAddr, stderr)
		if err != nil {
			return nil, err
		}
		defer stopServerProcess(srv)
	} else if o.create {
		cfg, err := configs.Load(o.configPath, os.Getenv)
		if err != nil {
			return nil, err
		}
		st, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		us, ok := st.(parley.UserStore)
		if !ok {
			st.Close()
			return nil, fmt.Errorf("store %T keeps no users", st)
		}
		err = createBenchAgents(ctx, us, o.prefix, o.n, o.password, auth.DefaultParams)
		st.Close()
		if err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(o.target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bench bridges: --target %q is not a URL", o.target)
	}
	base := strings.TrimRight(o.target, "/")
	loopback := false
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
		loopback = true
	}
	serverPID := o.serverPID
	if srv != nil {
		serverPID = srv.Process.Pid
	} else if serverPID > 0 {
		// A wrapper's pid (timeout, nice, a shell) would measure the wrapper.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", serverPID))
		if args := bytes.Split(cmdline, []byte{0}); err != nil || len(args) < 2 || string(args[1]) != "serve" {
			fmt.Fprintf(stderr, "bench bridges: --server-pid %d does not look like `parley serve` (%q); its figures may be a wrapper's\n", serverPID, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if o.nice > 0 {
		if err := reniceSelf(o.nice); err != nil {
			fmt.Fprintf(stderr, "bench bridges: nice: %v\n", err)
		}
	}

	// One transport for every agent (each has its own cookies); the event
	// streams hold a connection each, the API calls reuse idle ones.
	tr := &http.Transport{MaxIdleConns: 4 * o.n, MaxIdleConnsPerHost: 4 * o.n, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	rb := &remoteBench{base: base, tr: tr, stderr: stderr, speech: benchBabble(30*time.Second, 1),
		peer: mwebrtc.Config{LoopbackOnly: loopback, Codecs: []string{o.codec}}}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()

	fmt.Fprintf(stderr, "bench bridges: %d agents logging in to %s...\n", o.n, base)
	if err := rb.signIn(lctx, o.prefix, o.password, o.n); err != nil {
		rb.close()
		return nil, err
	}
	defer rb.close()

	fmt.Fprintf(stderr, "bench bridges: %d callers asking for a person...\n", o.n)
	calls := make([]*benchCaller, o.n)
	var wg sync.WaitGroup
	for i := range calls {
		calls[i] = &benchCaller{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select { // 25 new calls a second
			case <-time.After(time.Duration(i) * 40 * time.Millisecond):
			case <-lctx.Done():
				return
			}
			calls[i].run(lctx, base, token, fmt.Sprintf("+1415777%04d", i), rb.speech)
		}(i)
	}
	defer func() {
		for _, c := range calls {
			c.hangup()
		}
		stopLoad()
		wg.Wait()
	}()
	deadline := time.Now().Add(time.Duration(o.n)*40*time.Millisecond + 60*time.Second)
	for rb.connected() < o.n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	if rb.connected() < o.n && o.spawn && ctx.Err() == nil {
		rb.reportUnbridged(ctx, o.prefix+"supervisor", o.password)
	}
	res := &bridgeResult{Mode: "remote", Bridges: o.n, Codec: o.codec, Bridged: rb.connected(), Transcribed: o.transcribe && o.spawn}
	fmt.Fprintf(stderr, "bench bridges: %d of %d bridged (%d accept failures); measuring %v\n", res.Bridged, o.n, rb.failures.Load(), o.dur)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, c := range calls {
		c.reset()
	}
	res.agentsTalking = rb.resetAgents()
	if o.nice > 0 {
		_ = reniceSelf(o.nice) // threads started since
	}
	var profDone chan struct{}
	if prof != nil {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			prof.fetch(ctx, stderr, filepath.Base(o.cpuProfile), fmt.Sprintf("/cpu?seconds=%d", max(1, int(o.dur.Seconds()))))
		}()
	}
	m0, merr := scrapeMetrics(ctx, &http.Client{Transport: tr}, base)
	if merr != nil {
		fmt.Fprintf(stderr, "bench bridges: /metrics: %v (no mixer or server figures from it)\n", merr)
	}
	swait0, lwait0 := runQueueSeconds(serverPID), runQueueSeconds(os.Getpid())
	scpu0, lcpu0, t0 := cpuSeconds(serverPID), cpuSeconds(os.Getpid()), time.Now()
	select {
	case <-time.After(o.dur):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.MeasuredS = time.Since(t0).Seconds()
	scpu1, lcpu1 := cpuSeconds(serverPID), cpuSeconds(os.Getpid())
	swait1, lwait1 := runQueueSeconds(serverPID), runQueueSeconds(os.Getpid())
	res.LoadCPUWait = (lwait1 - lwait0) / res.MeasuredS
	m1, merr1 := scrapeMetrics(ctx, &http.Client{Transport: tr}, base)
	res.LoadCPUCores = (lcpu1 - lcpu0) / res.MeasuredS
	res.LoadRSSMB = rssMB(os.Getpid())
	for _, c := range calls {
		f, l := c.counts()
		res.CallerFrames += f
		res.CallerLate += l
	}
	res.AgentFrames, res.AgentLate, res.agentConcealed, res.agentDropped = rb.agentCounts()
	if serverPID > 0 {
		res.ServerCPUCores = (scpu1 - scpu0) / res.MeasuredS
		res.ServerCPUWait = (swait1 - swait0) / res.MeasuredS
		res.ServerRSSMB = rssMB(serverPID)
	} else if merr == nil && merr1 == nil {
		// The server's own process collector reads its /proc/self/stat.
		res.ServerCPUCores = (m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]) / res.MeasuredS
		res.ServerRSSMB = m1["process_resident_memory_bytes"] / (1 << 20)
	}
	if merr == nil && merr1 == nil {
		if _, ok := m1[mixerCyclesMetric]; ok {
			res.MixCycles = uint64(m1[mixerCyclesMetric] - m0[mixerCyclesMetric])
			res.MixLate = uint64(m1[mixerLateMetric] - m0[mixerLateMetric])
			res.MixStarved = uint64(m1[mixerStarvedMetric] - m0[mixerStarvedMetric])
		} else {
			fmt.Fprintln(stderr, "bench bridges: the server exports no mixer metrics; mix figures left out")
		}
	}
	res.finish(rb.timesToHuman())
	res.TransferSteps = rb.transferSteps()
	if profDone != nil {
		<-profDone
	}
	return res, nil
}

// spawnBridgeServer writes a config for a bridge bench (long queue waits
// and offers, WebRTC on loopback, transcription as asked), creates the
// agents' accounts in its fresh store and starts `parley serve` with it.
func spawnBridgeServer(ctx context.Context, o remoteBridgeOptions, token, profAddr string, stderr io.Writer) (*exec.Cmd, string, error) {
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
	level := o.logLevel
	if level == "" {
		level = "error"
	}
	yaml := fmt.Sprintf("listen: %q\npublic_url: %q\ndata_dir: %q\nlog_level: %q\ntwilio:\n  auth_token: %q\nwebrtc:\n  loopback: true\nqueue:\n  max_wait: 10m\n  offer_timeout: 2m\n  transcribe: %t\n",
		addr, "http://"+addr, dir, level, token, o.transcribe)
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	cfg, err := configs.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	// Cheap hashes: a throwaway store, and 300 logins must not take minutes.
	cheap := auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	err = createBenchAgents(ctx, st.(parley.UserStore), o.prefix, o.n, o.password, cheap)
	if err == nil {
		err = createBenchUser(ctx, st.(parley.UserStore), o.prefix+"supervisor", parley.RoleSupervisor, o.password, cheap)
	}
	st.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	cmd := exec.Command(exe, "serve", "--config", cfgPath)
	// Only what the server needs from this environment: no PARLEY_* of the
	// caller's own setup may override the bench's config.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PARLEY_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "PARLEY_DATA_DIR="+dir)
	if profAddr != "" {
		cmd.Env = append(cmd.Env, benchProfileEnv+"="+profAddr)
	}
	cmd.Stderr = stderr
	ownSession(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	base := "http://" + addr
	wait := o.serverStart
	if wait <= 0 {
		wait = 60 * time.Second
	}
	for end := time.Now().Add(wait); time.Now().Before(end); {
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return cmd, base, nil
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
	return nil, "", fmt.Errorf("bench bridges: the server did not become healthy in %v", wait)
}

// createBenchAgents makes the agent accounts prefix0000 .. prefix(n-1)
// with password, leaving accounts that already exist as they are.
func createBenchAgents(ctx context.Context, us parley.UserStore, prefix string, n int, password string, p auth.Params) error {
	for i := range n {
		if err := createBenchUser(ctx, us, benchAgentName(prefix, i), parley.RoleAgent, password, p); err != nil {
			return err
		}
	}
	return nil
}

// createBenchUser makes one account unless it exists.
func createBenchUser(ctx context.Context, us parley.UserStore, name string, role parley.Role, password string, p auth.Params) error {
	if _, err := us.UserByName(ctx, name); err == nil {
		return nil
	}
	id, err := auth.NewUserID()
	if err != nil {
		return err
	}
	hash, err := auth.HashPasswordWith(password, p)
	if err != nil {
		return err
	}
	u := parley.User{ID: id, Name: name, Role: role, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	if err := us.CreateUser(ctx, u); err != nil && !errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("bench bridges: create %s: %w", name, err)
	}
	return nil
}

// reportUnbridged prints, as a supervisor sees them, the calls that did
// not reach an agent (the spawned server has a supervisor account).
func (rb *remoteBench) reportUnbridged(ctx context.Context, name, password string) {
	jar, _ := cookiejar.New(nil)
	sup := &consoleAgent{rb: rb, name: name, client: &http.Client{Jar: jar, Transport: rb.tr}}
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	var login struct {
		CSRF string `json:"csrf"`
	}
	if _, err := sup.do(ctx, http.MethodPost, "/api/login", body, &login); err != nil {
		fmt.Fprintf(rb.stderr, "bench bridges: supervisor: %v\n", err)
		return
	}
	var live switchboard.Snapshot
	if _, err := sup.do(ctx, http.MethodGet, "/api/supervisor/live", nil, &live); err != nil {
		fmt.Fprintf(rb.stderr, "bench bridges: live calls: %v\n", err)
		return
	}
	phases := map[switchboard.Phase]int{}
	shown := 0
	for _, lc := range live.Calls {
		phases[lc.Phase]++
		if lc.Phase == switchboard.PhaseAgent || shown >= 10 {
			continue
		}
		shown++
		fmt.Fprintf(rb.stderr, "bench bridges: call %s from %s (%s in) still in phase %s:", lc.ID, lc.From, time.Since(lc.StartedAt).Round(time.Second), lc.Phase)
		for _, t := range lc.Transcript {
			fmt.Fprintf(rb.stderr, " [%s %q %s]", t.Speaker, t.Text, t.DTMF)
		}
		fmt.Fprintln(rb.stderr)
	}
	fmt.Fprintf(rb.stderr, "bench bridges: live calls by phase: %v\n", phases)
}

func benchAgentName(prefix string, i int) string { return fmt.Sprintf("%s%04d", prefix, i) }

// remoteBench is the agents' side of a remote bridge bench.
type remoteBench struct {
	base     string
	tr       *http.Transport
	stderr   io.Writer
	speech   []int16
	peer     mwebrtc.Config
	failures atomic.Int64

	mu     sync.Mutex
	agents []*consoleAgent
}

// signIn logs every agent in, opens its event stream and sets it
// available, a few at a time (logins are rate limited per address).
func (rb *remoteBench) signIn(ctx context.Context, prefix, password string, n int) error {
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		jar, _ := cookiejar.New(nil)
		a := &consoleAgent{rb: rb, name: benchAgentName(prefix, i), client: &http.Client{Jar: jar, Transport: rb.tr},
			snap: make(chan struct{}), streamDone: make(chan struct{})}
		rb.mu.Lock()
		rb.agents = append(rb.agents, a)
		rb.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := a.signIn(ctx, password); err != nil {
				errs <- fmt.Errorf("bench bridges: agent %s: %w", a.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first failure, or nil
}

func (rb *remoteBench) each(f func(a *consoleAgent)) {
	rb.mu.Lock()
	agents := append([]*consoleAgent(nil), rb.agents...)
	rb.mu.Unlock()
	for _, a := range agents {
		f(a)
	}
}

func (rb *remoteBench) connected() int {
	n := 0
	rb.each(func(a *consoleAgent) {
		a.mu.Lock()
		if a.tth > 0 {
			n++
		}
		a.mu.Unlock()
	})
	return n
}

func (rb *remoteBench) resetAgents() (talking int) {
	rb.each(func(a *consoleAgent) {
		if b := a.audio(); b != nil {
			talking++
			b.reset()
		}
	})
	return talking
}

func (rb *remoteBench) agentCounts() (frames, late, concealed, dropped int) {
	rb.each(func(a *consoleAgent) {
		if b := a.audio(); b != nil {
			f, l, c, d := b.counts()
			frames, late, concealed, dropped = frames+f, late+l, concealed+c, dropped+d
		}
	})
	return frames, late, concealed, dropped
}

// transferSteps are the p50 and p95 of the steps of the transfers, in ms:
// decision to offer (the queue), offer to accept (the agent's console),
// accept to audio (the WebRTC connection).
func (rb *remoteBench) transferSteps() *transferSteps {
	var steps [3][]float64
	rb.each(func(a *consoleAgent) {
		a.mu.Lock()
		if a.tth > 0 && a.steps[0] >= 0 {
			for i := range steps {
				steps[i] = append(steps[i], a.steps[i])
			}
		}
		a.mu.Unlock()
	})
	if len(steps[0]) == 0 {
		return nil
	}
	var out transferSteps
	for i, s := range steps {
		sort.Float64s(s)
		out[i] = [2]float64{percentile(s, 0.5), percentile(s, 0.95)}
	}
	return &out
}

// transferSteps are [p50, p95] of decision→offer, offer→accept, accept→audio.
type transferSteps [3][2]float64

func (rb *remoteBench) timesToHuman() []float64 {
	var out []float64
	rb.each(func(a *consoleAgent) {
		a.mu.Lock()
		if a.tth > 0 {
			out = append(out, a.tth)
		}
		a.mu.Unlock()
	})
	return out
}

// close signs every agent off (away, so no new call is offered), hangs up
// their audio and ends their event streams.
func (rb *remoteBench) close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	rb.each(func(a *consoleAgent) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a.close()
		}()
	})
	wg.Wait()
}

// consoleAgent is one agent console over HTTP.
type consoleAgent struct {
	rb     *remoteBench
	name   string
	client *http.Client
	csrf   string

	stopStream context.CancelFunc
	snap       chan struct{} // closed at the stream's first snapshot
	streamDone chan struct{}

	mu       sync.Mutex
	callID   string // the call taken
	accepted bool
	tth      float64    // ms from the transfer decision to the agent's audio on the call
	steps    [3]float64 // ms: decision to offer, offer to accept, accept to audio
	talk     *benchAgent
}

func (a *consoleAgent) audio() *benchAgent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.talk
}

// signIn logs in (retrying while the server says to wait), opens the event
// stream and sets the agent available.
func (a *consoleAgent) signIn(ctx context.Context, password string) error {
	body, _ := json.Marshal(map[string]string{"name": a.name, "password": password})
	for attempt := 0; ; attempt++ {
		var login struct {
			CSRF string `json:"csrf"`
		}
		code, err := a.do(ctx, http.MethodPost, "/api/login", body, &login)
		if err == nil {
			a.csrf = login.CSRF
			break
		}
		if (code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable) || attempt >= 30 {
			return fmt.Errorf("log in: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(200*(attempt+1)) * time.Millisecond):
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	a.stopStream = cancel
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, a.rb.base+"/api/console/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := a.client.Do(req)
	if err != nil {
		close(a.streamDone)
		return fmt.Errorf("event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(a.streamDone)
		return fmt.Errorf("event stream: %s", resp.Status)
	}
	go a.follow(sctx, resp.Body)
	select {
	case <-a.snap:
	case <-a.streamDone:
		return errors.New("event stream ended before its snapshot")
	case <-time.After(30 * time.Second):
		return errors.New("no snapshot on the event stream in 30 s")
	}
	if _, err := a.do(ctx, http.MethodPost, "/api/agent/state", []byte(`{"state":"available"}`), nil); err != nil {
		return fmt.Errorf("set available: %w", err)
	}
	return nil
}

// do sends one console API request (JSON both ways, the session's CSRF
// token on changes); an answer other than 2xx is an error with its message.
func (a *consoleAgent) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.rb.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet && a.csrf != "" {
		req.Header.Set(auth.CSRFHeader, a.csrf)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20)) // the live view of hundreds of calls is megabytes
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, e.Error)
	}
	if out != nil && len(data) > 0 {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

// follow reads the event stream as the console page does: a snapshot
// (first, and after lost updates) and updates.
func (a *consoleAgent) follow(ctx context.Context, body io.ReadCloser) {
	defer close(a.streamDone)
	defer body.Close()
	br := bufio.NewReaderSize(body, 64<<10)
	var event string
	var data []byte
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if errors.Is(err, bufio.ErrBufferFull) { // a long data line: read the rest
			rest, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			line = append(append([]byte(nil), line...), rest...)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0: // end of an event
			if data != nil {
				a.onEvent(ctx, event, data)
				if event == "snapshot" && first {
					first = false
					close(a.snap)
				}
			}
			event, data = "", nil
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0:0], line[len("data: "):]...)
		}
	}
}

// onEvent accepts offers and notes when the agent's audio is on the call.
func (a *consoleAgent) onEvent(ctx context.Context, event string, data []byte) {
	var offer *switchboard.Offer
	var lc *switchboard.LiveCall
	if event == "snapshot" {
		var s struct {
			Offer *switchboard.Offer    `json:"offer"`
			Call  *switchboard.LiveCall `json:"call"`
		}
		if json.Unmarshal(data, &s) != nil {
			return
		}
		offer, lc = s.Offer, s.Call
	} else {
		var u switchboard.Update
		if json.Unmarshal(data, &u) != nil {
			return
		}
		switch u.Kind {
		case switchboard.UpdateOffer:
			offer = u.Offer
		case switchboard.UpdateCall:
			lc = u.Call
		}
	}
	if offer != nil {
		a.mu.Lock()
		take := !a.accepted
		a.accepted = true
		a.mu.Unlock()
		if take {
			go a.accept(ctx, offer.CallID)
		}
	}
	if lc != nil && lc.Phase == switchboard.PhaseAgent && lc.Agent != nil && lc.Transfer != nil && !lc.Transfer.ConnectedAt.IsZero() {
		a.mu.Lock()
		if a.tth == 0 && lc.ID == a.callID {
			t := lc.Transfer
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			a.tth = max(ms(t.ConnectedAt.Sub(t.DecidedAt)), 0.001)
			if !t.OfferedAt.IsZero() && !t.AcceptedAt.IsZero() {
				a.steps = [3]float64{ms(t.OfferedAt.Sub(t.DecidedAt)), ms(t.AcceptedAt.Sub(t.OfferedAt)), ms(t.ConnectedAt.Sub(t.AcceptedAt))}
			} else {
				a.steps = [3]float64{-1, -1, -1} // not all steps known
			}
		}
		a.mu.Unlock()
	}
}

// accept answers an offer as the console's Accept button does: a WebRTC
// offer of its own, POSTed; the server's answer completes the connection.
func (a *consoleAgent) accept(ctx context.Context, callID string) {
	fail := func(err error) {
		a.rb.failures.Add(1)
		fmt.Fprintf(a.rb.stderr, "bench bridges: agent %s accepting %s: %v\n", a.name, callID, err)
	}
	p, sdp, err := mwebrtc.NewOffer(a.rb.peer)
	if err != nil {
		fail(err)
		return
	}
	a.mu.Lock()
	a.callID = callID
	a.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"type": "offer", "sdp": sdp})
	var answer struct {
		SDP string `json:"sdp"`
	}
	if _, err := a.do(ctx, http.MethodPost, "/api/agent/offers/"+url.PathEscape(callID)+"/accept", body, &answer); err != nil {
		_ = p.Close()
		fail(err)
		return
	}
	if err := p.SetAnswer(answer.SDP); err != nil {
		_ = p.Close()
		fail(err)
		return
	}
	b := &benchAgent{peer: p, done: make(chan struct{})}
	a.mu.Lock()
	a.talk = b
	a.mu.Unlock()
	go b.run(a.rb.speech)
}

// close ends the agent's audio, sets it away and ends its event stream.
func (a *consoleAgent) close() {
	if b := a.audio(); b != nil {
		_ = b.peer.Close()
		<-b.done
	}
	// An agent who took a call is in wrap-up now (no new offers); one who
	// did not is still available and goes away.
	a.mu.Lock()
	took := a.accepted
	a.mu.Unlock()
	if a.csrf != "" && !took {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = a.do(ctx, http.MethodPost, "/api/agent/state", []byte(`{"state":"away"}`), nil)
		cancel()
	}
	if a.stopStream != nil {
		a.stopStream()
		<-a.streamDone
	}
}

// runQueueSeconds is how long the threads of process pid have been ready
// to run but waiting for a CPU (Linux schedstat, summed over its threads),
// 0 if unknown. Per second of a measurement, it says how much more CPU the
// process wanted than the machine gave it.
func runQueueSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			ns += v
		}
	}
	return ns / 1e9
}

// Mixer metrics the server exports (see bench_metrics.go).
const (
	mixerCyclesMetric  = "parley_mixer_cycles_total"
	mixerLateMetric    = "parley_mixer_late_cycles_total"
	mixerStarvedMetric = "parley_mixer_starved_total"
)

// scrapeMetrics reads the server's /metrics (text format) into a map of
// the unlabelled samples.
func scrapeMetrics(ctx context.Context, client *http.Client, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics keeps the samples without labels of a Prometheus text
// exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	return out, sc.Err()
}
