package cli

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/subvolkit/subvolkit/quota"
)

// Gluster's opErrno values that matter here (glusterd-errno.h).
const (
	errnoTxnInProgress = 30802 // "Another transaction is in progress"
	errnoVolNotFound   = 30806 // volume info of a missing volume
)

// cliOutput is the envelope of every `gluster --xml` answer.
type cliOutput struct {
	XMLName  xml.Name  `xml:"cliOutput"`
	OpRet    int       `xml:"opRet"`
	OpErrno  int       `xml:"opErrno"`
	OpErrstr string    `xml:"opErrstr"`
	Output   string    `xml:"output"`
	VolQuota *volQuota `xml:"volQuota"`
	VolInfo  *volInfo  `xml:"volInfo"`
}

type volQuota struct {
	Limits []quotaLimitXML `xml:"limit"`
}

type quotaLimitXML struct {
	Path      string `xml:"path"`
	HardLimit string `xml:"hard_limit"`
	Used      string `xml:"used_space"`
	Avail     string `xml:"avail_space"`
	HLExceed  string `xml:"hl_exceeded"`
}

type volInfo struct {
	Volumes struct {
		Volume []volumeXML `xml:"volume"`
	} `xml:"volumes"`
}

type volumeXML struct {
	Name      string `xml:"name"`
	ID        string `xml:"id"`
	StatusStr string `xml:"statusStr"`
	TypeStr   string `xml:"typeStr"`
	// Layout, read by VolumeInfo.
	ReplicaCount    int `xml:"replicaCount"`
	ArbiterCount    int `xml:"arbiterCount"`
	DisperseCount   int `xml:"disperseCount"`
	RedundancyCount int `xml:"redundancyCount"`
	Bricks          struct {
		Brick []struct {
			Name      string `xml:"name"`
			IsArbiter int    `xml:"isArbiter"`
		} `xml:"brick"`
	} `xml:"bricks"`
	Options struct {
		Option []struct {
			Name  string `xml:"name"`
			Value string `xml:"value"`
		} `xml:"option"`
	} `xml:"options"`
}

// option returns the value of a reconfigured volume option and whether it is set.
func (v *volumeXML) option(name string) (string, bool) {
	for _, o := range v.Options.Option {
		if o.Name == name {
			return o.Value, true
		}
	}
	return "", false
}

// brickHosts returns the hosts of the volume's bricks ("host:/path"), in
// brick order, without duplicates.
func (v *volumeXML) brickHosts() []string {
	var hosts []string
	seen := map[string]bool{}
	for _, b := range v.Bricks.Brick {
		i := strings.LastIndex(b.Name, ":/")
		if i <= 0 {
			continue
		}
		h := b.Name[:i]
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts
}

var errNoXML = errors.New("no cliOutput XML in the gluster CLI's answer")

// parseCLIOutput decodes a `gluster --xml` answer. Anything before the XML
// declaration (some CLI versions print warnings to stdout) is skipped.
func parseCLIOutput(stdout []byte) (*cliOutput, error) {
	i := bytes.Index(stdout, []byte("<cliOutput"))
	if i < 0 {
		return nil, errNoXML
	}
	var out cliOutput
	if err := xml.Unmarshal(stdout[i:], &out); err != nil {
		return nil, fmt.Errorf("parse gluster XML: %w", err)
	}
	return &out, nil
}

// quotaLimit is one row of `volume quota VOL list --xml`.
type quotaLimit struct {
	Path     string
	Hard     int64 // -1 when the path has no limit (N/A)
	Used     int64
	Exceeded bool
	// Files and Dirs count the objects under the path, -1 when unknown
	// (the CLI's list does not say).
	Files, Dirs int64
}

func (q *quotaLimitXML) parse() (quotaLimit, error) {
	l := quotaLimit{Path: q.Path, Hard: -1, Exceeded: q.HLExceed == "Yes", Files: -1, Dirs: -1}
	if q.HardLimit != "" && q.HardLimit != "N/A" {
		// Bytes in the XML; gluster's own units if it ever prints them.
		n, err := quota.ParseGlusterSize(q.HardLimit)
		if err != nil {
			return l, fmt.Errorf("bad hard_limit %q for %s", q.HardLimit, q.Path)
		}
		l.Hard = n
	}
	if s := strings.TrimSpace(q.Used); s != "" && s != "N/A" {
		n, err := quota.ParseGlusterSize(s)
		if err != nil {
			return l, fmt.Errorf("bad used_space %q for %s", q.Used, q.Path)
		}
		l.Used = n
	}
	return l, nil
}
