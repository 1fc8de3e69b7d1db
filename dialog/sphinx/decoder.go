package sphinx

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/fe.h>

static cmd_ln_t *parley_ps_config(int argc, char **argv) {
	return cmd_ln_parse_r(NULL, ps_args(), argc, argv, 1);
}
_Static_assert(sizeof(mfcc_t) == sizeof(float), "sphinxbase built with FIXED_POINT: mfcc_t is not float");
static void parley_ps_quiet(void) { err_set_logfp(NULL); }
// parley_ps_reset_cmn restarts the live cepstral mean from vec; 0 when the
// decoder has no live CMN.
static int parley_ps_reset_cmn(ps_decoder_t *ps, const mfcc_t *vec) {
	feat_t *f = ps_get_feat(ps);
	if (f == NULL || f->cmn_struct == NULL) return 0;
	cmn_live_set(f->cmn_struct, vec);
	return 1;
}
// parley_ps_get_cmn reads the live cepstral mean into vec (13 values).
static int parley_ps_get_cmn(ps_decoder_t *ps, mfcc_t *vec) {
	feat_t *f = ps_get_feat(ps);
	if (f == NULL || f->cmn_struct == NULL) return 0;
	cmn_live_get(f->cmn_struct, vec);
	return 1;
}
// parley_fe_sum runs pcm through fe as a new stream (its noise statistics
// and voice detection start afresh) and adds the cepstra of the frames it
// passes on into sum (13 values), skipping frames with negative c0 as live
// CMN does. It returns the number of frames added, -1 when fe does not
// give 13 cepstra.
static int parley_fe_sum(fe_t *fe, const int16 *pcm, size_t n, mfcc_t *sum) {
	enum { NF = 32, NC = 13 };
	mfcc_t buf[NF][NC], last[NC];
	mfcc_t *rows[NF];
	int i, j, total = 0;
	int32 nfr;
	if (fe_get_output_size(fe) != NC) return -1;
	for (i = 0; i < NF; i++) rows[i] = buf[i];
	fe_start_stream(fe);
	fe_start_utt(fe);
	for (;;) {
		size_t before = n;
		nfr = NF;
		if (fe_process_frames(fe, &pcm, &n, rows, &nfr, NULL) < 0) break;
		for (i = 0; i < nfr; i++) {
			if (rows[i][0] < 0) continue;
			for (j = 0; j < NC; j++) sum[j] += rows[i][j];
			total++;
		}
		if (nfr == 0 && n == before) break;
	}
	nfr = 0;
	fe_end_utt(fe, last, &nfr);
	if (nfr > 0 && last[0] >= 0) {
		for (j = 0; j < NC; j++) sum[j] += last[j];
		total++;
	}
	return total;
}
static fe_t *parley_fe_new(ps_decoder_t *ps) { return fe_init_auto_r(ps_get_config(ps)); }
static int parley_ps_logfile(const char *path) { return err_set_logfile(path); }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// setLogFile sends pocketsphinx's log (global state) to a file, for
// diagnosing a deployment (for example to re-estimate -cmninit from the
// "cmn_live ... Update to" lines).
func setLogFile(path string) error {
	quietOnce.Do(func() { C.parley_ps_quiet() })
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if C.parley_ps_logfile(cp) != 0 {
		return fmt.Errorf("sphinx: open log file %s", path)
	}
	return nil
}

// quietOnce silences pocketsphinx's global logger: it writes hundreds of INFO
// lines per decoder to stderr otherwise, and the sink is process-wide state.
var quietOnce sync.Once

// decoder owns one ps_decoder_t. It is not safe for concurrent use: the pool
// hands it to one stream at a time (speech-stack.md §7).
type decoder struct {
	ps    *C.ps_decoder_t
	cfg   *C.cmd_ln_t
	lmath *C.logmath_t
	gen   uint64 // model generation the searches were loaded from
	mode  string // active search name
	inUtt bool
	// fed counts the samples the decoder has processed since its stream
	// started and uttStart the count when the current utterance began:
	// pocketsphinx numbers frames from the start of the stream, so an
	// utterance's word times are taken relative to uttStart (start begins
	// a new stream for every utterance, so it is 0 now).
	fed, uttStart int64
	// saved is the adapted live mean put aside while an utterance runs
	// from a fixed one (restore says it must be put back).
	saved   [13]float32
	restore bool
	// est is a second front end with the decoder's settings, used only to
	// measure the cepstral mean of audio before it is decoded (cepSum).
	est *C.fe_t
}

// hypothesis is the raw result of one utterance, before confidence mapping.
type hypothesis struct {
	text    string
	score   int32   // path score (log base 1.0001)
	logPost float64 // natural-log posterior of the best path (0 when unknown)
	frames  int     // frames searched
	words   []segment
}

// segment is one word of the best path, fillers included.
type segment struct {
	word    string
	start   int     // first frame (10 ms)
	end     int     // last frame
	logPost float64 // natural-log posterior of the word
	ascr    int32   // acoustic score
}

// newDecoder creates a decoder from command-line style arguments.
func newDecoder(args []string) (*decoder, error) {
	quietOnce.Do(func() { C.parley_ps_quiet() })
	argv := (**C.char)(C.malloc(C.size_t(len(args)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(argv))
	av := unsafe.Slice(argv, len(args))
	for i, a := range args {
		av[i] = C.CString(a)
	}
	defer func() {
		for i := range av {
			C.free(unsafe.Pointer(av[i]))
		}
	}()
	cfg := C.parley_ps_config(C.int(len(args)), argv)
	if cfg == nil {
		return nil, errors.New("sphinx: invalid decoder arguments")
	}
	ps := C.ps_init(cfg)
	if ps == nil {
		C.cmd_ln_free_r(cfg)
		return nil, errors.New("sphinx: decoder init failed (missing model file or dictionary word)")
	}
	return &decoder{ps: ps, cfg: cfg, lmath: C.ps_get_logmath(ps), mode: "_default"}, nil
}

// free releases the C decoder; the decoder must not be used afterwards.
func (d *decoder) free() {
	if d.est != nil {
		C.fe_free(d.est)
		d.est = nil
	}
	if d.ps != nil {
		if d.inUtt {
			C.ps_end_utt(d.ps)
		}
		C.ps_free(d.ps)
		d.ps = nil
	}
	if d.cfg != nil {
		C.cmd_ln_free_r(d.cfg)
		d.cfg = nil
	}
}

// setLMFile adds or replaces the n-gram search name from an ARPA file.
func (d *decoder) setLMFile(name, path string) error {
	cn, cp := C.CString(name), C.CString(path)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cp))
	if C.ps_set_lm_file(d.ps, cn, cp) != 0 {
		return fmt.Errorf("sphinx: load language model %s", path)
	}
	return nil
}

// setJSGF adds or replaces the grammar search name. wip, when non-zero, is
// the word insertion penalty of this search only: a search reads -wip from
// the decoder's configuration when it is created, so the value is set for
// the creation and restored afterwards.
func (d *decoder) setJSGF(name, grammar string, wip float64) error {
	cn, cg := C.CString(name), C.CString(grammar)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cg))
	if wip != 0 {
		key := C.CString("-wip")
		defer C.free(unsafe.Pointer(key))
		cfg := C.ps_get_config(d.ps)
		old := C.cmd_ln_float_r(cfg, key)
		C.cmd_ln_set_float_r(cfg, key, C.double(wip))
		defer C.cmd_ln_set_float_r(cfg, key, old)
	}
	if C.ps_set_jsgf_string(d.ps, cn, cg) != 0 {
		return fmt.Errorf("sphinx: load grammar %q", name)
	}
	return nil
}

// loadDict replaces the pronunciation dictionary (all searches are rebuilt).
func (d *decoder) loadDict(path string) error {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if C.ps_load_dict(d.ps, cp, nil, nil) != 0 {
		return fmt.Errorf("sphinx: load dictionary %s", path)
	}
	return nil
}

// setSearch activates a search; only valid between utterances.
func (d *decoder) setSearch(name string) error {
	if d.mode == name {
		return nil
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	if C.ps_set_search(d.ps, cn) != 0 {
		return fmt.Errorf("sphinx: no search %q", name)
	}
	d.mode = name
	return nil
}

// start begins an utterance. With cmn (13 values) its live cepstral mean
// starts from that fixed value, and the mean the decoder adapted to so far
// is put back when the utterance ends; with nil it goes on adapting.
//
// The recognizer starts every utterance from a given mean: digits from the
// fixed phone mean, open speech from the mean measured on its own audio
// (stream.begin). The adapted one drifts with whatever the pooled decoder
// heard last, another call included (recorded digits: 62 % adapting, 72 %
// fixed; a burst of babbling callers garbled the next caller's first
// words).
func (d *decoder) start(cmn []float32) error {
	if len(cmn) == 13 {
		if !d.restore && C.parley_ps_get_cmn(d.ps, (*C.mfcc_t)(unsafe.Pointer(&d.saved[0]))) != 0 {
			d.restore = true
		}
		C.parley_ps_reset_cmn(d.ps, (*C.mfcc_t)(unsafe.Pointer(&cmn[0])))
	}
	// A new stream: the front end's noise statistics (its noise removal
	// and voice detection) start from this utterance's own line instead
	// of whatever the pooled decoder heard last, another call included
	// (TestHistoryIndependent). Frames are numbered from here on.
	C.ps_start_stream(d.ps)
	d.fed = 0
	if C.ps_start_utt(d.ps) != 0 {
		return errors.New("sphinx: start utterance failed")
	}
	d.inUtt = true
	d.uttStart = d.fed
	return nil
}

// process feeds 16 kHz samples to the search.
func (d *decoder) process(pcm []int16, fullUtt bool) error {
	if len(pcm) == 0 {
		return nil
	}
	full := C.int(0)
	if fullUtt {
		full = 1
	}
	if C.ps_process_raw(d.ps, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), 0, full) < 0 {
		return errors.New("sphinx: process audio failed")
	}
	d.fed += int64(len(pcm))
	return nil
}

// partial returns the best hypothesis so far without ending the
// utterance: words only (pocketsphinx leaves fillers out of the string),
// "" when nothing is recognized yet.
func (d *decoder) partial() (string, error) {
	if !d.inUtt {
		return "", errors.New("sphinx: no utterance in progress")
	}
	var score C.int32
	hyp := C.ps_get_hyp(d.ps, &score)
	if hyp == nil {
		return "", nil
	}
	return C.GoString(hyp), nil
}

// abort ends an utterance whose result nobody wants.
func (d *decoder) abort() {
	if d.inUtt {
		C.ps_end_utt(d.ps)
		d.inUtt = false
	}
	d.restoreCMN()
}

// cepSum returns the sum of the cepstra (c0..c12) of the frames of pcm
// that the decoder's own front end would pass on (its voice detection
// drops silence), and their number. It leaves the decoder untouched.
func (d *decoder) cepSum(pcm []int16) ([13]float64, int) {
	var sum [13]float32
	if len(pcm) == 0 {
		return [13]float64{}, 0
	}
	if d.est == nil {
		d.est = C.parley_fe_new(d.ps)
		if d.est == nil {
			return [13]float64{}, 0
		}
	}
	n := int(C.parley_fe_sum(d.est, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), (*C.mfcc_t)(unsafe.Pointer(&sum[0]))))
	var out [13]float64
	for i, v := range sum {
		out[i] = float64(v)
	}
	return out, max(n, 0)
}

// liveCMN returns the decoder's current live cepstral mean.
func (d *decoder) liveCMN() ([13]float32, bool) {
	var v [13]float32
	ok := C.parley_ps_get_cmn(d.ps, (*C.mfcc_t)(unsafe.Pointer(&v[0]))) != 0
	return v, ok
}

// restoreCMN puts back the adapted mean after a fixed-mean utterance.
func (d *decoder) restoreCMN() {
	if d.restore {
		C.parley_ps_reset_cmn(d.ps, (*C.mfcc_t)(unsafe.Pointer(&d.saved[0])))
		d.restore = false
	}
}

// end finishes the utterance and reads the best path with its posteriors.
func (d *decoder) end() (hypothesis, error) {
	if !d.inUtt {
		return hypothesis{}, errors.New("sphinx: no utterance in progress")
	}
	d.inUtt = false
	if C.ps_end_utt(d.ps) != 0 {
		d.restoreCMN()
		return hypothesis{}, errors.New("sphinx: end utterance failed")
	}
	defer d.restoreCMN()
	var h hypothesis
	var score C.int32
	if hyp := C.ps_get_hyp(d.ps, &score); hyp != nil {
		h.text = C.GoString(hyp)
	}
	h.score = int32(score)
	h.frames = int(C.ps_get_n_frames(d.ps))
	if h.text == "" {
		return h, nil
	}
	h.logPost = d.toLn(int32(C.ps_get_prob(d.ps)))
	// Segment frames count from the start of the decoder's stream.
	off := int(d.uttStart / frameShift)
	for seg := C.ps_seg_iter(d.ps); seg != nil; seg = C.ps_seg_next(seg) {
		var sf, ef C.int
		var ascr, lscr, lback C.int32
		C.ps_seg_frames(seg, &sf, &ef)
		post := C.ps_seg_prob(seg, &ascr, &lscr, &lback)
		h.words = append(h.words, segment{
			word:    C.GoString(C.ps_seg_word(seg)),
			start:   max(int(sf)-off, 0),
			end:     max(int(ef)-off, 0),
			logPost: d.toLn(int32(post)),
			ascr:    int32(ascr),
		})
	}
	return h, nil
}

// frameShift is the decoder's frame shift in samples (10 ms at 16 kHz).
const frameShift = sampleRate / 100

// toLn converts a pocketsphinx log (base 1.0001 by default) to a natural log.
func (d *decoder) toLn(v int32) float64 {
	return float64(C.logmath_log_to_ln(d.lmath, C.int(v)))
}
