package rest

import (
	"net/http"
	"slices"

	"github.com/spate-dev/spate/internal/dashboard"
)

// handleDashboard mounts the web dashboard (package dashboard) at the
// root and serves it the list of the API's routes, so that it calls only
// the routes this handler has (read when asked, so routes registered
// after this call are listed too).
func (h *handler) handleDashboard() {
	ui := dashboard.Handler()
	h.mux.Handle(dashboard.IndexPattern, ui)
	h.mux.Handle(dashboard.AssetsPattern, ui)
	h.mux.HandleFunc("GET "+dashboard.RoutesPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, dashboard.Routes{Routes: slices.Clone(h.routes)})
	})
}
