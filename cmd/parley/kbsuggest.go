package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog/kb"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/web/api"
)

func runKB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return osCLI(stdout, stderr).kb(ctx, args)
}

const kbUsage = `usage:
  parley kb suggest [--from DATE] [--to DATE] [--min-cluster N] [-o FILE] [--config FILE]
Proposes new example utterances and new intents from what the AI did not
understand (low confidence, out of scope) and from turns supervisors marked
misunderstood (POST /api/calls/{id}/feedback), for an admin to review and copy
into the knowledge base.`

func (c cli) kb(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "suggest" {
		fmt.Fprintln(c.stderr, kbUsage)
		return errors.New("kb: want the subcommand suggest")
	}
	fs := flag.NewFlagSet("kb suggest", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	from := fs.String("from", "", "first day or time to learn from (default: 30 days ago)")
	to := fs.String("to", "", "last day, or the time before which to stop (default: now)")
	minCluster := fs.Int("min-cluster", 3, "fewest similar requests that make a new intent")
	out := fs.String("o", "-", "output file (- for standard output)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("kb suggest: unexpected argument %q", pos[0])
	}
	q := parley.CallQuery{From: time.Now().UTC().AddDate(0, 0, -30), To: time.Now().UTC()}
	if *from != "" {
		if q.From, err = api.ParseTime(*from, false); err != nil {
			return fmt.Errorf("kb suggest: --from: %w", err)
		}
	}
	if *to != "" {
		if q.To, err = api.ParseTime(*to, true); err != nil {
			return fmt.Errorf("kb suggest: --to: %w", err)
		}
	}
	cfg, err := configs.Load(*cfgPath, c.getenv)
	if err != nil {
		return err
	}
	engine, err := loadKB(cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	return c.withStore(ctx, *cfgPath, func(st parley.Store) error {
		us, calls, err := learnable(ctx, st, q, escalation.DefaultPolicy())
		if err != nil {
			return fmt.Errorf("kb suggest: %w", err)
		}
		s := kb.Suggest(engine, us, kb.SuggestOptions{MinCluster: *minCluster})
		return writeOutput(*out, c.stdout, func(w io.Writer) error {
			fmt.Fprintf(w, "# parley kb suggest: %s to %s, %d calls, %d requests to learn from.\n",
				q.From.Format(time.DateOnly), q.To.Format(time.DateOnly), calls, len(us))
			fmt.Fprintln(w, "# Review, then copy the examples into the intents' examples in your knowledge base;")
			fmt.Fprintln(w, "# give a new intent a name, a title and an answer before adding it.")
			enc := yaml.NewEncoder(w)
			enc.SetIndent(2)
			if err := enc.Encode(s); err != nil {
				return err
			}
			return enc.Close()
		})
	})
}

// learnable collects the caller turns of the period the AI did not
// understand (below the policy's confidence thresholds, or out of scope),
// and the turns supervisors marked with their right intent.
func learnable(ctx context.Context, st parley.Store, q parley.CallQuery, p escalation.Policy) ([]kb.Utterance, int, error) {
	var us []kb.Utterance
	n := 0
	q.Limit = exportPage
	for q.Offset = 0; ; q.Offset += exportPage {
		page, err := st.ListCalls(ctx, q)
		if err != nil {
			return nil, n, err
		}
		for _, listed := range page {
			call, err := st.GetCall(ctx, listed.ID)
			if errors.Is(err, parley.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, n, err
			}
			evs, err := st.Events(ctx, listed.ID)
			if err != nil && !errors.Is(err, parley.ErrNotFound) {
				return nil, n, err
			}
			n++
			marked := map[int]bool{}
			for _, e := range evs {
				if e.Kind != "feedback" {
					continue
				}
				var fb struct {
					Seq    int    `json:"seq"`
					Text   string `json:"text"`
					Intent string `json:"intent"`
				}
				if json.Unmarshal(e.Data, &fb) == nil && fb.Text != "" {
					marked[fb.Seq] = true
					us = append(us, kb.Utterance{Text: fb.Text, CallID: call.ID, Intent: fb.Intent})
				}
			}
			for _, t := range call.Turns {
				if t.Speaker != parley.SpeakerCaller || t.Text == "" || t.Signals == nil || marked[t.Seq] {
					continue
				}
				s := t.Signals
				if s.NoInput || s.AskedForHuman {
					continue
				}
				if s.OutOfScope || s.NLUConfidence < p.MinNLUConfidence {
					us = append(us, kb.Utterance{Text: t.Text, CallID: call.ID})
				}
			}
		}
		if len(page) < exportPage {
			return us, n, nil
		}
	}
}
