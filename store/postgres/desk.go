package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-ai/parley/escalation"
)

// deskTopic carries desk events (JSON arrays of escalation.DeskEvent),
// published in the transaction that made the change, to every node
// including the one that made it.
const deskTopic = "desk"

// Desk is the escalation.Router shared by the nodes of a cluster: agents
// and the queue live in desk_agents and desk_queue, every change is one
// transaction whose events reach every node by NOTIFY at commit, and
// offers are made with SELECT ... FOR UPDATE SKIP LOCKED so that two nodes
// dispatching at once never offer one call twice or one agent two calls.
// Reads are served from a copy of both tables that the node reloads after
// its own changes and on every desk event. Offer timeouts and skill waits
// are swept once a second by every node, so none is lost with a node.
type Desk struct {
	s   *Store
	bus *Bus
	opt escalation.DeskOptions
	// OnError, when set, hears failures of calls that have no error to
	// return (SignIn, SignOut, Cancel, Finish and the sweeps).
	onError func(what string, err error)

	mu      sync.Mutex // the copy
	agents  []escalation.Agent
	queue   []escalation.Waiting
	handleN int
	handle  time.Duration

	rmu    sync.Mutex // one reload at a time; guards have
	have   uint64     // the reload request the copy is current with
	wantMu sync.Mutex // guards want
	want   uint64     // reload requests so far

	events chan []escalation.DeskEvent
	stop   context.CancelFunc
	done   sync.WaitGroup
}

var _ escalation.Router = (*Desk)(nil)

// NewDesk returns the cluster's desk as this node sees it. opt.OnEvent
// hears every change made by any node, in commit order; onError (may be
// nil) hears failures that have no caller to return them to. Close stops it.
func (s *Store) NewDesk(b *Bus, opt escalation.DeskOptions, onError func(what string, err error)) *Desk {
	if opt.OfferTimeout <= 0 {
		opt.OfferTimeout = 20 * time.Second
	}
	if opt.SkillWait <= 0 {
		opt.SkillWait = 30 * time.Second
	}
	if opt.DefaultHandle <= 0 {
		opt.DefaultHandle = 3 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if onError == nil {
		onError = func(string, error) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Desk{s: s, bus: b, opt: opt, onError: onError, stop: cancel, events: make(chan []escalation.DeskEvent, 1024)}
	b.subscribe(deskTopic, func(_ string, body []byte) {
		var evs []escalation.DeskEvent
		if json.Unmarshal(body, &evs) != nil {
			return
		}
		select {
		case d.events <- evs:
		default:
			// The node is far behind: reload and go on without these.
			d.onError("desk events", errors.New("event buffer full; events dropped"))
		}
	}, true)
	b.OnReconnect(func() { d.reload(context.Background()) })
	d.reload(ctx)
	d.done.Add(2)
	go d.deliver(ctx)
	go d.sweep(ctx)
	return d
}

// Close stops the desk's sweeps and event delivery.
func (d *Desk) Close() {
	d.stop()
	d.done.Wait()
}

// OfferTimeout is how long an agent has to answer an offer.
func (d *Desk) OfferTimeout() time.Duration { return d.opt.OfferTimeout }

// deliver reloads the copy and hands events to OnEvent, in order.
func (d *Desk) deliver(ctx context.Context) {
	defer d.done.Done()
	for {
		var batch []escalation.DeskEvent
		select {
		case <-ctx.Done():
			return
		case evs := <-d.events:
			batch = append(batch, evs...)
		}
	more:
		for {
			select {
			case evs := <-d.events:
				batch = append(batch, evs...)
			default:
				break more
			}
		}
		d.reload(ctx)
		if d.opt.OnEvent != nil {
			for _, ev := range batch {
				d.opt.OnEvent(ev)
			}
		}
	}
}

// sweep withdraws offers that timed out and dispatches calls whose skill
// wait ended, once a second.
func (d *Desk) sweep(ctx context.Context) {
	defer d.done.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
			now := d.opt.Now()
			rows, err := tx.Query(ctx, `SELECT call_id, offered_to FROM desk_queue
WHERE offered_to <> '' AND offered_at < $1 FOR UPDATE SKIP LOCKED`, now.Add(-d.opt.OfferTimeout))
			if err != nil {
				return err
			}
			type late struct{ call, agent string }
			var lates []late
			for rows.Next() {
				var l late
				if err := rows.Scan(&l.call, &l.agent); err != nil {
					rows.Close()
					return err
				}
				lates = append(lates, l)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, l := range lates {
				if err := d.withdraw(ctx, tx, emit, l.call, l.agent, "missed", true); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			d.onError("desk sweep", err)
		}
		if err := d.dispatch(ctx); err != nil && ctx.Err() == nil {
			d.onError("desk dispatch", err)
		}
	}
}

// tx runs fn in a transaction, publishing the events it emits at commit,
// retried when PostgreSQL aborts it for a deadlock or serialization
// failure; the copy is reloaded after a commit.
func (d *Desk) tx(ctx context.Context, fn func(tx pgx.Tx, emit func(escalation.DeskEvent)) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for attempt := 0; ; attempt++ {
		var evs []escalation.DeskEvent
		err := pgx.BeginFunc(ctx, d.s.pool, func(tx pgx.Tx) error {
			evs = evs[:0]
			// The desk is live state, rebuilt as agents and calls come
			// back after a database crash: its commits need not wait for
			// the disk (a few milliseconds each, on every offer).
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
			if err := fn(tx, func(ev escalation.DeskEvent) { evs = append(evs, ev) }); err != nil {
				return err
			}
			if len(evs) == 0 {
				return nil
			}
			body, err := json.Marshal(evs)
			if err != nil {
				return err
			}
			return notify(ctx, tx, envelope{Kind: kindPub, From: d.bus.node, Name: deskTopic, Body: body})
		})
		var pe *pgconn.PgError
		if err != nil && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") && attempt < 8 {
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		if err == nil && len(evs) > 0 {
			d.reload(ctx)
		}
		return err
	}
}

// bg is the context of the desk's own calls (the Router interface has none).
func bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

const agentCols = `id, name, skills, state, since, idle_since, call_id, handled`

func scanAgent(r pgx.Row) (escalation.Agent, error) {
	var a escalation.Agent
	var st string
	err := r.Scan(&a.ID, &a.Name, &a.Skills, &st, &a.Since, &a.IdleSince, &a.CallID, &a.Handled)
	a.State = escalation.AgentState(st)
	if len(a.Skills) == 0 {
		a.Skills = nil
	}
	return a, err
}

const queueCols = `call_id, node, from_number, skill, priority, reasons, queued_at, skill_deadline, offered_to, offered_at, declined`

func scanWaiting(r pgx.Row) (escalation.Waiting, time.Time, error) {
	var w escalation.Waiting
	var reasons []byte
	var deadline, offeredAt *time.Time
	err := r.Scan(&w.CallID, &w.Node, &w.From, &w.Skill, &w.Priority, &reasons, &w.QueuedAt, &deadline, &w.OfferedTo, &offeredAt, &w.Declined)
	if err != nil {
		return w, time.Time{}, err
	}
	if len(reasons) > 0 {
		_ = json.Unmarshal(reasons, &w.Reasons)
	}
	if offeredAt != nil {
		w.OfferedAt = *offeredAt
	}
	if len(w.Declined) == 0 {
		w.Declined = nil
	}
	var dl time.Time
	if deadline != nil {
		dl = *deadline
	}
	return w, dl, nil
}

// lockAgent reads an agent's row for update; ok is false when the agent
// is not signed in.
func lockAgent(ctx context.Context, tx pgx.Tx, id string) (escalation.Agent, bool, error) {
	a, err := scanAgent(tx.QueryRow(ctx, `SELECT `+agentCols+` FROM desk_agents WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

func lockQueued(ctx context.Context, tx pgx.Tx, callID string) (escalation.Waiting, bool, error) {
	w, _, err := scanWaiting(tx.QueryRow(ctx, `SELECT `+queueCols+` FROM desk_queue WHERE call_id = $1 FOR UPDATE`, callID))
	if errors.Is(err, pgx.ErrNoRows) {
		return w, false, nil
	}
	return w, err == nil, err
}

func setAgent(ctx context.Context, tx pgx.Tx, a escalation.Agent) error {
	_, err := tx.Exec(ctx, `UPDATE desk_agents SET state = $2, since = $3, idle_since = $4, call_id = $5, handled = $6 WHERE id = $1`,
		a.ID, string(a.State), a.Since, a.IdleSince, a.CallID, a.Handled)
	return err
}

func agentEvent(a escalation.Agent) escalation.DeskEvent {
	c := a
	c.Skills = slices.Clone(a.Skills)
	return escalation.DeskEvent{Kind: escalation.DeskAgent, CallID: a.CallID, Agent: &c}
}

// SignIn registers an agent on this node (their console connected here). A
// new agent starts away; one already signed in (on any node) keeps their
// state and call, and is now on this node.
func (d *Desk) SignIn(id, name string, skills []string) escalation.Agent {
	ctx, cancel := bg()
	defer cancel()
	now := d.opt.Now()
	var out escalation.Agent
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		a, err := scanAgent(tx.QueryRow(ctx, `INSERT INTO desk_agents (id, name, skills, state, since, idle_since, node)
VALUES ($1, $2, $3, 'away', $4, $4, $5)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, skills = EXCLUDED.skills, node = EXCLUDED.node, leaving = false,
	state = CASE WHEN desk_agents.state = 'offline' THEN 'away' ELSE desk_agents.state END,
	since = CASE WHEN desk_agents.state = 'offline' THEN EXCLUDED.since ELSE desk_agents.since END
RETURNING `+agentCols, id, name, nonNil(skills), now, d.bus.node))
		if err != nil {
			return err
		}
		out = a
		emit(agentEvent(a))
		return nil
	})
	if err != nil {
		d.onError("desk sign in", err)
		return escalation.Agent{ID: id, Name: name, Skills: skills, State: escalation.AgentAway, Since: now}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SignOut takes the agent off the desk; an offer waiting for them goes to
// the next agent, a call they are on is not touched. An agent whose
// console has meanwhile reconnected to another node stays: that node
// signs them out when their console leaves it.
func (d *Desk) SignOut(id string) {
	ctx, cancel := bg()
	defer cancel()
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		a, ok, err := lockAgent(ctx, tx, id)
		if err != nil || !ok {
			return err
		}
		var node string
		if err := tx.QueryRow(ctx, `SELECT node FROM desk_agents WHERE id = $1`, id).Scan(&node); err != nil {
			return err
		}
		if node != d.bus.node {
			return nil
		}
		if a.State == escalation.AgentOffered {
			if err := d.withdraw(ctx, tx, emit, a.CallID, id, "signed_out", false); err != nil {
				return err
			}
		}
		if a.State == escalation.AgentBusy {
			_, err := tx.Exec(ctx, `UPDATE desk_agents SET leaving = true WHERE id = $1`, id)
			return err
		}
		a.State, a.Since, a.CallID = escalation.AgentOffline, d.opt.Now(), ""
		emit(agentEvent(a))
		_, err = tx.Exec(ctx, `DELETE FROM desk_agents WHERE id = $1`, id)
		return err
	})
	if err != nil {
		d.onError("desk sign out", err)
	}
	d.dispatchOrLog(ctx)
}

// SetState sets an agent available or away, or ends their wrap-up.
func (d *Desk) SetState(id string, st escalation.AgentState) error {
	if st != escalation.AgentAvailable && st != escalation.AgentAway {
		return fmt.Errorf("%w: %q", escalation.ErrBadState, st)
	}
	ctx, cancel := bg()
	defer cancel()
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		a, ok, err := lockAgent(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return escalation.ErrUnknownAgent
		}
		switch a.State {
		case escalation.AgentBusy:
			return fmt.Errorf("%w: agent is on a call", escalation.ErrBadState)
		case escalation.AgentOffered:
			if st != escalation.AgentAway {
				return nil
			}
			if err := d.withdraw(ctx, tx, emit, a.CallID, id, "declined", true); err != nil {
				return err
			}
			a.State = escalation.AgentAvailable
		}
		if a.State == st {
			return nil
		}
		now := d.opt.Now()
		a.State, a.Since, a.CallID = st, now, ""
		if st == escalation.AgentAvailable {
			a.IdleSince = now
		}
		emit(agentEvent(a))
		return setAgent(ctx, tx, a)
	})
	if err != nil {
		return err
	}
	d.dispatchOrLog(ctx)
	return nil
}

// Enqueue puts a call in the queue and offers it when an agent is free.
func (d *Desk) Enqueue(r escalation.Request) error {
	return d.enqueue(r, nil)
}

func (d *Desk) enqueue(r escalation.Request, declined []string) error {
	ctx, cancel := bg()
	defer cancel()
	reasons, err := json.Marshal(r.Reasons)
	if err != nil {
		return err
	}
	if r.Reasons == nil {
		reasons = []byte("[]")
	}
	now := d.opt.Now()
	var deadline *time.Time
	if r.Skill != "" {
		t := now.Add(d.opt.SkillWait)
		deadline = &t
	}
	node := r.Node
	if node == "" {
		node = d.bus.node
	}
	err = d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		tag, err := tx.Exec(ctx, `INSERT INTO desk_queue (call_id, node, from_number, skill, priority, reasons, queued_at, skill_deadline, declined)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (call_id) DO NOTHING`,
			r.CallID, node, r.From, r.Skill, r.Priority, reasons, now, deadline, nonNil(declined))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return escalation.ErrQueued
		}
		emit(escalation.DeskEvent{Kind: escalation.DeskQueue, CallID: r.CallID})
		return nil
	})
	if err != nil {
		return err
	}
	d.dispatchOrLog(ctx)
	return nil
}

// Requeue puts a call back ahead of the others; agents in exclude are not
// offered it.
func (d *Desk) Requeue(r escalation.Request, exclude ...string) error {
	r.Priority = true
	return d.enqueue(r, exclude)
}

// Cancel takes a call out of the queue and reports whether it was queued.
func (d *Desk) Cancel(callID string) bool {
	ctx, cancel := bg()
	defer cancel()
	was := false
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		w, ok, err := lockQueued(ctx, tx, callID)
		if err != nil || !ok {
			return err
		}
		if w.OfferedTo != "" {
			if err := d.withdraw(ctx, tx, emit, callID, w.OfferedTo, "cancelled", false); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM desk_queue WHERE call_id = $1`, callID); err != nil {
			return err
		}
		was = true
		emit(escalation.DeskEvent{Kind: escalation.DeskQueue, CallID: callID})
		return nil
	})
	if err != nil {
		d.onError("desk cancel", err)
		return false
	}
	d.dispatchOrLog(ctx)
	return was
}

// Accept records that agentID takes the call offered to them. Of agents
// racing for one call on any nodes, exactly one succeeds.
func (d *Desk) Accept(agentID, callID string) (escalation.Waiting, error) {
	ctx, cancel := bg()
	defer cancel()
	var out escalation.Waiting
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		w, ok, err := lockQueued(ctx, tx, callID)
		if err != nil {
			return err
		}
		if !ok || w.OfferedTo != agentID {
			return escalation.ErrNoOffer
		}
		a, ok, err := lockAgent(ctx, tx, agentID)
		if err != nil {
			return err
		}
		if !ok || a.State != escalation.AgentOffered || a.CallID != callID {
			return escalation.ErrNoOffer
		}
		if _, err := tx.Exec(ctx, `DELETE FROM desk_queue WHERE call_id = $1`, callID); err != nil {
			return err
		}
		a.State, a.Since = escalation.AgentBusy, d.opt.Now()
		a.Handled++
		if err := setAgent(ctx, tx, a); err != nil {
			return err
		}
		out = w
		emit(escalation.DeskEvent{Kind: escalation.DeskQueue, CallID: callID})
		emit(agentEvent(a))
		ac := agentEvent(a)
		ac.Kind = escalation.DeskAccepted
		emit(ac)
		return nil
	})
	if err != nil {
		return escalation.Waiting{}, err
	}
	d.dispatchOrLog(ctx)
	return out, nil
}

// Decline refuses the call offered to the agent; it goes to the next one.
func (d *Desk) Decline(agentID, callID string) error {
	ctx, cancel := bg()
	defer cancel()
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		w, ok, err := lockQueued(ctx, tx, callID)
		if err != nil {
			return err
		}
		if !ok || w.OfferedTo != agentID {
			return escalation.ErrNoOffer
		}
		return d.withdraw(ctx, tx, emit, callID, agentID, "declined", true)
	})
	if err != nil {
		return err
	}
	d.dispatchOrLog(ctx)
	return nil
}

// Finish ends the agent's call after handle time: they move to wrap-up,
// or leave the desk if they signed out meanwhile.
func (d *Desk) Finish(agentID string, handle time.Duration) {
	ctx, cancel := bg()
	defer cancel()
	err := d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		a, ok, err := lockAgent(ctx, tx, agentID)
		if err != nil || !ok || a.State != escalation.AgentBusy {
			return err
		}
		if handle > 0 {
			var n int
			var mean int64
			if err := tx.QueryRow(ctx, `SELECT handle_n, handle_mean FROM desk_stats WHERE id = 1 FOR UPDATE`).Scan(&n, &mean); err != nil {
				return err
			}
			m, n := escalation.MeanHandle(time.Duration(mean), n, handle)
			if _, err := tx.Exec(ctx, `UPDATE desk_stats SET handle_n = $1, handle_mean = $2 WHERE id = 1`, n, int64(m)); err != nil {
				return err
			}
		}
		var leaving bool
		if err := tx.QueryRow(ctx, `SELECT leaving FROM desk_agents WHERE id = $1`, agentID).Scan(&leaving); err != nil {
			return err
		}
		a.State, a.Since = escalation.AgentWrapUp, d.opt.Now()
		if leaving {
			a.State, a.CallID = escalation.AgentOffline, ""
			emit(agentEvent(a))
			_, err := tx.Exec(ctx, `DELETE FROM desk_agents WHERE id = $1`, agentID)
			return err
		}
		emit(agentEvent(a))
		return setAgent(ctx, tx, a)
	})
	if err != nil {
		d.onError("desk finish", err)
	}
}

// withdraw ends the offer of callID to agentID inside tx: a declining
// agent stays available (and is not offered the call again), a silent one
// goes away, one who signed out goes offline.
func (d *Desk) withdraw(ctx context.Context, tx pgx.Tx, emit func(escalation.DeskEvent), callID, agentID, why string, remember bool) error {
	if _, err := tx.Exec(ctx, `UPDATE desk_queue SET offered_to = '', offered_at = NULL,
declined = CASE WHEN $3 THEN array_append(declined, $2) ELSE declined END
WHERE call_id = $1 AND offered_to = $2`, callID, agentID, remember); err != nil {
		return err
	}
	a, ok, err := lockAgent(ctx, tx, agentID)
	if err != nil || !ok || a.CallID != callID || a.State != escalation.AgentOffered {
		return err
	}
	now := d.opt.Now()
	a.CallID, a.Since = "", now
	switch why {
	case "missed":
		a.State = escalation.AgentAway
	case "signed_out":
		a.State = escalation.AgentOffline
	default:
		a.State, a.IdleSince = escalation.AgentAvailable, now
	}
	w := agentEvent(a)
	w.Kind, w.CallID, w.Why = escalation.DeskWithdrawn, callID, why
	emit(w)
	emit(agentEvent(a))
	return setAgent(ctx, tx, a)
}

func (d *Desk) dispatchOrLog(ctx context.Context) {
	if err := d.dispatch(ctx); err != nil {
		d.onError("desk dispatch", err)
	}
}

// dispatch offers every waiting call it can to an agent. The calls and
// the available agents are locked with SKIP LOCKED: what another node is
// dispatching at the same moment is left to it.
func (d *Desk) dispatch(ctx context.Context) error {
	return d.tx(ctx, func(tx pgx.Tx, emit func(escalation.DeskEvent)) error {
		rows, err := tx.Query(ctx, `SELECT `+queueCols+` FROM desk_queue WHERE offered_to = ''
ORDER BY priority DESC, queued_at, call_id FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return err
		}
		type waiting struct {
			w        escalation.Waiting
			deadline time.Time
		}
		var ws []waiting
		for rows.Next() {
			w, dl, err := scanWaiting(rows)
			if err != nil {
				rows.Close()
				return err
			}
			ws = append(ws, waiting{w, dl})
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ws) == 0 {
			return err
		}
		agents, err := collect(ctx, tx, rowToAgent, `SELECT `+agentCols+` FROM desk_agents ORDER BY id`)
		if err != nil {
			return err
		}
		free, err := collect(ctx, tx, pgx.RowTo[string], `SELECT id FROM desk_agents WHERE state = 'available' ORDER BY id FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return err
		}
		isFree := func(id string) bool { return slices.Contains(free, id) }
		now := d.opt.Now()
		for _, e := range ws {
			i := escalation.PickAgent(e.w, e.deadline, agents, now, isFree)
			if i < 0 {
				continue
			}
			a := &agents[i]
			if _, err := tx.Exec(ctx, `UPDATE desk_queue SET offered_to = $2, offered_at = $3 WHERE call_id = $1`, e.w.CallID, a.ID, now); err != nil {
				return err
			}
			a.State, a.Since, a.CallID = escalation.AgentOffered, now, e.w.CallID
			if err := setAgent(ctx, tx, *a); err != nil {
				return err
			}
			off := agentEvent(*a)
			off.Kind = escalation.DeskOffer
			emit(off)
			emit(agentEvent(*a))
		}
		return nil
	})
}

// querier runs queries on the pool or inside a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// collect runs a query and scans every row with fn.
func collect[T any](ctx context.Context, q querier, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, fn)
}

func rowToAgent(r pgx.CollectableRow) (escalation.Agent, error) { return scanAgent(r) }

func rowToWaiting(r pgx.CollectableRow) (escalation.Waiting, error) {
	w, _, err := scanWaiting(r)
	return w, err
}

// reload reads both tables into the copy. Concurrent reloads coalesce: a
// reload that starts after a caller asked covers that caller.
func (d *Desk) reload(ctx context.Context) {
	d.wantMu.Lock()
	d.want++
	my := d.want
	d.wantMu.Unlock()
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if d.have >= my {
		return
	}
	d.wantMu.Lock()
	target := d.want
	d.wantMu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	agents, err := collect(rctx, d.s.pool, rowToAgent, `SELECT `+agentCols+` FROM desk_agents ORDER BY name, id`)
	if err != nil {
		d.onError("desk reload", err)
		return
	}
	queue, err := collect(rctx, d.s.pool, rowToWaiting, `SELECT `+queueCols+` FROM desk_queue ORDER BY priority DESC, queued_at, call_id`)
	if err != nil {
		d.onError("desk reload", err)
		return
	}
	var n int
	var mean int64
	if err := d.s.pool.QueryRow(rctx, `SELECT handle_n, handle_mean FROM desk_stats WHERE id = 1`).Scan(&n, &mean); err != nil {
		d.onError("desk reload", err)
		return
	}
	for i := range queue {
		queue[i].Position = i + 1
	}
	d.mu.Lock()
	d.agents, d.queue, d.handleN, d.handle = agents, queue, n, time.Duration(mean)
	d.mu.Unlock()
	d.have = target
}

// Agent returns a copy of the agent, if signed in.
func (d *Desk) Agent(id string) (escalation.Agent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.agents {
		if a.ID == id {
			a.Skills = slices.Clone(a.Skills)
			return a, true
		}
	}
	return escalation.Agent{}, false
}

// Offered returns the call offered to the agent, if any.
func (d *Desk) Offered(agentID string) (escalation.Waiting, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.queue {
		if w.OfferedTo == agentID {
			return cloneWaiting(w), true
		}
	}
	return escalation.Waiting{}, false
}

// Position returns a queued call's place (1 = next) and estimated wait.
func (d *Desk) Position(callID string) (int, time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.queue {
		if w.CallID == callID {
			staff := 0
			for _, a := range d.agents {
				if escalation.OnDuty(a) {
					staff++
				}
			}
			handle := d.opt.DefaultHandle
			if d.handleN > 0 {
				handle = d.handle
			}
			return w.Position, escalation.EstimateWait(w.Position, staff, handle), true
		}
	}
	return 0, 0, false
}

// Staffed reports whether any agent on any node is on duty.
func (d *Desk) Staffed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.agents {
		if escalation.OnDuty(a) {
			return true
		}
	}
	return false
}

// Snapshot returns every agent (by name) and the queue (in order).
func (d *Desk) Snapshot() ([]escalation.Agent, []escalation.Waiting) {
	d.mu.Lock()
	defer d.mu.Unlock()
	agents := make([]escalation.Agent, len(d.agents))
	for i, a := range d.agents {
		a.Skills = slices.Clone(a.Skills)
		agents[i] = a
	}
	q := make([]escalation.Waiting, len(d.queue))
	for i, w := range d.queue {
		q[i] = cloneWaiting(w)
	}
	return agents, q
}

func cloneWaiting(w escalation.Waiting) escalation.Waiting {
	w.Declined = slices.Clone(w.Declined)
	w.Reasons = slices.Clone(w.Reasons)
	return w
}
