package sphinx

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-ai/parley/dialog"
)

// TestPartial streams phone audio 20 ms at a time and polls Partial every
// 5 frames: it is "" during the leading silence, grows while the caller
// speaks (each partial shares its first words with the final text or is
// revised by the search), and ends close to what Finish returns.
func TestPartial(t *testing.T) {
	requireFlite(t)
	tests := []struct {
		voice, text string
		mode        dialog.Mode
		wantFinal   string
	}{
		{"kal", "I lost my credit card.", dialog.ModeOpen, "i lost my credit card"},
		{"kal", "0 1 2 3", dialog.ModeDigits, "zero one two three"},
	}
	for _, tt := range tests {
		t.Run(tt.wantFinal, func(t *testing.T) {
			r := newTestRecognizer(t, 1)
			pcm8 := phone(t, tt.voice, tt.text, 0)
			s, err := r.Start(context.Background(), tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ps, ok := s.(dialog.PartialStream)
			if !ok {
				t.Fatal("stream does not implement dialog.PartialStream")
			}
			if p, err := ps.Partial(); err != nil || p != "" {
				t.Fatalf("Partial before audio = %q, %v; want \"\", nil", p, err)
			}
			up := newUpsampler()
			silence := make([]int16, 160)
			for range 10 {
				if err := s.Write(up(silence)); err != nil {
					t.Fatal(err)
				}
			}
			if p, err := ps.Partial(); err != nil || p != "" {
				t.Fatalf("Partial after silence = %q, %v; want \"\", nil", p, err)
			}
			var partials []string
			audio := append(append([]int16(nil), pcm8...), make([]int16, 1600)...)
			for i, off := 0, 0; off < len(audio); i, off = i+1, off+160 {
				if err := s.Write(up(audio[off:min(off+160, len(audio))])); err != nil {
					t.Fatal(err)
				}
				if i%5 == 4 {
					p, err := ps.Partial()
					if err != nil {
						t.Fatalf("Partial: %v", err)
					}
					if p != "" && (len(partials) == 0 || partials[len(partials)-1] != p) {
						partials = append(partials, p)
					}
				}
			}
			if len(partials) == 0 {
				t.Fatal("no partial hypothesis during the utterance")
			}
			last := partials[len(partials)-1]
			for _, w := range strings.Fields(last) {
				if w == "oh" && tt.mode == dialog.ModeDigits || strings.ContainsAny(w, "()<>[]") {
					t.Fatalf("partial %q holds a raw decoder token %q", last, w)
				}
			}
			tr, err := s.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if tr.Text != tt.wantFinal {
				t.Fatalf("final %q, want %q (partials %q)", tr.Text, tt.wantFinal, partials)
			}
			if last != tr.Text {
				t.Fatalf("last partial %q differs from the final %q", last, tr.Text)
			}
			if _, err := ps.Partial(); err == nil {
				t.Fatal("Partial after Finish succeeded")
			}
			t.Logf("partials: %q", partials)
		})
	}
}

// BenchmarkPartial measures one Partial call in the middle of an utterance.
func BenchmarkPartial(b *testing.B) {
	requireFlite(b)
	r := newTestRecognizer(b, 1)
	pcm8 := phone(b, "kal", "I want to check my account balance please.", 0)
	s, err := r.Start(context.Background(), dialog.ModeOpen)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	up := newUpsampler()
	for off := 0; off < len(pcm8); off += 160 {
		if err := s.Write(up(pcm8[off:min(off+160, len(pcm8))])); err != nil {
			b.Fatal(err)
		}
	}
	ps := s.(dialog.PartialStream)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ps.Partial(); err != nil {
			b.Fatal(err)
		}
	}
}
