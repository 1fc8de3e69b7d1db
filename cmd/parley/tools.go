package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/flite"
	"github.com/parley-ai/parley/dialog/kb/nlu"
	"github.com/parley-ai/parley/dialog/sphinx"
	"github.com/parley-ai/parley/media"
)

// cliLogger writes human-readable logs to stderr for the command-line tools.
func cliLogger(stderr io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).Level(lvl).With().Timestamp().Logger()
}

// localRecognizer builds a one-decoder recognizer with the knowledge base's
// language model in a temporary directory, for the command-line tools.
func localRecognizer(cfg *configs.Config, log zerolog.Logger) (*sphinx.Recognizer, func(), error) {
	k, err := loadKB(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "parley-stt-")
	if err != nil {
		return nil, nil, err
	}
	rec, err := sphinx.New(sphinx.Config{DataDir: dir, Sentences: k.Sentences(), MaxDecoders: 1})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return rec, func() { rec.Close(); os.RemoveAll(dir) }, nil
}

// runTranscribe prints one JSON object per WAV file: {"file","text","confidence","ms"}.
func runTranscribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("transcribe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	digits := fs.Bool("digits", false, "expect a digit string (account numbers)")
	cfgPath := fs.String("config", "", "configuration file (the knowledge base shapes the language model)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("transcribe: give one or more WAV files")
	}
	cfg, err := configs.Load(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	rec, done, err := localRecognizer(cfg, cliLogger(stderr, "warn"))
	if err != nil {
		return err
	}
	defer done()
	mode := dialog.ModeOpen
	if *digits {
		mode = dialog.ModeDigits
	}
	enc := json.NewEncoder(stdout)
	var failed int
	for _, f := range fs.Args() {
		pcm, rate, err := media.ReadWAVFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "transcribe: %s: %v\n", f, err)
			failed++
			continue
		}
		t0 := time.Now()
		tr, err := rec.TranscribePCM(ctx, pcm, rate, mode)
		if err != nil {
			fmt.Fprintf(stderr, "transcribe: %s: %v\n", f, err)
			failed++
			continue
		}
		if err := enc.Encode(struct {
			File       string  `json:"file"`
			Text       string  `json:"text"`
			Confidence float64 `json:"confidence"`
			MS         float64 `json:"ms"`
		}{f, tr.Text, round3(tr.Confidence), round3(float64(time.Since(t0).Microseconds()) / 1000)}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("transcribe: %d of %d files failed", failed, fs.NArg())
	}
	return nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// runSay writes TEXT spoken by the embedded synthesizer to a WAV file.
func runSay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("say", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output WAV file (required)")
	voice := fs.String("voice", "slt", "flite voice: slt, kal, rms, awb")
	rate := fs.Int("rate", 0, "resample the output to this rate (e.g. 8000 for phone audio); 0 keeps the voice's rate")
	if err := fs.Parse(reorder(args, map[string]bool{"o": true, "voice": true, "rate": true})); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	if text == "" || *out == "" {
		return errors.New("say: usage: say TEXT -o out.wav")
	}
	tts, err := flite.New(flite.Config{Voice: *voice})
	if err != nil {
		return err
	}
	pcm, err := tts.SynthesizeAll(ctx, text)
	if err != nil {
		return err
	}
	r := tts.SampleRate()
	if *rate > 0 && *rate != r {
		pcm, r = media.Resample(pcm, r, *rate), *rate
	}
	if err := media.WriteWAVFile(*out, pcm, r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %.2f s at %d Hz\n", *out, float64(len(pcm))/float64(r), r)
	return nil
}

// reorder moves flags after positional words to the front, so
// `say hello there -o x.wav` works like `say -o x.wav hello there`.
func reorder(args []string, withValue map[string]bool) []string {
	var flags, words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if withValue[name] && !strings.Contains(name, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		words = append(words, a)
	}
	return append(flags, words...)
}

// runNLU trains the intent classifier on one file and scores it on another.
func runNLU(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "eval" {
		return errors.New("nlu: usage: nlu eval --train FILE --test FILE")
	}
	fs := flag.NewFlagSet("nlu eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	train := fs.String("train", "", "training file: CSV text,category or JSONL {text,intent}")
	test := fs.String("test", "", "test file, same formats (intent \"oos\" = out of scope)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *train == "" || *test == "" {
		return errors.New("nlu eval: --train and --test are required")
	}
	tr, err := nlu.LoadExamples(*train)
	if err != nil {
		return err
	}
	te, err := nlu.LoadExamples(*test)
	if err != nil {
		return err
	}
	t0 := time.Now()
	m, err := nlu.Train(tr, nlu.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "trained on %d examples in %.1f s\n", len(tr), time.Since(t0).Seconds())
	return json.NewEncoder(stdout).Encode(nlu.Evaluate(m, te))
}

// runChat is the conversation in text on the terminal, for knowledge-base authors.
func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return chat(ctx, args, os.Stdin, stdout, stderr)
}

func chat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file")
	verbose := fs.Bool("v", false, "show intent and confidence after each answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.Load(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	k, err := loadKB(cfg, cliLogger(stderr, "warn"))
	if err != nil {
		return err
	}
	eng, err := remoteEngines(cfg, dialog.Engines{Responder: k}, k, nil, cliLogger(stderr, "warn"))
	if err != nil {
		return err
	}
	conv := eng.Responder.NewConversation(dialog.CallContext{CallID: "chat", From: "terminal"})
	say := func(s string) error { _, err := fmt.Fprintln(stdout, "AI: "+s); return err }
	if err := conv.Greeting(ctx, say); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "(type what the caller says; digits alone are sent as keypad presses; an empty line is silence; Ctrl-D ends)")
	in := bufio.NewScanner(stdin)
	for {
		fmt.Fprint(stdout, "you: ")
		if !in.Scan() {
			fmt.Fprintln(stdout)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		inp := dialog.Input{Kind: dialog.InputSpeech, Text: strings.ToLower(line), Confidence: 1}
		switch {
		case line == "":
			inp = dialog.Input{Kind: dialog.InputSilence}
		case strings.Trim(line, "0123456789*#") == "":
			inp = dialog.Input{Kind: dialog.InputDTMF, Digits: line}
		}
		res, err := conv.Respond(ctx, inp, say)
		if err != nil {
			return err
		}
		if *verbose {
			fmt.Fprintf(stdout, "    [intent=%s confidence=%.2f expect=%s oos=%v human=%v human_only=%v repeats=%d]\n",
				res.Intent, res.Confidence, res.Expect, res.OutOfScope, res.WantsHuman, res.HumanOnly, res.Repeats)
		}
		if res.EndCall {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
