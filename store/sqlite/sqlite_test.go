package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "data", "parley.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Contract(t, func(t *testing.T) parley.Store { return openTemp(t) })
}

func TestUserContract(t *testing.T) {
	storetest.UserContract(t, func(t *testing.T) storetest.UserBackend { return openTemp(t) })
}

// TestAsyncOverSQLite writes a call through store.Async from several
// goroutines and checks that every write lands, in order per call.
func TestAsyncOverSQLite(t *testing.T) {
	ctx := context.Background()
	a := store.NewAsync(openTemp(t), store.AsyncOptions{Queue: 512})
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const calls, turns = 4, 50
	var wg sync.WaitGroup
	for c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "CA-" + string(rune('a'+c))
			if err := a.CreateCall(ctx, parley.Call{ID: id, Channel: parley.ChannelTwilio, StartedAt: start}); err != nil {
				t.Errorf("CreateCall: %v", err)
				return
			}
			for i := range turns {
				sig := &parley.Signals{Repeats: i}
				if err := a.AppendTurn(ctx, parley.Turn{CallID: id, Seq: i, Speaker: parley.SpeakerCaller, Text: "hello", Signals: sig}); err != nil {
					t.Errorf("AppendTurn: %v", err)
					return
				}
				sig.Repeats = -1 // the caller reusing its Signals must not change what is stored
			}
			if err := a.EndCall(ctx, id, start.Add(time.Minute), parley.OutcomeResolved, "bye"); err != nil {
				t.Errorf("EndCall: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := a.Stats(); st.Written != calls*(turns+2) || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("Stats = %+v, want %d written", st, calls*(turns+2))
	}
	for c := range calls {
		got, err := a.GetCall(ctx, "CA-"+string(rune('a'+c)))
		if err != nil {
			t.Fatalf("GetCall: %v", err)
		}
		if len(got.Turns) != turns || got.Outcome != parley.OutcomeResolved {
			t.Fatalf("call %s: %d turns, outcome %q; want %d, resolved", got.ID, len(got.Turns), got.Outcome, turns)
		}
		for i, turn := range got.Turns {
			if turn.Seq != i || turn.Signals == nil || turn.Signals.Repeats != i {
				t.Fatalf("call %s turn %d = %+v", got.ID, i, turn)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	want := parley.Call{ID: "CA-keep", Channel: parley.ChannelTwilio, From: "+1", To: "+2", StartedAt: start,
		EndedAt: start.Add(time.Minute), Outcome: parley.OutcomeResolved, Reason: "bye",
		Turns: []parley.Turn{{CallID: "CA-keep", Seq: 0, Speaker: parley.SpeakerCaller, Text: "my card was stolen",
			Start: start, End: start.Add(time.Second), Signals: &parley.Signals{Intent: "card_stolen", ASRConfidence: 0.75}}}}
	if err := s.CreateCall(ctx, parley.Call{ID: want.ID, Channel: want.Channel, From: want.From, To: want.To, StartedAt: start}); err != nil {
		t.Fatalf("CreateCall: %v", err)
	}
	if err := s.AppendTurn(ctx, want.Turns[0]); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	if err := s.AppendEvent(ctx, parley.Event{CallID: want.ID, At: start, Kind: "decision", Data: []byte(`{"stay":true}`)}); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	if err := s.EndCall(ctx, want.ID, want.EndedAt, want.Outcome, want.Reason); err != nil {
		t.Fatalf("EndCall: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GetCall(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetCall after reopen: %v", err)
	}
	if got.Outcome != want.Outcome || !got.EndedAt.Equal(want.EndedAt) || len(got.Turns) != 1 ||
		got.Turns[0].Text != want.Turns[0].Text || *got.Turns[0].Signals != *want.Turns[0].Signals {
		t.Fatalf("after reopen got %+v, want %+v", got, want)
	}
	evs, err := s.Events(ctx, want.ID)
	if err != nil || len(evs) != 1 || evs[0].Kind != "decision" {
		t.Fatalf("Events after reopen = %+v, %v", evs, err)
	}
	// The full-text index survived too.
	found, err := s.ListCalls(ctx, parley.CallQuery{Text: "stolen card"})
	if err != nil || len(found) != 1 || found[0].ID != want.ID {
		t.Fatalf("ListCalls(text) after reopen = %+v, %v", found, err)
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	for range 3 {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	var n, newest int
	if err := s.read.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if n != len(ms) || newest != ms[len(ms)-1].Version {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d up to %d", n, newest, len(ms), ms[len(ms)-1].Version)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.write.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded, want an error")
	}
}

// TestConcurrentOpen starts several stores on one new file at once, as two
// parley processes might: the migration runs once and every Open succeeds.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(path)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	// A write through one is visible through every other.
	ctx := context.Background()
	if err := stores[0].CreateCall(ctx, parley.Call{ID: "CA-x", Channel: parley.ChannelTwilio, StartedAt: time.Now()}); err != nil {
		t.Fatalf("CreateCall: %v", err)
	}
	for i, s := range stores {
		if _, err := s.GetCall(ctx, "CA-x"); err != nil {
			t.Errorf("store %d: GetCall: %v", i, err)
		}
	}
}

func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{"nested new directory", filepath.Join(dir, "a", "b", "parley.db"), false},
		{"uri characters in name", filepath.Join(dir, "odd ?name#1%20.db"), false},
		{"empty", "", true},
		{"a directory", dir, true},
		{"under a file", filepath.Join(dir, "file", "parley.db"), true},
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path)
			if tc.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tc.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.path, err)
			}
			defer s.Close()
			if _, err := os.Stat(tc.path); err != nil {
				t.Fatalf("database file not at %q: %v", tc.path, err)
			}
			var mode string
			if err := s.read.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
		})
	}
}

// TestReadersCannotWrite guards the split between the one writer and the
// read pool: a write slipped onto a reader must fail, not race the writer.
func TestReadersCannotWrite(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if _, err := s.read.Exec(`INSERT INTO calls (id, channel, started_at) VALUES ('x', 'twilio', 0)`); err == nil {
		t.Fatal("insert through a reader connection succeeded, want query_only error")
	}
	var fk int
	if err := s.write.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

// BenchmarkTurns: go test -run '^$' -bench Turns -benchmem ./store/sqlite/
func BenchmarkTurns(b *testing.B) {
	storetest.Benchmarks(b, func(b *testing.B) parley.Store {
		s, err := Open(filepath.Join(b.TempDir(), "parley.db"))
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestQueryPlansUseIndexes guards the schema: every query shape the store
// runs must be answered from an index, not by scanning a table.
func TestQueryPlansUseIndexes(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	tests := []struct {
		name  string
		query string
		want  []string // each must appear in the plan
	}{
		{"newest first", `SELECT id FROM calls ORDER BY started_at DESC, id DESC LIMIT 10`, []string{"calls_started"}},
		{"by number", `SELECT id FROM calls WHERE (from_number = 'a' OR to_number = 'a') ORDER BY started_at DESC LIMIT 10`,
			[]string{"calls_from", "calls_to"}},
		{"by outcome", `SELECT id FROM calls WHERE outcome = 'escalated' ORDER BY started_at DESC LIMIT 10`, []string{"calls_outcome"}},
		{"by word", `SELECT id FROM calls WHERE id IN (SELECT turns.call_id FROM turns_fts
			JOIN turns ON turns.id = turns_fts.rowid WHERE turns_fts MATCH '"card"')`, []string{"turns_fts VIRTUAL TABLE", "INTEGER PRIMARY KEY"}},
		{"turns of a call", `SELECT seq FROM turns WHERE call_id = 'x' ORDER BY seq`, []string{"sqlite_autoindex_turns_1"}},
		{"events of a call", `SELECT at FROM events WHERE call_id = 'x' ORDER BY at, id`, []string{"events_call_at"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.read.Query("EXPLAIN QUERY PLAN " + tc.query)
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatalf("explain: %v", err)
				}
				plan = append(plan, detail)
			}
			text := strings.Join(plan, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("plan does not mention %q:\n%s", w, text)
				}
			}
			for _, line := range plan {
				switch line {
				case "SCAN calls", "SCAN turns", "SCAN events":
					t.Errorf("plan scans a table (%s):\n%s", line, text)
				}
			}
		})
	}
}
