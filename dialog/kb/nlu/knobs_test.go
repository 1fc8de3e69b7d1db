package nlu

import (
	"os"
	"strconv"
)

// Knobs for TestEvalFull experiments, read from the environment:
// NLU_WORDVEC=FILE uses another word-vector file (scripts/gen-nlu-wordvec.go
// -out FILE), NLU_NOWORDVEC=1 none; NLU_PREW, NLU_DENSEW and NLU_CHARW set
// the weights of the pretrained-vector, learnt-embedding and character
// feature groups.
func init() {
	if p := os.Getenv("NLU_WORDVEC"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			panic(err)
		}
		wordVecData = b
	}
	if os.Getenv("NLU_NOWORDVEC") != "" {
		wordVecData = nil
	}
	f := func(name string, dst *float64) {
		if v := os.Getenv(name); v != "" {
			*dst, _ = strconv.ParseFloat(v, 64)
		}
	}
	f("NLU_PREW", &groupWeight[groupPre])
	f("NLU_DENSEW", &groupWeight[groupDense])
	f("NLU_CHARW", &groupWeight[groupChar])
}
