package synckairos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

func TestStateJSONFormLiteral(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CET", 3600))
	s := &synckairos.State{
		SessionID:           "g",
		Life:                1795924266423474,
		Mode:                synckairos.ModePerGroup,
		Status:              synckairos.StatusRunning,
		Version:             3,
		Turn:                5,
		ActiveParticipantID: "a",
		Participants: []synckairos.Participant{
			{ID: "a", GroupID: "white", TotalTime: 90 * time.Second, TimeUsed: 1500 * time.Millisecond, CycleCount: 2, IsActive: true},
			{ID: "b", Index: 1, GroupID: "black", TotalTime: time.Minute, HasExpired: true},
		},
		TotalTime:        10 * time.Minute,
		TimePerCycle:     30 * time.Second,
		Increment:        2 * time.Second,
		MaxTime:          time.Hour,
		CycleStartedAt:   &started,
		SessionStartedAt: &started,
		CreatedAt:        started,
		UpdatedAt:        started,
		LastTransition: &synckairos.Transition{Type: synckairos.EventCycleSwitched, Version: 3, At: started, From: "b", To: "a",
			Used: 4321 * time.Millisecond, Increment: 2 * time.Second, Expired: []string{"b"}},
		Metadata: map[string]string{"room": "7"},
	}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"session_id":"g","life":1795924266423474,"mode":"per_group","status":"running","version":3,"turn":5,` +
		`"participants":[` +
		`{"participant_id":"a","index":0,"group_id":"white","total_time_ms":90000,"time_used_ms":1500,"cycle_count":2,"is_active":true,"has_expired":false},` +
		`{"participant_id":"b","index":1,"group_id":"black","total_time_ms":60000,"time_used_ms":0,"cycle_count":0,"is_active":false,"has_expired":true}],` +
		`"active_participant_id":"a","total_time_ms":600000,"time_per_cycle_ms":30000,"increment_ms":2000,"max_time_ms":3600000,` +
		`"delay_ms":0,"delay_mode":"","on_expiry":"","cycle_elapsed_ms":0,` +
		`"cycle_started_at":"2026-03-04T04:06:07.890Z","session_started_at":"2026-03-04T04:06:07.890Z","session_completed_at":null,` +
		`"created_at":"2026-03-04T04:06:07.890Z","updated_at":"2026-03-04T04:06:07.890Z",` +
		`"last_transition":{"type":"cycle_switched","version":3,"at":"2026-03-04T04:06:07.890Z","from":"b","to":"a",` +
		`"used_ms":4321,"increment_ms":2000,"expired":["b"]},"metadata":{"room":"7"}}`
	if string(got) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", got, want)
	}
	var back synckairos.State
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, &back, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
}

// The Manager stores milliseconds and returns exactly what it stored.
func TestStoredPrecisionIsMilliseconds(t *testing.T) {
	t.Parallel()
	m, fake := synckairostest.NewManager(t, nil)
	fake.Advance(1234567 * time.Nanosecond)
	s := newState("ms", 1)
	s.Participants[0].TotalTime = time.Minute + 999*time.Microsecond
	at := synckairostest.Epoch.Add(time.Nanosecond).In(time.FixedZone("X", -7200))
	s.Status, s.ActiveParticipantID = synckairos.StatusRunning, "p0"
	s.CycleStartedAt = &at
	got, err := m.CreateSession(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Participants[0].TotalTime != time.Minute {
		t.Errorf("bank %v, want truncated to 1m0s", got.Participants[0].TotalTime)
	}
	if !got.CycleStartedAt.Equal(synckairostest.Epoch) || got.CycleStartedAt.Location() != time.UTC {
		t.Errorf("CycleStartedAt %v, want %v", got.CycleStartedAt, synckairostest.Epoch)
	}
	if want := synckairostest.Epoch.Add(time.Millisecond); !got.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt %v, want %v", got.CreatedAt, want)
	}
	if diff := cmp.Diff(got, mustGet(t, m, "ms")); diff != "" {
		t.Errorf("(-returned +stored):\n%s", diff)
	}
}

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := newState("c", 2)
	s.CycleStartedAt = &now
	c := s.Clone()
	c.Participants[0].CycleCount = 9
	c.Metadata["table"] = "8"
	*c.CycleStartedAt = now.Add(time.Hour)
	if s.Participants[0].CycleCount != 0 || s.Metadata["table"] != "7" || !s.CycleStartedAt.Equal(now) {
		t.Fatal("changing a clone changed the original")
	}
}

func TestUnmarshalRejectsBadJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{`, `{"participants":3}`, `{"created_at":"yesterday"}`} {
		var s synckairos.State
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
	var s synckairos.State
	if err := json.Unmarshal(bytes.TrimSpace([]byte(` {"session_id":"x","cycle_started_at":null} `)), &s); err != nil || s.CycleStartedAt != nil {
		t.Errorf("null time: %v, %v", s.CycleStartedAt, err)
	}
}
