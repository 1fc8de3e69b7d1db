// Package redact removes personal data — card numbers, account numbers and
// sort codes, IBANs, social security and national id numbers, security
// codes, e-mail addresses and (optionally) phone numbers — from what parley
// keeps or sends elsewhere: stored transcripts, agent briefs, prompts to an
// LLM and log lines.
//
// Callers read numbers aloud, so besides typed digits ("4111 1111 1111
// 1111") the recognizer's words are understood too ("four one one one …",
// "oh" for zero, "double five", "forty one"). Card numbers keep their last
// four digits by default ("[card ••••1111]") because an agent needs to say
// "the card ending in 1111"; short numbers, amounts, times and dates are
// left alone.
//
// The scanner is one left-to-right pass over the text with no regular
// expressions; when nothing matches, Redactor.String returns its input
// without allocating.
package redact

import (
	"github.com/parley-ai/parley"
)

// Policy says what a Redactor removes. The zero Policy means DefaultPolicy;
// a Policy with any field set is used as given (MinDigits below 3 becomes
// DefaultMinDigits).
type Policy struct {
	// Cards redacts payment card numbers: 13–19 digits passing the Luhn
	// check (typed or spoken), and 12–19 digits right after a cue such as
	// "card number" even when a misheard digit breaks the check.
	Cards bool `yaml:"cards"`
	// SecurityCodes redacts 3–4 digit card security codes after "security
	// code", "CVV", "CVC" …, and 4–8 digit PINs after "PIN".
	SecurityCodes bool `yaml:"security_codes"`
	// Accounts redacts bank account numbers after "account" cues and sort
	// codes (12-34-56, or six digits after "sort code").
	Accounts bool `yaml:"accounts"`
	// IBANs redacts international bank account numbers (mod-97 checked).
	IBANs bool `yaml:"ibans"`
	// SSNs redacts US social security numbers (123-45-6789, or nine digits
	// after "social security"/"SSN").
	SSNs bool `yaml:"ssns"`
	// NationalIDs redacts UK National Insurance numbers (QQ123456C) and any
	// other digit string of MinDigits or more digits (typed or spoken) that
	// is not an amount, a date, part of an identifier such as a call id, or
	// (with Phones off) a phone number.
	NationalIDs bool `yaml:"national_ids"`
	// MinDigits is the shortest digit string NationalIDs redacts (6).
	MinDigits int `yaml:"min_digits"`
	// Emails redacts e-mail addresses, typed or spoken ("jane dot doe at
	// example dot com").
	Emails bool `yaml:"emails"`
	// Phones redacts phone numbers. It is off by default: the caller's
	// number is kept as call metadata anyway and agents need call-back
	// numbers. With it off, phone-shaped numbers (+44 20 7946 0958,
	// 555-123-4567, (555) 123-4567, 020 7946 0958) are exempt from
	// NationalIDs; digits read aloud cannot be told apart and are redacted.
	Phones bool `yaml:"phones"`
	// KeepLast4 keeps the last four digits of card, account, IBAN, phone
	// and long numbers of 8 digits or more ("[card ••••4242]").
	KeepLast4 bool `yaml:"keep_last4"`
}

// DefaultMinDigits is the shortest digit string redacted as a national id
// or account-like number.
const DefaultMinDigits = 6

// DefaultPolicy redacts everything except phone numbers, keeping last fours.
func DefaultPolicy() Policy {
	return Policy{
		Cards: true, SecurityCodes: true, Accounts: true, IBANs: true, SSNs: true,
		NationalIDs: true, MinDigits: DefaultMinDigits, Emails: true, KeepLast4: true,
	}
}

// Redactor applies a Policy. It is immutable and safe for concurrent use.
type Redactor struct {
	p Policy
}

// New returns a Redactor for p (the zero Policy means DefaultPolicy).
func New(p Policy) *Redactor {
	if p == (Policy{}) {
		p = DefaultPolicy()
	}
	if p.MinDigits < 3 {
		p.MinDigits = DefaultMinDigits
	}
	return &Redactor{p: p}
}

// Policy returns the policy in effect (with defaults applied).
func (r *Redactor) Policy() Policy { return r.p }

// String returns s with personal data replaced by bracketed labels such as
// "[card ••••4242]", "[ssn]" or "[email]". When nothing matches it returns
// s itself and does not allocate.
func (r *Redactor) String(s string) string {
	b, changed := r.appendRedacted(nil, s)
	if !changed {
		return s
	}
	return string(b)
}

// Bytes is String for a byte slice; it returns b itself when nothing
// matches.
func (r *Redactor) Bytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	out, changed := r.appendRedacted(nil, bytesToString(b))
	if !changed {
		return b
	}
	return out
}

// Turn returns t with its words (Text, Intended) and keypad digits (DTMF)
// redacted; everything else is kept.
func (r *Redactor) Turn(t parley.Turn) parley.Turn {
	t.Text = r.String(t.Text)
	t.Intended = r.String(t.Intended)
	t.DTMF = r.String(t.DTMF)
	return t
}

// Call returns c with every turn redacted (the caller's number in From is
// call metadata and is kept). The turns slice is copied only when a turn
// changed.
func (r *Redactor) Call(c parley.Call) parley.Call {
	var turns []parley.Turn
	for i, t := range c.Turns {
		rt := r.Turn(t)
		if turns == nil && (rt.Text != t.Text || rt.Intended != t.Intended || rt.DTMF != t.DTMF) {
			turns = make([]parley.Turn, len(c.Turns))
			copy(turns, c.Turns)
		}
		if turns != nil {
			turns[i] = rt
		}
	}
	if turns != nil {
		c.Turns = turns
	}
	return c
}

// Dialogue redacts the turns of one call in order, carrying what the AI or
// agent just asked for into the caller's answer: after "What's the
// security code on the back?", a reply of "one two three" is a security
// code, which on its own it would not be recognized as. A Dialogue is not
// safe for concurrent use; use one per call, fed in turn order.
type Dialogue struct {
	r   *Redactor
	ctx cue
}

// Dialogue starts redacting one call's turns.
func (r *Redactor) Dialogue() *Dialogue { return &Dialogue{r: r} }

// Turn redacts t like Redactor.Turn; a caller turn's leading number is
// read in the light of the previous AI or agent turn's question.
func (d *Dialogue) Turn(t parley.Turn) parley.Turn {
	if t.Speaker != parley.SpeakerCaller {
		d.ctx = lastCue(t.Text)
		return d.r.Turn(t)
	}
	t.Text = d.r.stringCue(t.Text, d.ctx)
	t.Intended = d.r.String(t.Intended)
	t.DTMF = d.r.stringCue(t.DTMF, d.ctx)
	return t
}

func (r *Redactor) stringCue(s string, ctx cue) string {
	b, changed := r.appendRedactedCue(nil, s, ctx)
	if !changed {
		return s
	}
	return string(b)
}
