package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
)

var _ parley.Cluster = (*Store)(nil)

// Heartbeat records that node is alive at.
func (s *Store) Heartbeat(ctx context.Context, node, addr string, at time.Time) error {
	if node == "" {
		return errors.New("postgres: heartbeat: empty node")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO nodes (id, addr, heartbeat_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET addr = EXCLUDED.addr, heartbeat_at = EXCLUDED.heartbeat_at`, node, addr, at)
	if err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

// EndNodeCalls ends node's open calls as dropped, and takes what its
// previous run left on the shared desk off it.
func (s *Store) EndNodeCalls(ctx context.Context, node string, endedAt time.Time, reason string) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := reapDesk(ctx, tx, node, endedAt); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE calls SET ended_at = $1, outcome = $2, reason = $3
WHERE node = $4 AND ended_at IS NULL`, ts(endedAt), string(parley.OutcomeDropped), reason, node)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: end node calls: %w", err)
	}
	return n, nil
}

// ReapNodes ends the calls of nodes silent since staleBefore and forgets
// them. Several nodes may reap at once: the rows of a dead node are locked
// with SKIP LOCKED, so each dead node is reaped by exactly one of them.
func (s *Store) ReapNodes(ctx context.Context, staleBefore, now time.Time) ([]string, int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	rows, err := tx.Query(ctx, `SELECT id FROM nodes WHERE heartbeat_at < $1 FOR UPDATE SKIP LOCKED`, staleBefore)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
	}
	var dead []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
		}
		dead = append(dead, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
	}
	calls := 0
	for _, id := range dead {
		tag, err := tx.Exec(ctx, `UPDATE calls SET ended_at = $1, outcome = $2, reason = $3 WHERE node = $4 AND ended_at IS NULL`,
			ts(now), string(parley.OutcomeDropped), "node "+id+" stopped", id)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
		}
		calls += int(tag.RowsAffected())
		if err := reapDesk(ctx, tx, id, now); err != nil {
			return nil, 0, fmt.Errorf("postgres: reap nodes: desk: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, id); err != nil {
			return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, fmt.Errorf("postgres: reap nodes: %w", err)
	}
	return dead, calls, nil
}

// Nodes lists the nodes alive since.
func (s *Store) Nodes(ctx context.Context, since time.Time) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, addr FROM nodes WHERE heartbeat_at >= $1`, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: nodes: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, addr string
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, fmt.Errorf("postgres: nodes: %w", err)
		}
		out[id] = addr
	}
	return out, rows.Err()
}

// reapDesk takes a dead node off the shared desk: its queued calls are gone
// (agents offered one are available again); its agents who were not on a
// call leave the desk, those on a call elsewhere leave when it ends unless
// they sign in again on another node; agents on one of its calls move to
// wrap-up. The change is announced to every node's desk.
func reapDesk(ctx context.Context, tx pgx.Tx, node string, now time.Time) error {
	var changed []escalation.Agent
	rows, err := tx.Query(ctx, `UPDATE desk_agents SET state = 'available', call_id = '', since = $2, idle_since = $2
WHERE state = 'offered' AND call_id IN (SELECT call_id FROM desk_queue WHERE node = $1) RETURNING `+agentCols, node, now)
	if err != nil {
		return err
	}
	got, err := pgx.CollectRows(rows, rowToAgent)
	if err != nil {
		return err
	}
	changed = append(changed, got...)
	if _, err := tx.Exec(ctx, `DELETE FROM desk_queue WHERE node = $1`, node); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `UPDATE desk_agents SET state = 'wrapup', since = $2
WHERE state = 'busy' AND call_id IN (SELECT id FROM calls WHERE node = $1) RETURNING `+agentCols, node, now)
	if err != nil {
		return err
	}
	if got, err = pgx.CollectRows(rows, rowToAgent); err != nil {
		return err
	}
	changed = append(changed, got...)
	if _, err := tx.Exec(ctx, `UPDATE desk_agents SET leaving = true WHERE node = $1 AND state = 'busy'`, node); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `DELETE FROM desk_agents WHERE node = $1 AND state <> 'busy' RETURNING `+agentCols, node)
	if err != nil {
		return err
	}
	if got, err = pgx.CollectRows(rows, rowToAgent); err != nil {
		return err
	}
	for i := range got {
		got[i].State, got[i].CallID = escalation.AgentOffline, ""
	}
	changed = append(changed, got...)
	evs := []escalation.DeskEvent{{Kind: escalation.DeskQueue}}
	for _, a := range changed {
		evs = append(evs, agentEvent(a))
	}
	body, err := json.Marshal(evs)
	if err != nil {
		return err
	}
	return notify(ctx, tx, envelope{Kind: kindPub, From: "reaper", Name: deskTopic, Body: body})
}
