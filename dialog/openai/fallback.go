package openai

import "github.com/parley-ai/parley/dialog"

// fallback starts each call on the primary responder while it is healthy
// and on the secondary otherwise.
type fallback struct {
	primary, secondary dialog.Responder
	healthy            func() bool
}

// Fallback returns a Responder that starts new conversations on secondary
// while healthy reports the primary unhealthy (typically
// (*Responder).Healthy, whose breaker opens after repeated failures), and
// on primary otherwise. A call keeps the engine it started on: switching
// mid-call would lose the conversation's history, and the session already
// apologizes and signals ProviderFailure on a failed turn, so the
// escalation policy can hand that caller to a human. A nil healthy means
// always healthy.
func Fallback(primary, secondary dialog.Responder, healthy func() bool) dialog.Responder {
	if healthy == nil {
		healthy = func() bool { return true }
	}
	return &fallback{primary: primary, secondary: secondary, healthy: healthy}
}

// NewConversation implements dialog.Responder.
func (f *fallback) NewConversation(call dialog.CallContext) dialog.Conversation {
	if f.secondary != nil && !f.healthy() {
		return f.secondary.NewConversation(call)
	}
	return f.primary.NewConversation(call)
}
