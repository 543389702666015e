package upstream

import (
	"testing"
	"time"
)

func TestCredentialsTiming(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	full := Credentials{DevID: "gw", SessionKey: make([]byte, 16), DASAddress: "mqtt://127.0.0.1:1883", Lifetime: 100 * time.Second}
	with := func(mod func(*Credentials)) Credentials {
		c := full
		mod(&c)
		return c
	}
	tests := []struct {
		name        string
		c           Credentials
		wantRefresh time.Time
		wantUsable  bool
	}{
		{
			name:        "fresh key",
			c:           with(func(c *Credentials) { c.SessionExpiry = now.Add(100 * time.Second) }),
			wantRefresh: now.Add(80 * time.Second),
			wantUsable:  true,
		},
		{
			name:        "81 % of the lifetime gone",
			c:           with(func(c *Credentials) { c.SessionExpiry = now.Add(19 * time.Second) }),
			wantRefresh: now.Add(-time.Second),
			wantUsable:  false,
		},
		{
			name:       "no lifetime, no expiry",
			c:          with(func(c *Credentials) { c.Lifetime = 0 }),
			wantUsable: true,
		},
		{
			name:       "no lifetime, expired",
			c:          with(func(c *Credentials) { c.Lifetime, c.SessionExpiry = 0, now.Add(-time.Second) }),
			wantUsable: false,
		},
		{
			name:        "no session key",
			c:           with(func(c *Credentials) { c.SessionKey, c.SessionExpiry = nil, now.Add(100*time.Second) }),
			wantRefresh: now.Add(80 * time.Second),
			wantUsable:  false,
		},
		{
			name:        "no DAS address",
			c:           with(func(c *Credentials) { c.DASAddress, c.SessionExpiry = "", now.Add(100*time.Second) }),
			wantRefresh: now.Add(80 * time.Second),
			wantUsable:  false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refreshAt(&tt.c, 0.8); !got.Equal(tt.wantRefresh) {
				t.Errorf("refreshAt(0.8) = %v, want %v", got, tt.wantRefresh)
			}
			if got := usable(&tt.c, now, 0.8); got != tt.wantUsable {
				t.Errorf("usable(now, 0.8) = %v, want %v", got, tt.wantUsable)
			}
		})
	}
}

func TestParseDAS(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr bool
	}{
		{addr: "mqtt://127.0.0.1:1883"},
		{addr: "mqtts://das.example.com:8883"},
		{addr: "tcp://127.0.0.1:1883", wantErr: true},
		{addr: "mqtt://127.0.0.1", wantErr: true},
		{addr: "127.0.0.1:1883", wantErr: true},
		{addr: "", wantErr: true},
	}
	for _, tt := range tests {
		if _, err := parseDAS(tt.addr); (err != nil) != tt.wantErr {
			t.Errorf("parseDAS(%q) = %v, want error %v", tt.addr, err, tt.wantErr)
		}
	}
}
