package sql

import (
	"runtime"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

func TestPoolDefaults(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	auto := max(8, 4*procs)
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero: automatic", Options{},
			Options{MaxOpenConns: auto, MaxIdleConns: auto / 2, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute}},
		{"given", Options{MaxOpenConns: 50, MaxIdleConns: 5, ConnMaxLifetime: time.Hour, ConnMaxIdleTime: time.Minute},
			Options{MaxOpenConns: 50, MaxIdleConns: 5, ConnMaxLifetime: time.Hour, ConnMaxIdleTime: time.Minute}},
		{"idle capped at open", Options{MaxOpenConns: 3, MaxIdleConns: 10},
			Options{MaxOpenConns: 3, MaxIdleConns: 3, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute}},
		{"idle half of a given open limit", Options{MaxOpenConns: 40},
			Options{MaxOpenConns: 40, MaxIdleConns: 20, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute}},
		{"idle at most open", Options{MaxOpenConns: 1},
			Options{MaxOpenConns: 1, MaxIdleConns: 1, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute}},
		{"negative durations: no limit", Options{MaxOpenConns: 4, ConnMaxLifetime: -1, ConnMaxIdleTime: -time.Second},
			Options{MaxOpenConns: 4, MaxIdleConns: 2, ConnMaxLifetime: 0, ConnMaxIdleTime: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.pool()
			if got.MaxOpenConns != tt.want.MaxOpenConns || got.MaxIdleConns != tt.want.MaxIdleConns ||
				got.ConnMaxLifetime != tt.want.ConnMaxLifetime || got.ConnMaxIdleTime != tt.want.ConnMaxIdleTime {
				t.Errorf("pool(): got open %d idle %d lifetime %s idle time %s, want open %d idle %d lifetime %s idle time %s",
					got.MaxOpenConns, got.MaxIdleConns, got.ConnMaxLifetime, got.ConnMaxIdleTime,
					tt.want.MaxOpenConns, tt.want.MaxIdleConns, tt.want.ConnMaxLifetime, tt.want.ConnMaxIdleTime)
			}
		})
	}
}

// The limit reaches PostgreSQL's pool: database/sql reports it.
func TestPoolLimitApplied(t *testing.T) {
	url := sqltest.Postgres(t)
	for _, tt := range []struct {
		open, want int
	}{
		{0, DefaultMaxOpenConns()},
		{3, 3},
	} {
		s, err := Open(t.Context(), Options{URL: url, MaxOpenConns: tt.open})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got := s.sqlDB.Stats().MaxOpenConnections; got != tt.want {
			t.Errorf("MaxOpenConnections with max_open_conns %d: got %d, want %d", tt.open, got, tt.want)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
