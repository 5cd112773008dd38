package distrib

import "errors"

// Sentinel errors.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("distrib: invalid config")
	// ErrNotReady is returned by queries before Run has loaded the registry and the store.
	ErrNotReady = errors.New("distrib: not ready")
)
