package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobmanager"
	"github.com/spate-dev/spate/internal/procdir"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/process"
)

// Sessions live under $SPATE_HOME/sessions (default ~/.spate), one
// directory each, holding the cluster's logs and TaskManagers' files and a
// session.json that names the JobManager.

// sessionInfo is a session's record.
type sessionInfo struct {
	ID      string    `json:"id"`
	REST    string    `json:"rest"`
	PID     int       `json:"pid"`
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
	// Credentials are what a client of the session needs: the paths of
	// its REST token and TLS files (session.json is 0600).
	Credentials *sessionCredentials `json:"credentials,omitempty"`
	// Status is filled in by list: RUNNING, UNREACHABLE or DEAD.
	Status string `json:"status,omitempty"`
}

// sessionCredentials are the REST credentials of a session, as the
// configuration keys that give them (absolute paths of their files).
type sessionCredentials struct {
	TokenFile     string `json:"tokenFile,omitempty"`
	TLS           bool   `json:"tls,omitempty"`
	TLSMutual     bool   `json:"tlsMutual,omitempty"`
	TLSKeystore   string `json:"tlsKeystore,omitempty"`
	TLSTruststore string `json:"tlsTruststore,omitempty"`
}

// credentialsOf are conf's REST credentials, nil if it has none.
func credentialsOf(conf config.Config) (*sessionCredentials, error) {
	var c sessionCredentials
	var err error
	abs := func(key string) (string, error) {
		v, _ := conf.Get(key)
		if v = strings.TrimSpace(v); v == "" {
			return "", nil
		}
		return filepath.Abs(v)
	}
	if c.TokenFile, err = abs(keyRESTTokenFile); err != nil {
		return nil, err
	}
	if c.TLS, err = conf.Bool(jobmanager.KeySSLRESTEnabled, false); err != nil {
		return nil, err
	}
	if c.TLS {
		if c.TLSMutual, err = conf.Bool(jobmanager.KeySSLRESTMutual, false); err != nil {
			return nil, err
		}
		if c.TLSKeystore, err = abs(jobmanager.KeySSLRESTKeystore); err != nil {
			return nil, err
		}
		if c.TLSTruststore, err = abs(jobmanager.KeySSLRESTTruststore); err != nil {
			return nil, err
		}
	}
	if c == (sessionCredentials{}) {
		return nil, nil
	}
	return &c, nil
}

// applyTo sets the session's credentials in conf, where conf does not
// set them itself.
func (c *sessionCredentials) applyTo(conf *config.Config) {
	if c == nil {
		return
	}
	set := func(key, v string) {
		if _, ok := conf.Get(key); !ok && v != "" {
			conf.Set(key, v)
		}
	}
	set(keyRESTTokenFile, c.TokenFile)
	if c.TLS {
		set(jobmanager.KeySSLRESTEnabled, "true")
		set(jobmanager.KeySSLRESTMutual, strconv.FormatBool(c.TLSMutual))
		set(jobmanager.KeySSLRESTKeystore, c.TLSKeystore)
		set(jobmanager.KeySSLRESTTruststore, c.TLSTruststore)
	}
}

// restURL is the session's REST API as a URL.
func (s sessionInfo) restURL() string {
	if strings.Contains(s.REST, "://") {
		return s.REST
	}
	if s.Credentials != nil && s.Credentials.TLS {
		return "https://" + s.REST
	}
	return "http://" + s.REST
}

func sessionsDir() (string, error) {
	home := os.Getenv("SPATE_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the sessions' directory: %w (set SPATE_HOME)", err)
		}
		home = filepath.Join(h, ".spate")
	}
	return filepath.Join(home, "sessions"), nil
}

// session runs the session subcommands.
func session(args []string) error {
	if len(args) == 0 {
		return errors.New("session: want start, list, stop or prune")
	}
	switch args[0] {
	case "start":
		return sessionStart(args[1:])
	case "list":
		return sessionList(args[1:])
	case "stop":
		return sessionStop(args[1:])
	case "prune":
		return sessionPrune(args[1:])
	}
	return fmt.Errorf("session: unknown subcommand %q: want start, list, stop or prune", args[0])
}

func sessionStart(args []string) error {
	fs := flag.NewFlagSet("session start", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	target := fs.String("target", "process-session", "where the session runs: process-session (child processes on this host) or kubernetes-session (pods, see docs/kubernetes.md)")
	tms := fs.Int("taskmanagers", 1, "TaskManagers to start")
	slots := fs.Int("slots", 0, "slots per TaskManager (taskmanager.numberOfTaskSlots, default 1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target != "process-session" && *target != "kubernetes-session" {
		return fmt.Errorf("session start: --target %q: want process-session or kubernetes-session", *target)
	}
	if *tms < 0 {
		return fmt.Errorf("session start: --taskmanagers %d: want 0 or more", *tms)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("session start: %w", err)
	}
	if *slots > 0 {
		conf.Set("taskmanager.numberOfTaskSlots", strconv.Itoa(*slots))
	}
	if *target == "kubernetes-session" {
		return kubeSessionStart(conf, *tms)
	}
	root, err := sessionsDir()
	if err != nil {
		return err
	}
	var b [4]byte
	rand.Read(b[:])
	id := "session-" + hex.EncodeToString(b[:])
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("session start: %w", err)
	}
	cl, err := process.Deployer{}.Deploy(context.Background(), provider.ClusterSpec{
		Mode: provider.Session, Dir: dir, Config: conf.ClusterEntries(), TaskManagers: *tms,
	})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("session start: %w", err)
	}
	rest := cl.REST()
	pid, _ := strconv.Atoi(cl.ID())
	creds, err := credentialsOf(conf)
	if err != nil {
		stopCluster(cl)
		os.RemoveAll(dir)
		return fmt.Errorf("session start: %w", err)
	}
	info := sessionInfo{ID: id, REST: rest, PID: pid, Dir: dir, Started: time.Now(), Credentials: creds}
	b2, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "session.json"), b2, 0o600); err != nil {
		stopCluster(cl)
		os.RemoveAll(dir)
		return fmt.Errorf("session start: %w", err)
	}
	// Wait for the TaskManagers, so that the session takes jobs at once.
	c, err := newClient(rest, conf)
	if err != nil {
		stopCluster(cl)
		os.RemoveAll(dir)
		return fmt.Errorf("session start: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ov, err := c.Overview(context.Background())
		if err == nil && ov.TaskManagers >= *tms {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session start: %s started but its TaskManagers did not register within 30s; see %s/log", id, dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Printf("Session %s started: REST %s, logs in %s\n", id, info.restURL(), filepath.Join(dir, "log"))
	fmt.Printf("Submit with: spate run --session %s ./prog\n", id)
	return nil
}

// Session statuses shown by session list.
const (
	sessionRunning = "RUNNING"
	// sessionUnreachable is a JobManager that runs but does not answer
	// its REST API.
	sessionUnreachable = "UNREACHABLE"
	// sessionDead is a session whose JobManager is gone without being
	// stopped (it crashed or was killed); its directory keeps its logs
	// until spate session stop or prune.
	sessionDead = "DEAD"
)

// sessions returns every session's record with its status, reading only:
// a dead session stays until it is stopped or pruned.
func sessions() ([]sessionInfo, error) {
	root, err := sessionsDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var all []sessionInfo
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		var info sessionInfo
		b, err := os.ReadFile(filepath.Join(dir, "session.json"))
		if err != nil || json.Unmarshal(b, &info) != nil {
			continue // being started, or not a session
		}
		info.Status = status(info)
		all = append(all, info)
	}
	return all, nil
}

// status tells whether a session's JobManager runs and answers.
func status(info sessionInfo) string {
	if !jobManagerRuns(info) {
		return sessionDead
	}
	var conf config.Config
	info.Credentials.applyTo(&conf)
	c, err := newClient(info.REST, conf, client.WithTimeout(2*time.Second))
	if err != nil {
		return sessionUnreachable
	}
	if _, err = c.Overview(context.Background()); err != nil {
		return sessionUnreachable
	}
	return sessionRunning
}

// jobManagerRuns tells whether a session's JobManager process runs: the
// one that claimed its directory, not a later process given its pid.
func jobManagerRuns(info sessionInfo) bool {
	if _, err := os.Stat(filepath.Join(info.Dir, procdir.MarkerFile)); err == nil {
		return procdir.Owned(info.Dir)
	}
	return procdir.Alive(info.PID, "")
}

func sessionList(args []string) error {
	fs := flag.NewFlagSet("session list", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	output := fs.String("output", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	all, err := sessions()
	if err != nil {
		return fmt.Errorf("session list: %w", err)
	}
	// And the Kubernetes sessions of the namespace, if there is a
	// kubeconfig.
	if conf, err := cf.load(); err != nil {
		return fmt.Errorf("session list: %w", err)
	} else if kube, err := kubeSessions(conf); err != nil {
		fmt.Fprintf(os.Stderr, "spate session list: Kubernetes sessions not listed: %v\n", err)
	} else {
		all = append(all, kube...)
	}
	if *output == "json" {
		if all == nil {
			all = []sessionInfo{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	if len(all) == 0 {
		fmt.Println("No sessions.")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tSTATUS\tREST\tSTARTED\tLOGS")
	dead := 0
	for _, s := range all {
		if s.Status == sessionDead {
			dead++
		}
		logs := filepath.Join(s.Dir, "log")
		if !filepath.IsAbs(s.Dir) {
			logs = s.Dir // a Kubernetes session's: how to read them
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, s.restURL(), s.Started.Format("2006-01-02 15:04:05"), logs)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if dead > 0 {
		fmt.Printf("%d dead session(s): read their logs, then remove them with spate session stop ID or spate session prune.\n", dead)
	}
	return nil
}

func sessionStop(args []string) error {
	fs := flag.NewFlagSet("session stop", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	keepLogs := fs.Bool("keep-logs", false, "keep the session's directory (logs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("session stop: name one session (spate session list shows them)")
	}
	info, err := findAnySession(fs.Arg(0))
	if err != nil {
		// A Kubernetes session, found by its id in the namespace.
		conf, cerr := cf.load()
		if cerr != nil {
			return fmt.Errorf("session stop: %w", cerr)
		}
		if !kubeAvailable(conf) {
			return fmt.Errorf("session stop: %w", err)
		}
		if kerr := kubeSessionStop(conf, fs.Arg(0)); kerr != nil {
			return fmt.Errorf("session stop: %w; %w", err, kerr)
		}
		fmt.Printf("Session %s stopped.\n", fs.Arg(0))
		return nil
	}
	if info.Status != sessionDead {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := (process.Deployer{}).Kill(ctx, strconv.Itoa(info.PID)); err != nil {
			return fmt.Errorf("session stop: %w", err)
		}
	}
	if err := removeSession(info, *keepLogs); err != nil {
		return fmt.Errorf("session stop: %w", err)
	}
	if info.Status == sessionDead {
		fmt.Printf("Session %s was dead; removed.\n", info.ID)
	} else {
		fmt.Printf("Session %s stopped.\n", info.ID)
	}
	return nil
}

// sessionPrune removes the dead sessions.
func sessionPrune(args []string) error {
	fs := flag.NewFlagSet("session prune", flag.ContinueOnError)
	keepLogs := fs.Bool("keep-logs", false, "keep the dead sessions' log directories (they are no longer listed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("session prune: unexpected argument %q (to remove one session, spate session stop ID)", fs.Arg(0))
	}
	all, err := sessions()
	if err != nil {
		return fmt.Errorf("session prune: %w", err)
	}
	n := 0
	for _, s := range all {
		if s.Status != sessionDead {
			continue
		}
		if err := removeSession(s, *keepLogs); err != nil {
			return fmt.Errorf("session prune: %w", err)
		}
		fmt.Printf("Removed dead session %s (%s).\n", s.ID, s.Dir)
		n++
	}
	if n == 0 {
		fmt.Println("No dead sessions.")
	}
	return nil
}

// removeSession removes a session's directory, or with keepLogs all but
// its logs.
func removeSession(info sessionInfo, keepLogs bool) error {
	if !keepLogs {
		return os.RemoveAll(info.Dir)
	}
	entries, err := os.ReadDir(info.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "log" {
			if err := os.RemoveAll(filepath.Join(info.Dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// findSession returns the record of a running session.
func findSession(id string) (sessionInfo, error) {
	s, err := findAnySession(id)
	if err != nil {
		return sessionInfo{}, err
	}
	switch s.Status {
	case sessionDead:
		return sessionInfo{}, fmt.Errorf("session %s is dead: its JobManager is gone; its logs are in %s; remove it with spate session stop %s", id, filepath.Join(s.Dir, "log"), id)
	case sessionUnreachable:
		return sessionInfo{}, fmt.Errorf("session %s does not answer at %s; see its logs in %s", id, s.restURL(), filepath.Join(s.Dir, "log"))
	}
	return s, nil
}

// findAnySession returns the record of a session, whatever its status.
func findAnySession(id string) (sessionInfo, error) {
	all, err := sessions()
	if err != nil {
		return sessionInfo{}, err
	}
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
	}
	return sessionInfo{}, fmt.Errorf("no session %q: spate session list shows them", id)
}
