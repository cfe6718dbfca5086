package jobmanager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestArtifactsRetired: an artifact no job references is deleted a grace
// after its last use, one a waiting job references is kept until the job
// ends, and a deleted one uploaded again is accepted.
func TestArtifactsRetired(t *testing.T) {
	blobs := t.TempDir()
	_, c := runJM(t, Config{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: time.Second, SlotRequestTimeout: time.Minute, BlobDir: blobs, ArtifactGrace: 50 * time.Millisecond})
	upload := func(body string) string {
		up, err := c.UploadArtifactReader(context.Background(), strings.NewReader(body), -1)
		if err != nil {
			t.Fatal(err)
		}
		return up.ID
	}
	stored := func(id string) bool {
		_, err := os.Stat(filepath.Join(blobs, id))
		return err == nil
	}
	waitGone := func(what, id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for stored(id) {
			if time.Now().After(deadline) {
				t.Fatalf("%s %s still in the blob store 10 s after its grace of 50 ms", what, id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	used, unused := upload("#!/bin/false\nused\n"), upload("#!/bin/false\nunused\n")
	// No TaskManager: the job waits for slots, holding its artifact.
	id, err := c.SubmitJob(context.Background(), v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: used})
	if err != nil {
		t.Fatal(err)
	}
	waitGone("the unreferenced artifact", unused)
	if !stored(used) {
		t.Fatalf("the artifact of job %s, which has not ended, was deleted", id)
	}
	if err := c.CancelJob(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitGone("the cancelled job's artifact", used)
	if _, err := c.SubmitJob(context.Background(), v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: used}); err == nil || !strings.Contains(err.Error(), "upload the program first") {
		t.Fatalf("submission with a deleted artifact: %v, want an error saying to upload it", err)
	}
	if again := upload("#!/bin/false\nused\n"); again != used {
		t.Fatalf("re-upload: id %s, want %s", again, used)
	}
	if _, err := c.SubmitJob(context.Background(), v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: used}); err != nil {
		t.Fatalf("submission after re-upload: %v", err)
	}
}
