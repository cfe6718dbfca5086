// Package rest is the JobManager's HTTP server: the REST API that the CLI,
// user programs (through package client) and TaskManagers speak to. Its
// request and response bodies are the types of api/v1, shaped like Apache
// Flink's REST API.
//
// NewHandler serves a Backend (the JobManager implements it) on these routes:
//
//	GET   /v1/overview              cluster at a glance            v1.Overview
//	GET   /v1/config                version and configuration      v1.Config
//	GET   /v1/jobs                  job ids and states             v1.JobIDsWithStatus
//	GET   /v1/jobs/overview         jobs with times and tasks      v1.JobsOverview
//	POST  /v1/jobs                  submit a job (JSON body)       v1.JobSubmitRequest -> 202 v1.JobSubmitResponse
//	GET   /v1/jobs/{id}             one job with its vertices      v1.JobDetails
//	PATCH /v1/jobs/{id}?mode=cancel cancel a job                   202 {}
//	GET   /v1/jobs/{id}/exceptions  a job's failures               v1.JobExceptions
//	POST  /v1/jobs/{id}/collect     fetch Collect sinks' records   v1.CollectRequest -> v1.CollectResponse
//	POST  /v1/jobs/{id}/acknowledge-result  the client has the ended job's result  202 {}
//	POST  /v1/jobs/{id}/savepoints  trigger a savepoint            v1.SavepointTriggerRequest -> 202 v1.TriggerResponse
//	POST  /v1/jobs/{id}/stop        stop with a savepoint          v1.StopWithSavepointRequest -> 202 v1.TriggerResponse
//	GET   /v1/jobs/{id}/savepoints/{triggerid}  a savepoint's status  v1.SavepointStatus
//	GET   /v1/taskmanagers          registered TaskManagers        v1.TaskManagers
//	POST  /v1/artifacts             upload a program binary        v1.ArtifactUploadResponse
//	GET   /v1/artifacts/{id}        download a program binary      application/octet-stream
//	GET   /  and /web/...           the web dashboard (package dashboard)  text/html, scripts
//	GET   /web/routes.json          the routes served, for the dashboard   dashboard.Routes
//
// Job ids are 32 lowercase hexadecimal characters, as Flink's JobID;
// artifact ids are the SHA-256 of the binary, 64 lowercase hexadecimal
// characters. POST /v1/artifacts takes the binary as the raw body
// (Content-Type application/octet-stream) or, as Flink's jar upload, as the
// file field "artifact" of a multipart/form-data body.
//
// Every GET route also answers HEAD, and no GET changes anything: a client
// that needs the cluster to know it read a result says so with POST
// /v1/jobs/{id}/acknowledge-result (served if the Backend is a
// ResultBackend). Every error, whatever its source
// (malformed input, an unknown route, a wrong method, a Backend error or a
// panic), is a JSON v1.ErrorResponse {"errors": ["..."]} whose message names
// the problem and how to fix it. A Backend classifies its errors by wrapping
// ErrNotFound (404), ErrInvalid (400), ErrConflict (409), ErrTooLarge (413)
// or ErrUnavailable (503); any other error is a 500.
//
// Serve runs a handler on a listener until its context ends.
package rest
