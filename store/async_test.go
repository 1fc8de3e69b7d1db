package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
)

// fakeStore records the writes applied to it. When gate is set, every
// write first announces itself on started and then waits for gate (or for
// its context to end), which lets a test hold the Async writer mid-write.
type fakeStore struct {
	gate    chan struct{}
	started chan string
	failOn  string // op name whose writes fail

	mu      sync.Mutex
	ops     []string
	turns   []parley.Turn
	events  []parley.Event
	ctxErrs []error // the context's error when each write was applied
	closed  int
}

func (f *fakeStore) write(ctx context.Context, op string) error {
	if f.started != nil {
		select {
		case f.started <- op:
		default: // nobody is waiting for more announcements
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	if op == f.failOn {
		return errors.New("fake: " + op + " failed")
	}
	f.ops = append(f.ops, op)
	return nil
}

func (f *fakeStore) CreateCall(ctx context.Context, c parley.Call) error {
	return f.write(ctx, "create "+c.ID)
}

func (f *fakeStore) EndCall(ctx context.Context, id string, _ time.Time, o parley.Outcome, _ string) error {
	return f.write(ctx, "end "+id+" "+string(o))
}

func (f *fakeStore) AppendTurn(ctx context.Context, t parley.Turn) error {
	if err := f.write(ctx, fmt.Sprintf("turn %s/%d", t.CallID, t.Seq)); err != nil {
		return err
	}
	f.mu.Lock()
	f.turns = append(f.turns, t)
	f.mu.Unlock()
	return nil
}

func (f *fakeStore) AppendEvent(ctx context.Context, e parley.Event) error {
	if err := f.write(ctx, "event "+e.CallID+" "+e.Kind); err != nil {
		return err
	}
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
	return nil
}

func (f *fakeStore) GetCall(_ context.Context, id string) (parley.Call, error) {
	if id == "CA-known" {
		return parley.Call{ID: id}, nil
	}
	return parley.Call{}, parley.ErrNotFound
}

func (f *fakeStore) Events(context.Context, string) ([]parley.Event, error) {
	return []parley.Event{{Kind: "passed-through"}}, nil
}

func (f *fakeStore) ListCalls(_ context.Context, q parley.CallQuery) ([]parley.Call, error) {
	return []parley.Call{{ID: "list:" + q.Text}}, nil
}

func (f *fakeStore) ForgetBefore(_ context.Context, t time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "forget before "+t.Format(time.RFC3339))
	return 1, nil
}

func (f *fakeStore) ForgetNumber(_ context.Context, number string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "forget "+number)
	return 1, nil
}

func (f *fakeStore) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fakeStore) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

// syncBuffer is a log sink safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAsyncAppliesInOrder(t *testing.T) {
	ctx := context.Background()
	f := &fakeStore{}
	a := NewAsync(f, AsyncOptions{})
	defer a.Close()
	want := []string{"create CA-1"}
	if err := a.CreateCall(ctx, parley.Call{ID: "CA-1"}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: i}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("turn CA-1/%d", i))
		if i%10 == 0 {
			if err := a.AppendEvent(ctx, parley.Event{CallID: "CA-1", Kind: "decision"}); err != nil {
				t.Fatal(err)
			}
			want = append(want, "event CA-1 decision")
		}
	}
	if err := a.EndCall(ctx, "CA-1", time.Now(), parley.OutcomeResolved, "bye"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "end CA-1 resolved")
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := f.applied(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("applied %d writes out of order or incomplete:\n%v\nwant\n%v", len(got), got, want)
	}
	if st := a.Stats(); st != (AsyncStats{Written: uint64(len(want))}) {
		t.Fatalf("Stats = %+v, want %d written", st, len(want))
	}
}

func TestAsyncDropsWhenFullAndCounts(t *testing.T) {
	ctx := context.Background()
	f := &fakeStore{gate: make(chan struct{}), started: make(chan string, 16)}
	logs := &syncBuffer{}
	a := NewAsync(f, AsyncOptions{Queue: 2, Log: zerolog.New(logs)})
	defer a.Close()

	// The writer takes the first write and blocks in the store ...
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: 0}); err != nil {
		t.Fatal(err)
	}
	<-f.started
	// ... two more fill the queue ...
	for seq := 1; seq <= 2; seq++ {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); err != nil {
			t.Fatalf("AppendTurn(%d) into a queue with room: %v", seq, err)
		}
	}
	// ... and the rest are dropped, counted and logged, without blocking.
	const extra = 5
	for seq := 3; seq < 3+extra; seq++ {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("AppendTurn(%d) into a full queue = %v, want ErrQueueFull", seq, err)
		}
	}
	if err := a.EndCall(ctx, "CA-1", time.Now(), parley.OutcomeResolved, ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("EndCall into a full queue = %v, want ErrQueueFull", err)
	}
	if st := a.Stats(); st.Dropped != extra+1 || st.Pending != 2 {
		t.Fatalf("Stats = %+v, want %d dropped and 2 pending", st, extra+1)
	}
	out := logs.String()
	if !strings.Contains(out, `"message":"store: write dropped"`) || !strings.Contains(out, `"call_id":"CA-1"`) ||
		!strings.Contains(out, `"dropped_total":1`) {
		t.Fatalf("drop not logged with its call and count; log:\n%s", out)
	}
	if n := strings.Count(out, "write dropped"); n < 1 || n > extra+1 {
		t.Fatalf("logged %d drop lines for %d drops", n, extra+1)
	}

	close(f.gate)
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := f.applied(); strings.Join(got, ",") != "turn CA-1/0,turn CA-1/1,turn CA-1/2" {
		t.Fatalf("applied %v, want the three queued turns", got)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 3, Dropped: extra + 1}) {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestAsyncCountsAndLogsFailures(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	f := &fakeStore{failOn: "turn CA-1/1"}
	a := NewAsync(f, AsyncOptions{Log: zerolog.New(logs)})
	defer a.Close()
	for seq := range 3 {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 2, Failed: 1}) {
		t.Fatalf("Stats = %+v, want 2 written, 1 failed", st)
	}
	if out := logs.String(); !strings.Contains(out, "fake: turn CA-1/1 failed") || !strings.Contains(out, `"op":"append_turn"`) {
		t.Fatalf("failure not logged with its error and op; log:\n%s", out)
	}
}

func TestAsyncDetachesCallerContext(t *testing.T) {
	f := &fakeStore{}
	a := NewAsync(f, AsyncOptions{})
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the call is over, its context gone; the end must still be stored
	if err := a.EndCall(ctx, "CA-1", time.Now(), parley.OutcomeDropped, "hung up"); err != nil {
		t.Fatalf("EndCall: %v", err)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.applied(); len(got) != 1 || f.ctxErrs[0] != nil {
		t.Fatalf("applied %v with context errors %v; want the end applied under a live context", got, f.ctxErrs)
	}
}

func TestAsyncCopiesWhatCallersReuse(t *testing.T) {
	ctx := context.Background()
	f := &fakeStore{gate: make(chan struct{}), started: make(chan string, 4)}
	a := NewAsync(f, AsyncOptions{})
	defer a.Close()
	// Hold the writer so the caller's changes happen before the writes apply.
	if err := a.CreateCall(ctx, parley.Call{ID: "CA-0"}); err != nil {
		t.Fatal(err)
	}
	<-f.started
	sig := &parley.Signals{Intent: "card_stolen", Repeats: 1}
	data := []byte(`{"n":1}`)
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: 0, Signals: sig}); err != nil {
		t.Fatal(err)
	}
	if err := a.AppendEvent(ctx, parley.Event{CallID: "CA-1", Kind: "decision", Data: data}); err != nil {
		t.Fatal(err)
	}
	sig.Intent, sig.Repeats = "reused", 99
	copy(data, `{"n":9}`)
	close(f.gate)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.turns) != 1 || f.turns[0].Signals == nil || *f.turns[0].Signals != (parley.Signals{Intent: "card_stolen", Repeats: 1}) {
		t.Fatalf("stored turn %+v, want the signals as they were at AppendTurn", f.turns)
	}
	if f.turns[0].Signals == sig {
		t.Fatal("the store was handed the caller's own *Signals")
	}
	if len(f.events) != 1 || string(f.events[0].Data) != `{"n":1}` {
		t.Fatalf("stored events %+v, want data as it was at AppendEvent", f.events)
	}
}

func TestAsyncReadsPassThrough(t *testing.T) {
	ctx := context.Background()
	a := NewAsync(&fakeStore{}, AsyncOptions{})
	defer a.Close()
	if c, err := a.GetCall(ctx, "CA-known"); err != nil || c.ID != "CA-known" {
		t.Fatalf("GetCall = %+v, %v", c, err)
	}
	if _, err := a.GetCall(ctx, "CA-x"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("GetCall(unknown) = %v, want ErrNotFound", err)
	}
	if evs, err := a.Events(ctx, "CA-known"); err != nil || len(evs) != 1 || evs[0].Kind != "passed-through" {
		t.Fatalf("Events = %+v, %v", evs, err)
	}
	if cs, err := a.ListCalls(ctx, parley.CallQuery{Text: "q"}); err != nil || len(cs) != 1 || cs[0].ID != "list:q" {
		t.Fatalf("ListCalls = %+v, %v", cs, err)
	}
}

func TestAsyncCloseDrainsThenClosesStore(t *testing.T) {
	ctx := context.Background()
	f := &fakeStore{}
	a := NewAsync(f, AsyncOptions{Queue: 1000})
	for seq := range 500 {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(f.applied()); n != 500 {
		t.Fatalf("Close applied %d of 500 queued writes", n)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if f.closed != 1 {
		t.Fatalf("wrapped store closed %d times, want once", f.closed)
	}
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: 500}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendTurn after Close = %v, want ErrClosed", err)
	}
	if err := a.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close = %v, want ErrClosed", err)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 500, Dropped: 1}) {
		t.Fatalf("Stats = %+v, want 500 written, the late write dropped", st)
	}
}

func TestAsyncCloseDeadline(t *testing.T) {
	ctx := context.Background()
	// A store that never finishes on its own: only the drain deadline,
	// which cancels the write in flight, gets Close out.
	f := &fakeStore{gate: make(chan struct{}), started: make(chan string, 16)}
	a := NewAsync(f, AsyncOptions{Queue: 8, DrainTimeout: 20 * time.Millisecond})
	for seq := range 4 {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	<-f.started
	err := a.Close()
	if err == nil || !strings.Contains(err.Error(), "4 writes dropped") {
		t.Fatalf("Close = %v, want the drain deadline error counting 4 dropped writes", err)
	}
	if st := a.Stats(); st != (AsyncStats{Dropped: 4}) {
		t.Fatalf("Stats = %+v, want all 4 dropped", st)
	}
	if f.closed != 1 {
		t.Fatalf("wrapped store closed %d times, want once", f.closed)
	}
}

func TestAsyncFlushHonoursContext(t *testing.T) {
	f := &fakeStore{gate: make(chan struct{}), started: make(chan string, 4)}
	a := NewAsync(f, AsyncOptions{Queue: 1})
	defer func() {
		close(f.gate)
		a.Close()
	}()
	if err := a.AppendTurn(context.Background(), parley.Turn{CallID: "CA-1", Seq: 0}); err != nil {
		t.Fatal(err)
	}
	<-f.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestAsyncAccountsForEveryWrite races many writers against Close: every
// write made must end up exactly once as written, dropped or failed.
func TestAsyncAccountsForEveryWrite(t *testing.T) {
	f := &fakeStore{failOn: "turn CA-0/7"}
	a := NewAsync(f, AsyncOptions{Queue: 16})
	const writers, each = 8, 200
	var attempts atomic.Uint64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				attempts.Add(1)
				err := a.AppendTurn(context.Background(), parley.Turn{CallID: fmt.Sprintf("CA-%d", w), Seq: i})
				if err != nil && !errors.Is(err, ErrQueueFull) && !errors.Is(err, ErrClosed) {
					t.Errorf("AppendTurn: unexpected error %v", err)
				}
			}
		}()
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	st := a.Stats()
	if total := st.Written + st.Dropped + st.Failed; total != attempts.Load() {
		t.Fatalf("Stats %+v account for %d writes, %d were made", st, total, attempts.Load())
	}
	if st.Written != uint64(len(f.applied())) {
		t.Fatalf("Stats say %d written, the store has %d", st.Written, len(f.applied()))
	}
}

func TestAsyncAppendTurnDoesNotAllocate(t *testing.T) {
	f := &fakeStore{gate: make(chan struct{}), started: make(chan string, 1)}
	a := NewAsync(f, AsyncOptions{Queue: 512})
	defer func() {
		close(f.gate)
		a.Close()
	}()
	ctx := context.Background()
	// Park the writer so the measurement sees only the caller's side.
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1"}); err != nil {
		t.Fatal(err)
	}
	<-f.started
	turn := parley.Turn{CallID: "CA-1", Seq: 1, Speaker: parley.SpeakerCaller, Text: "my card was stolen",
		Signals: &parley.Signals{Intent: "card_stolen", ASRConfidence: 0.9}}
	allocs := testing.AllocsPerRun(200, func() {
		if err := a.AppendTurn(ctx, turn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendTurn allocates %.1f times per call, want 0", allocs)
	}
}

// fakeBatcher is a fakeStore that also takes batches; a batch holding a
// turn with seq failSeq fails as a whole, as a transaction would.
type fakeBatcher struct {
	*fakeStore
	failSeq int
	batches []int
}

func (f *fakeBatcher) WriteBatch(ctx context.Context, ws []Write) error {
	f.mu.Lock()
	f.batches = append(f.batches, len(ws))
	f.mu.Unlock()
	for _, w := range ws {
		if w.AppendTurn == nil || w.AppendTurn.Seq == f.failSeq {
			return errors.New("fake: batch rolled back")
		}
	}
	for _, w := range ws {
		if err := f.AppendTurn(ctx, *w.AppendTurn); err != nil {
			return err
		}
	}
	return nil
}

func TestAsyncBatches(t *testing.T) {
	ctx := context.Background()
	f := &fakeBatcher{fakeStore: &fakeStore{gate: make(chan struct{}), started: make(chan string, 1), failOn: "turn CA-1/13"}, failSeq: 13}
	a := NewAsync(f, AsyncOptions{Queue: 32, MaxBatch: 8})
	defer a.Close()
	// Park the writer on a lone write, queue 20 more, then let it go.
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: 0}); err != nil {
		t.Fatal(err)
	}
	<-f.started
	for seq := 1; seq <= 20; seq++ {
		if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	close(f.gate)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Seqs 1-8 and 17-20 commit as batches; 9-16 holds the bad seq 13, so
	// its batch is retried one write at a time and only 13 fails.
	if got := fmt.Sprint(f.batches); got != "[8 8 4]" {
		t.Fatalf("batch sizes %s, want [8 8 4]", got)
	}
	var want []string
	for seq := 0; seq <= 20; seq++ {
		if seq != 13 {
			want = append(want, fmt.Sprintf("turn CA-1/%d", seq))
		}
	}
	if got := f.applied(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 20, Failed: 1}) {
		t.Fatalf("Stats = %+v, want 20 written and seq 13 failed", st)
	}
}

func TestRateLimit(t *testing.T) {
	var r rateLimit
	sec := int64(time.Second)
	steps := []struct {
		at          int64
		wantOK      bool
		wantSkipped uint64
	}{
		{10 * sec, true, 0},
		{10*sec + 1, false, 0},
		{10*sec + sec/2, false, 0},
		{11*sec - 1, false, 0},
		{11 * sec, true, 3},
		{11*sec + 5, false, 0},
		{20 * sec, true, 1},
		{40 * sec, true, 0},
	}
	for i, st := range steps {
		ok, skipped := r.allow(st.at)
		if ok != st.wantOK || skipped != st.wantSkipped {
			t.Fatalf("step %d: allow(%d) = %t, %d; want %t, %d", i, st.at, ok, skipped, st.wantOK, st.wantSkipped)
		}
	}
}

// BenchmarkAsyncAppendTurn measures what the media path pays to queue a
// turn; the writer applies them to a store that does nothing.
func BenchmarkAsyncAppendTurn(b *testing.B) {
	a := NewAsync(nopStore{}, AsyncOptions{Log: zerolog.Nop()})
	defer a.Close()
	ctx := context.Background()
	turn := parley.Turn{CallID: "CA-1", Speaker: parley.SpeakerCaller, Text: "my card was stolen",
		Signals: &parley.Signals{Intent: "card_stolen", ASRConfidence: 0.9}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		turn.Seq = i
		_ = a.AppendTurn(ctx, turn) // a full queue is a counted drop; fine here
	}
	b.StopTimer()
	if err := a.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	st := a.Stats()
	b.ReportMetric(float64(st.Dropped), "dropped")
}

type nopStore struct{}

func (nopStore) CreateCall(context.Context, parley.Call) error { return nil }
func (nopStore) EndCall(context.Context, string, time.Time, parley.Outcome, string) error {
	return nil
}
func (nopStore) AppendTurn(context.Context, parley.Turn) error                      { return nil }
func (nopStore) AppendEvent(context.Context, parley.Event) error                    { return nil }
func (nopStore) GetCall(context.Context, string) (parley.Call, error)               { return parley.Call{}, nil }
func (nopStore) Events(context.Context, string) ([]parley.Event, error)             { return nil, nil }
func (nopStore) ListCalls(context.Context, parley.CallQuery) ([]parley.Call, error) { return nil, nil }
func (nopStore) ForgetBefore(context.Context, time.Time) (int, error)               { return 0, nil }
func (nopStore) ForgetNumber(context.Context, string) (int, error)                  { return 0, nil }
func (nopStore) Close() error                                                       { return nil }

// TestAsyncForgetNumberAfterQueuedWrites checks that an erasure waits for
// the writes queued before it, so a queued call cannot land after it.
func TestAsyncForgetNumberAfterQueuedWrites(t *testing.T) {
	f := &fakeStore{}
	a := NewAsync(f, AsyncOptions{})
	defer a.Close()
	ctx := context.Background()
	if err := a.CreateCall(ctx, parley.Call{ID: "CA-1", From: "+1"}); err != nil {
		t.Fatalf("CreateCall: %v", err)
	}
	if err := a.AppendTurn(ctx, parley.Turn{CallID: "CA-1", Seq: 0}); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	n, err := a.ForgetNumber(ctx, "+1")
	if err != nil || n != 1 {
		t.Fatalf("ForgetNumber = %d, %v; want 1, nil", n, err)
	}
	want := []string{"create CA-1", "turn CA-1/0", "forget +1"}
	if got := f.applied(); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
	a.Close()
	if _, err := a.ForgetNumber(ctx, "+1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("ForgetNumber after Close = %v, want ErrClosed", err)
	}
}
