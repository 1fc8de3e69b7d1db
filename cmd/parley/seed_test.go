package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/sqlite"
)

// TestBenchSeed seeds a small SQLite store and checks what bench seed
// prints and what it wrote.
func TestBenchSeed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := runBenchSeed(ctx, []string{"--calls", "1200", "--data-dir", dir, "--days", "3", "--runs", "2"}, &out, &errOut); err != nil {
		t.Fatalf("bench seed: %v\n%s", err, errOut.String())
	}
	t.Logf("bench seed: %s", out.String())
	var res seedResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Calls != 1200 || res.Store != "sqlite" || res.SeedS <= 0 || res.KPIMS <= 0 || res.KPIRuns != 2 {
		t.Errorf("result = %+v", res)
	}
	// The mix is plausible: most calls contained, some escalated, some repeats.
	if res.ContainmentRate < 0.4 || res.ContainmentRate > 0.95 || res.EscalationRate < 0.03 || res.EscalationRate > 0.5 ||
		res.RepeatRate <= 0 || res.RepeatRate > 0.3 || res.TTHP50MS < 5000 || res.TTHP50MS > 300000 {
		t.Errorf("implausible mix: %+v", res)
	}

	st, err := sqlite.Open(filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.KPIs(ctx, parley.KPIQuery{From: res.From, To: res.To})
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls != 1200 || r.Ended != 1200 || r.Step != "hour" || len(r.Series) != 72 {
		t.Errorf("report: %d calls, %d ended, step %s, %d points", r.Calls, r.Ended, r.Step, len(r.Series))
	}
	if r.CSAT.Responses == 0 || r.Callbacks == 0 || r.AbandonedInQueue == 0 || len(r.EscalationReasons) < 3 ||
		len(r.WorstIntents) == 0 || len(r.Repeats.ByIntent) == 0 || r.HumanHandleMS <= 0 || len(r.Review) == 0 {
		t.Errorf("report lacks parts: %+v", r)
	}
	calls, err := st.ListCalls(ctx, parley.CallQuery{Limit: 5})
	if err != nil || len(calls) != 5 {
		t.Fatalf("ListCalls = %d, %v", len(calls), err)
	}
	c, err := st.GetCall(ctx, calls[0].ID)
	if err != nil || len(c.Turns) < 2 {
		t.Fatalf("GetCall = %+v, %v", c, err)
	}

	// A second run adds calls with new IDs to the same store.
	out.Reset()
	if err := runBenchSeed(ctx, []string{"--calls", "10", "--data-dir", dir, "--days", "1", "--runs", "1"}, &out, &errOut); err != nil {
		t.Fatalf("second bench seed: %v", err)
	}
}

func TestBenchSeedRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--calls", "0"},
		{"--calls", "10", "--store", "mysql://x", "--data-dir", "/tmp"},
		{"--calls", "10", "--store", "mysql://x"},
		{"--calls", "10", "--days", "0"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := runBenchSeed(context.Background(), args, &out, &errOut); err == nil || !strings.Contains(err.Error(), "bench seed") && err.Error() == "" {
			t.Errorf("bench seed %v: err = %v", args, err)
		}
	}
}
