package kubernetes

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// waitingFatal are the reasons of a waiting container that will not start
// without someone fixing something: the image, the pod's configuration.
var waitingFatal = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"CrashLoopBackOff": true,
}

// podEnded tells, for a pod spate's container runs in, why it will not
// run (any more): it failed, was evicted, exited, or its container cannot
// start (an image that cannot be pulled, a configuration error). It
// returns "" while the pod runs or may still start.
func podEnded(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return fmt.Sprintf("pod %s is being deleted", p.Name)
	}
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		why := strings.ToLower(string(p.Status.Phase))
		if p.Status.Reason != "" {
			why += ": " + p.Status.Reason // Evicted, ...
		}
		if p.Status.Message != "" {
			why += ": " + p.Status.Message
		}
		if t := mainStatus(p); t != nil && t.State.Terminated != nil {
			term := t.State.Terminated
			why += fmt.Sprintf(" (container %s exited with code %d", MainContainer, term.ExitCode)
			if term.Reason != "" {
				why += ", " + term.Reason
			}
			if term.Message != "" {
				why += ": " + strings.TrimSpace(term.Message)
			}
			why += ")"
		}
		return fmt.Sprintf("pod %s %s", p.Name, why)
	}
	if s := mainStatus(p); s != nil && s.State.Waiting != nil && waitingFatal[s.State.Waiting.Reason] {
		w := s.State.Waiting
		msg := fmt.Sprintf("pod %s: container %s cannot start: %s", p.Name, MainContainer, w.Reason)
		if w.Message != "" {
			msg += ": " + w.Message
		}
		if strings.Contains(w.Reason, "Image") {
			msg += fmt.Sprintf(" (image %q: check kubernetes.container.image and the pull secrets)", s.Image)
		}
		return msg
	}
	return ""
}

// podPending tells why a pod that has not started yet waits: it is
// unschedulable, or its container is still being created. "" if it runs.
func podPending(p *corev1.Pod) string {
	if p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("pod %s is not scheduled: %s: %s", p.Name, c.Reason, c.Message)
		}
	}
	if s := mainStatus(p); s != nil && s.State.Waiting != nil {
		return fmt.Sprintf("pod %s is pending: container %s is waiting: %s %s", p.Name, MainContainer, s.State.Waiting.Reason, s.State.Waiting.Message)
	}
	if p.Spec.NodeName == "" {
		return fmt.Sprintf("pod %s is pending: not scheduled to a node yet", p.Name)
	}
	return fmt.Sprintf("pod %s is pending on node %s", p.Name, p.Spec.NodeName)
}

func mainStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == MainContainer {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}
