package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// Lengths of ids in hexadecimal characters.
const (
	jobIDLen      = 32 // Flink's JobID: 16 bytes
	artifactIDLen = 64 // SHA-256
)

// ArtifactField is the multipart/form-data field holding the binary in
// POST /v1/artifacts.
const ArtifactField = "artifact"

// ValidJobID reports whether s has the syntax of a job id: 32 lowercase
// hexadecimal characters.
func ValidJobID(s string) bool { return isLowerHex(s, jobIDLen) }

// ValidArtifactID reports whether s has the syntax of an artifact id (a
// SHA-256): 64 lowercase hexadecimal characters.
func ValidArtifactID(s string) bool { return isLowerHex(s, artifactIDLen) }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// jobID is the request's valid {id}, or an error naming the fix.
func jobID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !ValidJobID(id) {
		return "", errorf(http.StatusBadRequest,
			"invalid job id %q: a job id is %d lowercase hexadecimal characters; list jobs with GET /v1/jobs",
			id, jobIDLen)
	}
	return id, nil
}

// jobError answers a Backend error about job id.
func jobError(err error, id string) error {
	if classStatus(err) == http.StatusNotFound {
		return &httpError{status: http.StatusNotFound, cause: err,
			msg: fmt.Sprintf("unknown job %q: list jobs with GET /v1/jobs", id)}
	}
	return backendError(err, nil)
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request) error {
	o, err := h.b.Overview(r.Context())
	if err != nil {
		return backendError(err, nil)
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) error {
	c, err := h.b.Config(r.Context())
	if err != nil {
		return backendError(err, nil)
	}
	if c.Entries == nil {
		c.Entries = []v1.ConfigEntry{}
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (h *handler) jobs(w http.ResponseWriter, r *http.Request) error {
	o, err := h.b.JobsOverview(r.Context())
	if err != nil {
		return backendError(err, nil)
	}
	jobs := v1.JobIDsWithStatus{Jobs: make([]v1.JobIDStatus, 0, len(o.Jobs))}
	for _, j := range o.Jobs {
		jobs.Jobs = append(jobs.Jobs, v1.JobIDStatus{ID: j.JID, Status: j.State})
	}
	writeJSON(w, http.StatusOK, jobs)
	return nil
}

func (h *handler) jobsOverview(w http.ResponseWriter, r *http.Request) error {
	o, err := h.b.JobsOverview(r.Context())
	if err != nil {
		return backendError(err, nil)
	}
	if o.Jobs == nil {
		o.Jobs = []v1.JobOverview{}
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (h *handler) job(w http.ResponseWriter, r *http.Request) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	j, err := h.b.Job(r.Context(), id)
	if err != nil {
		return jobError(err, id)
	}
	if j.Vertices == nil {
		j.Vertices = []v1.JobVertex{}
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (h *handler) patchJob(w http.ResponseWriter, r *http.Request) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	switch mode := r.URL.Query().Get("mode"); mode {
	case "cancel":
	case "":
		return errorf(http.StatusBadRequest,
			"missing query parameter mode: cancel a job with PATCH /v1/jobs/%s?mode=cancel", id)
	case "stop":
		return errorf(http.StatusBadRequest,
			"mode stop is not served here: stop the job with a savepoint through POST /v1/jobs/%s/stop, or cancel it with ?mode=cancel", id)
	default:
		return errorf(http.StatusBadRequest,
			"unknown mode %q: the accepted mode is cancel (stop a job with POST /v1/jobs/{id}/stop)", mode)
	}
	if err := h.b.CancelJob(r.Context(), id); err != nil {
		return jobError(err, id)
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

func (h *handler) jobExceptions(w http.ResponseWriter, r *http.Request) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	e, err := h.b.JobExceptions(r.Context(), id)
	if err != nil {
		return jobError(err, id)
	}
	if e.History.Entries == nil {
		e.History.Entries = []v1.ExceptionEntry{}
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (h *handler) taskManagers(w http.ResponseWriter, r *http.Request) error {
	t, err := h.b.TaskManagers(r.Context())
	if err != nil {
		return backendError(err, nil)
	}
	if t.TaskManagers == nil {
		t.TaskManagers = []v1.TaskManagerInfo{}
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (h *handler) submitJob(w http.ResponseWriter, r *http.Request) error {
	var req v1.JobSubmitRequest
	if err := h.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkSubmit(&req); err != nil {
		return err
	}
	resp, err := h.b.SubmitJob(r.Context(), req)
	if err != nil {
		return backendError(err, map[int]string{
			http.StatusNotFound: "upload the program binary with POST /v1/artifacts and submit with the id it returns",
		})
	}
	writeJSON(w, http.StatusAccepted, resp)
	return nil
}

// checkSubmit checks what the REST layer can check of a submission.
func checkSubmit(req *v1.JobSubmitRequest) error {
	g := bytes.TrimSpace(req.JobGraph)
	if len(g) == 0 || string(g) == "null" {
		return errorf(http.StatusBadRequest,
			`missing "jobGraph": submit the JobGraph the program prints (spate info PROGRAM)`)
	}
	if g[0] != '{' {
		return errorf(http.StatusBadRequest,
			`"jobGraph" is not a JSON object: submit the JobGraph the program prints (spate info PROGRAM)`)
	}
	if req.JobOrdinal < 0 || req.JobOrdinal > math.MaxInt32 {
		return errorf(http.StatusBadRequest,
			`invalid "jobOrdinal" %d: it counts the program's Execute/ExecuteAsync calls from 0`, req.JobOrdinal)
	}
	if req.Artifact == "" {
		return errorf(http.StatusBadRequest,
			`missing "artifact": upload the program binary with POST /v1/artifacts and put the id it returns in "artifact"`)
	}
	if !ValidArtifactID(req.Artifact) {
		return errorf(http.StatusBadRequest,
			`invalid "artifact" %q: an artifact id is the SHA-256 (%d lowercase hexadecimal characters) POST /v1/artifacts returns`,
			req.Artifact, artifactIDLen)
	}
	for k := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return errorf(http.StatusBadRequest,
				`invalid "env" variable name %q: a name is not empty and holds no '=' nor NUL`, k)
		}
	}
	return nil
}

// decodeJSON reads r's body, at most h.maxBody bytes, into dst: one JSON
// value with no unknown fields.
func (h *handler) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	what := reflect.TypeOf(dst).Elem().Name()
	if r.ContentLength > h.maxBody {
		return h.bodyTooLarge(what)
	}
	// The body of a JSON request is small: it need not take long.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.dl.body))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(dst)
		if err == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				return errorf(http.StatusBadRequest,
					"request body goes on after the JSON value: send one %s object", what)
			}
			// encoding/json matches names case-insensitively: be exact.
			var keys map[string]json.RawMessage
			if json.Unmarshal(data, &keys) == nil {
				fields := jsonFieldSet(dst)
				for _, k := range slices.Sorted(maps.Keys(keys)) {
					if !fields[k] {
						return errorf(http.StatusBadRequest,
							"unknown field %q in %s: the accepted fields are %s", k, what, jsonFields(dst))
					}
				}
			}
			return nil
		}
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			return &httpError{status: http.StatusBadRequest, cause: err,
				msg: fmt.Sprintf("read request body: %v; send the %s again", err, what)}
		}
	}
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return h.bodyTooLarge(what)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout,
			"request body not received within %v: send the %s at once", h.dl.body, what)
	case err == io.EOF:
		return errorf(http.StatusBadRequest,
			"empty request body: send a JSON %s object with fields %s", what, jsonFields(dst))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "truncated JSON in request body: send a whole %s object", what)
	case errors.As(err, &syntax):
		return errorf(http.StatusBadRequest,
			"malformed JSON in request body at byte %d: %v; send a JSON %s object", syntax.Offset, err, what)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest,
				"request body is a JSON %s: send a JSON %s object with fields %s", typ.Value, what, jsonFields(dst))
		}
		return errorf(http.StatusBadRequest,
			"field %q of %s holds a JSON %s where it wants %s", typ.Field, what, typ.Value, jsonKind(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusBadRequest,
			"unknown field %s in %s: the accepted fields are %s",
			strings.TrimPrefix(err.Error(), "json: unknown field "), what, jsonFields(dst))
	}
	return errorf(http.StatusBadRequest, "invalid %s in request body: %v", what, err)
}

func (h *handler) bodyTooLarge(what string) error {
	return errorf(http.StatusRequestEntityTooLarge,
		"request body is larger than the limit of %d bytes: send a smaller %s (a program's arguments and environment belong in it, data does not)",
		h.maxBody, what)
}

// jsonFieldSet is the set of the JSON names of the fields of the struct *v.
func jsonFieldSet(v any) map[string]bool {
	set := map[string]bool{}
	for _, name := range jsonFieldNames(v) {
		set[name] = true
	}
	return set
}

// jsonFields lists the JSON names of the fields of the struct *v.
func jsonFields(v any) string {
	names := jsonFieldNames(v)
	for i, name := range names {
		names[i] = strconv.Quote(name)
	}
	return strings.Join(names, ", ")
}

// jsonFieldNames lists the JSON names of the fields of the struct *v.
func jsonFieldNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = t.Field(i).Name
		}
		names = append(names, name)
	}
	return names
}

// jsonKind names the JSON kind that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a JSON value"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

func (h *handler) putArtifact(w http.ResponseWriter, r *http.Request) error {
	release, ok := h.uploads.acquire(r)
	if !ok {
		return errorf(http.StatusTooManyRequests,
			"%d uploads from %s are in flight, the most one client may have: wait for them to end and upload again",
			h.uploads.max, clientOf(r))
	}
	defer release()
	var src io.Reader
	// Below the multipart reader: its part headers are under the upload
	// deadlines too.
	body := h.progress(w, r.Body)
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	switch {
	case ct == "" || mt == "application/octet-stream" || mt == "application/x-www-form-urlencoded":
		// The raw binary (curl --data-binary sends the latter by default).
		if r.ContentLength > h.maxArtifact {
			return h.artifactTooLarge()
		}
		src = http.MaxBytesReader(w, readCloser{body, r.Body}, h.maxArtifact)
	case mt == "multipart/form-data":
		if r.ContentLength > h.maxArtifact+multipartSlack {
			return h.artifactTooLarge()
		}
		if params["boundary"] == "" {
			return errorf(http.StatusBadRequest,
				"multipart/form-data without a boundary: let the HTTP client set the Content-Type (curl -F %s=@PROGRAM)", ArtifactField)
		}
		mr := multipart.NewReader(http.MaxBytesReader(w, readCloser{body, r.Body}, h.maxArtifact+multipartSlack), params["boundary"])
		for src == nil {
			part, err := mr.NextPart()
			if err == io.EOF {
				return errorf(http.StatusBadRequest,
					"multipart body has no file field %q: send the binary in it (curl -F %s=@PROGRAM)", ArtifactField, ArtifactField)
			}
			if err != nil {
				return h.uploadError(err)
			}
			if part.FormName() == ArtifactField {
				src = &capReader{r: part, left: h.maxArtifact}
				break
			}
			if _, err := io.Copy(io.Discard, part); err != nil {
				return h.uploadError(err)
			}
		}
	default:
		if err != nil {
			mt = ct
		}
		return errorf(http.StatusUnsupportedMediaType,
			"unsupported Content-Type %q: send the binary as application/octet-stream or as the file field %q of multipart/form-data",
			mt, ArtifactField)
	}
	tr := &trackReader{r: src}
	var first [1]byte
	if n, err := io.ReadFull(tr, first[:]); n == 0 {
		if err == io.EOF {
			return errorf(http.StatusBadRequest, "empty artifact: send the program's binary as the request body")
		}
		return h.uploadError(err)
	}
	resp, err := h.b.PutArtifact(r.Context(), io.MultiReader(bytes.NewReader(first[:]), tr))
	if tr.err != nil {
		// The upload failed, whatever the Backend made of it.
		return h.uploadError(tr.err)
	}
	if err != nil {
		return backendError(err, nil)
	}
	if resp.Status == "" {
		resp.Status = "success"
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (h *handler) artifactTooLarge() error {
	return errorf(http.StatusRequestEntityTooLarge,
		"artifact is larger than the limit of %d bytes: strip the binary (go build -ldflags=-s -w) or raise the JobManager's limit",
		h.maxArtifact)
}

// uploadError answers a failure to read an upload.
func (h *handler) uploadError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return h.artifactTooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout,
			"upload too slow: an upload must bring %d bytes every %v and end within %v; check the network and upload again",
			h.dl.uploadMin, h.dl.uploadWindow, h.dl.upload)
	}
	return &httpError{status: http.StatusBadRequest, cause: err,
		msg: fmt.Sprintf("read upload: %v; upload the binary again", err)}
}

// capReader fails with an *http.MaxBytesError past left bytes.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, &http.MaxBytesError{}
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, &http.MaxBytesError{}
	}
	return n, err
}

// trackReader keeps the first error (but io.EOF) of reading an upload.
type trackReader struct {
	r   io.Reader
	err error
}

// readCloser reads from a reader and closes a closer (a request body
// read through a progressReader).
type readCloser struct {
	io.Reader
	io.Closer
}

func (t *trackReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

func (h *handler) getArtifact(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !ValidArtifactID(id) {
		return errorf(http.StatusBadRequest,
			"invalid artifact id %q: an artifact id is the SHA-256 (%d lowercase hexadecimal characters) POST /v1/artifacts returns",
			id, artifactIDLen)
	}
	rc, size, err := h.b.OpenArtifact(r.Context(), id)
	if err != nil {
		if classStatus(err) == http.StatusNotFound {
			return &httpError{status: http.StatusNotFound, cause: err,
				msg: fmt.Sprintf("unknown artifact %q: upload the binary with POST /v1/artifacts", id)}
		}
		return backendError(err, nil)
	}
	defer rc.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="`+id+`"`)
	if size >= 0 {
		hd.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// Not io.Copy(w, …): each chunk's write has a deadline.
	n, err := io.CopyBuffer(h.progressOut(w), struct{ io.Reader }{rc}, make([]byte, 64<<10))
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("artifact is %d bytes, not the %d announced", n, size)
	}
	if err != nil {
		return fmt.Errorf("send artifact %s: %w", id, err)
	}
	return nil
}
