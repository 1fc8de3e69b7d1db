package kb

import (
	"strings"
	"testing"
)

func TestSuggestClustersUnansweredRequests(t *testing.T) {
	e := engine(t)
	us := []Utterance{
		// A topic the sample knowledge base does not have: travel insurance.
		{Text: "does my card come with travel insurance", CallID: "c1"},
		{Text: "is travel insurance included with the card", CallID: "c2"},
		{Text: "I need to claim on my travel insurance", CallID: "c3"},
		{Text: "what does the travel insurance cover", CallID: "c4"},
		// Another: crypto.
		{Text: "can I buy bitcoin with my account", CallID: "c5"},
		{Text: "do you support bitcoin purchases", CallID: "c6"},
		{Text: "how do I sell my bitcoin", CallID: "c7"},
		// New wording of an existing intent, marked by a supervisor.
		{Text: "the plastic never turned up in the post", CallID: "c8", Intent: "card_not_arrived"},
		// A one-off.
		{Text: "what is the weather like in lisbon", CallID: "c9"},
		// Duplicates and existing examples are dropped.
		{Text: "Does my card come with travel insurance?", CallID: "c10"},
		{Text: "someone has used my card without permission", CallID: "c11"},
	}
	s := Suggest(e, us, SuggestOptions{})
	if got := s.Examples["card_not_arrived"]; len(got) != 1 || got[0] != "the plastic never turned up in the post" {
		t.Fatalf("labelled example: %v", s.Examples)
	}
	if len(s.NewIntents) != 2 {
		t.Fatalf("new intents %+v", s.NewIntents)
	}
	ins := s.NewIntents[0]
	if !strings.Contains(ins.Name, "insurance") || len(ins.Examples) != 4 || ins.Calls != 4 {
		t.Fatalf("first cluster %+v", ins)
	}
	if btc := s.NewIntents[1]; !strings.Contains(btc.Name, "bitcoin") || len(btc.Examples) != 3 {
		t.Fatalf("second cluster %+v", btc)
	}
	if len(s.Unclustered) != 1 || !strings.Contains(s.Unclustered[0], "weather") {
		t.Fatalf("unclustered %v", s.Unclustered)
	}
	for _, texts := range s.Examples {
		for _, x := range texts {
			if strings.Contains(x, "without permission") {
				t.Fatal("an existing example was suggested again")
			}
		}
	}
}
