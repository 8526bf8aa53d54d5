package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// filledStore writes enough orders that the file spans many pages, closes
// it (checkpointing the WAL into the file) and returns its path.
func filledStore(t *testing.T) string {
	t.Helper()
	s, path := openTemp(t)
	reqs := make([]store.Accept, 0, 500)
	for i := range 500 {
		o := storetest.Order("o-"+strconv.Itoa(i), time.Now())
		reqs = append(reqs, store.Accept{Order: o, History: store.HistoryEntry{State: "accepted", Detail: "accepted"}})
	}
	if _, err := s.Accept(t.Context(), reqs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSQLiteExists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"a missing file is no store", filepath.Join(dir, "missing.db"), false},
		{"an empty file is no store", empty, false},
		{"a used database is a store", filledStore(t), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.SQLiteExists(tt.path)
			if err != nil || got != tt.want {
				t.Fatalf("SQLiteExists = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	t.Run("a directory in the database's place is an error", func(t *testing.T) {
		if _, err := store.SQLiteExists(dir); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestSQLiteRefusesADamagedFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"a file cut to half its size", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file whose pages were overwritten", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			junk := make([]byte, 3*4096)
			for i := range junk {
				junk[i] = byte(i * 7)
			}
			if _, err := f.WriteAt(junk, 4*4096); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file that is not a database at all", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is a backup script, not a database\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused as damaged", func(t *testing.T) {
			t.Parallel()
			path := filledStore(t)
			tt.damage(t, path)
			s, err := store.OpenSQLite(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("a damaged store opened")
			}
			if !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("err = %v, want ErrDamaged", err)
			}
		})
	}
	t.Run("a sound file opens and keeps its orders", func(t *testing.T) {
		t.Parallel()
		s, err := store.OpenSQLite(t.Context(), filledStore(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Get(t.Context(), "o-499"); err != nil {
			t.Fatal(err)
		}
	})
}
