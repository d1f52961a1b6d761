package glustertest

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
)

// QuotaLimits returns every directory limit on the cluster's volume as
// path -> hard limit, exactly as `gluster volume quota VOL list --xml`
// reports it (bytes as a decimal string, or "N/A"). Tests compare it before
// and after an operation to prove what changed on the volume.
func (c *Cluster) QuotaLimits(ctx context.Context) (map[string]string, error) {
	out, err := c.Gluster(ctx, "--xml", "volume", "quota", c.opts.Volume, "list")
	if err != nil {
		return nil, err
	}
	i := strings.Index(out, "<cliOutput")
	if i < 0 {
		return nil, fmt.Errorf("quota list: no XML in %q", out)
	}
	var doc struct {
		OpRet    int    `xml:"opRet"`
		OpErrstr string `xml:"opErrstr"`
		Limits   []struct {
			Path string `xml:"path"`
			Hard string `xml:"hard_limit"`
		} `xml:"volQuota>limit"`
	}
	if err := xml.Unmarshal([]byte(out[i:]), &doc); err != nil {
		return nil, fmt.Errorf("quota list: %w", err)
	}
	m := map[string]string{}
	if doc.OpRet != 0 {
		// "No quota configured on volume": no limits at all.
		if strings.Contains(doc.OpErrstr, "No quota configured") {
			return m, nil
		}
		return nil, fmt.Errorf("quota list: %s", doc.OpErrstr)
	}
	for _, l := range doc.Limits {
		m[l.Path] = l.Hard
	}
	return m, nil
}
