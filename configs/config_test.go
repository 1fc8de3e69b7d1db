package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.DataDir != "./data" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Dialog.EndSilence != 700*time.Millisecond || c.Speech.Voice != "slt" {
		t.Fatalf("dialog/speech defaults: %+v %+v", c.Dialog, c.Speech)
	}
	if strings.Join(c.WebRTC.Codecs, ",") != "opus,pcmu" || strings.Join(c.WebRTC.AgentCodecs, ",") != "pcmu,opus" {
		t.Fatalf("webrtc codecs %v / agents %v, want [opus pcmu] / [pcmu opus]", c.WebRTC.Codecs, c.WebRTC.AgentCodecs)
	}
}

func TestLoadFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("listen: 0.0.0.0:9000\ndialog:\n  end_silence: 900ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{
		"PARLEY_PUBLIC_URL":        "https://abc.example.com/",
		"PARLEY_TWILIO_AUTH_TOKEN": "tok",
		"PARLEY_DATA_DIR":          "/var/lib/parley",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.Dialog.EndSilence != 900*time.Millisecond {
		t.Fatalf("file not applied: %+v", c)
	}
	if c.PublicURL != "https://abc.example.com" || c.Twilio.AuthToken != "tok" || c.DataDir != "/var/lib/parley" {
		t.Fatalf("env not applied: %+v", c)
	}
	// The untouched keys keep their defaults.
	if c.Dialog.NoInputTimeout != 7*time.Second {
		t.Fatalf("default lost: %v", c.Dialog.NoInputTimeout)
	}
}

func TestRemoteStagesFromEnv(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"PARLEY_LLM_BASE_URL": "http://127.0.0.1:8000/v1", "PARLEY_LLM_MODEL": "llama", "PARLEY_LLM_API_KEY": "k",
		"PARLEY_TTS_BASE_URL": "https://api.openai.com/v1", "PARLEY_TTS_MODEL": "gpt-4o-mini-tts",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.LLM.Enabled() || c.LLM.Model != "llama" || c.LLM.APIKey != "k" || c.STT.Enabled() || !c.TTS.Enabled() {
		t.Fatalf("remote stages: %+v %+v %+v", c.LLM, c.STT, c.TTS)
	}
}

func TestPublicURLDefaultsToListen(t *testing.T) {
	c, err := Load("", env(map[string]string{"PARLEY_LISTEN": "0.0.0.0:7000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://127.0.0.1:7000" {
		t.Fatalf("public url %q", c.PublicURL)
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  map[string]string
		key  string
	}{
		{"listen", "", map[string]string{"PARLEY_LISTEN": "nonsense"}, "listen"},
		{"port", "", map[string]string{"PARLEY_LISTEN": "127.0.0.1:99999"}, "listen"},
		{"public url scheme", "", map[string]string{"PARLEY_PUBLIC_URL": "ftp://x"}, "public_url"},
		{"public url query", "", map[string]string{"PARLEY_PUBLIC_URL": "https://x/?a=b"}, "public_url"},
		{"log level", "", map[string]string{"PARLEY_LOG_LEVEL": "loud"}, "log_level"},
		{"store", "", map[string]string{"PARLEY_STORE": "mysql://x"}, "store"},
		{"sid", "", map[string]string{"PARLEY_TWILIO_ACCOUNT_SID": "XX123"}, "twilio.account_sid"},
		{"decoders not a number", "", map[string]string{"PARLEY_STT_MAX_DECODERS": "many"}, "speech.max_decoders"},
		{"decoders zero", "", map[string]string{"PARLEY_STT_MAX_DECODERS": "0"}, "speech.max_decoders"},
		{"voice", "", map[string]string{"PARLEY_TTS_VOICE": "hal"}, "speech.voice"},
		{"codec", "webrtc:\n  codecs: [opus, g722]\n", nil, "webrtc.codecs"},
		{"no codec", "webrtc:\n  codecs: []\n", nil, "webrtc.codecs"},
		{"agent codec", "webrtc:\n  agent_codecs: [pcma]\n", nil, "webrtc.agent_codecs"},
		{"duration range", "dialog:\n  end_silence: 10ms\n", nil, "dialog.end_silence"},
		{"duration syntax", "dialog:\n  end_silence: soon\n", nil, "end_silence"},
		{"unknown key", "listne: 1.2.3.4:5\n", nil, "listne"},
		{"llm without model", "", map[string]string{"PARLEY_LLM_BASE_URL": "http://127.0.0.1:8000/v1"}, "llm.model"},
		{"llm bad url", "", map[string]string{"PARLEY_LLM_BASE_URL": "localhost:8000", "PARLEY_LLM_MODEL": "m"}, "llm.base_url"},
		{"stt key without url", "", map[string]string{"PARLEY_STT_API_KEY": "sk-x"}, "stt.base_url"},
		{"tool name", "tools:\n  - {name: 'bad name', description: d, url: 'http://x', parameters: {type: object}}\n", llmEnv, "tools[0].name"},
		{"tool url", "tools:\n  - {name: t, description: d, url: 'x', parameters: {type: object}}\n", llmEnv, "tools[0].url"},
		{"tool schema", "tools:\n  - {name: t, description: d, url: 'http://x', parameters: {type: string}}\n", llmEnv, "tools[0].parameters"},
		{"tool without llm", "tools:\n  - {name: t, description: d, url: 'http://x', parameters: {type: object}}\n", nil, "tools[0]"},
		{"queue wait", "queue:\n  max_wait: 1s\n", nil, "queue.max_wait"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

var llmEnv = map[string]string{"PARLEY_LLM_BASE_URL": "http://127.0.0.1:8000/v1", "PARLEY_LLM_MODEL": "m"}

func TestWebhookToolsLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "tools:\n  - name: order_status\n    description: Order status by number.\n    url: https://example.com/hook\n    timeout: 2s\n    parameters: {type: object, properties: {order: {type: string}}, required: [order]}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(llmEnv))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tools) != 1 || c.Tools[0].Name != "order_status" || c.Tools[0].Timeout != 2*time.Second || c.Tools[0].Parameters["type"] != "object" {
		t.Fatalf("tools %+v", c.Tools)
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(nil)); err != nil {
		t.Fatal(err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:1\n"))
	f.Add(DefaultYAML())
	f.Add([]byte("dialog: {end_silence: 1s}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, env(nil))
		if err == nil && (c.Listen == "" || c.PublicURL == "") {
			t.Fatalf("accepted config without listen/public url: %+v", c)
		}
	})
}

func TestTranscriptRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("transcript_retention: 2160h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(nil))
	if err != nil || c.TranscriptRetention != 90*24*time.Hour {
		t.Fatalf("retention %v (%v)", c.TranscriptRetention, err)
	}
	if err := os.WriteFile(path, []byte("transcript_retention: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(nil)); err == nil || !strings.Contains(err.Error(), "transcript_retention") {
		t.Fatalf("1h retention accepted: %v", err)
	}
}
