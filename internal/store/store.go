// Package store runs the Redis commands and the write script of synckairos.
// It moves bytes and versions; encoding, validation and errors for users are
// the root package's.
package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/keys"
)

//go:embed write.lua
var writeSource string

// The write script is not idempotent (it bumps a version and publishes), so
// it is not marked retryable: a write lost in flight is reported, not resent.
var writeScript = rueidis.NewLuaScript(writeSource)

// Outcome is what a write did.
type Outcome int

// The outcomes of the write script; the numbers are the script's.
const (
	NotFound Outcome = 0
	Written  Outcome = 1
	Conflict Outcome = 2
	Exists   Outcome = 3
	Corrupt  Outcome = 4
)

// ErrWrongType reports a key of the layout that holds something other than a
// session hash.
var ErrWrongType = errors.New("key holds a value of the wrong type")

// Result is the outcome of one write.
type Result struct {
	Outcome Outcome
	// Version is the version written (Written) or found (Conflict).
	Version int64
	// State is the stored state on Conflict.
	State []byte
}

// Store reads and writes sessions under one key layout.
type Store struct {
	client rueidis.Client
	layout keys.Layout
	ttl    string // milliseconds
}

// New returns a Store. ttl is the expiry set by every write.
func New(client rueidis.Client, layout keys.Layout, ttl time.Duration) *Store {
	return &Store{client: client, layout: layout, ttl: strconv.FormatInt(ttl.Milliseconds(), 10)}
}

// Get returns the version and state bytes of a session; found is false when
// it does not exist.
func (s *Store) Get(ctx context.Context, id string) (version int64, state []byte, found bool, err error) {
	cmd := s.client.B().Hmget().Key(s.layout.Session(id)).Field("v", "s").Build()
	vals, err := s.client.Do(ctx, cmd).ToArray()
	if err != nil {
		return 0, nil, false, classify(err)
	}
	if len(vals) != 2 {
		return 0, nil, false, fmt.Errorf("HMGET returned %d values, want 2", len(vals))
	}
	if vals[0].IsNil() && vals[1].IsNil() {
		return 0, nil, false, nil
	}
	version, err = vals[0].AsInt64()
	if err != nil {
		return 0, nil, true, fmt.Errorf("%w: version: %v", ErrWrongType, err)
	}
	state, err = vals[1].AsBytes()
	if err != nil {
		return 0, nil, true, fmt.Errorf("%w: state: %v", ErrWrongType, err)
	}
	return version, state, true, nil
}

// Create writes a new session at version 1 unless it exists.
func (s *Store) Create(ctx context.Context, id string, state []byte) (Result, error) {
	return s.write(ctx, "create", id, "", state)
}

// Update writes a session at expected+1 if it is at expected.
func (s *Store) Update(ctx context.Context, id string, expected int64, state []byte) (Result, error) {
	return s.write(ctx, "update", id, strconv.FormatInt(expected, 10), state)
}

// Delete removes a session.
func (s *Store) Delete(ctx context.Context, id string) (Result, error) {
	return s.write(ctx, "delete", id, "", nil)
}

func (s *Store) write(ctx context.Context, op, id, expected string, state []byte) (Result, error) {
	quotedID, err := json.Marshal(id)
	if err != nil {
		return Result{}, err
	}
	vals, err := writeScript.Exec(ctx, s.client,
		[]string{s.layout.Session(id)},
		[]string{op, expected, rueidis.BinaryString(state), s.ttl, s.layout.Updates(), rueidis.BinaryString(quotedID)},
	).ToArray()
	if err != nil {
		return Result{}, classify(err)
	}
	if len(vals) == 0 {
		return Result{}, errors.New("write script returned nothing")
	}
	code, err := vals[0].AsInt64()
	if err != nil {
		return Result{}, fmt.Errorf("write script: %w", err)
	}
	r := Result{Outcome: Outcome(code)}
	switch r.Outcome {
	case Written:
		if len(vals) != 2 {
			return r, fmt.Errorf("write script returned %d values, want 2", len(vals))
		}
		r.Version, err = vals[1].AsInt64()
	case Conflict:
		if len(vals) != 3 || vals[2].IsNil() {
			return r, fmt.Errorf("%w: session hash without its state", ErrWrongType)
		}
		if r.Version, err = vals[1].AsInt64(); err == nil {
			r.State, err = vals[2].AsBytes()
		}
	case Corrupt:
		return r, fmt.Errorf("%w: session hash without a version", ErrWrongType)
	}
	if err != nil {
		return r, fmt.Errorf("write script: %w", err)
	}
	return r, nil
}

func classify(err error) error {
	// Inside a script Redis reports WRONGTYPE within a script error.
	if _, ok := rueidis.IsRedisErr(err); ok && strings.Contains(err.Error(), "WRONGTYPE") {
		return fmt.Errorf("%w: %v", ErrWrongType, err)
	}
	return err
}
