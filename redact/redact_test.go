package redact_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/redact"
)

func TestStringDefaultPolicy(t *testing.T) {
	r := redact.New(redact.Policy{})
	tests := []struct {
		name, in, want string
	}{
		// Card numbers, typed.
		{"visa plain", "4111111111111111", "[card ••••1111]"},
		{"visa spaced", "my card is 4111 1111 1111 1111 thanks", "my card is [card ••••1111] thanks"},
		{"mastercard dashed", "card: 5500-0000-0000-0004.", "card: [card ••••0004]."},
		{"amex 4-6-5", "3782 822463 10005", "[card ••••0005]"},
		{"visa 13 digits", "try 4222222222222 instead", "try [card ••••2222] instead"},
		{"glued to letters", "ref4111111111111111", "ref[card ••••1111]"},
		{"inside a kept identifier chain", "x1234 4111 1111 1111 1111 5678", "x1234 [card ••••1111] 5678"},
		{"dtmf with hash", "4111111111111111#", "[card ••••1111]#"},
		{"two cards", "4111111111111111 or 5500000000000004", "[card ••••1111] or [card ••••0004]"},
		{"card cue, luhn broken", "card number 4111 1111 1111 1112", "card number [card ••••1112]"},

		// Card numbers, spoken.
		{"spoken visa", "four one one one one one one one one one one one one one one one", "[card ••••1111]"},
		{"spoken with oh and double", "it's five five double oh double oh double oh double oh double oh double oh oh four okay",
			"it's [card ••••0004] okay"},
		{"spoken tens and teens", "forty one eleven eleven eleven eleven eleven eleven eleven", "[card ••••1111]"},
		{"spoken hyphenated tens", "forty-one eleven, eleven eleven, eleven eleven, eleven eleven", "[card ••••1111]"},
		{"spoken commas", "Four, one, one, one. One, one, one, one, one, one, one, one, one, one, one, one.", "[card ••••1111]."},
		{"spoken card cue, misheard", "my card number is four one one one one one one one one one one one one one one two",
			"my card number is [card ••••1112]"},
		{"spoken homophone inside", "four two four two for two four two four two four two four two four two", "[card ••••4242]"},
		{"trailing homophone kept", "one two three four five six to you", "[number] to you"},

		// Security codes and PINs.
		{"cvv typed", "the CVV is 123", "the CVV is [cvv]"},
		{"security code spoken", "security code one two three", "security code [cvv]"},
		{"card verification 4 digits", "card verification: 1234", "card verification: [cvv]"},
		{"pin", "my PIN is 4321", "my PIN is [pin]"},
		{"pin question then answer", "PIN? It's 9876", "PIN? It's [pin]"},
		{"cvc spoken", "cvc is seven seven seven", "cvc is [cvv]"},

		// SSNs and national ids.
		{"ssn", "SSN 123-45-6789 please", "SSN [ssn] please"},
		{"ssn without cue", "it is 078-05-1120", "it is [ssn]"},
		{"ssn spaced", "123 45 6789", "[ssn]"},
		{"ssn cue, plain digits", "social security number 123456789", "social security number [ssn]"},
		{"ssn spoken", "social security number one two three four five six seven eight nine", "social security number [ssn]"},
		{"nino", "NI number QQ123456C.", "NI number [national id]."},
		{"nino spaced", "it's QQ 12 34 56 C", "it's [national id]"},
		{"long id", "passport 123456789", "passport [number ••••6789]"},
		{"six digits", "order 123456", "order [number]"},
		{"spoken six digits", "it's one two three four five six", "it's [number]"},
		{"non-luhn 16 digits", "4111 1111 1111 1112", "[number ••••1112]"},

		// Accounts, sort codes, IBANs.
		{"account cue", "account number 31926819", "account number [account ••••6819]"},
		{"account spoken", "my account is one two three four five six seven eight", "my account is [account ••••5678]"},
		{"sort code", "sort code 12-34-56", "sort code [sort code]"},
		{"sort code digits", "sort code 123456", "sort code [sort code]"},
		{"sort code no cue", "it's 60-16-13", "it's [sort code]"},
		{"iban grouped", "GB82 WEST 1234 5698 7654 32 is mine", "[iban ••••5432] is mine"},
		{"iban plain", "IBAN: DE89370400440532013000", "IBAN: [iban ••••3000]"},
		{"iban lower", "de89370400440532013000", "[iban ••••3000]"},

		// E-mail.
		{"email", "email me at jane.doe+x@example.com.", "email me at [email]."},
		{"email subdomains", "write to john_smith99@mail.example.co.uk please", "write to [email] please"},
		{"email spoken", "it's jane dot doe at example dot com", "it's [email]"},
		{"email spoken typed domain", "john at gmail.com", "[email]"},
		{"email spoken co uk", "sam underscore lee at mail dot co dot uk thanks", "[email] thanks"},

		// Kept: amounts, times, dates, short numbers, identifiers, phones.
		{"amount", "that's $1,234.56 due", "that's $1,234.56 due"},
		{"amount long", "it costs 1234567.89", "it costs 1234567.89"},
		{"pounds", "£1234567 total", "£1234567 total"},
		{"euro spaced", "€ 2500000", "€ 2500000"},
		{"percent", "rate 1234567%", "rate 1234567%"},
		{"time", "at 10:30 or 14:45:00", "at 10:30 or 14:45:00"},
		{"iso date", "on 2024-05-12 we", "on 2024-05-12 we"},
		{"uk date", "on 12-05-2024 we", "on 12-05-2024 we"},
		{"spaced date", "on 5 12 2024 we", "on 5 12 2024 we"},
		{"years", "in 2023 2024 and 1999-2001", "in 2023 2024 and 1999-2001"},
		{"timestamp", "2026-11-25T07:37:04Z", "2026-11-25T07:37:04Z"},
		{"last four", "last four digits 4821", "last four digits 4821"},
		{"card ending", "the card ending in 4821", "the card ending in 4821"},
		{"account ending", "account ending 4821", "account ending 4821"},
		{"five digits", "zip code 90210", "zip code 90210"},
		{"short numbers", "I have 3 kids and 2 dogs, room 101", "I have 3 kids and 2 dogs, room 101"},
		{"twilio sid", "call CA0123456789abcdef0123456789abcdef ended", "call CA0123456789abcdef0123456789abcdef ended"},
		{"uuid", "id 550e8400-e29b-41d4-a716-446655440000", "id 550e8400-e29b-41d4-a716-446655440000"},
		{"order ref", "ref ORD-1234567", "ref ORD-1234567"},
		{"decimal", "pi is 3.14159265", "pi is 3.14159265"},
		{"ip", "from 192.168.100.200", "from 192.168.100.200"},
		{"version", "v1.26.8", "v1.26.8"},
		{"nanp phone kept", "call me on 555-123-4567", "call me on 555-123-4567"},
		{"intl phone kept", "or +44 20 7946 0958", "or +44 20 7946 0958"},
		{"paren phone kept", "(555) 123-4567", "(555) 123-4567"},
		{"uk phone kept", "020 7946 0958", "020 7946 0958"},
		{"words", "I'd like two tickets for one person", "I'd like two tickets for one person"},
		{"three digits no cue", "one two three", "one two three"},
		{"oh interjection", "oh no, one moment", "oh no, one moment"},
		{"year", "nineteen ninety nine", "nineteen ninety nine"},
		{"nine to five", "between nine to five", "between nine to five"},
		{"times read aloud", "from ten thirty to eleven fifteen", "from ten thirty to eleven fifteen"},
		{"list of times", "ten fifteen, ten thirty, eleven forty five", "ten fifteen, ten thirty, eleven forty five"},
		{"year and day", "twenty twenty four, the twenty first", "twenty twenty four, the twenty first"},
		{"pin no digits", "my pin is in the drawer", "my pin is in the drawer"},
		{"at without email", "meet at the office", "meet at the office"},
		{"at sign alone", "5 @ 10 each", "5 @ 10 each"},
		{"postcode", "SW1A 1AA", "SW1A 1AA"},
		{"empty", "", ""},
		{"unicode", "café 😀 résumé", "café 😀 résumé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStringPolicies(t *testing.T) {
	def := redact.DefaultPolicy()
	with := func(f func(*redact.Policy)) redact.Policy {
		p := def
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		policy redact.Policy
		in     string
		want   string
	}{
		{"no last four", with(func(p *redact.Policy) { p.KeepLast4 = false }),
			"4111 1111 1111 1111 and 12345678", "[card] and [number]"},
		{"phones on", with(func(p *redact.Policy) { p.Phones = true }),
			"call +44 20 7946 0958 or (555) 123-4567 or 555-123-4567",
			"call [phone ••••0958] or [phone ••••4567] or [phone ••••4567]"},
		{"phones on short", with(func(p *redact.Policy) { p.Phones = true }), "555-1234", "[phone]"},
		{"national ids off", with(func(p *redact.Policy) { p.NationalIDs = false }),
			"order 1234567, card 4111111111111111, QQ123456C", "order 1234567, card [card ••••1111], QQ123456C"},
		{"national ids off, card in kept chain", with(func(p *redact.Policy) { p.NationalIDs = false }),
			"12 4111 1111 1111 1111 35", "12 [card ••••1111] 35"},
		{"min digits 8", with(func(p *redact.Policy) { p.MinDigits = 8 }),
			"1234567 and 12345678", "1234567 and [number ••••5678]"},
		{"min digits below 3 takes default", with(func(p *redact.Policy) { p.MinDigits = 1 }),
			"12345 and 123456", "12345 and [number]"},
		{"cards off", redact.Policy{Emails: true}, "4111111111111111 a@b.io", "4111111111111111 [email]"},
		{"emails off", with(func(p *redact.Policy) { p.Emails = false }), "a@b.io", "a@b.io"},
		{"ibans off", with(func(p *redact.Policy) { p.IBANs = false; p.NationalIDs = false }),
			"DE89370400440532013000", "DE89370400440532013000"},
		{"security codes off", with(func(p *redact.Policy) { p.SecurityCodes = false }), "cvv 123", "cvv 123"},
		{"ssns off", with(func(p *redact.Policy) { p.SSNs = false; p.NationalIDs = false }), "123-45-6789", "123-45-6789"},
		{"accounts off", with(func(p *redact.Policy) { p.Accounts = false; p.NationalIDs = false }), "sort code 12-34-56", "sort code 12-34-56"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.New(tt.policy).String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	if got := redact.New(redact.Policy{}).Policy(); got != redact.DefaultPolicy() {
		t.Errorf("zero policy = %+v, want DefaultPolicy", got)
	}
	p := redact.DefaultPolicy()
	if p.Phones || !p.KeepLast4 || !p.Cards || p.MinDigits != 6 {
		t.Errorf("DefaultPolicy = %+v", p)
	}
	if got := redact.New(redact.Policy{Cards: true}).Policy().MinDigits; got != redact.DefaultMinDigits {
		t.Errorf("MinDigits = %d", got)
	}
}

func TestStringNoAllocWithoutMatch(t *testing.T) {
	r := redact.New(redact.Policy{})
	for _, s := range []string{
		"Hi, I'd like to check the balance on my account, the one ending 4821, at 10:30 today.",
		"Sure — it was $1,234.56 on 2024-05-12; call id CA0123456789abcdef, contact me at the office.",
	} {
		var out string
		allocs := testing.AllocsPerRun(100, func() { out = r.String(s) })
		if out != s {
			t.Fatalf("unexpected change: %q", out)
		}
		if allocs != 0 {
			t.Errorf("String allocated %.0f times on %q", allocs, s)
		}
	}
}

func TestBytes(t *testing.T) {
	r := redact.New(redact.Policy{})
	in := []byte("no numbers here")
	if out := r.Bytes(in); &out[0] != &in[0] {
		t.Error("Bytes copied an unchanged slice")
	}
	if got := string(r.Bytes([]byte("pin 1234"))); got != "pin [pin]" {
		t.Errorf("Bytes = %q", got)
	}
	if got := r.Bytes(nil); got != nil {
		t.Errorf("Bytes(nil) = %v", got)
	}
}

func TestTurnAndCall(t *testing.T) {
	r := redact.New(redact.Policy{})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	turn := parley.Turn{
		CallID: "CA123", Seq: 3, Speaker: parley.SpeakerCaller,
		Text:     "my card is four one one one one one one one one one one one one one one one",
		Intended: "Thanks, I have 4111 1111 1111 1111.",
		DTMF:     "5500000000000004#",
		Start:    now, End: now.Add(time.Second), EndOfSpeech: now, FirstAudio: now.Add(2 * time.Second),
		Signals: &parley.Signals{Intent: "payment", ASRConfidence: 0.9},
	}
	got := r.Turn(turn)
	want := turn
	want.Text = "my card is [card ••••1111]"
	want.Intended = "Thanks, I have [card ••••1111]."
	want.DTMF = "[card ••••0004]#"
	if got != want {
		t.Errorf("Turn =\n%+v\nwant\n%+v", got, want)
	}

	clean := parley.Turn{Seq: 1, Speaker: parley.SpeakerAI, Text: "How can I help?"}
	call := parley.Call{ID: "CA123", From: "+441632960001", Turns: []parley.Turn{clean, turn}}
	rc := r.Call(call)
	if rc.From != call.From || rc.Turns[0] != clean || rc.Turns[1] != want {
		t.Errorf("Call = %+v", rc)
	}
	if call.Turns[1].Text != turn.Text {
		t.Error("Call modified its argument's turns")
	}
	unchanged := parley.Call{Turns: []parley.Turn{clean}}
	if rc := r.Call(unchanged); &rc.Turns[0] != &unchanged.Turns[0] {
		t.Error("Call copied turns that did not change")
	}
}

// TestStringLongInputs makes sure very long digit and word runs are
// handled in one pass (a quadratic scan would make this test crawl).
func TestStringLongInputs(t *testing.T) {
	r := redact.New(redact.Policy{})
	long := strings.Repeat("1 ", 50000)
	if got := r.String(long); !strings.HasPrefix(got, "[number ••••1111]") {
		t.Errorf("long chain: %.40q", got)
	}
	words := strings.Repeat("one ", 50000)
	if got := r.String(words); !strings.HasPrefix(got, "[number ••••1111]") {
		t.Errorf("long spoken run: %.40q", got)
	}
	noIDs := redact.DefaultPolicy()
	noIDs.NationalIDs = false
	if got := redact.New(noIDs).String(words); got != words {
		t.Errorf("long spoken run without NationalIDs changed: %.40q", got)
	}
	text := strings.Repeat("the quick brown fox at 10:30 ", 10000)
	if got := r.String(text); got != text {
		t.Error("plain text changed")
	}
}

func TestDialogueCarriesTheQuestion(t *testing.T) {
	r := redact.New(redact.Policy{})
	ai := func(text string) parley.Turn { return parley.Turn{Speaker: parley.SpeakerAI, Text: text} }
	caller := func(text, dtmf string) parley.Turn {
		return parley.Turn{Speaker: parley.SpeakerCaller, Text: text, DTMF: dtmf}
	}
	steps := []struct {
		turn     parley.Turn
		wantText string
		wantDTMF string
	}{
		{ai("What's the security code on the back of your card?"), "What's the security code on the back of your card?", ""},
		{caller("one two three", ""), "[cvv]", ""},
		{caller("sorry, it's 567", ""), "sorry, it's [cvv]", ""},
		{ai("Please enter your PIN."), "Please enter your PIN.", ""},
		{caller("", "1234#"), "", "[pin]#"},
		{caller("my dog is 7 and 1234", ""), "my dog is 7 and 1234", ""},
		{ai("Thanks. What's the long number on your card?"), "Thanks. What's the long number on your card?", ""},
		{caller("four one one one one one one one one one one one one one one two", ""), "[card ••••1112]", ""},
		{ai("Thanks. How else can I help?"), "Thanks. How else can I help?", ""},
		{caller("room 123", "123"), "room 123", "123"},
	}
	d := r.Dialogue()
	for i, st := range steps {
		got := d.Turn(st.turn)
		if got.Text != st.wantText || got.DTMF != st.wantDTMF {
			t.Errorf("step %d: Turn(%q, %q) = %q, %q; want %q, %q", i, st.turn.Text, st.turn.DTMF, got.Text, got.DTMF, st.wantText, st.wantDTMF)
		}
	}
	// Without the dialogue, the answers alone are kept.
	if got := r.Turn(caller("one two three", "1234")); got.Text != "one two three" || got.DTMF != "1234" {
		t.Errorf("Turn without context = %q, %q", got.Text, got.DTMF)
	}
}
