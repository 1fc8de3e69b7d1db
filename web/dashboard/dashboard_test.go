package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/sqlite"
	"github.com/parley-ai/parley/store/storetest"
	"github.com/parley-ai/parley/web/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

const password = "supervisor password"

type server struct{ url string }

// start serves the dashboard and the auth routes on 127.0.0.1:0 over a
// SQLite store holding storetest's KPI fixture and two users: sam
// (supervisor) and alice (agent).
func start(t *testing.T) *server {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	cheap := auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, u := range []parley.User{{ID: "u1", Name: "sam", Role: parley.RoleSupervisor}, {ID: "u2", Name: "alice", Role: parley.RoleAgent}} {
		if u.PasswordHash, err = auth.HashPasswordWith(password, cheap); err != nil {
			t.Fatal(err)
		}
		u.CreatedAt = storetest.KPIT0
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	storetest.KPIFixture(t, st)
	a := auth.New(st, auth.Config{Params: cheap})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	a.Register(app)
	if err := Register(app, a, st, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return &server{url: "http://" + ln.Addr().String()}
}

func (s *server) login(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Post(s.url+"/api/login", "application/json",
		strings.NewReader(`{"name":"`+name+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName && resp.StatusCode == 200 {
			return c.Value
		}
	}
	t.Fatalf("login %s = %d", name, resp.StatusCode)
	return ""
}

func (s *server) get(t *testing.T, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: token})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func kpiPath(from, to time.Time, extra string) string {
	return "/api/kpis?from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)) + extra
}

func TestKPIsNeedSupervisor(t *testing.T) {
	s := start(t)
	path := kpiPath(storetest.KPIT0, storetest.KPIT0.Add(3*time.Hour), "")
	resp, body := s.get(t, path, "")
	if resp.StatusCode != 401 || !strings.Contains(string(body), "login required") {
		t.Errorf("GET /api/kpis without login = %d %s, want 401", resp.StatusCode, body)
	}
	resp, body = s.get(t, path, s.login(t, "alice"))
	if resp.StatusCode != 403 {
		t.Errorf("GET /api/kpis as an agent = %d %s, want 403", resp.StatusCode, body)
	}
	resp, body = s.get(t, path, "not-a-session")
	if resp.StatusCode != 401 {
		t.Errorf("GET /api/kpis with a made-up session = %d %s, want 401", resp.StatusCode, body)
	}
}

func TestKPIs(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	resp, body := s.get(t, kpiPath(storetest.KPIT0, storetest.KPIT0.Add(3*time.Hour), ""), tok)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/kpis = %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var r parley.KPIReport
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	storetest.CheckKPIFixture(t, r)
	// The JSON names the dashboard script reads.
	for _, key := range []string{`"containment_rate"`, `"escalation_reasons"`, `"time_to_human":{"count":1`, `"p95_ms"`,
		`"worst_intents"`, `"review"`, `"series"`, `"by_intent"`, `"distribution":[1,0,0,1,0]`, `"low_confidence_share"`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("answer lacks %s: %s", key, body)
		}
	}

	// Dates: a "to" date includes that day; step and review are honoured.
	resp, body = s.get(t, "/api/kpis?from=2026-03-14&to=2026-03-14&step=hour&review=1", tok)
	if resp.StatusCode != 200 {
		t.Fatalf("GET by dates = %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Calls != 7 || len(r.Series) != 24 || r.Step != "hour" || len(r.Review) != 1 {
		t.Errorf("one day: %d calls, %d points of %s, %d to review", r.Calls, len(r.Series), r.Step, len(r.Review))
	}
}

func TestKPIsBadQueries(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	for _, q := range []string{
		"from=yesterday",
		"from=2026-03-14T10:00:00Z&to=2026-03-14T09:00:00Z",
		"from=2026-03-14&to=2026-03-14&step=minute",
		"from=2026-03-14&review=lots",
		"from=2026-03-14&review=1000",
		"from=2026-03-14&from=2026-03-15",
		"from=2020-01-01&to=2026-01-01",
		"colour=blue",
		"%zz",
	} {
		resp, body := s.get(t, "/api/kpis?"+q, tok)
		var e struct{ Error string }
		if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET /api/kpis?%s = %d %s, want 400 with an error", q, resp.StatusCode, body)
		}
	}
}

func TestParseKPIQueryDefaults(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 30, 0, 123456789, time.UTC)
	q, err := ParseKPIQuery("", now)
	if err != nil {
		t.Fatal(err)
	}
	if !q.To.Equal(now.Truncate(time.Millisecond)) || !q.From.Equal(q.To.Add(-DefaultPeriod)) || q.Step != 0 || q.Review != 0 {
		t.Errorf("defaults = %+v", q)
	}
}

func TestPage(t *testing.T) {
	s := start(t)
	resp, body := s.get(t, "/dashboard", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /dashboard = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{`<script src="/dashboard/dashboard.js"`, `<script src="/dashboard/chart.umd.min.js"`,
		`id="chart-calls"`, `id="chart-reasons"`, `id="intents"`, `id="review"`, `id="login-form"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Error("page has inline script or style, which its policy forbids")
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("page lacks header %s", h)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	assets := map[string]string{
		"/dashboard/dashboard.js":     "/api/kpis",
		"/dashboard/dashboard.css":    "#tiles",
		"/dashboard/chart.umd.min.js": "Chart.js v4",
	}
	for path, want := range assets {
		resp, body := s.get(t, path, "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s = %d, %d bytes, want %q in it", path, resp.StatusCode, len(body), want)
		}
	}
	js := func() string { _, b := s.get(t, "/dashboard/dashboard.js", ""); return string(b) }()
	for _, want := range []string{"/api/login", "/api/me", "X-CSRF-Token", "new Chart("} {
		if !strings.Contains(js, want) {
			t.Errorf("dashboard.js lacks %s", want)
		}
	}
	if strings.Contains(js, "innerHTML") {
		t.Error("dashboard.js writes HTML; server values must go in as text")
	}
}
