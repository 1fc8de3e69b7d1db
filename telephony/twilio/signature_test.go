package twilio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

const vectorsDir = "../../../shared/vectors"

func readVector(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

type signatureCase struct {
	ID           string      `json:"id"`
	URL          string      `json:"url"`
	Params       [][2]string `json:"params"`
	Body         *string     `json:"body"`
	AuthToken    string      `json:"auth_token"`
	Signature    string      `json:"signature"`
	StrictValid  bool        `json:"strict_valid"`
	StringToSign string      `json:"string_to_sign"`
}

func loadSignatureCases(t testing.TB) []signatureCase {
	var file struct {
		Cases []signatureCase `json:"cases"`
	}
	readVector(t, "twilio_signature_vectors.json", &file)
	if len(file.Cases) != 107 {
		t.Fatalf("got %d signature cases, want 107", len(file.Cases))
	}
	return file.Cases
}

func TestValidateSignatureVectors(t *testing.T) {
	for _, c := range loadSignatureCases(t) {
		t.Run(c.ID, func(t *testing.T) {
			v := NewValidator(c.AuthToken)
			var got bool
			if c.Body != nil {
				got = v.ValidateBody(c.URL, []byte(*c.Body), c.Signature)
			} else {
				got = v.Validate(c.URL, c.Params, c.Signature)
			}
			if got != c.StrictValid {
				t.Fatalf("valid = %v, want %v", got, c.StrictValid)
			}
		})
	}
}

// TestSignatureStringToSign checks that Signature reproduces the vectors'
// signatures for the exact URL variant they were made over.
func TestSignatureStringToSign(t *testing.T) {
	n := 0
	for _, c := range loadSignatureCases(t) {
		if !c.StrictValid || c.Body != nil {
			continue
		}
		for _, u := range urlVariants(c.URL) {
			if got := Signature(c.AuthToken, u, c.Params); got == c.Signature {
				var sb stringsBuilder
				writeSigned(&sb, u, sortedParams(c.Params))
				if string(sb) != c.StringToSign {
					t.Errorf("%s: string to sign %q, want %q", c.ID, sb, c.StringToSign)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no vector reproduced")
	}
}

type stringsBuilder []byte

func (b *stringsBuilder) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

func TestURLVariants(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"https://a.com/x?y=1", []string{"https://a.com/x?y=1", "https://a.com:443/x?y=1"}},
		{"https://a.com:443/x", []string{"https://a.com:443/x", "https://a.com/x"}},
		{"wss://a.com/m", []string{"wss://a.com/m", "wss://a.com:443/m"}},
		{"ws://a.com/m", []string{"ws://a.com/m", "ws://a.com:80/m"}},
		{"HTTP://u:p@A.com/x", []string{"HTTP://u:p@A.com/x", "HTTP://u:p@A.com:80/x"}},
		{"https://u:p@a.com:8443", []string{"https://u:p@a.com:8443", "https://u:p@a.com"}},
		{"https://[::1]:8443/x", []string{"https://[::1]:8443/x", "https://[::1]/x"}},
		{"https://[::1]/x", []string{"https://[::1]/x", "https://[::1]:443/x"}},
		{"ftp://a.com/x", []string{"ftp://a.com/x"}},
		{"not a url", []string{"not a url"}},
		{"https://a.com/p?q=a:1", []string{"https://a.com/p?q=a:1", "https://a.com:443/p?q=a:1"}},
	}
	for _, tt := range tests {
		got := urlVariants(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("urlVariants(%q) = %q, want %q", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("urlVariants(%q) = %q, want %q", tt.in, got, tt.want)
			}
		}
	}
}

type callbackExample struct {
	Name      string      `json:"name"`
	URL       string      `json:"url"`
	Params    [][2]string `json:"params"`
	Body      string      `json:"body"`
	Signature string      `json:"x_twilio_signature"`
}

type callbacksFile struct {
	AuthToken       string            `json:"signature_auth_token"`
	IncomingCall    []callbackExample `json:"incoming_call"`
	CallStatus      []callbackExample `json:"call_status_callbacks"`
	StreamStatus    []callbackExample `json:"stream_status_callbacks"`
	RESTUpdateCalls []struct {
		Name string `json:"name"`
		Body string `json:"body"`
	} `json:"rest_call_update_requests"`
}

func loadCallbacks(t testing.TB) callbacksFile {
	var f callbacksFile
	readVector(t, "twilio_callbacks.json", &f)
	return f
}

// TestParseFormCallbacks parses every webhook body of twilio_callbacks.json
// and validates its signature from the parsed form.
func TestParseFormCallbacks(t *testing.T) {
	f := loadCallbacks(t)
	all := append(append(append([]callbackExample{}, f.IncomingCall...), f.CallStatus...), f.StreamStatus...)
	if len(all) < 10 {
		t.Fatalf("only %d callback examples", len(all))
	}
	v := NewValidator(f.AuthToken)
	for _, ex := range all {
		t.Run(ex.Name, func(t *testing.T) {
			got, err := ParseForm(ex.Body)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(ex.Params) {
				t.Fatalf("parsed %d params, want %d", len(got), len(ex.Params))
			}
			for i := range got {
				if got[i] != ex.Params[i] {
					t.Errorf("param %d = %q, want %q", i, got[i], ex.Params[i])
				}
			}
			if !v.Validate(ex.URL, got, ex.Signature) {
				t.Error("signature rejected")
			}
			if v.Validate(ex.URL+"x", got, ex.Signature) {
				t.Error("signature accepted for another URL")
			}
			if EncodeForm(got) != ex.Body {
				// Twilio's own encoding may differ only in escaping choices;
				// the decoded round trip must be exact.
				back, err := ParseForm(EncodeForm(got))
				if err != nil || len(back) != len(got) {
					t.Fatalf("round trip failed: %v", err)
				}
			}
		})
	}
}

func TestParseFormErrors(t *testing.T) {
	tests := []struct {
		body    string
		wantErr bool
		want    [][2]string
	}{
		{"", false, nil},
		{"a=1&a=2&b", false, [][2]string{{"a", "1"}, {"a", "2"}, {"b", ""}}},
		{"a=%2B+b&&c=%E2%9C%93", false, [][2]string{{"a", "+ b"}, {"c", "✓"}}},
		{"a=%zz", true, nil},
		{"%=1", true, nil},
	}
	for _, tt := range tests {
		got, err := ParseForm(tt.body)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseForm(%q) err = %v, wantErr %v", tt.body, err, tt.wantErr)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseForm(%q) = %q, want %q", tt.body, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseForm(%q) = %q, want %q", tt.body, got, tt.want)
			}
		}
	}
}
