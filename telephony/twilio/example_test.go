package twilio_test

import (
	"context"
	"fmt"
	"net"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/telephony/twilio"
)

// digits is a LegHandler that reports the caller's keys.
type digits chan byte

func (digits) OnAudio([]int16)     {}
func (d digits) OnDTMF(digit byte) { d <- digit }
func (digits) OnMark(string)       {}

// A parley server answering Twilio calls, and a simulated caller pressing
// a key: the way `parley call` and the end-to-end tests drive the server.
func Example() {
	const token = "0123456789abcdef0123456789abcdef"
	keys := make(digits, 1)
	srv, err := twilio.NewServer(twilio.Config{PublicURL: "https://parley.example.com", AuthToken: token},
		func(ctx context.Context, leg *twilio.Leg) {
			_ = leg.Run(ctx, keys) // until the caller hangs up
		}, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	defer func() { srv.Close(); _ = app.Shutdown(); <-served }()

	d := &twilio.Dialer{
		ServerURL: "http://" + ln.Addr().String(),
		PublicURL: "https://parley.example.com", // what the server signs against
		AuthToken: token,
		From:      "+14155550100",
		To:        "+15005550006",
	}
	call, err := d.Dial(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("stream:", call.TwiML.Stream().URL)
	_ = call.SendDTMF('7')
	fmt.Printf("server got key %c\n", <-keys)
	_ = call.Hangup()
	// Output:
	// stream: wss://parley.example.com/twilio/media
	// server got key 7
}
