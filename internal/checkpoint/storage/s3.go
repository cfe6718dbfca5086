package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/spate-dev/spate/internal/config"
)

// The keys of S3-compatible checkpoint storage, Flink's names (its
// flink-s3-fs-* plugins read the same).
const (
	// KeyS3Endpoint is the endpoint of the object store.
	KeyS3Endpoint = "s3.endpoint"
	// KeyS3Region is the bucket's region.
	KeyS3Region = "s3.region"
	// KeyS3AccessKey and KeyS3SecretKey are static credentials.
	KeyS3AccessKey = "s3.access-key"
	KeyS3SecretKey = "s3.secret-key"
	// KeyS3PathStyle addresses buckets in the path, not the host name.
	KeyS3PathStyle = "s3.path.style.access"
	// KeyS3PartSize is the size of each part of a multipart upload.
	KeyS3PartSize = "s3.upload.min.part.size"
	// KeyS3RequestTimeout bounds each request to the store.
	KeyS3RequestTimeout = "s3.request.timeout"
)

// minPartSize is S3's least size of a part other than the last.
const minPartSize = 5 << 20

// Defaults of the S3 options.
const (
	defaultPartSize       = 8 << 20
	defaultRequestTimeout = 2 * time.Minute
)

// S3Options configure the s3:// stores: where the object store is, how
// to authenticate and how to upload.
type S3Options struct {
	// Endpoint is http(s)://host[:port] or host[:port] (HTTPS); AWS's
	// s3.amazonaws.com if empty.
	Endpoint string
	// Region is the bucket's region; asked of the store if empty.
	Region string
	// AccessKey and SecretKey are static credentials; without them the
	// usual chain is tried: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
	// AWS_SESSION_TOKEN, then ~/.aws/credentials (AWS_PROFILE), then the
	// instance's or pod's role (IAM, web identity).
	AccessKey, SecretKey string
	// PathStyle addresses buckets as host/bucket rather than bucket.host.
	PathStyle bool
	// PartSize is the size of each part of a multipart upload; an object
	// smaller than it goes up in one request.
	PartSize int64
	// RequestTimeout bounds each request (with its retries): a store that
	// stalls fails the write rather than holding it for ever.
	RequestTimeout time.Duration

	// MaxRetries, if not 0, overrides minio-go's 10 attempts per
	// request (tests that inject failures).
	MaxRetries int
	// transport overrides the HTTP transport (tests).
	transport http.RoundTripper
}

// Options configure the stores OpenConfig opens.
type Options struct {
	S3 S3Options
}

// OptionsFrom reads the storage keys of c; a malformed value is an error
// naming its key.
func OptionsFrom(c config.Config) (Options, error) {
	o := Options{S3: S3Options{
		Endpoint:  strings.TrimSpace(c.String(KeyS3Endpoint, "")),
		Region:    strings.TrimSpace(c.String(KeyS3Region, "")),
		AccessKey: c.String(KeyS3AccessKey, ""),
		SecretKey: c.String(KeyS3SecretKey, ""),
	}}
	var err error
	if o.S3.PathStyle, err = c.Bool(KeyS3PathStyle, false); err != nil {
		return o, err
	}
	if o.S3.PartSize, err = c.Bytes(KeyS3PartSize, defaultPartSize); err != nil {
		return o, err
	}
	if o.S3.PartSize < minPartSize {
		return o, fmt.Errorf("%s: %d bytes is below S3's least part size of 5 MiB", KeyS3PartSize, o.S3.PartSize)
	}
	if o.S3.RequestTimeout, err = c.Duration(KeyS3RequestTimeout, defaultRequestTimeout); err != nil {
		return o, err
	}
	if o.S3.RequestTimeout <= 0 {
		return o, fmt.Errorf("%s: must be above zero", KeyS3RequestTimeout)
	}
	if (o.S3.AccessKey == "") != (o.S3.SecretKey == "") {
		return o, fmt.Errorf("set both %s and %s, or neither (for the AWS_* environment variables)", KeyS3AccessKey, KeyS3SecretKey)
	}
	return o, nil
}

// Properties returns the entries of c that configure storage (its s3.*
// keys), for a process that must open the same stores: a worker reading
// the state files of the checkpoint it restores.
func Properties(c config.Config) map[string]string {
	out := map[string]string{}
	for k, v := range c.Entries() {
		if strings.HasPrefix(k, "s3.") {
			out[k] = v
		}
	}
	return out
}

// OptionsEnv carries, encoded as config.EncodeProperties does, the
// storage entries (Properties) of a job's configuration to its workers.
const OptionsEnv = "SPATE_CHECKPOINT_STORAGE"

// OptionsFromEnvironment reads the options OptionsEnv carries, over the
// process's own configuration c.
func OptionsFromEnvironment(c config.Config) (Options, error) {
	if props := os.Getenv(OptionsEnv); props != "" {
		if err := c.ApplyProperties(props); err != nil {
			return Options{}, fmt.Errorf("%s: %w", OptionsEnv, err)
		}
	}
	return OptionsFrom(c)
}

// s3Store is a Store in an S3 bucket, under a prefix. An object is only
// visible once whole: a single PUT replaces it atomically, and a
// multipart upload is invisible until completed, so Create's writer and
// Publish both keep the promise of Store.
type s3Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	prefix string // "" or without slashes at either end
	o      S3Options
}

var _ Store = (*s3Store)(nil)

// openS3 opens the store at u, s3://bucket[/prefix].
func openS3(dir string, u *url.URL, o S3Options) (*s3Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("checkpoint storage %q: an s3 URL names its bucket: s3://bucket/prefix", dir)
	}
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	endpoint, secure := "s3.amazonaws.com", true
	if e := o.Endpoint; e != "" {
		if strings.Contains(e, "://") {
			eu, err := url.Parse(e)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || (eu.Path != "" && eu.Path != "/") {
				return nil, fmt.Errorf("%s %q: want http(s)://host[:port] or host[:port]", KeyS3Endpoint, e)
			}
			endpoint, secure = eu.Host, eu.Scheme == "https"
		} else {
			endpoint = strings.TrimSuffix(e, "/")
		}
	}
	creds := credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	if o.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := o.transport
	if tr == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
		}
		t.ResponseHeaderTimeout = o.RequestTimeout
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr = t
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds: creds, Secure: secure, Region: o.Region, BucketLookup: lookup,
		Transport: tr, MaxRetries: o.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q (%s %q): %w", dir, KeyS3Endpoint, o.Endpoint, err)
	}
	return &s3Store{
		client: client, core: minio.Core{Client: client}, bucket: u.Host,
		prefix: strings.Trim(path.Clean("/"+u.Path), "/"), o: o,
	}, nil
}

// key is the object key of name.
func (s *s3Store) key(name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "\\") {
		return "", fmt.Errorf("checkpoint storage: bad object name %q", name)
	}
	if s.prefix == "" {
		return clean[1:], nil
	}
	return s.prefix + clean, nil
}

func (s *s3Store) URL(name string) string {
	k, err := s.key(name)
	if err != nil {
		k = path.Join(s.prefix, name)
	}
	return "s3://" + s.bucket + "/" + k
}

// request bounds one call to the store by the request timeout.
func (s *s3Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.o.RequestTimeout)
}

func (s *s3Store) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	k, err := s.key(name)
	if err != nil {
		return nil, err
	}
	return &s3Writer{ctx: ctx, s: s, key: k, buf: make([]byte, 0, min(s.o.PartSize, 1<<20))}, nil
}

func (s *s3Store) Publish(ctx context.Context, name string, data []byte) error {
	k, err := s.key(name)
	if err != nil {
		return err
	}
	if err := s.put(ctx, k, data); err != nil {
		return fmt.Errorf("write %s: %w", s.URL(name), err)
	}
	return nil
}

// digests are the MD5 (base64) and SHA-256 (hex) of data: sent with a
// body, they let the store refuse one damaged on its way rather than
// store it (the SHA-256 is signed too).
func digests(data []byte) (md5Base64, sha256Hex string) {
	m := md5.Sum(data)
	s := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// put writes object k in one request, with its digests.
func (s *s3Store) put(ctx context.Context, k string, data []byte) error {
	rctx, cancel := s.request(ctx)
	defer cancel()
	md5b64, sha256hex := digests(data)
	_, err := s.core.PutObject(rctx, s.bucket, k, bytes.NewReader(data), int64(len(data)),
		md5b64, sha256hex, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return err
}

func (s *s3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	k, err := s.key(name)
	if err != nil {
		return nil, err
	}
	r, _, _, err := s.core.GetObject(ctx, s.bucket, k, minio.GetObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("open %s: %w", s.URL(name), os.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", s.URL(name), err)
	}
	return r, nil
}

// isNotFound tells whether err says the object (or its bucket) is not
// there.
func isNotFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket"
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]string, error) {
	k, err := s.key(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: k + "/", Recursive: true}) {
		if obj.Err != nil {
			if isNotFound(obj.Err) {
				break
			}
			return nil, fmt.Errorf("list %s: %w", s.URL(prefix), obj.Err)
		}
		name := obj.Key
		if s.prefix != "" {
			name = strings.TrimPrefix(name, s.prefix+"/")
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

func (s *s3Store) Delete(ctx context.Context, prefix string) error {
	k, err := s.key(prefix)
	if err != nil {
		return err
	}
	// Uploads left incomplete (a writer abandoned, a JobManager killed
	// mid-write) are invisible but cost storage: abort them too.
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, k+"/", true) {
		if up.Err != nil {
			break
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s: abort the upload of %s: %w", s.URL(prefix), up.Key, err)
		}
	}
	var listErr error
	objects := func(yield func(minio.ObjectInfo) bool) {
		for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: k + "/", Recursive: true}) {
			if obj.Err != nil {
				if !isNotFound(obj.Err) {
					listErr = obj.Err
				}
				return
			}
			if !yield(obj) {
				return
			}
		}
	}
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, objects, minio.RemoveObjectsOptions{})
	if err != nil {
		return fmt.Errorf("delete %s: %w", s.URL(prefix), err)
	}
	var errs []error
	for r := range results {
		if r.Err != nil && !isNotFound(r.Err) {
			errs = append(errs, fmt.Errorf("%s: %w", r.ObjectName, r.Err))
		}
	}
	if listErr != nil {
		errs = append(errs, listErr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete %s: %w", s.URL(prefix), err)
	}
	return nil
}

// s3Writer writes an object: in one PUT if it is smaller than a part,
// else as a multipart upload of parts of PartSize, completed at Close.
// Until CompleteMultipartUpload the object is invisible; a failed write
// aborts the upload, so no part of it is ever read as the object.
type s3Writer struct {
	ctx    context.Context
	s      *s3Store
	key    string
	buf    []byte
	upload string // the multipart upload's id, "" until the first part
	parts  []minio.CompletePart
	err    error
	closed bool
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("write after close")
	}
	n := 0
	for len(p) > 0 {
		room := int(w.s.o.PartSize) - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p, n = p[take:], n+take
		if len(w.buf) == int(w.s.o.PartSize) {
			if err := w.flushPart(); err != nil {
				w.fail(err)
				return n, w.err
			}
		}
	}
	return n, nil
}

// flushPart uploads the buffer as the next part.
func (w *s3Writer) flushPart() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.upload == "" {
		rctx, cancel := w.s.request(w.ctx)
		id, err := w.s.core.NewMultipartUpload(rctx, w.s.bucket, w.key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		cancel()
		if err != nil {
			return fmt.Errorf("start a multipart upload: %w", err)
		}
		w.upload = id
	}
	n := len(w.parts) + 1
	md5b64, _ := digests(w.buf)
	rctx, cancel := w.s.request(w.ctx)
	defer cancel()
	// The part's MD5 guards it; its SHA-256 is not signed, as minio-go
	// would only sign it as an aws-chunked stream over plain HTTP, which
	// not every S3-compatible store decodes in a part (gofakes3 does not).
	part, err := w.s.core.PutObjectPart(rctx, w.s.bucket, w.key, w.upload, n, bytes.NewReader(w.buf), int64(len(w.buf)),
		minio.PutObjectPartOptions{Md5Base64: md5b64, DisableContentSha256: true})
	if err != nil {
		return fmt.Errorf("upload part %d: %w", n, err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	w.buf = w.buf[:0]
	return nil
}

// fail records err and aborts the upload, if one began.
func (w *s3Writer) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("write %s: %w", w.s.URL(strings.TrimPrefix(w.key, w.s.prefix+"/")), err)
	}
	if w.upload != "" {
		// The writer's context may be what ended; the abort must still go.
		actx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), w.s.o.RequestTimeout)
		defer cancel()
		if aerr := w.s.core.AbortMultipartUpload(actx, w.s.bucket, w.key, w.upload); aerr == nil {
			w.upload = ""
		}
	}
}

func (w *s3Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.upload == "" {
		// Smaller than a part: one PUT.
		if err := w.s.put(w.ctx, w.key, w.buf); err != nil {
			w.fail(err)
		}
		w.buf = nil
		return w.err
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.fail(err)
			return w.err
		}
	}
	rctx, cancel := w.s.request(w.ctx)
	defer cancel()
	if _, err := w.s.core.CompleteMultipartUpload(rctx, w.s.bucket, w.key, w.upload, w.parts, minio.PutObjectOptions{}); err != nil {
		w.fail(fmt.Errorf("complete the multipart upload: %w", err))
		return w.err
	}
	w.buf = nil
	return nil
}
