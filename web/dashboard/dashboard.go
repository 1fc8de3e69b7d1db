// Package dashboard serves the supervisors' KPI dashboard:
//
//	GET /api/kpis?from=&to=&step=&review=   the parley.KPIReport as JSON
//	GET /dashboard                          the page (HTML, CSS, JS, Chart.js)
//
// from and to are RFC 3339 times or dates (a "to" date includes that day);
// to defaults to now and from to seven days before to. step is "hour" or
// "day" (default: hours up to three days, else days); review is how many
// calls to list for review (default 25, at most 200). The API needs a
// supervisor or admin session (web/auth). The page itself holds no data:
// it logs in through POST /api/login when GET /api/me says 401, then
// reads /api/kpis and links each call to review to /api/calls/{id}.
//
// Everything the page needs is embedded in the binary, Chart.js included
// (static/chart.umd.min.js, see static/README.md), and served with a
// Content-Security-Policy that allows only the page's own scripts.
package dashboard

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/api"
	"github.com/parley-ai/parley/web/auth"
)

// Paths the package serves.
const (
	PagePath = "/dashboard"
	APIPath  = "/api/kpis"
)

// DefaultPeriod is the period of a report without from.
const DefaultPeriod = 7 * 24 * time.Hour

//go:embed static/index.html static/dashboard.js static/dashboard.css static/chart.umd.min.js
var files embed.FS

// assets are the page's files by the path they are served at.
var assets = []struct{ name, path, contentType string }{
	{"index.html", PagePath, fiber.MIMETextHTMLCharsetUTF8},
	{"dashboard.js", PagePath + "/dashboard.js", "text/javascript; charset=utf-8"},
	{"dashboard.css", PagePath + "/dashboard.css", "text/css; charset=utf-8"},
	{"chart.umd.min.js", PagePath + "/chart.umd.min.js", "text/javascript; charset=utf-8"},
}

// Register mounts the KPI API (behind a.RequireUser(supervisor, admin))
// and the dashboard page on r. Failures of an are logged to log and
// answered 500 without details.
func Register(r fiber.Router, a *auth.Auth, an parley.Analytics, log zerolog.Logger) error {
	if a == nil || an == nil {
		return errors.New("dashboard: nil auth or analytics")
	}
	for _, as := range assets {
		body, err := fs.ReadFile(files, "static/"+as.name)
		if err != nil {
			return fmt.Errorf("dashboard: embedded %s: %w", as.name, err)
		}
		r.Get(as.path, serveAsset(body, as.contentType))
	}
	h := &handler{an: an, log: log, now: time.Now}
	r.Get(APIPath, a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin), h.kpis)
	return nil
}

// securityHeaders keep the page from being framed or sniffed and limit it
// to its own scripts, styles and API.
func securityHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("X-Frame-Options", "DENY")
}

func serveAsset(body []byte, contentType string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		securityHeaders(c)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderContentType, contentType)
		return c.Send(body)
	}
}

type handler struct {
	an  parley.Analytics
	log zerolog.Logger
	now func() time.Time
}

func (h *handler) kpis(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	q, err := ParseKPIQuery(string(c.Request().URI().QueryString()), h.now())
	if err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
	}
	rep, err := h.an.KPIs(c.UserContext(), q)
	if err != nil {
		h.log.Error().Err(err).Time("from", q.From).Time("to", q.To).Msg("dashboard: kpis")
		return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"error": "internal error"})
	}
	return c.JSON(rep)
}

// ParseKPIQuery reads the query string of GET /api/kpis; now is the
// default end of the period.
func ParseKPIQuery(raw string, now time.Time) (parley.KPIQuery, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return parley.KPIQuery{}, fmt.Errorf("query string: %w", err)
	}
	for k, vs := range v {
		switch k {
		case "from", "to", "step", "review":
			if len(vs) > 1 {
				return parley.KPIQuery{}, fmt.Errorf("%s: given more than once", k)
			}
		default:
			return parley.KPIQuery{}, fmt.Errorf("unknown parameter %q", k)
		}
	}
	q := parley.KPIQuery{To: now.UTC().Truncate(time.Millisecond)}
	if s := v.Get("to"); s != "" {
		if q.To, err = api.ParseTime(s, true); err != nil {
			return parley.KPIQuery{}, fmt.Errorf("to: %w", err)
		}
	}
	q.From = q.To.Add(-DefaultPeriod)
	if s := v.Get("from"); s != "" {
		if q.From, err = api.ParseTime(s, false); err != nil {
			return parley.KPIQuery{}, fmt.Errorf("from: %w", err)
		}
	}
	switch v.Get("step") {
	case "":
	case "hour":
		q.Step = time.Hour
	case "day":
		q.Step = 24 * time.Hour
	default:
		return parley.KPIQuery{}, errors.New(`step: want "hour" or "day"`)
	}
	if s := v.Get("review"); s != "" {
		if q.Review, err = strconv.Atoi(s); err != nil {
			return parley.KPIQuery{}, errors.New("review: want a number 0 to 200")
		}
	}
	if err := q.Check(); err != nil {
		return parley.KPIQuery{}, err
	}
	return q, nil
}
