package nlu

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time, a load-independent
// measure of training cost on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrainBanking77 trains on the complete Banking77 training split
// (10,003 utterances, 77 intents).
func BenchmarkTrainBanking77(b *testing.B) {
	ex := loadDataset(b, "banking77/train.csv")
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Train(ex, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}

// BenchmarkPredict classifies one utterance with a CLINC150 model (151
// classes, the larger of the two).
func BenchmarkPredict(b *testing.B) {
	// One fold: calibration does not change the cost of a prediction.
	m, err := Train(loadDataset(b, "clinc150/train.jsonl"), Options{Folds: 1})
	if err != nil {
		b.Fatal(err)
	}
	texts := []string{"how do i transfer money to my savings account", "what's the weather like in paris tomorrow",
		"can you tell me a joke", "i need to book a table for four at 7pm"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Predict(texts[i%len(texts)])
		i++
	}
}
