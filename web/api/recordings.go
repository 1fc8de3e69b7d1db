package api

import (
	"os"
	"path/filepath"
	"regexp"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/auth"
)

// RecordingPath is where a call's recording is served, for call id {id}.
const RecordingPath = "/api/calls/:id/recording.wav"

// RecordingURL is the link to a call's recording.
func RecordingURL(callID string) string { return "/api/calls/" + callID + "/recording.wav" }

var recordingID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Recordings returns a function that mounts GET /api/calls/{id}/recording.wav,
// the stereo WAV of a recorded call (left: caller, right: what the caller
// heard), from dir, for supervisors and admins only.
func Recordings(dir string, a *auth.Auth, log zerolog.Logger) func(fiber.Router) {
	return func(r fiber.Router) {
		r.Get(RecordingPath, a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin), func(c *fiber.Ctx) error {
			id := c.Params("id")
			if !recordingID.MatchString(id) {
				return fail(c, fiber.StatusBadRequest, "bad call id")
			}
			f, err := os.Open(filepath.Join(dir, id+".wav"))
			if err != nil {
				if !os.IsNotExist(err) {
					log.Error().Err(err).Str("call_id", id).Msg("api: recording")
				}
				return fail(c, fiber.StatusNotFound, "no recording for this call (not recorded, or past its retention)")
			}
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return fail(c, fiber.StatusInternalServerError, "recording unreadable")
			}
			c.Set(fiber.HeaderCacheControl, "private, no-store")
			c.Set("X-Content-Type-Options", "nosniff")
			c.Type("wav")
			return c.SendStream(f, int(info.Size())) // closed by the server once sent
		})
	}
}
