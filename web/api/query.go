package api

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-ai/parley"
)

// Bounds of the call-history query.
const (
	DefaultLimit = 100
	MaxLimit     = 500
	MaxOffset    = 1_000_000
	maxNumberLen = 128
	maxTextLen   = 256
	maxQueryLen  = 4096
)

// Outcomes is every outcome a call can end with, the values the outcome
// filter accepts.
var Outcomes = []parley.Outcome{
	parley.OutcomeResolved, parley.OutcomeEscalated, parley.OutcomeAbandoned,
	parley.OutcomeDropped, parley.OutcomeFailed, parley.OutcomeCallback, parley.OutcomeVoicemail,
}

// ParseCallQuery turns the query string of GET /api/calls into a
// parley.CallQuery. Parameters: from and to (RFC 3339 time, or a date
// YYYY-MM-DD in UTC; a date in to includes that whole day), number, outcome,
// q (words to find in transcripts), limit (1..500, default 100) and
// offset. Empty values are ignored; unknown or repeated parameters are
// errors, so that a typo never silently widens a search. Error messages
// are meant for the client.
func ParseCallQuery(raw string) (parley.CallQuery, error) {
	q := parley.CallQuery{Limit: DefaultLimit}
	if len(raw) > maxQueryLen {
		return parley.CallQuery{}, fmt.Errorf("query string is longer than %d bytes", maxQueryLen)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return parley.CallQuery{}, errors.New("query string is not valid URL encoding")
	}
	for key, vs := range vals {
		if len(vs) > 1 {
			return parley.CallQuery{}, fmt.Errorf("parameter %q is given %d times", key, len(vs))
		}
		v := vs[0]
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) {
			return parley.CallQuery{}, fmt.Errorf("parameter %q is not valid UTF-8", key)
		}
		switch key {
		case "from":
			if q.From, err = parseTime(v, false); err != nil {
				return parley.CallQuery{}, fmt.Errorf("from: %w", err)
			}
		case "to":
			if q.To, err = parseTime(v, true); err != nil {
				return parley.CallQuery{}, fmt.Errorf("to: %w", err)
			}
		case "number":
			if len(v) > maxNumberLen || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
				return parley.CallQuery{}, fmt.Errorf("number: want a phone number or caller identity of at most %d bytes without spaces", maxNumberLen)
			}
			q.Number = v
		case "outcome":
			o, err := ParseOutcome(v)
			if err != nil {
				return parley.CallQuery{}, err
			}
			q.Outcome = o
		case "q":
			if len(v) > maxTextLen {
				return parley.CallQuery{}, fmt.Errorf("q: longer than %d bytes", maxTextLen)
			}
			q.Text = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxLimit {
				return parley.CallQuery{}, fmt.Errorf("limit: want a whole number from 1 to %d, got %q", MaxLimit, v)
			}
			q.Limit = n
		case "offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > MaxOffset {
				return parley.CallQuery{}, fmt.Errorf("offset: want a whole number from 0 to %d, got %q", MaxOffset, v)
			}
			q.Offset = n
		default:
			return parley.CallQuery{}, fmt.Errorf("unknown parameter %q (known: from, to, number, outcome, q, limit, offset)", key)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return parley.CallQuery{}, errors.New("from is after to")
	}
	return q, nil
}

// ParseOutcome checks that s names a call outcome.
func ParseOutcome(s string) (parley.Outcome, error) {
	for _, o := range Outcomes {
		if string(o) == s {
			return o, nil
		}
	}
	names := make([]string, len(Outcomes))
	for i, o := range Outcomes {
		names[i] = string(o)
	}
	return "", fmt.Errorf("outcome: want one of %s, got %q", strings.Join(names, ", "), s)
}

// ParseTime reads an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC).
// With endOfDay a date means the end of that day (the next midnight), so
// that "to=2026-03-14" includes all of the 14th.
func ParseTime(s string, endOfDay bool) (time.Time, error) {
	return parseTime(s, endOfDay)
}

func parseTime(s string, endOfDay bool) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err == nil && endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-03-14T09:30:00Z) or a date (2026-03-14), got %q", s)
		}
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time %q is out of range", s)
	}
	return t.UTC(), nil
}
