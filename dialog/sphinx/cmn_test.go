package sphinx

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// TestCepSum: the mean measured on phone speech is near the phone mean
// (c0 is the level), white noise moves it, and measuring leaves the
// decoder's own live mean alone.
func TestCepSum(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	d, err := r.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.release(d, true)
	before, _ := d.liveCMN()
	phoneMean, _ := parseCMNInit(phoneCMNInit)
	mean := func(snr float64) [13]float64 {
		pcm := media.Resample(phone(t, "kal", "I lost my credit card.", snr), 8000, sampleRate)
		sum, n := d.cepSum(pcm)
		if n < 50 {
			t.Fatalf("%g dB: %d frames measured, want most of the speech", snr, n)
		}
		for i := range sum {
			sum[i] /= float64(n)
		}
		return sum
	}
	clean, noisy := mean(0), mean(15)
	if math.Abs(clean[0]-float64(phoneMean[0])) > 8 {
		t.Errorf("clean c0 %.1f, phone mean %.1f", clean[0], phoneMean[0])
	}
	var dist float64
	for i := range clean {
		dist += (clean[i] - noisy[i]) * (clean[i] - noisy[i])
	}
	if dist < 1 {
		t.Errorf("white noise left the mean where it was: %v / %v", clean, noisy)
	}
	if _, n := d.cepSum(make([]int16, sampleRate)); n != 0 {
		t.Errorf("digital silence: %d frames measured", n)
	}
	if after, _ := d.liveCMN(); after != before {
		t.Errorf("measuring changed the decoder's mean:\n%v\n%v", before, after)
	}
}

// TestPrimedStream: an open-mode stream gathers livePrime of audio before
// its utterance starts; a Partial starts it early, and Finish starts a
// shorter one. Both still recognize the phrase.
func TestPrimedStream(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	pcm := media.Resample(phone(t, "kal", "I lost my credit card.", 0), 8000, sampleRate)
	begun := func(st dialog.TranscribeStream) bool {
		s := st.(*stream)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.begun
	}
	for _, partial := range []bool{false, true} {
		st, err := r.Start(context.Background(), dialog.ModeOpen)
		if err != nil {
			t.Fatal(err)
		}
		lead := make([]int16, sampleRate/5)
		if err := st.Write(lead); err != nil {
			t.Fatal(err)
		}
		if begun(st) {
			t.Fatal("utterance began before its prime")
		}
		if partial {
			if _, err := st.(dialog.PartialStream).Partial(); err != nil {
				t.Fatal(err)
			}
			if !begun(st) {
				t.Fatal("Partial did not begin the utterance")
			}
		}
		for off := 0; off < len(pcm); off += chunk {
			if err := st.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
		if want := len(lead)+len(pcm) >= livePrime || partial; begun(st) != want {
			t.Fatalf("begun %v after %d samples, want %v", begun(st), len(lead)+len(pcm), want)
		}
		tr, err := st.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if tr.Text != "i lost my credit card" {
			t.Errorf("partial %v: got %q", partial, tr.Text)
		}
	}
}

// TestHistoryIndependent: a pooled decoder gives the same result for the
// same audio whatever it decoded before (another call's noisy line): the
// cepstral mean is measured per utterance and the front end's noise
// statistics start afresh.
func TestHistoryIndependent(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	ctx := context.Background()
	x := phone(t, "kal", "I lost my credit card.", 15)
	first, err := r.TranscribePCM(ctx, x, 8000, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	other := phone(t, "kal", "How much money do I have in my checking account?", 5)
	for i := range other {
		other[i] = clip16(float64(other[i]) * 3)
	}
	if _, err := r.TranscribePCM(ctx, other, 8000, dialog.ModeOpen); err != nil {
		t.Fatal(err)
	}
	again, err := r.TranscribePCM(ctx, x, 8000, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("same audio, different result after another line:\n%+v\n%+v", first, again)
	}
}
