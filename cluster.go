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

// Bus connects the nodes of a cluster: what one node publishes reaches
// every other node, and a node can ask another one (the node that holds a
// call's audio) to do something and wait for its answer. store/postgres
// implements it over LISTEN/NOTIFY. Bodies are opaque (JSON by convention)
// and may be of any size.
type Bus interface {
	// Node is this node's id.
	Node() string
	// Publish sends body on topic to every other node.
	Publish(ctx context.Context, topic string, body []byte) error
	// Subscribe calls fn, in order, for every body another node publishes
	// on topic; fn must not block.
	Subscribe(topic string, fn func(from string, body []byte))
	// Request asks node to run method on body and returns its reply; it
	// fails when the node does not answer before ctx ends.
	Request(ctx context.Context, node, method string, body []byte) ([]byte, error)
	// Handle serves method for the other nodes' Requests; each request
	// runs on its own goroutine.
	Handle(method string, fn func(ctx context.Context, from string, body []byte) ([]byte, error))
}
