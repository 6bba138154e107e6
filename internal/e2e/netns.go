package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testutil"
)

// Link is two network namespaces joined by a veth pair: a Pi ("pi") and a lab host
// ("lab"), each alone on its end of a /30 in 10.249.0.0/16. Both ends live in their
// own namespaces, so nothing on this machine, its addresses or its routes, can reach
// or be reached through them. Made with ip(8), shaped with tc(8) and nft(8), removed
// by Close (deleting a namespace deletes its veth end, qdiscs and rules).
type Link struct {
	ID              string // unique to this link: in the names of everything it made
	PiNS, LabNS     string // namespace names
	PiDev, LabDev   string // the veth ends
	PiAddr, LabAddr string // their IPv4 addresses
	ip, tc, nft     string // the tools' paths
}

// LinkUnavailable says why this machine cannot make a Link (not root, a tool
// missing, no network namespaces), or nil when it can.
func LinkUnavailable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root (ip netns add needs CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	}
	for _, tool := range []string{"ip", "tc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install iproute2 nftables)", tool)
		}
	}
	name := "cis490-probe-" + randomHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return exec.Command("ip", "netns", "del", name).Run()
}

// NewLink makes the namespaces and the veth pair, addressed and up. The caller
// Closes it, also when NewLink fails halfway (Close removes what was made).
func NewLink() (*Link, error) {
	id := randomHex(3)
	l := &Link{ID: id, PiNS: "cis490-" + id + "-pi", LabNS: "cis490-" + id + "-lab", PiDev: "c4" + id + "p", LabDev: "c4" + id + "l"}
	l.ip, _ = exec.LookPath("ip")
	l.tc, _ = exec.LookPath("tc")
	l.nft, _ = exec.LookPath("nft")
	if out, err := exec.Command(l.ip, "-4", "-o", "addr").CombinedOutput(); err != nil || strings.Contains(string(out), " 10.249.") {
		return l, fmt.Errorf("this machine has addresses in 10.249.0.0/16, which the link's namespaces use (%v):\n%s", err, out)
	}
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	l.PiAddr, l.LabAddr = fmt.Sprintf("10.249.%d.1", b[0]), fmt.Sprintf("10.249.%d.2", b[0])
	steps := [][]string{
		{l.ip, "netns", "add", l.PiNS},
		{l.ip, "netns", "add", l.LabNS},
		{l.ip, "link", "add", l.PiDev, "netns", l.PiNS, "type", "veth", "peer", "name", l.LabDev, "netns", l.LabNS},
	}
	for _, end := range []struct{ ns, dev, addr string }{{l.PiNS, l.PiDev, l.PiAddr}, {l.LabNS, l.LabDev, l.LabAddr}} {
		steps = append(steps,
			[]string{l.ip, "-n", end.ns, "addr", "add", end.addr + "/30", "dev", end.dev},
			// One TCP segment a packet: loss then drops segments, not 64 KiB bursts of
			// them, and the token bucket meters what a real link would carry.
			[]string{l.ip, "-n", end.ns, "link", "set", end.dev, "gso_max_segs", "1", "gso_max_size", "1500"},
			[]string{l.ip, "-n", end.ns, "link", "set", end.dev, "up"},
			[]string{l.ip, "-n", end.ns, "link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := runTool(s[0], s[1:]...); err != nil {
			return l, err
		}
	}
	return l, nil
}

// Close ends what still runs in the namespaces (only the link's user's processes
// can be there) and deletes them.
func (l *Link) Close() {
	for _, ns := range []string{l.PiNS, l.LabNS} {
		out, _ := exec.Command(l.ip, "netns", "pids", ns).Output()
		for _, field := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(field); err == nil && pid > 0 {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
		_ = exec.Command(l.ip, "netns", "del", ns).Run()
	}
}

// Shape limits each direction to rate (tc's syntax, "50mbit") with a token bucket,
// and drops lossPercent of the packets each end sends (nftables, numgen random).
// There is no delay: this kernel has no netem qdisc, and no other qdisc or nftables
// statement holds a packet back for a time.
func (l *Link) Shape(rate string, lossPercent int) error {
	for _, end := range []struct{ ns, dev string }{{l.PiNS, l.PiDev}, {l.LabNS, l.LabDev}} {
		if err := runTool(l.tc, "-n", end.ns, "qdisc", "add", "dev", end.dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms"); err != nil {
			return err
		}
		if lossPercent <= 0 {
			continue
		}
		rules := fmt.Sprintf("table inet cis490_loss {\n chain out {\n  type filter hook output priority 0; policy accept;\n"+
			"  oifname %q numgen random mod 100 < %d counter drop\n }\n}\n", end.dev, lossPercent)
		cmd := exec.Command(l.ip, "netns", "exec", end.ns, l.nft, "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft in %s: %v: %s", end.ns, err, out)
		}
	}
	return nil
}

// Cut takes the lab host's end down (its Wi-Fi gone: its routes to the Pi go with
// it, and the Pi's end loses carrier) for d, then up again.
func (l *Link) Cut(d time.Duration) error {
	if err := runTool(l.ip, "-n", l.LabNS, "link", "set", l.LabDev, "down"); err != nil {
		return err
	}
	time.Sleep(d) // the fault itself lasts d: it is what is measured, not a wait for something
	return runTool(l.ip, "-n", l.LabNS, "link", "set", l.LabDev, "up")
}

// LabTxBytes is what the lab host's end has transmitted: frames, so IP, TCP and TLS
// headers and retransmissions included.
func (l *Link) LabTxBytes() (int64, error) {
	out, err := exec.Command(l.ip, "-n", l.LabNS, "-s", "-j", "link", "show", "dev", l.LabDev).Output()
	if err != nil {
		return 0, fmt.Errorf("ip -s link show %s: %w", l.LabDev, err)
	}
	var links []struct {
		Stats struct {
			TX struct{ Bytes int64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s -j link show %s: %v: %s", l.LabDev, err, out)
	}
	return links[0].Stats.TX.Bytes, nil
}

// InNS writes into dir an executable that runs bin inside ns.
func (l *Link) InNS(dir, ns, bin string) (string, error) {
	path := filepath.Join(dir, "in-"+ns)
	script := fmt.Sprintf("#!/bin/sh\nexec %s netns exec %s %s \"$@\"\n", l.ip, ns, bin)
	return path, os.WriteFile(path, []byte(script), 0o755)
}

// RigOptions shape a CutRig.
type RigOptions struct {
	Rate        string // tc's syntax; "" leaves the link unshaped
	LossPercent int
	// Timeout is the lab host's receiver.timeout (Go duration), "" for the default.
	Timeout string
}

// CutRig is the real `cis490 serve` (TLS, tokens) on the Pi's end of a Link and a
// lab host with a spool on the other, everything in one folder.
type CutRig struct {
	*Link
	Data, Outbox string
	labConfig    string
	labBin       string
	env          []string
	serve        *exec.Cmd
	serveDone    chan struct{}
	serveLog     *testutil.SyncBuffer
}

// StartCutRig makes a Link in dir's name, starts bin's receiver in the Pi's
// namespace and writes the lab host's configuration. The caller Closes it, also
// when it fails.
func StartCutRig(dir, bin string, opts RigOptions) (*CutRig, error) {
	l, err := NewLink()
	r := &CutRig{Link: l, Data: filepath.Join(dir, "data"), Outbox: filepath.Join(dir, "spool", "outbox"), labConfig: filepath.Join(dir, "lab-host.toml")}
	if err != nil {
		return r, err
	}
	if opts.Rate != "" {
		if err := l.Shape(opts.Rate, opts.LossPercent); err != nil {
			return r, err
		}
	}
	home := filepath.Join(dir, "home")
	r.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"), "STATE_DIRECTORY=" + filepath.Join(home, "state")}
	caFile, certFile, keyFile, err := ServerCert(dir, l.PiAddr)
	if err != nil {
		return r, err
	}
	rcfg := filepath.Join(dir, "receiver.toml")
	if err := os.WriteFile(rcfg, fmt.Appendf(nil, "[serve]\nlisten = \"%s:8490\"\ndata_dir = %q\ntokens_file = %q\n[serve.tls]\ncert_file = %q\nkey_file = %q\n",
		l.PiAddr, r.Data, filepath.Join(dir, "tokens.toml"), certFile, keyFile), 0o600); err != nil {
		return r, err
	}
	mint := exec.Command(bin, "--config", rcfg, "token", "new", "--host", "lab-07")
	mint.Env = r.env
	token, err := mint.Output()
	if err != nil {
		return r, fmt.Errorf("cis490 token new: %w", err)
	}
	tokenFile := filepath.Join(dir, "lab-07.token")
	if err := os.WriteFile(tokenFile, token, 0o600); err != nil {
		return r, err
	}
	if err := r.startServe(dir, bin, rcfg); err != nil {
		return r, err
	}
	if err := os.MkdirAll(r.Outbox, 0o750); err != nil {
		return r, err
	}
	timeout := ""
	if opts.Timeout != "" {
		timeout = fmt.Sprintf("timeout = %q\n", opts.Timeout)
	}
	lab := fmt.Sprintf("host = \"lab-07\"\n[receiver]\nurl = \"https://%s:8490\"\nca_file = %q\ntoken_file = %q\n%s[ship]\nspool_dir = %q\n",
		l.PiAddr, caFile, tokenFile, timeout, filepath.Dir(r.Outbox))
	if err := os.WriteFile(r.labConfig, []byte(lab), 0o600); err != nil {
		return r, err
	}
	r.labBin, err = l.InNS(dir, l.LabNS, bin)
	return r, err
}

// startServe starts the receiver in the Pi's namespace and waits for its
// "receiver listening" line.
func (r *CutRig) startServe(dir, bin, cfg string) error {
	inPi, err := r.InNS(dir, r.PiNS, bin)
	if err != nil {
		return err
	}
	r.serve = exec.Command(inPi, "serve", "--config", cfg)
	r.serve.Env = r.env
	stderr, err := r.serve.StderrPipe()
	if err != nil {
		return err
	}
	if err := r.serve.Start(); err != nil {
		return err
	}
	r.serveDone, r.serveLog = make(chan struct{}), &testutil.SyncBuffer{}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			_, _ = r.serveLog.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), `"message":"receiver listening"`) {
				once.Do(func() { close(listening) })
			}
		}
	}()
	go func() {
		_ = r.serve.Wait()
		close(r.serveDone)
	}()
	select {
	case <-listening:
		return nil
	case <-r.serveDone:
		return fmt.Errorf("cis490 serve exited before listening:\n%s", r.serveLog.String())
	case <-time.After(20 * time.Second):
		return fmt.Errorf("cis490 serve did not listen within 20 s:\n%s", r.serveLog.String())
	}
}

// ServeLog is what the receiver logged so far.
func (r *CutRig) ServeLog() string {
	if r.serveLog == nil {
		return ""
	}
	return r.serveLog.String()
}

// Close stops the receiver and removes the link.
func (r *CutRig) Close() {
	if r.serve != nil && r.serve.Process != nil {
		_ = r.serve.Process.Kill()
		<-r.serveDone
	}
	if r.Link != nil {
		r.Link.Close()
	}
}

// Drop writes size random bytes as an episode in the outbox and returns its SHA-256.
func (r *CutRig) Drop(name string, size int64) (string, error) {
	f, err := os.Create(filepath.Join(r.Outbox, name))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// ShipRun is one `cis490 ship` in the lab namespace.
type ShipRun struct {
	Result
	Elapsed time.Duration
	TxBytes int64 // what the lab end transmitted meanwhile
	Resumed int   // from the summary line: "resumed N time(s) after a cut"
	Cuts    int   // how many of the cuts asked for were made
}

// CutPoints are the values the lab end's transmitted-bytes counter will have after
// each fraction of size more bytes, counted from now: where Ship cuts.
func (r *CutRig) CutPoints(size int64, fracs ...float64) ([]int64, error) {
	base, err := r.LabTxBytes()
	out := make([]int64, len(fracs))
	for i, f := range fracs {
		out[i] = base + int64(f*float64(size))
	}
	return out, err
}

// Ship runs `cis490 ship ARGS` in the lab namespace and takes the link down for down
// each time the lab end's transmitted bytes (LabTxBytes) reach the next of cutAt. It
// returns when ship exits, with the cuts it made, or kills it after limit.
func (r *CutRig) Ship(cutAt []int64, down, limit time.Duration, args ...string) (ShipRun, error) {
	cmd := exec.Command(r.labBin, append([]string{"--config", r.labConfig, "ship"}, args...)...)
	cmd.Env = r.env
	var out, errb testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	base, err := r.LabTxBytes()
	if err != nil {
		return ShipRun{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ShipRun{}, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	cuts := 0
	for _, at := range cutAt {
		for {
			tx, err := r.LabTxBytes()
			if err != nil {
				return ShipRun{}, err
			}
			if tx >= at {
				break
			}
			select {
			case <-done:
				return r.ended(cmd, &out, &errb, start, base, cuts)
			case <-deadline.C:
				return ShipRun{}, fmt.Errorf("ship did not end within %s:\n%s\n%s", limit, out.String(), errb.String())
			case <-tick.C:
			}
		}
		if err := r.Cut(down); err != nil {
			return ShipRun{}, err
		}
		cuts++
	}
	select {
	case <-done:
		return r.ended(cmd, &out, &errb, start, base, cuts)
	case <-deadline.C:
		return ShipRun{}, fmt.Errorf("ship did not end within %s:\n%s\n%s", limit, out.String(), errb.String())
	}
}

var resumedRE = regexp.MustCompile(`resumed (\d+) time\(s\) after a cut`)

func (r *CutRig) ended(cmd *exec.Cmd, out, errb *testutil.SyncBuffer, start time.Time, base int64, cuts int) (ShipRun, error) {
	run := ShipRun{Result: Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}, Elapsed: time.Since(start), Cuts: cuts}
	tx, err := r.LabTxBytes()
	run.TxBytes = tx - base
	if m := resumedRE.FindStringSubmatch(run.Stdout); m != nil {
		run.Resumed, _ = strconv.Atoi(m[1])
	}
	return run, err
}

// PutBytes sums what the receiver read of every PUT of sha (its index lines' bytes),
// and lists them as status:bytes.
func (r *CutRig) PutBytes(sha string) (int64, []string, error) {
	var sum int64
	var lines []string
	now := time.Now()
	_, err := index.Read(filepath.Join(r.Data, "index"), now.Add(-24*time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		if e.Route == "episodes" && e.Method == http.MethodPut && e.SHA256 == sha {
			sum += e.Bytes
			lines = append(lines, fmt.Sprintf("%d:%d", e.Status, e.Bytes))
		}
		return nil
	})
	return sum, lines, err
}

// ServerCert writes a CA and a server certificate for addr (an IP SAN) into dir and
// returns the CA's, the certificate's and the key's paths.
func ServerCert(dir, addr string) (caFile, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netns test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "receiver"},
		IPAddresses: []net.IP{net.ParseIP(addr)}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for _, f := range []struct {
		path  string
		block *pem.Block
	}{{caFile, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}}, {certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}},
		{keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(f.block), 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
}

func runTool(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
