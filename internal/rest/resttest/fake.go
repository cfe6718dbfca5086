// Package resttest holds Fake, a small in-memory rest.Backend for the tests
// of the REST server and of its clients.
package resttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
)

// Version is the version the Fake reports.
const Version = "0.0.0-test"

// Fake is an in-memory rest.Backend. Its zero value is not usable: make it
// with New. It is safe for concurrent use.
type Fake struct {
	mu        sync.Mutex
	jobs      []*fakeJob
	tms       []v1.TaskManagerInfo
	artifacts map[string][]byte
	submitted []v1.JobSubmitRequest
	errs      map[string]error
	panics    map[string]bool
	delay     time.Duration
	calls     map[string]int
	// after a submission, the states the job takes at each Job call.
	submitStates []string
}

type fakeJob struct {
	d    v1.JobDetails
	exc  v1.JobExceptions
	next []string
}

// New returns a Fake with two TaskManagers of two slots each and no job.
func New() *Fake {
	return &Fake{
		artifacts: map[string][]byte{},
		errs:      map[string]error{},
		panics:    map[string]bool{},
		calls:     map[string]int{},
		tms: []v1.TaskManagerInfo{
			{ID: "tm-1", Path: "127.0.0.1:6121", DataPort: 6121, SlotsNumber: 2, FreeSlots: 1,
				Hardware: v1.Hardware{CPUCores: 2, PhysicalMemory: 1 << 30}},
			{ID: "tm-2", Path: "127.0.0.1:6122", DataPort: 6122, SlotsNumber: 2, FreeSlots: 2,
				Hardware: v1.Hardware{CPUCores: 2, PhysicalMemory: 1 << 30}},
		},
		submitStates: []string{v1.JobRunning, v1.JobFinished},
	}
}

// AddJob adds a job; at each later Job call for it, it takes the next of
// states (and keeps the last).
func (f *Fake) AddJob(d v1.JobDetails, states ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, &fakeJob{d: d, next: states})
}

// SetExceptions sets the exceptions of job id.
func (f *Fake) SetExceptions(id string, e v1.JobExceptions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j := f.job(id); j != nil {
		j.exc = e
	}
}

// SetSubmitStates sets the states a submitted job takes at each Job call.
func (f *Fake) SetSubmitStates(states ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitStates = states
}

// SetError makes the Backend method named method (e.g. "Overview") fail
// with err; nil makes it work again.
func (f *Fake) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
	} else {
		f.errs[method] = err
	}
}

// SetPanic makes the Backend method named method panic.
func (f *Fake) SetPanic(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panics[method] = true
}

// SetDelay makes every method wait d (or until its context ends) first.
func (f *Fake) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Submitted returns the submissions received.
func (f *Fake) Submitted() []v1.JobSubmitRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]v1.JobSubmitRequest(nil), f.submitted...)
}

// Calls returns how many times the method named method was called.
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Artifact returns the stored binary with id.
func (f *Fake) Artifact(id string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.artifacts[id]
	return b, ok
}

// enter starts method: it waits the delay, then fails or panics as set.
// The caller holds no lock; enter returns with f.mu held on success.
func (f *Fake) enter(ctx context.Context, method string) error {
	f.mu.Lock()
	f.calls[method]++
	d := f.delay
	f.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	if f.panics[method] {
		f.mu.Unlock()
		panic("resttest: " + method + " panics as told")
	}
	if err := f.errs[method]; err != nil {
		f.mu.Unlock()
		return err
	}
	return nil
}

func (f *Fake) job(id string) *fakeJob {
	for _, j := range f.jobs {
		if j.d.JID == id {
			return j
		}
	}
	return nil
}

func (f *Fake) Overview(ctx context.Context) (v1.Overview, error) {
	if err := f.enter(ctx, "Overview"); err != nil {
		return v1.Overview{}, err
	}
	defer f.mu.Unlock()
	o := v1.Overview{TaskManagers: len(f.tms), Version: Version}
	for _, tm := range f.tms {
		o.SlotsTotal += tm.SlotsNumber
		o.SlotsAvailable += tm.FreeSlots
	}
	for _, j := range f.jobs {
		switch j.d.State {
		case v1.JobFinished:
			o.JobsFinished++
		case v1.JobCanceled:
			o.JobsCancelled++
		case v1.JobFailed:
			o.JobsFailed++
		default:
			o.JobsRunning++
		}
	}
	return o, nil
}

func (f *Fake) Config(ctx context.Context) (v1.Config, error) {
	if err := f.enter(ctx, "Config"); err != nil {
		return v1.Config{}, err
	}
	defer f.mu.Unlock()
	return v1.Config{Version: Version, TimezoneName: "UTC",
		Entries: []v1.ConfigEntry{{Key: "parallelism.default", Value: "2"}}}, nil
}

func (f *Fake) JobsOverview(ctx context.Context) (v1.JobsOverview, error) {
	if err := f.enter(ctx, "JobsOverview"); err != nil {
		return v1.JobsOverview{}, err
	}
	defer f.mu.Unlock()
	var o v1.JobsOverview
	for _, j := range f.jobs {
		o.Jobs = append(o.Jobs, v1.JobOverview{JID: j.d.JID, Name: j.d.Name, State: j.d.State,
			StartTime: j.d.StartTime, EndTime: j.d.EndTime, Duration: j.d.Duration,
			LastModification: j.d.StartTime, Tasks: j.d.StatusCounts})
	}
	return o, nil
}

func (f *Fake) Job(ctx context.Context, id string) (v1.JobDetails, error) {
	if err := f.enter(ctx, "Job"); err != nil {
		return v1.JobDetails{}, err
	}
	defer f.mu.Unlock()
	j := f.job(id)
	if j == nil {
		return v1.JobDetails{}, fmt.Errorf("job %s: %w", id, rest.ErrNotFound)
	}
	if len(j.next) > 0 {
		j.d.State, j.next = j.next[0], j.next[1:]
	}
	return j.d, nil
}

func (f *Fake) CancelJob(ctx context.Context, id string) error {
	if err := f.enter(ctx, "CancelJob"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	j := f.job(id)
	if j == nil {
		return fmt.Errorf("job %s: %w", id, rest.ErrNotFound)
	}
	if v1.TerminalJobStatus(j.d.State) {
		return fmt.Errorf("job %s is %s already: %w", id, j.d.State, rest.ErrConflict)
	}
	j.d.State, j.next = v1.JobCanceled, nil
	return nil
}

// AcknowledgeResult accepts the acknowledgement of an ended job's result.
func (f *Fake) AcknowledgeResult(ctx context.Context, id string) error {
	if err := f.enter(ctx, "AcknowledgeResult"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	j := f.job(id)
	if j == nil {
		return fmt.Errorf("job %s: %w", id, rest.ErrNotFound)
	}
	if !v1.TerminalJobStatus(j.d.State) {
		return fmt.Errorf("job %s is %s: %w", id, j.d.State, rest.ErrConflict)
	}
	return nil
}

var _ rest.ResultBackend = (*Fake)(nil)

func (f *Fake) JobExceptions(ctx context.Context, id string) (v1.JobExceptions, error) {
	if err := f.enter(ctx, "JobExceptions"); err != nil {
		return v1.JobExceptions{}, err
	}
	defer f.mu.Unlock()
	j := f.job(id)
	if j == nil {
		return v1.JobExceptions{}, fmt.Errorf("job %s: %w", id, rest.ErrNotFound)
	}
	return j.exc, nil
}

func (f *Fake) TaskManagers(ctx context.Context) (v1.TaskManagers, error) {
	if err := f.enter(ctx, "TaskManagers"); err != nil {
		return v1.TaskManagers{}, err
	}
	defer f.mu.Unlock()
	return v1.TaskManagers{TaskManagers: append([]v1.TaskManagerInfo(nil), f.tms...)}, nil
}

// PutArtifact reads r whole, without holding the lock.
func (f *Fake) PutArtifact(ctx context.Context, r io.Reader) (v1.ArtifactUploadResponse, error) {
	if err := f.enter(ctx, "PutArtifact"); err != nil {
		return v1.ArtifactUploadResponse{}, err
	}
	f.mu.Unlock()
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &buf), r)
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("store artifact: %w", err)
	}
	id := hex.EncodeToString(h.Sum(nil))
	f.mu.Lock()
	f.artifacts[id] = buf.Bytes()
	f.mu.Unlock()
	return v1.ArtifactUploadResponse{ID: id, Size: n, Status: "success"}, nil
}

func (f *Fake) OpenArtifact(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	if err := f.enter(ctx, "OpenArtifact"); err != nil {
		return nil, 0, err
	}
	defer f.mu.Unlock()
	b, ok := f.artifacts[id]
	if !ok {
		return nil, 0, fmt.Errorf("artifact %s: %w", id, rest.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (f *Fake) SubmitJob(ctx context.Context, req v1.JobSubmitRequest) (v1.JobSubmitResponse, error) {
	if err := f.enter(ctx, "SubmitJob"); err != nil {
		return v1.JobSubmitResponse{}, err
	}
	defer f.mu.Unlock()
	if _, ok := f.artifacts[req.Artifact]; !ok {
		return v1.JobSubmitResponse{}, fmt.Errorf("artifact %s: %w", req.Artifact, rest.ErrNotFound)
	}
	f.submitted = append(f.submitted, req)
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f.jobs = append(f.jobs, &fakeJob{
		d:    v1.JobDetails{JID: id, Name: "submitted", State: v1.JobCreated, StartTime: time.Now().UnixMilli()},
		next: append([]string(nil), f.submitStates...),
	})
	return v1.JobSubmitResponse{JobID: id}, nil
}

var _ rest.Backend = (*Fake)(nil)
