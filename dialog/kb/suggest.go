package kb

import (
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/parley-ai/parley/dialog/kb/nlu"
)

// Continuous learning: callers keep asking things the knowledge base does
// not cover, or covers in other words. Suggest turns what the AI did not
// understand (and what supervisors corrected) into proposals an admin
// reviews: new example utterances for existing intents and new intents.

// Utterance is one caller turn worth learning from.
type Utterance struct {
	Text   string
	CallID string
	// Intent is the right intent when a supervisor marked the turn
	// misunderstood and said what it should have been; empty otherwise.
	Intent string
}

// SuggestedIntent is a cluster of unanswered requests that look like a
// topic of their own.
type SuggestedIntent struct {
	Name     string   `yaml:"name"`
	Examples []string `yaml:"examples"`
	Calls    int      `yaml:"calls"` // distinct calls it came up in
}

// Suggestions is what Suggest proposes.
type Suggestions struct {
	// Examples are new example utterances for existing intents.
	Examples map[string][]string `yaml:"add_examples"`
	// NewIntents are clusters of requests no intent covers.
	NewIntents []SuggestedIntent `yaml:"new_intents"`
	// Unclustered are the requests that matched nothing else.
	Unclustered []string `yaml:"unclustered,omitempty"`
}

// SuggestOptions tune Suggest.
type SuggestOptions struct {
	// MinCluster is the fewest requests that make a new intent (3).
	MinCluster int
	// Similarity is the cosine similarity (0..1, over content words and
	// word pairs) above which two requests share a cluster (0.2).
	Similarity float64
	// ExistingConfidence is the classifier confidence on a whole cluster
	// above which it is new wording for an existing intent rather than a
	// new intent (0.6).
	ExistingConfidence float64
}

var wordRE = regexp.MustCompile(`[a-z0-9']+`)

// suggestStop are words that say nothing about the topic.
var suggestStop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the i me my mine we our you your it its is are was were be been am
		to of in on at for with from by about and or but so if then than that this these those there here
		do does did done have has had can could would should will shall may might must
		what when where which who how why please hi hello hey yes no not just also like want wanted need
		get got know tell say said call calling um uh oh okay ok thanks thank`) {
		suggestStop[w] = true
	}
}

func contentWords(text string) []string {
	var out []string
	for _, w := range wordRE.FindAllString(strings.ToLower(text), -1) {
		if !suggestStop[w] && len(w) > 1 {
			out = append(out, w)
		}
	}
	return out
}

// Suggest proposes knowledge-base changes from utterances the AI did not
// understand: labelled ones become examples of their intent; the rest are
// clustered by shared wording, and each large enough cluster becomes
// either new examples of the existing intent the classifier sees in it, or
// a new intent for an admin to name and answer.
func Suggest(e *Engine, us []Utterance, opt SuggestOptions) Suggestions {
	if opt.MinCluster <= 0 {
		opt.MinCluster = 3
	}
	if opt.Similarity <= 0 {
		opt.Similarity = 0.2
	}
	if opt.ExistingConfidence <= 0 {
		opt.ExistingConfidence = 0.6
	}
	known := map[string]bool{}
	for _, in := range e.kb.Intents {
		for _, ex := range in.Examples {
			known[normalize(ex)] = true
		}
	}
	s := Suggestions{Examples: map[string][]string{}}
	seen := map[string]bool{}
	var free []Utterance
	for _, u := range us {
		n := normalize(u.Text)
		if n == "" || known[n] || seen[n] {
			continue
		}
		seen[n] = true
		u.Text = strings.TrimSpace(u.Text)
		if u.Intent != "" && e.kb.Intent(u.Intent) != nil {
			s.Examples[u.Intent] = append(s.Examples[u.Intent], u.Text)
			continue
		}
		free = append(free, u)
	}
	for _, c := range cluster(free, opt.Similarity) {
		if len(c) < opt.MinCluster {
			for _, u := range c {
				s.Unclustered = append(s.Unclustered, u.Text)
			}
			continue
		}
		texts := make([]string, len(c))
		calls := map[string]bool{}
		for i, u := range c {
			texts[i] = u.Text
			calls[u.CallID] = true
		}
		p := e.model.Predict(strings.Join(texts, ". "))
		if p.Intent != nlu.OutOfScope && p.Confidence >= opt.ExistingConfidence && e.kb.Intent(p.Intent) != nil {
			s.Examples[p.Intent] = append(s.Examples[p.Intent], texts...)
			continue
		}
		s.NewIntents = append(s.NewIntents, SuggestedIntent{Name: clusterName(c), Examples: texts, Calls: len(calls)})
	}
	sort.SliceStable(s.NewIntents, func(i, j int) bool { return len(s.NewIntents[i].Examples) > len(s.NewIntents[j].Examples) })
	for k := range s.Examples {
		sort.Strings(s.Examples[k])
	}
	sort.Strings(s.Unclustered)
	return s
}

func normalize(s string) string {
	return strings.Join(wordRE.FindAllString(strings.ToLower(s), -1), " ")
}

// cluster groups utterances whose TF-IDF vectors (content words and
// adjacent content-word pairs) are similar: each joins the cluster whose
// centroid it is closest to, above sim, or starts a new one.
func cluster(us []Utterance, sim float64) [][]Utterance {
	docs := make([]map[string]float64, len(us))
	df := map[string]int{}
	for i, u := range us {
		ws := contentWords(u.Text)
		d := map[string]float64{}
		for j, w := range ws {
			d[w]++
			if j > 0 {
				d[ws[j-1]+"_"+w] += 0.5
			}
		}
		for t := range d {
			df[t]++
		}
		docs[i] = d
	}
	n := float64(len(us))
	for _, d := range docs {
		var norm float64
		for t, tf := range d {
			v := (1 + math.Log(tf)) * math.Sqrt(math.Log(1+n/float64(df[t])))
			d[t] = v
			norm += v * v
		}
		norm = math.Sqrt(norm)
		for t := range d {
			if norm > 0 {
				d[t] /= norm
			}
		}
	}
	type group struct {
		members  []int
		centroid map[string]float64
	}
	var groups []*group
	// Longer requests first: they carry more of the topic.
	order := make([]int, len(us))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(docs[order[a]]) > len(docs[order[b]]) })
	for _, i := range order {
		best, bestSim := -1, sim
		for g, gr := range groups {
			if s := cosine(docs[i], gr.centroid); s >= bestSim {
				best, bestSim = g, s
			}
		}
		if best < 0 {
			c := map[string]float64{}
			for t, v := range docs[i] {
				c[t] = v
			}
			groups = append(groups, &group{members: []int{i}, centroid: c})
			continue
		}
		gr := groups[best]
		gr.members = append(gr.members, i)
		k := float64(len(gr.members))
		for t := range gr.centroid {
			gr.centroid[t] *= (k - 1) / k
		}
		for t, v := range docs[i] {
			gr.centroid[t] += v / k
		}
	}
	out := make([][]Utterance, 0, len(groups))
	for _, gr := range groups {
		sort.Ints(gr.members)
		c := make([]Utterance, len(gr.members))
		for j, m := range gr.members {
			c[j] = us[m]
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(a, b int) bool { return len(out[a]) > len(out[b]) })
	return out
}

func cosine(a, b map[string]float64) float64 {
	if len(a) > len(b) {
		a, b = b, a
	}
	var dot, nb float64
	for t, v := range a {
		dot += v * b[t]
	}
	for _, v := range b {
		nb += v * v
	}
	if nb == 0 {
		return 0
	}
	return dot / math.Sqrt(nb) // a is unit length
}

// clusterName names a cluster after its two most common content words.
func clusterName(c []Utterance) string {
	count := map[string]int{}
	for _, u := range c {
		seen := map[string]bool{}
		for _, w := range contentWords(u.Text) {
			if !seen[w] {
				count[w]++
				seen[w] = true
			}
		}
	}
	words := make([]string, 0, len(count))
	for w := range count {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if count[words[i]] != count[words[j]] {
			return count[words[i]] > count[words[j]]
		}
		return words[i] < words[j]
	})
	if len(words) > 2 {
		words = words[:2]
	}
	name := "suggested"
	for _, w := range words {
		name += "_" + strings.ReplaceAll(w, "'", "")
	}
	return name
}
