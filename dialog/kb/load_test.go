package kb

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestLoadErrors loads every case in testdata/load (a file or a directory)
// and compares the error with its .golden file.
func TestLoadErrors(t *testing.T) {
	entries, err := os.ReadDir("testdata/load")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".golden") || name == "good.yaml" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata/load", name))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			golden(t, filepath.Join("load", strings.TrimSuffix(name, filepath.Ext(name))+".golden"), err.Error()+"\n")
		})
	}
	if n < 10 {
		t.Fatalf("only %d bad cases found", n)
	}
}

func TestLoadGood(t *testing.T) {
	k, err := Load("testdata/load/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if k.Company.Name != "Test Co" || k.Company.Confirm != companyDefaults.Confirm {
		t.Errorf("company = %+v", k.Company)
	}
	if got := len(k.Intents); got != 3 {
		t.Fatalf("%d intents, want 3", got)
	}
	b := k.Intent("balance")
	if b == nil || b.Slots[0].Length != 4 || b.FollowUp.Yes != "more" || b.Source != "testdata/load/good.yaml:11" {
		t.Errorf("balance = %+v", b)
	}
	if k.Intent("more").Examples != nil {
		t.Errorf("more has examples")
	}
	if len(k.OutOfScope) != 1 {
		t.Errorf("out of scope = %v", k.OutOfScope)
	}
}

func TestLoadMissing(t *testing.T) {
	for _, path := range []string{"testdata/nope", "testdata"} {
		if _, err := Load(path); err == nil {
			t.Errorf("Load(%q) succeeded", path)
		}
	}
}

func TestLoadFS(t *testing.T) {
	good, err := os.ReadFile("testdata/load/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"a.yaml":    {Data: good},
		"empty.yml": {Data: nil},
		"big.yaml":  {Data: []byte(strings.Repeat("#", MaxFileSize+1))},
	}
	if _, err := LoadFS(fsys); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("oversized file: err = %v", err)
	}
	delete(fsys, "big.yaml")
	k, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if k.Intent("fees") == nil {
		t.Error("fees missing")
	}
}

// TestSampleKB checks the shipped knowledge base: it loads, has the intents
// the product promises, at least 30 answerable intents with 10 or more
// examples each, and speech-friendly answers.
func TestSampleKB(t *testing.T) {
	k := sampleKB(t)
	answerable := 0
	for _, in := range k.Intents {
		if len(in.Examples) < 10 {
			t.Errorf("intent %s has %d examples, want 10 or more", in.Name, len(in.Examples))
		}
		if in.Action == ActionNone {
			answerable++
			if in.Title == "" || in.Skill == "" {
				t.Errorf("intent %s needs a title and a skill", in.Name)
			}
		}
	}
	if answerable < 30 {
		t.Errorf("%d answerable intents, want 30 or more", answerable)
	}
	for _, name := range []string{
		"card_lost", "card_not_arrived", "activate_card", "pin", "balance", "recent_transactions",
		"card_declined", "refund_status", "dispute_charge", "fees", "exchange_rates", "top_up",
		"transfer_money", "transfer_pending", "direct_debit", "change_address", "update_contact",
		"close_account", "open_account", "credit_limit", "interest_rates", "statement_request",
		"opening_hours", "branch_atm", "virtual_card", "mobile_wallet", "contactless", "travel_notice",
		"fraud", "complaint", "bereavement", "agent", "goodbye", "thanks", "affirm", "deny", "repeat",
		"go_back", "correction",
	} {
		if k.Intent(name) == nil {
			t.Errorf("sample KB lacks intent %s", name)
		}
	}
	for _, name := range []string{"fraud", "complaint", "bereavement"} {
		if in := k.Intent(name); in != nil && !in.Human {
			t.Errorf("%s must be human: true", name)
		}
	}
	if b := k.Intent("balance"); b == nil || len(b.Slots) != 1 || b.Slots[0].Type != SlotDigits || b.Slots[0].Length != 4 {
		t.Errorf("balance must ask for the last four digits")
	}
	if len(k.OutOfScope) < 20 {
		t.Errorf("%d out-of-scope examples, want 20 or more", len(k.OutOfScope))
	}
}

// FuzzLoad feeds arbitrary bytes to the parser as one knowledge-base file:
// it must return a knowledge base or an error, never panic, and a loaded
// knowledge base must hold its invariants.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/load", "../../configs/kb"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("company: {name: x}\nintents: [{name: a, examples: [b], answer: '{'}]"))
	f.Add([]byte("- &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parse([]source{{name: "fuzz.yaml", data: data}})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "kb: invalid knowledge base:\nfuzz.yaml") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		if k.Company.Greeting == "" || len(k.Company.Fallback) == 0 || len(k.Company.Reprompt) == 0 {
			t.Fatalf("loaded without required phrases: %+v", k.Company)
		}
		for _, in := range k.Intents {
			if k.Intent(in.Name) != in {
				t.Fatalf("intent %q not indexed", in.Name)
			}
			if in.Action == ActionNone && in.Answer == "" {
				t.Fatalf("intent %q without answer", in.Name)
			}
		}
	})
}
