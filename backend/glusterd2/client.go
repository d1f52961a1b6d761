package glusterd2

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// tokenTTL is how long a request's token is valid, as in pkg/restclient.
const tokenTTL = 120 * time.Second

// maxBody bounds what is read of an answer (a list of thousands of volumes
// is a few MiB).
const maxBody = 64 << 20

// client is a context-aware glusterd2 REST client speaking the same JSON
// (the pkg/api types) and the same JWT as pkg/restclient. It is safe for
// concurrent use.
type client struct {
	base     string // URL without a trailing slash
	user     string
	secret   []byte
	hc       *http.Client
	timeout  time.Duration // per attempt; 0 means none
	retryMax int
	waitMin  time.Duration
	waitMax  time.Duration
	log      *slog.Logger
}

// token builds the bearer token pkg/restclient sends: HS256 over the claims
// {"exp": now+120s, "iss": user}, which glusterd2's middleware checks.
func (c *client) token(now time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct {
		Exp int64  `json:"exp"`
		Iss string `json:"iss"`
	}{now.Add(tokenTTL).Unix(), c.user})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, c.secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// do sends a request with body (JSON-encoded unless nil) and decodes an
// answer with status want into out (unless nil). It retries, with capped
// exponential backoff and jitter, what is safe to send again: a 409 (the
// transaction lock was not obtained, so nothing was done), a connection that
// could not be made, and, for GET only, a 5xx other than 501 or a broken
// connection. It gives up after retryMax retries, or when ctx is done.
//
// The error is an *HTTPError if glusterd2 answered, a *transportError if it
// did not, or wraps ctx.Err().
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("glusterd2: encode %s %s: %w", method, path, err)
		}
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		retry, err := c.once(ctx, method, path, payload, want, out)
		if err == nil || !retry {
			return err
		}
		if attempt > c.retryMax {
			if attempt > 1 {
				return fmt.Errorf("giving up after %d attempt(s): %w", attempt, err)
			}
			return err
		}
		wait := c.backoff(attempt)
		c.log.LogAttrs(ctx, slog.LevelDebug, "glusterd2: retrying",
			slog.String("method", method), slog.String("path", path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempt(s), the last: %w)", ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}

// backoff is waitMin·2^(attempt-1) capped at waitMax, of which a random
// half is taken off so that clients that collided spread out.
func (c *client) backoff(attempt int) time.Duration {
	d := c.waitMin
	for i := 1; i < attempt && d < c.waitMax; i++ {
		d *= 2
	}
	d = min(d, c.waitMax)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// once makes one attempt and says whether a failure may be retried.
func (c *client) once(ctx context.Context, method, path string, payload []byte, want int, out any) (bool, error) {
	actx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, c.base+path, body)
	if err != nil {
		return false, fmt.Errorf("glusterd2: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" && len(c.secret) > 0 {
		req.Header.Set("Authorization", "bearer "+c.token(time.Now()))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, actx, method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return c.transportErr(ctx, actx, method, path, err)
	}
	if resp.StatusCode != want {
		he := newHTTPError(method, path, resp.StatusCode, raw)
		retry := resp.StatusCode == http.StatusConflict ||
			(method == http.MethodGet && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented)
		return retry, he
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("glusterd2: %s %s: HTTP %d with an answer that does not decode: %w",
				method, path, resp.StatusCode, err)
		}
	}
	return false, nil
}

// transportErr wraps a failure to get an answer. The caller's cancellation
// stays a context error; the end of a per-attempt timeout does not (the
// caller's deadline did not pass: the server is slow, so Unavailable).
func (c *client) transportErr(ctx, actx context.Context, method, path string, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, fmt.Errorf("glusterd2: %s %s: %w", method, path, ctx.Err())
	}
	if actx.Err() != nil {
		err = errors.New("no answer within " + c.timeout.String())
	}
	te := &transportError{method: method, path: path, err: err}
	var cv *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ue) || errors.As(err, &he) {
		return false, te // will not change by trying again
	}
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	return dial || method == http.MethodGet, te
}
