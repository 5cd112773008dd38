package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// cache keeps each DSN's last applied config across restarts of the DSN (static stability).
type cache interface {
	Load(id string) (applied, bool)
	Store(id string, a applied)
	Delete(id string)
	Close() error
}

// memCache is the in-process cache: a DSN "restarts" inside the harness, so its cache is a map.
type memCache struct {
	mu sync.Mutex
	m  map[string]applied
}

func newMemCache() *memCache { return &memCache{m: map[string]applied{}} }

func (c *memCache) Load(id string) (applied, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[id]
	return a, ok
}

func (c *memCache) Store(id string, a applied) {
	c.mu.Lock()
	c.m[id] = a
	c.mu.Unlock()
}

func (c *memCache) Delete(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func (c *memCache) Close() error { return nil }

// fileCache keeps a small file per DSN ("<revision> <object-set key>") and one file per object
// set, written in the background; the latest write per DSN wins.
type fileCache struct {
	dir  string
	cfgs *configs
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]*applied // nil value: delete
	written map[string]bool     // object-set files on disk
	notify  chan struct{}
	done    chan struct{}
	closed  bool
}

func newFileCache(dir string, cfgs *configs, log *slog.Logger) (*fileCache, error) {
	for _, sub := range []string{"dsn", "objects"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("engine: cache directory: %w", err)
		}
	}
	c := &fileCache{dir: dir, cfgs: cfgs, log: log, pending: map[string]*applied{}, written: map[string]bool{},
		notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.writer()
	return c, nil
}

func (c *fileCache) Load(id string) (applied, bool) {
	c.mu.Lock()
	p, pend := c.pending[id]
	c.mu.Unlock()
	if pend {
		if p == nil {
			return applied{}, false
		}
		return *p, true
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "dsn", id))
	if err != nil {
		return applied{}, false
	}
	revStr, key, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	rev, err := strconv.ParseUint(revStr, 10, 64)
	if !ok || err != nil || strings.ContainsAny(key, "/\\.") {
		c.log.Warn("unreadable cache file", "dsn", id)
		return applied{}, false
	}
	c.cfgs.mu.Lock()
	s, interned := c.cfgs.byKey[key]
	c.cfgs.mu.Unlock()
	if !interned {
		data, err := os.ReadFile(filepath.Join(c.dir, "objects", key+".json"))
		if err != nil {
			c.log.Warn("cache file names missing objects", "dsn", id, "key", key)
			return applied{}, false
		}
		var objs []model.Object
		if err := json.Unmarshal(data, &objs); err != nil {
			c.log.Warn("unreadable cached objects", "key", key, "err", err)
			return applied{}, false
		}
		s = c.cfgs.setFromObjects(key, objs, rev)
	}
	return applied{rev: rev, objs: s}, true
}

func (c *fileCache) Store(id string, a applied) {
	c.mu.Lock()
	c.pending[id] = &a
	c.mu.Unlock()
	c.kick()
}

func (c *fileCache) Delete(id string) {
	c.mu.Lock()
	c.pending[id] = nil
	c.mu.Unlock()
	c.kick()
}

func (c *fileCache) kick() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *fileCache) writer() {
	defer close(c.done)
	for range c.notify {
		c.flush()
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
	}
}

func (c *fileCache) flush() {
	c.mu.Lock()
	batch := c.pending
	c.pending = map[string]*applied{}
	c.mu.Unlock()
	for id, a := range batch {
		path := filepath.Join(c.dir, "dsn", id)
		if a == nil {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("cache delete", "dsn", id, "err", err)
			}
			continue
		}
		if err := c.writeObjects(a.objs); err != nil {
			c.log.Warn("cache write", "dsn", id, "err", err)
			continue
		}
		if err := writeAtomic(path, []byte(strconv.FormatUint(a.rev, 10)+" "+a.objs.key+"\n")); err != nil {
			c.log.Warn("cache write", "dsn", id, "err", err)
		}
	}
}

func (c *fileCache) writeObjects(s *objectSet) error {
	if c.written[s.key] {
		return nil
	}
	path := filepath.Join(c.dir, "objects", s.key+".json")
	if _, err := os.Stat(path); err != nil {
		objs := make([]model.Object, len(s.list))
		for i, o := range s.list {
			objs[i] = *o
		}
		data, err := json.Marshal(objs)
		if err != nil {
			return err
		}
		if err := writeAtomic(path, data); err != nil {
			return err
		}
	}
	c.written[s.key] = true
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Close writes what is pending and stops the writer.
func (c *fileCache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.kick()
	<-c.done
	c.flush()
	return nil
}
