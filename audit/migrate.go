package audit

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/synckairos/synckairos/migrations"
)

// Migrate applies the migrations of package migrations that the database
// (the schema of pool's search_path) lacks, in order, and records them in
// the table synckairos_migrations. It holds an advisory lock while it works,
// so two processes may run it at once, and it is safe to run at every start.
// It applies only .up.sql files: it never drops anything.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	steps, err := upSteps()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.synckairos_migrations'))`); err != nil {
			return fmt.Errorf("audit: migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS synckairos_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("audit: migrate: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM synckairos_migrations`)
		if err != nil {
			return fmt.Errorf("audit: migrate: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("audit: migrate: %w", err)
		}
		for _, s := range steps {
			if slices.Contains(applied, s.version) {
				continue
			}
			if _, err := tx.Exec(ctx, s.sql); err != nil {
				return fmt.Errorf("audit: migration %s: %w", s.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO synckairos_migrations (version, name) VALUES ($1, $2)`, s.version, s.name); err != nil {
				return fmt.Errorf("audit: migration %s: %w", s.name, err)
			}
		}
		return nil
	})
}

type step struct {
	version int
	name    string
	sql     string
}

// upSteps reads the .up.sql files of migrations.FS in version order.
func upSteps() ([]step, error) {
	files, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		return nil, err
	}
	var steps []step
	for _, f := range files {
		num, _, ok := strings.Cut(f, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("audit: migration file %q is not named NNN_name.up.sql", f)
		}
		b, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			return nil, err
		}
		steps = append(steps, step{version: version, name: strings.TrimSuffix(f, ".up.sql"), sql: string(b)})
	}
	slices.SortFunc(steps, func(a, b step) int { return a.version - b.version })
	return steps, nil
}

// MigrateRiver applies River's own migrations, which the host owns, to
// schema ("" for the search_path): a helper for hosts that do not run
// River's CLI (river migrate-up) or rivermigrate themselves.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("audit: river migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("audit: river migrations: %w", err)
	}
	return nil
}
