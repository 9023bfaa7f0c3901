// Package migrations holds the Postgres schema of the synckairos audit trail
// as numbered SQL files: NNN_name.up.sql applies a step, NNN_name.down.sql
// reverts it. audit.Migrate applies them; hosts with a migration tool of
// their own can take the files from FS instead.
package migrations

import "embed"

// FS holds the migration files, at its root.
//
//go:embed *.sql
var FS embed.FS
