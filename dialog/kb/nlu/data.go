package nlu

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxLine bounds one JSONL record, so a corrupt file cannot exhaust memory.
const maxLine = 1 << 20

// LoadExamples reads labelled utterances from path: CSV with a header row
// naming a "text" column and a "category" (or "intent"/"label") column, as in
// Banking77, or JSON Lines of {"text": ..., "intent": ...} objects, as in
// CLINC150. The format follows the extension (.csv; .jsonl, .ndjson, .json)
// and otherwise the first non-blank byte ('{' means JSON Lines). Texts are
// trimmed; an empty text or intent is an error naming its line.
func LoadExamples(path string) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nlu: load examples: %w", err)
	}
	var ex []Example
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case ext == ".csv":
		ex, err = parseCSV(data)
	case ext == ".jsonl" || ext == ".ndjson" || ext == ".json":
		ex, err = parseJSONL(data)
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n\ufeff"), []byte("{")):
		ex, err = parseJSONL(data)
	default:
		ex, err = parseCSV(data)
	}
	if err != nil {
		return nil, fmt.Errorf("nlu: load examples %s: %w", path, err)
	}
	return ex, nil
}

// parseExamples reads CSV or JSON Lines from data, deciding by the first
// non-blank byte.
func parseExamples(data []byte) ([]Example, error) {
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
		return parseJSONL(data)
	}
	return parseCSV(data)
}

// parseCSV reads a CSV file whose header names the text and label columns.
func parseCSV(data []byte) ([]Example, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header row with text and category columns")
	}
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	textCol, labelCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "text", "utterance", "query":
			if textCol < 0 {
				textCol = i
			}
		case "category", "intent", "label":
			if labelCol < 0 {
				labelCol = i
			}
		}
	}
	if textCol < 0 || labelCol < 0 {
		return nil, fmt.Errorf("csv line 1: header %q lacks a text and a category column", strings.Join(header, ","))
	}
	var out []Example
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err) // csv.ParseError carries the line
		}
		line, _ := r.FieldPos(0)
		if len(rec) <= max(textCol, labelCol) {
			return nil, fmt.Errorf("csv line %d: %d fields, want at least %d", line, len(rec), max(textCol, labelCol)+1)
		}
		ex := Example{Text: strings.TrimSpace(rec[textCol]), Intent: strings.TrimSpace(rec[labelCol])}
		if err := checkExample(ex); err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		out = append(out, ex)
	}
	if len(out) == 0 {
		return nil, errors.New("csv: no examples after the header")
	}
	return out, nil
}

// parseJSONL reads one {"text", "intent"} object per line; blank lines are
// skipped.
func parseJSONL(data []byte) ([]Example, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var out []Example
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec struct {
			Text   *string `json:"text"`
			Intent *string `json:"intent"`
			Label  *string `json:"label"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("jsonl line %d: %w", line, err)
		}
		if rec.Intent == nil {
			rec.Intent = rec.Label
		}
		if rec.Text == nil || rec.Intent == nil {
			return nil, fmt.Errorf("jsonl line %d: want an object with \"text\" and \"intent\"", line)
		}
		ex := Example{Text: strings.TrimSpace(*rec.Text), Intent: strings.TrimSpace(*rec.Intent)}
		if err := checkExample(ex); err != nil {
			return nil, fmt.Errorf("jsonl line %d: %w", line, err)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("jsonl line %d: %w", line+1, err)
	}
	if len(out) == 0 {
		return nil, errors.New("jsonl: no examples")
	}
	return out, nil
}

func checkExample(ex Example) error {
	switch {
	case ex.Text == "":
		return errors.New("empty text")
	case ex.Intent == "":
		return errors.New("empty intent")
	}
	return nil
}
