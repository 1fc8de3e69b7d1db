package redact_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/parley-ai/parley/redact"
)

var fuzzSeeds = []string{
	"my card is 4111 1111 1111 1111 thanks",
	"4111-1111-1111-1111",
	"x1234 4111 1111 1111 1111 5678",
	"12 4111 1111 1111 1111 35",
	"+1 4111111111111111",
	"(555) 4111111111111111",
	"2024-05-12 4111111111111111.5",
	"$4111111111111111",
	"four one one one one one one one one one one one one one one one",
	"five five double oh double oh double oh double oh double oh double oh oh four",
	"security code one two three, PIN 1234, SSN 123-45-6789",
	"GB82 WEST 1234 5698 7654 32",
	"jane dot doe at example dot com or jane@example.com",
	"QQ 12 34 56 C",
	"$1,234.56 at 10:30 on 2024-05-12",
	"CA0123456789abcdef0123456789abcdef",
	"@@@ 1-1-1-1-1-1-1-1-1-1-1-1-1-1 @",
	"a@4111111111111111.com",
	"",
}

// luhnRun reports whether s holds a run of whole digit groups, joined by
// single spaces or dashes, of 13–19 digits that passes the Luhn check —
// what a card number looks like whatever its grouping.
func luhnRun(s string) (string, bool) {
	type group struct{ start, end int }
	var chain []group
	check := func() (string, bool) {
		for i := range chain {
			var digits []byte
			for j := i; j < len(chain); j++ {
				digits = append(digits, s[chain[j].start:chain[j].end]...)
				if len(digits) > 19 {
					break
				}
				if len(digits) >= 13 && luhnOK(digits) {
					return s[chain[i].start:chain[j].end], true
				}
			}
		}
		return "", false
	}
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if len(chain) > 0 && !(i-chain[len(chain)-1].end == 1 && (s[i-1] == ' ' || s[i-1] == '-')) {
			if run, ok := check(); ok {
				return run, true
			}
			chain = chain[:0]
		}
		chain = append(chain, group{i, j})
		i = j
	}
	return check()
}

func luhnOK(d []byte) bool {
	sum := 0
	for i := range d {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

func TestLuhnRunOracle(t *testing.T) {
	for in, want := range map[string]bool{
		"4111111111111111": true, "4111 1111 1111 1111": true, "x1234 4111 1111 1111 1111": true,
		"4111111111111112": false, "4111  1111 1111 1111": false, "[card ••••1111]": false, "411111111111111": false,
	} {
		if _, got := luhnRun(in); got != want {
			t.Errorf("luhnRun(%q) = %v", in, got)
		}
	}
}

// FuzzRedact checks that redaction never panics, keeps text valid UTF-8
// when it was, and never lets a card number through — with the default
// policy and with NationalIDs off (where only the card rules stand).
func FuzzRedact(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	noIDs := redact.DefaultPolicy()
	noIDs.NationalIDs = false
	redactors := []*redact.Redactor{redact.New(redact.Policy{}), redact.New(noIDs)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range redactors {
			out := r.String(s)
			if run, ok := luhnRun(out); ok {
				t.Fatalf("card number %q survived:\n in %q\nout %q", run, s, out)
			}
			if utf8.ValidString(s) && !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of valid input %q: %q", s, out)
			}
		}
	})
}

// FuzzLogWriter checks that a valid JSON log line stays valid JSON, keeps
// its keys, and loses its card numbers.
func FuzzLogWriter(f *testing.F) {
	for _, s := range fuzzSeeds {
		line, _ := json.Marshal(map[string]string{"message": s, "call_id": "CA1"})
		f.Add(string(line))
	}
	f.Add(`{"a":"4111111\u0031` + "11111111" + `","b":[1,"x\n4111111111111111"]}`)
	r := redact.New(redact.Policy{})
	f.Fuzz(func(t *testing.T, line string) {
		var buf bytes.Buffer
		if _, err := r.LogWriter(&buf).Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if !json.Valid([]byte(line)) {
			return
		}
		var in any
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			return
		}
		if _, ok := in.(map[string]any); !ok {
			return
		}
		var out map[string]any
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			t.Fatalf("valid JSON became invalid:\n in %s\nout %s", line, buf.Bytes())
		}
		if len(out) != len(in.(map[string]any)) {
			t.Fatalf("keys changed:\n in %s\nout %s", line, buf.Bytes())
		}
		for _, v := range out {
			if s, ok := v.(string); ok {
				if run, found := luhnRun(s); found {
					t.Fatalf("card number %q survived in %s", run, buf.Bytes())
				}
			}
		}
	})
}
