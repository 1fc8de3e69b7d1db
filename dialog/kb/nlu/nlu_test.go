package nlu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toyExamples is a small three-intent training set with a few out-of-scope
// utterances.
func toyExamples() []Example {
	var ex []Example
	for _, t := range []string{"my card has not arrived", "where is my new card", "card still not delivered",
		"when will my card arrive", "track my card delivery", "has my card been sent", "card delivery is late"} {
		ex = append(ex, Example{t, "card_arrival"})
	}
	for _, t := range []string{"i want to top up my account", "how do i add money", "top up with bank transfer",
		"add funds to my balance", "top-up failed", "can i top up by card", "put money in my account"} {
		ex = append(ex, Example{t, "top_up"})
	}
	for _, t := range []string{"what is the exchange rate", "exchange rate for euros", "how much is a dollar in pounds",
		"currency conversion rate", "rate to convert to yen", "what rate do you use to exchange", "exchange rates today"} {
		ex = append(ex, Example{t, "exchange_rate"})
	}
	return ex
}

func TestPredictToy(t *testing.T) {
	for _, folds := range []int{1, 2, 3} { // 1: no cross-fitting
		m, err := Train(toyExamples(), Options{Folds: folds})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ text, want string }{
			{"my card did not arrive yet", "card_arrival"},
			{"top up my account please", "top_up"},
			{"what's the exchange rate for dollars", "exchange_rate"},
			{"zzqx blorf", OutOfScope}, // no known word
			{"", OutOfScope},
			{"?!", OutOfScope},
		} {
			p := m.Predict(tc.text)
			if p.Intent != tc.want {
				t.Errorf("folds %d: Predict(%q) = %+v, want %s", folds, tc.text, p, tc.want)
			}
			if p.Confidence < 0 || p.Confidence > 1 || len(p.Top) != 3 {
				t.Errorf("folds %d: Predict(%q): confidence %v, %d top", folds, tc.text, p.Confidence, len(p.Top))
			}
		}
		if got := strings.Join(m.Intents(), ","); got != "card_arrival,exchange_rate,top_up" {
			t.Errorf("Intents() = %s", got)
		}
	}
}

func TestThresholdOverride(t *testing.T) {
	for _, tc := range []struct {
		threshold float64
		wantOOS   bool
	}{
		{0, false},     // trained without oos examples: threshold 0
		{1e-9, false},  // below any confidence
		{0.9999, true}, // above the toy model's confidence
		{1.5, true},    // everything is out of scope
	} {
		m, err := Train(toyExamples(), Options{Folds: 2, OOSThreshold: tc.threshold})
		if err != nil {
			t.Fatal(err)
		}
		if tc.threshold > 0 && m.Threshold() != tc.threshold {
			t.Errorf("Threshold() = %v, want %v", m.Threshold(), tc.threshold)
		}
		p := m.Predict("when will my card arrive")
		if p.OutOfScope != tc.wantOOS || (p.Intent == OutOfScope) != tc.wantOOS {
			t.Errorf("threshold %v: %+v, want out of scope %v", tc.threshold, p, tc.wantOOS)
		}
		if len(p.Top) == 0 || p.Top[0].Intent != "card_arrival" {
			t.Errorf("threshold %v: top %+v, want card_arrival first", tc.threshold, p.Top)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	for name, ex := range map[string][]Example{
		"none":       nil,
		"one intent": {{"a", "x"}, {"b", "x"}},
		"empty text": {{"a", "x"}, {" ", "y"}},
		"no intent":  {{"a", "x"}, {"b", ""}},
	} {
		if _, err := Train(ex, Options{}); err == nil {
			t.Errorf("%s: Train succeeded", name)
		}
	}
}

func TestPredictConcurrent(t *testing.T) {
	m, err := Train(toyExamples(), Options{Folds: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := m.Predict("where is my card")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if p := m.Predict("where is my card"); p.Intent != want.Intent || p.Confidence != want.Confidence {
					errs <- fmt.Sprintf("goroutine %d iter %d: %+v", g, i, p)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestLoadExamples(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body string
		want       []Example
		errHas     string
	}{
		{"ok.csv", "text,category\r\n\"Where is, my card?\",card_arrival\r\n\" multi\nline \",top_up\r\n",
			[]Example{{"Where is, my card?", "card_arrival"}, {"multi\nline", "top_up"}}, ""},
		{"ok.jsonl", "{\"text\": \"hi there\", \"intent\": \"greet\"}\n\n{\"text\":\"bye\",\"intent\":\"oos\"}\n",
			[]Example{{"hi there", "greet"}, {"bye", "oos"}}, ""},
		{"sniff.txt", "{\"text\": \"a\", \"intent\": \"b\"}", []Example{{"a", "b"}}, ""},
		{"bad.csv", "text,category\nok,x\n,y\n", nil, "line 3: empty text"},
		{"nohdr.csv", "foo,bar\na,b\n", nil, "line 1"},
		{"quote.csv", "text,category\n\"unterminated,x\n", nil, "line"},
		{"bad.jsonl", "{\"text\":\"a\",\"intent\":\"b\"}\n{\"text\":\"a\"}\n", nil, "line 2"},
		{"junk.jsonl", "{\"text\":\"a\",\"intent\":\"b\"}\n\nnot json\n", nil, "line 3"},
		{"empty.csv", "", nil, "empty"},
	} {
		got, err := LoadExamples(write(tc.name, tc.body))
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := LoadExamples(filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzLoadExamples(f *testing.F) {
	f.Add([]byte("text,category\nwhere is my card,card_arrival\n"))
	f.Add([]byte("{\"text\": \"hi\", \"intent\": \"greet\"}\n"))
	f.Add([]byte("text,category\n\"a\nb\",c\n"))
	f.Add([]byte("{\"text\": 1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := parseExamples(data)
		if err != nil {
			return
		}
		for _, e := range ex {
			if e.Text == "" || e.Intent == "" {
				t.Fatalf("accepted empty field: %+v", e)
			}
		}
	})
}
