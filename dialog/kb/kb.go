// Package kb is parley's embedded offline dialog engine: a knowledge base of
// intents written for speech (examples, a spoken answer, slots to collect,
// follow-up questions, routing hints), an intent classifier trained from it
// (dialog/kb/nlu) and a multi-turn conversation that fills slots from speech
// or keypad digits, confirms when unsure, repeats, goes back, notices when it
// is going round in circles and says when a person is needed.
//
// The knowledge base is YAML; configs/kb/README.md documents the format and
// configs/kb holds a complete sample for a card and payments company.
//
//	k, err := kb.Load("configs/kb")      // or kb.LoadFS(embedded)
//	e, err := kb.New(k, kb.Options{})    // trains the classifier, about a second
//	conv := e.NewConversation(call)      // one per call
//
// Engine is a dialog.Responder. Its conversations also implement
// interface{ Frustration() float64 } (a 0..1 score from an embedded lexicon,
// see Frustration), which the dialog session reads for parley.Signals.
package kb

import (
	"strings"
)

// SlotType says how a slot's value is taken from what the caller says or keys.
type SlotType string

// Slot types.
const (
	SlotDigits SlotType = "digits" // a digit string of a fixed length, spoken or keyed
	SlotYesNo  SlotType = "yesno"  // a confirmation, stored as "yes" or "no"
	SlotFree   SlotType = "free"   // the caller's words as recognized
)

// Action marks the control intents the conversation handles itself rather
// than by speaking an answer: a bare "yes", "repeat that", "go back", ...
type Action string

// Control actions. An intent has at most one action and each action belongs
// to at most one intent.
const (
	ActionNone       Action = ""
	ActionYes        Action = "yes"        // agreement; answers the pending question
	ActionNo         Action = "no"         // refusal; answers the pending question
	ActionRepeat     Action = "repeat"     // say the last reply again, in full
	ActionBack       Action = "back"       // return to the previous question
	ActionAgent      Action = "agent"      // the caller asks for a person
	ActionCorrection Action = "correction" // "that's not what I asked"
)

// actions lists the valid actions in documentation order.
var actions = []Action{ActionYes, ActionNo, ActionRepeat, ActionBack, ActionAgent, ActionCorrection}

// KB is a loaded and validated knowledge base.
type KB struct {
	// Company holds the persona's fixed phrases.
	Company Company
	// Intents in file order (files sorted by name).
	Intents []*Intent
	// OutOfScope holds example utterances the engine must not try to answer
	// (small talk, other businesses); they train the classifier's
	// out-of-scope class.
	OutOfScope []string

	byName map[string]*Intent
}

// Intent returns the intent called name, or nil.
func (k *KB) Intent(name string) *Intent { return k.byName[name] }

// Company is the persona: the phrases the engine says around the answers.
// Texts are spoken as written, so they are short sentences without markdown.
type Company struct {
	Name     string `yaml:"name"`     // company name, for people reading logs and consoles
	Greeting string `yaml:"greeting"` // said when the call connects
	Goodbye  string `yaml:"goodbye"`  // said before the engine ends the call
	// Fallback phrases are said, in turn, when the engine did not understand.
	Fallback []string `yaml:"fallback"`
	// Reprompt phrases are said, in turn, when the caller was silent; the
	// pending question follows them.
	Reprompt []string `yaml:"reprompt"`
	// SilenceGoodbye ends the call after the second silence in a row.
	SilenceGoodbye string `yaml:"silence_goodbye"`
	// Confirm asks about an uncertain guess; {title} is the intent's title.
	Confirm string `yaml:"confirm"`
	// ConfirmDigits reads back spoken digits for a slot with confirm set;
	// {digits} is the value, spoken digit by digit.
	ConfirmDigits string `yaml:"confirm_digits"`
	// Sorry apologises before a correction ("Sorry about that.").
	Sorry string `yaml:"sorry"`
	// Rephrase asks the caller to say it another way (after a "no" to Confirm).
	Rephrase string `yaml:"rephrase"`
	// OutOfScope is the polite answer to requests outside the knowledge base.
	OutOfScope string `yaml:"out_of_scope"`
	// AnythingElse is asked after an answer that has no follow-up question.
	AnythingElse string `yaml:"anything_else"`
	// AskMore invites the next request after a "yes" to AnythingElse.
	AskMore string `yaml:"ask_more"`
	// Back is said before the previous question is asked again.
	Back string `yaml:"back"`
	// NothingToRepeat is said when the caller asks to repeat before the
	// engine said anything worth repeating, or to go back from the start.
	NothingToRepeat string `yaml:"nothing_to_repeat"`
	// Transfer is said when the caller is handed to a colleague
	// (Options.HumansAvailable).
	Transfer string `yaml:"transfer"`
	// NoHuman is the honest answer when a person is needed but none can take
	// the call on this line.
	NoHuman string `yaml:"no_human"`
}

// companyDefaults fills optional phrases left out of the knowledge base.
var companyDefaults = Company{
	SilenceGoodbye:  "I still can't hear you, so I'll end the call now. Please call back any time. Goodbye.",
	Confirm:         "Did you mean {title}?",
	ConfirmDigits:   "I heard {digits}. Is that right?",
	Sorry:           "Sorry about that.",
	Rephrase:        "Sorry about that. Could you say it another way?",
	OutOfScope:      "Sorry, that's not something I can help with on this line.",
	AnythingElse:    "Is there anything else I can help you with?",
	AskMore:         "Sure. What else can I help you with?",
	Back:            "Okay, let's go back.",
	NothingToRepeat: "What can I help you with?",
}

// Intent is one thing callers ask for and how the engine answers it.
type Intent struct {
	Name  string `yaml:"name"`  // identifier: lower case letters, digits and underscores
	Title string `yaml:"title"` // spoken name for "Did you mean ...?", e.g. "checking your balance"
	Skill string `yaml:"skill"` // routing skill for a human colleague: cards, payments, fraud, ...
	// Examples are utterances phrased the way callers say them; they train the classifier.
	Examples []string `yaml:"examples"`
	// Answer is spoken once every slot is filled; {slot} is replaced by the
	// slot's value (digits are spoken one by one). It may end with one open
	// question ("Hello. What can I help you with?"); otherwise the engine
	// asks the follow-up or the company's anything_else question after it.
	Answer string `yaml:"answer"`
	// Slots are collected, in order, before the answer.
	Slots []Slot `yaml:"slots"`
	// FollowUp is asked after the answer.
	FollowUp *FollowUp `yaml:"followup"`
	// Human marks intents that must go to a person (fraud, complaints, bereavement).
	Human bool `yaml:"human"`
	// End ends the call after the answer (goodbye).
	End bool `yaml:"end"`
	// Action makes this a control intent handled by the conversation itself.
	Action Action `yaml:"action"`

	// Source is where the intent is defined, "file:line", for error messages.
	Source string `yaml:"-"`
}

// DisplayTitle is the spoken name of the intent: Title, or the name with
// underscores as spaces.
func (in *Intent) DisplayTitle() string {
	if in.Title != "" {
		return in.Title
	}
	return strings.ReplaceAll(in.Name, "_", " ")
}

// Slot is one value the engine collects before it answers.
type Slot struct {
	Name   string   `yaml:"name"`   // identifier used as {name} in answers
	Prompt string   `yaml:"prompt"` // the question that asks for it
	Type   SlotType `yaml:"type"`   // digits, yesno or free
	Length int      `yaml:"length"` // digits slots: the exact number of digits
	// Retry is said when the answer did not fit (wrong number of digits);
	// by default the prompt is repeated.
	Retry string `yaml:"retry"`
	// Confirm reads a digits value back and asks the caller to confirm it.
	Confirm bool `yaml:"confirm"`
}

// FollowUp is a yes/no question asked after an answer, leading to another
// intent on either reply.
type FollowUp struct {
	Question string `yaml:"question"` // a yes/no question
	Yes      string `yaml:"yes"`      // intent answered on "yes"; empty: ask what else
	No       string `yaml:"no"`       // intent answered on "no"; empty: ask what else
}
