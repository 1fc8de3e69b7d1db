package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/postgres"
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

// TestBenchSeedPostgres seeds a fresh PostgreSQL database (the server of
// PARLEY_TEST_POSTGRES_URL, default the local one) with three writers at
// once, and checks every call arrived with its KPI columns.
func TestBenchSeedPostgres(t *testing.T) {
	ctx := context.Background()
	admin := os.Getenv("PARLEY_TEST_POSTGRES_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres tests need a server (set PARLEY_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) }) // after the drop below
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "parley_seed_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		t.Fatalf("PARLEY_TEST_POSTGRES_URL must be a postgres:// URL here: %v", err)
	}
	u.Path = "/" + name
	var out, errOut bytes.Buffer
	if err := runBenchSeed(ctx, []string{"--calls", "1500", "--store", u.String(), "--days", "2", "--writers", "3", "--runs", "1"}, &out, &errOut); err != nil {
		t.Fatalf("bench seed: %v\n%s", err, errOut.String())
	}
	var res seedResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Calls != 1500 || res.Store != "postgres" || res.Writers != 3 || res.EscalationRate <= 0 || res.RepeatRate <= 0 {
		t.Errorf("result = %+v", res)
	}
	st, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.KPIs(ctx, parley.KPIQuery{From: res.From, To: res.To})
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls != 1500 || r.Ended != 1500 || len(r.Series) != 48 || r.TimeToHuman.Count == 0 || len(r.WorstIntents) == 0 {
		t.Errorf("report: %d calls, %d ended, %d points, %d transfers, %d intents", r.Calls, r.Ended, len(r.Series), r.TimeToHuman.Count, len(r.WorstIntents))
	}
}

func TestBenchSeedRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--calls", "0"},
		{"--calls", "10", "--store", "mysql://x", "--data-dir", "/tmp"},
		{"--calls", "10", "--store", "mysql://x"},
		{"--calls", "10", "--days", "0"},
		{"--calls", "10", "--writers", "-1"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := runBenchSeed(context.Background(), args, &out, &errOut); err == nil || !strings.Contains(err.Error(), "bench seed") && err.Error() == "" {
			t.Errorf("bench seed %v: err = %v", args, err)
		}
	}
}
