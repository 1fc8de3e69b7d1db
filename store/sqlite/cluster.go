package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-ai/parley"
)

var _ parley.Cluster = (*Store)(nil)

// Heartbeat records that node is alive at.
func (s *Store) Heartbeat(ctx context.Context, node, addr string, at time.Time) error {
	if node == "" {
		return errors.New("sqlite: heartbeat: empty node")
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO nodes (id, addr, heartbeat_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, heartbeat_at = excluded.heartbeat_at`, node, addr, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat: %w", err)
	}
	return nil
}

// EndNodeCalls ends node's open calls as dropped.
func (s *Store) EndNodeCalls(ctx context.Context, node string, endedAt time.Time, reason string) (int, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE calls SET ended_at = ?, outcome = ?, reason = ?
WHERE node = ? AND ended_at IS NULL`, endedAt.UnixMilli(), string(parley.OutcomeDropped), reason, node)
	if err != nil {
		return 0, fmt.Errorf("sqlite: end node calls: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: end node calls: %w", err)
	}
	return int(n), nil
}

// ReapNodes ends the calls of nodes silent since staleBefore and forgets them.
func (s *Store) ReapNodes(ctx context.Context, staleBefore, now time.Time) ([]string, int, error) {
	rows, err := s.write.QueryContext(ctx, `SELECT id FROM nodes WHERE heartbeat_at < ?`, staleBefore.UnixMilli())
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: reap nodes: %w", err)
	}
	var dead []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: reap nodes: %w", err)
		}
		dead = append(dead, id)
	}
	rows.Close()
	calls := 0
	for _, id := range dead {
		n, err := s.EndNodeCalls(ctx, id, now, "node "+id+" stopped")
		if err != nil {
			return dead, calls, err
		}
		calls += n
		if _, err := s.write.ExecContext(ctx, `DELETE FROM nodes WHERE id = ? AND heartbeat_at < ?`, id, staleBefore.UnixMilli()); err != nil {
			return dead, calls, fmt.Errorf("sqlite: reap nodes: %w", err)
		}
	}
	return dead, calls, nil
}

// Nodes lists the nodes alive since.
func (s *Store) Nodes(ctx context.Context, since time.Time) (map[string]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, addr FROM nodes WHERE heartbeat_at >= ?`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, addr string
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, fmt.Errorf("sqlite: nodes: %w", err)
		}
		out[id] = addr
	}
	return out, rows.Err()
}
