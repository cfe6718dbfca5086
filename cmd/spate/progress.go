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
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// Live progress of the jobs a command follows (spate run, spate
// run-application). On a terminal, each job has one status line, redrawn
// in place every second below the program's own output:
//
//	● 57bd288e dashboard demo   RUNNING  12s  in 3.0k/s  out 3/s  lag 1.2s  checkpoints 3  restarts 0
//
// Elsewhere (a pipe, a file, TERM=dumb) it prints a plain line per job
// every --progress-interval while the job runs, and one when it ends.
// Figures a JobManager does not serve (the watermark lag, checkpoints and
// restarts need the metric and checkpoint routes) are left out.

// progressPoll is how often the followed jobs are polled.
const progressPoll = time.Second

// rateWindow is the span over which rates are computed: workers report
// their counts every second, so a longer window smooths the steps.
const rateWindow = 5 * time.Second

// progressFlags are the flags that choose how progress is shown.
type progressFlags struct {
	mode     string
	interval time.Duration
	// token is the REST token the polls send (the command's
	// rest.authentication.token-file), if any.
	token string
	// tls, if set, makes the polls HTTPS (security.ssl.rest.*).
	tls *tls.Config
}

func (f *progressFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mode, "progress", "auto", "how to show the progress of the jobs followed: auto (a live status line per job when standard error is a terminal, plain lines otherwise), live, plain or off")
	fs.DurationVar(&f.interval, "progress-interval", 10*time.Second, "how often a plain progress line is printed while a job runs (--progress plain)")
}

// start checks the flags and returns the progress display they ask for,
// writing to w (standard error), or nil for --progress off or if the
// command follows no job (follow false). A nil *progress shows nothing.
func (f *progressFlags) start(w *os.File, follow bool) (*progress, error) {
	live := false
	switch f.mode {
	case "off":
	case "auto":
		live = isTerminal(w) && os.Getenv("TERM") != "dumb"
	case "live":
		live = true
	case "plain":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, live, plain or off", f.mode)
	}
	if f.interval <= 0 {
		return nil, fmt.Errorf("--progress-interval %v: want a positive duration, e.g. 10s", f.interval)
	}
	if f.mode == "off" || !follow {
		return nil, nil
	}
	p := newProgress(w, live, f.interval, f.token, f.tls)
	if live {
		p.width = func() int {
			if cols, _, err := term.GetSize(int(w.Fd())); err == nil && cols > 0 {
				return cols
			}
			return 100
		}
	}
	return p, nil
}

// isTerminal tells whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// progress polls the jobs it follows and shows their status. Its
// goroutine runs from newProgress until Close.
type progress struct {
	w     io.Writer
	live  bool
	every time.Duration // plain lines' interval
	width func() int    // the terminal's columns (live)
	http  *http.Client
	token string // sent with every poll, if set
	tls   *tls.Config
	stop  chan struct{}
	done  chan struct{}
	// abort ends the poll in flight when Close is called.
	abort context.CancelFunc
	base  context.Context
	mu    struct {
		sync.Mutex
		jobs     []*followedJob
		clusters []string // REST addresses whose every job is followed
		drawn    int      // status lines on the screen below the output (live)
		writers  []*progressWriter
		closed   bool
	}
}

// followedJob is one job progress shows, and what it last saw of it.
type followedJob struct {
	rest, id, name string
	c              *client.Client
	st             jobStatus
	seen           bool      // st holds a poll's answer
	ended          bool      // st.State is terminal: no more polls
	gone           bool      // its JobManager did not answer the last poll
	reported       bool      // the plain line of its end was printed
	lastPlain      time.Time // when its last plain line was printed
	in, out        rateMeter
	noLag, noCkpt  bool // the JobManager lacks the route
	noRestarts     bool
}

// jobStatus is what a status line shows of a job. Unknown figures are
// negative (NaN for rates).
type jobStatus struct {
	State       string
	Duration    time.Duration
	In, Out     int64   // records read by the sources, received by the sinks
	InRate      float64 // per second
	OutRate     float64
	Lag         time.Duration // event-time lag of the sinks' input watermark
	Checkpoints int           // completed
	Restarts    int
}

func newProgress(w io.Writer, live bool, every time.Duration, token string, tc *tls.Config) *progress {
	hc := &http.Client{Timeout: 5 * time.Second}
	if tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		hc.Transport = t
	}
	p := &progress{w: w, live: live, every: every, width: func() int { return 0 },
		http: hc, token: token, tls: tc,
		stop: make(chan struct{}), done: make(chan struct{})}
	p.base, p.abort = context.WithCancel(context.Background())
	go p.run()
	return p
}

// follow adds a job to show, on the JobManager at rest.
func (p *progress) follow(rest, id, name string) {
	if p == nil {
		return
	}
	c, err := client.New(rest, client.WithTimeout(5*time.Second), client.WithToken(p.token), client.WithTLS(p.tls))
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.mu.jobs {
		if j.id == id {
			return
		}
	}
	p.mu.jobs = append(p.mu.jobs, &followedJob{rest: rest, id: id, name: name, c: c,
		st: jobStatus{State: "SUBMITTED", Lag: -1, Checkpoints: -1, Restarts: -1, InRate: math.NaN(), OutRate: math.NaN()}})
}

// followCluster follows every job of the JobManager at rest, those
// submitted later included (an application's).
func (p *progress) followCluster(rest string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.mu.clusters = append(p.mu.clusters, rest)
	p.mu.Unlock()
}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(progressPoll)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(p.base, 5*time.Second)
		p.poll(ctx, false)
		cancel()
		p.show(false)
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops polling, reads the jobs' last state once more and shows it
// for good: the status lines stay on the terminal, the plain lines of
// their ends are printed.
func (p *progress) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.abort()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	p.poll(ctx, true)
	cancel()
	p.mu.Lock()
	for _, w := range p.mu.writers {
		w.flushLocked()
	}
	p.mu.Unlock()
	p.show(true)
}

// poll reads every followed job that has not ended; final marks those
// whose JobManager is gone (a per-job or application cluster ends with
// its jobs, maybe before their end was seen).
func (p *progress) poll(ctx context.Context, final bool) {
	p.mu.Lock()
	clusters := append([]string(nil), p.mu.clusters...)
	p.mu.Unlock()
	for _, rest := range clusters {
		c, err := client.New(rest, client.WithTimeout(5*time.Second), client.WithToken(p.token), client.WithTLS(p.tls))
		if err != nil {
			continue
		}
		if ov, err := c.JobsOverview(ctx); err == nil {
			for _, j := range ov.Jobs {
				p.follow(rest, j.JID, j.Name)
			}
		}
	}
	p.mu.Lock()
	jobs := append([]*followedJob(nil), p.mu.jobs...)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, j := range jobs {
		if j.ended {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.pollJob(ctx, j) && final {
				p.mu.Lock()
				j.gone = true
				p.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// pollJob reads one job's details and the optional figures, and tells
// whether the JobManager answered. Only the poll writes a followedJob's
// figures other than st.
func (p *progress) pollJob(ctx context.Context, j *followedJob) bool {
	d, err := j.c.Job(ctx, j.id)
	if err != nil {
		// Keep what was seen.
		return false
	}
	in, out := jobRecords(d)
	now := time.UnixMilli(d.Now)
	j.in.add(now, in)
	j.out.add(now, out)
	st := jobStatus{State: d.State, Duration: time.Duration(d.Duration) * time.Millisecond, In: in, Out: out,
		InRate: j.in.rate(), OutRate: j.out.rate(), Lag: -1, Checkpoints: j.st.Checkpoints, Restarts: j.st.Restarts}
	// The checkpoints and restarts of a job that ended are read too: the
	// JobManager keeps its figures, and a short job (or one that
	// restarted since the last poll) is seen running by no poll.
	p.optionalFigures(ctx, j, d, &st)
	if v1.TerminalJobStatus(d.State) {
		j.ended = true
		st.InRate, st.OutRate, st.Lag = math.NaN(), math.NaN(), -1
	}
	p.mu.Lock()
	j.st, j.seen = st, true
	if j.name == "" {
		j.name = d.Name
	}
	p.mu.Unlock()
	return true
}

// optionalFigures reads what the metric and checkpoint routes tell, in
// Flink's shapes, where the JobManager serves them: the sinks' input
// watermark (aggregated over their subtasks), the completed checkpoints
// and numRestarts. A route answered 404 is not asked again.
func (p *progress) optionalFigures(ctx context.Context, j *followedJob, d v1.JobDetails, st *jobStatus) {
	base := j.rest
	switch {
	case strings.Contains(base, "://"):
	case p.tls != nil:
		base = "https://" + base
	default:
		base = "http://" + base
	}
	base += "/v1/jobs/" + j.id
	if !j.noLag {
		wm := int64(math.MaxInt64)
		for _, vid := range sinkVertices(d) {
			var agg []struct {
				ID  string      `json:"id"`
				Min json.Number `json:"min"`
			}
			err := p.getJSON(ctx, base+"/vertices/"+url.PathEscape(vid)+"/subtasks/metrics?get=currentInputWatermark", &agg)
			if errors.Is(err, errNoRoute) {
				j.noLag = true
				break
			}
			for _, a := range agg {
				if v, err := a.Min.Float64(); err == nil && a.ID == "currentInputWatermark" && v > -9e15 && v < 9e15 {
					wm = min(wm, int64(v))
				}
			}
		}
		if wm != math.MaxInt64 {
			st.Lag = max(0, time.Duration(d.Now-wm)*time.Millisecond)
		}
	}
	if !j.noCkpt {
		var cp struct {
			Counts struct {
				Total     int `json:"total"`
				Completed int `json:"completed"`
			} `json:"counts"`
			NumRestarts *int `json:"numRestarts"`
		}
		switch err := p.getJSON(ctx, base+"/checkpoints", &cp); {
		case errors.Is(err, errNoRoute):
			j.noCkpt = true
		case err == nil:
			// A job without checkpointing has none triggered: say nothing.
			if cp.Counts.Total > 0 {
				st.Checkpoints = cp.Counts.Completed
			}
			if cp.NumRestarts != nil && st.Restarts < 0 {
				st.Restarts = *cp.NumRestarts
			}
		}
	}
	if !j.noRestarts {
		var ms []struct {
			ID    string      `json:"id"`
			Value json.Number `json:"value"`
		}
		switch err := p.getJSON(ctx, base+"/metrics?get=numRestarts", &ms); {
		case errors.Is(err, errNoRoute):
			j.noRestarts = true
		case err == nil:
			for _, m := range ms {
				if n, err := m.Value.Int64(); err == nil && m.ID == "numRestarts" {
					st.Restarts = int(n)
				}
			}
		}
	}
}

// errNoRoute is a 404 or 400 answer: the JobManager does not serve the
// route (or, for checkpoints, the job has none).
var errNoRoute = errors.New("not served")

func (p *progress) getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		return errNoRoute
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(into)
}

// show draws the status lines (live) or prints the plain lines due; final
// prints every plain line still due and leaves the status lines.
func (p *progress) show(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.live {
		var b bytes.Buffer
		p.clearLocked(&b)
		p.drawLocked(&b)
		p.w.Write(b.Bytes())
		if final {
			p.mu.drawn = 0 // they stay
		}
		return
	}
	for _, j := range p.mu.jobs {
		switch {
		case !j.seen || j.reported:
		case j.ended:
			fmt.Fprintln(p.w, plainEndLine(j.id, j.name, j.st))
			j.reported = true
		case j.gone:
			fmt.Fprintln(p.w, plainLine(j.id, j.name, j.st)+" (last seen; its cluster has ended)")
			j.reported = true
		case final || now.Sub(j.lastPlain) >= p.every:
			if !j.lastPlain.IsZero() || final {
				fmt.Fprintln(p.w, plainLine(j.id, j.name, j.st))
			}
			j.lastPlain = now
		}
	}
}

// clearLocked erases the status lines drawn below the output.
func (p *progress) clearLocked(b *bytes.Buffer) {
	if p.mu.drawn > 0 {
		fmt.Fprintf(b, "\r\x1b[%dA\x1b[J", p.mu.drawn)
	}
	p.mu.drawn = 0
}

// drawLocked draws a status line per job, cut to the terminal's width so
// that none wraps (the cursor moves back up by lines).
func (p *progress) drawLocked(b *bytes.Buffer) {
	width := p.width()
	for _, j := range p.mu.jobs {
		line := statusLine(j.id, j.name, j.st)
		if j.gone {
			line += "  (last seen; its cluster has ended)"
		}
		if width > 1 {
			line = cut(line, width-1)
		}
		b.WriteString(line)
		b.WriteString("\x1b[K\n")
		p.mu.drawn++
	}
}

// output is where a followed program's output must go for the status
// lines to stay below it: on a live display, a writer that erases them,
// writes whole lines, and draws them again; else f itself (a child
// process then inherits it unchanged).
func (p *progress) output(f *os.File) io.Writer {
	if p == nil || !p.live || !isTerminal(f) {
		return f
	}
	w := &progressWriter{p: p, w: f}
	p.mu.Lock()
	p.mu.writers = append(p.mu.writers, w)
	p.mu.Unlock()
	return w
}

// progressWriter passes a program's output to the terminal around the
// status lines. It holds back a line's start until its end, so that the
// status lines never land inside a line; at 4 KiB it lets the start go.
type progressWriter struct {
	p       *progress
	w       io.Writer
	partial []byte // guarded by p.mu
}

func (w *progressWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	w.partial = append(w.partial, b...)
	i := bytes.LastIndexByte(w.partial, '\n')
	if i < 0 && len(w.partial) < 4096 {
		return len(b), nil
	}
	var out bytes.Buffer
	p.clearLocked(&out)
	if i < 0 {
		out.Write(w.partial)
		out.WriteString("\n")
		w.partial = w.partial[:0]
	} else {
		out.Write(w.partial[:i+1])
		w.partial = append(w.partial[:0], w.partial[i+1:]...)
	}
	if !p.mu.closed {
		p.drawLocked(&out)
	}
	if _, err := w.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// flushLocked writes a last line that has no end.
func (w *progressWriter) flushLocked() {
	if len(w.partial) == 0 {
		return
	}
	var out bytes.Buffer
	w.p.clearLocked(&out)
	out.Write(w.partial)
	out.WriteString("\n")
	w.partial = nil
	w.w.Write(out.Bytes())
}

// statusLine is a job's live status line.
func statusLine(id, name string, st jobStatus) string {
	mark := "●"
	switch st.State {
	case v1.JobFinished:
		mark = "✔"
	case v1.JobFailed, v1.JobCanceled:
		mark = "✘"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s  %s", mark, id[:min(8, len(id))], name, st.State)
	if st.Duration > 0 {
		fmt.Fprintf(&b, "  %s", shortDuration(st.Duration))
	}
	if v1.TerminalJobStatus(st.State) {
		fmt.Fprintf(&b, "  %s records in, %s out", countString(st.In), countString(st.Out))
	} else {
		fmt.Fprintf(&b, "  in %s  out %s", rateString(st.InRate), rateString(st.OutRate))
		if st.Lag >= 0 {
			fmt.Fprintf(&b, "  lag %s", shortDuration(st.Lag))
		}
	}
	if st.Checkpoints >= 0 {
		fmt.Fprintf(&b, "  checkpoints %d", st.Checkpoints)
	}
	if st.Restarts >= 0 {
		fmt.Fprintf(&b, "  restarts %d", st.Restarts)
	}
	return b.String()
}

// plainLine is a running job's periodic plain progress line.
func plainLine(id, name string, st jobStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Job %s (%s): %s for %s, %s records in (%s), %s out (%s)", id, name, st.State,
		shortDuration(st.Duration), countString(st.In), rateString(st.InRate), countString(st.Out), rateString(st.OutRate))
	if st.Lag >= 0 {
		fmt.Fprintf(&b, ", event-time lag %s", shortDuration(st.Lag))
	}
	extras(&b, st)
	return b.String()
}

// plainEndLine is the plain line of a job's end.
func plainEndLine(id, name string, st jobStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Job %s (%s) %s after %s: %s records in, %s out", id, name, st.State,
		shortDuration(st.Duration), countString(st.In), countString(st.Out))
	if secs := st.Duration.Seconds(); secs > 0 {
		fmt.Fprintf(&b, " (%s in on average)", rateString(float64(st.In)/secs))
	}
	extras(&b, st)
	return b.String()
}

func extras(b *strings.Builder, st jobStatus) {
	if st.Checkpoints >= 0 {
		fmt.Fprintf(b, ", %d checkpoints", st.Checkpoints)
	}
	if st.Restarts >= 0 {
		fmt.Fprintf(b, ", %d restarts", st.Restarts)
	}
}

// rateString formats records per second: "950/s", "12.3k/s", "4.1M/s", or
// "–/s" when unknown.
func rateString(r float64) string {
	switch {
	case math.IsNaN(r) || r < 0:
		return "–/s"
	case r < 1000:
		return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
	case r < 1e6:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + "k/s"
	}
	return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M/s"
}

// countString formats a count with thousands separators: "1,234,567".
func countString(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// shortDuration formats a duration for a status line: "850ms", "12.3s",
// "4m05s", "2h03m".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// cut shortens s to n runes, ending it with "…" if it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// rateMeter turns a counter sampled at the JobManager's times into a rate
// over the last rateWindow.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	t time.Time
	v int64
}

func (m *rateMeter) add(t time.Time, v int64) {
	if n := len(m.samples); n > 0 && !t.After(m.samples[n-1].t) {
		return
	}
	m.samples = append(m.samples, rateSample{t, v})
	for len(m.samples) > 2 && !m.samples[1].t.After(t.Add(-rateWindow)) {
		m.samples = m.samples[1:]
	}
}

// rate is the counter's rate per second, NaN until two samples a second
// apart are in.
func (m *rateMeter) rate() float64 {
	if len(m.samples) < 2 {
		return math.NaN()
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	dt := b.t.Sub(a.t)
	if dt < 900*time.Millisecond {
		return math.NaN()
	}
	return max(0, float64(b.v-a.v)/dt.Seconds())
}

// jobGraphEdges reads the edges of a job's plan.
func jobGraphEdges(d v1.JobDetails) (sources, sinks map[string]bool) {
	var plan struct {
		Edges []struct {
			Source string `json:"source"`
			Target string `json:"target"`
		} `json:"edges"`
	}
	json.Unmarshal(d.Plan, &plan)
	fed, feeds := map[string]bool{}, map[string]bool{}
	for _, e := range plan.Edges {
		feeds[e.Source], fed[e.Target] = true, true
	}
	sources, sinks = map[string]bool{}, map[string]bool{}
	for _, v := range d.Vertices {
		sources[v.ID], sinks[v.ID] = !fed[v.ID], !feeds[v.ID]
	}
	return sources, sinks
}

// jobRecords counts a job's records: those its sources read (their
// vertices' output) and those its sinks received (their vertices' input).
func jobRecords(d v1.JobDetails) (in, out int64) {
	sources, sinks := jobGraphEdges(d)
	for _, v := range d.Vertices {
		if sources[v.ID] {
			in += v.Metrics.WriteRecords
		}
		if sinks[v.ID] {
			out += v.Metrics.ReadRecords
		}
	}
	return in, out
}

// sinkVertices are the ids of a job's vertices that feed no other.
func sinkVertices(d v1.JobDetails) []string {
	_, sinks := jobGraphEdges(d)
	var ids []string
	for _, v := range d.Vertices {
		if sinks[v.ID] {
			ids = append(ids, v.ID)
		}
	}
	return ids
}
