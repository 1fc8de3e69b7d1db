package redact_test

import (
	"testing"

	"github.com/parley-ai/parley/redact"
)

var benchCases = []struct{ name, text string }{
	{"clean", "Hi, I'd like to check the balance on my account, the one ending 4821, I paid $1,234.56 at 10:30 on 2024-05-12."},
	{"typed_card", "Sure, my card number is 4111 1111 1111 1111 and the security code is 123."},
	{"spoken_card", "my card number is four one one one one one one one one one one one one one one one, expiry oh five twenty six"},
	{"email", "you can reach me at jane.doe@example.com or jane dot doe at example dot com"},
}

func BenchmarkString(b *testing.B) {
	r := redact.New(redact.Policy{})
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				_ = r.String(bc.text)
			}
		})
	}
}

func BenchmarkLogWriter(b *testing.B) {
	w := redact.New(redact.Policy{}).LogWriter(discard{})
	lines := []struct {
		name string
		line []byte
	}{
		{"clean", []byte(`{"level":"info","call_id":"CA0123456789abcdef0123456789abcdef","seq":4,"text":"I'd like to pay my bill","time":"2026-11-25T07:37:04Z","message":"turn"}` + "\n")},
		{"card", []byte(`{"level":"info","call_id":"CA0123456789abcdef0123456789abcdef","seq":4,"text":"my card is 4111 1111 1111 1111","time":"2026-11-25T07:37:04Z","message":"turn"}` + "\n")},
	}
	for _, l := range lines {
		b.Run(l.name, func(b *testing.B) {
			b.SetBytes(int64(len(l.line)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = w.Write(l.line)
			}
		})
	}
}
