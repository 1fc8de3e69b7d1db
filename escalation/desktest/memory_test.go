package desktest_test

import (
	"testing"

	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/escalation/desktest"
)

func TestMemoryDesk(t *testing.T) {
	desktest.Run(t, func(t *testing.T, n int, opt escalation.DeskOptions) []escalation.Router {
		d := escalation.NewDesk(opt)
		rs := make([]escalation.Router, n)
		for i := range rs {
			rs[i] = d
		}
		return rs
	})
}
