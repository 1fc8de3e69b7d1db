package openai

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSentenceSplitter(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		want   []string
	}{
		{"plain", []string{"Hello there. How are you?"}, []string{"Hello there.", "How are you?"}},
		{"streamed in tiny pieces", []string{"Hel", "lo", ".", " ", "Bye", "!"}, []string{"Hello.", "Bye!"}},
		{"decimal split across deltas", []string{"It costs 3", ".", "50 dollars. Okay."}, []string{"It costs 3.50 dollars.", "Okay."}},
		{"money", []string{"Your balance is $1,234.56 today. Anything else?"}, []string{"Your balance is $1,234.56 today.", "Anything else?"}},
		{"title", []string{"Dr. Smith will call. Mr. Jones too."}, []string{"Dr. Smith will call.", "Mr. Jones too."}},
		{"dotted abbreviation", []string{"Open 9 a.m. to 5 p.m. on weekdays. Thanks."}, []string{"Open 9 a.m. to 5 p.m. on weekdays.", "Thanks."}},
		{"time ends a sentence", []string{"We close at 5 p.m. Anything else?"}, []string{"We close at 5 p.m.", "Anything else?"}},
		{"U.S. inside", []string{"Call the U.S. Office today."}, []string{"Call the U.S. Office today."}},
		{"e.g.", []string{"Bring an ID, e.g. a passport. Then come in."}, []string{"Bring an ID, e.g. a passport.", "Then come in."}},
		{"initial", []string{"Ask for J. Smith at the desk. Thanks."}, []string{"Ask for J. Smith at the desk.", "Thanks."}},
		{"lower-case continues", []string{"See section 4. then sign. Done."}, []string{"See section 4. then sign.", "Done."}},
		{"quotes kept", []string{`He said "yes." Then left.`}, []string{`He said "yes."`, "Then left."}},
		{"ellipsis", []string{"Well... Let me check."}, []string{"Well...", "Let me check."}},
		{"newline", []string{"First line\nSecond line"}, []string{"First line", "Second line"}},
		{"markdown removed", []string{"**Sure!** Here:\n- Item one\n2. Item two\n## Done"}, []string{"Sure!", "Here:", "Item one", "Item two", "Done"}},
		{"link", []string{"See [our page](https://x.example/a) for more."}, []string{"See our page for more."}},
		{"punctuation only dropped", []string{"... \n Okay."}, []string{"Okay."}},
		{"order number kept", []string{"Sure! Your order #4821 shipped."}, []string{"Sure!", "Your order #4821 shipped."}},
		{"unicode", []string{"Très bien. Ça marche!"}, []string{"Très bien.", "Ça marche!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sentenceSplitter
			var got []string
			for _, p := range tt.pieces {
				got = s.push(p, got)
			}
			if tail := s.flush(); tail != "" {
				got = append(got, tail)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSentenceSplitterEarly(t *testing.T) {
	// A question or exclamation ends at once; a period waits for the next word.
	var s sentenceSplitter
	if got := s.push("Sure! ", nil); len(got) != 0 {
		t.Fatalf("got %q before the next word", got)
	}
	if got := s.push("Your", nil); len(got) != 1 || got[0] != "Sure!" {
		t.Fatalf("got %q", got)
	}
}

func TestSentenceSplitterLong(t *testing.T) {
	var s sentenceSplitter
	long := strings.Repeat("word ", 40) + "and then, " + strings.Repeat("more words ", 30)
	got := s.push(long, nil)
	if len(got) == 0 {
		t.Fatal("a long sentence was not cut")
	}
	for _, g := range got {
		if len(g) > maxSentenceBytes {
			t.Errorf("piece of %d bytes", len(g))
		}
	}
}

func TestSchemaValidate(t *testing.T) {
	sch, err := parseSchema(json.RawMessage(`{"type":"object","properties":{
		"name":{"type":"string","minLength":1,"maxLength":5},
		"n":{"type":"integer","minimum":1,"maximum":9},
		"x":{"type":"number"},
		"ok":{"type":"boolean"},
		"kind":{"type":"string","enum":["a","b"]},
		"tags":{"type":"array","items":{"type":"string"}},
		"sub":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}
	},"required":["name"],"additionalProperties":false}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args, wantErr string
	}{
		{`{"name":"ab"}`, ""},
		{``, `missing required property "name"`},
		{`{"name":"ab","n":3,"x":2.5,"ok":true,"kind":"b","tags":["t"],"sub":{"id":"1"}}`, ""},
		{`{"name":""}`, "shorter than 1"},
		{`{"name":"abcdef"}`, "longer than 5"},
		{`{"name":"a","n":2.5}`, "must be an integer"},
		{`{"name":"a","n":0}`, "at least 1"},
		{`{"name":"a","n":10}`, "at most 9"},
		{`{"name":"a","x":"1"}`, "arguments.x: must be a number"},
		{`{"name":"a","ok":"yes"}`, "true or false"},
		{`{"name":"a","kind":"c"}`, `must be one of "a", "b"`},
		{`{"name":"a","tags":[1]}`, "arguments.tags[0]: must be a string"},
		{`{"name":"a","sub":{}}`, `arguments.sub: missing required property "id"`},
		{`{"name":"a","extra":1}`, `unknown property "extra"`},
		{`{"name":"a"} {}`, "more than one JSON value"},
		{`"str"`, "must be a JSON object"},
		{`{"name":`, "not valid JSON"},
	}
	for _, tt := range tests {
		_, err := sch.validate(json.RawMessage(tt.args))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
	for _, bad := range []string{`{"type":"array"}`, `{"type":"object","properties":{"a":{"type":"strnig"}}}`,
		`{"type":"object","required":["b"],"properties":{"a":{}}}`, `{"type":"object","properties":{"a":{"enum":[1,}}}`, `nope`} {
		if _, err := parseSchema(json.RawMessage(bad)); err == nil {
			t.Errorf("schema %s accepted", bad)
		}
	}
}

func TestBuiltinToolSchemasCompile(t *testing.T) {
	for _, tool := range builtinTools(Deps{Knowledge: fakeKB{}, History: fakeHistory{}}) {
		if _, err := parseSchema(tool.Parameters); err != nil {
			t.Errorf("%s: %v", tool.Name, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "1"}, time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "Wed, 25 Nov 2026 08:00:03 GMT"}, 3 * time.Second},
		{map[string]string{"Retry-After": "Wed, 25 Nov 2026 07:59:00 GMT"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"retry-after-ms": "120", "Retry-After": "1"}, 120 * time.Millisecond},
		{map[string]string{"x-ms-retry-after-ms": "80"}, 80 * time.Millisecond},
		{map[string]string{}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.h {
			h.Set(k, v)
		}
		if got := parseRetryAfter(h, now); got != tt.want {
			t.Errorf("%v: got %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestPCMDecoderOddBoundaries(t *testing.T) {
	raw := []byte{0x00, 0x00, 0x97, 0x03, 0x23, 0x07, 0x96, 0x0a, 0xff}
	want := []int16{0, 919, 1827, 2710}
	for cut := 0; cut <= len(raw); cut++ {
		var d pcmDecoder
		got := d.decode(nil, raw[:cut])
		got = d.decode(got, raw[cut:])
		if len(got) != len(want) {
			t.Fatalf("cut %d: %v", cut, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cut %d: %v, want %v", cut, got, want)
			}
		}
		if !d.hasCarry {
			t.Errorf("cut %d: the trailing odd byte was not kept", cut)
		}
	}
}

func FuzzSentenceSplitter(f *testing.F) {
	for _, s := range []string{"Hello there. How are you?", "It costs $3.50. Dr. Smith!", "a.m. p.m. e.g. J. Smith", "**Bold** - list\n1. item", "...", "Très bien. Ça!"} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, text string, step uint8) {
		if !utf8.ValidString(text) {
			return
		}
		n := int(step%16) + 1
		var whole, pieces sentenceSplitter
		a := whole.push(text, nil)
		if tail := whole.flush(); tail != "" {
			a = append(a, tail)
		}
		var b []string
		for i := 0; i < len(text); i += n {
			b = pieces.push(text[i:min(i+n, len(text))], b)
		}
		if tail := pieces.flush(); tail != "" {
			b = append(b, tail)
		}
		for _, s := range a {
			if s == "" || !utf8.ValidString(s) || len(s) > maxSentenceBytes+8 {
				t.Fatalf("bad sentence %q", s)
			}
		}
		// Chunking must not change where sentences end, except where a
		// long run was cut by length (which depends on what was buffered).
		if len(text) < maxSentenceBytes && strings.Join(a, "|") != strings.Join(b, "|") {
			t.Fatalf("whole %q, pieces of %d %q", a, n, b)
		}
	})
}

func FuzzSchemaValidate(f *testing.F) {
	sch, err := parseSchema(builtinTools(Deps{})[1].Parameters) // transfer_to_human
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"reason":"caller_asked","summary":"x"}`, `{}`, `[]`, `{"reason":1}`, `{"a":{"b":[{"c":null}]}}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		v, err := sch.validate(args)
		if err == nil {
			if v["reason"] == nil || v["summary"] == nil {
				t.Fatalf("accepted %s without required fields", args)
			}
			var back map[string]any
			if json.Unmarshal(args, &back) != nil && len(strings.TrimSpace(string(args))) > 0 {
				t.Fatalf("accepted invalid JSON %q", args)
			}
		}
	})
}

func FuzzPCMDecoder(f *testing.F) {
	f.Add([]byte{0, 0, 0x97, 3, 0x23}, uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, cut uint8) {
		c := int(cut) % (len(raw) + 1)
		var whole, split pcmDecoder
		a := whole.decode(nil, raw)
		b := split.decode(nil, raw[:c])
		b = split.decode(b, raw[c:])
		if len(a) != len(raw)/2 || len(a) != len(b) {
			t.Fatalf("%d and %d samples from %d bytes", len(a), len(b), len(raw))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("sample %d differs", i)
			}
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0.25", "Wed, 25 Nov 2026 08:00:03 GMT", "", "NaN", "1e308", "-1"} {
		f.Add(s, s)
	}
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("Retry-After-Ms", ms)
		if d := parseRetryAfter(h, now); d < 0 {
			t.Fatalf("negative wait %v", d)
		}
	})
}
