package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
)

// Defaults of AsyncOptions.
const (
	DefaultAsyncQueue   = 1024
	DefaultWriteTimeout = 5 * time.Second
	DefaultDrainTimeout = 5 * time.Second
	DefaultMaxBatch     = 128
)

// ErrQueueFull is returned by an Async write that was dropped because the
// queue was full; the drop is also counted in AsyncStats.Dropped and logged.
var ErrQueueFull = errors.New("store: async write queue full, write dropped")

// ErrClosed is returned by an Async write made after Close; it is counted
// as dropped.
var ErrClosed = errors.New("store: async writer closed")

// logEvery is the shortest time between two log lines about drops, and
// between two about failures, so a dead database cannot flood the log.
const logEvery = time.Second

// Write is one store write, as Async hands it to a Batcher: exactly one
// field is set.
type Write struct {
	CreateCall  *parley.Call
	EndCall     *CallEnd
	AppendTurn  *parley.Turn
	AppendEvent *parley.Event
}

// CallEnd holds the arguments of parley.Store.EndCall.
type CallEnd struct {
	ID      string
	EndedAt time.Time
	Outcome parley.Outcome
	Reason  string
}

// Batcher is implemented by stores that can apply several writes in one
// transaction. Async uses it to commit a burst of queued writes with one
// disk flush instead of one per write, which is what keeps a single writer
// goroutine ahead of many concurrent calls. Both backends implement it.
type Batcher interface {
	// WriteBatch applies ws in order, all or none, with the same checks and
	// errors as the one-at-a-time methods.
	WriteBatch(ctx context.Context, ws []Write) error
}

// AsyncOptions configure NewAsync. Zero fields take the defaults above.
type AsyncOptions struct {
	// Queue is how many writes may wait; one more is dropped and counted.
	Queue int
	// Log receives drops and failures, rate-limited to one line a second each.
	Log zerolog.Logger
	// WriteTimeout bounds each write to the wrapped store, so one stuck
	// statement cannot stall every call's history behind it.
	WriteTimeout time.Duration
	// DrainTimeout bounds how long Close waits for queued writes.
	DrainTimeout time.Duration
	// MaxBatch caps how many queued writes go into one transaction when
	// the wrapped store is a Batcher.
	MaxBatch int
}

// AsyncStats count what an Async did with the writes it was given.
type AsyncStats struct {
	Written uint64 // applied to the wrapped store
	Dropped uint64 // never applied: queue full, after Close, or left at the drain deadline
	Failed  uint64 // applied, but the wrapped store returned an error
	Pending int    // queued now, not yet applied
}

// Async is a parley.Store that queues writes and applies them in order on
// one goroutine (a burst of them in one transaction when the wrapped store
// is a Batcher), so that the media path never waits for a disk or a
// database round trip: CreateCall, AppendTurn, AppendEvent and EndCall
// return as soon as the write is queued. When the bounded queue is full
// the write is dropped, counted and logged, and the method returns
// ErrQueueFull. Reads go straight to the wrapped store, so a read may not
// yet see a write that is still queued; Flush waits for those.
//
// Writes are applied with a context detached from the caller's (a call's
// context usually ends right before its EndCall is applied) and bounded by
// AsyncOptions.WriteTimeout.
type Async struct {
	s            parley.Store
	log          zerolog.Logger
	writeTimeout time.Duration
	drainTimeout time.Duration
	maxBatch     int
	writes       []Write // reused by applyRun; only the writer goroutine touches it

	queue chan asyncOp
	// mu guards closed against a write racing Close: writers hold it shared
	// while they enqueue, Close holds it exclusively while it flips closed,
	// so nothing is queued after the writer goroutine starts its final drain.
	mu     sync.RWMutex
	closed bool

	stop      chan struct{} // closed by Close: drain and exit
	done      chan struct{} // closed by the writer goroutine when it exits
	abandon   atomic.Bool   // set at the drain deadline: count the rest as dropped
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	written, dropped, failed atomic.Uint64
	dropLog, failLog         rateLimit
}

var _ parley.Store = (*Async)(nil)

type asyncKind uint8

const (
	opCreateCall asyncKind = iota + 1
	opEndCall
	opAppendTurn
	opAppendEvent
	opFlush
)

func (k asyncKind) String() string {
	switch k {
	case opCreateCall:
		return "create_call"
	case opEndCall:
		return "end_call"
	case opAppendTurn:
		return "append_turn"
	case opAppendEvent:
		return "append_event"
	case opFlush:
		return "flush"
	}
	return "unknown"
}

// asyncOp is one queued write, held by value so that queueing a turn does
// not allocate. Signals are copied in because the caller may reuse its
// *Signals once AppendTurn returns.
type asyncOp struct {
	kind       asyncKind
	turn       parley.Turn // with Signals nil; see signals and hasSignals
	signals    parley.Signals
	hasSignals bool
	call       *parley.Call // rare, so a pointer keeps every queued op small
	event      parley.Event
	id         string
	at         time.Time
	outcome    parley.Outcome
	reason     string
	flushed    chan struct{}
}

// write turns a queued op back into the store call it stands for.
func (o *asyncOp) write() Write {
	switch o.kind {
	case opCreateCall:
		return Write{CreateCall: o.call}
	case opEndCall:
		return Write{EndCall: &CallEnd{ID: o.id, EndedAt: o.at, Outcome: o.outcome, Reason: o.reason}}
	case opAppendTurn:
		t := o.turn
		if o.hasSignals {
			sig := o.signals // the store may keep the pointer; give it its own copy
			t.Signals = &sig
		}
		return Write{AppendTurn: &t}
	case opAppendEvent:
		return Write{AppendEvent: &o.event}
	}
	return Write{}
}

func (o *asyncOp) callID() string {
	switch o.kind {
	case opCreateCall:
		return o.call.ID
	case opAppendTurn:
		return o.turn.CallID
	case opAppendEvent:
		return o.event.CallID
	}
	return o.id
}

// NewAsync starts the writer goroutine for s. Close stops it and closes s.
func NewAsync(s parley.Store, opt AsyncOptions) *Async {
	if opt.Queue <= 0 {
		opt.Queue = DefaultAsyncQueue
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.DrainTimeout <= 0 {
		opt.DrainTimeout = DefaultDrainTimeout
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Async{
		s:            s,
		log:          opt.Log,
		writeTimeout: opt.WriteTimeout,
		drainTimeout: opt.DrainTimeout,
		maxBatch:     opt.MaxBatch,
		queue:        make(chan asyncOp, opt.Queue),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
	}
	go a.run()
	return a
}

// CreateCall queues c, with a copy of its turns and their signals.
func (a *Async) CreateCall(_ context.Context, c parley.Call) error {
	c.Turns = append([]parley.Turn(nil), c.Turns...)
	for i, t := range c.Turns {
		if t.Signals != nil {
			sig := *t.Signals
			c.Turns[i].Signals = &sig
		}
	}
	return a.enqueue(asyncOp{kind: opCreateCall, call: &c})
}

// EndCall queues the end of call id.
func (a *Async) EndCall(_ context.Context, id string, endedAt time.Time, outcome parley.Outcome, reason string) error {
	return a.enqueue(asyncOp{kind: opEndCall, id: id, at: endedAt, outcome: outcome, reason: reason})
}

// AppendTurn queues t without allocating; t.Signals is copied.
func (a *Async) AppendTurn(_ context.Context, t parley.Turn) error {
	op := asyncOp{kind: opAppendTurn, turn: t}
	if t.Signals != nil {
		op.signals, op.hasSignals = *t.Signals, true
		op.turn.Signals = nil
	}
	return a.enqueue(op)
}

// AppendEvent queues e; e.Data is copied.
func (a *Async) AppendEvent(_ context.Context, e parley.Event) error {
	if e.Data != nil {
		e.Data = append(json.RawMessage(nil), e.Data...)
	}
	return a.enqueue(asyncOp{kind: opAppendEvent, event: e})
}

// GetCall reads from the wrapped store.
func (a *Async) GetCall(ctx context.Context, id string) (parley.Call, error) {
	return a.s.GetCall(ctx, id)
}

// Events reads from the wrapped store.
func (a *Async) Events(ctx context.Context, callID string) ([]parley.Event, error) {
	return a.s.Events(ctx, callID)
}

// ListCalls reads from the wrapped store.
func (a *Async) ListCalls(ctx context.Context, q parley.CallQuery) ([]parley.Call, error) {
	return a.s.ListCalls(ctx, q)
}

// ForgetNumber first waits for the writes already queued (Flush), so that
// a call of number still in the queue cannot land after the erasure, then
// deletes in the wrapped store. Like Flush, it may block while the queue is
// full: it is an administrative operation, never on the media path.
func (a *Async) ForgetNumber(ctx context.Context, number string) (int, error) {
	if err := a.Flush(ctx); err != nil {
		return 0, fmt.Errorf("store: forget number: %w", err)
	}
	return a.s.ForgetNumber(ctx, number)
}

// ForgetBefore flushes the queued writes, then deletes the calls that
// started before t in the wrapped store (transcript retention).
func (a *Async) ForgetBefore(ctx context.Context, t time.Time) (int, error) {
	if err := a.Flush(ctx); err != nil {
		return 0, fmt.Errorf("store: forget before: %w", err)
	}
	return a.s.ForgetBefore(ctx, t)
}

// Stats returns the counters so far; safe to call at any time.
func (a *Async) Stats() AsyncStats {
	return AsyncStats{
		Written: a.written.Load(),
		Dropped: a.dropped.Load(),
		Failed:  a.failed.Load(),
		Pending: len(a.queue),
	}
}

// Flush waits until every write queued before it has been applied (or has
// failed). Unlike the writes, it blocks while the queue is full; it is
// meant for shutdown paths and tests, not for the media path.
func (a *Async) Flush(ctx context.Context) error {
	a.mu.RLock()
	closed := a.closed
	a.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	op := asyncOp{kind: opFlush, flushed: make(chan struct{})}
	select {
	case a.queue <- op:
	case <-a.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("store: async flush: %w", ctx.Err())
	}
	select {
	case <-op.flushed:
		return nil
	case <-a.done:
		// The writer exited; it may have drained our marker on the way out.
		select {
		case <-op.flushed:
			return nil
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return fmt.Errorf("store: async flush: %w", ctx.Err())
	}
}

// Close stops taking writes, applies the queued ones for at most the drain
// timeout, counts what is left as dropped, and closes the wrapped store.
// It is idempotent and returns the same result every time.
func (a *Async) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.stop)

		var errs []error
		timer := time.NewTimer(a.drainTimeout)
		select {
		case <-a.done:
			timer.Stop()
		case <-timer.C:
			before := a.dropped.Load()
			a.abandon.Store(true)
			a.cancel() // abort the write in flight
			<-a.done
			errs = append(errs, fmt.Errorf("store: async close: drain deadline %s passed, %d writes dropped",
				a.drainTimeout, a.dropped.Load()-before))
		}
		a.cancel()
		if err := a.s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: async close: %w", err))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

func (a *Async) enqueue(op asyncOp) error {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		a.drop(&op, ErrClosed)
		return ErrClosed
	}
	select {
	case a.queue <- op:
		a.mu.RUnlock()
		return nil
	default:
		a.mu.RUnlock()
		a.drop(&op, ErrQueueFull)
		return ErrQueueFull
	}
}

// drop counts a write that will never be applied and logs it, at most once
// per logEvery, with how many went unlogged since the last line.
func (a *Async) drop(op *asyncOp, why error) {
	n := a.dropped.Add(1)
	if ok, skipped := a.dropLog.allow(time.Now().UnixNano()); ok {
		a.log.Warn().Str("call_id", op.callID()).Str("op", op.kind.String()).
			Uint64("dropped_total", n).Uint64("unlogged", skipped).
			Str("reason", why.Error()).Msg("store: write dropped")
	}
}

func (a *Async) run() {
	defer close(a.done)
	batch := make([]asyncOp, 0, a.maxBatch)
	for {
		select {
		case op := <-a.queue:
			batch = a.flushBatch(a.collect(append(batch, op)))
		case <-a.stop:
			// No writer can enqueue any more (closed is set before stop is
			// closed), so the queue only shrinks from here.
			for {
				select {
				case op := <-a.queue:
					batch = a.flushBatch(a.collect(append(batch, op)))
				default:
					return
				}
			}
		}
	}
}

// flushBatch applies batch and returns it emptied for reuse.
func (a *Async) flushBatch(batch []asyncOp) []asyncOp {
	a.applyBatch(batch)
	clear(batch) // drop references to applied turns and events
	return batch[:0]
}

// collect adds to batch whatever else is already queued, up to maxBatch,
// without waiting: a burst is committed together, a lone write at once.
func (a *Async) collect(batch []asyncOp) []asyncOp {
	for len(batch) < a.maxBatch {
		select {
		case op := <-a.queue:
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// applyBatch applies ops in order; a Flush marker is released once every
// write before it has been applied.
func (a *Async) applyBatch(ops []asyncOp) {
	start := 0
	for i := range ops {
		if ops[i].kind == opFlush {
			a.applyRun(ops[start:i])
			close(ops[i].flushed)
			start = i + 1
		}
	}
	a.applyRun(ops[start:])
}

// applyRun applies writes in one transaction when the store is a Batcher,
// and one by one otherwise or when the transaction fails, so that one bad
// write (a duplicate turn, say) costs only itself.
func (a *Async) applyRun(run []asyncOp) {
	b, ok := a.s.(Batcher)
	if ok && len(run) > 1 && !a.abandon.Load() {
		ws := a.writes[:0]
		for i := range run {
			ws = append(ws, run[i].write())
		}
		ctx, cancel := context.WithTimeout(a.ctx, a.writeTimeout)
		err := b.WriteBatch(ctx, ws)
		cancel()
		clear(ws)
		a.writes = ws[:0]
		if err == nil {
			a.written.Add(uint64(len(run)))
			return
		}
	}
	for i := range run {
		a.apply(&run[i])
	}
}

func (a *Async) apply(op *asyncOp) {
	if op.kind == opFlush {
		close(op.flushed)
		return
	}
	if a.abandon.Load() {
		a.drop(op, errors.New("drain deadline passed"))
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.writeTimeout)
	var err error
	switch w := op.write(); {
	case w.CreateCall != nil:
		err = a.s.CreateCall(ctx, *w.CreateCall)
	case w.EndCall != nil:
		err = a.s.EndCall(ctx, w.EndCall.ID, w.EndCall.EndedAt, w.EndCall.Outcome, w.EndCall.Reason)
	case w.AppendTurn != nil:
		err = a.s.AppendTurn(ctx, *w.AppendTurn)
	case w.AppendEvent != nil:
		err = a.s.AppendEvent(ctx, *w.AppendEvent)
	}
	cancel()
	if err == nil {
		a.written.Add(1)
		return
	}
	if a.abandon.Load() {
		// Cancelled by the drain deadline: the write never landed.
		a.drop(op, err)
		return
	}
	n := a.failed.Add(1)
	if ok, skipped := a.failLog.allow(time.Now().UnixNano()); ok {
		a.log.Error().Err(err).Str("call_id", op.callID()).Str("op", op.kind.String()).
			Uint64("failed_total", n).Uint64("unlogged", skipped).Msg("store: write failed")
	}
}

// rateLimit lets one event through per logEvery and counts the rest.
type rateLimit struct {
	last    atomic.Int64 // unix nanoseconds of the last allowed event
	skipped atomic.Uint64
}

// allow reports whether to log at now (unix nanoseconds) and, if so, how
// many events were suppressed since the last logged one.
func (r *rateLimit) allow(now int64) (bool, uint64) {
	last := r.last.Load()
	if last != 0 && now-last < int64(logEvery) || !r.last.CompareAndSwap(last, now) {
		r.skipped.Add(1)
		return false, 0
	}
	return true, r.skipped.Swap(0)
}
