package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

// turnsPerCall is how many turns the benchmarks write before they start
// a new call, about a long support call.
const turnsPerCall = 100

// Benchmarks measures how many turns per second a backend stores, the
// number that bounds how many calls one node can record. Each
// sub-benchmark gets a new store from open and reports "turns/s":
//
//   - AppendTurn: one goroutine, one synchronous write after another.
//   - AppendTurnParallel: GOMAXPROCS goroutines, each writing its own call,
//     as concurrent calls do.
//   - Async: turns queued through Async as fast as it takes them (the
//     producer yields when the queue is full), timed until all are stored.
func Benchmarks(b *testing.B, open func(b *testing.B) parley.Store) {
	b.Run("AppendTurn", func(b *testing.B) {
		s := open(b)
		defer closeBench(b, s)
		w := newBenchWriter("seq")
		b.ReportAllocs()
		for b.Loop() {
			if err := w.next(s); err != nil {
				b.Fatal(err)
			}
		}
		reportTurns(b)
	})
	b.Run("AppendTurnParallel", func(b *testing.B) {
		s := open(b)
		defer closeBench(b, s)
		var writers atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := newBenchWriter(fmt.Sprintf("par%d", writers.Add(1)))
			for pb.Next() {
				if err := w.next(s); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportTurns(b)
	})
	b.Run("Async", func(b *testing.B) {
		a := store.NewAsync(open(b), store.AsyncOptions{Log: zerolog.Nop()})
		defer closeBench(b, a)
		w := newBenchWriter("async")
		var retries int
		b.ReportAllocs()
		b.ResetTimer()
		// A plain loop, not b.Loop: the timer must keep running through
		// the Flush below.
		for range b.N {
			for {
				err := w.next(a)
				if !errors.Is(err, store.ErrQueueFull) {
					if err != nil {
						b.Fatal(err)
					}
					break
				}
				// The benchmark wants every turn stored, so it retries
				// where the media path would give up (Async still counts
				// the drop).
				retries++
				runtime.Gosched()
			}
		}
		if err := a.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st := a.Stats(); st.Failed > 0 {
			b.Fatalf("async writes failed: %+v", st)
		}
		reportTurns(b)
		b.ReportMetric(float64(retries)/float64(b.N), "full/op")
	})
}

// benchWriter writes numbered turns, opening a new call every turnsPerCall.
type benchWriter struct {
	prefix string
	call   string
	calls  int
	seq    int
	turn   parley.Turn
}

func newBenchWriter(prefix string) *benchWriter {
	return &benchWriter{prefix: prefix, seq: turnsPerCall, turn: parley.Turn{
		Speaker: parley.SpeakerCaller, Text: "Hi, my card was stolen yesterday and I need to block it please",
		Signals: &parley.Signals{Intent: "card_stolen", ASRConfidence: 0.92, NLUConfidence: 0.81, AITime: 4 * time.Second},
	}}
}

// next writes one turn; a failed turn is retried on the next call so that
// a queue-full retry does not skip a seq.
func (w *benchWriter) next(s parley.Store) error {
	ctx := context.Background()
	now := time.Now()
	if w.seq == turnsPerCall {
		w.calls++
		id := fmt.Sprintf("bench-%s-%d", w.prefix, w.calls)
		if err := s.CreateCall(ctx, parley.Call{ID: id, Channel: parley.ChannelTwilio, From: "+15550001", To: "+15559999", StartedAt: now}); err != nil {
			w.calls--
			return err
		}
		w.call, w.seq = id, 0
	}
	w.turn.CallID, w.turn.Seq = w.call, w.seq
	w.turn.Start, w.turn.End, w.turn.EndOfSpeech, w.turn.FirstAudio = now, now, now, now
	if err := s.AppendTurn(ctx, w.turn); err != nil {
		return err
	}
	w.seq++
	return nil
}

func reportTurns(b *testing.B) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(b.N)/sec, "turns/s")
	}
}

func closeBench(b *testing.B, s parley.Store) {
	if err := s.Close(); err != nil {
		b.Error(err)
	}
}
