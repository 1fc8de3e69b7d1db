package media_test

import (
	"fmt"

	"github.com/parley-ai/parley/media"
)

// A Twilio media frame is 160 mu-law bytes; decode it, upsample it for a
// 16 kHz recognizer, and encode a reply frame back.
func Example() {
	payload := make([]byte, media.FrameSamples(8000))
	for i := range payload {
		payload[i] = 0xFF // mu-law silence
	}
	pcm := make([]int16, len(payload))
	media.MulawDecode(pcm, payload)

	up := media.NewResampler(8000, 16000)
	wide := up.Process(nil, pcm)

	reply := make([]byte, len(pcm))
	media.MulawEncode(reply, pcm)
	fmt.Println(len(pcm), len(wide) > 0, reply[0] == 0xFF)
	// Output: 160 true true
}

func ExampleLinearToMulaw() {
	fmt.Printf("0x%02X 0x%02X 0x%02X\n", media.LinearToMulaw(0), media.LinearToMulaw(-4), media.LinearToMulaw(32767))
	fmt.Println(media.MulawToLinear(0x80), media.AlawToLinear(0xD5))
	// Output:
	// 0xFF 0x7F 0x80
	// 32124 8
}

func ExampleResample() {
	tts := make([]int16, 24000) // one second at 24 kHz
	phone := media.Resample(tts, 24000, 8000)
	fmt.Println(len(phone))
	// Output: 8000
}

func ExampleEndpointer() {
	e := media.NewEndpointer(media.EndpointConfig{Rate: 8000})
	frame := make([]int16, media.FrameSamples(8000))
	for range 50 {
		if ev := e.Push(frame); ev != media.EndpointNone {
			fmt.Println(ev)
		}
	}
	fmt.Println(e.InSpeech())
	// Output: false
}
