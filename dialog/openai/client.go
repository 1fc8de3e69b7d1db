// Package openai implements parley's three dialog engines — speech to text
// (Transcriber), the conversation (Responder) and text to speech
// (Synthesizer) — over any OpenAI-compatible HTTP API: OpenAI itself, vLLM,
// Ollama, the llama.cpp server, LiteLLM or an Azure OpenAI deployment. Each
// engine is configured on its own (base URL, model, key), so a deployment
// can mix providers, for example a local Whisper server with a hosted LLM.
//
// It is the only package of parley that imports
// github.com/sashabaranov/go-openai. Around that client it adds what a live
// phone call needs: per-stage deadlines so a slow provider never means dead
// air, retries with backoff that honour Retry-After (read by a wrapping
// http.RoundTripper, since go-openai drops the headers of failed
// responses), no retry on an exhausted quota, a circuit breaker per provider
// for fallback chains, and API keys kept out of every error and log line.
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	goopenai "github.com/sashabaranov/go-openai"
)

// Errors the engines return; test them with errors.Is.
var (
	// ErrDeadline reports that the provider produced nothing (no token, no
	// audio, no transcript) before the stage's deadline. The request was
	// cancelled; the session treats it as a provider failure and speaks its
	// apology instead of leaving the caller in silence.
	ErrDeadline = errors.New("openai: provider missed the deadline")
	// ErrUnavailable reports that the provider's circuit breaker is open
	// after repeated failures; no request was sent.
	ErrUnavailable = errors.New("openai: provider unavailable (circuit open)")
	// ErrStalled reports that a streamed reply stopped arriving mid-way for
	// longer than the configured timeout.
	ErrStalled = errors.New("openai: provider stream stalled")
	// ErrEmptyReply reports a reply that ended without text, tool call or
	// refusal; it is retried like a server error, since saying nothing
	// would leave the caller in silence.
	ErrEmptyReply = errors.New("openai: provider sent an empty reply")
)

// Defaults shared by the engines.
const (
	// DefaultRetries is how many times a failed request is retried when the
	// failure is transient (429 rate limit, 5xx, network error).
	DefaultRetries = 2
	// DefaultMaxRetryWait caps one wait between attempts, whatever
	// Retry-After asks for: on a live call a longer wait is worse than
	// failing over.
	DefaultMaxRetryWait = 2 * time.Second
	// baseBackoff is the first backoff step when the provider gives no
	// Retry-After; it doubles per attempt, with jitter.
	baseBackoff = 200 * time.Millisecond
	// maxErrorBody bounds how much of a failed response is kept.
	maxErrorBody = 64 << 10
)

// endpoint is what every engine needs to reach its provider.
type endpoint struct {
	baseURL, model, apiKey, azureVersion string
	httpClient                           *http.Client
	retries                              int
	maxRetryWait                         time.Duration
}

// newClient builds a go-openai client whose HTTP transport records the
// status and Retry-After of failed responses (see attemptInfo) and closes
// their bodies.
func newClient(ep endpoint) (*goopenai.Client, error) {
	if ep.baseURL == "" {
		return nil, errors.New("base URL is required (for example https://api.openai.com/v1)")
	}
	if !strings.HasPrefix(ep.baseURL, "http://") && !strings.HasPrefix(ep.baseURL, "https://") {
		return nil, fmt.Errorf("base URL %q must start with http:// or https://", redactString(ep.baseURL, ep.apiKey))
	}
	if ep.model == "" {
		return nil, errors.New("model is required")
	}
	var cfg goopenai.ClientConfig
	if ep.azureVersion != "" {
		cfg = goopenai.DefaultAzureConfig(ep.apiKey, ep.baseURL)
		cfg.APIVersion = ep.azureVersion
	} else {
		cfg = goopenai.DefaultConfig(ep.apiKey)
		cfg.BaseURL = ep.baseURL
	}
	base := http.RoundTripper(http.DefaultTransport)
	hc := &http.Client{}
	if ep.httpClient != nil {
		*hc = *ep.httpClient
		if ep.httpClient.Transport != nil {
			base = ep.httpClient.Transport
		}
	}
	// Streams are bounded by the engines' own deadlines; a client-wide
	// Timeout would also cut a long reply that is being spoken.
	hc.Timeout = 0
	hc.Transport = &statusTransport{base: base}
	cfg.HTTPClient = hc
	return goopenai.NewClientWithConfig(cfg), nil
}

// attemptInfo is filled by statusTransport for the request whose context
// carries it: go-openai turns a failed response into an error without its
// headers, so Retry-After would otherwise be lost.
type attemptInfo struct {
	status     int
	retryAfter time.Duration // 0 when the response had none
}

type attemptKey struct{}

// withAttempt returns ctx carrying a fresh attemptInfo.
func withAttempt(ctx context.Context) (context.Context, *attemptInfo) {
	info := &attemptInfo{}
	return context.WithValue(ctx, attemptKey{}, info), info
}

// statusTransport records failed responses' status and Retry-After in the
// request's attemptInfo, and replaces their bodies with an in-memory copy
// so the connection is released even though go-openai's streaming path
// never closes an error body.
type statusTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t *statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < http.StatusBadRequest {
		return resp, err
	}
	if info, ok := req.Context().Value(attemptKey{}).(*attemptInfo); ok {
		info.status = resp.StatusCode
		info.retryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if rerr != nil {
		body = append(body, []byte(" (body cut: "+rerr.Error()+")")...)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// parseRetryAfter reads how long the provider asks to wait: the
// millisecond headers some providers send (retry-after-ms, Azure's
// x-ms-retry-after-ms) take precedence over Retry-After, which is either
// delay-seconds or an HTTP date. It returns 0 when there is no usable value.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if !(s > 0 && s <= 1e6) { // also rejects NaN
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// failure classifies an error from the provider.
type failure int

const (
	failNone      failure = iota
	failTransient         // worth retrying: 429 rate limit, 408, 5xx, network
	failPermanent         // retrying cannot help: 4xx, insufficient quota, refused request
	failCaller            // our own context ended (barge-in, hang-up): not the provider's fault
)

// classify says whether err is worth retrying. ctx is the caller's
// context: its end is never the provider's failure.
func classify(ctx context.Context, err error, info *attemptInfo) failure {
	if err == nil {
		return failNone
	}
	if ctx.Err() != nil {
		return failCaller
	}
	if errors.Is(err, ErrDeadline) || errors.Is(err, ErrStalled) || errors.Is(err, ErrEmptyReply) {
		return failTransient
	}
	status := 0
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
		if isQuota(apiErr) {
			return failPermanent
		}
		if status == 0 {
			// An error event inside a 200 stream: the server failed mid-reply.
			return failTransient
		}
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	case info != nil && info.status != 0:
		status = info.status
	}
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return failTransient
	case status >= 400:
		return failPermanent
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) {
		return failTransient
	}
	// go-openai's own refusals (model limitations) and decoding errors.
	return failPermanent
}

// isQuota reports an exhausted quota or billing problem: a 429 that no
// amount of waiting fixes.
func isQuota(e *goopenai.APIError) bool {
	code := fmt.Sprint(e.Code)
	return code == "insufficient_quota" || e.Type == "insufficient_quota" || code == "billing_hard_limit_reached"
}

// retryWait is how long to wait before attempt n+1 (n counts from 0):
// the provider's Retry-After when it sent one, otherwise exponential
// backoff with jitter. ok is false when the wait exceeds max.
func retryWait(n int, info *attemptInfo, max time.Duration) (time.Duration, bool) {
	if info != nil && info.retryAfter > 0 {
		return info.retryAfter, info.retryAfter <= max
	}
	d := baseBackoff << min(n, 6)
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return min(d, max), true
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redactString replaces every occurrence of secret in s.
func redactString(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// redactedError carries an error whose text had the API key removed; it
// still unwraps to the original so errors.Is and errors.As work.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact wraps err with prefix, with the API key removed from its text.
func redact(prefix string, err error, secret string) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: redactString(prefix+": "+err.Error(), secret), err: err}
}

// maskKey shows a key as its length only, for String methods of configs.
func maskKey(k string) string {
	if k == "" {
		return `""`
	}
	return fmt.Sprintf("[%d chars]", len(k))
}

// warnBaseURL logs a base URL without a path: go-openai only appends
// /chat/completions and so on, and most providers serve them under /v1.
func warnBaseURL(log zerolog.Logger, base, azureVersion string) {
	if azureVersion != "" {
		return
	}
	if u, err := url.Parse(base); err == nil && strings.Trim(u.Path, "/") == "" {
		log.Warn().Str("host", u.Host).Msg("openai: base URL has no path; most providers expect it to end in /v1")
	}
}

// watchdog bounds a streaming request: it cancels the request's context with
// ErrDeadline when nothing has arrived within the first-result budget, and
// with ErrStalled when a later pause outlasts the stall timeout. The reader
// stops it while it handles a chunk and re-arms it before the next read.
type watchdog struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    *time.Timer
	start    time.Time
	first    time.Duration
	stall    time.Duration
	gotFirst atomic.Bool
}

func newWatchdog(parent context.Context, first, stall time.Duration) *watchdog {
	w := &watchdog{parent: parent, start: time.Now(), first: first, stall: stall}
	w.ctx, w.cancel = context.WithCancelCause(parent)
	w.timer = time.AfterFunc(first, func() {
		if w.gotFirst.Load() {
			w.cancel(ErrStalled)
		} else {
			w.cancel(ErrDeadline)
		}
	})
	return w
}

// got records that a first result arrived; it reports the time to it the
// first time it is called.
func (w *watchdog) got() (time.Duration, bool) {
	if w.gotFirst.Swap(true) {
		return 0, false
	}
	return time.Since(w.start), true
}

// pause stops the clock while a chunk is handled.
func (w *watchdog) pause() { w.timer.Stop() }

// rearm restarts the clock before the next read.
func (w *watchdog) rearm() {
	if w.gotFirst.Load() {
		w.timer.Reset(w.stall)
	} else {
		w.timer.Reset(max(w.first-time.Since(w.start), time.Millisecond))
	}
}

// cause turns a read error into ErrDeadline or ErrStalled when the watchdog
// (not the caller) cancelled the request.
func (w *watchdog) cause(err error) error {
	if why := context.Cause(w.ctx); (why == ErrDeadline || why == ErrStalled) && w.parent.Err() == nil {
		return why
	}
	return err
}

// close releases the timer and the context.
func (w *watchdog) close() {
	w.timer.Stop()
	w.cancel(nil)
}
