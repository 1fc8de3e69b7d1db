package redact_test

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/redact"
)

func ExampleRedactor_String() {
	r := redact.New(redact.DefaultPolicy())
	fmt.Println(r.String("my card is 4111 1111 1111 1111, security code 123"))
	fmt.Println(r.String("it's four one one one one one one one one one one one one one one one"))
	fmt.Println(r.String("the card ending in 4821, $1,234.56 on 2024-05-12 at 10:30"))
	// Output:
	// my card is [card ••••1111], security code [cvv]
	// it's [card ••••1111]
	// the card ending in 4821, $1,234.56 on 2024-05-12 at 10:30
}

func ExampleRedactor_LogWriter() {
	r := redact.New(redact.Policy{})
	log := zerolog.New(r.LogWriter(os.Stdout))
	log.Info().Str("call_id", "CA42").Str("text", "my email is jane@example.com").Msg("turn")
	// Output:
	// {"level":"info","call_id":"CA42","text":"my email is [email]","message":"turn"}
}

func ExampleDialogue() {
	d := redact.New(redact.Policy{}).Dialogue()
	d.Turn(parley.Turn{Speaker: parley.SpeakerAI, Text: "What's the security code on the back of the card?"})
	fmt.Println(d.Turn(parley.Turn{Speaker: parley.SpeakerCaller, Text: "one two three"}).Text)
	// Output:
	// [cvv]
}
