package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
)

// Tool is a function the model may call during a turn. Parameters is the
// JSON Schema of its arguments (an object); the arguments the model sends
// are validated against it before Call runs (see schema for the supported
// subset). Call's result (or its error text) goes back to the model.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
	Call        func(ctx context.Context, args json.RawMessage) (string, error)
}

// Names of the built-in tools.
const (
	ToolLookupKnowledge = "lookup_knowledge"
	ToolCallerHistory   = "get_caller_history"
	ToolCollectDigits   = "collect_digits"
	ToolTransfer        = "transfer_to_human"
	ToolEndCall         = "end_call"
)

// Transfer reasons the model gives to transfer_to_human.
const (
	ReasonCallerAsked   = "caller_asked"
	ReasonCannotHelp    = "cannot_help"
	ReasonAccountAccess = "needs_account_access"
	ReasonFrustrated    = "caller_frustrated"
	ReasonOther         = "other"
)

// Bounds on tool use.
const (
	maxToolResult      = 8 << 10 // bytes of one tool result kept for the model
	historyCalls       = 5       // previous calls get_caller_history reports
	DefaultToolTimeout = 3 * time.Second
)

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// turnKey carries the running turn to the built-in tools.
type turnKey struct{}

// turnState is what one Respond call learns from its tools.
type turnState struct {
	conv      *conversation
	res       *dialog.Result
	control   bool    // a tool that ends or redirects the turn ran (transfer, end, digits)
	retrieval float64 // best knowledge score seen this turn
	intent    string  // intent of that passage
}

func turnFrom(ctx context.Context) *turnState {
	ts, _ := ctx.Value(turnKey{}).(*turnState)
	return ts
}

// builtinTools declares the tools every conversation has, in one place.
// Knowledge and history tools appear only when deps provide them.
func builtinTools(deps Deps) []Tool {
	var tools []Tool
	if deps.Knowledge != nil {
		tools = append(tools, Tool{
			Name:        ToolLookupKnowledge,
			Description: "Search the company knowledge base. Use it before answering any question about products, policies, prices, hours or procedures.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","minLength":1,"maxLength":500,"description":"what to look up, in plain words"}},"required":["query"],"additionalProperties":false}`),
			Call:        callLookup,
		})
	}
	if deps.History != nil {
		tools = append(tools, Tool{
			Name:        ToolCallerHistory,
			Description: "Get the caller's previous calls to this company (dates, outcomes, reasons). Use it when the caller refers to an earlier call.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
			Call:        callHistory,
		})
	}
	return append(tools,
		Tool{
			Name:        ToolCollectDigits,
			Description: "Ask the caller for a number (account number, last four digits, order number) to be typed on the keypad or read out digit by digit. After calling it, ask for the number in one short sentence.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"purpose":{"type":"string","minLength":1,"maxLength":100,"description":"what the number is, for example 'order number'"},"length":{"type":"integer","minimum":1,"maximum":32,"description":"how many digits are expected"}},"required":["purpose","length"],"additionalProperties":false}`),
			Call:        callCollectDigits,
		},
		Tool{
			Name:        ToolTransfer,
			Description: "Hand the call to a human colleague: when the caller asks for a person, when you cannot help, when account access is needed or when the caller is upset. After calling it, tell the caller in one sentence that you are connecting them.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","enum":["` +
				strings.Join([]string{ReasonCallerAsked, ReasonCannotHelp, ReasonAccountAccess, ReasonFrustrated, ReasonOther}, `","`) +
				`"]},"summary":{"type":"string","minLength":1,"maxLength":600,"description":"two or three sentences for the colleague: who is calling, what they need, what was tried"}},"required":["reason","summary"],"additionalProperties":false}`),
			Call: callTransfer,
		},
		Tool{
			Name:        ToolEndCall,
			Description: "End the call when the caller is done or says goodbye. Say a short goodbye with it.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
			Call:        callEndCall,
		},
	)
}

func callLookup(ctx context.Context, args json.RawMessage) (string, error) {
	ts := turnFrom(ctx)
	if ts == nil || ts.conv.r.deps.Knowledge == nil {
		return "", errors.New("the knowledge base is not available")
	}
	var a struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return "", fmt.Errorf("arguments: %w", err)
	}
	ps := ts.conv.r.deps.Knowledge.Lookup(a.Query, ts.conv.r.cfg.Passages)
	ts.noteRetrieval(ps)
	if len(ps) == 0 {
		return "No matching passage. Do not guess; offer to connect the caller with a colleague.", nil
	}
	return formatPassages(ps), nil
}

// noteRetrieval keeps the best retrieval score and intent of the turn.
func (ts *turnState) noteRetrieval(ps []Passage) {
	for _, p := range ps {
		s := clamp01(p.Score)
		if s > ts.retrieval || (ts.intent == "" && s == ts.retrieval) {
			ts.retrieval = s
			ts.intent = p.Intent
		}
	}
}

func callHistory(ctx context.Context, _ json.RawMessage) (string, error) {
	ts := turnFrom(ctx)
	if ts == nil || ts.conv.r.deps.History == nil {
		return "", errors.New("call history is not available")
	}
	number := ts.conv.call.From
	if number == "" {
		return "The caller's number is unknown, so there is no history.", nil
	}
	calls, err := ts.conv.r.deps.History.PreviousCalls(ctx, number, historyCalls)
	if err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	if len(calls) == 0 {
		return "No previous calls from this number.", nil
	}
	var b strings.Builder
	for _, c := range calls {
		if c.ID == ts.conv.call.CallID {
			continue
		}
		fmt.Fprintf(&b, "- %s", c.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
		if c.Outcome != "" {
			fmt.Fprintf(&b, ", %s", c.Outcome)
		}
		if c.Reason != "" {
			fmt.Fprintf(&b, " (%s)", c.Reason)
		}
		for _, t := range c.Turns {
			if t.Speaker == parley.SpeakerCaller && strings.TrimSpace(t.Text) != "" {
				fmt.Fprintf(&b, "; caller said: %q", truncate(t.Text, 160))
				break
			}
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "No previous calls from this number.", nil
	}
	return b.String(), nil
}

func callCollectDigits(ctx context.Context, args json.RawMessage) (string, error) {
	ts := turnFrom(ctx)
	if ts == nil {
		return "", errors.New("no call in progress")
	}
	var a struct {
		Purpose string `json:"purpose"`
		Length  int    `json:"length"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return "", fmt.Errorf("arguments: %w", err)
	}
	ts.control = true
	ts.res.Expect = dialog.ModeDigits
	if ts.res.Slots == nil {
		ts.res.Slots = map[string]string{}
	}
	ts.res.Slots["digits_purpose"] = a.Purpose
	ts.res.Slots["digits_length"] = strconv.Itoa(a.Length)
	return fmt.Sprintf("Ready: the caller's next turn is read as digits. Ask for the %s (%d digits) now, in one short sentence; they may type it on the keypad.", a.Purpose, a.Length), nil
}

func callTransfer(ctx context.Context, args json.RawMessage) (string, error) {
	ts := turnFrom(ctx)
	if ts == nil {
		return "", errors.New("no call in progress")
	}
	var a struct {
		Reason  string `json:"reason"`
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return "", fmt.Errorf("arguments: %w", err)
	}
	ts.control = true
	ts.res.Transfer = true
	ts.res.Summary = strings.TrimSpace(a.Summary)
	ts.res.WantsHuman = ts.res.WantsHuman || a.Reason == ReasonCallerAsked
	if a.Reason == ReasonCannotHelp {
		ts.res.OutOfScope = true
	}
	if ts.res.Slots == nil {
		ts.res.Slots = map[string]string{}
	}
	ts.res.Slots["transfer_reason"] = a.Reason
	return "A colleague takes over after your next sentence. Tell the caller in one short sentence that you are connecting them now. Ask nothing else.", nil
}

func callEndCall(ctx context.Context, _ json.RawMessage) (string, error) {
	ts := turnFrom(ctx)
	if ts == nil {
		return "", errors.New("no call in progress")
	}
	ts.control = true
	ts.res.EndCall = true
	return "The call ends after your next sentence. Say a short, friendly goodbye.", nil
}

// webhookTransport is shared by every webhook tool, so their connections
// are pooled.
var webhookTransport = newWebhookTransport()

func newWebhookTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
}

// WebhookTool declares an operator-defined tool backed by an HTTP
// endpoint: each call POSTs the validated arguments as a JSON body to url
// (with the call id in the X-Parley-Call-ID header) and gives the response
// body (up to 8 KiB) to the model. A non-2xx status, a timeout (timeout; 3 s
// when zero) or a network error becomes an error message for the model.
// The URL never appears in an error, as it may hold a token.
func WebhookTool(name, description string, params json.RawMessage, url string, timeout time.Duration) Tool {
	if timeout <= 0 {
		timeout = DefaultToolTimeout
	}
	client := &http.Client{Transport: webhookTransport, Timeout: timeout}
	return Tool{
		Name:        name,
		Description: description,
		Parameters:  params,
		Call: func(ctx context.Context, args json.RawMessage) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(args))
			if err != nil {
				return "", fmt.Errorf("webhook %s: bad request", name)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/plain")
			if ts := turnFrom(ctx); ts != nil {
				req.Header.Set("X-Parley-Call-ID", ts.conv.call.CallID)
			}
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() != nil {
					return "", fmt.Errorf("webhook %s: %w", name, ctx.Err())
				}
				return "", fmt.Errorf("webhook %s: the service did not answer", name)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, maxToolResult))
			if err != nil {
				return "", fmt.Errorf("webhook %s: reading the answer failed", name)
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return "", fmt.Errorf("webhook %s: the service answered with status %d", name, resp.StatusCode)
			}
			return string(body), nil
		},
	}
}

// compiledTool is a tool with its parsed schema.
type compiledTool struct {
	Tool
	schema *schema
}

// compileTools checks names and schemas of the built-in and extra tools.
func compileTools(deps Deps) (map[string]*compiledTool, []Tool, error) {
	all := append(builtinTools(deps), deps.Tools...)
	byName := make(map[string]*compiledTool, len(all))
	for _, t := range all {
		if !toolName.MatchString(t.Name) {
			return nil, nil, fmt.Errorf("tool %q: name must be 1-64 letters, digits, _ or -", t.Name)
		}
		if byName[t.Name] != nil {
			return nil, nil, fmt.Errorf("tool %q declared twice (built-in tools: %s, %s, %s, %s, %s)", t.Name,
				ToolLookupKnowledge, ToolCallerHistory, ToolCollectDigits, ToolTransfer, ToolEndCall)
		}
		if t.Call == nil {
			return nil, nil, fmt.Errorf("tool %q has no Call function", t.Name)
		}
		s, err := parseSchema(t.Parameters)
		if err != nil {
			return nil, nil, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		byName[t.Name] = &compiledTool{Tool: t, schema: s}
	}
	return byName, all, nil
}

// formatPassages renders knowledge passages for the model.
func formatPassages(ps []Passage) string {
	var b strings.Builder
	for i, p := range ps {
		fmt.Fprintf(&b, "[%d]", i+1)
		if p.Title != "" {
			fmt.Fprintf(&b, " %s:", p.Title)
		}
		fmt.Fprintf(&b, " %s\n", truncate(strings.TrimSpace(p.Text), 1200))
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func clamp01(f float64) float64 {
	switch {
	case f != f || f < 0: // NaN or negative
		return 0
	case f > 1:
		return 1
	}
	return f
}
