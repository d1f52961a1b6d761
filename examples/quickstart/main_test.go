package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
)

// TestQuickstart runs the README's demo end to end on a real GlusterFS, so
// that the first thing a newcomer runs keeps working.
func TestQuickstart(t *testing.T) {
	glustertest.RequirePrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, "8Mi"), out.String())
	s := out.String()
	t.Log("\n" + s)
	assert.Contains(t, s, "df: size 8 MiB, used 0 B, available 8 MiB", "df in the deep mount shows the limit")
	assert.Regexp(t, `wrote (8|9)(\.\d)? MiB, then: .*disk quota exceeded`, s, "writes stop at the limit")
	assert.Regexp(t, `df: size 16 MiB, used (8|9)(\.\d)? MiB`, s, "resize shows in df")
	assert.Regexp(t, regexp.MustCompile(`(?m)^\s+app-data-copy\s+16 MiB\s+(8|9)(\.\d)? MiB\s+(7|8)(\.\d)? MiB\s+2\s+app-data\s*$`), s, "the clone holds the source's data")
	assert.Contains(t, s, "0 subvolumes left")

	_, err := parseAndRun(ctx, "-1Gi")
	assert.ErrorContains(t, err, "invalid argument", "a bad size is refused before anything starts")
}

func parseAndRun(ctx context.Context, size string) (string, error) {
	var out bytes.Buffer
	err := run(ctx, &out, size)
	return out.String(), err
}
