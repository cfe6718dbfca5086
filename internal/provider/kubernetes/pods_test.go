package kubernetes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStates(t *testing.T) {
	main := func(s corev1.ContainerState) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: MainContainer, Image: "spate:x", State: s}}
	}
	now := metav1.Now()
	for _, tc := range []struct {
		name                string
		pod                 corev1.Pod
		wantEnded, wantPend string
	}{
		{name: "running", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}},
		{name: "failed with exit code",
			pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: main(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "panic: boom\n"}})}},
			wantEnded: "pod tm failed (container spate-main exited with code 2, Error: panic: boom)"},
		{name: "evicted",
			pod:       corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}},
			wantEnded: "pod tm failed: Evicted: The node was low on resource: memory."},
		{name: "exited", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, wantEnded: "pod tm succeeded"},
		{name: "image pull",
			pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: main(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling"}})}},
			wantEnded: `pod tm: container spate-main cannot start: ImagePullBackOff: Back-off pulling (image "spate:x"`},
		{name: "being deleted", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
			wantEnded: "pod tm is being deleted"},
		{name: "unschedulable",
			pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient cpu."}}}},
			wantPend: "pod tm is not scheduled: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."},
		{name: "creating",
			pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: main(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})}},
			wantPend: "pod tm is pending: container spate-main is waiting: ContainerCreating"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pod.Name = "tm"
			if got := podEnded(&tc.pod); (got == "") != (tc.wantEnded == "") || !strings.HasPrefix(got, tc.wantEnded) {
				t.Errorf("podEnded = %q, want %q", got, tc.wantEnded)
			}
			if tc.wantEnded != "" {
				return
			}
			if got := podPending(&tc.pod); (got == "") != (tc.wantPend == "") || !strings.HasPrefix(got, tc.wantPend) {
				t.Errorf("podPending = %q, want %q", got, tc.wantPend)
			}
		})
	}
}
