package sphinx

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// fullEval runs the whole evaluation (all voices, all digits) and prints
// the figures; the default run uses subsets to stay fast.
var fullEval = flag.Bool("sphinx.full", false, "run the full WER and digit-accuracy evaluation")

// digitsDir is the shared recorded-digits set (FSDD, see its SOURCE.md).
const digitsDir = "../../../shared/datasets/digits"

// readLines reads a testdata list, skipping comments and blank lines.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// kbSentences is the knowledge-base-like sentence list of the tests.
func kbSentences(t testing.TB) []string { return readLines(t, "testdata/kb_sentences.txt") }

// newTestRecognizer builds a recognizer on the test knowledge base.
func newTestRecognizer(t testing.TB, maxDecoders int) *Recognizer {
	t.Helper()
	r, err := New(Config{DataDir: t.TempDir(), Sentences: kbSentences(t), MaxDecoders: maxDecoders})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// synth speaks text with a flite voice through the flite CLI and returns
// the samples and their rate.
func synth(t testing.TB, voice, text string) ([]int16, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "say.wav")
	out, err := exec.Command("flite", "-voice", voice, "-t", text, "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("flite -voice %s %q: %v: %s", voice, text, err, out)
	}
	pcm, rate, err := media.ReadWAVFile(path)
	if err != nil {
		t.Fatalf("read flite output: %v", err)
	}
	return pcm, rate
}

// phoneChannel sends audio through a phone line: down to 8 kHz, optional
// white noise at snrDB (relative to the speech power; 0 = none), G.711
// mu-law, and returns 8 kHz samples as the call leg would deliver them.
func phoneChannel(pcm []int16, rate int, snrDB float64, seed uint64) []int16 {
	p8 := media.Resample(pcm, rate, 8000)
	if snrDB > 0 {
		addWhiteNoise(p8, snrDB, seed)
	}
	out := make([]int16, len(p8))
	for i, v := range p8 {
		out[i] = media.MulawToLinear(media.LinearToMulaw(v))
	}
	return out
}

// addWhiteNoise adds Gaussian white noise at snrDB below the power of the
// active (speech) part of pcm.
func addWhiteNoise(pcm []int16, snrDB float64, seed uint64) {
	var p float64
	n := 0
	for _, v := range pcm {
		if math.Abs(float64(v)) > 100 {
			p += float64(v) * float64(v)
			n++
		}
	}
	if n == 0 {
		return
	}
	sigma := math.Sqrt(p / float64(n) / math.Pow(10, snrDB/10))
	rng := rand.New(rand.NewPCG(seed, 7))
	for i, v := range pcm {
		pcm[i] = clip16(float64(v) + rng.NormFloat64()*sigma)
	}
}

// wordErrors is the word-level edit distance between ref and hyp.
func wordErrors(ref, hyp []string) int {
	prev := make([]int, len(hyp)+1)
	cur := make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			c := prev[j-1]
			if ref[i-1] != hyp[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(hyp)]
}

// evalItem is one test utterance after the phone channel.
type evalItem struct {
	voice, text string
	pcm8        []int16
}

// makeEvalSet speaks every sentence with every voice through the channel.
func makeEvalSet(t testing.TB, voices, sentences []string, snrDB float64) []evalItem {
	t.Helper()
	var items []evalItem
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for vi, v := range voices {
		for si, s := range sentences {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				pcm, rate := synth(t, v, s)
				it := evalItem{voice: v, text: s, pcm8: phoneChannel(pcm, rate, snrDB, uint64(vi*1000+si))}
				mu.Lock()
				items = append(items, it)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	sort.Slice(items, func(i, j int) bool {
		if items[i].voice != items[j].voice {
			return items[i].voice < items[j].voice
		}
		return items[i].text < items[j].text
	})
	return items
}

// werResult is the outcome of decoding an evaluation set.
type werResult struct {
	errors, words int
	audio, cpu    time.Duration
	perVoice      map[string][2]int
	confs         []float64
	mistakes      []string
}

func (w werResult) wer() float64 { return float64(w.errors) / float64(max(w.words, 1)) }

// runWER decodes items on 2 workers and scores them.
func runWER(t testing.TB, r *Recognizer, items []evalItem, mode func(evalItem) dialog.Mode) werResult {
	t.Helper()
	res := werResult{perVoice: map[string][2]int{}}
	var mu sync.Mutex
	ch := make(chan evalItem)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				start := time.Now()
				tr, err := r.TranscribePCM(context.Background(), it.pcm8, 8000, mode(it))
				el := time.Since(start)
				if err != nil {
					t.Errorf("transcribe %q: %v", it.text, err)
					continue
				}
				ref := normalizeSentence(it.text)
				e := wordErrors(ref, strings.Fields(tr.Text))
				mu.Lock()
				res.errors += e
				res.words += len(ref)
				res.audio += time.Duration(len(it.pcm8)) * time.Second / 8000
				res.cpu += el
				pv := res.perVoice[it.voice]
				res.perVoice[it.voice] = [2]int{pv[0] + e, pv[1] + len(ref)}
				res.confs = append(res.confs, tr.Confidence)
				if e > 0 {
					res.mistakes = append(res.mistakes, fmt.Sprintf("%s: %q -> %q (%.2f)", it.voice, it.text, tr.Text, tr.Confidence))
				}
				mu.Unlock()
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	sort.Strings(res.mistakes)
	return res
}

// modeFor picks the mode a dialog would use for a test sentence.
func modeFor(it evalItem) dialog.Mode {
	ws := normalizeSentence(it.text)
	for _, w := range ws {
		if w != "oh" && !isDigitWord(w) {
			return dialog.ModeOpen
		}
	}
	return dialog.ModeDigits
}

func isDigitWord(w string) bool {
	for _, d := range digitWords {
		if w == d {
			return true
		}
	}
	return false
}

// newUpsampler converts 8 kHz frames to 16 kHz one at a time, the way a call
// feeds the recognizer; the returned slice is reused.
func newUpsampler() func([]int16) []int16 {
	rs := media.NewResampler(8000, 16000)
	var buf []int16
	return func(p []int16) []int16 {
		buf = rs.Process(buf[:0], p)
		return buf
	}
}

// digitFile is one recording of the shared digits set.
type digitFile struct {
	path, speaker string
	digit         int
}

// digitFiles lists the recorded digits, every step-th file.
func digitFiles(t testing.TB, step int) []digitFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(digitsDir, "*.wav"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no recordings in %s (%v)", digitsDir, err)
	}
	sort.Strings(paths)
	var out []digitFile
	for i := 0; i < len(paths); i += step {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(paths[i]), ".wav"), "_")
		if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] < '0' || parts[0][0] > '9' {
			t.Fatalf("unexpected file name %s", paths[i])
		}
		out = append(out, digitFile{path: paths[i], speaker: parts[1], digit: int(parts[0][0] - '0')})
	}
	return out
}

// digitAccuracy decodes recordings in ModeDigits after a G.711 round trip
// (they are 8 kHz linear PCM) and counts exact one-digit answers per speaker.
func digitAccuracy(t testing.TB, r *Recognizer, files []digitFile) (ok, total map[string]int, confusions map[string]int) {
	t.Helper()
	ok, total, confusions = map[string]int{}, map[string]int{}, map[string]int{}
	var mu sync.Mutex
	ch := make(chan digitFile)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range ch {
				pcm, rate, err := media.ReadWAVFile(f.path)
				if err != nil {
					t.Errorf("read %s: %v", f.path, err)
					continue
				}
				for i, v := range pcm {
					pcm[i] = media.MulawToLinear(media.LinearToMulaw(v))
				}
				tr, err := r.TranscribePCM(context.Background(), pcm, rate, dialog.ModeDigits)
				if err != nil {
					t.Errorf("transcribe %s: %v", f.path, err)
					continue
				}
				want := digitWords[f.digit]
				mu.Lock()
				total[f.speaker]++
				if tr.Text == want {
					ok[f.speaker]++
				} else {
					confusions[want+" -> "+tr.Text]++
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range files {
		ch <- f
	}
	close(ch)
	wg.Wait()
	return ok, total, confusions
}

// TestDigitsAccuracy measures digit accuracy on the real recorded digits
// (FSDD speakers jackson and nicolas, see ../shared/datasets/digits/SOURCE.md):
// 334 files by default, all 1000 with -sphinx.full.
func TestDigitsAccuracy(t *testing.T) {
	step := 3
	if *fullEval {
		step = 1
	}
	r := newTestRecognizer(t, 2)
	ok, total, conf := digitAccuracy(t, r, digitFiles(t, step))
	all, good := 0, 0
	for s, n := range total {
		all += n
		good += ok[s]
		t.Logf("speaker %s: %d/%d = %.1f%%", s, ok[s], n, 100*float64(ok[s])/float64(n))
	}
	acc := float64(good) / float64(all)
	t.Logf("digit accuracy: %d/%d = %.1f%%", good, all, 100*acc)
	type kv struct {
		k string
		v int
	}
	var top []kv
	for k, v := range conf {
		top = append(top, kv{k, v})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v || (top[i].v == top[j].v && top[i].k < top[j].k) })
	for i := 0; i < len(top) && i < 8; i++ {
		t.Logf("  %s: %d", top[i].k, top[i].v)
	}
	if acc < minDigitAccuracy {
		t.Errorf("digit accuracy %.1f%%, want >= %.0f%%", 100*acc, 100*minDigitAccuracy)
	}
}

// TestWER measures the word error rate on phone-quality synthesized support
// questions, clean and with white noise at 15 dB SNR. The default run uses
// two voices and every third question; -sphinx.full uses 4 voices x 60.
func TestWER(t *testing.T) {
	requireFlite(t)
	qs := readLines(t, "testdata/questions.txt")
	voices := []string{"kal", "awb"}
	if *fullEval {
		voices = []string{"slt", "kal", "rms", "awb"}
	} else {
		var half []string
		for i := 0; i < len(qs); i += 3 {
			half = append(half, qs[i])
		}
		qs = half
	}
	r := newTestRecognizer(t, 2)
	open := func(evalItem) dialog.Mode { return dialog.ModeOpen }
	for _, tc := range []struct {
		name   string
		snr    float64
		maxWER float64
	}{
		{"clean", 0, maxWERClean},
		{"15dB", 15, maxWERNoisy},
	} {
		res := runWER(t, r, makeEvalSet(t, voices, qs, tc.snr), open)
		t.Logf("%s: WER %.1f%% (%d errors / %d words), per voice %v", tc.name, 100*res.wer(), res.errors, res.words, res.perVoice)
		for _, m := range res.mistakes {
			t.Logf("  %s", m)
		}
		if res.wer() > tc.maxWER {
			t.Errorf("%s WER %.1f%%, want <= %.0f%%", tc.name, 100*res.wer(), 100*tc.maxWER)
		}
	}
}

// threadCPU is the CPU time of the calling OS thread, so the real-time
// factor does not count time other processes took from this core.
func threadCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecognize reports the real-time factor of one stream on one
// core: decoder CPU time per second of audio (rtf metric), for clean and
// noisy (15 dB) speech in open mode and a digit string in digits mode.
func BenchmarkRecognize(b *testing.B) {
	requireFlite(b)
	for _, bc := range []struct {
		name string
		text string
		snr  float64
		mode dialog.Mode
	}{
		{"open", "How much money do I have in my checking account?", 0, dialog.ModeOpen},
		{"open-15dB", "How much money do I have in my checking account?", 15, dialog.ModeOpen},
		{"digits", "4 5 6 7 8 9", 0, dialog.ModeDigits},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newTestRecognizer(b, 1)
			pcm8 := phone(b, "slt", bc.text, bc.snr)
			audio := time.Duration(len(pcm8)) * time.Second / 8000
			ctx := context.Background()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu0 := threadCPU(b)
			for b.Loop() {
				if _, err := r.TranscribePCM(ctx, pcm8, 8000, bc.mode); err != nil {
					b.Fatal(err)
				}
			}
			cpu := threadCPU(b) - cpu0
			b.ReportMetric(cpu.Seconds()/float64(b.N)/audio.Seconds(), "rtf")
		})
	}
}
