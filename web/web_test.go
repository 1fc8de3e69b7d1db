package web

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
)

func TestHealthz(t *testing.T) {
	h := NewHealth(func() int { return 3 })
	app := New(h, zerolog.Nop())
	for _, tc := range []struct {
		drain  bool
		code   int
		status string
	}{{false, 200, "ok"}, {true, 503, "draining"}} {
		if tc.drain {
			h.SetDraining()
		}
		resp, err := app.Test(httptest.NewRequest("GET", "/healthz", nil))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string `json:"status"`
			Active int    `json:"active_calls"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.code || body.Status != tc.status || body.Active != 3 {
			t.Fatalf("drain=%v: %d %+v", tc.drain, resp.StatusCode, body)
		}
	}
}
