package kubernetes

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientGoNotInPrograms: a user's program (the root package, the
// connectors, the examples) links no Kubernetes client: only the spate CLI
// and daemons, through this package, do (DESIGN.md §6).
func TestClientGoNotInPrograms(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"github.com/spate-dev/spate", "github.com/spate-dev/spate/connector/...", "github.com/spate-dev/spate/examples/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "k8s.io/") || strings.HasSuffix(p, "/internal/provider/kubernetes") {
			t.Errorf("a program links %s", p)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/spate-dev/spate/cmd/spate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "k8s.io/client-go/kubernetes\n") {
		t.Errorf("the spate CLI does not link client-go: %v", err)
	}
}
