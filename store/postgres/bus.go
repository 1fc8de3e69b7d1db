package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-ai/parley"
)

// busChannel is the one NOTIFY channel the nodes of a cluster talk on.
const busChannel = "parley_bus"

// inlineMax is the largest body sent inside a notification (PostgreSQL
// caps payloads at 8000 bytes; the envelope and base64 take the rest);
// bigger bodies go through bus_messages.
const inlineMax = 4500

// Kinds of envelope.
const (
	kindPub = "pub" // to every node subscribed to Name
	kindReq = "req" // a request for node To
	kindRep = "rep" // the reply to request ID, for node To
)

// envelope is one notification on busChannel.
type envelope struct {
	Kind string `json:"k"`
	From string `json:"f"`
	To   string `json:"t,omitempty"`
	Name string `json:"n,omitempty"` // topic or method
	ID   string `json:"i,omitempty"` // request id
	Body []byte `json:"b,omitempty"`
	Ref  int64  `json:"r,omitempty"` // bus_messages id of a big body
	Err  string `json:"e,omitempty"` // a reply's error
}

// Bus is a parley.Bus over PostgreSQL LISTEN/NOTIFY: one dedicated
// connection per node listens on one channel; what one node publishes is
// delivered to the others in commit order. Close stops it.
type Bus struct {
	s    *Store
	node string

	mu       sync.Mutex
	subs     map[string][]subscriber
	handlers map[string]func(ctx context.Context, from string, body []byte) ([]byte, error)
	pending  map[string]chan envelope
	onUp     []func()

	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // request handlers
}

type subscriber struct {
	fn   func(from string, body []byte)
	self bool // also this node's own messages
}

var _ parley.Bus = (*Bus)(nil)

// ErrNoAnswer is returned by Request when the node does not answer in time.
var ErrNoAnswer = errors.New("postgres: bus: the node did not answer")

// Bus starts this node's end of the cluster bus and returns once it
// listens. node names this server (parley's node id).
func (s *Store) Bus(ctx context.Context, node string) (*Bus, error) {
	if node == "" {
		return nil, errors.New("postgres: bus: empty node id")
	}
	lctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		s: s, node: node, cancel: cancel, done: make(chan struct{}),
		subs:     map[string][]subscriber{},
		handlers: map[string]func(context.Context, string, []byte) ([]byte, error){},
		pending:  map[string]chan envelope{},
	}
	conn, err := b.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go b.listen(lctx, conn)
	return b, nil
}

// Node is this node's id.
func (b *Bus) Node() string { return b.node }

// Close stops listening and waits for running request handlers.
func (b *Bus) Close() {
	b.cancel()
	<-b.done
	b.wg.Wait()
}

// OnReconnect registers f to run after the listening connection was lost
// and came back (notifications may have been missed meanwhile).
func (b *Bus) OnReconnect(f func()) {
	b.mu.Lock()
	b.onUp = append(b.onUp, f)
	b.mu.Unlock()
}

// Subscribe calls fn for every body another node publishes on topic.
func (b *Bus) Subscribe(topic string, fn func(from string, body []byte)) {
	b.subscribe(topic, fn, false)
}

func (b *Bus) subscribe(topic string, fn func(from string, body []byte), self bool) {
	b.mu.Lock()
	b.subs[topic] = append(b.subs[topic], subscriber{fn: fn, self: self})
	b.mu.Unlock()
}

// Handle serves method for other nodes' requests.
func (b *Bus) Handle(method string, fn func(ctx context.Context, from string, body []byte) ([]byte, error)) {
	b.mu.Lock()
	b.handlers[method] = fn
	b.mu.Unlock()
}

// Publish sends body on topic to every other node.
func (b *Bus) Publish(ctx context.Context, topic string, body []byte) error {
	return notify(ctx, b.s.pool, envelope{Kind: kindPub, From: b.node, Name: topic, Body: body})
}

// Request asks node to run method and waits for the answer (at most 15 s
// when ctx has no deadline).
func (b *Bus) Request(ctx context.Context, node, method string, body []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	id := newID()
	ch := make(chan envelope, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}()
	if err := notify(ctx, b.s.pool, envelope{Kind: kindReq, From: b.node, To: node, Name: method, ID: id, Body: body}); err != nil {
		return nil, err
	}
	select {
	case rep := <-ch:
		if rep.Err != "" {
			return nil, fmt.Errorf("node %s: %s: %s", node, method, rep.Err)
		}
		return rep.Body, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (%s on %s): %w", ErrNoAnswer, method, node, ctx.Err())
	}
}

// queryer runs statements on the pool or inside a transaction.
type queryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// notify sends e, storing a big body in bus_messages first. q is the pool
// or the transaction the notification belongs to (delivered at commit).
func notify(ctx context.Context, q queryer, e envelope) error {
	if len(e.Body) > inlineMax {
		if err := q.QueryRow(ctx, `INSERT INTO bus_messages (body) VALUES ($1) RETURNING id`, e.Body).Scan(&e.Ref); err != nil {
			return fmt.Errorf("postgres: bus: store message: %w", err)
		}
		e.Body = nil
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("postgres: bus: %w", err)
	}
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, busChannel, string(payload)); err != nil {
		return fmt.Errorf("postgres: bus: notify: %w", err)
	}
	return nil
}

// connect opens the dedicated listening connection.
func (b *Bus) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, b.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: bus: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+busChannel); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("postgres: bus: listen: %w", err)
	}
	return conn, nil
}

// listen receives notifications until Close, reconnecting (with a pause)
// when the connection is lost; old big bodies are swept once a minute.
func (b *Bus) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(b.done)
	sweep := time.Now()
	for {
		for conn != nil {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if ctx.Err() != nil {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = conn.Close(cctx)
				cancel()
				return
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = conn.Close(cctx)
				cancel()
				conn = nil
				break
			}
			if n != nil {
				b.dispatch(ctx, n.Payload)
			}
			if time.Since(sweep) > time.Minute {
				sweep = time.Now()
				_, _ = b.s.pool.Exec(ctx, `DELETE FROM bus_messages WHERE created_at < now() - interval '5 minutes'`)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		c, err := b.connect(ctx)
		if err != nil {
			continue
		}
		conn = c
		b.mu.Lock()
		ups := append([]func(){}, b.onUp...)
		b.mu.Unlock()
		for _, f := range ups {
			f()
		}
	}
}

// dispatch delivers one notification: publications in order on the
// listening goroutine, requests on their own goroutines, replies to the
// waiting Request.
func (b *Bus) dispatch(ctx context.Context, payload string) {
	var e envelope
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		return // not ours
	}
	switch e.Kind {
	case kindPub:
		b.mu.Lock()
		subs := append([]subscriber(nil), b.subs[e.Name]...)
		b.mu.Unlock()
		var want []subscriber
		for _, s := range subs {
			if s.self || e.From != b.node {
				want = append(want, s)
			}
		}
		if len(want) == 0 || b.load(ctx, &e) != nil {
			return
		}
		for _, s := range want {
			s.fn(e.From, e.Body)
		}
	case kindReq:
		if e.To != b.node {
			return
		}
		b.mu.Lock()
		h := b.handlers[e.Name]
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			rep := envelope{Kind: kindRep, From: b.node, To: e.From, ID: e.ID}
			if err := b.load(ctx, &e); err != nil {
				rep.Err = err.Error()
			} else if h == nil {
				rep.Err = "no handler for " + e.Name
			} else {
				hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				body, err := h(hctx, e.From, e.Body)
				cancel()
				if err != nil {
					rep.Err = err.Error()
				}
				rep.Body = body
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = notify(sctx, b.s.pool, rep)
			cancel()
		}()
	case kindRep:
		if e.To != b.node {
			return
		}
		b.mu.Lock()
		ch := b.pending[e.ID]
		b.mu.Unlock()
		if ch == nil {
			return
		}
		if err := b.load(ctx, &e); err != nil && e.Err == "" {
			e.Err = err.Error()
		}
		select {
		case ch <- e:
		default:
		}
	}
}

// load fetches a big body from bus_messages.
func (b *Bus) load(ctx context.Context, e *envelope) error {
	if e.Ref == 0 {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.s.pool.QueryRow(lctx, `SELECT body FROM bus_messages WHERE id = $1`, e.Ref).Scan(&e.Body); err != nil {
		return fmt.Errorf("postgres: bus: message %d: %w", e.Ref, err)
	}
	return nil
}

func newID() string {
	var p [12]byte
	_, _ = rand.Read(p[:])
	return hex.EncodeToString(p[:])
}
