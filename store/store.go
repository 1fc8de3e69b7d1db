// Package store holds what parley's persistence backends share: input
// checks, time and query normalisation, text-search terms, versioned
// migrations, the Async writer that keeps database latency off the media
// path (committing bursts in one transaction through Batcher), and the
// test kit every backend runs: Contract, the behaviour suite every
// parley.Store must pass, and Benchmarks, its turns-per-second numbers.
//
// The backends live in store/sqlite (embedded default) and store/postgres
// (several nodes); the parley.Store interface itself is declared in the
// root package so that consumers never import a backend.
//
// Rules every backend follows, so that callers see one behaviour:
//   - Times are stored at millisecond precision and returned in UTC; a zero
//     time.Time round-trips as zero.
//   - CreateCall stores the call's own fields and any turns it already
//     carries, in one transaction; a duplicate ID wraps ErrDuplicate.
//   - AppendTurn, AppendEvent and EndCall on an unknown call, and GetCall
//     and Events of an unknown call, fail with an error wrapping
//     parley.ErrNotFound. A duplicate (call, seq) turn wraps ErrDuplicate.
//   - ListCalls returns newest first (ties broken by ID, descending); a
//     text query matches calls whose transcript (the Text of their turns)
//     contains every searchable word of the query, case-insensitively and
//     with English stemming, in any of their turns.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/parley-ai/parley"
)

// ErrDuplicate is wrapped by the error a backend returns when a call ID, or
// a turn's (call, seq), is already stored. parley.ErrNotFound's sibling
// lives here because the root package does not declare one.
var ErrDuplicate = errors.New("store: already stored")

// DefaultLimit is how many calls ListCalls returns when CallQuery.Limit is zero.
const DefaultLimit = 100

// Millis returns t as a backend stores it: truncated to the millisecond, in
// UTC. The zero time stays zero so that "not set" survives a round trip.
func Millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

// Page returns the limit and offset a backend should use for q: a zero or
// negative limit becomes DefaultLimit and a negative offset becomes zero.
func Page(q parley.CallQuery) (limit, offset int) {
	limit, offset = q.Limit, q.Offset
	if limit <= 0 {
		limit = DefaultLimit
	}
	if offset < 0 {
		offset = 0
	}
	return limit, offset
}

// CheckCall reports why c cannot be stored, or nil. Backends call it before
// touching the database so that both reject the same calls with the same words.
func CheckCall(c parley.Call) error {
	switch {
	case c.ID == "":
		return errors.New("call has no id")
	case c.StartedAt.IsZero():
		return fmt.Errorf("call %s has no start time", c.ID)
	}
	for i, t := range c.Turns {
		if t.CallID != "" && t.CallID != c.ID {
			return fmt.Errorf("call %s: turn %d belongs to call %s", c.ID, i, t.CallID)
		}
		t.CallID = c.ID
		if err := CheckTurn(t); err != nil {
			return err
		}
	}
	return nil
}

// CheckTurn reports why t cannot be stored, or nil.
func CheckTurn(t parley.Turn) error {
	switch {
	case t.CallID == "":
		return errors.New("turn has no call id")
	case t.Seq < 0:
		return fmt.Errorf("call %s: turn has negative seq %d", t.CallID, t.Seq)
	case t.Speaker == "":
		return fmt.Errorf("call %s: turn %d has no speaker", t.CallID, t.Seq)
	}
	return nil
}

// CheckEvent reports why e cannot be stored, or nil. Event data must be
// valid JSON because backends store it as JSON (jsonb in PostgreSQL).
func CheckEvent(e parley.Event) error {
	switch {
	case e.CallID == "":
		return errors.New("event has no call id")
	case e.Kind == "":
		return fmt.Errorf("call %s: event has no kind", e.CallID)
	case e.At.IsZero():
		return fmt.Errorf("call %s: %s event has no time", e.CallID, e.Kind)
	case len(e.Data) > 0 && !json.Valid(e.Data):
		return fmt.Errorf("call %s: %s event data is not valid JSON", e.CallID, e.Kind)
	}
	return nil
}

// EncodeSignals returns the JSON a backend stores for s, or nil when s is nil.
func EncodeSignals(s *parley.Signals) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode signals: %w", err)
	}
	return b, nil
}

// DecodeSignals turns stored signals JSON back into a *parley.Signals; empty
// input (SQL NULL) gives nil.
func DecodeSignals(b []byte) (*parley.Signals, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var s parley.Signals
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode signals: %w", err)
	}
	return &s, nil
}

// SearchTerms splits a CallQuery.Text into the words a backend searches for:
// lower-cased runs of letters and digits, without duplicates and without
// English stop words ("my", "was", "the"), which PostgreSQL does not index.
// A query made only of stop words has no terms and matches no call.
func SearchTerms(text string) []string {
	var terms []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if _, stop := stopWords[w]; stop {
			continue
		}
		dup := false
		for _, t := range terms {
			if t == w {
				dup = true
				break
			}
		}
		if !dup {
			terms = append(terms, w)
		}
	}
	return terms
}
