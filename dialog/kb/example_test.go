package kb_test

import (
	"context"
	"fmt"
	"log"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/kb"
	"github.com/parley-ai/parley/dialog/kb/nlu"
)

// A caller asks for their balance and keys in the last four digits.
func ExampleEngine() {
	k, err := kb.Load("../../configs/kb")
	if err != nil {
		log.Fatal(err)
	}
	e, err := kb.New(k, kb.Options{NLU: nlu.Options{Seed: 1}})
	if err != nil {
		log.Fatal(err)
	}
	conv := e.NewConversation(dialog.CallContext{CallID: "CA1"})
	say := func(s string) error { fmt.Println("AI:", s); return nil }
	ctx := context.Background()
	if err := conv.Greeting(ctx, say); err != nil {
		log.Fatal(err)
	}
	for _, in := range []dialog.Input{
		{Kind: dialog.InputSpeech, Text: "what's my balance", Confidence: 0.9},
		{Kind: dialog.InputDTMF, Digits: "4821#"},
	} {
		res, err := conv.Respond(ctx, in, say)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("-- intent %s, expect %s, slots %v\n", res.Intent, res.Expect, res.Slots)
	}
	// Output:
	// AI: Thanks for calling Northwind Pay.
	// AI: I'm the automated assistant.
	// AI: In a few words, how can I help you today?
	// AI: Sure.
	// AI: Please say or key in the last four digits of your card.
	// -- intent balance, expect digits, slots map[]
	// AI: Thanks.
	// AI: For your security, I can't read out balances on this line.
	// AI: The balance of the card ending in 4 8 2 1 is at the top of the home screen in the Northwind Pay app.
	// AI: Payments still pending are already taken off the balance you see there.
	// AI: Is there anything else I can help you with?
	// -- intent balance, expect open, slots map[last4:4821]
}
