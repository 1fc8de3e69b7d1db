package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// SignatureHeader is the request header in which Twilio sends its HMAC of
// the request.
const SignatureHeader = "X-Twilio-Signature"

// Signature returns the X-Twilio-Signature Twilio sends for a request to url
// carrying the form params: base64 HMAC-SHA1, keyed with the auth token, of
// the URL followed by every name+value pair sorted byte-wise by name and then
// value, with identical repeated pairs counted once. The URL is signed
// exactly as given; never re-encode it.
func Signature(authToken, url string, params [][2]string) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	writeSigned(mac, url, sortedParams(params))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

type stringWriter interface {
	Write(p []byte) (int, error)
}

func writeSigned(w stringWriter, url string, params [][2]string) {
	_, _ = w.Write([]byte(url))
	for _, p := range params {
		_, _ = w.Write([]byte(p[0]))
		_, _ = w.Write([]byte(p[1]))
	}
}

// sortedParams returns a sorted copy of params (by name, then value, both
// byte-wise) with identical name/value pairs removed, as Twilio's reference
// validators do for repeated form keys.
func sortedParams(params [][2]string) [][2]string {
	out := make([][2]string, len(params))
	copy(out, params)
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	n := 0
	for i, p := range out {
		if i > 0 && p == out[n-1] {
			continue
		}
		out[n] = p
		n++
	}
	return out[:n]
}

// Validator checks X-Twilio-Signature headers against one account's auth
// token. It accepts a signature made over the URL as given, over the URL with
// its port removed, or over the URL with the scheme's default port added,
// because Twilio and proxies disagree about whether :443 is part of the URL.
type Validator struct {
	authToken string
}

// NewValidator returns a Validator for authToken.
func NewValidator(authToken string) *Validator {
	return &Validator{authToken: authToken}
}

// Validate reports whether signature is Twilio's signature of a request to
// url with the form params (in any order, repeated names allowed). Use it
// for form-encoded webhooks, GET requests and the Media Streams WebSocket
// upgrade (no params). The comparison is constant-time.
func (v *Validator) Validate(url string, params [][2]string, signature string) bool {
	if signature == "" {
		return false
	}
	sorted := sortedParams(params)
	ok := false
	for _, u := range urlVariants(url) {
		// Check every variant so timing does not reveal which one matched.
		if v.match(u, sorted, signature) {
			ok = true
		}
	}
	return ok
}

// ValidateBody reports whether signature is valid for a request to url
// whose body is not form-encoded (JSON webhooks). Twilio then puts the hex
// SHA-256 of the raw body in the bodySHA256 query parameter and signs the
// URL alone, so both the URL signature and the body hash must match; a body
// without bodySHA256 is rejected.
func (v *Validator) ValidateBody(url string, body []byte, signature string) bool {
	want, ok := bodySHA256(url)
	if !ok {
		return false
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	hashOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
	sigOK := v.Validate(url, nil, signature)
	return hashOK && sigOK
}

func (v *Validator) match(url string, sorted [][2]string, signature string) bool {
	mac := hmac.New(sha1.New, []byte(v.authToken))
	writeSigned(mac, url, sorted)
	var sum [base64Len]byte
	base64.StdEncoding.Encode(sum[:], mac.Sum(nil))
	return subtle.ConstantTimeCompare(sum[:], []byte(signature)) == 1
}

// base64Len is the length of a base64-encoded SHA-1 MAC.
const base64Len = 28

// bodySHA256 extracts the bodySHA256 query value from a raw URL without
// re-encoding anything else.
func bodySHA256(rawURL string) (string, bool) {
	i := strings.IndexByte(rawURL, '?')
	if i < 0 {
		return "", false
	}
	query := rawURL[i+1:]
	if j := strings.IndexByte(query, '#'); j >= 0 {
		query = query[:j]
	}
	for _, kv := range strings.Split(query, "&") {
		name, value, _ := strings.Cut(kv, "=")
		if name != "bodySHA256" {
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil || v == "" {
			return "", false
		}
		return v, true
	}
	return "", false
}

// defaultPorts maps lower-case schemes to the port that is implied when a
// URL names none.
var defaultPorts = map[string]string{"https": "443", "wss": "443", "http": "80", "ws": "80"}

// urlVariants returns url as given plus the one authority variant Twilio's
// helper libraries also accept: the port removed when there is one, or the
// scheme's default port added when there is none. Path and query are never
// touched.
func urlVariants(rawURL string) []string {
	variants := []string{rawURL}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return variants
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	host, port := splitHostPort(authority)
	prefix := scheme + "://" + userinfo + host
	switch {
	case port != "":
		variants = append(variants, prefix+tail)
	case host != "":
		if def, ok := defaultPorts[strings.ToLower(scheme)]; ok {
			variants = append(variants, prefix+":"+def+tail)
		}
	}
	return variants
}

// splitHostPort splits an authority's host and numeric port, leaving IPv6
// literals intact. port is "" when the authority has none.
func splitHostPort(authority string) (host, port string) {
	i := strings.LastIndexByte(authority, ':')
	if i < 0 || strings.IndexByte(authority[i:], ']') >= 0 {
		return authority, ""
	}
	p := authority[i+1:]
	if p == "" {
		return authority[:i], ""
	}
	for j := 0; j < len(p); j++ {
		if p[j] < '0' || p[j] > '9' {
			return authority, ""
		}
	}
	return authority[:i], p
}

// ErrForm is returned (wrapped) when a form-encoded body cannot be decoded.
var ErrForm = errors.New("twilio: malformed form body")

// ParseForm decodes an application/x-www-form-urlencoded body into name/value
// pairs in arrival order, keeping repeated names, as the signature needs.
// '+' decodes to a space and %XX escapes are resolved; an invalid escape is
// an error.
func ParseForm(body string) ([][2]string, error) {
	if body == "" {
		return nil, nil
	}
	pairs := make([][2]string, 0, strings.Count(body, "&")+1)
	for _, kv := range strings.Split(body, "&") {
		if kv == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("%w: name %q: %v", ErrForm, rawName, err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("%w: value of %q: %v", ErrForm, name, err)
		}
		pairs = append(pairs, [2]string{name, value})
	}
	return pairs, nil
}

// EncodeForm encodes pairs as an application/x-www-form-urlencoded body in
// the given order, keeping repeated names.
func EncodeForm(pairs [][2]string) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p[0]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p[1]))
	}
	return b.String()
}
