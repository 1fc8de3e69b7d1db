package store

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSearchTerms(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"stolen card", []string{"stolen", "card"}},
		{"My card was STOLEN!", []string{"card", "stolen"}},
		{`"card" OR NOT -stolen* NEAR(x) & | !`, []string{"card", "stolen", "near", "x"}},
		{"card, card; CARD", []string{"card"}},
		{"the my was", nil},
		{"", nil},
		{"  ...  ", nil},
		{"PIN 1234 isn't working", []string{"pin", "1234", "isn", "working"}},
		{"Überweisung — 你好", []string{"überweisung", "你好"}},
		{"e-mail", []string{"e", "mail"}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			if got := SearchTerms(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SearchTerms(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestPage(t *testing.T) {
	tests := []struct {
		limit, offset, wantLimit, wantOffset int
	}{
		{0, 0, DefaultLimit, 0},
		{-5, -5, DefaultLimit, 0},
		{1, 7, 1, 7},
		{5000, 0, 5000, 0},
	}
	for _, tc := range tests {
		l, o := Page(parley.CallQuery{Limit: tc.limit, Offset: tc.offset})
		if l != tc.wantLimit || o != tc.wantOffset {
			t.Errorf("Page(limit %d, offset %d) = %d, %d; want %d, %d", tc.limit, tc.offset, l, o, tc.wantLimit, tc.wantOffset)
		}
	}
}

func TestMillis(t *testing.T) {
	pst := time.FixedZone("PST", -8*3600)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero stays zero", time.Time{}, time.Time{}},
		{"sub-millisecond dropped", time.Date(2026, 1, 1, 0, 0, 0, 1_999_999, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 1_000_000, time.UTC)},
		{"zone becomes UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, pst), time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Millis(tc.in)
			if !got.Equal(tc.want) || got.Location() != tc.want.Location() {
				t.Fatalf("Millis(%v) = %v, want %v", tc.in, got, tc.want)
			}
			// The backends store unix milliseconds; both must agree.
			if !tc.in.IsZero() && !got.Equal(time.UnixMilli(tc.in.UnixMilli())) {
				t.Fatalf("Millis(%v) = %v disagrees with UnixMilli %v", tc.in, got, time.UnixMilli(tc.in.UnixMilli()))
			}
		})
	}
}

func TestChecks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"call ok", CheckCall(parley.Call{ID: "a", StartedAt: now}), true},
		{"call without id", CheckCall(parley.Call{StartedAt: now}), false},
		{"call without start", CheckCall(parley.Call{ID: "a"}), false},
		{"call with its turns", CheckCall(parley.Call{ID: "a", StartedAt: now, Turns: []parley.Turn{{Seq: 0, Speaker: "ai"}, {CallID: "a", Seq: 1, Speaker: "caller"}}}), true},
		{"call with a foreign turn", CheckCall(parley.Call{ID: "a", StartedAt: now, Turns: []parley.Turn{{CallID: "b", Speaker: "ai"}}}), false},
		{"call with a bad turn", CheckCall(parley.Call{ID: "a", StartedAt: now, Turns: []parley.Turn{{Seq: 0}}}), false},
		{"turn ok", CheckTurn(parley.Turn{CallID: "a", Speaker: "ai"}), true},
		{"turn without call", CheckTurn(parley.Turn{Speaker: "ai"}), false},
		{"turn with negative seq", CheckTurn(parley.Turn{CallID: "a", Seq: -1, Speaker: "ai"}), false},
		{"turn without speaker", CheckTurn(parley.Turn{CallID: "a"}), false},
		{"event ok", CheckEvent(parley.Event{CallID: "a", At: now, Kind: "status", Data: json.RawMessage(`{"a":1}`)}), true},
		{"event without data", CheckEvent(parley.Event{CallID: "a", At: now, Kind: "status"}), true},
		{"event without call", CheckEvent(parley.Event{At: now, Kind: "status"}), false},
		{"event without kind", CheckEvent(parley.Event{CallID: "a", At: now}), false},
		{"event without time", CheckEvent(parley.Event{CallID: "a", Kind: "status"}), false},
		{"event with bad JSON", CheckEvent(parley.Event{CallID: "a", At: now, Kind: "status", Data: json.RawMessage(`{`)}), false},
	}
	for _, tc := range tests {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%t", tc.name, tc.err, tc.ok)
		}
	}
}

func TestSignalsRoundTrip(t *testing.T) {
	tests := []*parley.Signals{
		nil,
		{},
		{Intent: "card_stolen", ASRConfidence: 0.1, NLUConfidence: 1, OutOfScope: true, AskedForHuman: true,
			Frustration: 0.3333333333333333, Repeats: 3, HumanOnly: true, ProviderFailure: true, AITime: 90*time.Second + 1},
	}
	for _, in := range tests {
		b, err := EncodeSignals(in)
		if err != nil {
			t.Fatalf("EncodeSignals(%+v): %v", in, err)
		}
		if in == nil && b != nil {
			t.Fatalf("EncodeSignals(nil) = %s, want nil (SQL NULL)", b)
		}
		out, err := DecodeSignals(b)
		if err != nil {
			t.Fatalf("DecodeSignals(%s): %v", b, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("signals round trip: got %+v, want %+v", out, in)
		}
	}
	if _, err := DecodeSignals([]byte(`{"repeats":"many"}`)); err == nil {
		t.Fatal("DecodeSignals of a wrong type succeeded")
	}
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []Migration
		wantErr string
	}{
		{"sorted by version, other files ignored", fstest.MapFS{
			"m/0010_later.sql":   {Data: []byte("B;")},
			"m/0002_second.sql":  {Data: []byte("A;")},
			"m/README.md":        {Data: []byte("not sql")},
			"m/sub/0003_x.sql":   {Data: []byte("nested dirs are not read")},
			"m/0001_first_x.sql": {Data: []byte("create table t (x int);")},
		}, []Migration{{1, "first_x", "create table t (x int);"}, {2, "second", "A;"}, {10, "later", "B;"}}, ""},
		{"duplicate version", fstest.MapFS{"m/0001_a.sql": {Data: []byte("A;")}, "m/1_b.sql": {Data: []byte("B;")}}, nil, "share version 1"},
		{"no number", fstest.MapFS{"m/init.sql": {Data: []byte("A;")}}, nil, "0001_what.sql"},
		{"bad number", fstest.MapFS{"m/x1_init.sql": {Data: []byte("A;")}}, nil, "not a positive number"},
		{"zero", fstest.MapFS{"m/0000_init.sql": {Data: []byte("A;")}}, nil, "not a positive number"},
		{"negative", fstest.MapFS{"m/-1_init.sql": {Data: []byte("A;")}}, nil, "not a positive number"},
		{"no name", fstest.MapFS{"m/0001_.sql": {Data: []byte("A;")}}, nil, "0001_what.sql"},
		{"empty file", fstest.MapFS{"m/0001_init.sql": {Data: []byte(" \n\t")}}, nil, "empty"},
		{"no migrations", fstest.MapFS{"m/README.md": {Data: []byte("x")}}, nil, "no .sql files"},
		{"no directory", fstest.MapFS{}, nil, "read m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadMigrations(tc.files, "m")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadMigrations error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadMigrations: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("LoadMigrations = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 5}}
	tests := []struct {
		name    string
		applied map[int]bool
		want    []int
		wantErr bool
	}{
		{"new database", nil, []int{1, 2, 5}, false},
		{"partly applied", map[int]bool{1: true}, []int{2, 5}, false},
		{"a gap is filled", map[int]bool{1: true, 5: true}, []int{2}, false},
		{"up to date", map[int]bool{1: true, 2: true, 5: true}, nil, false},
		{"newer database", map[int]bool{1: true, 2: true, 5: true, 6: true}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Pending(ms, tc.applied)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Pending error = %v, wantErr %t", err, tc.wantErr)
			}
			var versions []int
			for _, m := range got {
				versions = append(versions, m.Version)
			}
			if !reflect.DeepEqual(versions, tc.want) {
				t.Fatalf("Pending = %v, want %v", versions, tc.want)
			}
		})
	}
}
