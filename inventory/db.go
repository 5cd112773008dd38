package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// DB is the inventory in an SQL database (SQLite or PostgreSQL).
type DB struct {
	db     *sql.DB
	d      dialect
	where  string
	now    func() time.Time
	closed atomic.Bool
}

var _ Inventory = (*DB)(nil)

// inChunk bounds the IDs in one IN (...) list, well below every driver's parameter limit.
const inChunk = 500

func (s *DB) q(query string) string { return s.d.rebind(query) }

func (s *DB) fail(what string, err error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %s: %s: %w", ErrBackend, s.where, what, err)
}

// Dialect names the SQL database: "sqlite" or "postgres".
func (s *DB) Dialect() string { return s.d.name }

// SchemaVersion returns the highest migration applied to the database.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.fail("schema version", err)
	}
	return int(v.Int64), nil
}

// UpsertDSN implements Inventory.
func (s *DB) UpsertDSN(ctx context.Context, rec DSNRecord) error { return s.UpsertDSNs(ctx, rec) }

// UpsertDSNs implements Inventory.
func (s *DB) UpsertDSNs(ctx context.Context, recs ...DSNRecord) (err error) {
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if seen[r.ID] {
			return fmt.Errorf("%w: record %d: dsn %s appears twice in one batch", ErrInvalid, i, r.ID)
		}
		seen[r.ID] = true
	}
	if len(recs) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	oldVersion, err := s.versions(ctx, tx, ids)
	if err != nil {
		return err
	}
	oldLabels, err := s.labels(ctx, tx, ids)
	if err != nil {
		return err
	}
	if err := s.upsertRows(ctx, tx, recs, now); err != nil {
		return err
	}
	// Versions new or changed, and label sets to replace, collected for a few multi-row
	// statements rather than one round trip per DSN.
	var versionRows, labelRows [][]any
	var relabel []string
	for _, r := range recs {
		old, existed := oldVersion[r.ID]
		if r.SoftwareVersion != "" && (!existed || old != r.SoftwareVersion) {
			at := r.LastSeen
			if at.IsZero() {
				at = now
			}
			versionRows = append(versionRows, []any{r.ID, r.SoftwareVersion, at.UnixNano()})
		}
		if existed && maps.Equal(oldLabels[r.ID], r.Labels) {
			continue
		}
		if existed {
			relabel = append(relabel, r.ID)
		}
		for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
			labelRows = append(labelRows, []any{r.ID, k, r.Labels[k]})
		}
	}
	for chunk := range slices.Chunk(relabel, inChunk) {
		ph, args := inList(chunk)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM dsn_labels WHERE dsn_id IN (`+ph+`)`), args...); err != nil {
			return s.fail("replace labels", err)
		}
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO dsn_labels (dsn_id, key, value) VALUES `, "", labelRows); err != nil {
		return s.fail("insert labels", err)
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO dsn_versions (dsn_id, software_version, at_ns) VALUES `, "", versionRows); err != nil {
		return s.fail("record versions", err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("commit", err)
	}
	return nil
}

// upsertRows writes the dsns rows of recs with multi-row upserts.
func (s *DB) upsertRows(ctx context.Context, tx *sql.Tx, recs []DSNRecord, now time.Time) error {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		rows[i] = []any{r.ID, r.SoftwareVersion, r.Site, r.Rack, r.State, int64(r.AppliedRevision),
			nullTime(r.LastSeen), now.UnixNano(), now.UnixNano()}
	}
	err := s.insertRows(ctx, tx, `INSERT INTO dsns
		(id, software_version, site, rack, state, applied_revision, last_seen_ns, created_ns, updated_ns) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET software_version = excluded.software_version, site = excluded.site,
			rack = excluded.rack, state = excluded.state, applied_revision = excluded.applied_revision,
			last_seen_ns = excluded.last_seen_ns, updated_ns = excluded.updated_ns`, rows)
	if err != nil {
		return s.fail("upsert dsns", err)
	}
	return nil
}

// rowsPerInsert bounds the rows of one multi-row INSERT (9 columns at most: 900 parameters).
const rowsPerInsert = 100

// insertRows runs prefix (...), (...) suffix for rows. PostgreSQL gets rowsPerInsert rows per
// statement, saving round trips; SQLite, in process, runs one prepared single-row statement per
// row, which it compiles once.
func (s *DB) insertRows(ctx context.Context, tx *sql.Tx, prefix, suffix string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if !s.d.dollar {
		stmt, err := tx.PrepareContext(ctx, prefix+"("+strings.TrimSuffix(strings.Repeat("?,", len(rows[0])), ",")+")"+suffix)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.ExecContext(ctx, r...); err != nil {
				return err
			}
		}
		return nil
	}
	for chunk := range slices.Chunk(rows, rowsPerInsert) {
		one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(chunk[0])), ",") + ")"
		values := strings.TrimSuffix(strings.Repeat(one+",", len(chunk)), ",")
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, s.q(prefix+values+suffix), args...); err != nil {
			return err
		}
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// inList renders n placeholders for an IN list and the args.
func inList(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(ids)), ","), args
}

// versions returns the stored software version of each of ids that exists.
func (s *DB) versions(ctx context.Context, q querier, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, inChunk) {
		ph, args := inList(chunk)
		rows, err := q.QueryContext(ctx, s.q(`SELECT id, software_version FROM dsns WHERE id IN (`+ph+`)`), args...)
		if err != nil {
			return nil, s.fail("read versions", err)
		}
		for rows.Next() {
			var id, v string
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, s.fail("read versions", err)
			}
			out[id] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.fail("read versions", err)
		}
	}
	return out, nil
}

// labels returns the labels of each of ids that has any.
func (s *DB) labels(ctx context.Context, q querier, ids []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, inChunk) {
		ph, args := inList(chunk)
		rows, err := q.QueryContext(ctx, s.q(`SELECT dsn_id, key, value FROM dsn_labels WHERE dsn_id IN (`+ph+`)`), args...)
		if err != nil {
			return nil, s.fail("read labels", err)
		}
		for rows.Next() {
			var id, k, v string
			if err := rows.Scan(&id, &k, &v); err != nil {
				rows.Close()
				return nil, s.fail("read labels", err)
			}
			if out[id] == nil {
				out[id] = map[string]string{}
			}
			out[id][k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.fail("read labels", err)
		}
	}
	return out, nil
}

const dsnColumns = `id, software_version, site, rack, state, applied_revision, last_seen_ns, created_ns, updated_ns`

func scanDSN(rows interface{ Scan(...any) error }) (DSNRecord, error) {
	var (
		r        DSNRecord
		rev      int64
		lastSeen sql.NullInt64
		created  int64
		updated  int64
	)
	if err := rows.Scan(&r.ID, &r.SoftwareVersion, &r.Site, &r.Rack, &r.State, &rev, &lastSeen, &created, &updated); err != nil {
		return DSNRecord{}, err
	}
	r.AppliedRevision = uint64(rev)
	if lastSeen.Valid {
		r.LastSeen = time.Unix(0, lastSeen.Int64).UTC()
	}
	r.CreatedAt = time.Unix(0, created).UTC()
	r.UpdatedAt = time.Unix(0, updated).UTC()
	return r, nil
}

// GetDSN implements Inventory.
func (s *DB) GetDSN(ctx context.Context, id string) (DSNRecord, error) {
	if !wire.ValidID(id) {
		return DSNRecord{}, fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, id)
	}
	if s.closed.Load() {
		return DSNRecord{}, ErrClosed
	}
	r, err := scanDSN(s.db.QueryRowContext(ctx, s.q(`SELECT `+dsnColumns+` FROM dsns WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return DSNRecord{}, fmt.Errorf("%w: dsn %s", ErrNotFound, id)
	}
	if err != nil {
		return DSNRecord{}, s.fail("get dsn "+id, err)
	}
	ls, err := s.labels(ctx, s.db, []string{id})
	if err != nil {
		return DSNRecord{}, err
	}
	r.Labels = ls[id]
	return r, nil
}

// ListDSNs implements Inventory.
func (s *DB) ListDSNs(ctx context.Context, f Filter) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	if s.closed.Load() {
		return Page{}, ErrClosed
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.After != "" {
		add("d.id > ?", f.After)
	}
	if f.State != "" {
		add("d.state = ?", f.State)
	}
	if f.Site != "" {
		add("d.site = ?", f.Site)
	}
	if f.SoftwareVersion != "" {
		add("d.software_version = ?", f.SoftwareVersion)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		add("EXISTS (SELECT 1 FROM dsn_labels l WHERE l.dsn_id = d.id AND l.key = ? AND l.value = ?)", k, f.Labels[k])
	}
	query := `SELECT ` + strings.ReplaceAll("d."+dsnColumns, ", ", ", d.") + ` FROM dsns d`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than the page tells whether there is a next page.
	query += " ORDER BY d.id LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return Page{}, s.fail("list dsns", err)
	}
	var page Page
	for rows.Next() {
		r, err := scanDSN(rows)
		if err != nil {
			rows.Close()
			return Page{}, s.fail("list dsns", err)
		}
		page.DSNs = append(page.DSNs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Page{}, s.fail("list dsns", err)
	}
	if len(page.DSNs) > limit {
		page.DSNs = page.DSNs[:limit]
		page.Next = page.DSNs[limit-1].ID
	}
	ids := make([]string, len(page.DSNs))
	for i, r := range page.DSNs {
		ids[i] = r.ID
	}
	ls, err := s.labels(ctx, s.db, ids)
	if err != nil {
		return Page{}, err
	}
	for i := range page.DSNs {
		page.DSNs[i].Labels = ls[page.DSNs[i].ID]
	}
	return page, nil
}

// Summarize implements Inventory.
func (s *DB) Summarize(ctx context.Context) (Summary, error) {
	if s.closed.Load() {
		return Summary{}, ErrClosed
	}
	sum := Summary{ByState: map[string]int{}, BySoftwareVersion: map[string]int{}}
	for _, g := range []struct {
		col string
		m   map[string]int
	}{{"state", sum.ByState}, {"software_version", sum.BySoftwareVersion}} {
		rows, err := s.db.QueryContext(ctx, `SELECT `+g.col+`, COUNT(*) FROM dsns GROUP BY `+g.col)
		if err != nil {
			return Summary{}, s.fail("summarize", err)
		}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return Summary{}, s.fail("summarize", err)
			}
			g.m[k] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Summary{}, s.fail("summarize", err)
		}
	}
	for _, n := range sum.ByState {
		sum.Total += n
	}
	return sum, nil
}

// DeleteDSN implements Inventory.
func (s *DB) DeleteDSN(ctx context.Context, id string) (err error) {
	if !wire.ValidID(id) {
		return fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, id)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM dsns WHERE id = ?`), id)
	if err != nil {
		return s.fail("delete dsn "+id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail("delete dsn "+id, err)
	} else if n == 0 {
		return fmt.Errorf("%w: dsn %s", ErrNotFound, id)
	}
	// Labels and versions go with the row (ON DELETE CASCADE); admissions have no foreign key.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM admissions WHERE dsn_id = ?`), id); err != nil {
		return s.fail("delete admissions of "+id, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("commit", err)
	}
	return nil
}

// RecordAdmission implements Inventory.
func (s *DB) RecordAdmission(ctx context.Context, id string, at time.Time, outcome string) error {
	switch {
	case !wire.ValidID(id):
		return fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, id)
	case at.IsZero() || at.Before(time.Unix(0, 0)):
		return fmt.Errorf("%w: admission of %s: time %v: want a time after 1970", ErrInvalid, id, at)
	case !outcomePattern.MatchString(outcome):
		return fmt.Errorf("%w: admission of %s: outcome %q: want [a-z][a-z0-9_-]{0,31}", ErrInvalid, id, outcome)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("begin", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO admissions (dsn_id, at_ns, outcome) VALUES (?, ?, ?)`), id, at.UnixNano(), outcome); err != nil {
		_ = tx.Rollback()
		return s.fail("record admission of "+id, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("commit", err)
	}
	return nil
}

// AdmissionHistory implements Inventory.
func (s *DB) AdmissionHistory(ctx context.Context, id string, limit int) ([]Admission, error) {
	if !wire.ValidID(id) {
		return nil, fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, id)
	}
	if limit < 0 || limit > MaxPageSize {
		return nil, fmt.Errorf("%w: admission history limit %d: want 0..%d", ErrInvalid, limit, MaxPageSize)
	}
	if limit == 0 {
		limit = DefaultHistory
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at_ns, outcome FROM admissions WHERE dsn_id = ?
		ORDER BY at_ns DESC, seq DESC LIMIT ?`), id, limit)
	if err != nil {
		return nil, s.fail("admission history of "+id, err)
	}
	defer rows.Close()
	var out []Admission
	for rows.Next() {
		var ns int64
		a := Admission{DSN: id}
		if err := rows.Scan(&ns, &a.Outcome); err != nil {
			return nil, s.fail("admission history of "+id, err)
		}
		a.At = time.Unix(0, ns).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("admission history of "+id, err)
	}
	slices.Reverse(out)
	return out, nil
}

// VersionHistory implements Inventory.
func (s *DB) VersionHistory(ctx context.Context, id string) ([]VersionChange, error) {
	if !wire.ValidID(id) {
		return nil, fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, id)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT software_version, at_ns FROM dsn_versions WHERE dsn_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, s.fail("version history of "+id, err)
	}
	defer rows.Close()
	var out []VersionChange
	for rows.Next() {
		var ns int64
		v := VersionChange{DSN: id}
		if err := rows.Scan(&v.SoftwareVersion, &ns); err != nil {
			return nil, s.fail("version history of "+id, err)
		}
		v.At = time.Unix(0, ns).UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("version history of "+id, err)
	}
	return out, nil
}

// PruneAdmissions implements Inventory.
func (s *DB) PruneAdmissions(ctx context.Context, before time.Time) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.fail("begin", err)
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM admissions WHERE at_ns < ?`), before.UnixNano())
	if err != nil {
		_ = tx.Rollback()
		return 0, s.fail("prune admissions", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, s.fail("commit", err)
	}
	return n, nil
}

// Close closes the database.
func (s *DB) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%w: %s: close: %w", ErrBackend, s.where, err)
	}
	return nil
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}
