// Package api serves the supervisors' call history over JSON:
//
//	GET /api/calls?from=&to=&number=&outcome=&q=&limit=&offset=
//	GET /api/calls/{id}
//
// The list is newest first, without transcripts; q searches transcripts
// (every word must appear, stemmed, case-insensitive). One call comes with
// its turns and their timings (speech end, first reply audio, latency),
// its events (escalation decisions with their reasons, status callbacks,
// transfer steps; data as JSON objects) and links to its recordings.
// Both routes need a supervisor or admin session (web/auth).
package api

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/auth"
)

// maxIDLen bounds a call ID in a path; Twilio's are 34 bytes.
const maxIDLen = 128

// Calls returns a function that mounts the call-history routes on a
// router, each behind a.RequireUser(supervisor, admin). Failures of the
// store are logged to log and answered 500 without details.
func Calls(st parley.Store, a *auth.Auth, log zerolog.Logger) func(fiber.Router) {
	h := &handler{st: st, log: log}
	return func(r fiber.Router) {
		guard := a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin)
		r.Get("/api/calls", guard, h.list)
		r.Get("/api/calls/:id", guard, h.get)
	}
}

type handler struct {
	st  parley.Store
	log zerolog.Logger
}

// CallView is a call as the API shows it: unset times are null.
type CallView struct {
	ID         string         `json:"id"`
	Channel    parley.Channel `json:"channel"`
	From       string         `json:"from"`
	To         string         `json:"to"`
	StartedAt  time.Time      `json:"started_at"`
	EndedAt    *time.Time     `json:"ended_at"`
	DurationMS *int64         `json:"duration_ms"`
	Outcome    parley.Outcome `json:"outcome"`
	Reason     string         `json:"reason"`
}

// TurnView is one turn with its timings in milliseconds.
type TurnView struct {
	Seq         int             `json:"seq"`
	Speaker     parley.Speaker  `json:"speaker"`
	Text        string          `json:"text"`
	Intended    string          `json:"intended,omitempty"`
	Interrupted bool            `json:"interrupted"`
	DTMF        string          `json:"dtmf,omitempty"`
	Start       *time.Time      `json:"start"`
	End         *time.Time      `json:"end"`
	EndOfSpeech *time.Time      `json:"end_of_speech"`
	FirstAudio  *time.Time      `json:"first_audio"`
	DurationMS  *int64          `json:"duration_ms"`
	LatencyMS   *int64          `json:"latency_ms"` // last word to first reply audio
	Signals     *parley.Signals `json:"signals"`
}

// EventView is one event; Data is the stored JSON value itself.
type EventView struct {
	At   time.Time       `json:"at"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// Recording is a link to a call's recorded audio, taken from its
// "recording" events (data {"url": ..., ...}).
type Recording struct {
	At  time.Time `json:"at"`
	URL string    `json:"url"`
}

// CallDetail is the answer of GET /api/calls/{id}.
type CallDetail struct {
	Call       CallView    `json:"call"`
	Turns      []TurnView  `json:"turns"`
	Events     []EventView `json:"events"`
	Recordings []Recording `json:"recordings"`
}

// CallList is the answer of GET /api/calls. NextOffset is the offset of
// the next page, or null on the last one.
type CallList struct {
	Calls      []CallView `json:"calls"`
	Limit      int        `json:"limit"`
	Offset     int        `json:"offset"`
	NextOffset *int       `json:"next_offset"`
}

func (h *handler) list(c *fiber.Ctx) error {
	q, err := ParseCallQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return fail(c, fiber.StatusBadRequest, err.Error())
	}
	page := q
	page.Limit++ // one more tells whether there is a next page
	calls, err := h.st.ListCalls(c.UserContext(), page)
	if err != nil {
		h.log.Error().Err(err).Msg("api: list calls")
		return fail(c, fiber.StatusInternalServerError, "internal error")
	}
	out := CallList{Calls: make([]CallView, 0, min(len(calls), q.Limit)), Limit: q.Limit, Offset: q.Offset}
	if len(calls) > q.Limit {
		calls = calls[:q.Limit]
		next := q.Offset + q.Limit
		out.NextOffset = &next
	}
	for _, call := range calls {
		out.Calls = append(out.Calls, ViewCall(call))
	}
	return c.JSON(out)
}

func (h *handler) get(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return fail(c, fiber.StatusBadRequest, "call id: want 1 to 128 bytes of UTF-8")
	}
	ctx := c.UserContext()
	call, err := h.st.GetCall(ctx, id)
	if errors.Is(err, parley.ErrNotFound) {
		return fail(c, fiber.StatusNotFound, "call not found")
	}
	if err != nil {
		h.log.Error().Err(err).Str("call_id", id).Msg("api: get call")
		return fail(c, fiber.StatusInternalServerError, "internal error")
	}
	evs, err := h.st.Events(ctx, id)
	if errors.Is(err, parley.ErrNotFound) {
		// Forgotten between the two reads.
		return fail(c, fiber.StatusNotFound, "call not found")
	}
	if err != nil {
		h.log.Error().Err(err).Str("call_id", id).Msg("api: call events")
		return fail(c, fiber.StatusInternalServerError, "internal error")
	}
	return c.JSON(Detail(call, evs))
}

// Detail builds the API view of a call with its turns and events; the
// export command writes the same shape.
func Detail(call parley.Call, evs []parley.Event) CallDetail {
	d := CallDetail{
		Call:       ViewCall(call),
		Turns:      make([]TurnView, 0, len(call.Turns)),
		Events:     make([]EventView, 0, len(evs)),
		Recordings: []Recording{},
	}
	for _, t := range call.Turns {
		v := TurnView{Seq: t.Seq, Speaker: t.Speaker, Text: t.Text, Intended: t.Intended, Interrupted: t.Interrupted,
			DTMF: t.DTMF, Start: opt(t.Start), End: opt(t.End), EndOfSpeech: opt(t.EndOfSpeech), FirstAudio: opt(t.FirstAudio),
			DurationMS: span(t.Start, t.End), LatencyMS: span(t.EndOfSpeech, t.FirstAudio), Signals: t.Signals}
		d.Turns = append(d.Turns, v)
	}
	for _, e := range evs {
		data := e.Data
		if len(data) == 0 || !json.Valid(data) {
			data = json.RawMessage("null")
		}
		d.Events = append(d.Events, EventView{At: e.At.UTC(), Kind: e.Kind, Data: data})
		if r, ok := recording(e); ok {
			d.Recordings = append(d.Recordings, r)
		}
	}
	return d
}

// ViewCall is the API view of a call's own fields.
func ViewCall(c parley.Call) CallView {
	return CallView{ID: c.ID, Channel: c.Channel, From: c.From, To: c.To, StartedAt: c.StartedAt.UTC(),
		EndedAt: opt(c.EndedAt), DurationMS: span(c.StartedAt, c.EndedAt), Outcome: c.Outcome, Reason: c.Reason}
}

// recording reads a "recording" event's link. Only http(s) URLs and
// server paths are links: anything else (javascript:, data:) could run
// in the console that shows it.
func recording(e parley.Event) (Recording, bool) {
	if e.Kind != "recording" || len(e.Data) == 0 {
		return Recording{}, false
	}
	var d struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(e.Data, &d) != nil || d.URL == "" {
		return Recording{}, false
	}
	u, err := url.Parse(d.URL)
	switch {
	case err != nil:
		return Recording{}, false
	case u.Scheme == "https" || u.Scheme == "http":
		if u.Host == "" {
			return Recording{}, false
		}
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(d.URL, "//"):
	default:
		return Recording{}, false
	}
	return Recording{At: e.At.UTC(), URL: d.URL}, true
}

func opt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// span is b - a in milliseconds, or nil when either is unset. A negative
// latency is real: an early end-of-turn can start the reply before the
// recogniser's final end of speech.
func span(a, b time.Time) *int64 {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	ms := b.Sub(a).Milliseconds()
	return &ms
}

func fail(c *fiber.Ctx, code int, msg string) error {
	return c.Status(code).JSON(fiber.Map{"error": msg})
}
