package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // pgx5:// (jackc/pgx v5)
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
)

// Every release's migrations are embedded; the release profile picks its folders.
//
//go:embed migrations
var embedded embed.FS

// migrationSource is the profile's migrations as one flat folder, and the highest
// version among them (what "up to date" means for this release).
func migrationSource(r Release) (source.Driver, uint, error) {
	files := fstest.MapFS{}
	var latest uint
	for _, dir := range r.migrationDirs() {
		entries, err := fs.ReadDir(embedded, "migrations/"+dir)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range entries {
			b, err := fs.ReadFile(embedded, path.Join("migrations", dir, e.Name()))
			if err != nil {
				return nil, 0, err
			}
			files[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o444}
			if v, err := strconv.ParseUint(strings.SplitN(e.Name(), "_", 2)[0], 10, 32); err == nil && uint(v) > latest {
				latest = uint(v)
			}
		}
	}
	src, err := iofs.New(files, ".")
	return src, latest, err
}

// migrateURL: DATABASE_URL (postgresql:// or postgres://) as golang-migrate's pgx v5
// driver wants it (pgx5://), with its version table schema_migrations.
func migrateURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgresql" && u.Scheme != "postgres") || u.Host == "" {
		return "", errors.New("DATABASE_URL must be a postgresql:// URL")
	}
	u.Scheme = "pgx5"
	return u.String(), nil
}

// schemaState reads schema_migrations: (version, dirty, present).
func schemaState(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (uint, bool, bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, false, false, err
	}
	if !exists {
		return 0, false, false, nil
	}
	var v int64
	var dirty bool
	err := q.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&v, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, err
	}
	return uint(v), dirty, true, nil
}

// Exit codes of `server migrate`.
const (
	exitMigrateFailed = 1 // a migration failed (its statements rolled back, version reset)
	exitConfig        = 2 // DATABASE_URL missing/invalid, or the server refuses us
	exitNoDatabase    = 3 // the database did not answer within MIGRATE_WAIT_SECONDS
)

// runMigrate is the migrate service: golang-migrate up, one migration at a time.
//   - It waits for the database first (MIGRATE_WAIT_SECONDS, default 60).
//   - A database ahead of this release (a newer release migrated it; this one is being
//     rolled back to) is left unchanged: exit 0. Migrations are additive.
//   - A failed migration leaves no trace: each file runs as one statement batch (one
//     transaction in PostgreSQL), and the version golang-migrate marked dirty is reset
//     to the last good one, so the next run (or the previous release's) starts clean.
func runMigrate(r Release, waitSeconds int, databaseURL string) int {
	logger := newLogger("migrate")
	murl, err := migrateURL(databaseURL)
	if err != nil {
		logger.event("ERROR", "migrate_failed", map[string]any{"error": err.Error()})
		return exitConfig
	}
	src, latest, err := migrationSource(r)
	if err != nil {
		logger.event("ERROR", "migrate_failed", map[string]any{"error": "embedded migrations: " + err.Error()})
		return exitMigrateFailed
	}
	logger.event("INFO", "migrate_start", map[string]any{"release": r.Version, "latest": latest})

	conn, code := waitForDatabase(logger, databaseURL, time.Duration(waitSeconds)*time.Second)
	if conn == nil {
		return code
	}
	ctx := context.Background()
	defer conn.Close(ctx)
	before, dirty, present, err := schemaState(ctx, conn)
	if err != nil {
		logger.event("ERROR", "migrate_failed", map[string]any{"error": oneLine(err)})
		return exitMigrateFailed
	}
	if present && dirty {
		logger.event("ERROR", "migrate_failed", map[string]any{"error": fmt.Sprintf(
			"schema_migrations is dirty at version %d: fix it by hand, then `migrate force`", before)})
		return exitMigrateFailed
	}
	if present && before > latest {
		logger.event("WARNING", "migrate_schema_ahead", map[string]any{"release": r.Version,
			"current": before, "latest": latest,
			"detail": "the database is at a newer release's version; leaving it unchanged"})
		return 0
	}

	m, err := migrate.NewWithSourceInstance("iofs", src, murl)
	if err != nil {
		logger.event("ERROR", "migrate_failed", map[string]any{"error": oneLine(err)})
		return exitMigrateFailed
	}
	defer m.Close()
	current, has := before, present
	for !has || current < latest {
		if err := m.Steps(1); err != nil {
			logger.event("ERROR", "migrate_failed", map[string]any{"release": r.Version,
				"from": versionOrNil(current, has), "error": oneLine(err)})
			reset := int(current)
			if !has {
				reset = database.NilVersion
			}
			if ferr := m.Force(reset); ferr != nil {
				logger.event("ERROR", "migrate_reset_failed", map[string]any{"error": oneLine(ferr)})
			}
			return exitMigrateFailed
		}
		v, _, err := m.Version()
		if err != nil {
			logger.event("ERROR", "migrate_failed", map[string]any{"error": oneLine(err)})
			return exitMigrateFailed
		}
		current, has = v, true
	}
	logger.event("INFO", "migrate_done", map[string]any{"release": r.Version,
		"before": versionOrNil(before, present), "after": current, "changed": !present || before != current})
	return 0
}

func versionOrNil(v uint, present bool) any {
	if !present {
		return nil
	}
	return v
}

// waitForDatabase connects, retrying until the deadline; a refusal (bad password, no
// such database) is final at once.
func waitForDatabase(logger *logger, databaseURL string, wait time.Duration) (*pgx.Conn, int) {
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		conn, err := pgx.Connect(ctx, databaseURL)
		cancel()
		if err == nil {
			return conn, 0
		}
		msg := oneLine(err)
		if strings.Contains(msg, "password authentication failed") || strings.Contains(msg, "does not exist") ||
			strings.Contains(msg, "cannot parse") {
			logger.event("ERROR", "migrate_failed", map[string]any{"error": msg})
			return nil, exitConfig
		}
		if time.Now().After(deadline) {
			logger.event("ERROR", "migrate_failed", map[string]any{"error": "database not reachable in time: " + msg})
			return nil, exitNoDatabase
		}
		time.Sleep(time.Second)
	}
}

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}
