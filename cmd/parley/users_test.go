package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/sqlite"
	"github.com/parley-ai/parley/web/api"
	"github.com/parley-ai/parley/web/auth"
)

// testCLI runs the account and history commands against dataDir with
// stdin as their input, capturing what they print.
type testCLI struct {
	dataDir        string
	stdout, stderr bytes.Buffer
}

func (tc *testCLI) cli(stdin string) cli {
	tc.stdout.Reset()
	tc.stderr.Reset()
	env := map[string]string{"PARLEY_DATA_DIR": tc.dataDir}
	return cli{stdin: strings.NewReader(stdin), getenv: func(k string) string { return env[k] }, stdout: &tc.stdout, stderr: &tc.stderr}
}

func (tc *testCLI) open(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(tc.dataDir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestUsersCommands(t *testing.T) {
	ctx := context.Background()
	tc := &testCLI{dataDir: t.TempDir()}
	steps := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string // "" for success
		wantOut string
	}{
		{"add agent", []string{"add", "alice", "--role", "agent", "--skills", "cards, payments,", "--password-stdin"}, "alice's password\n", "", "added agent alice (u_"},
		{"flags first, stdin not a terminal", []string{"add", "--role=supervisor", "sam"}, "sam's password 1", "", "added supervisor sam"},
		{"duplicate", []string{"add", "alice", "--role", "admin", "--password-stdin"}, "another password\n", "already exists", ""},
		{"bad role", []string{"add", "bob", "--role", "root", "--password-stdin"}, "bob's password\n", "--role", ""},
		{"no role", []string{"add", "bob", "--password-stdin"}, "bob's password\n", "--role", ""},
		{"short password", []string{"add", "bob", "--role", "agent", "--password-stdin"}, "short\n", "shorter than", ""},
		{"no password", []string{"add", "bob", "--role", "agent", "--password-stdin"}, "", "no input", ""},
		{"bad name", []string{"add", "bob smith", "--role", "agent", "--password-stdin"}, "bob's password\n", "spaces", ""},
		{"two names", []string{"add", "bob", "carol", "--role", "agent"}, "", "exactly one NAME", ""},
		{"list", []string{"list"}, "", "", "alice  agent       cards,payments"},
		{"remove", []string{"remove", "alice"}, "", "", "removed alice"},
		{"remove again", []string{"remove", "alice"}, "", `no user called "alice"`, ""},
		{"unknown subcommand", []string{"rename"}, "", "unknown subcommand", ""},
	}
	for _, s := range steps {
		err := tc.cli(s.stdin).users(ctx, s.args)
		if s.wantErr == "" && err != nil {
			t.Fatalf("%s: users %q = %v (stderr %s)", s.name, s.args, err, tc.stderr.String())
		}
		if s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: users %q = %v, want an error mentioning %q", s.name, s.args, err, s.wantErr)
		}
		if !strings.Contains(tc.stdout.String(), s.wantOut) {
			t.Fatalf("%s: output %q does not contain %q", s.name, tc.stdout.String(), s.wantOut)
		}
		if s.name == "add agent" {
			// What was stored: the skills, and a hash the password verifies against.
			st := tc.open(t)
			u, err := st.UserByName(ctx, "alice")
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			if u.Role != parley.RoleAgent || strings.Join(u.Skills, ",") != "cards,payments" ||
				!strings.HasPrefix(u.PasswordHash, "$argon2id$") || !auth.VerifyPassword(u.PasswordHash, "alice's password") {
				t.Fatalf("stored user = %+v", u)
			}
		}
	}
	if err := tc.cli("").users(ctx, []string{"list", "--json"}); err != nil {
		t.Fatal(err)
	}
	var users []parley.User
	sc := bufio.NewScanner(&tc.stdout)
	for sc.Scan() {
		var u parley.User
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			t.Fatalf("list --json line %q: %v", sc.Text(), err)
		}
		users = append(users, u)
	}
	if len(users) != 1 || users[0].Name != "sam" || users[0].Role != parley.RoleSupervisor || users[0].PasswordHash != "" {
		t.Fatalf("users after removing alice = %+v", users)
	}
}

// seedCalls stores three calls of 14 March 2026, two of them with +15550001,
// and one of the 16th.
func seedCalls(t *testing.T, st parley.Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	calls := []parley.Call{
		{ID: "CA-1", Channel: parley.ChannelTwilio, From: "+15550001", To: "+15559999", StartedAt: t0},
		{ID: "CA-2", Channel: parley.ChannelTwilio, From: "+15550002", To: "+15559999", StartedAt: t0.Add(time.Hour)},
		{ID: "CA-3", Channel: parley.ChannelTwilio, From: "+15559999", To: "+15550001", StartedAt: t0.Add(2 * time.Hour)},
		{ID: "CA-4", Channel: parley.ChannelTwilio, From: "+15550003", To: "+15559999", StartedAt: t0.Add(48 * time.Hour)},
	}
	for _, c := range calls {
		c.Turns = []parley.Turn{
			{Seq: 0, Speaker: parley.SpeakerAI, Text: "How can I help?", Start: c.StartedAt},
			{Seq: 1, Speaker: parley.SpeakerCaller, Text: "My card " + c.ID, Start: c.StartedAt.Add(2 * time.Second),
				EndOfSpeech: c.StartedAt.Add(3 * time.Second), FirstAudio: c.StartedAt.Add(3800 * time.Millisecond)},
		}
		if err := st.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendEvent(ctx, parley.Event{CallID: c.ID, At: c.StartedAt.Add(4 * time.Second), Kind: "decision",
			Data: json.RawMessage(`{"action":"stay","reasons":[]}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

func readExport(t *testing.T, b []byte) []api.CallDetail {
	t.Helper()
	var out []api.CallDetail
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var d api.CallDetail
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, d)
	}
	return out
}

func exportIDs(ds []api.CallDetail) string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.Call.ID)
	}
	return strings.Join(ids, ",")
}

func TestCallsExport(t *testing.T) {
	ctx := context.Background()
	tc := &testCLI{dataDir: t.TempDir()}
	st := tc.open(t)
	seedCalls(t, st)
	st.Close()

	out := filepath.Join(tc.dataDir, "march.jsonl")
	if err := tc.cli("").calls(ctx, []string{"export", "--from", "2026-03-14", "--to", "2026-03-14", "-o", out}); err != nil {
		t.Fatalf("export: %v (%s)", err, tc.stderr.String())
	}
	if !strings.Contains(tc.stderr.String(), "exported 3 calls") {
		t.Fatalf("export said %q", tc.stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, want 0600: it holds caller data", fi.Mode().Perm())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ds := readExport(t, b)
	if got := exportIDs(ds); got != "CA-3,CA-2,CA-1" {
		t.Fatalf("exported %s, want CA-3,CA-2,CA-1", got)
	}
	d := ds[2]
	if len(d.Turns) != 2 || d.Turns[1].Text != "My card CA-1" || d.Turns[1].LatencyMS == nil || *d.Turns[1].LatencyMS != 800 ||
		len(d.Events) != 1 || d.Events[0].Kind != "decision" || !strings.Contains(string(d.Events[0].Data), `"action":"stay"`) {
		t.Fatalf("exported call = %+v", d)
	}

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"export"}, "CA-4,CA-3,CA-2,CA-1"},
		{[]string{"export", "--from", "2026-03-15"}, "CA-4"},
		{[]string{"export", "--to", "2026-03-14T10:00:00Z"}, "CA-1"},
		{[]string{"export", "--from", "2027-01-01", "--to", "2027-01-02"}, ""},
	}
	for _, tt := range tests {
		if err := tc.cli("").calls(ctx, tt.args); err != nil {
			t.Fatalf("calls %q: %v", tt.args, err)
		}
		if got := exportIDs(readExport(t, tc.stdout.Bytes())); got != tt.want {
			t.Fatalf("calls %q exported %q, want %q", tt.args, got, tt.want)
		}
	}
	for _, bad := range [][]string{
		{"export", "--from", "March"},
		{"export", "--from", "2026-03-15", "--to", "2026-03-13"},
		{"export", "extra"},
		{"export", "-o", filepath.Join(tc.dataDir, "no", "such", "dir", "x.jsonl")},
	} {
		if err := tc.cli("").calls(ctx, bad); err == nil {
			t.Errorf("calls %q = nil, want an error", bad)
		}
	}
}

func TestCallsForget(t *testing.T) {
	ctx := context.Background()
	tc := &testCLI{dataDir: t.TempDir()}
	st := tc.open(t)
	seedCalls(t, st)
	st.Close()

	// Not confirmed: nothing goes.
	err := tc.cli("no\n").calls(ctx, []string{"forget", "+15550001"})
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("forget answered no = %v, want not confirmed", err)
	}
	if !strings.Contains(tc.stderr.String(), "Delete 2 calls from or to +15550001") {
		t.Fatalf("confirmation question %q does not say what goes", tc.stderr.String())
	}
	if err := tc.cli("").calls(ctx, []string{"forget", "+15550001"}); err == nil {
		t.Fatal("forget with no answer = nil, want an error")
	}
	st = tc.open(t)
	if _, err := st.GetCall(ctx, "CA-1"); err != nil {
		st.Close()
		t.Fatalf("unconfirmed forget deleted CA-1: %v", err)
	}
	st.Close()

	if err := tc.cli("yes\n").calls(ctx, []string{"forget", "+15550001"}); err != nil {
		t.Fatalf("forget: %v", err)
	}
	if !strings.Contains(tc.stdout.String(), "deleted 2 calls") {
		t.Fatalf("forget said %q", tc.stdout.String())
	}
	if err := tc.cli("").calls(ctx, []string{"forget", "--yes", "+15550002"}); err != nil {
		t.Fatalf("forget --yes: %v", err)
	}
	if err := tc.cli("").calls(ctx, []string{"forget", "+15550001"}); err != nil || !strings.Contains(tc.stdout.String(), "no calls") {
		t.Fatalf("forget of a forgotten number = %v, %q", err, tc.stdout.String())
	}
	st = tc.open(t)
	defer st.Close()
	for id, gone := range map[string]bool{"CA-1": true, "CA-2": true, "CA-3": true, "CA-4": false} {
		_, err := st.GetCall(ctx, id)
		if gone != errors.Is(err, parley.ErrNotFound) {
			t.Errorf("%s: gone=%v but GetCall = %v", id, gone, err)
		}
	}
	for _, bad := range [][]string{{"forget"}, {"forget", "a", "b"}} {
		if err := tc.cli("").calls(ctx, bad); err == nil {
			t.Errorf("calls %q = nil, want an error", bad)
		}
	}
}
