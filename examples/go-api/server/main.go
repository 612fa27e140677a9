// Command server is a Go API (net/http + pgx v5) and its migration runner
// (golang-migrate, migrations embedded): one binary, one image, two services.
//
//	server [serve]      the HTTP API on :$PORT (8080)
//	server migrate      apply the migrations (the one-shot migrate service)
//	server healthcheck  exit 0 when GET /health answers 200 (the compose healthcheck)
//
// Env: DATABASE_URL (postgresql://...), JWT_SECRET and ADMIN_API_KEY (serve refuses to
// start without them), PORT, APP_RELEASE (overrides the reported version),
// MIGRATE_WAIT_SECONDS (60).
// Exit: 0 ok; 1 migration failed / unhealthy; 2 configuration error; 3 no database.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	r := loadRelease()
	switch cmd {
	case "serve":
		os.Exit(serve(r))
	case "migrate":
		wait, err := strconv.Atoi(envOr("MIGRATE_WAIT_SECONDS", "60"))
		if err != nil || wait < 0 {
			fmt.Fprintln(os.Stderr, "MIGRATE_WAIT_SECONDS must be a whole number")
			os.Exit(exitConfig)
		}
		os.Exit(runMigrate(r, wait, os.Getenv("DATABASE_URL")))
	case "healthcheck":
		os.Exit(healthcheck())
	case "version":
		fmt.Println(r.Version)
	default:
		fmt.Fprintf(os.Stderr, "usage: %s [serve|migrate|healthcheck|version]\n", os.Args[0])
		os.Exit(2)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func healthcheck() int {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + envOr("PORT", "8080") + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy: /health answered", resp.Status)
		return 1
	}
	return 0
}

// logger writes one JSON object per line on stdout.
type logger struct {
	service string
	mu      sync.Mutex
}

func newLogger(service string) *logger { return &logger{service: service} }

func (l *logger) event(level, event string, fields map[string]any) {
	rec := map[string]any{"ts": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"level": level, "event": event, "service": l.service}
	for k, v := range fields {
		rec[k] = v
	}
	b, _ := json.Marshal(rec)
	l.mu.Lock()
	defer l.mu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}
