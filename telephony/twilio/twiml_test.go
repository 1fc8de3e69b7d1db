package twilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

type twimlExample struct {
	id    string
	valid bool
	doc   string
}

func loadTwiMLExamples(t testing.TB) map[string]twimlExample {
	data, err := os.ReadFile(filepath.Join(vectorsDir, "twiml_examples.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]twimlExample{}
	var cur *twimlExample
	var body strings.Builder
	flush := func() {
		if cur != nil {
			cur.doc = strings.TrimSpace(body.String())
			out[cur.id] = *cur
		}
		body.Reset()
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "=== ") {
			flush()
			parts := strings.Split(strings.Trim(line, "= "), "|")
			cur = &twimlExample{id: strings.TrimSpace(parts[0]), valid: strings.TrimSpace(parts[1]) == "valid"}
			continue
		}
		if cur != nil {
			body.WriteString(line + "\n")
		}
	}
	flush()
	if len(out) != 29 {
		t.Fatalf("got %d twiml examples, want 29", len(out))
	}
	return out
}

// node is a parsed XML element for structural comparison: attribute order
// and insignificant whitespace do not matter.
type node struct {
	Name     string
	Attrs    []string
	Text     string
	Children []*node
}

func parseTree(t testing.TB, data []byte) *node {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{Name: tk.Name.Local}
			for _, a := range tk.Attr {
				n.Attrs = append(n.Attrs, a.Name.Local+"="+a.Value)
			}
			sort.Strings(n.Attrs)
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tk)
			}
		}
	}
	if root == nil {
		t.Fatalf("no root element in %q", data)
	}
	var trim func(*node)
	trim = func(n *node) {
		n.Text = strings.TrimSpace(n.Text)
		for _, c := range n.Children {
			trim(c)
		}
	}
	trim(root)
	return root
}

func sameTree(a, b *node) bool {
	if a.Name != b.Name || a.Text != b.Text || strings.Join(a.Attrs, "\x00") != strings.Join(b.Attrs, "\x00") || len(a.Children) != len(b.Children) {
		return false
	}
	for i := range a.Children {
		if !sameTree(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}

// TestTwiMLWriterMatchesExamples renders parley's documents and compares them
// structurally with the reference blocks.
func TestTwiMLWriterMatchesExamples(t *testing.T) {
	ex := loadTwiMLExamples(t)
	tests := []struct {
		id   string
		resp Response
	}{
		{"connect-stream-doc", Response{Verbs: []Verb{
			&Connect{Stream: &Stream{URL: "wss://example.com/audiostream"}},
			&Say{Text: "This TwiML instruction is unreachable unless the Stream is ended by your WebSocket server."},
		}}},
		{"connect-stream-parameters", Response{Verbs: []Verb{
			&Connect{Stream: &Stream{
				URL: "wss://parley.example.com/twilio/media", Name: "parley-media",
				StatusCallback: "https://parley.example.com/twilio/stream-status", StatusCallbackMethod: "POST",
				Parameters: []Parameter{{Name: "tenant", Value: "acme"}, {Name: "callerNumber", Value: "+14155550100"}, {Name: "callId", Value: "c_01HZX3K9Q2"}},
			}},
			&Say{Text: "Sorry, our assistant is unavailable. Please call again later."},
		}}},
		{"say-basic-doc", Response{Verbs: []Verb{&Say{Text: "Hello, world!"}}}},
		{"say-voice-language", Response{Verbs: []Verb{&Say{Voice: "Polly.Joanna", Language: "en-US", Text: "Thanks for calling. I am connecting you to an agent now."}}}},
		{"say-escaped-text", Response{Verbs: []Verb{&Say{Text: `Order 42 for Smith & Sons <priority> is "ready".`}}}},
		{"pause-redirect", Response{Verbs: []Verb{&Pause{Length: 1}, &Redirect{Method: "POST", URL: "https://parley.example.com/twilio/voice?step=2"}}}},
		{"hangup", Response{Verbs: []Verb{&Say{Text: "Goodbye."}, &Hangup{}}}},
		{"reject-busy", Response{Verbs: []Verb{&Reject{Reason: "busy"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := tt.resp.MarshalTwiML()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte(xmlHeader)) {
				t.Errorf("missing XML declaration: %s", got)
			}
			want := ex[tt.id]
			if !sameTree(parseTree(t, got), parseTree(t, []byte(want.doc))) {
				t.Errorf("rendered\n%s\nwant (structurally)\n%s", got, want.doc)
			}
			again, _ := tt.resp.MarshalTwiML()
			if !bytes.Equal(got, again) {
				t.Error("rendering is not deterministic")
			}
		})
	}
}

// TestParseTwiMLExamples parses every example: valid ones must parse and
// re-render to the same structure, invalid ones must be rejected.
func TestParseTwiMLExamples(t *testing.T) {
	for id, ex := range loadTwiMLExamples(t) {
		t.Run(id, func(t *testing.T) {
			r, err := ParseTwiML([]byte(ex.doc))
			if !ex.valid {
				if !errors.Is(err, ErrTwiML) {
					t.Fatalf("invalid example accepted (err %v)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.MarshalTwiML()
			if err != nil {
				t.Fatal(err)
			}
			if !sameTree(parseTree(t, out), parseTree(t, []byte(ex.doc))) {
				t.Errorf("round trip\n%s\nwant (structurally)\n%s", out, ex.doc)
			}
		})
	}
}

func TestStreamURLRules(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"wss://parley.example.com/twilio/media", true},
		{"wss://parley.example.com:8443/twilio/media", true},
		{"ws://127.0.0.1:8080/twilio/media", true},
		{"ws://localhost/twilio/media", true},
		{"ws://[::1]:80/m", true},
		{"ws://parley.example.com/twilio/media", false},
		{"https://parley.example.com/twilio/media", false},
		{"wss://parley.example.com/twilio/media?x=1", false},
		{"wss://parley.example.com/twilio/media?", false},
		{"wss://parley.example.com/m#frag", false},
		{"/twilio/media", false},
		{"wss://%zz/m", false},
	}
	for _, tt := range tests {
		err := ValidateStreamURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateStreamURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		r := Response{Verbs: []Verb{&Connect{Stream: &Stream{URL: tt.url}}}}
		if _, err := r.MarshalTwiML(); (err == nil) != tt.ok {
			t.Errorf("MarshalTwiML with stream %q: err %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestTwiMLValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		r    Response
	}{
		{"nil verb", Response{Verbs: []Verb{nil}}},
		{"connect without stream", Response{Verbs: []Verb{&Connect{}}}},
		{"parameter without name", Response{Verbs: []Verb{&Connect{Stream: &Stream{URL: "wss://a.b/m", Parameters: []Parameter{{Value: "x"}}}}}}},
		{"parameter too long", Response{Verbs: []Verb{&Connect{Stream: &Stream{URL: "wss://a.b/m", Parameters: []Parameter{{Name: "n", Value: strings.Repeat("x", 499)}}}}}}},
		{"negative pause", Response{Verbs: []Verb{&Pause{Length: -1}}}},
		{"redirect without url", Response{Verbs: []Verb{&Redirect{}}}},
		{"unknown raw verb", Response{Verbs: []Verb{&RawVerb{XMLName: xml.Name{Local: "say"}}}}},
	}
	for _, tt := range tests {
		if _, err := tt.r.MarshalTwiML(); !errors.Is(err, ErrTwiML) {
			t.Errorf("%s: err = %v, want ErrTwiML", tt.name, err)
		}
	}
}

// FuzzTwiML renders arbitrary text and parameter values and checks that the
// document stays well-formed and carries the text back unchanged (invalid
// XML characters become U+FFFD, as encoding/xml escapes them).
func FuzzTwiML(f *testing.F) {
	f.Add("Hello, world!", "tenant", "acme")
	f.Add(`Smith & Sons <priority> "ready" 'x'`, "a\"b", "<&>")
	f.Add("\x00\x1f\ufffe]]>", "\n\t", "\r")
	f.Fuzz(func(t *testing.T, text, name, value string) {
		if name == "" || len(name)+len(value) >= 500 {
			name = "n"
			value = ""
		}
		r := Response{Verbs: []Verb{
			&Say{Text: text},
			&Connect{Stream: &Stream{URL: "wss://parley.example.com/twilio/media", Parameters: []Parameter{{Name: name, Value: value}}}},
		}}
		out, err := r.MarshalTwiML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseTwiML(out)
		if err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, out)
		}
		say := back.Verbs[0].(*Say)
		if want := strings.TrimSpace(xmlClean(text)); say.Text != want {
			t.Errorf("say text %q, want %q", say.Text, want)
		}
		p := back.Stream().Parameters[0]
		if p.Name != xmlAttrClean(name) || p.Value != xmlAttrClean(value) {
			t.Errorf("parameter %q=%q, want %q=%q", p.Name, p.Value, xmlAttrClean(name), xmlAttrClean(value))
		}
	})
}

// xmlClean is what survives an XML round trip: invalid characters become
// U+FFFD (encoding/xml writes CR, LF and tab as character references, so
// they survive).
func xmlClean(s string) string { return xmlAttrClean(s) }

func xmlAttrClean(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func TestParseTwiMLStructureErrors(t *testing.T) {
	for _, doc := range []string{
		``,
		`<Say>Hi</Say>`,
		`hello <Response/>`,
		`<Response>text<Say>Hi</Say></Response>`,
		`<Response><Say>Hi</Say></Response><Response/>`,
		`<Response></Response> trailing`,
		`<Response><Connect><Room>r</Room></Connect></Response>`,
		`<Response><Say>unclosed</Response>`,
	} {
		if _, err := ParseTwiML([]byte(doc)); !errors.Is(err, ErrTwiML) {
			t.Errorf("ParseTwiML(%q) = %v, want ErrTwiML", doc, err)
		}
	}
	r, err := ParseTwiML([]byte("<?xml version=\"1.0\"?>\n<!-- comment -->\n<Response/>\n"))
	if err != nil || len(r.Verbs) != 0 || r.Stream() != nil {
		t.Errorf("empty response: %v %+v", err, r)
	}
}
