package kubetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKubetestStartStop starts the real control plane, checks that the API
// server serves the storage API with the admin token and that the PV
// binder runs, then stops it and checks that nothing is left: no child
// process, no listening port, no directory.
func TestKubetestStartStop(t *testing.T) {
	if why := Prereqs(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute) // a first run builds the binaries
	defer cancel()
	start := time.Now()
	cp, err := Start(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cp.Stop()
		}
	}()
	t.Logf("control plane up in %s at %s", time.Since(start).Round(time.Millisecond), cp.Host())

	pids := cp.PIDs()
	if len(pids) != 3 {
		t.Fatalf("PIDs() = %v, want 3 running components", pids)
	}
	for _, p := range pids {
		if ppid := parentOf(p); ppid != os.Getpid() {
			t.Errorf("pid %d has parent %d, want this test process %d", p, ppid, os.Getpid())
		}
	}
	kc, err := os.ReadFile(cp.Kubeconfig())
	if err != nil || !bytes.Contains(kc, []byte(cp.Host())) || !bytes.Contains(kc, []byte(cp.Token())) {
		t.Fatalf("kubeconfig %s does not name the server and token (%v):\n%s", cp.Kubeconfig(), err, kc)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.Host()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get("/api/v1/persistentvolumes", cp.Token()); code != http.StatusOK {
		t.Errorf("admin GET persistentvolumes: %d %s", code, body)
	}
	if code, _ := get("/api/v1/persistentvolumes", "wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("GET with a wrong token: %d, want 401", code)
	}
	if code, body := get("/apis/storage.k8s.io/v1/storageclasses", cp.Token()); code != http.StatusOK {
		t.Errorf("admin GET storageclasses: %d %s", code, body)
	}
	// The PV binder runs: a static PV and a matching claim become Bound.
	post := func(path, body string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cp.Host()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cp.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b.String())
		}
	}
	post("/api/v1/persistentvolumes", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"kubetest-pv"},`+
		`"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteMany"],"storageClassName":"manual",`+
		`"hostPath":{"path":"/tmp/kubetest-pv"}}}`)
	post("/api/v1/namespaces/default/persistentvolumeclaims", `{"apiVersion":"v1","kind":"PersistentVolumeClaim",`+
		`"metadata":{"name":"kubetest-pvc"},"spec":{"accessModes":["ReadWriteMany"],"storageClassName":"manual",`+
		`"resources":{"requests":{"storage":"1Gi"}}}}`)
	bound := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		code, body := get("/api/v1/namespaces/default/persistentvolumeclaims/kubetest-pvc", cp.Token())
		var pvc struct {
			Status struct{ Phase string } `json:"status"`
		}
		if code == http.StatusOK && json.Unmarshal([]byte(body), &pvc) == nil && pvc.Status.Phase == "Bound" {
			bound = true
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !bound {
		t.Errorf("the claim was not Bound to the static PV within 60 s: is the PV binder running? log tail:\n%s",
			tail(cp.Log("kube-controller-manager", 1<<20), 3000))
	}
	client.CloseIdleConnections()

	dir, ports := cp.Dir(), cp.Ports()
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := cp.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, p := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err == nil && parentOf(p) == os.Getpid() {
			t.Errorf("pid %d still exists after Stop", p)
		}
	}
	if kids := children(); len(kids) > 0 {
		t.Errorf("child processes left after Stop: %v", kids)
	}
	if left := cp.PIDs(); len(left) > 0 {
		t.Errorf("PIDs() after Stop = %v", left)
	}
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after Stop", p)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (%v)", dir, err)
	}
}

// parentOf returns pid's parent pid from /proc/PID/stat (0 if gone).
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// children lists the live child processes of this test process.
func children() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parentOf(pid) == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}
