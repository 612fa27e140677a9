package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

type api struct {
	release  Release
	latest   uint
	pool     *pgxpool.Pool
	jwtKey   []byte
	adminKey []byte
	log      *logger
}

func serve(r Release) int {
	log := newLogger("api")
	var missing []string
	for _, k := range []string{"DATABASE_URL", "JWT_SECRET", "ADMIN_API_KEY"} {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 { // names only, never a value
		log.event("ERROR", "config_error", map[string]any{"error": "must be set and non-empty: " + strings.Join(missing, ", ")})
		return exitConfig
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.event("ERROR", "config_error", map[string]any{"error": "DATABASE_URL is not a valid PostgreSQL URL"})
		return exitConfig
	}
	cfg.MaxConns = 5
	cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = "go-api"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		log.event("ERROR", "config_error", map[string]any{"error": oneLine(err)})
		return exitConfig
	}
	defer pool.Close()
	_, latest, err := migrationSource(r)
	if err != nil {
		log.event("ERROR", "startup_failed", map[string]any{"error": err.Error()})
		return 1
	}
	a := &api{release: r, latest: latest, pool: pool, log: log,
		jwtKey: []byte(os.Getenv("JWT_SECRET")), adminKey: []byte(os.Getenv("ADMIN_API_KEY"))}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.health)
	mux.HandleFunc("GET /version", a.version)
	mux.HandleFunc("GET /api/v1/events", a.listEvents)
	mux.HandleFunc("POST /api/v1/events", a.createEvent)
	mux.HandleFunc("GET /api/v1/me", a.me)
	mux.HandleFunc("GET /admin/stats", a.admin(a.stats))
	mux.HandleFunc("POST /admin/tokens", a.admin(a.issueToken))

	port := envOr("PORT", "8080")
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 60 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.event("INFO", "startup", map[string]any{"release": r.Version, "image_release": r.ID,
		"profile": r.Profile, "migrations_latest": latest, "port": port, "pid": os.Getpid()})
	select {
	case err := <-errc:
		log.event("ERROR", "serve_failed", map[string]any{"error": err.Error()})
		return 1
	case sig := <-stop:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		log.event("INFO", "shutdown", map[string]any{"release": r.Version, "signal": sig.String()})
		return 0
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// health is the readiness check: 200 {"status":"healthy","database":"ok",
// "migrations":"up-to-date","version":...}; 503 "unhealthy" when the database does not
// answer or its schema is behind this release ("pending") or dirty. A schema ahead of
// this release (rolled back to older code on an additive schema) counts as up to date.
func (a *api) health(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"status": "healthy", "version": a.release.Version,
		"database": "ok", "migrations": "up-to-date", "schema_version": nil, "latest": a.latest}
	if a.release.brokenHealth() {
		body["status"], body["error"] = "unhealthy", "this release is broken on purpose (test fixture)"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	v, dirty, present, err := schemaState(ctx, a.pool)
	switch {
	case err != nil:
		body["status"], body["database"], body["migrations"] = "unhealthy", "error", "unknown"
	case !present || v < a.latest:
		body["status"], body["migrations"] = "unhealthy", "pending"
	case dirty:
		body["status"], body["migrations"] = "unhealthy", "dirty"
	}
	if err == nil && present {
		body["schema_version"] = v
		if v > a.latest {
			body["schema"] = "ahead"
		}
	}
	code := http.StatusOK
	if body["status"] != "healthy" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func (a *api) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": a.release.Version, "profile": a.release.Profile})
}

type event struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	StartsAt  time.Time `json:"starts_at"`
	CreatedAt time.Time `json:"created_at"`
	Capacity  *int      `json:"capacity,omitempty"`
}

func (a *api) columns() string {
	if a.release.capacity() {
		return "id, title, starts_at, created_at, capacity"
	}
	return "id, title, starts_at, created_at"
}

func (a *api) scan(row pgx.Row) (event, error) {
	var e event
	if a.release.capacity() {
		var c int
		err := row.Scan(&e.ID, &e.Title, &e.StartsAt, &e.CreatedAt, &c)
		e.Capacity = &c
		return e, err
	}
	return e, row.Scan(&e.ID, &e.Title, &e.StartsAt, &e.CreatedAt)
}

func (a *api) listEvents(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := a.pool.Query(r.Context(), "SELECT "+a.columns()+" FROM events ORDER BY id DESC LIMIT $1", limit)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unavailable"})
		return
	}
	defer rows.Close()
	out := []event{}
	for rows.Next() {
		e, err := a.scan(rows)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "read failed"})
			return
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) createEvent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title    string    `json:"title"`
		StartsAt time.Time `json:"starts_at"`
		Capacity *int      `json:"capacity"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || strings.TrimSpace(in.Title) == "" || in.StartsAt.IsZero() {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "need title and starts_at (RFC 3339)"})
		return
	}
	if in.Capacity != nil && !a.release.capacity() {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "capacity needs release v2"})
		return
	}
	var row pgx.Row
	if a.release.capacity() {
		c := 0
		if in.Capacity != nil {
			c = *in.Capacity
		}
		row = a.pool.QueryRow(r.Context(), "INSERT INTO events (title, starts_at, capacity) VALUES ($1, $2, $3) RETURNING "+a.columns(), in.Title, in.StartsAt, c)
	} else {
		row = a.pool.QueryRow(r.Context(), "INSERT INTO events (title, starts_at) VALUES ($1, $2) RETURNING "+a.columns(), in.Title, in.StartsAt)
	}
	e, err := a.scan(row)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "write failed"})
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

// admin wraps a handler with the ADMIN_API_KEY check (Authorization: Bearer <key>).
func (a *api) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), a.adminKey) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin key required"})
			return
		}
		h(w, r)
	}
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	var n int64
	if err := a.pool.QueryRow(r.Context(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": n, "version": a.release.Version})
}

// issueToken: an HS256 JWT for a subject, signed with JWT_SECRET, valid one hour.
func (a *api) issueToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Subject string `json:"subject"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&in); err != nil || in.Subject == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "need subject"})
		return
	}
	exp := time.Now().Add(time.Hour).Unix()
	writeJSON(w, http.StatusCreated, map[string]any{"token": a.sign(map[string]any{"sub": in.Subject, "exp": exp}), "expires": exp})
}

// me answers the subject of a valid token (Authorization: Bearer <jwt>).
func (a *api) me(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims, err := a.verify(tok)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": claims["sub"]})
}

var b64 = base64.RawURLEncoding

func (a *api) sign(claims map[string]any) string {
	head := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(claims)
	unsigned := head + "." + b64.EncodeToString(body)
	mac := hmac.New(sha256.New, a.jwtKey)
	mac.Write([]byte(unsigned))
	return unsigned + "." + b64.EncodeToString(mac.Sum(nil))
}

func (a *api) verify(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("bearer token required")
	}
	mac := hmac.New(sha256.New, a.jwtKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("invalid token")
	}
	var head map[string]any
	if b, err := b64.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &head) != nil || head["alg"] != "HS256" {
		return nil, errors.New("invalid token")
	}
	var claims map[string]any
	if b, err := b64.DecodeString(parts[1]); err != nil || json.Unmarshal(b, &claims) != nil {
		return nil, errors.New("invalid token")
	}
	if exp, ok := claims["exp"].(float64); !ok || time.Now().Unix() > int64(exp) {
		return nil, errors.New("token expired")
	}
	return claims, nil
}
