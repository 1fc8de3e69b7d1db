// Package configs holds parley's embedded default configuration and sample
// knowledge base, and loads the configuration a server runs with: the
// embedded defaults, then an optional YAML file, then PARLEY_* environment
// variables.
package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

//go:embed kb
var kbFS embed.FS

// KB is the embedded sample knowledge base (the files under configs/kb).
func KB() fs.FS {
	sub, err := fs.Sub(kbFS, "kb")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// DefaultYAML returns the embedded default configuration file.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Config is everything a parley server runs with.
type Config struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	DataDir   string `yaml:"data_dir"`
	LogLevel  string `yaml:"log_level"`
	Store     string `yaml:"store"`
	// Node names this server among several sharing one store; default
	// <hostname>/<listen address>.
	Node string `yaml:"node"`
	// TranscriptRetention deletes calls (transcripts, events) older than
	// this, hourly; 0 keeps them.
	TranscriptRetention time.Duration `yaml:"transcript_retention"`
	Twilio              Twilio        `yaml:"twilio"`
	KB                  KBConf        `yaml:"kb"`
	Speech              Speech        `yaml:"speech"`
	Dialog              Dialog        `yaml:"dialog"`
	Queue               Queue         `yaml:"queue"`
	Recording           Recording     `yaml:"recording"`
	Survey              Survey        `yaml:"survey"`
	WebRTC              WebRTC        `yaml:"webrtc"`
	LLM                 Remote        `yaml:"llm"`
	// Tools are webhook-backed tools the LLM may call besides the built-in
	// ones (lookup_knowledge, get_caller_history, collect_digits,
	// transfer_to_human, end_call).
	Tools []ToolConf `yaml:"tools"`
	STT   Remote     `yaml:"stt"`
	TTS   Remote     `yaml:"tts"`
}

// WebRTC configures browser callers' media.
type WebRTC struct {
	Loopback bool     `yaml:"loopback"`
	NATIPs   []string `yaml:"nat_ips"`
	PortMin  uint16   `yaml:"port_min"`
	PortMax  uint16   `yaml:"port_max"`
	// Codecs is the browser callers' audio codec preference, from "opus"
	// and "pcmu"; an answer takes the first one the browser offers.
	Codecs []string `yaml:"codecs"`
	// AgentCodecs is the same for agents' and supervisors' consoles.
	AgentCodecs []string `yaml:"agent_codecs"`
}

// Remote is an OpenAI-compatible provider for one stage. An empty BaseURL
// means the embedded engine.
type Remote struct {
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	APIKey  string `yaml:"api_key"`
	Voice   string `yaml:"voice,omitempty"`
	// Deadline bounds the stage's first result (LLM first token, STT
	// transcript, TTS first audio); 0 keeps the engine's default.
	Deadline time.Duration `yaml:"deadline"`
	// RedactPrompts (LLM only) removes card numbers and similar from what
	// the caller said, and from tool results, before the model sees them.
	RedactPrompts bool `yaml:"redact_prompts,omitempty"`
}

// Enabled reports whether the stage uses the remote provider.
func (r Remote) Enabled() bool { return r.BaseURL != "" }

// ToolConf declares one webhook tool: the model sees its name,
// description and JSON-schema parameters; a call POSTs the validated
// arguments to URL and hands the answer back to the model.
type ToolConf struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Parameters  map[string]any `yaml:"parameters"` // a JSON schema ("type": "object", ...)
	URL         string         `yaml:"url"`
	Timeout     time.Duration  `yaml:"timeout"` // 3s when zero
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Twilio configures the Twilio wire.
type Twilio struct {
	AuthToken  string `yaml:"auth_token"`
	AccountSID string `yaml:"account_sid"`
	APIBaseURL string `yaml:"api_base_url"`
}

// KBConf says where the knowledge base comes from.
type KBConf struct {
	Dir        string   `yaml:"dir"`
	TrainFiles []string `yaml:"train_files"`
}

// Speech configures the embedded speech engines.
type Speech struct {
	MaxDecoders int    `yaml:"max_decoders"`
	Voice       string `yaml:"voice"`
}

// Dialog configures turn-taking.
type Dialog struct {
	EarlyEndSilence  time.Duration `yaml:"early_end_silence"`
	EndSilence       time.Duration `yaml:"end_silence"`
	DigitsEndSilence time.Duration `yaml:"digits_end_silence"`
	YesNoEndSilence  time.Duration `yaml:"yesno_end_silence"`
	NoInputTimeout   time.Duration `yaml:"no_input_timeout"`
	BargeInMinSpeech time.Duration `yaml:"barge_in_min_speech"`
	MaxCallDuration  time.Duration `yaml:"max_call_duration"`
}

// Survey configures the post-call satisfaction survey (CSAT, keypad 1-5).
type Survey struct {
	Enabled bool   `yaml:"enabled"`
	Prompt  string `yaml:"prompt"`
	Thanks  string `yaml:"thanks"`
}

// Recording configures call recording.
type Recording struct {
	Enabled      bool          `yaml:"enabled"`
	Announcement string        `yaml:"announcement"` // played before the greeting of every recorded call
	Retention    time.Duration `yaml:"retention"`    // recordings older than this are deleted
}

// Queue configures the way from the AI to a human agent.
type Queue struct {
	MaxWait       time.Duration `yaml:"max_wait"`       // then voicemail
	OfferTimeout  time.Duration `yaml:"offer_timeout"`  // an agent's time to accept
	AnnounceEvery time.Duration `yaml:"announce_every"` // position announcements
	SkillWait     time.Duration `yaml:"skill_wait"`     // waiting for a skilled agent before any
	VoicemailMax  time.Duration `yaml:"voicemail_max"`  // longest message
	Transcribe    bool          `yaml:"transcribe"`     // transcribe caller and agent once bridged
	// Assist: the AI keeps answering questions while the caller waits for a person.
	Assist bool `yaml:"assist"`
	// WhisperSummary: the agent hears a spoken summary of the brief before the caller is put through.
	WhisperSummary bool `yaml:"whisper_summary"`
}

// envVars maps each environment variable to the key it overrides.
var envVars = []struct {
	name, key string
	set       func(c *Config, v string) error
}{
	{"PARLEY_LISTEN", "listen", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"PARLEY_NODE", "node", func(c *Config, v string) error { c.Node = v; return nil }},
	{"PARLEY_SURVEY", "survey.enabled", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.Survey.Enabled = b
		return err
	}},
	{"PARLEY_RECORDING", "recording.enabled", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.Recording.Enabled = b
		return err
	}},
	{"PARLEY_PUBLIC_URL", "public_url", func(c *Config, v string) error { c.PublicURL = v; return nil }},
	{"PARLEY_DATA_DIR", "data_dir", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"PARLEY_LOG_LEVEL", "log_level", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"PARLEY_STORE", "store", func(c *Config, v string) error { c.Store = v; return nil }},
	{"PARLEY_TWILIO_AUTH_TOKEN", "twilio.auth_token", func(c *Config, v string) error { c.Twilio.AuthToken = v; return nil }},
	{"PARLEY_TWILIO_ACCOUNT_SID", "twilio.account_sid", func(c *Config, v string) error { c.Twilio.AccountSID = v; return nil }},
	{"PARLEY_TWILIO_API_BASE_URL", "twilio.api_base_url", func(c *Config, v string) error { c.Twilio.APIBaseURL = v; return nil }},
	{"PARLEY_KB_DIR", "kb.dir", func(c *Config, v string) error { c.KB.Dir = v; return nil }},
	{"PARLEY_STT_MAX_DECODERS", "speech.max_decoders", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		c.Speech.MaxDecoders = n
		return err
	}},
	{"PARLEY_TTS_VOICE", "speech.voice", func(c *Config, v string) error { c.Speech.Voice = v; return nil }},
	{"PARLEY_WEBRTC_LOOPBACK", "webrtc.loopback", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.WebRTC.Loopback = b
		return err
	}},
	{"PARLEY_LLM_BASE_URL", "llm.base_url", func(c *Config, v string) error { c.LLM.BaseURL = v; return nil }},
	{"PARLEY_LLM_MODEL", "llm.model", func(c *Config, v string) error { c.LLM.Model = v; return nil }},
	{"PARLEY_LLM_API_KEY", "llm.api_key", func(c *Config, v string) error { c.LLM.APIKey = v; return nil }},
	{"PARLEY_STT_BASE_URL", "stt.base_url", func(c *Config, v string) error { c.STT.BaseURL = v; return nil }},
	{"PARLEY_STT_MODEL", "stt.model", func(c *Config, v string) error { c.STT.Model = v; return nil }},
	{"PARLEY_STT_API_KEY", "stt.api_key", func(c *Config, v string) error { c.STT.APIKey = v; return nil }},
	{"PARLEY_TTS_BASE_URL", "tts.base_url", func(c *Config, v string) error { c.TTS.BaseURL = v; return nil }},
	{"PARLEY_TTS_MODEL", "tts.model", func(c *Config, v string) error { c.TTS.Model = v; return nil }},
	{"PARLEY_TTS_API_KEY", "tts.api_key", func(c *Config, v string) error { c.TTS.APIKey = v; return nil }},
	{"PARLEY_TTS_REMOTE_VOICE", "tts.voice", func(c *Config, v string) error { c.TTS.Voice = v; return nil }},
}

// Load builds the configuration: embedded defaults, then the YAML file at
// path (when not empty), then the environment as read by getenv. Any bad
// value is an error that names its key.
func Load(path string, getenv func(string) string) (*Config, error) {
	var c Config
	if err := decode(defaultYAML, &c); err != nil {
		return nil, fmt.Errorf("config: embedded default.yaml: %w", err)
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decode(b, &c); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, e := range envVars {
		if v := getenv(e.name); v != "" {
			if err := e.set(&c, v); err != nil {
				return nil, fmt.Errorf("config: %s (%s=%q): %w", e.key, e.name, v, err)
			}
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decode(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file has no YAML document: nothing to override.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nameKeys(b, err)
	}
	return nil
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// nameKeys adds the dotted key to each "line N:" of a YAML error, so a bad
// value is reported by the key an operator knows.
func nameKeys(src []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return err
	}
	msg := lineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		if key := keyAt(&root, n, ""); key != "" {
			return fmt.Sprintf("line %d: %s: ", n, key)
		}
		return m
	})
	return errors.New(msg)
}

// keyAt finds the dotted path of the mapping key on the given line.
func keyAt(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAt(c, line, prefix); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			if k.Line == line {
				return path
			}
			if sub := keyAt(v, line, path); sub != "" {
				return sub
			}
		}
	}
	return ""
}

// KeyError is a configuration error tied to one key.
type KeyError struct {
	Key    string
	Value  string
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("config: %s = %q: %s", e.Key, e.Value, e.Reason)
}

func (c *Config) validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return &KeyError{"listen", c.Listen, "want host:port, e.g. 127.0.0.1:8080"}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return &KeyError{"listen", c.Listen, "port must be a number 0-65535"}
	}
	if c.PublicURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return &KeyError{"public_url", c.PublicURL, "want an absolute http(s) URL without a query, e.g. https://example.ngrok.app"}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DataDir == "" {
		return &KeyError{"data_dir", c.DataDir, "must not be empty"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &KeyError{"log_level", c.LogLevel, "want debug, info, warn or error"}
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		return &KeyError{"store", c.Store, "want empty (SQLite in data_dir) or a postgres:// URL"}
	}
	if c.Twilio.AccountSID != "" && !strings.HasPrefix(c.Twilio.AccountSID, "AC") {
		return &KeyError{"twilio.account_sid", c.Twilio.AccountSID, "an account SID starts with AC"}
	}
	if c.Twilio.APIBaseURL != "" {
		if u, err := url.Parse(c.Twilio.APIBaseURL); err != nil || u.Scheme == "" || u.Host == "" {
			return &KeyError{"twilio.api_base_url", c.Twilio.APIBaseURL, "want an absolute URL"}
		}
	}
	if c.Speech.MaxDecoders < 1 || c.Speech.MaxDecoders > 256 {
		return &KeyError{"speech.max_decoders", strconv.Itoa(c.Speech.MaxDecoders), "want 1-256"}
	}
	switch c.Speech.Voice {
	case "slt", "kal", "rms", "awb":
	default:
		return &KeyError{"speech.voice", c.Speech.Voice, "want slt, kal, rms or awb"}
	}
	if c.WebRTC.PortMin > c.WebRTC.PortMax {
		return &KeyError{"webrtc.port_min", strconv.Itoa(int(c.WebRTC.PortMin)), "must not exceed webrtc.port_max"}
	}
	for _, ip := range c.WebRTC.NATIPs {
		if net.ParseIP(ip) == nil {
			return &KeyError{"webrtc.nat_ips", ip, "not an IP address"}
		}
	}
	for key, codecs := range map[string][]string{"webrtc.codecs": c.WebRTC.Codecs, "webrtc.agent_codecs": c.WebRTC.AgentCodecs} {
		if len(codecs) == 0 {
			return &KeyError{key, "[]", "want at least one of opus, pcmu"}
		}
		for _, codec := range codecs {
			if codec != "opus" && codec != "pcmu" {
				return &KeyError{key, codec, "want opus or pcmu"}
			}
		}
	}
	for _, r := range []struct {
		key string
		r   Remote
	}{{"llm", c.LLM}, {"stt", c.STT}, {"tts", c.TTS}} {
		if r.r.BaseURL == "" {
			if r.r.Model != "" || r.r.APIKey != "" {
				return &KeyError{r.key + ".base_url", "", "set it too (model or api_key given without a provider URL)"}
			}
			continue
		}
		if u, err := url.Parse(r.r.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &KeyError{r.key + ".base_url", r.r.BaseURL, "want an http(s) URL, e.g. https://api.openai.com/v1"}
		}
		if r.r.Deadline < 0 || r.r.Deadline > time.Minute {
			return &KeyError{r.key + ".deadline", r.r.Deadline.String(), "want between 0 (engine default) and 1m"}
		}
		if r.r.Model == "" {
			return &KeyError{r.key + ".model", "", "a model name is required with " + r.key + ".base_url"}
		}
	}
	if c.Node == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "parley"
		}
		c.Node = host + "/" + c.Listen
	}
	if len(c.Node) > 200 {
		return &KeyError{"node", c.Node, "at most 200 characters"}
	}
	if c.TranscriptRetention != 0 && c.TranscriptRetention < 24*time.Hour {
		return &KeyError{"transcript_retention", c.TranscriptRetention.String(), "want 0 (keep) or at least 24h"}
	}
	if c.Survey.Enabled && strings.TrimSpace(c.Survey.Prompt) == "" {
		return &KeyError{"survey.prompt", "", "the survey needs a question"}
	}
	if c.Recording.Enabled {
		if strings.TrimSpace(c.Recording.Announcement) == "" {
			return &KeyError{"recording.announcement", "", "callers must be told a call is recorded"}
		}
		if c.Recording.Retention < time.Hour {
			return &KeyError{"recording.retention", c.Recording.Retention.String(), "want at least 1h"}
		}
	}
	for i, t := range c.Tools {
		key := fmt.Sprintf("tools[%d]", i)
		if !toolName.MatchString(t.Name) {
			return &KeyError{key + ".name", t.Name, "want 1-64 letters, digits, _ or -"}
		}
		if strings.TrimSpace(t.Description) == "" {
			return &KeyError{key + ".description", "", "the model needs to know what the tool does"}
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &KeyError{key + ".url", "(hidden)", "want an http(s) URL"}
		}
		if typ, _ := t.Parameters["type"].(string); typ != "object" {
			return &KeyError{key + ".parameters", fmt.Sprint(t.Parameters["type"]), `want a JSON schema with "type": "object"`}
		}
		if t.Timeout < 0 || t.Timeout > time.Minute {
			return &KeyError{key + ".timeout", t.Timeout.String(), "want between 0 (3s) and 1m"}
		}
		if !c.LLM.Enabled() {
			return &KeyError{key, t.Name, "tools need an LLM (llm.base_url)"}
		}
	}
	for _, d := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
	}{
		{"dialog.early_end_silence", c.Dialog.EarlyEndSilence, 0, 5 * time.Second},
		{"dialog.end_silence", c.Dialog.EndSilence, 100 * time.Millisecond, 5 * time.Second},
		{"dialog.digits_end_silence", c.Dialog.DigitsEndSilence, 100 * time.Millisecond, 10 * time.Second},
		{"dialog.yesno_end_silence", c.Dialog.YesNoEndSilence, 100 * time.Millisecond, 5 * time.Second},
		{"dialog.no_input_timeout", c.Dialog.NoInputTimeout, time.Second, 2 * time.Minute},
		{"dialog.barge_in_min_speech", c.Dialog.BargeInMinSpeech, 40 * time.Millisecond, 3 * time.Second},
		{"dialog.max_call_duration", c.Dialog.MaxCallDuration, time.Minute, 24 * time.Hour},
		{"queue.max_wait", c.Queue.MaxWait, 5 * time.Second, 2 * time.Hour},
		{"queue.offer_timeout", c.Queue.OfferTimeout, 3 * time.Second, 5 * time.Minute},
		{"queue.announce_every", c.Queue.AnnounceEvery, 5 * time.Second, 10 * time.Minute},
		{"queue.skill_wait", c.Queue.SkillWait, time.Second, time.Hour},
		{"queue.voicemail_max", c.Queue.VoicemailMax, 5 * time.Second, 10 * time.Minute},
	} {
		if d.v < d.min || d.v > d.max {
			return &KeyError{d.key, d.v.String(), fmt.Sprintf("want between %v and %v", d.min, d.max)}
		}
	}
	return nil
}
