package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/redact"
)

func TestLogWriterZerolog(t *testing.T) {
	r := redact.New(redact.Policy{})
	var buf bytes.Buffer
	log := zerolog.New(r.LogWriter(&buf))

	log.Info().Str("call_id", "CA0123456789abcdef0123456789abcdef").
		Str("text", "my card is 4111 1111 1111 1111").
		Str("multi", "line one\n4111111111111111\t\"quoted\"").
		Str("4111111111111111", "key kept").
		Int64("amount", 4111111111111111).
		Strs("list", []string{"cvv 123", "fine"}).
		Msg("caller said jane.doe@example.com")

	line := buf.Bytes()
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("redacted line is not JSON: %v\n%s", err, line)
	}
	want := map[string]any{
		"level":            "info",
		"call_id":          "CA0123456789abcdef0123456789abcdef",
		"text":             "my card is [card ••••1111]",
		"multi":            "line one\n[card ••••1111]\t\"quoted\"",
		"4111111111111111": "key kept",
		"amount":           float64(4111111111111111), // numbers are not strings and are kept
		"list":             []any{"cvv [cvv]", "fine"},
		"message":          "caller said [email]",
	}
	for k, v := range want {
		g, _ := json.Marshal(got[k])
		w, _ := json.Marshal(v)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
	if !bytes.HasSuffix(line, []byte("}\n")) {
		t.Errorf("line ending lost: %q", line)
	}
}

func TestLogWriterLines(t *testing.T) {
	r := redact.New(redact.Policy{})
	tests := []struct {
		name, in, want string
	}{
		{"unchanged json", `{"level":"info","message":"hello at 10:30"}` + "\n", `{"level":"info","message":"hello at 10:30"}` + "\n"},
		{"plain text", "12:00 INF card 4111111111111111 taken\n", "12:00 INF card [card ••••1111] taken\n"},
		{"two lines", `{"a":"pin 1234"}` + "\n" + `{"b":"ok"}` + "\n" + "ssn 123-45-6789\n",
			`{"a":"pin [pin]"}` + "\n" + `{"b":"ok"}` + "\n" + "ssn [ssn]\n"},
		{"no trailing newline", `{"a":"4111111111111111"}`, `{"a":"[card ••••1111]"}`},
		{"escaped unicode", `{"a":"caf\u00e9 4111111111111111"}`, `{"a":"café [card ••••1111]"}`},
		{"escaped surrogates", `{"a":"\ud83d\ude00 pin 1234"}`, `{"a":"😀 pin [pin]"}`},
		{"escape splits a number", `{"a":"4111111\u0031` + "11111111" + `"}`, `{"a":"[card ••••1111]"}`},
		{"bad escape is text", `{"a":"x\q 4111111111111111"}`, `{"a":"x\q [card ••••1111]"}`},
		{"unterminated", `{"a":"4111111111111111`, `{"a":"4111111111111111`},
		{"key with space before colon", `{"k" : "v 4111111111111111"}`, `{"k" : "v [card ••••1111]"}`},
		{"nested", `{"o":{"p":"cvv 999"},"arr":["4111111111111111",1]}`, `{"o":{"p":"cvv [cvv]"},"arr":["[card ••••1111]",1]}`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := r.LogWriter(&buf)
			n, err := w.Write([]byte(tt.in))
			if err != nil || n != len(tt.in) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tt.in))
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

type levelRecorder struct {
	bytes.Buffer
	levels []zerolog.Level
}

func (l *levelRecorder) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	l.levels = append(l.levels, level)
	return l.Write(p)
}

func TestLogWriterKeepsLevelWriter(t *testing.T) {
	r := redact.New(redact.Policy{})
	rec := &levelRecorder{}
	w := r.LogWriter(rec)
	if _, ok := w.(zerolog.LevelWriter); !ok {
		t.Fatal("LogWriter over a LevelWriter is not a LevelWriter")
	}
	log := zerolog.New(w)
	log.Warn().Str("x", "pin 1234").Send()
	log.Error().Str("x", "fine").Send()
	if len(rec.levels) != 2 || rec.levels[0] != zerolog.WarnLevel || rec.levels[1] != zerolog.ErrorLevel {
		t.Errorf("levels = %v", rec.levels)
	}
	if got := rec.String(); !strings.Contains(got, `"x":"pin [pin]"`) || !strings.Contains(got, `"x":"fine"`) {
		t.Errorf("output %q", got)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestLogWriterError(t *testing.T) {
	boom := errors.New("disk full")
	w := redact.New(redact.Policy{}).LogWriter(failWriter{boom})
	for _, in := range []string{`{"a":"pin 1234"}`, `{"a":"ok"}`} {
		if _, err := w.Write([]byte(in)); !errors.Is(err, boom) {
			t.Errorf("Write(%s) error = %v", in, err)
		}
	}
}

func TestLogWriterNoAllocWithoutMatch(t *testing.T) {
	w := redact.New(redact.Policy{}).LogWriter(discard{})
	line := []byte(`{"level":"info","call_id":"CA0123456789abcdef","turn":3,"text":"I'd like to pay my bill at 10:30","time":"2026-11-25T07:37:04Z"}` + "\n")
	long := []byte(`{"level":"info","text":"` + strings.Repeat("a quiet line at 10:30 ", 300) + `"}` + "\n")
	for _, l := range [][]byte{line, long} {
		allocs := testing.AllocsPerRun(200, func() { _, _ = w.Write(l) })
		if allocs > 0.1 { // sync.Pool may be emptied by a GC during the run
			t.Errorf("Write allocated %.2f times per clean %d-byte line", allocs, len(l))
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
