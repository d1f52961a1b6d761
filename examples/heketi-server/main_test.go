package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/subvol"
)

func keyFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestParseOptions(t *testing.T) {
	admin := keyFile(t, "s3cret\n")
	user := keyFile(t, "us3r")
	empty := keyFile(t, "\n")
	envOf := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	o, err := parseOptions([]string{"-volume", "gv0", "-servers", "a, b,,c", "-admin-key-file", admin}, envOf(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", o.listen, "loopback unless told otherwise")
	assert.Equal(t, []string{"a", "b", "c"}, o.srv.Servers)
	assert.Equal(t, o.srv.Servers, o.cli.Servers)
	assert.Equal(t, "gv0", o.cli.Volume)
	assert.Equal(t, "s3cret", o.srv.AdminKey, "the trailing newline is not part of the key")
	assert.Empty(t, o.srv.UserKey)
	assert.False(t, o.srv.DisableAuth)
	assert.True(t, o.prepare.StrictQuota)
	assert.Equal(t, 8, o.srv.MaxInFlight)
	assert.Equal(t, subvol.DeletePolicyDelete, o.srv.DeletePolicy)

	// The environment, and flags over it.
	env := envOf(map[string]string{
		"SVK_HEKETI_VOLUME": "envvol", "SVK_HEKETI_SERVERS": "h1", "SVK_HEKETI_ADMIN_KEY_FILE": admin,
		"SVK_HEKETI_USER_KEY_FILE": user, "SVK_HEKETI_LISTEN": "0.0.0.0:9000", "SVK_HEKETI_MAX_INFLIGHT": "3",
		"SVK_HEKETI_DELETE_POLICY": "archive", "SVK_HEKETI_STRICT_QUOTA": "false",
	})
	o, err = parseOptions([]string{"-listen", "127.0.0.1:1"}, env, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", o.listen)
	assert.Equal(t, "envvol", o.srv.Volume)
	assert.Equal(t, "us3r", o.srv.UserKey)
	assert.Equal(t, 3, o.srv.MaxInFlight)
	assert.Equal(t, subvol.DeletePolicyArchive, o.srv.DeletePolicy)
	assert.False(t, o.prepare.StrictQuota)

	o, err = parseOptions([]string{"-volume", "v", "-servers", "h", "-disable-auth"}, envOf(nil), io.Discard)
	require.NoError(t, err)
	assert.True(t, o.srv.DisableAuth)
	assert.Empty(t, o.srv.AdminKey)

	for _, bad := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-servers", "h", "-admin-key-file", admin}, "-volume and -servers are required"},
		{[]string{"-volume", "v", "-servers", "h"}, "-admin-key-file is required"},
		{[]string{"-volume", "v", "-servers", "h", "-admin-key-file", empty}, "is empty"},
		{[]string{"-volume", "v", "-servers", "h", "-admin-key-file", "/nonexistent/key"}, "reading key"},
		{[]string{"-volume", "v", "-servers", "h", "-disable-auth", "-admin-key-file", admin}, "contradict"},
		{[]string{"-volume", "v", "-servers", "h", "-admin-key-file", admin, "-delete-policy", "shred"}, "-delete-policy"},
		{[]string{"-volume", "v", "-servers", "h", "-admin-key-file", admin, "-tls-cert", "c.pem"}, "go together"},
		{[]string{"-volume", "v", "-servers", "h", "-admin-key-file", admin, "extra"}, "unexpected arguments"},
		{[]string{"-no-such-flag"}, "not defined"},
	} {
		_, err := parseOptions(bad.args, envOf(nil), io.Discard)
		assert.ErrorContains(t, err, bad.msg, strings.Join(bad.args, " "))
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, PEM-encoded.
func selfSigned(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "heketi-server test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certPath, keyPath
}

// TestRun runs the command's main loop over HTTPS on the memory backend:
// it serves the heketi client, and on cancellation (SIGTERM in main) it
// stops serving and closes the Pool (with the cli backend, that unmounts
// its mount of the volume).
func TestRun(t *testing.T) {
	cert, key := selfSigned(t)
	o, err := parseOptions([]string{
		"-volume", "gv0", "-servers", "gfs1,gfs2",
		"-admin-key-file", keyFile(t, "k"), "-tls-cert", cert, "-tls-key", key,
	}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	mem := memory.New(&memory.Options{Volume: "gv0", Servers: []string{"gfs1", "gfs2"}})
	o.openBackend = func(context.Context) (backend.Backend, error) { return mem, nil }
	o.srv.VolumeInfo = &cli.VolumeInfo{Name: "gv0", Type: "Distribute"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, o, ln, slog.New(slog.DiscardHandler)) }()

	copts := client.DefaultClientOptions()
	copts.PollDelay = 50
	hc := client.NewClientWithOptions("https://"+ln.Addr().String(), "admin", "k", copts)
	require.NoError(t, hc.SetTLSOptions(&client.ClientTLSOptions{VerifyCerts: []string{cert}}))
	deadline := time.Now().Add(time.Minute)
	for hc.Hello() != nil {
		require.True(t, time.Now().Before(deadline), "the server never answered")
		time.Sleep(50 * time.Millisecond)
	}
	v, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1})
	require.NoError(t, err)
	assert.Equal(t, "gv0/vol_"+v.Id, v.Name)
	require.NoError(t, hc.VolumeDelete(v.Id))

	// /metrics, without a token: heketi's names, then subvolkit's.
	hcl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(t, cert)}}}
	resp, err := hcl.Get("https://" + ln.Addr().String() + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "heketi_up 1")
	assert.Contains(t, string(body), `subvolkit_operations_total{backend="cli",operation="allocate"} 1`)
	assert.Contains(t, string(body), `subvolkit_operations_total{backend="cli",operation="delete"} 1`)

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("run did not return after cancellation")
	}
	assert.Error(t, hc.Hello(), "still serving after shutdown")
	_, err = mem.List(context.Background(), nil)
	assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition), "the backend is not closed: %v", err)
}

// certPool trusts the certificate in the PEM file cert.
func certPool(t *testing.T, cert string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(cert)
	require.NoError(t, err)
	p := x509.NewCertPool()
	require.True(t, p.AppendCertsFromPEM(data))
	return p
}
