// Package web is parley's HTTP face: the fiber app that carries the Twilio
// webhooks and media sockets, health and the consoles' APIs.
package web

import (
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// Health reports what /healthz shows.
type Health struct {
	draining    atomic.Bool
	activeCalls func() int
	started     time.Time
}

// NewHealth tracks health; activeCalls reports the calls in progress.
func NewHealth(activeCalls func() int) *Health {
	return &Health{activeCalls: activeCalls, started: time.Now()}
}

// SetDraining marks the node as draining: it takes no new calls.
func (h *Health) SetDraining() { h.draining.Store(true) }

// Draining reports whether the node is draining.
func (h *Health) Draining() bool { return h.draining.Load() }

// New builds the fiber app with parley's common routes (/healthz). Channel
// adapters register their own routes on it.
func New(h *Health, log zerolog.Logger) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "parley",
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		BodyLimit:             1 << 20,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code := fiber.StatusInternalServerError
			if e, ok := err.(*fiber.Error); ok {
				code = e.Code
			}
			if code >= 500 {
				log.Error().Err(err).Str("path", c.Path()).Msg("http: request failed")
			}
			return c.Status(code).JSON(fiber.Map{"error": err.Error()})
		},
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		status, code := "ok", fiber.StatusOK
		if h.Draining() {
			status, code = "draining", fiber.StatusServiceUnavailable
		}
		active := 0
		if h.activeCalls != nil {
			active = h.activeCalls()
		}
		return c.Status(code).JSON(fiber.Map{
			"status":       status,
			"active_calls": active,
			"uptime_s":     int(time.Since(h.started).Seconds()),
		})
	})
	return app
}
