// Command tenantry-vcsim runs the govmomi vCenter simulator for the tenantry lab.
//
// It wraps github.com/vmware/govmomi/simulator (0.24.2, Debian's source package)
// with: TLS from PEM files, the lab administrator and the host's local
// accounts with their passwords, vSphere privileges enforced for every other
// user (authz.go), .vmx files written and read back as ESXi does (vmx.go,
// register.go, question.go), a ready file, a per-SOAP-method latency model, an
// MSP provider inventory (vcenter mode) or a standalone ESXi (esx mode), and
// the fixes that pyVmomi >= 8 needs (see fixes.go, network.go, datastore.go).
// lab/README.md documents the flags.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

// PasswordEnv holds the only password the simulator accepts (never a flag: argv is world-readable).
const PasswordEnv = "TENANTRY_VCSIM_PASSWORD"

type config struct {
	mode      string
	listen    string
	certFile  string
	keyFile   string
	username  string
	password  string
	readyFile string
	latency   string
	nfsRoot   string
	hosts     int

	datastoreDir string
	clientVMs    string
	diskMiB      int
	vms          int

	questionTimeout time.Duration
	watchStdin      bool
	directory       string
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmsgprefix)
	log.SetPrefix("tenantry-vcsim: ")
	log.SetOutput(quietLog{os.Stderr})

	var cfg config
	flag.StringVar(&cfg.mode, "mode", "vcenter", "vcenter (MSP provider site), esx (one standalone ESXi) or client (a tenant's own vCenter)")
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "address to listen on; port 0 picks a free port")
	flag.StringVar(&cfg.certFile, "tls-cert", "", "PEM server certificate (chain); with -tls-key serves https")
	flag.StringVar(&cfg.keyFile, "tls-key", "", "PEM private key for -tls-cert")
	flag.StringVar(&cfg.username, "username", "", "the only user name accepted by Login (password from $"+PasswordEnv+")")
	flag.StringVar(&cfg.readyFile, "ready-file", "", "write {url,host,port,pid} JSON here once listening")
	flag.StringVar(&cfg.latency, "latency", "", `per-method delay, e.g. "RegisterVM=120ms,PowerOnVM_Task=80ms,*=5ms"`)
	flag.StringVar(&cfg.nfsRoot, "nfs-root", "", "directory for NAS datastores whose localPath is relative (default: a temporary directory)")
	flag.IntVar(&cfg.hosts, "hosts", 3, "vcenter mode: number of hosts in cluster 'production' (client: 'site-cluster')")
	flag.StringVar(&cfg.datastoreDir, "datastore-dir", "", "client mode: directory of datastore site-ds-01 (default: a temporary directory)")
	flag.StringVar(&cfg.clientVMs, "client-vms", "", "client mode: comma-separated VMs to create, each with one disk full of bytes")
	flag.IntVar(&cfg.diskMiB, "disk-mib", 256, "client mode: size of each -client-vms disk, MiB")
	flag.IntVar(&cfg.vms, "vms", 0, "number of powered-on VMs to create (vcenter: in folder 'production')")
	flag.DurationVar(&cfg.questionTimeout, "question-timeout", 30*time.Second,
		`a power-on waiting for the "moved or copied?" answer fails after this long (0: waits forever, as vSphere does)`)
	flag.BoolVar(&cfg.watchStdin, "watch-stdin", false, "exit when stdin reaches end of file (the parent died)")
	flag.StringVar(&cfg.directory, "directory", "",
		`vcenter mode: a JSON file {"user@vsphere.local": "password", ...} of directory accounts (read at each login), standing in for vCenter's SSO domain`)
	flag.Parse()
	cfg.password = os.Getenv(PasswordEnv)

	if err := run(cfg); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.mode != "vcenter" && c.mode != "esx" && c.mode != "client":
		return fmt.Errorf("-mode must be vcenter, esx or client, not %q", c.mode)
	case c.username == "" || c.password == "":
		return fmt.Errorf("-username and $%s are both required", PasswordEnv)
	case (c.certFile == "") != (c.keyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case c.hosts < 1 || c.vms < 0:
		return errors.New("-hosts must be >= 1 and -vms >= 0")
	case c.questionTimeout < 0:
		return errors.New("-question-timeout must be >= 0")
	}
	return nil
}

func run(cfg config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	delays, err := parseLatency(cfg.latency)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if cfg.certFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
		if err != nil {
			return fmt.Errorf("loading TLS key pair: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// Listen for the stop request first: one arriving while the model is
	// being built is then handled after start-up, with a clean shutdown.
	stop := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { stop <- (<-signals).String() }()
	if cfg.watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop <- "end of stdin"
		}()
	}

	lab := &lab{}
	defer lab.cleanup()

	if cfg.nfsRoot == "" {
		if cfg.nfsRoot, err = lab.tempDir("govcsim-nfs-"); err != nil {
			return err
		}
	}
	if cfg.nfsRoot, err = filepath.Abs(cfg.nfsRoot); err != nil {
		return err
	}

	model := newModel(cfg.mode, cfg.vms)
	lab.model = model
	if err := model.Create(); err != nil {
		return fmt.Errorf("creating the %s model: %w", cfg.mode, err)
	}
	installPropertyCollector()
	installChangeTracking()
	lab.nfsRoot = cfg.nfsRoot
	fixHosts(lab)

	ctx := context.Background()
	client, err := vim25.NewClient(ctx, model.Service) // in-process, no HTTP: acts as the administrator
	if err != nil {
		return err
	}
	if cfg.mode == "vcenter" || cfg.mode == "client" {
		build := func() error { return buildProvider(ctx, client, lab, cfg.hosts, cfg.vms) }
		if cfg.mode == "client" {
			vms := strings.FieldsFunc(cfg.clientVMs, func(r rune) bool { return r == ',' })
			build = func() error { return buildClientSite(ctx, client, lab, cfg.hosts, cfg.datastoreDir, vms, cfg.diskMiB) }
		}
		if err := build(); err != nil {
			return fmt.Errorf("building the %s inventory: %w", cfg.mode, err)
		}
	}

	model.Service.TLS = tlsConfig
	// The stock login check accepts any user and password with DefaultLogin;
	// the interceptor checks them (administrator, local accounts) first, so
	// that a session carries its real user name.
	model.Service.Listen = &url.URL{Host: cfg.listen, User: simulator.DefaultLogin}
	// The server is not closed on exit: Close waits for pending requests, and
	// a WaitForUpdates without a time limit would hold the shutdown.
	server, err := startServer(model.Service)
	if err != nil {
		return err
	}
	// Already serving, but no client knows the address before the ready file
	// below exists, so no request races with this swap.
	strict := newInterceptor(withChangeTracking(server.Config.Handler, cfg.username, cfg.password), cfg, client)
	strict.syncAll()
	server.Config.Handler = withLatency(withSerializedCreates(strict), delays)

	addr := server.Listener.Addr().(*net.TCPAddr)
	sdk := *server.URL
	sdk.User = nil
	if cfg.readyFile != "" {
		if err := writeReady(cfg.readyFile, sdk.String(), addr.IP.String(), addr.Port); err != nil {
			return err
		}
		defer os.Remove(cfg.readyFile)
	}
	log.Printf("%s mode listening on %s (pid %d)", cfg.mode, sdk.String(), os.Getpid())

	log.Printf("%s: shutting down", <-stop)
	return nil
}

// quietLog drops the simulator's per-change trace lines, which would fill
// the log during benchmarks; everything else (faults, panics) goes through.
type quietLog struct{ out io.Writer }

func (q quietLog) Write(line []byte) (int, error) {
	if bytes.HasSuffix(bytes.TrimSpace(line), []byte(" changes")) || bytes.Contains(line, []byte(": applying ")) {
		return len(line), nil
	}
	return q.out.Write(line)
}

// startServer turns the simulator's listen panic (port in use) into an error.
func startServer(service *simulator.Service) (server *simulator.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot listen on %s: %v", service.Listen.Host, r)
		}
	}()
	return service.NewServer(), nil
}

// lab remembers what this process created so that it can remove it on exit.
type lab struct {
	model   *simulator.Model
	dirs    []string
	nfsRoot string
}

func (l *lab) tempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		l.dirs = append(l.dirs, dir)
	}
	return dir, err
}

func (l *lab) cleanup() {
	if l.model != nil {
		l.model.Remove() // removes the model's govcsim-* datastore directories
	}
	for _, dir := range l.dirs {
		_ = os.RemoveAll(dir)
	}
}

func writeReady(path, sdkURL, host string, port int) error {
	data, err := json.Marshal(map[string]interface{}{
		"url":  sdkURL,
		"host": host,
		"port": port,
		"pid":  os.Getpid(),
	})
	if err != nil {
		return err
	}
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
