package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"sigs.k8s.io/yaml"

	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// subvolView is a subvolume as -o json and -o yaml print it.
type subvolView struct {
	Name         string            `json:"name"`
	ID           string            `json:"id,omitempty"`
	SizeBytes    int64             `json:"sizeBytes"`
	Size         string            `json:"size"`
	Volume       string            `json:"volume"`
	Path         string            `json:"path"`
	Servers      []string          `json:"servers"`
	Source       string            `json:"source,omitempty"`
	Snapshot     string            `json:"sourceSnapshot,omitempty"`
	State        string            `json:"state,omitempty"`
	UID          int               `json:"uid"`
	GID          int               `json:"gid"`
	Mode         string            `json:"mode,omitempty"`
	Created      *time.Time        `json:"created,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	MountOptions map[string]string `json:"mountOptions,omitempty"`
}

func viewOf(sv *subvol.Subvol) subvolView {
	v := subvolView{
		Name: sv.Name, ID: sv.ID, SizeBytes: sv.SizeBytes, Size: quota.HumanSize(sv.SizeBytes),
		Volume: sv.Volume, Path: sv.Path, Servers: sv.Servers, Source: sv.Source, Snapshot: sv.SourceSnapshot, State: sv.State,
		UID: sv.UID, GID: sv.GID, Labels: sv.Labels, MountOptions: sv.MountOptions,
	}
	if v.Servers == nil {
		v.Servers = []string{}
	}
	if sv.Mode != 0 {
		v.Mode = fmt.Sprintf("%04o", sv.Mode)
	}
	if !sv.Created.IsZero() {
		c := sv.Created.UTC()
		v.Created = &c
	}
	return v
}

func viewsOf(svs []*subvol.Subvol) []subvolView {
	out := make([]subvolView, len(svs))
	for i, sv := range svs {
		out[i] = viewOf(sv)
	}
	return out
}

// usageView is one row of `usage`.
type usageView struct {
	Name           string  `json:"name"`
	LimitBytes     int64   `json:"limitBytes"`
	UsedBytes      int64   `json:"usedBytes"`
	AvailableBytes int64   `json:"availableBytes"`
	UsedPercent    float64 `json:"usedPercent"`
	Files          int64   `json:"files"`
	Dirs           int64   `json:"dirs"`
	Error          string  `json:"error,omitempty"`
}

func usageOf(name string, u *quota.Usage) usageView {
	v := usageView{Name: name, LimitBytes: u.Limit, UsedBytes: u.Used, AvailableBytes: u.Available, Files: u.Files, Dirs: u.Dirs}
	if u.Limit > 0 {
		v.UsedPercent = float64(int64(float64(u.Used)/float64(u.Limit)*1000+0.5)) / 10
	}
	return v
}

// printData writes v as JSON or YAML.
func (a *app) printData(v any) error {
	switch a.output {
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	default:
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
}

// printTable writes a table: with borders on a terminal, plain aligned
// columns otherwise (for grep and awk).
func (a *app) printTable(header []string, rows [][]string) error {
	return renderTable(a.stdout, a.decorate(), header, rows)
}

func renderTable(w io.Writer, borders bool, header []string, rows [][]string) error {
	var opts []tablewriter.Option
	cfg := tablewriter.Config{
		Header: tw.CellConfig{
			Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
			Formatting: tw.CellFormatting{AutoFormat: tw.Off},
		},
		Row: tw.CellConfig{Alignment: tw.CellAlignment{Global: tw.AlignLeft}},
	}
	if borders {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})))
	} else {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Settings: tw.Settings{Separators: tw.SeparatorsNone, Lines: tw.LinesNone},
		})))
		cfg.Header.Padding = tw.CellPadding{Global: tw.Padding{Left: "", Right: "  "}}
		cfg.Row.Padding = tw.CellPadding{Global: tw.Padding{Left: "", Right: "  "}}
	}
	opts = append(opts, tablewriter.WithConfig(cfg))
	t := tablewriter.NewTable(w, opts...)
	t.Header(toAny(header)...)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	return t.Render()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func subvolRows(svs []*subvol.Subvol) (header []string, rows [][]string) {
	header = []string{"NAME", "SIZE", "VOLUME", "PATH", "SERVERS", "SOURCE", "CREATED"}
	withState := false
	for _, sv := range svs {
		withState = withState || sv.State != ""
	}
	if withState {
		header = append(header, "STATE")
	}
	for _, sv := range svs {
		created := ""
		if !sv.Created.IsZero() {
			created = sv.Created.UTC().Format(time.RFC3339)
		}
		row := []string{sv.Name, quota.HumanSize(sv.SizeBytes), sv.Volume, sv.Path,
			strings.Join(sv.Servers, ","), sv.Source, created}
		if withState {
			row = append(row, sv.State)
		}
		rows = append(rows, row)
	}
	return header, rows
}

func usageRows(us []usageView) (header []string, rows [][]string) {
	header = []string{"NAME", "LIMIT", "USED", "AVAILABLE", "USE%", "FILES"}
	for _, u := range us {
		if u.Error != "" {
			rows = append(rows, []string{u.Name, "-", "-", "-", "-", u.Error})
			continue
		}
		files := "-"
		if u.Files >= 0 {
			files = strconv.FormatInt(u.Files, 10)
		}
		rows = append(rows, []string{u.Name, quota.HumanSize(u.LimitBytes), quota.HumanSize(u.UsedBytes),
			quota.HumanSize(u.AvailableBytes), strconv.FormatFloat(u.UsedPercent, 'f', 1, 64) + "%", files})
	}
	return header, rows
}

// printSubvols prints subvolumes in the chosen format.
func (a *app) printSubvols(svs []*subvol.Subvol) error {
	if a.output != "table" {
		return a.printData(viewsOf(svs))
	}
	h, r := subvolRows(svs)
	return a.printTable(h, r)
}

// printSubvol prints one subvolume.
func (a *app) printSubvol(sv *subvol.Subvol) error {
	if a.output != "table" {
		return a.printData(viewOf(sv))
	}
	h, r := subvolRows([]*subvol.Subvol{sv})
	return a.printTable(h, r)
}

// dryRunView is what a --dry-run reports.
type dryRunView struct {
	DryRun bool     `json:"dryRun"`
	Action string   `json:"action"`
	Names  []string `json:"names"`
	Detail string   `json:"detail,omitempty"`
}

// printDryRun reports what a mutating command would do.
func (a *app) printDryRun(action string, names []string, detail string) error {
	if a.output != "table" {
		return a.printData(dryRunView{DryRun: true, Action: action, Names: names, Detail: detail})
	}
	_, err := fmt.Fprintf(a.stdout, "dry run: would %s %s%s\n", action, strings.Join(names, ", "), suffix(detail))
	return err
}

func suffix(detail string) string {
	if detail == "" {
		return ""
	}
	return " (" + detail + ")"
}
