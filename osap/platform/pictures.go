package platform

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// DefaultPicturePath is where the emulator serves the picture service on
// its API listener: the base URL it announces in 0xB is
// http://{API address}/osap.
const DefaultPicturePath = "/osap"

// ErrPictureNotFound is returned by PictureService.Open for a picture the
// service does not hold.
var ErrPictureNotFound = errors.New("picture not found")

// Picture is one stored picture.
type Picture struct {
	// ID is osap.PictureID of the bytes: the first 16 bytes of their
	// SHA-256, in hex.
	ID string `json:"picture"`
	// DevID is the gateway that uploaded it; Dev the sub-device its
	// X-OSAP-Dev header named (empty for the gateway itself). A picture
	// uploaded again keeps the Dev and Time of its first upload.
	DevID  string    `json:"devid"`
	Dev    string    `json:"dev"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Time   time.Time `json:"time"`
}

// PictureFault makes the picture service refuse or hold uploads, for
// tests and the bench. It applies to uploads only, before any check.
type PictureFault struct {
	// Status, when not 0, answers uploads with it (503, 401, 500, …)
	// instead of handling them.
	Status int
	// RetryAfter goes with a 503 as Retry-After in whole seconds (at
	// least 1).
	RetryAfter time.Duration
	// Delay holds every upload this long before it is handled (or
	// refused); a client that goes away ends the wait.
	Delay time.Duration
	// Count, when above 0, is how many uploads the fault applies to; it
	// then clears itself. 0 keeps it until the next SetFault.
	Count int
}

func (f PictureFault) active() bool { return f.Status != 0 || f.Delay > 0 }

// PictureServiceConfig configures a PictureService.
type PictureServiceConfig struct {
	// Dir holds the pictures, one directory per DevID; created 0700.
	Dir string
	// Keys gives the session keys that open the upload tokens.
	Keys KeySource
	// Now is the clock the token's time is checked against; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
}

// PictureService is the platform's picture service of binding 2.7: it
// takes uploads (POST /v1/{DevID}/pictures) whose token it checks as the
// DAS checks a login password, keeps the pictures durably in its
// directory, and serves them (GET /v1/{DevID}/pictures/{id}). Its
// handler is meant to be mounted under the base URL the LBS announces
// (http.StripPrefix). It is safe for concurrent use.
type PictureService struct {
	dir    string
	keys   KeySource
	now    func() time.Time
	log    *slog.Logger
	replay replayCache
	mux    *http.ServeMux

	commitMu sync.Mutex // one commit (rename, index, directory sync) at a time

	mu     sync.Mutex
	byDev  map[string]map[string]Picture // DevID → id → picture
	fault  PictureFault
	counts map[int]int // uploads answered, by status
}

// NewPictureService opens (creating it) the picture directory and loads
// the pictures kept there; leftovers of uploads a crash interrupted are
// removed. It returns an error when cfg has no directory or key source,
// or the directory cannot be created or read.
func NewPictureService(cfg PictureServiceConfig) (*PictureService, error) {
	if cfg.Keys == nil {
		return nil, errors.New("new picture service: no key source")
	}
	if cfg.Dir == "" {
		return nil, errors.New("new picture service: no directory")
	}
	p := &PictureService{dir: cfg.Dir, keys: cfg.Keys, now: cfg.Now, log: cfg.Logger,
		replay: replayCache{maxAge: osap.PictureTokenMaxAge}, byDev: map[string]map[string]Picture{}, counts: map[int]int{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("new picture service: %w", err)
	}
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("new picture service: %w", err)
	}
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("POST /v1/{devid}/pictures", p.upload)
	p.mux.HandleFunc("GET /v1/{devid}/pictures/{id}", p.download)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		pictureError(w, http.StatusNotFound, "no such path")
	})
	return p, nil
}

// load reads the index of every DevID directory: a picture is kept when
// both its bytes ({id}.jpg) and its record ({id}.json) are there.
func (p *PictureService) load() error {
	devs, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if !d.IsDir() || !validDevID(d.Name()) {
			continue
		}
		dir := filepath.Join(p.dir, d.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			name := f.Name()
			if strings.HasPrefix(name, ".") { // an upload or record a crash interrupted
				os.Remove(filepath.Join(dir, name))
				continue
			}
			id, ok := strings.CutSuffix(name, ".json")
			if !ok || !validPictureID(id) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			var pic Picture
			if err := json.Unmarshal(b, &pic); err != nil || pic.ID != id || pic.DevID != d.Name() {
				p.log.Warn("picture record ignored", "file", filepath.Join(dir, name), "err", err)
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, id+".jpg")); err != nil || st.Size() != pic.Size {
				p.log.Warn("picture record without its picture ignored", "file", filepath.Join(dir, name))
				continue
			}
			p.index(pic)
		}
	}
	return nil
}

// index adds pic to the in-memory index. p.mu must not be held.
func (p *PictureService) index(pic Picture) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.byDev[pic.DevID]
	if m == nil {
		m = map[string]Picture{}
		p.byDev[pic.DevID] = m
	}
	m[pic.ID] = pic
}

// ServeHTTP serves uploads and downloads under the base path (already
// stripped); any other path is 404.
func (p *PictureService) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// SetFault makes later uploads meet f (a zero PictureFault clears it).
func (p *PictureService) SetFault(f PictureFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// Fault returns the fault in force (zero when none).
func (p *PictureService) Fault() PictureFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Answered returns how many uploads the service has answered with status
// (201 for stored ones), since it was created.
func (p *PictureService) Answered(status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[status]
}

// takeFault returns the fault an upload meets now, counting it down.
func (p *PictureService) takeFault() (PictureFault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if !f.active() {
		return f, false
	}
	if f.Count > 0 {
		p.fault.Count--
		if p.fault.Count == 0 {
			p.fault = PictureFault{}
		}
	}
	return f, true
}

// Pictures returns the pictures of devID, oldest first (by first upload).
func (p *PictureService) Pictures(devID string) []Picture {
	p.mu.Lock()
	out := make([]Picture, 0, len(p.byDev[devID]))
	for _, pic := range p.byDev[devID] {
		out = append(out, pic)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Picture) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Open returns the picture id of devID and its bytes; the caller closes
// the file. It returns an error wrapping ErrPictureNotFound when the
// service does not hold it.
func (p *PictureService) Open(devID, id string) (Picture, *os.File, error) {
	p.mu.Lock()
	pic, ok := p.byDev[devID][id]
	p.mu.Unlock()
	if !ok {
		return Picture{}, nil, fmt.Errorf("picture %q of %q: %w", id, devID, ErrPictureNotFound)
	}
	f, err := os.Open(filepath.Join(p.dir, devID, id+".jpg"))
	if err != nil {
		return Picture{}, nil, fmt.Errorf("picture %q of %q: %w", id, devID, err)
	}
	return pic, f, nil
}

// validDevID reports whether s can name a gateway in a path: 1 to 64
// letters, digits, '-' and '_' (the LBS assigns 16 hex digits).
func validDevID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validPictureID reports whether s is a picture id: 32 lowercase hex
// digits.
func validPictureID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// maxAuthorization bounds the Authorization header parseAuthorization
// accepts; a token of the binding is under 200 characters.
const maxAuthorization = 1024

// parseAuthorization returns the token of an "OSAP <token>" header: the
// scheme (case-insensitive), one or more spaces, and base64 (standard,
// padded) of a sealed token. It reports false for anything else.
func parseAuthorization(h string) (string, bool) {
	if len(h) > maxAuthorization {
		return "", false
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, osap.PictureAuthScheme) {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return "", false
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(tok); err != nil {
		return "", false
	}
	return tok, true
}

// pictureError answers an upload or download with status and
// {"error": msg}.
func pictureError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// uploadRefusal is why an upload is answered with an error status.
type uploadRefusal struct {
	status int
	msg    string // sent to the client
	reason string // logged; may say more than msg
}

// upload handles POST /v1/{devid}/pictures (binding 2.7).
func (p *PictureService) upload(w http.ResponseWriter, r *http.Request) {
	devID := r.PathValue("devid")
	log := p.log.With("devid", devID, "remote", r.RemoteAddr)
	if f, ok := p.takeFault(); ok {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status != 0 {
			if f.Status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int((f.RetryAfter+time.Second-1)/time.Second))))
			}
			log.Info("picture upload refused by the test fault", "status", f.Status)
			p.answered(f.Status)
			pictureError(w, f.Status, http.StatusText(f.Status))
			return
		}
	}
	pic, existed, ref := p.receive(r, devID)
	if ref != nil {
		log.Warn("picture upload refused", "status", ref.status, "reason", ref.reason)
		p.answered(ref.status)
		pictureError(w, ref.status, ref.msg)
		return
	}
	log.Info("picture stored", "dev", pic.Dev, "picture", pic.ID, "size", pic.Size, "again", existed)
	p.answered(http.StatusCreated)
	b, _ := json.Marshal(struct {
		Picture string `json:"picture"`
		SHA256  string `json:"sha256"`
		Size    int64  `json:"size"`
	}{pic.ID, pic.SHA256, pic.Size})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", r.URL.Path+"/"+pic.ID)
	w.WriteHeader(http.StatusCreated)
	w.Write(append(b, '\n'))
}

func (p *PictureService) answered(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[status]++
}

// receive checks an upload and stores its picture. It returns the
// picture and whether it was held already, or why it is refused.
func (p *PictureService) receive(r *http.Request, devID string) (Picture, bool, *uploadRefusal) {
	bad := func(reason string) *uploadRefusal {
		return &uploadRefusal{http.StatusBadRequest, reason, reason}
	}
	refused := func(reason string) *uploadRefusal {
		return &uploadRefusal{http.StatusUnauthorized, "token refused", reason}
	}
	token, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return Picture{}, false, bad("no or unparsable Authorization: want " + osap.PictureAuthScheme + " <token>")
	}
	devs, ok := r.Header[http.CanonicalHeaderKey(osap.PictureDevHeader)]
	if !ok {
		return Picture{}, false, bad("no " + osap.PictureDevHeader + " header")
	}
	dev := devs[0]
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != osap.PictureContentType {
		return Picture{}, false, bad("Content-Type is not " + osap.PictureContentType)
	}
	if r.ContentLength == 0 {
		return Picture{}, false, bad("empty body")
	}
	if !validDevID(devID) {
		return Picture{}, false, refused("DevID is not one the LBS assigns")
	}
	_, ciphers, err := sessionCiphers(p.keys, devID)
	if err != nil {
		return Picture{}, false, refused(err.Error())
	}
	claim, _, err := openProof(ciphers, func(c *osap.Cipher) (osap.PictureClaim, error) {
		return c.OpenPictureToken(devID, token)
	})
	if err != nil {
		return Picture{}, false, refused("token does not open with the session key: " + err.Error())
	}
	now := p.now()
	if err := checkProofTime(claim.Time, now, osap.PictureTokenMaxAge); err != nil {
		return Picture{}, false, refused("token " + err.Error())
	}
	tooLarge := &uploadRefusal{http.StatusRequestEntityTooLarge, fmt.Sprintf("picture over %d bytes", osap.PictureMaxSize), ""}
	if r.ContentLength > osap.PictureMaxSize {
		tooLarge.reason = fmt.Sprintf("Content-Length %d", r.ContentLength)
		return Picture{}, false, tooLarge
	}

	dir := filepath.Join(p.dir, devID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Picture{}, false, &uploadRefusal{http.StatusInternalServerError, "cannot store the picture", err.Error()}
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return Picture{}, false, &uploadRefusal{http.StatusInternalServerError, "cannot store the picture", err.Error()}
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	defer tmp.Close()
	h := sha256.New()
	// Never more than one byte over the limit is read.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r.Body, osap.PictureMaxSize+1))
	switch {
	case err != nil:
		return Picture{}, false, bad("reading the body: " + err.Error())
	case n > osap.PictureMaxSize:
		tooLarge.reason = "body over the limit"
		return Picture{}, false, tooLarge
	case n == 0:
		return Picture{}, false, bad("empty body")
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum != claim.BodySum {
		return Picture{}, false, refused("body hash differs from the token's")
	}
	if !p.replay.fresh(devID, claim.Nonce, claim.Time, now) {
		return Picture{}, false, refused("token nonce already used")
	}
	pic := Picture{ID: osap.PictureID(sum), DevID: devID, Dev: dev, Size: n, SHA256: hex.EncodeToString(sum[:]), Time: now.UTC()}
	pic, existed, err := p.commit(tmp, pic)
	if err != nil {
		return Picture{}, false, &uploadRefusal{http.StatusInternalServerError, "cannot store the picture", err.Error()}
	}
	return pic, existed, nil
}

// commit makes the uploaded file tmp the picture pic durably: fsync,
// rename to {id}.jpg, its record written atomically to {id}.json, the
// directory synced. A picture held already is kept as it is (with its
// first Dev and Time), and returned with true.
func (p *PictureService) commit(tmp *os.File, pic Picture) (Picture, bool, error) {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	p.mu.Lock()
	old, ok := p.byDev[pic.DevID][pic.ID]
	p.mu.Unlock()
	if ok {
		return old, true, nil
	}
	if err := tmp.Sync(); err != nil {
		return Picture{}, false, fmt.Errorf("store picture: %w", err)
	}
	if err := tmp.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
		return Picture{}, false, fmt.Errorf("store picture: %w", err)
	}
	dir := filepath.Dir(tmp.Name())
	if err := os.Rename(tmp.Name(), filepath.Join(dir, pic.ID+".jpg")); err != nil {
		return Picture{}, false, fmt.Errorf("store picture: %w", err)
	}
	rec, err := json.Marshal(pic)
	if err != nil {
		return Picture{}, false, fmt.Errorf("store picture record: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, pic.ID+".json"), rec, true); err != nil {
		return Picture{}, false, fmt.Errorf("store picture record: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Picture{}, false, fmt.Errorf("store picture: %w", err)
	}
	p.index(pic)
	return pic, false, nil
}

// syncDir fsyncs a directory, so that the renames in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// download handles GET /v1/{devid}/pictures/{id}.
func (p *PictureService) download(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, r.PathValue("devid"), r.PathValue("id"))
}

// serve writes picture id of devID as image/jpeg (ranges and
// If-Modified-Since as http.ServeContent does them), or 404.
func (p *PictureService) serve(w http.ResponseWriter, r *http.Request, devID, id string) {
	if !validDevID(devID) || !validPictureID(id) {
		pictureError(w, http.StatusNotFound, "no such picture")
		return
	}
	pic, f, err := p.Open(devID, id)
	if err != nil {
		if !errors.Is(err, ErrPictureNotFound) {
			p.log.Error("picture not readable", "devid", devID, "picture", id, "err", err)
		}
		pictureError(w, http.StatusNotFound, "no such picture")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", osap.PictureContentType)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable") // an id names its bytes
	http.ServeContent(w, r, "", pic.Time, f)
}
