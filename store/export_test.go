package store

// CommitCounts exposes the committer's counters to the external tests:
// committed transactions and the write requests they carried.
func CommitCounts(s *SQLite) (commits, writes int64) {
	return s.commits.Load(), s.writes.Load()
}
