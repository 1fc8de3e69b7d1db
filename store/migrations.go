package store

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one versioned step of a backend's schema, read from an
// embedded SQL file named like "0001_init.sql". Backends apply the
// migrations a database has not seen yet, in Version order, and record
// each in their schema_migrations table.
type Migration struct {
	Version int    // from the file name's leading number; 1 or more
	Name    string // the rest of the file name, without ".sql"
	SQL     string // the statements to run
}

// LoadMigrations reads every "*.sql" file in dir of fsys as a Migration,
// sorted by version. It fails on a file whose name does not start with a
// positive version number followed by "_", on two files with one version,
// on an empty file, and when there is no migration at all, because each of
// those is a packaging mistake that must not reach a database.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", dir, err)
	}
	var ms []Migration
	seen := make(map[int]string)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m, err := parseMigrationName(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		if other, dup := seen[m.Version]; dup {
			return nil, fmt.Errorf("migrations: %s and %s share version %d", other, e.Name(), m.Version)
		}
		seen[m.Version] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", e.Name(), err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("migrations: %s is empty", e.Name())
		}
		m.SQL = string(b)
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migrations: no .sql files in %s", dir)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// parseMigrationName splits "0001_init.sql" into version 1 and name "init".
func parseMigrationName(file string) (Migration, error) {
	base := strings.TrimSuffix(file, ".sql")
	num, name, ok := strings.Cut(base, "_")
	if !ok || num == "" || name == "" {
		return Migration{}, fmt.Errorf("%s: name must look like 0001_what.sql", file)
	}
	v, err := strconv.Atoi(num)
	if err != nil || v <= 0 || strings.HasPrefix(num, "+") || strings.HasPrefix(num, "-") {
		return Migration{}, fmt.Errorf("%s: version %q is not a positive number", file, num)
	}
	return Migration{Version: v, Name: name}, nil
}

// Pending returns the migrations of ms whose versions are not in applied,
// in order. It fails when applied holds a version ms does not know, which
// means the database was migrated by a newer parley: running an older
// binary against it could corrupt data, so the backend refuses to open.
func Pending(ms []Migration, applied map[int]bool) ([]Migration, error) {
	known := make(map[int]bool, len(ms))
	maxKnown := 0
	for _, m := range ms {
		known[m.Version] = true
		maxKnown = max(maxKnown, m.Version)
	}
	newest := 0
	for v := range applied {
		if !known[v] && v > newest {
			newest = v
		}
	}
	if newest > 0 {
		return nil, fmt.Errorf("migrations: database has schema version %d, which this parley does not know (newest known %d); upgrade parley", newest, maxKnown)
	}
	var out []Migration
	for _, m := range ms {
		if !applied[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}
