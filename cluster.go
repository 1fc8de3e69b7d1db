package parley

import (
	"context"
	"time"
)

// Cluster is what nodes sharing one store know of each other: each node
// beats its heart regularly, and any node ends the calls of a node whose
// heart stopped (it crashed or lost its network), keeping their
// transcripts. store/sqlite and store/postgres implement it.
type Cluster interface {
	// Heartbeat records that node (reachable at addr) is alive at.
	Heartbeat(ctx context.Context, node, addr string, at time.Time) error
	// EndNodeCalls ends every open call of node as dropped with reason,
	// at endedAt, and returns how many; a node calls it for itself at
	// start-up for calls a previous run of it left open.
	EndNodeCalls(ctx context.Context, node string, endedAt time.Time, reason string) (int, error)
	// ReapNodes ends the open calls of every node whose last heartbeat is
	// before staleBefore, forgets those nodes, and returns the nodes and
	// the number of calls ended.
	ReapNodes(ctx context.Context, staleBefore, now time.Time) (nodes []string, calls int, err error)
	// Nodes lists the live nodes (id to address) with a heartbeat at or
	// after since.
	Nodes(ctx context.Context, since time.Time) (map[string]string, error)
}
