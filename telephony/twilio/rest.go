package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// errCallNotInProgress is Twilio's error code for updating a call that has
// already ended; for a hang-up that is success.
const errCallNotInProgress = 21220

// restClient ends calls through Twilio's REST API with twilio-go.
type restClient struct {
	accountSID string
	authToken  string
	base       *url.URL // nil: https://api.twilio.com
	timeout    time.Duration
}

// maxTwiML is the longest Twiml parameter Twilio accepts on a call update.
const maxTwiML = 4000

// completeCall sets the call's Status to completed, which hangs it up.
// ctx bounds the request. A call that already ended counts as success.
func (r *restClient) completeCall(ctx context.Context, callSID string) error {
	err := r.updateCall(ctx, callSID, (&openapi.UpdateCallParams{}).SetStatus("completed"))
	var restErr *client.TwilioRestError
	if errors.As(err, &restErr) && restErr.Code == errCallNotInProgress {
		return nil
	}
	if err != nil {
		return fmt.Errorf("twilio: update call status=completed: %w", err)
	}
	return nil
}

// redirectCall replaces the call's TwiML.
func (r *restClient) redirectCall(ctx context.Context, callSID, twiml string) error {
	if len(twiml) > maxTwiML {
		return fmt.Errorf("%w: %d bytes, Twilio accepts %d on a call update", ErrTwiML, len(twiml), maxTwiML)
	}
	if err := r.updateCall(ctx, callSID, (&openapi.UpdateCallParams{}).SetTwiml(twiml)); err != nil {
		return fmt.Errorf("twilio: update call twiml: %w", err)
	}
	return nil
}

// updateCall posts one call update with twilio-go.
func (r *restClient) updateCall(ctx context.Context, callSID string, params *openapi.UpdateCallParams) error {
	// The deadline rides on the context rather than http.Client.Timeout:
	// twilio-go leaves error bodies open, and cancelling the context when
	// the call returns releases them and their connection.
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &client.Client{
		Credentials: client.NewCredentials(r.accountSID, r.authToken),
		HTTPClient: &http.Client{
			Transport: ctxTransport{ctx: ctx, next: http.DefaultTransport},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	c.SetAccountSid(r.accountSID)
	var base client.BaseClient = c
	if r.base != nil {
		base = &baseURLClient{Client: c, base: r.base}
	}
	api := openapi.NewApiServiceWithClient(base)
	_, err := api.UpdateCall(callSID, params)
	return err
}

// ctxTransport binds every request to a context, which twilio-go's API does
// not take.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

// RoundTrip sends req under the transport's context.
func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(req.WithContext(t.ctx))
}

// baseURLClient sends twilio-go's requests to another base URL (a test
// server or a regional proxy), keeping path and query.
type baseURLClient struct {
	*client.Client
	base *url.URL
}

// SendRequest rewrites the scheme and host of rawURL, then delegates.
func (c *baseURLClient) SendRequest(method, rawURL string, data url.Values, headers map[string]interface{}, body ...byte) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u.Scheme = c.base.Scheme
	u.Host = c.base.Host
	u.Path = strings.TrimSuffix(c.base.Path, "/") + u.Path
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + u.RawPath
	}
	return c.Client.SendRequest(method, u.String(), data, headers, body...)
}
