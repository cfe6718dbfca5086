package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// soakJobs is how many jobs BenchmarkSessionSoak submits; soakMarks are
// the job counts at which it measures.
const soakJobs = 500

var soakMarks = []int{100, 500}

// soakVariants is how many distinct program binaries the soak rotates
// through, soakPerVariant jobs each: every variant but the last becomes
// unreferenced, so a session that retires artifacts holds few of them.
const (
	soakVariants   = 10
	soakPerVariant = soakJobs / soakVariants
)

// BenchmarkSessionSoak submits 500 short jobs, one after the other, to one
// session cluster of real processes (a JobManager and one TaskManager) with
// `spate run --session`, and reports at 100 and 500 jobs the resident
// memory and open file descriptors of the JobManager and the TaskManager
// and the size of the blob store, of the whole session directory and of
// its logs. The jobs rotate through 10 distinct binaries (the word count
// example with a different trailer each) and two inputs, so artifacts stop
// being referenced as the soak goes on. The aim is flat figures from 100
// to 500. A job submitted while the previous one's slot is still being
// freed may make the session start a second TaskManager (idle-released
// after resourcemanager.taskmanager-timeout); its cache then counts in the
// session directory's size for a while.
//
//	go test ./cmd/spate -run XXX -bench SessionSoak -benchtime 1x
func BenchmarkSessionSoak(b *testing.B) {
	bin := binaries(b) // skips under -short
	home := b.TempDir()
	var progs []string
	for v := range soakVariants {
		p := filepath.Join(home, fmt.Sprintf("wordcount-%d", v))
		if err := copyWithTrailer(filepath.Join(bin, "wordcount"), p, fmt.Sprintf("\nspate soak variant %d\n", v)); err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p)
	}
	inputs := []string{wordcountInput(b), filepath.Join(home, "small.txt")}
	if err := os.WriteFile(inputs[1], []byte("to be or not to be\nthat is the question\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	blobs := filepath.Join(home, "blobs")
	out, err := spateEnv(b, home, "session", "start", "--taskmanagers", "1", "--slots", "1",
		"-D", "blob.storage.directory="+blobs, "-D", "blob.service.cleanup.interval=1 s")
	if err != nil {
		b.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(b, home)
	if len(ss) != 1 {
		b.Fatalf("sessions = %+v", ss)
	}
	s := ss[0]
	defer spateEnv(b, home, "session", "stop", s.ID)
	tmPID := 0
	for _, p := range processesNaming(s.Dir) {
		if strings.Contains(p, " taskmanager ") {
			tmPID, _ = strconv.Atoi(p[:strings.IndexByte(p, ':')])
		}
	}
	if tmPID == 0 {
		b.Fatalf("no TaskManager process of the session: %q", processesNaming(s.Dir))
	}
	b.ResetTimer()
	start := time.Now()
	mark := 0
	for i := 1; i <= soakJobs; i++ {
		prog := progs[(i-1)/soakPerVariant]
		out, err := spateEnv(b, home, "run", "--session", s.ID, "-p", "1", prog, inputs[i%2])
		if err != nil || !strings.Contains(out, "is FINISHED") {
			b.Fatalf("job %d: %v\n%s", i, err, out)
		}
		if mark < len(soakMarks) && i == soakMarks[mark] {
			b.StopTimer()
			at := fmt.Sprintf("@%d", i)
			b.ReportMetric(float64(residentBytes(b, s.PID))/(1<<20), "jm-rss-MiB"+at)
			b.ReportMetric(float64(residentBytes(b, tmPID))/(1<<20), "tm-rss-MiB"+at)
			b.ReportMetric(float64(openFiles(b, s.PID)), "jm-fds"+at)
			b.ReportMetric(float64(openFiles(b, tmPID)), "tm-fds"+at)
			b.ReportMetric(float64(dirBytes(blobs))/(1<<20), "blob-MiB"+at)
			b.ReportMetric(float64(dirBytes(s.Dir))/(1<<20), "session-dir-MiB"+at)
			b.ReportMetric(float64(dirBytes(filepath.Join(s.Dir, "log")))/(1<<20), "session-logs-MiB"+at)
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(i), "ms/job"+at)
			mark++
			b.StartTimer()
		}
	}
	b.ReportMetric(0, "ns/op")
}

// copyWithTrailer copies an executable and appends trailer, which changes
// its hash but not what it does.
func copyWithTrailer(from, to, trailer string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if _, err := out.WriteString(trailer); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// residentBytes is a process's VmRSS.
func residentBytes(b *testing.B, pid int) int64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS of %d: %q", pid, line)
			}
			return kb << 10
		}
	}
	b.Fatalf("process %d: no VmRSS", pid)
	return 0
}

// openFiles counts a process's open file descriptors.
func openFiles(b *testing.B, pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		b.Fatalf("process %d: %v", pid, err)
	}
	return len(fds)
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
