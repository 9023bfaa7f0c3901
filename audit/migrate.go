package audit

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

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
//
// A migration recorded as applied whose tables or columns are gone (a down
// migration run by hand that left the record) is detected, and applied
// again.
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
		slices.Sort(applied)
		for _, v := range applied {
			probe, ok := probes[v]
			if !ok {
				continue
			}
			var present bool
			if err := tx.QueryRow(ctx, probe).Scan(&present); err != nil {
				return fmt.Errorf("audit: migrate: check migration %d: %w", v, err)
			}
			if !present { // reverted by hand: apply it again
				if _, err := tx.Exec(ctx, `DELETE FROM synckairos_migrations WHERE version >= $1`, v); err != nil {
					return fmt.Errorf("audit: migrate: %w", err)
				}
				applied = slices.DeleteFunc(applied, func(a int) bool { return a >= v })
				break
			}
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

// probes tell, for each migration, whether what it made is there: true when
// it is.
var probes = map[int]string{
	1: `SELECT to_regclass('sync_events') IS NOT NULL AND to_regclass('sync_sessions') IS NOT NULL
		AND to_regclass('sync_participants') IS NOT NULL`,
	2: `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'sync_events' AND column_name = 'life')`,
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
// River's CLI (river migrate-up) or rivermigrate themselves. Like Migrate,
// it holds an advisory lock while it works, so instances starting together
// may all run it.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("audit: river migrations: %w", err)
	}
	defer conn.Release()
	// River migrates in transactions of its own: the lock is the session's,
	// on a connection held aside for it.
	lock := `SELECT pg_advisory_lock(hashtext(coalesce(nullif($1, ''), current_schema()) || '.river_migrate'))`
	if _, err := conn.Exec(ctx, lock, schema); err != nil {
		return fmt.Errorf("audit: river migrations: lock: %w", err)
	}
	defer func() {
		// A cancelled ctx must not leave the lock held by a pooled connection.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(hashtext(coalesce(nullif($1, ''), current_schema()) || '.river_migrate'))`, schema); err != nil {
			conn.Conn().Close(unlockCtx) // the lock ends with the session
		}
	}()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("audit: river migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("audit: river migrations: %w", err)
	}
	return nil
}
