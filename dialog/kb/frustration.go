package kb

import (
	"strings"
)

// frustrationCue is one lexicon entry: a word or phrase and how strongly it
// signals an annoyed caller.
type frustrationCue struct {
	phrase string
	weight float64
}

// frustrationLexicon holds the cues Frustration looks for, matched on whole
// words. Weights are the probability that the cue alone means the caller is
// frustrated; several cues combine as independent evidence.
var frustrationLexicon = []frustrationCue{
	// Swearing.
	{"fuck", 0.8}, {"fucking", 0.8}, {"shit", 0.7}, {"bullshit", 0.8}, {"damn", 0.5}, {"dammit", 0.6},
	{"goddamn", 0.6}, {"bloody", 0.5}, {"crap", 0.5}, {"hell", 0.4}, {"piss", 0.6}, {"pissed", 0.7},
	{"bastard", 0.8}, {"wtf", 0.7}, {"christ", 0.4}, {"jesus", 0.3},
	// Exasperation.
	{"this is ridiculous", 0.6}, {"ridiculous", 0.45}, {"unbelievable", 0.45}, {"absurd", 0.45},
	{"useless", 0.55}, {"stupid", 0.5}, {"pointless", 0.5}, {"waste of time", 0.6}, {"wasting my time", 0.65},
	{"terrible", 0.4}, {"awful", 0.4}, {"horrible", 0.4}, {"pathetic", 0.55}, {"joke", 0.3},
	{"fed up", 0.55}, {"sick of", 0.55}, {"sick and tired", 0.7}, {"annoying", 0.45}, {"annoyed", 0.5},
	{"frustrating", 0.5}, {"frustrated", 0.55}, {"angry", 0.5}, {"furious", 0.65}, {"seriously", 0.25},
	{"come on", 0.3}, {"for gods sake", 0.6}, {"oh my god", 0.3}, {"give me a break", 0.45},
	// Being misunderstood.
	{"i already told you", 0.6}, {"i already said", 0.55}, {"i just told you", 0.55}, {"i just said", 0.45},
	{"i told you", 0.45}, {"i said", 0.25}, {"listen to me", 0.5}, {"are you listening", 0.5},
	{"you are not listening", 0.6}, {"youre not listening", 0.6}, {"you dont understand", 0.45},
	{"not what i asked", 0.3}, {"not what i said", 0.3}, {"thats not what i", 0.2}, {"for the last time", 0.6},
	{"how many times", 0.55}, {"again", 0.1}, {"still", 0.1}, {"nobody helps", 0.5}, {"no one helps", 0.5},
	{"stupid machine", 0.7}, {"stupid robot", 0.7}, {"talking to a machine", 0.4}, {"real person", 0.2},
}

// noRunWeight is the weight of each extra "no" in a row, within the
// utterance ("no no no") or across consecutive caller turns.
const noRunWeight = 0.2

// sameAgainWeight is the weight of the caller repeating their previous
// utterance word for word.
const sameAgainWeight = 0.3

// Frustration scores how annoyed a caller sounds, from 0 (calm) to 1, from
// the words of their latest utterance and their earlier utterances in
// history (oldest first): swearing, exasperation ("this is ridiculous"),
// signs of not being understood ("I already told you"), a run of "no"s and
// saying the same thing again. Cues combine as independent evidence
// (1 - Π(1 - w)), so the score grows with each cue but never passes 1.
func Frustration(text string, history ...string) float64 {
	ws := words(text)
	if len(ws) == 0 {
		return 0
	}
	joined := " " + strings.Join(ws, " ") + " "
	calm := 1.0
	for _, c := range frustrationLexicon {
		if strings.Contains(joined, " "+c.phrase+" ") {
			calm *= 1 - c.weight
		}
	}
	// A run of "no": extra ones inside this utterance, and previous turns
	// that were a bare "no" while this one starts with "no" too.
	nos := 0
	for _, w := range ws {
		if w == "no" || w == "nope" {
			nos++
		}
	}
	if ws[0] == "no" || ws[0] == "nope" {
		for i := len(history) - 1; i >= 0; i-- {
			if parseYesNo(history[i]) != answerNo {
				break
			}
			nos++
		}
	}
	for ; nos > 1; nos-- {
		calm *= 1 - noRunWeight
	}
	if len(history) > 0 && len(ws) > 1 && strings.Join(words(history[len(history)-1]), " ") == strings.Join(ws, " ") {
		calm *= 1 - sameAgainWeight
	}
	return 1 - calm
}
