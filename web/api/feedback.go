package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/auth"
)

// FeedbackPath is where a supervisor marks a caller turn misunderstood.
const FeedbackPath = "/api/calls/:id/feedback"

// Feedback marks one caller turn as misunderstood by the AI and says what
// it should have understood; `parley kb suggest` learns from it.
type Feedback struct {
	Seq    int    `json:"seq"`    // the caller turn
	Intent string `json:"intent"` // the right intent, if one fits ("" = none does)
	Note   string `json:"note"`
}

var intentName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// FeedbackRoutes returns a function that mounts POST /api/calls/{id}/feedback
// for supervisors and admins. The feedback is stored as a "feedback" event
// of the call with the turn's text.
func FeedbackRoutes(st parley.Store, a *auth.Auth, log zerolog.Logger) func(fiber.Router) {
	return func(r fiber.Router) {
		r.Post(FeedbackPath, a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin), func(c *fiber.Ctx) error {
			id := c.Params("id")
			if id == "" || len(id) > maxIDLen {
				return fail(c, fiber.StatusBadRequest, "bad call id")
			}
			if len(c.Body()) > 4096 {
				return fail(c, fiber.StatusRequestEntityTooLarge, "feedback over 4096 bytes")
			}
			var fb Feedback
			dec := json.NewDecoder(bytes.NewReader(c.Body()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fb); err != nil {
				return fail(c, fiber.StatusBadRequest, "send JSON {\"seq\": N, \"intent\": \"name\", \"note\": \"...\"}: "+err.Error())
			}
			fb.Intent = strings.TrimSpace(fb.Intent)
			if fb.Intent != "" && !intentName.MatchString(fb.Intent) {
				return fail(c, fiber.StatusBadRequest, "intent: lower-case letters, digits and _ only")
			}
			if len(fb.Note) > 1000 {
				return fail(c, fiber.StatusBadRequest, "note over 1000 characters")
			}
			call, err := st.GetCall(c.UserContext(), id)
			if errors.Is(err, parley.ErrNotFound) {
				return fail(c, fiber.StatusNotFound, "no such call")
			}
			if err != nil {
				log.Error().Err(err).Str("call_id", id).Msg("api: feedback")
				return fail(c, fiber.StatusInternalServerError, "store unavailable")
			}
			var turn *parley.Turn
			for i := range call.Turns {
				if call.Turns[i].Seq == fb.Seq {
					turn = &call.Turns[i]
				}
			}
			if turn == nil || turn.Speaker != parley.SpeakerCaller || strings.TrimSpace(turn.Text) == "" {
				return fail(c, fiber.StatusBadRequest, "seq must name a caller turn with words")
			}
			u, _ := auth.UserOf(c)
			data, _ := json.Marshal(map[string]any{"seq": fb.Seq, "text": turn.Text, "intent": fb.Intent, "note": fb.Note, "by": u.Name})
			if err := st.AppendEvent(c.UserContext(), parley.Event{CallID: id, At: time.Now(), Kind: "feedback", Data: data}); err != nil {
				log.Error().Err(err).Str("call_id", id).Msg("api: feedback")
				return fail(c, fiber.StatusInternalServerError, "store unavailable")
			}
			return c.Status(fiber.StatusCreated).JSON(fiber.Map{"ok": true})
		})
	}
}
