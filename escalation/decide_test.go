package escalation

import (
	"reflect"
	"testing"
	"time"

	"github.com/parley-ai/parley"
)

func ok() parley.Signals { return parley.Signals{ASRConfidence: 0.9, NLUConfidence: 0.9} }

func TestDecideSingleTurn(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		name     string
		mod      func(*parley.Signals)
		transfer bool
		first    Reason
		priority bool
	}{
		{"confident turn stays", func(s *parley.Signals) {}, false, "", false},
		{"asked for human", func(s *parley.Signals) { s.AskedForHuman = true }, true, ReasonAskedForHuman, false},
		{"human-only intent, priority", func(s *parley.Signals) { s.HumanOnly = true }, true, ReasonHumanOnly, true},
		{"one low-confidence turn stays", func(s *parley.Signals) { s.NLUConfidence = 0.2 }, false, "", false},
		{"one low ASR turn stays", func(s *parley.Signals) { s.ASRConfidence = 0.1 }, false, "", false},
		{"strong frustration", func(s *parley.Signals) { s.Frustration = 1 }, true, ReasonFrustration, false},
		{"mild frustration stays", func(s *parley.Signals) { s.Frustration = 0.4 }, false, "", false},
		{"two repeats", func(s *parley.Signals) { s.Repeats = 2 }, true, ReasonCircles, false},
		{"one repeat stays", func(s *parley.Signals) { s.Repeats = 1 }, false, "", false},
		{"one provider failure stays", func(s *parley.Signals) { s.ProviderFailure = true }, false, "", false},
		{"too long with the AI", func(s *parley.Signals) { s.AITime = 20 * time.Minute }, true, ReasonAITime, false},
		{"human-only outranks asked", func(s *parley.Signals) { s.HumanOnly = true; s.AskedForHuman = true }, true, ReasonHumanOnly, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.mod(&s)
			d := Decide(s, State{}, p)
			if d.Transfer != tc.transfer || d.Priority != tc.priority {
				t.Fatalf("got transfer=%v priority=%v reasons=%v score=%v", d.Transfer, d.Priority, d.Reasons, d.Score)
			}
			if tc.transfer && (len(d.Reasons) == 0 || d.Reasons[0] != tc.first) {
				t.Fatalf("reasons %v, want %s first", d.Reasons, tc.first)
			}
			if !tc.transfer && len(d.Reasons) != 0 {
				t.Fatalf("staying decision has reasons %v", d.Reasons)
			}
		})
	}
}

func TestDecideStreaks(t *testing.T) {
	p := DefaultPolicy()
	low := ok()
	low.NLUConfidence = 0.2
	oos := ok()
	oos.OutOfScope = true
	fail := ok()
	fail.ProviderFailure = true
	cases := []struct {
		name  string
		turns []parley.Signals
		want  []bool
		last  Reason
	}{
		{"two low turns transfer", []parley.Signals{low, low}, []bool{false, true}, ReasonLowConfidence},
		{"good turn resets the streak", []parley.Signals{low, ok(), low}, []bool{false, false, false}, ""},
		{"two out-of-scope transfer", []parley.Signals{oos, oos}, []bool{false, true}, ReasonOutOfScope},
		{"low then out-of-scope combine", []parley.Signals{low, oos, oos}, []bool{false, false, true}, ReasonOutOfScope},
		{"two provider failures", []parley.Signals{fail, fail}, []bool{false, true}, ReasonProviderFailure},
		{"failure, success, failure", []parley.Signals{fail, ok(), fail}, []bool{false, false, false}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := Replay(tc.turns, p)
			for i, d := range ds {
				if d.Transfer != tc.want[i] {
					t.Fatalf("turn %d: transfer=%v want %v (%+v)", i, d.Transfer, tc.want[i], d)
				}
			}
			if last := ds[len(ds)-1]; tc.last != "" && last.Reasons[0] != tc.last {
				t.Fatalf("last reasons %v, want %s first", last.Reasons, tc.last)
			}
		})
	}
}

// Replaying stored signals gives the decisions that were made live.
func TestReplayMatchesLive(t *testing.T) {
	p := DefaultPolicy()
	turns := []parley.Signals{ok(), {ASRConfidence: 0.2, NLUConfidence: 0.8}, {ASRConfidence: 0.9, NLUConfidence: 0.3, Frustration: 0.3}, {ASRConfidence: 0.9, NLUConfidence: 0.9, Repeats: 1}, {AskedForHuman: true, ASRConfidence: 0.9, NLUConfidence: 0.9}}
	var live []Decision
	var st State
	for _, s := range turns {
		d := Decide(s, st, p)
		st = d.State
		live = append(live, d)
	}
	if got := Replay(turns, p); !reflect.DeepEqual(got, live) {
		t.Fatalf("replay differs:\n%+v\n%+v", got, live)
	}
	if !live[len(live)-1].Transfer || live[2].Transfer != true {
		// turn 2 is the second low-confidence turn in a row plus frustration.
		t.Fatalf("decisions: %+v", live)
	}
}

func TestSilenceNeitherBreaksNorExtendsAStreak(t *testing.T) {
	p := DefaultPolicy()
	silent := parley.Signals{NoInput: true}
	low := ok()
	low.NLUConfidence = 0.1
	if ds := Replay([]parley.Signals{silent, silent, silent}, p); ds[2].Transfer {
		t.Fatalf("silent caller transferred: %+v", ds[2])
	}
	ds := Replay([]parley.Signals{low, silent, low}, p)
	if ds[1].Transfer || !ds[2].Transfer || ds[2].Reasons[0] != ReasonLowConfidence {
		t.Fatalf("low, silence, low: %+v", ds)
	}
	if ds[1].State.LowConfidence != 1 {
		t.Fatalf("silence changed the streak: %+v", ds[1].State)
	}
}
