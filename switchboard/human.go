package switchboard

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// Prompts are what the caller hears on the way to a human.
type Prompts struct {
	// Transfer is said when the switchboard transfers a call the AI's own
	// reply did not already announce.
	Transfer string
	// Position is said while waiting: %d is the caller's place in line and
	// %s the estimated wait ("about 2 minutes").
	Position string
	// CallbackOffer follows Position.
	CallbackOffer string
	// Callback confirms a callback request before hanging up.
	Callback string
	// Voicemail invites a message when nobody can take the call; the beep follows.
	Voicemail string
	// VoicemailThanks ends the call after a message.
	VoicemailThanks string
	// AgentLost is said when the agent's connection drops mid-call.
	AgentLost string
	// AssistOffer tells a waiting caller the AI still answers questions
	// (QueueOptions.Assist); StillWaiting follows each answer, and is the
	// reply to anything the AI cannot answer while they wait.
	AssistOffer  string
	StillWaiting string
}

// DefaultPrompts are the prompts used when Options.Prompts leaves one empty.
var DefaultPrompts = Prompts{
	Transfer:        "I'm connecting you to a colleague now. They'll have our conversation in front of them.",
	Position:        "You're number %d in line. The wait is %s.",
	CallbackOffer:   "If you'd rather we call you back, press 1 at any time.",
	Callback:        "Thank you. A colleague will call you back on this number as soon as possible. Goodbye.",
	Voicemail:       "I'm sorry, none of our colleagues can take your call right now. Please leave a message after the tone, with your name and what you need, then press the hash key or simply hang up.",
	VoicemailThanks: "Thank you. We've got your message and a colleague will call you back. Goodbye.",
	AgentLost:       "I'm sorry, we lost the line to your colleague. I'm putting you back at the front of the queue.",
	AssistOffer:     "While you wait, you can still ask me a question.",
	StillWaiting:    "You're still in line for a colleague.",
}

func (p Prompts) withDefaults() Prompts {
	d := DefaultPrompts
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&p.Transfer, d.Transfer)
	set(&p.Position, d.Position)
	set(&p.CallbackOffer, d.CallbackOffer)
	set(&p.Callback, d.Callback)
	set(&p.Voicemail, d.Voicemail)
	set(&p.VoicemailThanks, d.VoicemailThanks)
	set(&p.AgentLost, d.AgentLost)
	set(&p.AssistOffer, d.AssistOffer)
	set(&p.StillWaiting, d.StillWaiting)
	return p
}

// QueueOptions tune the wait for a human.
type QueueOptions struct {
	// MaxWait is how long a caller waits for an agent before being offered
	// voicemail (2 min).
	MaxWait time.Duration
	// AnnounceEvery is the interval between position announcements (30 s);
	// the first comes FirstAnnounce (5 s) after the transfer when no agent
	// has taken the call by then.
	AnnounceEvery time.Duration
	FirstAnnounce time.Duration
	// ConnectTimeout bounds the wait for an accepting agent's audio (10 s).
	ConnectTimeout time.Duration
	// VoicemailMax bounds a voicemail message (2 min); VoicemailSilence
	// ends it after the caller stops talking (5 s).
	VoicemailMax     time.Duration
	VoicemailSilence time.Duration
	// Dir is where voicemail recordings are written (a "voicemail"
	// directory is made in it); empty means the system's temp directory.
	Dir string
	// Assist keeps the AI answering questions a waiting caller asks,
	// without losing their place in the queue.
	Assist bool
	// WhisperSummary has an agent hear a short spoken summary of the
	// brief once their audio connects, before the caller (on hold music
	// meanwhile) is put through.
	WhisperSummary bool
}

func (q QueueOptions) withDefaults() QueueOptions {
	dur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	dur(&q.MaxWait, 2*time.Minute)
	dur(&q.AnnounceEvery, 30*time.Second)
	dur(&q.FirstAnnounce, 5*time.Second)
	dur(&q.ConnectTimeout, 10*time.Second)
	dur(&q.VoicemailMax, 2*time.Minute)
	dur(&q.VoicemailSilence, 5*time.Second)
	if q.Dir == "" {
		q.Dir = os.TempDir()
	}
	return q
}

// keypad is the leg's handler outside the AI conversation: it passes keys
// on and, while recording, keeps the caller's audio.
type keypad struct {
	digits chan byte

	mu        sync.Mutex
	recording bool
	rec       []int16
	ep        *media.Endpointer
	heard     bool      // speech in the recording
	lastVoice time.Time // last speech frame
	also      func([]int16)
}

func newKeypad() *keypad { return &keypad{digits: make(chan byte, 16)} }

func (k *keypad) OnAudio(pcm []int16) {
	k.mu.Lock()
	if k.recording {
		k.rec = append(k.rec, pcm...)
		k.ep.Push(pcm)
		if k.ep.InSpeech() {
			k.heard = true
			k.lastVoice = time.Now()
		}
	}
	also := k.also
	k.mu.Unlock()
	if also != nil {
		also(pcm)
	}
}

func (k *keypad) OnDTMF(d byte) {
	select {
	case k.digits <- d:
	default:
	}
}

func (k *keypad) OnMark(string) {}

func (k *keypad) startRecording(rate int) {
	k.mu.Lock()
	k.recording, k.rec, k.heard = true, nil, false
	k.ep = media.NewEndpointer(media.EndpointConfig{Rate: rate})
	k.lastVoice = time.Now()
	k.mu.Unlock()
}

// recorded returns the recording so far, whether it holds speech, and how
// long the caller has been quiet.
func (k *keypad) recorded() (pcm []int16, heard bool, quiet time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rec, k.heard, time.Since(k.lastVoice)
}

func (k *keypad) stopRecording() []int16 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.recording = false
	return k.rec
}

func (k *keypad) setAlso(f func([]int16)) {
	k.mu.Lock()
	k.also = f
	k.mu.Unlock()
}

// human runs a transferred call from the end of the AI conversation to
// its end: the caller waits in the queue (position announcements, hold
// music, callback on 1) until an agent's audio is bridged; with no agent
// in time, or none on duty, the caller leaves a voicemail. An agent whose
// connection drops puts the caller back at the front of the queue.
func (sb *Switchboard) human(ctx context.Context, c *call, log zerolog.Logger) (parley.Outcome, string) {
	q := sb.opt.Queue
	kp := newKeypad()
	c.router.set(kp)
	sb.setPhase(c, PhaseQueued)
	v := newVoice(c, sb.eng.Synthesizer)
	defer func() { v.stop() }()

	c.mu.Lock()
	t := c.transfer
	announced := t.announced
	c.mu.Unlock()
	if !announced {
		if err := v.say(ctx, sb.opt.Prompts.Transfer); err != nil {
			log.Warn().Err(err).Msg("switchboard: transfer announcement failed")
		}
	}
	// The AI keeps helping while someone on duty will take the call (with
	// nobody on duty the caller goes to voicemail at once).
	var ai *assistant
	if sb.desk.Staffed() {
		ai = sb.startAssistant(ctx, c, kp)
	}
	defer func() { ai.stop(kp) }()
	if ai != nil {
		if err := v.say(ctx, sb.opt.Prompts.AssistOffer); err != nil {
			log.Warn().Err(err).Msg("switchboard: queue announcement failed")
		}
	}
	music := holdMusic(c.leg.SampleRate())
	maxWait := time.NewTimer(q.MaxWait)
	defer maxWait.Stop()
	announce := time.NewTimer(q.FirstAnnounce)
	defer announce.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.legDone:
			sb.desk.Cancel(c.info.CallID)
			sb.event(c.info.CallID, "queue", map[string]any{"state": "abandoned"})
			return parley.OutcomeAbandoned, "caller hung up waiting for a human"
		case <-ctx.Done():
			sb.desk.Cancel(c.info.CallID)
			return parley.OutcomeFailed, "cancelled"
		case j := <-c.joinCh:
			v.stop()
			ai.stop(kp)
			ai = nil
			out, reason, again := sb.bridge(ctx, c, j, kp, log)
			if !again {
				return out, reason
			}
			sb.setPhase(c, PhaseQueued)
			ai = sb.startAssistant(ctx, c, kp)
			v = newVoice(c, sb.eng.Synthesizer)
			_ = v.say(ctx, sb.opt.Prompts.AgentLost)
			maxWait.Reset(q.MaxWait)
			announce.Reset(q.FirstAnnounce)
		case q := <-ai.questions():
			sb.answer(ctx, c, ai, v, q, log)
		case d := <-kp.digits:
			if d == '1' {
				return sb.callback(ctx, c, v)
			}
		case <-announce.C:
			if pos, wait, ok := sb.desk.Position(c.info.CallID); ok {
				v.clear()
				text := fmt.Sprintf(sb.opt.Prompts.Position, pos, spokenWait(wait)) + " " + sb.opt.Prompts.CallbackOffer
				if err := v.say(ctx, text); err != nil {
					log.Warn().Err(err).Msg("switchboard: queue announcement failed")
				}
			}
			announce.Reset(q.AnnounceEvery)
		case <-maxWait.C:
			sb.desk.Cancel(c.info.CallID)
			return sb.voicemail(ctx, c, v, kp, "no agent answered in time", log)
		case <-tick.C:
			if len(c.joinCh) > 0 {
				continue
			}
			if _, _, queued := sb.desk.Position(c.info.CallID); queued && !sb.desk.Staffed() {
				// Nobody on duty: waiting would only end in voicemail.
				sb.desk.Cancel(c.info.CallID)
				return sb.voicemail(ctx, c, v, kp, "no agent on duty", log)
			}
			if !v.busy() {
				v.queue(music)
			}
		}
	}
}

// spokenWait says an estimated wait the way a person would.
func spokenWait(d time.Duration) string {
	m := int(math.Round(d.Minutes()))
	switch {
	case m <= 1:
		return "about a minute"
	case m >= 30:
		return "more than half an hour"
	default:
		return fmt.Sprintf("about %d minutes", m)
	}
}

// callback records the caller's wish to be called back and ends the call.
func (sb *Switchboard) callback(ctx context.Context, c *call, v *voice) (parley.Outcome, string) {
	sb.desk.Cancel(c.info.CallID)
	sb.event(c.info.CallID, "callback", map[string]any{"number": c.info.From, "requested_at": time.Now()})
	sb.event(c.info.CallID, "queue", map[string]any{"state": "callback"})
	v.clear()
	_ = v.say(ctx, sb.opt.Prompts.Callback)
	_ = v.wait(ctx, c.legDone)
	return parley.OutcomeCallback, "caller asked to be called back"
}

// voicemail records a message, stores it with its transcript, and ends the call.
func (sb *Switchboard) voicemail(ctx context.Context, c *call, v *voice, kp *keypad, why string, log zerolog.Logger) (parley.Outcome, string) {
	q := sb.opt.Queue
	rate := c.leg.SampleRate()
	sb.setPhase(c, PhaseVoicemail)
	sb.event(c.info.CallID, "queue", map[string]any{"state": "voicemail", "why": why})
	v.clear()
	_ = v.say(ctx, sb.opt.Prompts.Voicemail)
	v.queue(beep(rate))
	if err := v.wait(ctx, c.legDone); err != nil {
		return parley.OutcomeAbandoned, "caller hung up before the voicemail tone"
	}
	for len(kp.digits) > 0 { // keys pressed during the prompt are not the end of the message
		<-kp.digits
	}
	kp.startRecording(rate)
	started := time.Now()
	limit := time.NewTimer(q.VoicemailMax)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	hungUp := false
wait:
	for {
		select {
		case <-c.legDone:
			hungUp = true
			break wait
		case <-ctx.Done():
			break wait
		case d := <-kp.digits:
			if d == '#' {
				break wait
			}
		case <-limit.C:
			break wait
		case <-tick.C:
			if _, heard, quiet := kp.recorded(); heard && quiet >= q.VoicemailSilence {
				break wait
			}
		}
	}
	pcm := kp.stopRecording()
	_, heard, _ := kp.recorded()
	if !heard {
		if hungUp {
			return parley.OutcomeAbandoned, "caller hung up without leaving a message"
		}
	} else {
		path, err := sb.saveVoicemail(c, pcm, rate)
		if err != nil {
			log.Error().Err(err).Msg("switchboard: voicemail not saved")
		}
		text := sb.transcribeAll(ctx, pcm, rate)
		sb.recordTurn(c, parley.Turn{Speaker: parley.SpeakerCaller, Text: text, Start: started, End: time.Now()})
		sb.event(c.info.CallID, "voicemail", map[string]any{"path": path, "text": sb.redactText(text), "duration_ms": len(pcm) * 1000 / rate, "number": c.info.From})
	}
	if !hungUp {
		_ = v.say(ctx, sb.opt.Prompts.VoicemailThanks)
		_ = v.wait(ctx, c.legDone)
	}
	if !heard {
		return parley.OutcomeVoicemail, why + "; no message left"
	}
	return parley.OutcomeVoicemail, why
}

// saveVoicemail writes the message under Queue.Dir/voicemail.
func (sb *Switchboard) saveVoicemail(c *call, pcm []int16, rate int) (string, error) {
	dir := filepath.Join(sb.opt.Queue.Dir, "voicemail")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("voicemail dir: %w", err)
	}
	path := filepath.Join(dir, c.info.CallID+".wav")
	if err := media.WriteWAVFile(path, pcm, rate); err != nil {
		return "", err
	}
	return path, nil
}

// transcribeAll recognizes a whole recording.
func (sb *Switchboard) transcribeAll(ctx context.Context, pcm []int16, rate int) string {
	tr := sb.eng.Transcriber
	st, err := tr.Start(ctx, dialog.ModeOpen)
	if err != nil {
		return ""
	}
	res := media.NewResampler(rate, tr.SampleRate())
	var buf []int16
	frame := media.FrameSamples(rate) * 50
	for i := 0; i < len(pcm); i += frame {
		buf = res.Process(buf[:0], pcm[i:min(i+frame, len(pcm))])
		if err := st.Write(buf); err != nil {
			_ = st.Close()
			return ""
		}
	}
	_ = st.Write(res.Flush(buf[:0]))
	t, err := st.Finish()
	if err != nil {
		return ""
	}
	return t.Text
}

// SurveyOptions configure the post-call satisfaction survey.
type SurveyOptions struct {
	// Prompt asks for a rating on the keypad, 1 to 5; empty means no survey.
	Prompt string
	// Thanks ends the call after the answer.
	Thanks string
	// Wait is how long the caller has to press a key (8 s).
	Wait time.Duration
}

// survey asks the caller still on the line for a 1-5 rating and stores it
// as a "csat" event.
func (sb *Switchboard) survey(ctx context.Context, c *call, log zerolog.Logger) {
	opt := sb.opt.Survey
	if opt.Prompt == "" {
		return
	}
	select {
	case <-c.legDone:
		return
	default:
	}
	kp := newKeypad()
	c.router.set(kp)
	v := newVoice(c, sb.eng.Synthesizer)
	defer v.stop()
	if err := v.say(ctx, opt.Prompt); err != nil {
		log.Warn().Err(err).Msg("switchboard: survey prompt failed")
		return
	}
	wait := time.NewTimer(opt.Wait)
	defer wait.Stop()
	for {
		select {
		case d := <-kp.digits:
			if d < '1' || d > '5' {
				continue
			}
			sb.event(c.info.CallID, "csat", map[string]any{"score": int(d - '0')})
			v.clear()
			_ = v.say(ctx, opt.Thanks)
			_ = v.wait(ctx, c.legDone)
			return
		case <-wait.C:
			return
		case <-c.legDone:
			return
		case <-ctx.Done():
			return
		}
	}
}
