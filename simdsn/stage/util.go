package stage

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

type errList struct{ errs []error }

func (l *errList) add(err error) { l.errs = append(l.errs, err) }

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(l.errs...))
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func joinNames(names []string) string { return strings.Join(names, ", ") }
