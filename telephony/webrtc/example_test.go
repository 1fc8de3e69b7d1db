package webrtc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/telephony/webrtc"
)

// digits is a LegHandler that hangs up after the first keypad digit.
type digits struct {
	leg  *webrtc.Leg
	done chan byte
}

func (d *digits) OnAudio([]int16) {}
func (d *digits) OnMark(string)   {}
func (d *digits) OnDTMF(digit byte) {
	_ = d.leg.Hangup(context.Background(), "got a digit")
	d.done <- digit
}

// A browser call end to end: the server answers the offer, the handler
// runs the leg, a keypad digit arrives over the data channel. A pion peer
// plays the browser here; a real page does the same from /call.
func Example() {
	got := make(chan byte, 1)
	srv, err := webrtc.NewServer(webrtc.Config{Peer: mwebrtc.Config{LoopbackOnly: true}},
		func(ctx context.Context, leg *webrtc.Leg) {
			info := leg.Info()
			fmt.Println("call on", info.Channel, "from", info.From, "at", leg.SampleRate(), "Hz")
			_ = leg.Run(ctx, &digits{leg: leg, done: got})
		}, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	defer func() { srv.Close(); _ = app.Shutdown(); <-served }()

	browser, offer, err := mwebrtc.NewOffer(mwebrtc.Config{LoopbackOnly: true}, webrtc.DTMFLabel, webrtc.ControlLabel)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = browser.Close() }()
	body, _ := json.Marshal(map[string]string{"type": "offer", "sdp": offer})
	resp, err := http.Post("http://"+ln.Addr().String()+webrtc.CallPath, "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	var answer struct{ SDP string }
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	_ = resp.Body.Close()
	if err := browser.SetAnswer(answer.SDP); err != nil {
		fmt.Println(err)
		return
	}
	if err := browser.WaitChannel(context.Background(), webrtc.DTMFLabel); err != nil {
		fmt.Println(err)
		return
	}
	_ = browser.SendText(webrtc.DTMFLabel, "7")
	fmt.Printf("parley got digit %c\n", <-got)
	<-browser.Done()
	fmt.Println("browser sees parley close the call:", errors.Is(browser.Err(), mwebrtc.ErrRemoteClosed))
	// Output:
	// call on webrtc from browser:127.0.0.1 at 8000 Hz
	// parley got digit 7
	// browser sees parley close the call: true
}
