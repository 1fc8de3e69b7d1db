package parley

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store when the thing asked for does not exist.
var ErrNotFound = errors.New("parley: not found")

// Event is something that happened to a call besides a turn: an escalation
// decision with its reasons, a Twilio status callback, a transfer step.
type Event struct {
	CallID string          `json:"call_id"`
	At     time.Time       `json:"at"`
	Kind   string          `json:"kind"` // "decision", "status", "transfer", ...
	Data   json.RawMessage `json:"data,omitempty"`
}

// CallQuery selects calls for supervisors and exports. Zero fields do not filter.
type CallQuery struct {
	From    time.Time // started at or after
	To      time.Time // started before
	Number  string    // caller or dialled number
	Outcome Outcome
	Text    string // full-text search in transcripts
	Limit   int    // 0 = store default (100)
	Offset  int
}

// Store keeps every call, turn and event. Turns are written as the call
// goes, so a crash loses at most the current turn. Implementations:
// store/sqlite (embedded default) and store/postgres (several nodes).
type Store interface {
	// CreateCall records a new call (ID, channel, numbers, start time).
	CreateCall(ctx context.Context, c Call) error
	// EndCall records how and when a call ended.
	EndCall(ctx context.Context, id string, endedAt time.Time, outcome Outcome, reason string) error
	// AppendTurn adds one turn to its call.
	AppendTurn(ctx context.Context, t Turn) error
	// AppendEvent adds one event to its call.
	AppendEvent(ctx context.Context, e Event) error
	// GetCall returns a call with its turns (ordered by Seq); ErrNotFound when absent.
	GetCall(ctx context.Context, id string) (Call, error)
	// Events returns a call's events in time order.
	Events(ctx context.Context, callID string) ([]Event, error)
	// ListCalls returns calls matching q, newest first, without turns.
	ListCalls(ctx context.Context, q CallQuery) ([]Call, error)
	// ForgetNumber deletes every call from or to number, with its turns
	// and events (a caller's erasure request), and returns how many calls
	// went. An empty number is an error, never "everything".
	ForgetNumber(ctx context.Context, number string) (int, error)
	// ForgetBefore deletes every call that started before t, with its
	// turns and events (transcript retention), and returns how many went.
	ForgetBefore(ctx context.Context, t time.Time) (int, error)
	// Close releases the store.
	Close() error
}
