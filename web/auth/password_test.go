package auth

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPasswordWith("s3cret password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not look like $argon2id$v=19$m=64,t=1,p=1$salt$key", h)
	}
	h2, err := HashPasswordWith("s3cret password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	def, err := HashPassword("s3cret password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("default hash %q does not carry DefaultParams", def)
	}
	if !VerifyPassword(def, "s3cret password") {
		t.Fatal("default hash does not verify")
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPasswordWith("s3cret password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"right", h, "s3cret password", true},
		{"wrong", h, "s3cret passwore", false},
		{"prefix", h, "s3cret", false},
		{"empty", h, "", false},
		{"too long", h, strings.Repeat("a", MaxPasswordLen+1), false},
		{"empty hash", "", "s3cret password", false},
		{"argon2i", strings.Replace(h, "argon2id", "argon2i", 1), "s3cret password", false},
		{"other version", strings.Replace(h, "v=19", "v=16", 1), "s3cret password", false},
		{"changed cost", strings.Replace(h, "t=1", "t=2", 1), "s3cret password", false},
		{"huge memory", strings.Replace(h, "m=64", "m=4294967295", 1), "s3cret password", false},
		{"zero threads", strings.Replace(h, "p=1", "p=0", 1), "s3cret password", false},
		{"parameters reordered", strings.Replace(h, "m=64,t=1", "t=1,m=64", 1), "s3cret password", false},
		{"short salt", strings.Join([]string{"", parts[1], parts[2], parts[3], "c2FsdA", parts[5]}, "$"), "s3cret password", false},
		{"bad base64", strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "!!!"}, "$"), "s3cret password", false},
		{"extra field", h + "$x", "s3cret password", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyPassword(tc.hash, tc.pw); got != tc.want {
				t.Fatalf("VerifyPassword(%q, %q) = %v, want %v", tc.hash, tc.pw, got, tc.want)
			}
		})
	}
}

func TestHashPasswordRejects(t *testing.T) {
	for _, p := range []Params{
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 4, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := HashPasswordWith("s3cret password", p); err == nil {
			t.Errorf("HashPasswordWith(%+v) = nil error, want one", p)
		}
	}
	if _, err := HashPasswordWith(strings.Repeat("a", MaxPasswordLen+1), cheap); err == nil {
		t.Error("over-long password hashed")
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw string
		ok bool
	}{
		{"short", false},
		{"nine char", false},
		{"ten chars!", true},
		{"ääääääääää", true}, // characters, not bytes
		{"\xff\xfe invalid utf8", false},
		{strings.Repeat("a", MaxPasswordLen), true},
		{strings.Repeat("a", MaxPasswordLen+1), false},
	}
	for _, tc := range tests {
		if err := CheckPassword(tc.pw); (err == nil) != tc.ok {
			t.Errorf("CheckPassword(%.20q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(2, time.Minute, 3)
	steps := []struct {
		key   string
		at    time.Duration
		ok    bool
		retry time.Duration
	}{
		{"a", 0, true, 0},
		{"a", 10 * time.Second, true, 0},
		{"a", 20 * time.Second, false, 40 * time.Second},
		{"b", 20 * time.Second, true, 0},
		{"a", time.Minute, true, 0}, // a new window
	}
	for i, s := range steps {
		ok, retry := l.attempt(s.key, t0.Add(s.at))
		if ok != s.ok || retry != s.retry {
			t.Fatalf("step %d attempt(%s) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
		}
	}
	l.refund("a")
	if ok, _ := l.attempt("a", t0.Add(time.Minute)); !ok {
		t.Fatal("refunded attempt not given back")
	}
	l.forget("a")
	if ok, _ := l.attempt("a", t0.Add(time.Minute)); !ok {
		t.Fatal("forgotten key still limited")
	}
	// Bounded: many keys never hold more than max entries.
	for i := range 1000 {
		l.attempt(strings.Repeat("k", i%50)+string(rune('a'+i%26)), t0)
	}
	if n := l.size(); n != 3 {
		t.Fatalf("limiter holds %d keys, want its bound 3", n)
	}
}

func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{
		`{"name":"sam","password":"secret"}`, `{"name":"sam"}`, `{}`, `null`, `[]`, `"x"`,
		`{"name":"sam","password":"p"} {}`, `{"name":1,"password":2}`, `{"name":"\u0000","password":"x"}`,
		`{"name":"sam","password":"x","extra":1}`, "", "{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseLogin(body)
		if err != nil {
			if req != (LoginRequest{}) {
				t.Fatalf("error %v with a non-empty request %+v", err, req)
			}
			return
		}
		if req.Name == "" || req.Password == "" || len(req.Name) > maxNameLen || len(req.Password) > MaxPasswordLen {
			t.Fatalf("accepted out-of-bounds request %+v", req)
		}
	})
}

func FuzzDecodeHash(f *testing.F) {
	h, err := HashPasswordWith("pw", cheap)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{h, "", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=,t=,p=$a$b", "$$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decodeHash(s)
		if err != nil {
			return
		}
		if p.check() != nil || len(salt) != int(p.SaltLen) || len(key) != int(p.KeyLen) {
			t.Fatalf("decodeHash(%q) accepted %+v with %d-byte salt, %d-byte key", s, p, len(salt), len(key))
		}
	})
}

// BenchmarkVerifyPassword measures one login's hash check at DefaultParams.
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyPassword(h, "correct horse battery") {
			b.Fatal("no match")
		}
	}
}

// BenchmarkTokenHash measures the per-request session lookup key.
func BenchmarkTokenHash(b *testing.B) {
	tok, err := randomToken()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = TokenHash(tok)
	}
}
