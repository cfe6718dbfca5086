package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestCheckpointFiguresOnEverySurface runs a checkpointing job on a real
// cluster and reads its checkpoint figures back from every surface that
// shows them: the JobManager's /metrics (Prometheus' text parser), the
// job's REST metrics (numberOfCompletedCheckpoints, lastCheckpointSize,
// …), the progress lines of the `spate run` following it, and the
// dashboard's job page and checkpoints tab in Chromium. The other tests
// of these surfaces run jobs without checkpoints, or fixed answers.
func TestCheckpointFiguresOnEverySurface(t *testing.T) {
	c := startClusterWith(t, []string{"-D", "metrics.reporter.prom.port=0"}, 2)
	bin := binaries(t)
	cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--target", "remote", "--jobmanager", c.rest,
		"--progress", "plain", "--progress-interval", "200ms", "-D", "execution.checkpointing.interval=200 ms",
		dashjob(t), "-rate", "2000")
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	run.stopAtCleanup(t, syscall.SIGTERM, 10*time.Second)
	id := run.awaitJobID(t)
	var cps v1.CheckpointingStatistics
	waitFor(t, 60*time.Second, "two completed checkpoints", func() bool {
		return c.get(t, "/v1/jobs/"+id+"/checkpoints", &cps) == nil && cps.Counts.Completed >= 2
	})

	// The job's REST metrics.
	restJob := func() map[string]float64 {
		var ms []v1.Metric
		if err := c.get(t, "/v1/jobs/"+id+"/metrics?get=numberOfCompletedCheckpoints,numberOfFailedCheckpoints,lastCheckpointSize,lastCheckpointDuration,numRestarts", &ms); err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, m := range ms {
			v, err := strconv.ParseFloat(m.Value, 64)
			if err != nil {
				t.Fatalf("metric %s = %q: %v", m.ID, m.Value, err)
			}
			got[m.ID] = v
		}
		return got
	}
	rest := restJob()
	if rest["numberOfCompletedCheckpoints"] < 2 || rest["lastCheckpointSize"] <= 0 || rest["numRestarts"] != 0 || len(rest) != 5 {
		t.Errorf("GET /v1/jobs/%s/metrics = %v; want 2 or more completed checkpoints, the last one's size, no restarts (the checkpoint statistics: %+v)", id, rest, cps.Counts)
	}

	// The JobManager's /metrics.
	m := promAddrLog.FindStringSubmatch(c.jm.stderr())
	if m == nil {
		t.Fatalf("the JobManager's log does not tell its /metrics address:\n%s", c.jm.stderr())
	}
	fams, err := scrape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	job := map[string]string{"job_id": id}
	for _, tc := range []struct {
		name string
		min  float64
	}{
		{"numberOfCompletedCheckpoints", 2},
		{"lastCheckpointSize", 1},
		{"lastCheckpointDuration", 0},
	} {
		if v, n := promValues([]map[string]*dto.MetricFamily{fams}, "spate_jobmanager_job_"+tc.name, job); n != 1 || v < tc.min {
			t.Errorf("spate_jobmanager_job_%s = %v (%d series), want one of %v or more", tc.name, v, n, tc.min)
		}
	}
	if v, n := promValues([]map[string]*dto.MetricFamily{fams}, "spate_jobmanager_job_numRestarts", job); n != 1 || v != 0 {
		t.Errorf("spate_jobmanager_job_numRestarts = %v (%d series), want 0", v, n)
	}

	// The progress lines of spate run.
	line := regexp.MustCompile(`(?m)^Job ` + id + ` \(dashboard demo\): RUNNING .*, ([0-9]+) checkpoints, 0 restarts$`)
	waitFor(t, 10*time.Second, "a progress line with completed checkpoints", func() bool {
		for _, l := range line.FindAllStringSubmatch(run.text(), -1) {
			if n, _ := strconv.Atoi(l[1]); n >= 1 {
				return true
			}
		}
		return false
	})

	// The dashboard.
	t.Run("dashboard", func(t *testing.T) {
		b := newBrowser(t)
		base := "http://" + c.rest + "/"
		b.do("open the job page", chromedp.Navigate(base+"#/jobs/"+id))
		tile := waitJS[string](b, "the Checkpoints tile to count completed checkpoints", `(() => {
			const t = [...document.querySelectorAll('.tile')].find((e) => e.querySelector('.tile-label').textContent === 'Checkpoints');
			const v = t && t.querySelector('.tile-value').textContent;
			return v && /^[1-9][0-9,]* completed$/.test(v) ? v : false;
		})()`)
		t.Logf("Checkpoints tile: %s", tile)
		b.do("open the checkpoints tab", chromedp.Navigate(base+"#/jobs/"+id+"/checkpoints"))
		waitJS[bool](b, "the checkpoints tab with completed checkpoints", `(() => {
			const h = document.getElementById('pane-h');
			const s = h && h.closest('section');
			return s !== null && /Latest completed: #[0-9]+/.test(s.textContent) && [...s.querySelectorAll('tbody tr')].some((r) => r.textContent.includes('COMPLETED'));
		})()`)
		b.screenshot("job-checkpoints", "")
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("the browser's console shows errors: %q", errs)
		}
	})

	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobCanceled)
	select {
	case <-run.done:
	case <-time.After(30 * time.Second):
		t.Fatal("spate run still runs after its job was cancelled")
	}
	end := regexp.MustCompile(`(?m)^Job ` + id + ` \(dashboard demo\) CANCELED after .*, ([0-9]+) checkpoints, 0 restarts$`)
	if e := end.FindStringSubmatch(run.text()); e == nil {
		t.Errorf("no end line with the checkpoints:\n%s", run.text())
	} else if n, _ := strconv.Atoi(e[1]); n < int(rest["numberOfCompletedCheckpoints"]) {
		t.Errorf("the end line counts %d checkpoints, fewer than the %v the REST metrics counted before", n, rest["numberOfCompletedCheckpoints"])
	}
}
