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
	"path/filepath"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/web/api"
)

func runCalls(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return osCLI(stdout, stderr).calls(ctx, args)
}

const callsUsage = `usage:
  parley calls export [--from DATE] [--to DATE] [-o FILE] [--config FILE]
  parley calls forget NUMBER [--yes] [--config FILE]
DATE is 2026-03-14 (a --to date includes that day) or an RFC 3339 time.`

// exportPage is how many calls export lists per store query.
const exportPage = 500

func (c cli) calls(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, callsUsage)
		return errors.New("calls: no subcommand given")
	}
	switch args[0] {
	case "export":
		return c.callsExport(ctx, args[1:])
	case "forget":
		return c.callsForget(ctx, args[1:])
	}
	fmt.Fprintln(c.stderr, callsUsage)
	return fmt.Errorf("calls: unknown subcommand %q", args[0])
}

func (c cli) callsExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("calls export", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	from := fs.String("from", "", "first day or time to export (default: the beginning)")
	to := fs.String("to", "", "last day, or the time before which to stop (default: now)")
	out := fs.String("o", "-", "output file (- for standard output); written whole or not at all")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("calls export: unexpected argument %q", pos[0])
	}
	var q parley.CallQuery
	if *from != "" {
		if q.From, err = api.ParseTime(*from, false); err != nil {
			return fmt.Errorf("calls export: --from: %w", err)
		}
	}
	// A fixed end keeps the pages steady while new calls come in.
	q.To = time.Now().UTC()
	if *to != "" {
		if q.To, err = api.ParseTime(*to, true); err != nil {
			return fmt.Errorf("calls export: --to: %w", err)
		}
	}
	if !q.From.IsZero() && q.From.After(q.To) {
		return errors.New("calls export: --from is after --to")
	}
	return c.withStore(ctx, *cfgPath, func(st parley.Store) error {
		var n int
		err := writeOutput(*out, c.stdout, func(w io.Writer) error {
			var err error
			n, err = exportCalls(ctx, st, q, w)
			return err
		})
		if err != nil {
			return fmt.Errorf("calls export: %w", err)
		}
		dest := *out
		if dest == "-" {
			dest = "standard output"
		}
		fmt.Fprintf(c.stderr, "exported %d calls to %s\n", n, dest)
		return nil
	})
}

// exportCalls writes every call matching q, newest first, as one JSON
// line each: the call, its turns with timings and its events, in the
// shape GET /api/calls/{id} answers.
func exportCalls(ctx context.Context, st parley.Store, q parley.CallQuery, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	q.Limit = exportPage
	for q.Offset = 0; ; q.Offset += exportPage {
		page, err := st.ListCalls(ctx, q)
		if err != nil {
			return n, err
		}
		for _, listed := range page {
			call, err := st.GetCall(ctx, listed.ID)
			if errors.Is(err, parley.ErrNotFound) {
				continue // forgotten while we exported
			}
			if err != nil {
				return n, err
			}
			evs, err := st.Events(ctx, listed.ID)
			if errors.Is(err, parley.ErrNotFound) {
				continue
			}
			if err != nil {
				return n, err
			}
			if err := enc.Encode(api.Detail(call, evs)); err != nil {
				return n, fmt.Errorf("write: %w", err)
			}
			n++
		}
		if len(page) < exportPage {
			return n, nil
		}
	}
}

// writeOutput runs write on stdout for "-", else on a temporary file next
// to path that is renamed over it only when write succeeds, so a failed
// export never leaves half a file. Exports hold caller data: mode 0600.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" || path == "" {
		bw := bufio.NewWriter(stdout)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (c cli) callsForget(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("calls forget", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] == "" {
		return errors.New("calls forget: give exactly one NUMBER")
	}
	number := pos[0]
	return c.withStore(ctx, *cfgPath, func(st parley.Store) error {
		if !*yes {
			n, err := countCalls(ctx, st, number)
			if err != nil {
				return fmt.Errorf("calls forget: %w", err)
			}
			if n == 0 {
				fmt.Fprintf(c.stdout, "no calls from or to %s\n", number)
				return nil
			}
			ok, err := c.confirm(fmt.Sprintf("Delete %d calls from or to %s, with their transcripts and events? This cannot be undone.", n, number))
			if err != nil {
				return fmt.Errorf("calls forget: %w", err)
			}
			if !ok {
				return errors.New("calls forget: not confirmed, nothing deleted")
			}
		}
		n, err := st.ForgetNumber(ctx, number)
		if err != nil {
			return fmt.Errorf("calls forget: %w", err)
		}
		fmt.Fprintf(c.stdout, "deleted %d calls from or to %s\n", n, number)
		return nil
	})
}

// countCalls counts the calls from or to number.
func countCalls(ctx context.Context, st parley.Store, number string) (int, error) {
	n := 0
	for off := 0; ; off += exportPage {
		page, err := st.ListCalls(ctx, parley.CallQuery{Number: number, Limit: exportPage, Offset: off})
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < exportPage {
			return n, nil
		}
	}
}
