package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/auth"
)

// The remote mode of `parley bench bridges` against the test server, over
// its real sockets: two phone callers ask for a person, two agents log in
// over the console API, accept over WebRTC and both sides talk. No timing
// is asserted, only that every part of the measurement was taken.
func TestBenchBridgesRemoteAgainstARunningServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	users, ok := testServer.srv.base.(parley.UserStore)
	if !ok {
		t.Fatalf("store %T keeps no users", testServer.srv.base)
	}
	const password = "bench test password"
	prefix := "bench-test-agent-"
	if err := createBenchAgents(ctx, users, prefix, 2, password, auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range 2 {
			_ = users.DeleteUser(context.Background(), benchAgentName(prefix, i))
		}
	})
	out := &syncWriter{w: &strings.Builder{}}
	res, err := benchBridgesRemote(ctx, remoteBridgeOptions{
		target: testServer.url, n: 2, dur: 2 * time.Second, token: e2eToken,
		prefix: prefix, password: password,
	}, out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	t.Logf("%+v", *res)
	switch {
	case res.Mode != "remote" || res.Bridges != 2:
		t.Errorf("mode %q, bridges %d", res.Mode, res.Bridges)
	case res.Bridged != 2:
		t.Errorf("%d of 2 bridged\n%s", res.Bridged, out.String())
	case res.CallerFrames == 0 || res.AgentFrames == 0:
		t.Errorf("frames heard: callers %d, agents %d", res.CallerFrames, res.AgentFrames)
	case res.MixCycles == 0:
		t.Error("no mix cycles read from /metrics")
	case res.TimeToHumanP50 <= 0 || res.TimeToHumanP95 < res.TimeToHumanP50:
		t.Errorf("time to human p50 %v p95 %v", res.TimeToHumanP50, res.TimeToHumanP95)
	case res.ServerRSSMB <= 0 || res.LoadRSSMB <= 0:
		t.Errorf("memory: server %v MB, load %v MB", res.ServerRSSMB, res.LoadRSSMB)
	}
	// The agents were set away and their streams closed: none is available.
	for _, a := range testServer.srv.sb.Live().Agents {
		if strings.HasPrefix(a.Name, prefix) && a.State == "available" {
			t.Errorf("agent %s still available after the bench", a.Name)
		}
	}
}

func TestParseMetricsKeepsUnlabelledSamples(t *testing.T) {
	in := `# HELP parley_mixer_cycles_total 20 ms mix cycles.
# TYPE parley_mixer_cycles_total counter
parley_mixer_cycles_total 1234
parley_active_calls{phase="ai"} 3
process_resident_memory_bytes 1.2345e+08
broken_line
not_a_number x
`
	got, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"parley_mixer_cycles_total": 1234, "process_resident_memory_bytes": 1.2345e+08}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// syncWriter lets the bench's goroutines write one log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*strings.Builder).String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
