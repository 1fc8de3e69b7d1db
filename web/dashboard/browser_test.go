package dashboard

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is the browser the test drives; it must be installed
// (Debian package chromium), as for the other browser tests.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found (Debian packages chromium and chromium-driver): run scripts/setup.sh test")
	return ""
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1400),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		seen, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v (page shows %q)", what, err, seen)
	}
}

// poll waits until the JavaScript expression is true.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		seen, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v (page shows %q)", what, err, seen)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestDashboardInBrowser logs in on the page as a supervisor, picks the
// fixture's period and checks what the page draws.
func TestDashboardInBrowser(t *testing.T) {
	s := start(t)
	ctx := browser(t)
	do(t, ctx, "open the page", chromedp.Navigate(s.url+"/dashboard"))
	do(t, ctx, "login form", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	do(t, ctx, "wrong password", chromedp.SendKeys(chromedp.CSS("#login-name"), "sam"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "not it"), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	poll(t, ctx, "login refused", `document.getElementById("login-error").textContent.includes("wrong name or password")`)
	do(t, ctx, "log in", chromedp.SendKeys(chromedp.CSS("#login-password"), password), chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	do(t, ctx, "the board", chromedp.WaitVisible(chromedp.CSS("#board")))
	poll(t, ctx, "first report (last 7 days: empty)", `document.getElementById("status").textContent.startsWith("Updated")`)

	// The fixture's three hours, in the browser's time zone.
	do(t, ctx, "pick the period", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
		document.getElementById("from").value = f(new Date("2026-03-14T10:00:00Z"));
		document.getElementById("to").value = f(new Date("2026-03-14T13:00:00Z"));
		document.getElementById("status").textContent = "";
	})()`))
	do(t, ctx, "show", chromedp.Click(chromedp.CSS(`#period button[type=submit]`)))
	poll(t, ctx, "report drawn", `document.getElementById("status").textContent.startsWith("Updated")`)

	tiles := eval[string](t, ctx, `document.getElementById("tiles").innerText`)
	for _, want := range []string{"Calls\n7\n6 ended", "AI containment\n33.3 %", "Escalation rate\n50.0 %", "CSAT\n2.50 / 5", "Abandoned in queue\n1"} {
		if !strings.Contains(tiles, want) {
			t.Errorf("tiles lack %q:\n%s", want, tiles)
		}
	}
	if got := eval[[]float64](t, ctx, `Chart.getChart(document.getElementById("chart-calls")).data.datasets[0].data`); len(got) != 3 || got[0] != 2 || got[1] != 2 || got[2] != 3 {
		t.Errorf("calls chart data = %v, want [2 2 3]", got)
	}
	if got := eval[[]string](t, ctx, `Chart.getChart(document.getElementById("chart-reasons")).data.labels`); len(got) != 4 || got[0] != "asked for human" {
		t.Errorf("reasons chart labels = %v", got)
	}
	if got := eval[[]float64](t, ctx, `Chart.getChart(document.getElementById("chart-csat")).data.datasets[0].data`); len(got) != 5 || got[0] != 1 || got[3] != 1 {
		t.Errorf("csat chart data = %v", got)
	}
	if got := eval[string](t, ctx, `document.querySelector("#intents tbody tr td").textContent`); got != "agent" {
		t.Errorf("worst-understood intent = %q, want agent", got)
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#review tbody a")].map((a) => a.getAttribute("href"))`); len(got) != 4 || got[0] != "/api/calls/k7" {
		t.Errorf("review links = %v", got)
	}
	if dir := os.Getenv("PARLEY_ARTIFACTS"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do(t, ctx, "log out", chromedp.Click(chromedp.CSS("#logout")))
	do(t, ctx, "login form again", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	code, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(async () => (await fetch("/api/kpis")).status)()`, chromedp.EvalAwaitPromise))
	if err != nil || code != 401 {
		t.Errorf("after logout /api/kpis = %v, %v, want 401", code, err)
	}
}
