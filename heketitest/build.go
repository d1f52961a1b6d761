package heketitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Version is the heketi release the binaries are built from. v10.4.x
// cannot be fetched from the Go module proxy (its go.mod names the module
// without /v10), so this is the newest one that builds.
const Version = "v10.3.0"

// toolsMod pins heketi's dependencies to the versions v10.4.0's go.mod
// names: v10.3.0 has no go.mod, and the newest versions of its dependencies
// do not build with it.
const toolsMod = `module subvolkit.local/heketitools

go 1.26.0

require github.com/heketi/heketi ` + Version + `+incompatible

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/auth0/go-jwt-middleware v1.0.1 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/boltdb/bolt v1.3.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/docker/spdystream v0.0.0-20160310174837-449fdfce4d96 // indirect
	github.com/form3tech-oss/jwt-go v3.2.2+incompatible // indirect
	github.com/go-ozzo/ozzo-validation v3.6.0+incompatible // indirect
	github.com/gogo/protobuf v0.0.0-20171007142547-342cbe0a0415 // indirect
	github.com/golang/protobuf v1.5.0 // indirect
	github.com/google/gofuzz v1.0.0 // indirect
	github.com/googleapis/gnostic v0.0.0-20170729233727-0c5108395e2d // indirect
	github.com/gorilla/mux v1.8.0 // indirect
	github.com/heketi/tests v0.0.0-20151005000721-f3775cbcefd6 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/lpabon/godbc v0.1.1 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/urfave/negroni v1.0.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/oauth2 v0.37.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/term v0.46.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	golang.org/x/time v0.0.0-20161028155119-f51c12702a4d // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/inf.v0 v0.9.0 // indirect
	gopkg.in/yaml.v2 v2.2.8 // indirect
	k8s.io/api v0.15.12 // indirect
	k8s.io/apimachinery v0.15.12 // indirect
	k8s.io/client-go v0.15.12 // indirect
	k8s.io/klog v0.3.1 // indirect
	k8s.io/utils v0.0.0-20190221042446-c2654d5206da // indirect
	sigs.k8s.io/yaml v1.1.0 // indirect
)
`

const toolsGo = `//go:build tools

package heketitools

import (
	_ "github.com/heketi/heketi"
	_ "github.com/heketi/heketi/client/cli/go"
)
`

// Binaries are the paths of a built heketi server and heketi-cli.
type Binaries struct {
	Server, CLI string
}

// CacheDir is where Build keeps the binaries by default, outside any
// repository and keyed by version and pinned dependencies:
// /var/cache/subvolkit/heketi/<Version>-<hash> (next to the Kubernetes
// binaries of the project's tests), or under the user's cache directory
// when not root.
func CacheDir() (string, error) {
	base := "/var/cache/subvolkit"
	if os.Geteuid() != 0 {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(d, "subvolkit")
	}
	sum := sha256.Sum256([]byte(toolsMod + toolsGo))
	return filepath.Join(base, "heketi", Version+"-"+hex.EncodeToString(sum[:6])), nil
}

// Build returns heketi's server and CLI binaries, building them from the
// Go module proxy into dir ("" means CacheDir()) the first time: about a
// minute with a warm module cache. Concurrent calls, from any process,
// build once (an flock on dir.lock).
func Build(ctx context.Context, dir string) (*Binaries, error) {
	if dir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, fmt.Errorf("heketitest: %w", err)
		}
		dir = d
	}
	bins := &Binaries{Server: filepath.Join(dir, "bin", "heketi"), CLI: filepath.Join(dir, "bin", "heketi-cli")}
	if built(bins) {
		return bins, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("heketitest: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("heketitest: %w", err)
	}
	defer lock.Close()
	if err := flock(ctx, lock); err != nil {
		return nil, fmt.Errorf("heketitest: waiting for another build: %w", err)
	}
	if built(bins) { // another process built them meanwhile
		return bins, nil
	}
	if err := build(ctx, dir, bins); err != nil {
		return nil, fmt.Errorf("heketitest: building heketi %s: %w", Version, err)
	}
	return bins, nil
}

func built(b *Binaries) bool {
	for _, p := range []string{b.Server, b.CLI} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

func flock(ctx context.Context, f *os.File) error {
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// build makes the tools module in dir/src and builds both binaries into
// dir/bin, renaming them into place last so that a half-built cache is
// never taken for a built one.
func build(ctx context.Context, dir string, bins *Binaries) error {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(toolsMod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "tools.go"), []byte(toolsGo), 0o644); err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	env := []string{"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0"}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, lastLines(out, 20))
		}
		return nil
	}
	if err := run("mod", "tidy", "-e"); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(bins.Server), 0o755); err != nil {
		return err
	}
	for pkg, out := range map[string]string{
		"github.com/heketi/heketi":               bins.Server,
		"github.com/heketi/heketi/client/cli/go": bins.CLI,
	} {
		if err := run("build", "-o", out+".new", pkg); err != nil {
			return err
		}
	}
	for _, out := range []string{bins.Server, bins.CLI} {
		if err := os.Rename(out+".new", out); err != nil {
			return err
		}
	}
	if !built(bins) {
		return errors.New("the binaries are not there after the build")
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
