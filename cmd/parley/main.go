// Command parley is the voice AI call-center server and its tools:
//
//	parley serve [--config FILE]              run the server
//	parley call --to URL [--say TEXT | --wav FILE]... [--dtmf DIGITS] [--record out.wav]
//	parley chat                               talk to the knowledge base in text
//	parley transcribe [--digits] FILE.wav...  speech to text, one JSON line per file
//	parley say TEXT -o out.wav                text to speech
//	parley nlu eval --train FILE --test FILE  train and score the intent classifier
//	parley bench calls --concurrency N --duration D
//	parley users add NAME --role agent|supervisor|admin
//	parley calls export --from DATE --to DATE | forget NUMBER
//
// This is the only package that wires concrete types together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the server: serve [--config FILE]", runServe},
		{"call", "call a running server as Twilio does: call --to URL [--say TEXT | --wav FILE]... [--dtmf DIGITS] [--record out.wav]", runCall},
		{"chat", "talk to the dialog engine in text on the terminal: chat [--config FILE]", runChat},
		{"transcribe", "speech to text: transcribe [--digits] FILE.wav...", runTranscribe},
		{"say", "text to speech: say TEXT -o out.wav [--voice slt]", runSay},
		{"nlu", "intent classifier: nlu eval --train FILE --test FILE", runNLU},
		{"bench", "measure: bench calls --concurrency N --duration D [--to URL] | bench bridges --bridges N --duration D | bench seed --calls N [--store URL | --data-dir DIR]", runBench},
		{"users", "console accounts: users add NAME --role agent|supervisor|admin [--skills a,b] [--password-stdin] | list | remove NAME", runUsers},
		{"kb", "knowledge base: kb suggest [--from DATE] [--to DATE] [-o FILE] — new examples and intents from what the AI did not understand", runKB},
		{"calls", "call history: calls export [--from DATE] [--to DATE] [-o FILE] | forget NUMBER [--yes]", runCalls},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parley:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "parley — voice AI call-center server\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.usage)
	}
}

// stringList is a repeatable flag that keeps its order.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
