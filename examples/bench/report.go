package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Units of a Row.
const (
	unitMs      = "ms"
	unitS       = "s"
	unitPercent = "%"
	unitMiB     = "MiB"
	unitCount   = "count"
)

// Row is one measure: ours against the baseline, taken in the same run.
type Row struct {
	Measure string `json:"measure"`
	Unit    string `json:"unit"`
	// Ours is subvolkit's figure, Baseline the raw one's.
	Ours     float64 `json:"ours"`
	Baseline float64 `json:"baseline"`
	// Ratio is Ours / Baseline (for times: < 1 is faster than the
	// baseline); absent when the baseline is 0.
	Ratio *float64 `json:"ratio,omitempty"`
	// BaselineIs says what the baseline does.
	BaselineIs string `json:"baselineIs"`
	// Note qualifies the row (for example "not available in this build").
	Note string `json:"note,omitempty"`
}

// Section is one group of rows.
type Section struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Rows  []Row  `json:"rows"`
	// Skipped says why the section has no figures.
	Skipped string `json:"skipped,omitempty"`
}

// Report is a whole run.
type Report struct {
	Target   string    `json:"target"`
	Count    int       `json:"count"`
	Rounds   int       `json:"rounds"`
	Sections []Section `json:"sections"`
	// Phases are the scale run's (scale subcommand only).
	Phases []Phase `json:"phases,omitempty"`
}

// Phase is one step of the scale run.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

func newRow(measure, unit string, ours, baseline float64, baselineIs string) Row {
	r := Row{Measure: measure, Unit: unit, Ours: ours, Baseline: baseline, BaselineIs: baselineIs}
	if baseline != 0 && !math.IsNaN(ours) {
		v := ours / baseline
		r.Ratio = &v
	}
	return r
}

// write prints the report as format: table, markdown or json.
func (r *Report) write(w io.Writer, format string) error {
	switch format {
	case "json":
		return writeJSON(w, r)
	case "table", "markdown":
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	head := r.Target
	if len(r.Sections) > 0 {
		head += "; ratio = subvolkit / baseline (for times, < 1 is faster)"
	}
	if _, err := fmt.Fprintf(w, "%s\n\n", head); err != nil {
		return err
	}
	if len(r.Sections) > 0 {
		var rows [][]string
		for _, s := range r.Sections {
			if s.Skipped != "" {
				rows = append(rows, []string{s.Title + " [skipped: " + s.Skipped + "]", "–", "–", "–"})
			}
			for _, row := range s.Rows {
				ratio := "–"
				if row.Ratio != nil {
					ratio = strconv.FormatFloat(*row.Ratio, 'f', 2, 64) + "×"
				}
				base := fmtValue(row.Baseline, row.Unit) + " (" + row.BaselineIs + ")"
				measure := s.Title + ": " + row.Measure
				if row.Note != "" {
					measure += " [" + row.Note + "]"
				}
				rows = append(rows, []string{measure, fmtValue(row.Ours, row.Unit), base, ratio})
			}
		}
		if err := renderTable(w, format, []string{"measure", "subvolkit", "baseline", "ratio"}, rows); err != nil {
			return err
		}
	}
	if len(r.Phases) > 0 {
		var rows [][]string
		for _, p := range r.Phases {
			wall := "–"
			if p.Seconds > 0 {
				wall = strconv.FormatFloat(p.Seconds, 'f', 2, 64) + " s"
			}
			rows = append(rows, []string{p.Name, wall, p.Detail})
		}
		if len(r.Sections) > 0 {
			fmt.Fprintln(w)
		}
		return renderTable(w, format, []string{"phase", "wall time", "detail"}, rows)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case unitMs:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	case unitS:
		return strconv.FormatFloat(v, 'f', 2, 64) + " s"
	case unitPercent:
		return strconv.FormatFloat(v, 'f', 0, 64) + " %"
	case unitMiB:
		return strconv.FormatFloat(v, 'f', 1, 64) + " MiB"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// renderTable draws a table: with light borders, or as Markdown for a
// README.
func renderTable(w io.Writer, format string, header []string, rows [][]string) error {
	var r tw.Renderer = renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})
	if format == "markdown" {
		r = renderer.NewMarkdown()
	}
	t := tablewriter.NewTable(w, tablewriter.WithRenderer(r), tablewriter.WithConfig(tablewriter.Config{
		Header: tw.CellConfig{Formatting: tw.CellFormatting{AutoFormat: tw.Off}, Alignment: tw.CellAlignment{Global: tw.AlignLeft}},
		Row:    tw.CellConfig{Alignment: tw.CellAlignment{Global: tw.AlignLeft}},
	}))
	hs := make([]any, len(header))
	for i, h := range header {
		hs[i] = h
	}
	t.Header(hs...)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	return t.Render()
}
