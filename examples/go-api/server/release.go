package main

import (
	"os"
	"regexp"
	"strings"
)

// Release is what this image was built as: its release ID (the build arg RELEASE,
// written to /app/release by the Dockerfile's last build step, so every release shares
// the compiled binary) and the profile that ID selects.
type Release struct {
	// ID is the build's release ID; Version is what /health and /version report
	// (APP_RELEASE when set, else ID).
	ID, Version string
	// Profile: v1, v2, broken, badmigrate; any other ID builds like v2.
	Profile string
}

var releaseIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func loadRelease() Release {
	path := os.Getenv("RELEASE_FILE")
	if path == "" {
		path = "/app/release"
	}
	id := "dev"
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); releaseIDRe.MatchString(s) {
			id = s
		}
	}
	r := Release{ID: id, Version: id, Profile: "v2"}
	switch id {
	case "v1", "v2", "broken", "badmigrate":
		r.Profile = id
	}
	if v := os.Getenv("APP_RELEASE"); v != "" {
		r.Version = v
	}
	return r
}

// migrationDirs are the folders of ./migrations this profile's schema is made of.
func (r Release) migrationDirs() []string {
	switch r.Profile {
	case "v1", "broken":
		return []string{"base"}
	case "badmigrate":
		return []string{"base", "v2", "badmigrate"}
	default:
		return []string{"base", "v2"}
	}
}

// brokenHealth: the release that fails the health gate (/health answers 503).
func (r Release) brokenHealth() bool { return r.Profile == "broken" }

// capacity: v2's feature (events.capacity, migration 0002).
func (r Release) capacity() bool { return r.Profile == "v2" || r.Profile == "badmigrate" }
