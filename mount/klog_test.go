package mount

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
	mountutils "k8s.io/mount-utils"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRouteKlog checks that mount-utils' klog lines reach the slog logger,
// with sensitive mount options masked, and nothing reaches stderr.
func TestRouteKlog(t *testing.T) {
	var buf syncBuffer
	RouteKlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer RouteKlog(nil)

	// Capture the process's stderr while klog logs.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stderr
	os.Stderr = w
	// A mount through mount-utils' real mounter that fails fast (no
	// such filesystem type) logs its command line through klog.
	m := mountutils.New("")
	_ = m.MountSensitive("src", t.TempDir(), "nosuchfs-subvolkit", []string{"ro"}, []string{"password=hunter2"})
	klog.Warning("direct klog warning")
	klog.Flush()
	os.Stderr = saved
	require.NoError(t, w.Close())
	var stderr bytes.Buffer
	_, _ = stderr.ReadFrom(r)

	out := buf.String()
	assert.Contains(t, out, "Mounting cmd (mount)", "mount-utils' V(4) line is routed")
	assert.Contains(t, out, "direct klog warning")
	assert.NotContains(t, out, "hunter2", "sensitive options stay masked")
	assert.False(t, strings.Contains(stderr.String(), "Mounting cmd") || strings.Contains(stderr.String(), "direct klog warning"),
		"klog wrote to stderr: %s", stderr.String())
}
