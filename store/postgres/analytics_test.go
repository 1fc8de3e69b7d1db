package postgres

import (
	"testing"

	"github.com/parley-ai/parley/store/storetest"
)

func TestAnalyticsContract(t *testing.T) {
	storetest.AnalyticsContract(t, func(t *testing.T) storetest.AnalyticsBackend { return openFresh(t) })
}
