package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spate-dev/spate/internal/localkube"
)

// The command, run as a real child process, prints its ready line with a
// kubeconfig that works, runs a pod, and on SIGTERM stops everything: no
// process that refers to its directory (the control plane by its flags,
// the pod by its working directory and environment) is left.
func TestLocalkubeCommandStopsEverythingOnSIGTERM(t *testing.T) {
	localkube.Binaries(t) // skip (or fail under CI) with the reason if they cannot be built
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "localkube")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "cluster")
	cmd := exec.Command(bin, "-dir", dir, "-quiet")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	want := "localkube ready: KUBECONFIG=" + filepath.Join(dir, "kubeconfig")
	select {
	case l := <-lines:
		if l != want {
			t.Fatalf("first line %q, want %q; stderr:\n%s", l, want, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("no ready line after 3 minutes; stderr:\n%s", stderr.String())
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sleeper"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: localkube.MainContainer, Image: "spate:test", Command: []string{"/bin/sh", "-c", "sleep 1000; echo never"}}}}}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pgid int
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ; pgid == 0; <-tick.C {
		p, err := client.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 {
			id, _ := strings.CutPrefix(p.Status.ContainerStatuses[0].ContainerID, "localkube://")
			pgid, _ = strconv.Atoi(id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not running after 30s: %+v", p.Status)
		}
	}
	before := localkube.ProcessesIn(dir)
	if len(before) < 4 { // etcd, kube-apiserver, kube-controller-manager, the pod's shell (and sleep)
		t.Fatalf("processes referring to %s before SIGTERM: %v, want the control plane and the pod", dir, before)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("localkube exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("localkube still running a minute after SIGTERM; stderr:\n%s", stderr.String())
	}
	if left := localkube.ProcessesIn(dir); len(left) > 0 {
		t.Errorf("processes left after SIGTERM: %v", left)
	}
	if err := syscall.Kill(-pgid, 0); err != syscall.ESRCH {
		t.Errorf("the pod's process group %d is still there (kill: %v)", pgid, err)
	}
}
