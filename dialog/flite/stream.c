// C side of the flite binding. It lives in its own file because flite.go
// uses //export, and a Go file with //export may only declare C functions in
// its preamble, not define them.

#include <stdint.h>
#include <flite.h>
#include "_cgo_export.h"

cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);

// parley_flite_voice registers (once per process inside flite) and returns
// the voice with the given id, or NULL for an unknown id.
cst_voice *parley_flite_voice(int id) {
	switch (id) {
	case 0: return register_cmu_us_slt(NULL);
	case 1: return register_cmu_us_kal(NULL);
	case 2: return register_cmu_us_kal16(NULL);
	case 3: return register_cmu_us_rms(NULL);
	case 4: return register_cmu_us_awb(NULL);
	}
	return NULL;
}

// chunk forwards one streamed piece of audio to Go. A return value of
// CST_AUDIO_STREAM_STOP (-1) makes flite abandon the rest of the utterance.
static int chunk(const cst_wave *w, int start, int size, int last,
                 cst_audio_streaming_info *asi) {
	if (w == NULL || size < 0 || start < 0 || start + size > w->num_samples) {
		return CST_AUDIO_STREAM_STOP;
	}
	return goFliteChunk((uintptr_t)asi->userdata, w->samples + start, size, last);
}

// parley_flite_stream synthesizes one utterance with voice v and streams its
// audio to the Go stream identified by handle h. The streaming info sits on
// the utterance, never on the shared voice, so concurrent calls do not see
// each other's callbacks. It returns the utterance's sample rate, or -1 when
// flite produced no utterance.
int parley_flite_stream(cst_voice *v, const char *text, uintptr_t h, int min_chunk) {
	cst_utterance *u = new_utterance();
	cst_audio_streaming_info *asi = new_audio_streaming_info();
	int rate = -1;
	cst_wave *w;

	asi->asc = chunk;
	asi->userdata = (void *)h;
	if (min_chunk > 0) {
		asi->min_buffsize = min_chunk;
	}
	utt_set_input_text(u, text);
	utt_init(u, v);
	utt_set_feat_string(u, "input_type", "text");
	/* The utterance owns asi from here and frees it with itself. */
	feat_set(u->features, "streaming_info", audio_streaming_info_val(asi));
	u = flite_do_synth(u, v, utt_synth);
	if (u == NULL) {
		return -1;
	}
	w = utt_wave(u);
	if (w != NULL) {
		rate = w->sample_rate;
	}
	delete_utterance(u);
	return rate;
}

// parley_flite_rate synthesizes a short word without streaming and returns
// the voice's output sample rate (-1 on failure). It also warms the voice up.
int parley_flite_rate(cst_voice *v) {
	cst_wave *w = flite_text_to_wave("hello", v);
	int rate = -1;
	if (w != NULL) {
		rate = w->sample_rate;
		delete_wave(w);
	}
	return rate;
}
