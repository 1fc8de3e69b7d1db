package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	goopenai "github.com/sashabaranov/go-openai"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
)

// Passage is one knowledge-base entry retrieved for the caller's words;
// the wiring adapts the embedded knowledge base to Knowledge.
type Passage struct {
	Intent string  // the knowledge-base intent the passage belongs to
	Title  string  // short heading shown to the model
	Text   string  // the answer text the model may use
	Score  float64 // retrieval score 0..1
}

// Knowledge finds the passages that best match a query, best first.
type Knowledge interface {
	Lookup(query string, k int) []Passage
}

// History gives a caller's previous calls (most recent first).
type History interface {
	PreviousCalls(ctx context.Context, number string, limit int) ([]parley.Call, error)
}

// Deps are the Responder's collaborators; all are optional. Without
// Knowledge there is no grounding or lookup_knowledge tool, without
// History no get_caller_history tool.
type Deps struct {
	Knowledge Knowledge
	History   History
	// Tools are operator-defined tools (for example WebhookTool) offered
	// next to the built-in ones.
	Tools []Tool
	// Redact, when set, removes card numbers and similar from the caller's
	// words and from tool results before they are sent to the model (and
	// kept in the history sent on later turns).
	Redact func(string) string
	Log    zerolog.Logger
	// HTTPClient carries the transport to use (proxy, TLS); its Timeout is
	// ignored in favour of the per-stage deadlines.
	HTTPClient *http.Client
}

// Defaults of LLMConfig.
const (
	DefaultFirstTokenDeadline = 1500 * time.Millisecond
	DefaultStallTimeout       = 10 * time.Second
	DefaultPassages           = 3
	DefaultMaxToolRounds      = 4
	DefaultMaxHistory         = 60
	DefaultGreeting           = "Hello, thanks for calling. How can I help you today?"
	// NoSignalConfidence is Result.Confidence when neither token logprobs
	// nor a retrieval score exist for a turn.
	NoSignalConfidence = 0.7
	// escalationConfidence caps the confidence of a turn in which the
	// model asked for a human.
	escalationConfidence = 0.2
	// refusalConfidence caps a refused or filtered reply.
	refusalConfidence = 0.3
)

// SpeechRules are the built-in instructions every system prompt carries;
// LLMConfig.Rules adds to them.
const SpeechRules = `You are talking to a caller on the phone. Everything you write is read aloud by a speech synthesizer.
- Speak in short, plain sentences. Ask one question at a time.
- Never use markdown, lists, headings, emojis or links. Write numbers the way they should be spoken.
- Never invent account facts: balances, orders, dates, amounts, or anything about this caller. Use the tools or the knowledge passages; otherwise say you do not know and offer a colleague.
- Before answering a question about the company, its products or policies, rely on the knowledge passages or call lookup_knowledge if you have it.
- When the caller asks for a person, when you cannot help, or when the caller is upset, call transfer_to_human with a short summary.
- When you need a number (account, order, last four digits), call collect_digits.
- When the caller is done, say goodbye and call end_call.`

// LLMConfig configures the language-model Responder.
type LLMConfig struct {
	// BaseURL is the API root including its version path, for example
	// https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama).
	BaseURL string
	Model   string
	APIKey  string
	// AzureAPIVersion, when set, talks to an Azure OpenAI resource:
	// BaseURL is the resource endpoint and Model the deployment name.
	AzureAPIVersion string

	// Persona introduces the assistant: company, role, tone.
	Persona string
	// Rules are the operator's extra instructions, appended to SpeechRules.
	Rules string
	// Greeting is said when the call connects (DefaultGreeting). It is
	// fixed text, so the call starts without waiting on the model.
	Greeting string

	// Temperature is sent when set and the model accepts it; go-openai
	// omits an exact 0, so use a small value such as 0.01 for greedy output.
	Temperature *float32
	// MaxTokens bounds one reply (sent as max_tokens, or
	// max_completion_tokens for models that require it); 0 leaves it to
	// the provider.
	MaxTokens int
	// ReasoningEffort is passed through for reasoning models ("none",
	// "low", ...); "" leaves the provider default.
	ReasoningEffort string

	// FirstTokenDeadline bounds the wait for the first token of a reply,
	// retries included (1.5 s). Missing it cancels the request and returns
	// ErrDeadline.
	FirstTokenDeadline time.Duration
	// Timeout is the longest the stream may pause between two chunks once
	// the reply started (10 s); missing it returns ErrStalled.
	Timeout time.Duration
	// Retries of a transient failure before anything was spoken (2;
	// negative disables).
	Retries int
	// MaxRetryWait caps one wait between attempts (2 s); a Retry-After
	// longer than that, or past the first-token deadline, ends the turn
	// with the provider's error instead.
	MaxRetryWait time.Duration
	// BreakerFailures consecutive failed turns open the circuit breaker for
	// BreakerCoolDown (3, 30 s).
	BreakerFailures int
	BreakerCoolDown time.Duration
	// Breaker, when set, is used instead of a private one, so engines on
	// the same provider (LLM, STT, TTS) open and close together.
	Breaker *Breaker

	// Passages is how many knowledge passages ground each turn (3).
	Passages int
	// MaxToolRounds bounds the model calls of one turn (4); all but the
	// last may call tools, the last must answer in words.
	MaxToolRounds int
	// ToolTimeout bounds one tool call (3 s).
	ToolTimeout time.Duration
	// MaxHistory bounds the messages kept per call (60); older turns are
	// dropped whole.
	MaxHistory int
}

// String describes the configuration without its API key.
func (c LLMConfig) String() string {
	return fmt.Sprintf("LLMConfig{BaseURL:%s Model:%s APIKey:%s}", redactString(c.BaseURL, c.APIKey), c.Model, maskKey(c.APIKey))
}

func (c LLMConfig) withDefaults() LLMConfig {
	if c.FirstTokenDeadline <= 0 {
		c.FirstTokenDeadline = DefaultFirstTokenDeadline
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultStallTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MaxRetryWait <= 0 {
		c.MaxRetryWait = DefaultMaxRetryWait
	}
	if c.Passages <= 0 {
		c.Passages = DefaultPassages
	}
	if c.MaxToolRounds <= 0 {
		c.MaxToolRounds = DefaultMaxToolRounds
	}
	if c.ToolTimeout <= 0 {
		c.ToolTimeout = DefaultToolTimeout
	}
	if c.MaxHistory <= 0 {
		c.MaxHistory = DefaultMaxHistory
	}
	if strings.TrimSpace(c.Greeting) == "" {
		c.Greeting = DefaultGreeting
	}
	return c
}

// capabilities are the request fields the configured model accepts,
// decided once by go-openai's own client-side validator, which refuses
// logprobs, max_tokens and sampling settings for reasoning model names
// (o1*, o3*, o4*, gpt-5*, gpt-6 reasoning) without sending anything.
type capabilities struct {
	logprobs        bool
	maxCompletion   bool // send MaxCompletionTokens instead of MaxTokens
	temperature     bool
	reasoningEffort string
}

func probeCapabilities(cfg LLMConfig, tools []goopenai.Tool) (capabilities, error) {
	caps := capabilities{logprobs: true, temperature: cfg.Temperature != nil, reasoningEffort: cfg.ReasoningEffort}
	v := goopenai.NewReasoningValidator()
	for range 6 {
		req := goopenai.ChatCompletionRequest{Model: cfg.Model, LogProbs: caps.logprobs, Tools: tools, ReasoningEffort: caps.reasoningEffort}
		if cfg.MaxTokens > 0 {
			if caps.maxCompletion {
				req.MaxCompletionTokens = cfg.MaxTokens
			} else {
				req.MaxTokens = cfg.MaxTokens
			}
		}
		if caps.temperature {
			req.Temperature = *cfg.Temperature
		}
		err := v.Validate(req)
		switch {
		case err == nil:
			return caps, nil
		case errors.Is(err, goopenai.ErrReasoningModelMaxTokensDeprecated):
			caps.maxCompletion = true
		case errors.Is(err, goopenai.ErrReasoningModelLimitationsLogprobs), errors.Is(err, goopenai.ErrO1BetaLimitationsLogprobs):
			caps.logprobs = false
		case errors.Is(err, goopenai.ErrReasoningModelLimitationsOther):
			caps.temperature = false
		case errors.Is(err, goopenai.ErrReasoningSamplingUnsupported):
			if !caps.logprobs && !caps.temperature {
				return caps, fmt.Errorf("model %s: %w", cfg.Model, err)
			}
			caps.logprobs, caps.temperature = false, false
		case errors.Is(err, goopenai.ErrReasoningToolsRequireResponses) && caps.reasoningEffort == "":
			caps.reasoningEffort = goopenai.ReasoningEffortNone
		default:
			return caps, fmt.Errorf("model %s cannot be used for chat with tools: %w", cfg.Model, err)
		}
	}
	return caps, fmt.Errorf("model %s: no accepted request shape", cfg.Model)
}

// Responder is a dialog.Responder backed by a chat-completions model. It
// is shared by all calls; each call gets its own conversation.
//
// # Confidence
//
// Result.Confidence combines three signals:
//   - the mean token probability of the reply (exp of each content token's
//     logprob, averaged), when the provider returns logprobs;
//   - the best knowledge retrieval score of the turn (the grounding lookup
//     of the caller's words and any lookup_knowledge call);
//   - the model's own escalation: a transfer_to_human call caps the
//     confidence at 0.2, a refusal or content filter at 0.3.
//
// With both the token probability p and the retrieval score s it is
// 0.6·p + 0.4·s. When logprobs are unavailable — reasoning models, for
// which go-openai refuses them, and servers that do not return them — the
// retrieval score alone is used; with neither signal it is
// NoSignalConfidence, and the model's transfer_to_human call is then the
// escalation path. Result.Intent is the intent of the best passage.
type Responder struct {
	cfg      LLMConfig
	deps     Deps
	client   *goopenai.Client
	tools    map[string]*compiledTool
	toolDefs []goopenai.Tool
	caps     capabilities
	breaker  *Breaker
	log      zerolog.Logger
	system   string // persona and rules
	sleep    func(ctx context.Context, d time.Duration) error
}

var _ dialog.Responder = (*Responder)(nil)

// NewResponder checks cfg, the tools and the model's capabilities and
// returns a Responder. It sends no request.
func NewResponder(cfg LLMConfig, deps Deps) (*Responder, error) {
	cfg = cfg.withDefaults()
	client, err := newClient(endpoint{baseURL: cfg.BaseURL, model: cfg.Model, apiKey: cfg.APIKey,
		azureVersion: cfg.AzureAPIVersion, httpClient: deps.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("openai: llm: %w", err)
	}
	tools, all, err := compileTools(deps)
	if err != nil {
		return nil, fmt.Errorf("openai: llm: %w", err)
	}
	defs := make([]goopenai.Tool, len(all))
	for i, t := range all {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		defs[i] = goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: params}}
	}
	caps, err := probeCapabilities(cfg, defs)
	if err != nil {
		return nil, redact("openai: llm", err, cfg.APIKey)
	}
	warnBaseURL(deps.Log, cfg.BaseURL, cfg.AzureAPIVersion)
	if cfg.Breaker == nil {
		cfg.Breaker = NewBreaker(cfg.BreakerFailures, cfg.BreakerCoolDown)
	}
	r := &Responder{
		cfg:      cfg,
		deps:     deps,
		client:   client,
		tools:    tools,
		toolDefs: defs,
		caps:     caps,
		breaker:  cfg.Breaker,
		log:      deps.Log.With().Str("component", "openai.llm").Str("model", cfg.Model).Logger(),
		sleep:    sleepCtx,
	}
	var sys strings.Builder
	if p := strings.TrimSpace(cfg.Persona); p != "" {
		sys.WriteString(p)
		sys.WriteString("\n\n")
	}
	sys.WriteString(SpeechRules)
	if rules := strings.TrimSpace(cfg.Rules); rules != "" {
		sys.WriteString("\n")
		sys.WriteString(rules)
	}
	r.system = sys.String()
	return r, nil
}

// Healthy reports whether the provider's circuit breaker lets requests
// through; Fallback uses it to pick the engine for a new call.
func (r *Responder) Healthy() bool { return r.breaker.Healthy() }

// Breaker returns the provider's circuit breaker.
func (r *Responder) Breaker() *Breaker { return r.breaker }

// LogprobsEnabled reports whether replies are requested with token
// logprobs (false for models that refuse them).
func (r *Responder) LogprobsEnabled() bool { return r.caps.logprobs }

// NewConversation implements dialog.Responder.
func (r *Responder) NewConversation(call dialog.CallContext) dialog.Conversation {
	return &conversation{r: r, call: call, log: r.log.With().Str("call_id", call.CallID).Logger()}
}

// conversation is the dialog state of one call: the messages as the
// caller said and heard them.
type conversation struct {
	r    *Responder
	call dialog.CallContext
	log  zerolog.Logger
	msgs []goopenai.ChatCompletionMessage
	// lastReply is the index of the first message of the last reply
	// (assistant and tool messages after the caller's message).
	lastReply int
	split     sentenceSplitter
	sentences []string // scratch for the splitter
}

// Greeting implements dialog.Conversation: the configured greeting,
// sentence by sentence.
func (c *conversation) Greeting(ctx context.Context, say func(string) error) error {
	c.lastReply = len(c.msgs)
	var spoken []string
	var err error
	for _, s := range c.split.push(c.r.cfg.Greeting+"\n", nil) {
		spoken = append(spoken, s) // partly heard when say fails; Heard trims it
		if err = say(s); err != nil {
			break
		}
	}
	c.split.reset()
	if len(spoken) > 0 {
		c.msgs = append(c.msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant, Content: strings.Join(spoken, " ")})
	}
	if err != nil {
		return fmt.Errorf("openai: greeting: %w", err)
	}
	return nil
}

// Heard implements dialog.Conversation: after a barge-in the last reply
// keeps only what the caller heard, so the model does not believe it said
// the rest.
func (c *conversation) Heard(text string) {
	heard := strings.Join(strings.Fields(text), " ")
	out := c.msgs[:c.lastReply]
	for _, m := range c.msgs[c.lastReply:] {
		if m.Role != goopenai.ChatMessageRoleAssistant || m.Content == "" {
			out = append(out, m)
			continue
		}
		content := strings.Join(strings.Fields(m.Content), " ")
		switch {
		case heard == "":
			m.Content = ""
		case strings.HasPrefix(heard, content):
			heard = strings.TrimSpace(heard[len(content):])
		default:
			m.Content = heard
			heard = ""
		}
		if m.Content == "" && len(m.ToolCalls) == 0 {
			continue
		}
		out = append(out, m)
	}
	c.msgs = out
}

// userMessage renders a caller turn for the model.
func userMessage(in dialog.Input) string {
	switch in.Kind {
	case dialog.InputDTMF:
		return "[The caller typed on the keypad: " + in.Digits + "]"
	case dialog.InputSilence:
		return "[The caller said nothing for a while.]"
	}
	text := strings.TrimSpace(in.Text)
	if in.Confidence > 0 && in.Confidence < 0.5 {
		text += " [speech recognition was unsure of these words]"
	}
	return text
}

// Respond implements dialog.Conversation: it grounds the turn in the
// knowledge base, streams the model's reply to say sentence by sentence,
// runs the tools the model calls (feeding results back, at most
// MaxToolRounds model calls) and reports what it understood.
func (c *conversation) Respond(ctx context.Context, in dialog.Input, say func(string) error) (dialog.Result, error) {
	r := c.r
	res := dialog.Result{Expect: dialog.ModeOpen}
	ts := &turnState{conv: c, res: &res}
	c.msgs = append(c.msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleUser, Content: r.redact(userMessage(in))})
	c.trimHistory()
	c.lastReply = len(c.msgs)

	var passages []Passage
	if in.Kind == dialog.InputSpeech && r.deps.Knowledge != nil {
		passages = r.deps.Knowledge.Lookup(in.Text, r.cfg.Passages)
		ts.noteRetrieval(passages)
	}
	system := c.systemPrompt(passages)
	tctx := context.WithValue(ctx, turnKey{}, ts)

	var (
		lpSum, lpN float64
		refused    bool
		spoke      bool
		rounds     int
		firstToken time.Duration
	)
	turnStart := time.Now()
	for round := 0; ; round++ {
		rounds++
		noTools := round >= r.cfg.MaxToolRounds-1 || ts.control
		out, err := c.round(tctx, system, noTools, say)
		lpSum += out.lpSum
		lpN += float64(out.lpN)
		refused = refused || out.refusal != "" || out.finish == goopenai.FinishReasonContentFilter
		if out.spoken != "" {
			spoke = true
		}
		if round == 0 {
			firstToken = out.firstToken
		}
		if err != nil {
			// Calls of a failed or interrupted round never run, so they must
			// not reach the history (each call needs its result message).
			out.calls = nil
		}
		if out.spoken != "" || len(out.calls) > 0 {
			c.msgs = append(c.msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant, Content: out.spoken, ToolCalls: out.calls})
		}
		if err != nil {
			res.Intent = ts.intent
			res.Confidence = combineConfidence(lpSum, lpN, ts, refused)
			interrupted := errors.Is(err, dialog.ErrInterrupted) || ctx.Err() != nil
			if !interrupted {
				c.log.Warn().Err(err).Int("round", round).Msg("openai: reply failed")
			}
			if ts.control && !spoke && !interrupted {
				// The transfer, goodbye or digit request is decided; only
				// the model's sentence for it is missing. Say a fixed one.
				line := controlLine(res)
				c.msgs = append(c.msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant, Content: line})
				if serr := say(line); serr != nil {
					return res, serr
				}
				return res, nil
			}
			return res, err
		}
		if len(out.calls) == 0 {
			break
		}
		for _, call := range out.calls {
			c.msgs = append(c.msgs, goopenai.ChatCompletionMessage{
				Role: goopenai.ChatMessageRoleTool, ToolCallID: call.ID, Content: r.redact(c.runTool(tctx, call)),
			})
		}
		if ts.control && spoke {
			break // the model already said its line with the transfer or goodbye
		}
		if round >= r.cfg.MaxToolRounds-1 {
			break
		}
	}
	res.Intent = ts.intent
	res.Confidence = combineConfidence(lpSum, lpN, ts, refused)
	c.log.Debug().Int("rounds", rounds).Dur("first_token", firstToken).Dur("turn", time.Since(turnStart)).
		Float64("confidence", res.Confidence).Bool("transfer", res.Transfer).Bool("end_call", res.EndCall).
		Msg("openai: replied")
	return res, nil
}

// controlLine is said when the model's sentence for a decided transfer,
// goodbye or digit request does not come.
func controlLine(res dialog.Result) string {
	switch {
	case res.Transfer:
		return "Let me connect you with a colleague."
	case res.EndCall:
		return "Thank you for calling. Goodbye."
	case res.Expect == dialog.ModeDigits:
		return "Please enter the number on your keypad."
	}
	return "One moment, please."
}

// combineConfidence implements the rule documented on Responder.
func combineConfidence(lpSum, lpN float64, ts *turnState, refused bool) float64 {
	var conf float64
	hasModel, hasRetrieval := lpN > 0, ts.conv.r.deps.Knowledge != nil && (ts.intent != "" || ts.retrieval > 0)
	p := 0.0
	if hasModel {
		p = clamp01(lpSum / lpN)
	}
	switch {
	case hasModel && hasRetrieval:
		conf = 0.6*p + 0.4*ts.retrieval
	case hasModel:
		conf = p
	case hasRetrieval:
		conf = ts.retrieval
	default:
		conf = NoSignalConfidence
	}
	if refused {
		conf = math.Min(conf, refusalConfidence)
	}
	if ts.res.Transfer {
		conf = math.Min(conf, escalationConfidence)
	}
	return clamp01(conf)
}

// systemPrompt is the persona and rules plus this turn's grounding.
func (c *conversation) systemPrompt(passages []Passage) string {
	var b strings.Builder
	b.Grow(len(c.r.system) + 512)
	b.WriteString(c.r.system)
	fmt.Fprintf(&b, "\n\nToday is %s.", time.Now().UTC().Format("Monday, 2 January 2006"))
	if len(passages) > 0 {
		b.WriteString("\n\nKnowledge passages for the caller's last words (use them when they answer the question; do not mention them):\n")
		b.WriteString(formatPassages(passages))
	} else if c.r.deps.Knowledge != nil {
		b.WriteString("\n\nNo knowledge passage matched the caller's last words.")
	}
	return b.String()
}

// trimHistory drops the oldest turns (whole: from a caller message to the
// next) when the history is longer than MaxHistory, so no tool result
// loses its call.
func (c *conversation) trimHistory() {
	excess := len(c.msgs) - c.r.cfg.MaxHistory
	if excess <= 0 {
		return
	}
	cut := -1
	for i := excess; i < len(c.msgs); i++ {
		if c.msgs[i].Role == goopenai.ChatMessageRoleUser {
			cut = i
			break
		}
	}
	if cut <= 0 {
		return
	}
	c.msgs = c.msgs[:copy(c.msgs, c.msgs[cut:])]
}

// runTool validates and runs one tool call and returns what the model
// gets back; a bad call gets an error message, never a failure of the turn.
func (c *conversation) runTool(ctx context.Context, call goopenai.ToolCall) string {
	name := call.Function.Name
	t := c.r.tools[name]
	if t == nil {
		c.log.Warn().Str("tool", name).Msg("openai: model called an unknown tool")
		return fmt.Sprintf("error: there is no tool named %q", name)
	}
	args := json.RawMessage(call.Function.Arguments)
	if _, err := t.schema.validate(args); err != nil {
		c.log.Warn().Str("tool", name).Err(err).Msg("openai: model sent invalid tool arguments")
		return "error: invalid arguments: " + err.Error() + ". Call the tool again with arguments matching its schema."
	}
	if len(strings.TrimSpace(string(args))) == 0 {
		args = json.RawMessage("{}")
	}
	tctx, cancel := context.WithTimeout(ctx, c.r.cfg.ToolTimeout)
	defer cancel()
	out, err := t.Call(tctx, args)
	if err != nil {
		c.log.Warn().Str("tool", name).Err(err).Msg("openai: tool failed")
		return "error: " + truncate(err.Error(), 500)
	}
	return truncate(out, maxToolResult)
}

// roundOut is what one model call produced.
type roundOut struct {
	spoken     string // sentences handed to say, joined
	calls      []goopenai.ToolCall
	finish     goopenai.FinishReason
	refusal    string
	lpSum      float64 // sum of content token probabilities
	lpN        int
	firstToken time.Duration
}

// round makes one model call with retries, through the circuit breaker.
func (c *conversation) round(ctx context.Context, system string, noTools bool, say func(string) error) (roundOut, error) {
	r := c.r
	if !r.breaker.Allow() {
		return roundOut{}, ErrUnavailable
	}
	req := c.request(system, noTools)
	start := time.Now()
	deadlineAt := start.Add(r.cfg.FirstTokenDeadline)
	for attempt := 0; ; attempt++ {
		actx, info := withAttempt(ctx)
		attemptStart := time.Now()
		out, spokeAny, err := c.attempt(actx, req, say, time.Until(deadlineAt))
		if out.firstToken > 0 {
			out.firstToken += attemptStart.Sub(start)
		}
		if err == nil {
			r.breaker.Success()
			return out, nil
		}
		if errors.Is(err, errSay) {
			r.breaker.Release()
			return out, errors.Unwrap(err)
		}
		kind := classify(ctx, err, info)
		if kind == failCaller {
			r.breaker.Release()
			return out, redact("openai: llm", err, r.cfg.APIKey)
		}
		if kind == failTransient && !spokeAny && attempt < r.cfg.Retries {
			wait, ok := retryWait(attempt, info, r.cfg.MaxRetryWait)
			if ok && time.Now().Add(wait).Before(deadlineAt) {
				r.log.Debug().Int("attempt", attempt+1).Int("status", info.status).Dur("wait", wait).Msg("openai: retrying")
				if err := r.sleep(ctx, wait); err != nil {
					r.breaker.Release()
					return out, fmt.Errorf("openai: llm: %w", err)
				}
				continue
			}
		}
		r.breaker.Failure()
		return out, redact("openai: llm", err, r.cfg.APIKey)
	}
}

// redact applies Deps.Redact to text bound for the model.
func (r *Responder) redact(s string) string {
	if r.deps.Redact == nil {
		return s
	}
	return r.deps.Redact(s)
}

// request builds the chat request of one round.
func (c *conversation) request(system string, noTools bool) goopenai.ChatCompletionRequest {
	r := c.r
	msgs := make([]goopenai.ChatCompletionMessage, 0, len(c.msgs)+1)
	msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleSystem, Content: system})
	msgs = append(msgs, c.msgs...)
	req := goopenai.ChatCompletionRequest{
		Model:           r.cfg.Model,
		Messages:        msgs,
		LogProbs:        r.caps.logprobs,
		ReasoningEffort: r.caps.reasoningEffort,
	}
	if len(r.toolDefs) > 0 {
		req.Tools = r.toolDefs
		if noTools {
			req.ToolChoice = "none"
		}
	}
	if r.cfg.MaxTokens > 0 {
		if r.caps.maxCompletion {
			req.MaxCompletionTokens = r.cfg.MaxTokens
		} else {
			req.MaxTokens = r.cfg.MaxTokens
		}
	}
	if r.caps.temperature && r.cfg.Temperature != nil {
		req.Temperature = *r.cfg.Temperature
	}
	return req
}

// errSay marks an error returned by the say callback (a barge-in).
var errSay = errors.New("say failed")

type sayError struct{ err error }

func (e *sayError) Error() string        { return "openai: say: " + e.err.Error() }
func (e *sayError) Unwrap() error        { return e.err }
func (e *sayError) Is(target error) bool { return target == errSay }

// attempt streams one request. firstWithin bounds the wait for the first
// token; after it, each pause between chunks is bounded by the stall
// timeout. spokeAny reports that some text went to say (a retry would
// repeat it).
func (c *conversation) attempt(ctx context.Context, req goopenai.ChatCompletionRequest, say func(string) error, firstWithin time.Duration) (out roundOut, spokeAny bool, err error) {
	if firstWithin <= 0 {
		return out, false, ErrDeadline
	}
	wd := newWatchdog(ctx, firstWithin, c.r.cfg.Timeout)
	defer wd.close()

	stream, err := c.r.client.CreateChatCompletionStream(wd.ctx, req)
	if err != nil {
		return out, false, wd.cause(err)
	}
	defer stream.Close()

	c.split.reset()
	var (
		spoken  []string
		calls   []goopenai.ToolCall
		byIdx   = map[int]int{} // tool call index -> position in calls
		lastKey int
		refuse  strings.Builder
	)
	emit := func(sentences []string) error {
		for _, s := range sentences {
			// A sentence cut by a barge-in was partly heard: it stays in
			// the history until Heard trims it.
			spoken = append(spoken, s)
			spokeAny = true
			if err := say(s); err != nil {
				return &sayError{err: err}
			}
		}
		return nil
	}
	finish := func() {
		out.spoken = strings.Join(spoken, " ")
		out.calls = calls
		out.refusal = refuse.String()
	}
	for {
		resp, rerr := stream.Recv()
		wd.pause()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			finish()
			return out, spokeAny, wd.cause(rerr)
		}
		for _, ch := range resp.Choices {
			if ch.Index != 0 {
				continue
			}
			d := ch.Delta
			if d.Content != "" || d.Refusal != "" || len(d.ToolCalls) > 0 {
				if t, first := wd.got(); first {
					out.firstToken = t
				}
			}
			if ch.Logprobs != nil {
				for _, t := range ch.Logprobs.Content {
					out.lpSum += math.Exp(t.Logprob)
					out.lpN++
				}
			}
			for _, tc := range d.ToolCalls {
				// Fragments are keyed by index; servers that send none
				// start a call with its id and continue it without one.
				idx := lastKey
				switch {
				case tc.Index != nil:
					idx = *tc.Index
				case tc.ID != "" || len(calls) == 0:
					idx = -1 - len(calls)
				}
				lastKey = idx
				pos, ok := byIdx[idx]
				if !ok {
					pos = len(calls)
					byIdx[idx] = pos
					calls = append(calls, goopenai.ToolCall{Type: goopenai.ToolTypeFunction})
				}
				call := &calls[pos]
				if tc.ID != "" {
					call.ID = tc.ID
				}
				if tc.Function.Name != "" {
					call.Function.Name += tc.Function.Name
				}
				call.Function.Arguments += tc.Function.Arguments
			}
			refuse.WriteString(d.Refusal)
			if d.Content != "" {
				c.sentences = c.split.push(d.Content, c.sentences[:0])
				if err := emit(c.sentences); err != nil {
					finish()
					return out, spokeAny, err
				}
			}
			if ch.FinishReason != "" {
				out.finish = ch.FinishReason
			}
		}
		wd.rearm()
	}
	if tail := c.split.flush(); tail != "" {
		if err := emit([]string{tail}); err != nil {
			finish()
			return out, spokeAny, err
		}
	}
	if s := refuse.String(); s != "" && len(spoken) == 0 {
		// A refusal streams outside content; the caller still needs an answer.
		if err := emit(c.split.push(s+"\n", nil)); err != nil {
			finish()
			return out, spokeAny, err
		}
	}
	if len(spoken) == 0 && len(calls) == 0 {
		finish()
		return out, false, ErrEmptyReply
	}
	for i := range calls {
		if calls[i].ID == "" {
			calls[i].ID = "call_" + strconv.Itoa(i)
		}
	}
	finish()
	return out, spokeAny, nil
}
