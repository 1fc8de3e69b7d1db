package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/telephony/twilio"
)

// bridgeResult is what `parley bench bridges` prints.
type bridgeResult struct {
	Mode          string  `json:"mode"`            // "in-process" or "remote" (the server in its own process)
	Bridges       int     `json:"bridges"`         // caller-agent bridges asked for
	Codec         string  `json:"codec"`           // the agents' WebRTC codec
	Bridged       int     `json:"bridged"`         // that connected
	Transcribed   bool    `json:"transcribed"`     // both sides recognized live
	MeasuredS     float64 `json:"measured_s"`      // time all bridges ran together
	CallerFrames  int     `json:"caller_frames"`   // frames the simulated callers received while bridged
	CallerLate    int     `json:"caller_late"`     // ... that came late (a gap in the stream)
	CallerLatePct float64 `json:"caller_late_pct"` //
	AgentFrames   int     `json:"agent_frames"`    // frames the agents' WebRTC peers received
	AgentLate     int     `json:"agent_late"`      // ... more than 50 ms after the previous one
	AgentLatePct  float64 `json:"agent_late_pct"`  //
	// The next three are shares of the frames the agents on a bridge should
	// have heard (50 a second each: the mix never pauses). Missing: never
	// delivered to the agent (lost in a gap longer than the late count looks
	// at, or dropped by the receiver); concealed: silence the agents' WebRTC
	// receivers made up for packets that did not come; dropped: frames the
	// agents' own receive loops were too slow to take (the load generator
	// falling behind, not the server).
	AgentMissingPct   float64 `json:"agent_missing_pct"`
	AgentConcealedPct float64 `json:"agent_concealed_pct"`
	AgentDroppedPct   float64 `json:"agent_dropped_pct"`
	agentsTalking     int     // agents on a bridge when the measurement started
	agentConcealed    int
	agentDropped      int
	MixCycles         uint64  `json:"mix_cycles"`   // 20 ms mix cycles of every bridge while measured
	MixLate           uint64  `json:"mix_late"`     // cycles run late, to catch up
	MixLatePct        float64 `json:"mix_late_pct"` //
	MixStarved        uint64  `json:"mix_starved"`  // times a party's input ran dry past concealment
	TimeToHumanP50    float64 `json:"time_to_human_p50_ms"`
	TimeToHumanP95    float64 `json:"time_to_human_p95_ms"`
	// TransferSteps (remote) are [p50, p95] ms of decision→offer (queue),
	// offer→accept (the agent's console) and accept→audio (WebRTC).
	TransferSteps  *transferSteps `json:"transfer_steps_ms,omitempty"`
	CPUCores       float64        `json:"cpu_cores,omitempty"`        // in-process: CPU used while measuring (server and load in one process)
	RSSMB          float64        `json:"rss_mb,omitempty"`           // in-process: server and load
	ServerCPUCores float64        `json:"server_cpu_cores,omitempty"` // remote: the server process's CPU while measuring
	ServerRSSMB    float64        `json:"server_rss_mb,omitempty"`    // remote: the server's resident memory at the end
	// ServerCPUWait (remote, Linux) is the time per second the server's
	// threads were ready to run but waited for a CPU: how far the machine
	// fell short of what the server asked for.
	ServerCPUWait float64 `json:"server_cpu_wait_cores,omitempty"`
	LoadCPUCores  float64 `json:"load_cpu_cores,omitempty"` // remote: this process's (callers and agents)
	LoadCPUWait   float64 `json:"load_cpu_wait_cores,omitempty"`
	LoadRSSMB     float64 `json:"load_rss_mb,omitempty"`
}

// finish computes the percentages and the time-to-human percentiles.
func (r *bridgeResult) finish(tth []float64) {
	if r.MixCycles > 0 {
		r.MixLatePct = 100 * float64(r.MixLate) / float64(r.MixCycles)
	}
	if r.CallerFrames > 0 {
		r.CallerLatePct = 100 * float64(r.CallerLate) / float64(r.CallerFrames)
	}
	if r.AgentFrames > 0 {
		r.AgentLatePct = 100 * float64(r.AgentLate) / float64(r.AgentFrames)
	}
	if want := float64(r.agentsTalking) * r.MeasuredS * 50; want > 0 {
		r.AgentMissingPct = max(0, 100*(1-float64(r.AgentFrames)/want))
		r.AgentConcealedPct = 100 * float64(r.agentConcealed) / want
		r.AgentDroppedPct = 100 * float64(r.agentDropped) / want
	}
	sort.Float64s(tth)
	if len(tth) > 0 {
		r.TimeToHumanP50, r.TimeToHumanP95 = percentile(tth, 0.50), percentile(tth, 0.95)
	}
}

// runBenchBridges measures bridged calls: n simulated phone callers (the
// Twilio Media Streams simulator) ask for a person, n agents (WebRTC
// peers, as the agent console makes them) accept, and both sides talk for
// the measured time while parley mixes every bridge on its 20 ms clock.
// By default server and load share this process (and its CPU); everything
// crosses real sockets on 127.0.0.1. With --spawn or --target the server
// runs in a process of its own and the agents use the console's HTTP API
// (bench_bridges_remote.go).
func runBenchBridges(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench bridges", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("bridges", 50, "simultaneous caller-agent bridges")
	dur := fs.Duration("duration", 20*time.Second, "how long all bridges talk together")
	transcribe := fs.Bool("transcribe", false, "transcribe both sides of every bridge live (a recognizer per speaking party)")
	logLevel := fs.String("log", "error", "server log level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured period to this file (in-process: server and load together; --spawn: the server's)")
	spawn := fs.Bool("spawn", false, "start `parley serve` in a process of its own on 127.0.0.1 and load it from this one")
	target := fs.String("target", "", "load a running server at this URL (agents log in over the console API; see --agent-prefix)")
	twToken := fs.String("token", os.Getenv("PARLEY_TWILIO_AUTH_TOKEN"), "--target: the Twilio auth token the server checks")
	prefix := fs.String("agent-prefix", "bench-agent-", "--target/--spawn: agent accounts are named PREFIX0000, PREFIX0001, ...")
	password := fs.String("agent-password", os.Getenv("PARLEY_BENCH_AGENT_PASSWORD"), "--target: the agents' password (default $PARLEY_BENCH_AGENT_PASSWORD)")
	create := fs.Bool("create-agents", false, "--target: first create the missing agent accounts in the store the server's config names (--config, PARLEY_*)")
	cfgPath := fs.String("config", "", "--target with --create-agents: the server's YAML configuration")
	serverPID := fs.Int("server-pid", 0, "--target: read the server's CPU and memory from /proc/PID (default: its /metrics process figures)")
	codec := fs.String("codec", mwebrtc.CodecPCMU, "the agents' WebRTC audio codec: pcmu (what the server prefers for agents, webrtc.agent_codecs) or opus")
	niceness := fs.Int("nice", 0, "--target/--spawn: lower this process's priority (the load) by this much, so the server keeps its clock")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 2000 || *dur <= 0 || *dur > time.Hour {
		return errors.New("bench bridges: --bridges 1-2000 and --duration up to 1h")
	}
	if *codec != mwebrtc.CodecOpus && *codec != mwebrtc.CodecPCMU {
		return errors.New("bench bridges: --codec opus or pcmu")
	}
	if *spawn || *target != "" {
		switch {
		case *spawn && *target != "":
			return errors.New("bench bridges: --spawn starts its own server; give --target only for a running one")
		case *target != "" && *password == "":
			return errors.New("bench bridges: --target needs the agents' password (--agent-password or $PARLEY_BENCH_AGENT_PASSWORD)")
		case *target != "" && *cpuProfile != "":
			return errors.New("bench bridges: --cpuprofile profiles the server --spawn starts; profile a --target server yourself")
		case *niceness < 0 || *niceness > 19:
			return errors.New("bench bridges: --nice 0-19")
		}
		return runBenchBridgesRemote(ctx, remoteBridgeOptions{
			target: *target, spawn: *spawn, n: *n, dur: *dur, transcribe: *transcribe, token: *twToken,
			prefix: *prefix, password: *password, create: *create, configPath: *cfgPath,
			serverPID: *serverPID, nice: *niceness, cpuProfile: *cpuProfile, logLevel: *logLevel, codec: *codec,
		}, stdout, stderr)
	}
	dir, err := os.MkdirTemp("", "parley-bench-bridges-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	const token = "bench-bridges-token"
	url := "http://" + ln.Addr().String()
	env := map[string]string{
		"PARLEY_LISTEN": ln.Addr().String(), "PARLEY_PUBLIC_URL": url, "PARLEY_DATA_DIR": dir,
		"PARLEY_TWILIO_AUTH_TOKEN": token, "PARLEY_LOG_LEVEL": "error", "PARLEY_WEBRTC_LOOPBACK": "true",
	}
	cfg, err := configs.Load("", func(k string) string { return env[k] })
	if err != nil {
		ln.Close()
		return err
	}
	cfg.Queue.Transcribe = *transcribe
	cfg.Queue.MaxWait = 10 * time.Minute
	cfg.Queue.OfferTimeout = 2 * time.Minute
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	srv, err := newServer(sctx, cfg, serverLogger(stderr, *logLevel))
	if err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	sb := srv.sb
	for i := range *n {
		id := fmt.Sprintf("bench-agent-%04d", i)
		sb.AgentOnline(parley.User{ID: id, Name: id, Role: parley.RoleAgent})
		if err := sb.SetAgentState(id, escalation.AgentAvailable); err != nil {
			return err
		}
	}
	b := &bridgeBench{sb: sb, speech: benchBabble(30*time.Second, 1), agents: map[string]*benchAgent{}, stderr: stderr,
		peer: mwebrtc.Config{LoopbackOnly: true, Codecs: []string{*codec}}}
	upd, unsub := sb.Subscribe(*n * 64)
	defer unsub()
	go b.acceptOffers(sctx, upd)

	fmt.Fprintf(stderr, "bench bridges: %d callers asking for a person...\n", *n)
	calls := make([]*benchCaller, *n)
	var wg sync.WaitGroup
	for i := range calls {
		calls[i] = &benchCaller{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 40 * time.Millisecond) // 25 new calls a second
			calls[i].run(sctx, url, token, fmt.Sprintf("+1415666%04d", i), b.speech)
		}(i)
	}
	// Wait for the bridges to connect.
	deadline := time.Now().Add(time.Duration(*n)*40*time.Millisecond + 60*time.Second)
	for b.connected() < *n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	res := &bridgeResult{Mode: "in-process", Bridges: *n, Codec: *codec, Bridged: b.connected(), Transcribed: *transcribe}
	if res.Bridged < *n {
		for _, lc := range sb.Live().Calls {
			if lc.Phase != switchboard.PhaseAgent {
				fmt.Fprintf(stderr, "bench bridges: call %s still in phase %s:", lc.ID, lc.Phase)
				for _, t := range lc.Transcript {
					fmt.Fprintf(stderr, " [%s %q %s]", t.Speaker, t.Text, t.DTMF)
				}
				fmt.Fprintln(stderr)
			}
		}
	}
	fmt.Fprintf(stderr, "bench bridges: %d of %d bridged; measuring %v\n", res.Bridged, *n, *dur)
	for _, c := range calls {
		c.reset()
	}
	res.agentsTalking = b.resetAgents()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
	}
	cpu0, t0, mix0 := cpuSeconds(os.Getpid()), time.Now(), sb.MixerStats()
	select {
	case <-time.After(*dur):
	case <-ctx.Done():
	}
	res.MeasuredS = time.Since(t0).Seconds()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	res.CPUCores = (cpuSeconds(os.Getpid()) - cpu0) / res.MeasuredS
	res.RSSMB = rssMB(os.Getpid())
	for _, c := range calls {
		f, l := c.counts()
		res.CallerFrames += f
		res.CallerLate += l
	}
	res.AgentFrames, res.AgentLate, res.agentConcealed, res.agentDropped = b.agentCounts()
	mix1 := sb.MixerStats()
	res.MixCycles, res.MixLate, res.MixStarved = mix1.Mixes-mix0.Mixes, mix1.JumpMixes-mix0.JumpMixes, mix1.Restarts-mix0.Restarts
	res.finish(b.timesToHuman())
	for _, c := range calls {
		c.hangup()
	}
	wg.Wait()
	b.closeAgents()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// benchBabble is a voice-like sound (a glottal pulse train with a
// wandering pitch through a resonance, at a syllable rhythm) that keeps
// every bridge busy in both directions.
func benchBabble(d time.Duration, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]int16, int(d.Seconds()*8000))
	phase, y1, y2 := 0.0, 0.0, 0.0
	for i := range out {
		t := float64(i) / 8000
		phase += (120 + 30*math.Sin(2*math.Pi*0.7*t) + 10*rng.Float64()) / 8000
		x := 0.0
		if phase >= 1 {
			phase--
			x = 1
		}
		r, w := 0.95, 2*math.Pi*700/8000
		y := x + 2*r*math.Cos(w)*y1 - r*r*y2
		y2, y1 = y1, y
		out[i] = int16(math.Max(-32000, math.Min(32000, 2500*y*(0.55+0.45*math.Sin(2*math.Pi*4*t)))))
	}
	return out
}

type bridgeBench struct {
	sb     *switchboard.Switchboard
	speech []int16
	stderr io.Writer
	peer   mwebrtc.Config // the agents' WebRTC

	mu     sync.Mutex
	agents map[string]*benchAgent
	tth    []float64
}

// acceptOffers answers every offer at once, as an agent console would,
// with a WebRTC peer that talks and listens.
func (b *bridgeBench) acceptOffers(ctx context.Context, upd <-chan switchboard.Update) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-upd:
			if u.Kind == switchboard.UpdateOffer {
				go b.accept(ctx, u.AgentID, u.CallID)
			}
			// The update that puts a call in the agent phase carries its transfer times.
			if u.Kind == switchboard.UpdateCall && u.Call != nil && u.Call.Phase == switchboard.PhaseAgent && u.Call.Transfer != nil && !u.Call.Transfer.ConnectedAt.IsZero() {
				t := u.Call.Transfer
				b.mu.Lock()
				if a := b.agents[u.AgentID]; a != nil && !a.bridged {
					a.bridged = true
					b.tth = append(b.tth, float64(t.ConnectedAt.Sub(t.DecidedAt).Milliseconds()))
				}
				b.mu.Unlock()
			}
		}
	}
}

func (b *bridgeBench) accept(ctx context.Context, agentID, callID string) {
	p, offer, err := mwebrtc.NewOffer(b.peer)
	if err != nil {
		fmt.Fprintf(b.stderr, "bench bridges: agent %s: %v\n", agentID, err)
		return
	}
	answer, err := b.sb.Accept(ctx, agentID, callID, offer)
	if err != nil {
		fmt.Fprintf(b.stderr, "bench bridges: agent %s accepting %s: %v\n", agentID, callID, err)
		_ = p.Close()
		return
	}
	if err := p.SetAnswer(answer); err != nil {
		fmt.Fprintf(b.stderr, "bench bridges: agent %s: %v\n", agentID, err)
		_ = p.Close()
		return
	}
	a := &benchAgent{peer: p, done: make(chan struct{})}
	b.mu.Lock()
	b.agents[agentID] = a
	b.mu.Unlock()
	go a.run(b.speech)
}

func (b *bridgeBench) connected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, a := range b.agents {
		if a.bridged {
			n++
		}
	}
	return n
}

func (b *bridgeBench) resetAgents() (talking int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	talking = len(b.agents)
	for _, a := range b.agents {
		a.reset()
	}
	return talking
}

func (b *bridgeBench) agentCounts() (frames, late, concealed, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.agents {
		f, l, c, d := a.counts()
		frames, late, concealed, dropped = frames+f, late+l, concealed+c, dropped+d
	}
	return frames, late, concealed, dropped
}

func (b *bridgeBench) timesToHuman() []float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]float64(nil), b.tth...)
	sort.Float64s(out)
	return out
}

func (b *bridgeBench) closeAgents() {
	b.mu.Lock()
	agents := make([]*benchAgent, 0, len(b.agents))
	for _, a := range b.agents {
		agents = append(agents, a)
	}
	b.mu.Unlock()
	for _, a := range agents {
		_ = a.peer.Close()
		<-a.done
	}
}

// benchAgent is one agent's browser: it talks (paced 20 ms frames) and
// counts the frames it hears and the gaps between them.
type benchAgent struct {
	peer    *mwebrtc.Peer
	done    chan struct{}
	bridged bool

	mu        sync.Mutex
	frames    int
	late      int
	last      time.Time
	concealed uint64 // the peer's concealed samples when counting started
	dropped   uint64 // and its frames dropped for a slow reader
}

// reset starts counting afresh.
func (a *benchAgent) reset() {
	st := a.peer.Stats()
	a.mu.Lock()
	a.frames, a.late, a.last, a.concealed, a.dropped = 0, 0, time.Time{}, st.ConcealedSamples, st.DroppedIn
	a.mu.Unlock()
}

// counts are, since reset, the frames heard, those after a gap, the
// frames of silence the peer made up for lost packets, and the frames it
// dropped because this agent's loop did not take them in time.
func (a *benchAgent) counts() (frames, late, concealed, dropped int) {
	st := a.peer.Stats()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frames, a.late, int(st.ConcealedSamples-a.concealed) / mwebrtc.FrameSamples, int(st.DroppedIn - a.dropped)
}

func (a *benchAgent) run(speech []int16) {
	defer close(a.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pos := rand.IntN(len(speech)/160) * 160
	for {
		select {
		case <-a.peer.Done():
			return
		case f := <-a.peer.Audio():
			now := time.Now()
			a.mu.Lock()
			a.frames++
			if !a.last.IsZero() && now.Sub(a.last) > 50*time.Millisecond && now.Sub(a.last) < segmentGap {
				a.late++
			}
			a.last = now
			a.mu.Unlock()
			a.peer.Release(f)
		case <-tick.C:
			if pos+160 > len(speech) {
				pos = 0
			}
			_ = a.peer.WriteFrame(speech[pos : pos+160])
			pos += 160
		}
	}
}

// benchCaller is one simulated phone caller who asks for a person and
// then talks to them.
type benchCaller struct {
	mu   sync.Mutex
	fc   *frameClock
	call *twilio.SimCall
}

func (c *benchCaller) run(ctx context.Context, url, token, from string, speech []int16) {
	fc := &frameClock{}
	c.mu.Lock()
	c.fc = fc
	c.mu.Unlock()
	d := twilio.Dialer{ServerURL: url, AuthToken: token, From: from, MaxRecording: time.Second,
		OnAudio: func(pcm []int16, at time.Time) {
			c.mu.Lock()
			f := c.fc
			c.mu.Unlock()
			f.onAudio(pcm, at)
		}}
	call, err := d.Dial(ctx)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.call = call
	c.mu.Unlock()
	// After the greeting starts, press 0 for a person, then talk.
	_ = call.SendSilence(1500 * time.Millisecond)
	_ = call.SendDTMF('0')
	_ = call.SendSilence(6 * time.Second)
	for ctx.Err() == nil {
		if err := call.SendAudio(speech); err != nil {
			return
		}
		select {
		case <-call.Done():
			return
		default:
		}
	}
}

func (c *benchCaller) reset() {
	c.mu.Lock()
	c.fc = &frameClock{}
	c.mu.Unlock()
}

func (c *benchCaller) counts() (frames, late int) {
	c.mu.Lock()
	f := c.fc
	c.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames, f.late
}

func (c *benchCaller) hangup() {
	c.mu.Lock()
	call := c.call
	c.mu.Unlock()
	if call != nil {
		_ = call.Hangup()
		_ = call.Wait(context.Background())
	}
}
