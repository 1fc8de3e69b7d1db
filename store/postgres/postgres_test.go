package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// defaultTestURL is the server the test command starts when
// PARLEY_TEST_POSTGRES_URL is not set.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func adminURL() string {
	if u := os.Getenv("PARLEY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultTestURL
}

// freshDatabase creates an empty database for one test and drops it when
// the test ends; it returns the URL of the new database. A server that
// cannot be reached fails the test: these tests must never pass unrun.
func freshDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := adminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres tests need a server: cannot connect to %s (set PARLEY_TEST_POSTGRES_URL): %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "parley_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase points a postgres:// URL or a key=value string at database name.
func withDatabase(t testing.TB, conn, name string) string {
	t.Helper()
	if !strings.Contains(conn, "://") {
		return conn + " dbname=" + name
	}
	u, err := url.Parse(conn)
	if err != nil {
		t.Fatalf("PARLEY_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(conn string) string {
	if u, err := url.Parse(conn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return conn
}

func openFresh(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), freshDatabase(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Contract(t, func(t *testing.T) parley.Store { return openFresh(t) })
}

func TestUserContract(t *testing.T) {
	storetest.UserContract(t, func(t *testing.T) storetest.UserBackend { return openFresh(t) })
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dbURL := freshDatabase(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	if err := s.CreateCall(ctx, parley.Call{ID: "CA-keep", Channel: parley.ChannelTwilio, StartedAt: start}); err != nil {
		t.Fatalf("CreateCall: %v", err)
	}
	if err := s.AppendTurn(ctx, parley.Turn{CallID: "CA-keep", Seq: 0, Speaker: parley.SpeakerCaller, Text: "my card was stolen"}); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	found, err := s.ListCalls(ctx, parley.CallQuery{Text: "stolen card"})
	if err != nil || len(found) != 1 || found[0].ID != "CA-keep" || !found[0].StartedAt.Equal(start) {
		t.Fatalf("ListCalls after reopen = %+v, %v", found, err)
	}
}

// TestConcurrentOpen starts several stores on one new database at once, as
// parley nodes starting together do: every Open succeeds and each
// migration is recorded exactly once.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	dbURL := freshDatabase(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, dbURL)
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
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	var count, newest int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&count, &newest); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if count != len(ms) || newest != ms[len(ms)-1].Version {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d up to %d", count, newest, len(ms), ms[len(ms)-1].Version)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dbURL := freshDatabase(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')`)
	s.Close()
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	if s, err := Open(ctx, dbURL); err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded, want an error")
	} else if !strings.Contains(err.Error(), "9999") {
		t.Fatalf("Open error %q does not name the unknown version", err)
	}
}

func TestOpenErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		url    string
		hidden string // must not appear in the error
	}{
		{"unparsable", context.Background(), "postgres://user:s3cret@host:notaport/db", "s3cret"},
		{"nobody listening", context.Background(), "postgres://postgres:s3cret@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5", "s3cret"},
		{"cancelled context", canceled, adminURL(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.ctx, tc.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded, want an error", redact(tc.url))
			}
			if tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
				t.Fatalf("Open error %q reveals the password", err)
			}
		})
	}
}

// TestTextSearchUsesIndex guards the schema: the word search must be able
// to use the GIN index rather than scan every turn.
func TestTextSearchUsesIndex(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	defer s.Close()
	// With sequential scans off, the planner must find the index; an
	// empty table would otherwise always get a sequential scan.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatalf("set: %v", err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN SELECT call_id FROM turns WHERE text_search @@ plainto_tsquery('english', 'stolen')`)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "turns_text_search") {
		t.Fatalf("text search plan does not use turns_text_search:\n%s", strings.Join(plan, "\n"))
	}
}

// BenchmarkTurns: go test -run '^$' -bench Turns -benchmem ./store/postgres/
func BenchmarkTurns(b *testing.B) {
	storetest.Benchmarks(b, func(b *testing.B) parley.Store { return openFresh(b) })
}
