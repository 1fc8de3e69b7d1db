package kb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds one knowledge-base file; larger files are rejected
// before parsing so a stray binary cannot exhaust memory.
const MaxFileSize = 4 << 20

// maxErrors bounds how many validation errors one load reports.
const maxErrors = 25

// maxSentenceWords is the longest sentence accepted in spoken text: callers
// cannot scroll back, so long sentences are lost on them.
const maxSentenceWords = 35

// kbFile is the shape of one YAML file.
type kbFile struct {
	Company    *Company  `yaml:"company"`
	Intents    []*Intent `yaml:"intents"`
	OutOfScope []string  `yaml:"out_of_scope"`
}

// Load reads a knowledge base from dir: every *.yaml and *.yml file in it,
// in name order (subdirectories are ignored). dir may also name one file.
// Errors name the file and line.
func Load(dir string) (*KB, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("kb: load: %w", err)
	}
	if !st.IsDir() {
		data, err := readLimited(os.DirFS(filepath.Dir(dir)), filepath.Base(dir))
		if err != nil {
			return nil, fmt.Errorf("kb: load: %w", err)
		}
		return parse([]source{{name: dir, data: data}})
	}
	return loadFS(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// LoadFS reads a knowledge base from the root of fsys (for example an
// embedded copy of configs/kb), like Load.
func LoadFS(fsys fs.FS) (*KB, error) {
	return loadFS(fsys, func(name string) string { return name })
}

// source is one file's name (as shown in errors) and content.
type source struct {
	name string
	data []byte
}

func loadFS(fsys fs.FS, display func(string) string) (*KB, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("kb: load: %w", err)
	}
	var srcs []source
	for _, e := range entries {
		ext := path.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := readLimited(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("kb: load: %w", err)
		}
		srcs = append(srcs, source{name: display(e.Name()), data: data})
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("kb: load %s: no .yaml files", display("."))
	}
	return parse(srcs)
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, st.Size(), MaxFileSize)
	}
	return fs.ReadFile(fsys, name)
}

// located is an intent with the YAML node it was decoded from, for error positions.
type located struct {
	in   *Intent
	file string
	node *yaml.Node
}

// posError is one validation error at a position.
type posError struct {
	file string
	line int
	msg  string
}

// errorList collects validation errors with positions.
type errorList struct{ errs []posError }

func (l *errorList) add(file string, line int, format string, args ...any) {
	l.errs = append(l.errs, posError{file: file, line: line, msg: fmt.Sprintf(format, args...)})
}

// err reports the errors in file and line order, at most maxErrors of them.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b posError) int {
		if c := strings.Compare(a.file, b.file); c != 0 {
			return c
		}
		return a.line - b.line
	})
	var errs []error
	for i, e := range l.errs {
		if i == maxErrors {
			errs = append(errs, fmt.Errorf("... and %d more", len(l.errs)-maxErrors))
			break
		}
		if e.line > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", e.file, e.line, e.msg))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", e.file, e.msg))
		}
	}
	return fmt.Errorf("kb: invalid knowledge base:\n%w", errors.Join(errs...))
}

// parse decodes and validates the given files as one knowledge base.
func parse(srcs []source) (*KB, error) {
	var errs errorList
	k := &KB{byName: map[string]*Intent{}}
	var all []located
	companyFile := ""
	for _, src := range srcs {
		dec := yaml.NewDecoder(bytes.NewReader(src.data))
		var root yaml.Node
		if err := dec.Decode(&root); err != nil {
			if !errors.Is(err, io.EOF) {
				errs.addYAML(src.name, err)
			}
			continue // io.EOF: an empty file
		}
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case err == nil:
			errs.add(src.name, next.Line, "only one YAML document per file; put the next one in its own file")
			continue
		case !errors.Is(err, io.EOF):
			errs.addYAML(src.name, err)
			continue
		}
		if len(root.Content) == 0 {
			continue
		}
		doc := root.Content[0]
		if doc.Kind != yaml.MappingNode {
			errs.add(src.name, doc.Line, "top level must be a mapping with company, intents or out_of_scope")
			continue
		}
		if !checkKeys(&errs, src.name, doc, reflect.TypeFor[kbFile](), "top level") {
			continue
		}
		var f kbFile
		if err := doc.Decode(&f); err != nil {
			errs.addYAML(src.name, err)
			continue
		}
		if f.Company != nil {
			if companyFile != "" {
				errs.add(src.name, keyLine(doc, "company"), "company is already defined in %s", companyFile)
			} else {
				companyFile = src.name
				k.Company = *f.Company
				validateCompany(&errs, src.name, valueNode(doc, "company"), &k.Company)
			}
		}
		for _, s := range f.OutOfScope {
			if s = normalizeSpace(s); s != "" {
				k.OutOfScope = append(k.OutOfScope, s)
			}
		}
		seq := valueNode(doc, "intents")
		for i, in := range f.Intents {
			if in == nil {
				errs.add(src.name, seq.Content[i].Line, "empty intent")
				continue
			}
			node := seq.Content[i]
			in.Source = fmt.Sprintf("%s:%d", src.name, node.Line)
			all = append(all, located{in: in, file: src.name, node: node})
		}
	}
	if companyFile == "" && len(errs.errs) == 0 {
		errs.add(srcs[0].name, 0, "no company section in any file")
	}
	validateIntents(&errs, k, all)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return k, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// addYAML reports a yaml.v3 error as file:line: message entries.
func (l *errorList) addYAML(file string, err error) {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			n, _ := strconv.Atoi(sub[1])
			if parserContextError(sub[2]) {
				n++
			}
			l.add(file, n, "%s", sub[2])
			continue
		}
		l.add(file, 0, "%s", strings.TrimPrefix(m, "yaml: "))
	}
}

// parserContextError reports yaml.v3 parser errors whose line number is
// zero-based (yaml.v3 adds one only for scanner errors); the messages are
// those of its parser, not its scanner.
func parserContextError(msg string) bool {
	for _, p := range []string{
		"did not find expected <document start>", "did not find expected node content",
		"did not find expected key", "did not find expected '-' indicator",
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// checkKeys rejects mapping keys that t's yaml tags do not name, recursively,
// so a misspelt key ("exmaples") is an error instead of silently ignored.
func checkKeys(errs *errorList, file string, n *yaml.Node, t reflect.Type, where string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	ok := true
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return true // Decode reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f.Type
			names = append(names, tag)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, known := fields[key.Value]
			if !known {
				errs.add(file, key.Line, "unknown key %q in %s (known: %s)", key.Value, where, strings.Join(names, ", "))
				ok = false
				continue
			}
			if !checkKeys(errs, file, val, ft, key.Value) {
				ok = false
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return true
		}
		for _, item := range n.Content {
			if !checkKeys(errs, file, item, t.Elem(), strings.TrimSuffix(where, "s")) {
				ok = false
			}
		}
	}
	return ok
}

// valueNode returns the value of key in mapping n, or an empty node.
func valueNode(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return &yaml.Node{}
}

// keyLine is the line of key in mapping n, or n's line when key is absent.
func keyLine(n *yaml.Node, key string) int {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	if n == nil {
		return 0
	}
	return n.Line
}

var (
	namePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	skillPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	refPattern   = regexp.MustCompile(`\{([^{}]*)\}`)
)

func validateCompany(errs *errorList, file string, n *yaml.Node, c *Company) {
	required := []struct {
		key string
		val *string
	}{
		{"name", &c.Name}, {"greeting", &c.Greeting}, {"goodbye", &c.Goodbye},
		{"transfer", &c.Transfer}, {"no_human", &c.NoHuman},
	}
	for _, r := range required {
		*r.val = normalizeSpace(*r.val)
		if *r.val == "" {
			errs.add(file, keyLine(n, r.key), "company: %s is required", r.key)
		}
	}
	for _, list := range []struct {
		key  string
		vals []string
	}{{"fallback", c.Fallback}, {"reprompt", c.Reprompt}} {
		if len(list.vals) == 0 {
			errs.add(file, keyLine(n, list.key), "company: %s needs at least one phrase", list.key)
		}
		for i := range list.vals {
			list.vals[i] = normalizeSpace(list.vals[i])
			if list.vals[i] == "" {
				errs.add(file, keyLine(n, list.key), "company: %s phrase %d is empty", list.key, i+1)
			}
		}
	}
	optional := []struct {
		key string
		val *string
		def string
	}{
		{"silence_goodbye", &c.SilenceGoodbye, companyDefaults.SilenceGoodbye},
		{"confirm", &c.Confirm, companyDefaults.Confirm},
		{"confirm_digits", &c.ConfirmDigits, companyDefaults.ConfirmDigits},
		{"sorry", &c.Sorry, companyDefaults.Sorry},
		{"rephrase", &c.Rephrase, companyDefaults.Rephrase},
		{"out_of_scope", &c.OutOfScope, companyDefaults.OutOfScope},
		{"anything_else", &c.AnythingElse, companyDefaults.AnythingElse},
		{"ask_more", &c.AskMore, companyDefaults.AskMore},
		{"back", &c.Back, companyDefaults.Back},
		{"nothing_to_repeat", &c.NothingToRepeat, companyDefaults.NothingToRepeat},
	}
	for _, o := range optional {
		if *o.val = normalizeSpace(*o.val); *o.val == "" {
			*o.val = o.def
		}
	}
	if !strings.Contains(c.Confirm, "{title}") {
		errs.add(file, keyLine(n, "confirm"), "company: confirm must contain {title}")
	}
	if !strings.Contains(c.ConfirmDigits, "{digits}") {
		errs.add(file, keyLine(n, "confirm_digits"), "company: confirm_digits must contain {digits}")
	}
	texts := map[string]string{
		"greeting": c.Greeting, "goodbye": c.Goodbye, "transfer": c.Transfer, "no_human": c.NoHuman,
		"silence_goodbye": c.SilenceGoodbye, "rephrase": c.Rephrase, "sorry": c.Sorry, "out_of_scope": c.OutOfScope,
		"anything_else": c.AnythingElse, "ask_more": c.AskMore, "back": c.Back,
		"nothing_to_repeat": c.NothingToRepeat,
		"confirm":           strings.ReplaceAll(c.Confirm, "{title}", "it"),
		"confirm_digits":    strings.ReplaceAll(c.ConfirmDigits, "{digits}", "1 2"),
	}
	for i, s := range c.Fallback {
		texts["fallback "+strconv.Itoa(i+1)] = s
	}
	for i, s := range c.Reprompt {
		texts["reprompt "+strconv.Itoa(i+1)] = s
	}
	keys := make([]string, 0, len(texts))
	for key := range texts {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if msg := speechProblem(texts[key], nil); msg != "" {
			errs.add(file, keyLine(n, strings.Fields(key)[0]), "company: %s %s", key, msg)
		}
	}
}

func validateIntents(errs *errorList, k *KB, all []located) {
	seenAction := map[Action]string{}
	for _, l := range all {
		in := l.in
		line := keyLine(l.node, "name")
		in.Name = strings.TrimSpace(in.Name)
		switch {
		case in.Name == "":
			errs.add(l.file, l.node.Line, "intent without a name")
			continue
		case !namePattern.MatchString(in.Name):
			errs.add(l.file, line, "intent %q: name must be lower case letters, digits and underscores", in.Name)
		}
		if prev, dup := k.byName[in.Name]; dup {
			errs.add(l.file, line, "intent %q is already defined at %s", in.Name, prev.Source)
			continue
		}
		k.byName[in.Name] = in
		k.Intents = append(k.Intents, in)
		if in.Action != ActionNone {
			if !slices.Contains(actions, in.Action) {
				errs.add(l.file, keyLine(l.node, "action"), "intent %q: unknown action %q (known: %s)", in.Name, in.Action, joinActions())
			} else if prev, dup := seenAction[in.Action]; dup {
				errs.add(l.file, keyLine(l.node, "action"), "intent %q: action %q already belongs to intent %q", in.Name, in.Action, prev)
			} else {
				seenAction[in.Action] = in.Name
			}
		}
	}
	followTargets := map[string]bool{}
	for _, l := range all {
		if f := l.in.FollowUp; f != nil {
			followTargets[f.Yes] = true
			followTargets[f.No] = true
		}
	}
	slotDefs := map[string]struct {
		slot   Slot
		intent string
	}{}
	exampleOwner := map[string]string{}
	for _, l := range all {
		in := l.in
		if k.byName[in.Name] != in {
			continue // duplicate, reported above
		}
		errsAt := func(key, format string, args ...any) {
			errs.add(l.file, keyLine(l.node, key), "intent %q: "+format, append([]any{in.Name}, args...)...)
		}
		in.Title = normalizeSpace(in.Title)
		in.Answer = normalizeSpace(in.Answer)
		if in.Skill != "" && !skillPattern.MatchString(in.Skill) {
			errsAt("skill", "skill %q must be lower case letters, digits, - and _", in.Skill)
		}
		// Examples.
		kept := in.Examples[:0]
		for _, ex := range in.Examples {
			ex = normalizeSpace(ex)
			if ex == "" {
				errsAt("examples", "empty example")
				continue
			}
			key := exampleKey(ex)
			if owner, dup := exampleOwner[key]; dup && owner != in.Name {
				errsAt("examples", "example %q is also an example of intent %q", ex, owner)
			}
			exampleOwner[key] = in.Name
			kept = append(kept, ex)
		}
		in.Examples = kept
		if len(in.Examples) == 0 && !followTargets[in.Name] {
			errsAt("examples", "no examples, and no follow-up leads to it, so callers can never reach it")
		}
		// Control intents.
		if in.Action != ActionNone {
			if len(in.Slots) > 0 || in.FollowUp != nil || in.Human || in.End {
				errsAt("action", "a control intent (action %q) cannot have slots, followup, human or end", in.Action)
			}
			if in.Answer != "" {
				if msg := speechProblem(in.Answer, map[string]bool{}); msg != "" {
					errsAt("answer", "answer %s", msg)
				}
			}
			continue
		}
		if in.Answer == "" {
			errsAt("answer", "answer is empty")
		}
		if in.End && in.FollowUp != nil {
			errsAt("followup", "an intent that ends the call cannot have a followup")
		}
		if in.Human && in.End {
			errsAt("end", "a human intent cannot end the call")
		}
		// Slots.
		declared := map[string]bool{}
		slotSeq := valueNode(l.node, "slots")
		for i := range in.Slots {
			s := &in.Slots[i]
			sline := keyLine(l.node, "slots")
			if i < len(slotSeq.Content) {
				sline = slotSeq.Content[i].Line
			}
			slotErr := func(format string, args ...any) {
				errs.add(l.file, sline, "intent %q: slot %q: "+format, append([]any{in.Name, s.Name}, args...)...)
			}
			s.Prompt = normalizeSpace(s.Prompt)
			s.Retry = normalizeSpace(s.Retry)
			if !namePattern.MatchString(s.Name) {
				slotErr("name must be lower case letters, digits and underscores")
				continue
			}
			if declared[s.Name] {
				slotErr("declared twice")
			}
			declared[s.Name] = true
			if s.Prompt == "" {
				slotErr("prompt is empty")
			} else if msg := speechProblem(s.Prompt, map[string]bool{}); msg != "" {
				slotErr("prompt %s", msg)
			}
			if msg := speechProblem(s.Retry, map[string]bool{}); msg != "" {
				slotErr("retry %s", msg)
			}
			switch s.Type {
			case SlotDigits:
				if s.Length < 1 || s.Length > 32 {
					slotErr("digits slots need a length from 1 to 32")
				}
			case SlotYesNo, SlotFree:
				if s.Length != 0 {
					slotErr("length only applies to digits slots")
				}
				if s.Confirm {
					slotErr("confirm only applies to digits slots")
				}
			default:
				slotErr("unknown type %q (known: digits, yesno, free)", s.Type)
				continue
			}
			// A slot name means one thing across the knowledge base, because
			// a value collected for one intent is reused by the next.
			if prev, ok := slotDefs[s.Name]; ok && (prev.slot.Type != s.Type || prev.slot.Length != s.Length) {
				slotErr("type %s/%d differs from the same slot in intent %q (%s/%d)", s.Type, s.Length, prev.intent, prev.slot.Type, prev.slot.Length)
			} else if !ok {
				slotDefs[s.Name] = struct {
					slot   Slot
					intent string
				}{*s, in.Name}
			}
		}
		if in.Answer != "" {
			if msg := speechProblem(in.Answer, declared); msg != "" {
				errsAt("answer", "answer %s", msg)
			} else if strings.Contains(in.Answer, "?") && (!strings.HasSuffix(in.Answer, "?") || in.FollowUp != nil || in.Human || in.End) {
				errsAt("answer", "answer asks a question that is not its last sentence, or it also has a followup, human or end; ask one question at a time")
			}
		}
		// Follow-up.
		if f := in.FollowUp; f != nil {
			fn := valueNode(l.node, "followup")
			f.Question = normalizeSpace(f.Question)
			if f.Question == "" {
				errs.add(l.file, fn.Line, "intent %q: followup question is empty", in.Name)
			} else if msg := speechProblem(f.Question, map[string]bool{}); msg != "" {
				errs.add(l.file, fn.Line, "intent %q: followup question %s", in.Name, msg)
			}
			for _, t := range []struct{ key, target string }{{"yes", f.Yes}, {"no", f.No}} {
				if t.target == "" {
					continue
				}
				target := k.byName[t.target]
				switch {
				case target == nil:
					errs.add(l.file, keyLine(fn, t.key), "intent %q: followup %s leads to unknown intent %q", in.Name, t.key, t.target)
				case target.Action != ActionNone:
					errs.add(l.file, keyLine(fn, t.key), "intent %q: followup %s leads to control intent %q", in.Name, t.key, t.target)
				}
			}
		}
	}
}

// speechProblem reports why text is unfit to be spoken, or "". declared
// lists the {slot} references allowed; nil allows none.
func speechProblem(text string, declared map[string]bool) string {
	if strings.ContainsAny(text, "*#`|\\") || strings.Contains(text, "](") {
		return "contains markdown or symbols a voice cannot say"
	}
	if strings.Count(text, "{") != strings.Count(text, "}") {
		return "has unbalanced braces"
	}
	for _, m := range refPattern.FindAllStringSubmatch(text, -1) {
		if !declared[m[1]] {
			return fmt.Sprintf("refers to unknown slot {%s}", m[1])
		}
	}
	if strings.Count(text, "?") > 1 {
		return "asks more than one question; ask one at a time"
	}
	for _, s := range splitSentences(text) {
		if n := len(strings.Fields(s)); n > maxSentenceWords {
			return fmt.Sprintf("has a sentence of %d words (at most %d): %q", n, maxSentenceWords, s)
		}
	}
	return ""
}

func joinActions() string {
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// normalizeSpace trims text and collapses runs of white space (folded YAML
// strings keep newlines) into one space.
func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// exampleKey is the form used to find the same example in two intents.
func exampleKey(s string) string {
	return strings.Join(words(s), " ")
}
