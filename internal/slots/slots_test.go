package slots

import "testing"

// Known Redis Cluster slots: CLUSTER KEYSLOT foo is 12182, bar 5061, hello
// 866, and a key with a hash tag takes its tag's; and CRC-16/XMODEM's check
// value.
func TestOf(t *testing.T) {
	if got := crc16("123456789"); got != 0x31c3 {
		t.Errorf("crc16 check value %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{"foo": 12182, "bar": 5061, "hello": 866, "x{foo}y": 12182, "{}foo": Of("{}foo"), "a{}{foo}": Of("a{}{foo}")} {
		if got := Of(key); got != want {
			t.Errorf("slot of %q: %d, want %d", key, got, want)
		}
	}
	if Of("{}foo") == Of("foo") {
		t.Error("an empty tag is no tag: the whole key is hashed")
	}
}

func TestOwner(t *testing.T) {
	sp := Spans{{0, 5460, "a:1"}, {5461, 10922, "b:2"}, {10923, 16383, "c:3"}}
	for slot, want := range map[int]string{0: "a:1", 5460: "a:1", 5461: "b:2", 16383: "c:3"} {
		if got := sp.Owner(slot); got != want {
			t.Errorf("slot %d: %q, want %q", slot, got, want)
		}
	}
	if got := (Spans{{0, 10, "a:1"}}).Owner(11); got != "" {
		t.Errorf("an unserved slot: %q", got)
	}
}
