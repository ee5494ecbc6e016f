package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/pressly/goose/v3"
)

// constraintMigration is migration 13, in Go for both engines: licence
// rule constraints were stored as a flat list of filters
// ([{"Type","Operator","Value"}]); they become one constraint per entity
// type with its conditions ([{"Type","AllowAll","Conditions":[…]}]), the
// shape of AppDynamics' constraints (API.md §3). The rules' meaning is
// kept: filters of a type become that type's conditions, in order.
func constraintMigration(d Dialect) *goose.Migration {
	return goose.NewGoMigration(13, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		return convertConstraints(ctx, tx, d)
	}}, nil)
}

type flatFilterJSON struct {
	Type, Operator, Value string
}

// upgradeConstraints converts one stored value; ok false when it is in the
// new shape already (or empty).
func upgradeConstraints(raw string) (string, bool, error) {
	var probe []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &probe); err != nil {
		return "", false, fmt.Errorf("stored constraints are not a JSON array: %w", err)
	}
	if len(probe) == 0 {
		return "", false, nil
	}
	if _, flat := probe[0]["Operator"]; !flat {
		return "", false, nil
	}
	var old []flatFilterJSON
	if err := json.Unmarshal([]byte(raw), &old); err != nil {
		return "", false, fmt.Errorf("stored constraints: %w", err)
	}
	var out []constraintJSON
	index := map[string]int{}
	for _, f := range old {
		i, ok := index[f.Type]
		if !ok {
			i = len(out)
			index[f.Type] = i
			out = append(out, constraintJSON{Type: f.Type, Conditions: []conditionJSON{}})
		}
		out[i].Conditions = append(out[i].Conditions, conditionJSON{Operator: f.Operator, Value: f.Value})
	}
	b, err := json.Marshal(out)
	return string(b), true, err
}

func convertConstraints(ctx context.Context, tx *sql.Tx, d Dialect) error {
	ph := func(n int) string {
		if d == Postgres {
			return fmt.Sprintf("$%d", n)
		}
		return "?"
	}
	for _, t := range []struct{ table, key, extra string }{
		{"license_rules", "id", ""},
		{"license_rule_versions", "rule_id", "version"},
	} {
		cols := t.key
		if t.extra != "" {
			cols += ", " + t.extra
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+cols+", constraints FROM "+t.table)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		type change struct {
			key     string
			version int64
			value   string
		}
		var changes []change
		for rows.Next() {
			var c change
			var raw string
			dst := []any{&c.key}
			if t.extra != "" {
				dst = append(dst, &c.version)
			}
			if err := rows.Scan(append(dst, &raw)...); err != nil {
				_ = rows.Close()
				return fmt.Errorf("read %s: %w", t.table, err)
			}
			v, ok, err := upgradeConstraints(raw)
			if err != nil {
				_ = rows.Close()
				return fmt.Errorf("%s %s: %w", t.table, c.key, err)
			}
			if ok {
				c.value = v
				changes = append(changes, c)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		for _, c := range changes {
			q := "UPDATE " + t.table + " SET constraints = " + ph(1) + " WHERE " + t.key + " = " + ph(2)
			args := []any{c.value, c.key}
			if t.extra != "" {
				q += " AND " + t.extra + " = " + ph(3)
				args = append(args, c.version)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("convert %s %s: %w", t.table, c.key, err)
			}
		}
	}
	return nil
}
