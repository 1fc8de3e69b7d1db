package kb

import (
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley/dialog/kb/nlu"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	sampleOnce   sync.Once
	sampleKBVal  *KB
	sampleEngine *Engine
	sampleErr    error
)

// loadSample loads configs/kb and trains an engine on it once for all tests.
func loadSample() {
	sampleKBVal, sampleErr = Load("../../configs/kb")
	if sampleErr != nil {
		return
	}
	sampleEngine, sampleErr = New(sampleKBVal, Options{NLU: nlu.Options{Seed: 1}})
}

func sampleKB(tb testing.TB) *KB {
	tb.Helper()
	sampleOnce.Do(loadSample)
	if sampleErr != nil {
		tb.Fatal(sampleErr)
	}
	return sampleKBVal
}

func engine(tb testing.TB) *Engine {
	tb.Helper()
	sampleOnce.Do(loadSample)
	if sampleErr != nil {
		tb.Fatal(sampleErr)
	}
	return sampleEngine
}
