package sphinx

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// TestDigitsMode checks the digits path end to end: single recorded digits
// (which the any-length grammar tends to split or lose) come back as one
// digit through the second pass, and digit strings keep all their digits.
func TestDigitsMode(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	recorded := func(name string) []int16 {
		pcm, rate, err := media.ReadWAVFile(filepath.Join(digitsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if rate != 8000 {
			t.Fatalf("%s: rate %d", name, rate)
		}
		for i, v := range pcm {
			pcm[i] = media.MulawToLinear(media.LinearToMulaw(v))
		}
		return pcm
	}
	tests := []struct {
		name string
		pcm8 func() []int16
		want string
	}{
		{"recorded six", func() []int16 { return recorded("6_jackson_0.wav") }, "six"},
		{"recorded three", func() []int16 { return recorded("3_jackson_1.wav") }, "three"},
		{"recorded zero", func() []int16 { return recorded("0_jackson_2.wav") }, "zero"},
		{"recorded accented zero", func() []int16 { return recorded("0_nicolas_1.wav") }, "zero"},
		{"recorded accented six", func() []int16 { return recorded("6_nicolas_0.wav") }, "six"},
		{"spoken oh", func() []int16 { return phone(t, "kal", "oh", 0) }, "zero"},
		{"spoken string", func() []int16 { return phone(t, "kal", "4 5 6 7", 0) }, "four five six seven"},
		{"two digits", func() []int16 { return phone(t, "kal", "9 1", 0) }, "nine one"},
		{"two digits with a pause", func() []int16 { return phone(t, "kal", "8. 3.", 0) }, "eight three"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := r.TranscribePCM(context.Background(), tt.pcm8(), 8000, dialog.ModeDigits)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Text != tt.want {
				t.Fatalf("got %q, want %q", tr.Text, tt.want)
			}
			if len(tr.Words) == 0 || tr.Confidence <= 0 {
				t.Fatalf("no words or confidence: %+v", tr)
			}
		})
	}
}

// TestFixedCMNRestored: every utterance runs from the fixed phone mean and
// leaves the pooled decoder's mean as it was, so one call's line never
// shapes another call's recognition.
func TestFixedCMNRestored(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	pcm8 := phone(t, "kal", "I lost my credit card.", 15)
	ctx := context.Background()
	if _, err := r.TranscribePCM(ctx, pcm8, 8000, dialog.ModeOpen); err != nil {
		t.Fatal(err)
	}
	d, err := r.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, ok := d.liveCMN()
	r.release(d, true)
	if !ok {
		t.Fatal("decoder has no live CMN")
	}
	if _, err := r.TranscribePCM(ctx, phone(t, "kal", "1 2 3", 15), 8000, dialog.ModeDigits); err != nil {
		t.Fatal(err)
	}
	d, err = r.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := d.liveCMN()
	r.release(d, true)
	if after != before {
		t.Fatalf("digits utterance changed the adapted mean:\n%v\n%v", before, after)
	}
	if _, err := r.TranscribePCM(ctx, pcm8, 8000, dialog.ModeOpen); err != nil {
		t.Fatal(err)
	}
	d, err = r.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adapted, _ := d.liveCMN()
	r.release(d, true)
	// Open speech starts from the phone mean too and leaves nothing behind:
	// decoders are shared by calls, and one call's line must not shape the
	// next call's first words.
	if adapted != before {
		t.Fatalf("open utterance left its mean in the pooled decoder:\n%v\n%v", before, adapted)
	}
}

// TestOneDigitVariants: the one-digit pass's variant words are in the
// phone-band dictionary and grammar only, each a digit name with the
// suffix, and the any-length digits grammar does not list them.
func TestOneDigitVariants(t *testing.T) {
	for _, phoneBand := range []bool{true, false} {
		dir := t.TempDir()
		m, err := buildModel(dir, 1, DefaultModelDir, phoneCMNInit, kbSentences(t), nil, phoneBand)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(m.dict)
		if err != nil {
			t.Fatal(err)
		}
		dict := string(data)
		g := digitGrammar(m.digitVariants)
		for w, prons := range oneDigitVariants {
			if !slices.Contains(digitWords, w) {
				t.Errorf("variant of %q, not a digit", w)
			}
			vw := w + digitVariantSuffix
			if got := strings.Contains(g, vw); got != phoneBand {
				t.Errorf("phone band %v: grammar lists %s: %v", phoneBand, vw, got)
			}
			if got := strings.Contains(dict, "\n"+vw+" "+prons[0]+"\n"); got != phoneBand {
				t.Errorf("phone band %v: dictionary has %s: %v", phoneBand, vw, got)
			}
			if strings.Contains(digitsGrammar, vw) {
				t.Errorf("any-length grammar lists %s", vw)
			}
		}
	}
}
