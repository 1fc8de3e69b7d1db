package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/auth"
)

// Body bounds: an SDP offer with every candidate fits in 64 KiB; notes are
// a few paragraphs at most; everything else is a flag or a word.
const (
	maxSDPBody    = 64 << 10
	maxWrapUpBody = 16 << 10
	maxSmallBody  = 1 << 10
	maxIDLen      = 128
	maxNotesLen   = 8 << 10
	maxDispLen    = 64
)

// apiError answers {"error": msg}.
func apiError(c *fiber.Ctx, code int, msg string) error {
	return c.Status(code).JSON(fiber.Map{"error": msg})
}

// fail maps a backend error to its status; unknown errors are logged and
// answered 500 without details.
func (c *Console) fail(ctx *fiber.Ctx, what string, err error) error {
	code, msg := fiber.StatusInternalServerError, ""
	switch {
	case errors.Is(err, switchboard.ErrNoSuchCall):
		code, msg = fiber.StatusNotFound, "no such live call"
	case errors.Is(err, switchboard.ErrNotYourCall):
		code, msg = fiber.StatusForbidden, "this call is not yours"
	case errors.Is(err, switchboard.ErrNoAgent):
		code, msg = fiber.StatusConflict, "the call has no agent yet"
	case errors.Is(err, switchboard.ErrNotHuman):
		code, msg = fiber.StatusConflict, "the call is not with a person"
	case errors.Is(err, switchboard.ErrBadMode):
		code, msg = fiber.StatusBadRequest, `mode must be "listen", "whisper" or "barge"`
	case errors.Is(err, escalation.ErrNoOffer):
		code, msg = fiber.StatusConflict, "no such offer: it was withdrawn, taken or timed out"
	case errors.Is(err, escalation.ErrUnknownAgent):
		code, msg = fiber.StatusConflict, "you are not signed in on the desk: keep the console open"
	case errors.Is(err, escalation.ErrBadState):
		code, msg = fiber.StatusBadRequest, err.Error()
	case errors.Is(err, mwebrtc.ErrBadOffer):
		code, msg = fiber.StatusBadRequest, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = fiber.StatusGatewayTimeout, "the audio connection took too long to set up"
	}
	ev := c.log.Warn()
	if code == fiber.StatusInternalServerError {
		ev = c.log.Error()
		msg = "internal error"
	}
	u, _ := auth.UserOf(ctx)
	ev.Err(err).Str("user", u.Name).Str("path", ctx.Path()).Int("status", code).Msg("console: " + what)
	return apiError(ctx, code, msg)
}

// decode reads the request body as exactly one JSON object into v,
// refusing unknown fields, bodies over max bytes and other content types.
// It answers the request itself and returns false when the body is bad.
func decode(ctx *fiber.Ctx, max int, v any) (bool, error) {
	ct := strings.ToLower(strings.TrimSpace(string(ctx.Request().Header.ContentType())))
	if !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return false, apiError(ctx, fiber.StatusUnsupportedMediaType, "send the body as application/json")
	}
	body := ctx.Body()
	if len(body) > max {
		return false, apiError(ctx, fiber.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, apiError(ctx, fiber.StatusBadRequest, "malformed JSON body: "+jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, apiError(ctx, fiber.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return true, nil
}

// jsonProblem says what was wrong with a body without echoing it.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s", typ.Field, kindName(typ.Type))
		}
		return "expected a JSON object"
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not a JSON object"
}

// kindName says what JSON a Go type takes.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

// callID reads and checks the :id path parameter.
func callID(ctx *fiber.Ctx) (string, bool) {
	id := ctx.Params("id")
	if id == "" || len(id) > maxIDLen {
		return "", false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "", false
		}
	}
	return strings.Clone(id), true
}

func badID(ctx *fiber.Ctx) error {
	return apiError(ctx, fiber.StatusBadRequest, "malformed call id")
}

// sdpRequest is the body of accept and join.
type sdpRequest struct {
	Type string               `json:"type,omitempty"` // "offer" when given (RTCSessionDescription)
	SDP  string               `json:"sdp"`
	Mode switchboard.JoinMode `json:"mode,omitempty"`
}

func checkSDP(ctx *fiber.Ctx, r sdpRequest) (bool, error) {
	switch {
	case r.Type != "" && r.Type != "offer":
		return false, apiError(ctx, fiber.StatusBadRequest, `type must be "offer"`)
	case strings.TrimSpace(r.SDP) == "":
		return false, apiError(ctx, fiber.StatusBadRequest, "sdp (the browser's WebRTC offer) is required")
	case !utf8.ValidString(r.SDP):
		return false, apiError(ctx, fiber.StatusBadRequest, "sdp must be valid UTF-8")
	}
	return true, nil
}

// signalCtx bounds answering an offer; it also ends when the console closes.
func (c *Console) signalCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.opt.SignalTimeout)
}

// --- agents ---

func (c *Console) setState(ctx *fiber.Ctx) error {
	var req struct {
		State escalation.AgentState `json:"state"`
	}
	if ok, err := decode(ctx, maxSmallBody, &req); !ok {
		return err
	}
	if req.State != escalation.AgentAvailable && req.State != escalation.AgentAway {
		return apiError(ctx, fiber.StatusBadRequest, `state must be "available" or "away"`)
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.SetAgentState(u.ID, req.State); err != nil {
		return c.fail(ctx, "set state", err)
	}
	return ctx.JSON(fiber.Map{"state": req.State})
}

func (c *Console) getOffer(ctx *fiber.Ctx) error {
	u, _ := auth.UserOf(ctx)
	if o, ok := c.b.PendingOffer(u.ID); ok {
		return ctx.JSON(fiber.Map{"offer": o})
	}
	return ctx.JSON(fiber.Map{"offer": nil})
}

func (c *Console) getCall(ctx *fiber.Ctx) error {
	u, _ := auth.UserOf(ctx)
	if lc, ok := c.b.AgentCall(u.ID); ok {
		return ctx.JSON(fiber.Map{"call": forAgent(lc)})
	}
	return ctx.JSON(fiber.Map{"call": nil})
}

func (c *Console) accept(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req sdpRequest
	if ok, err := decode(ctx, maxSDPBody, &req); !ok {
		return err
	}
	if req.Mode != "" {
		return apiError(ctx, fiber.StatusBadRequest, "unknown field \"mode\"")
	}
	if ok, err := checkSDP(ctx, req); !ok {
		return err
	}
	u, _ := auth.UserOf(ctx)
	sctx, cancel := c.signalCtx()
	defer cancel()
	answer, err := c.b.Accept(sctx, u.ID, id, req.SDP)
	if err != nil {
		return c.fail(ctx, "accept", err)
	}
	c.log.Info().Str("agent", u.Name).Str("call_id", id).Msg("console: offer accepted")
	return ctx.JSON(fiber.Map{"type": "answer", "sdp": answer})
}

func (c *Console) decline(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.Decline(u.ID, id); err != nil {
		return c.fail(ctx, "decline", err)
	}
	return ctx.SendStatus(fiber.StatusNoContent)
}

func (c *Console) hangup(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.AgentHangup(u.ID, id); err != nil {
		return c.fail(ctx, "hang up", err)
	}
	return ctx.SendStatus(fiber.StatusNoContent)
}

func (c *Console) mute(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req struct {
		Muted *bool `json:"muted"`
	}
	if ok, err := decode(ctx, maxSmallBody, &req); !ok {
		return err
	}
	if req.Muted == nil {
		return apiError(ctx, fiber.StatusBadRequest, "muted (true or false) is required")
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.AgentMute(u.ID, id, *req.Muted); err != nil {
		return c.fail(ctx, "mute", err)
	}
	return ctx.JSON(fiber.Map{"muted": *req.Muted})
}

func (c *Console) hold(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req struct {
		Hold *bool `json:"hold"`
	}
	if ok, err := decode(ctx, maxSmallBody, &req); !ok {
		return err
	}
	if req.Hold == nil {
		return apiError(ctx, fiber.StatusBadRequest, "hold (true or false) is required")
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.AgentHold(u.ID, id, *req.Hold); err != nil {
		return c.fail(ctx, "hold", err)
	}
	return ctx.JSON(fiber.Map{"hold": *req.Hold})
}

func (c *Console) wrapUp(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req switchboard.WrapUp
	if ok, err := decode(ctx, maxWrapUpBody, &req); !ok {
		return err
	}
	req.Disposition = strings.TrimSpace(req.Disposition)
	switch {
	case req.Disposition == "":
		return apiError(ctx, fiber.StatusBadRequest, "disposition is required")
	case len(req.Disposition) > maxDispLen || !utf8.ValidString(req.Disposition):
		return apiError(ctx, fiber.StatusBadRequest, fmt.Sprintf("disposition must be valid UTF-8 of at most %d bytes", maxDispLen))
	case len(req.Notes) > maxNotesLen || !utf8.ValidString(req.Notes):
		return apiError(ctx, fiber.StatusBadRequest, fmt.Sprintf("notes must be valid UTF-8 of at most %d bytes", maxNotesLen))
	}
	u, _ := auth.UserOf(ctx)
	wctx, cancel := c.signalCtx()
	defer cancel()
	if err := c.b.WrapUp(wctx, u.ID, id, req); err != nil {
		return c.fail(ctx, "wrap up", err)
	}
	return ctx.SendStatus(fiber.StatusNoContent)
}

// forAgent is a live call as an agent may see it: without the supervisors
// silently listening in (whisperers and bargers are heard, so named).
func forAgent(lc switchboard.LiveCall) switchboard.LiveCall {
	if len(lc.Listeners) == 0 {
		return lc
	}
	var heard []switchboard.Listener
	for _, l := range lc.Listeners {
		if l.Mode != switchboard.JoinListen {
			heard = append(heard, l)
		}
	}
	lc.Listeners = heard
	return lc
}

// --- supervisors ---

func (c *Console) live(ctx *fiber.Ctx) error {
	return ctx.JSON(c.b.Live())
}

func (c *Console) join(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req sdpRequest
	if ok, err := decode(ctx, maxSDPBody, &req); !ok {
		return err
	}
	if !req.Mode.Valid() {
		return apiError(ctx, fiber.StatusBadRequest, `mode must be "listen", "whisper" or "barge"`)
	}
	if ok, err := checkSDP(ctx, req); !ok {
		return err
	}
	u, _ := auth.UserOf(ctx)
	sctx, cancel := c.signalCtx()
	defer cancel()
	answer, err := c.b.Join(sctx, u, id, req.Mode, req.SDP)
	if err != nil {
		return c.fail(ctx, "join", err)
	}
	c.log.Info().Str("supervisor", u.Name).Str("call_id", id).Str("mode", string(req.Mode)).Msg("console: joined a call")
	return ctx.JSON(fiber.Map{"type": "answer", "sdp": answer})
}

func (c *Console) setMode(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	var req struct {
		Mode switchboard.JoinMode `json:"mode"`
	}
	if ok, err := decode(ctx, maxSmallBody, &req); !ok {
		return err
	}
	if !req.Mode.Valid() {
		return apiError(ctx, fiber.StatusBadRequest, `mode must be "listen", "whisper" or "barge"`)
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.SetJoinMode(u.ID, id, req.Mode); err != nil {
		return c.fail(ctx, "set mode", err)
	}
	c.log.Info().Str("supervisor", u.Name).Str("call_id", id).Str("mode", string(req.Mode)).Msg("console: join mode")
	return ctx.JSON(fiber.Map{"mode": req.Mode})
}

func (c *Console) leave(ctx *fiber.Ctx) error {
	id, ok := callID(ctx)
	if !ok {
		return badID(ctx)
	}
	u, _ := auth.UserOf(ctx)
	if err := c.b.Leave(u.ID, id); err != nil {
		return c.fail(ctx, "leave", err)
	}
	return ctx.SendStatus(fiber.StatusNoContent)
}
