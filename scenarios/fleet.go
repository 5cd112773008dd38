package scenarios

import (
	"path/filepath"

	// The simulator registers its fleet drivers, which fleet.driver is checked against.
	_ "github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// DefaultDriver is the fleet driver of a scenario that names none.
const DefaultDriver = "inproc"

// DefaultTraffic names the simulator's embedded traffic-pattern map.
const DefaultTraffic = "default"

// FleetDrivers lists the fleet drivers a scenario may name.
func FleetDrivers() []string { return driver.Names() }

// CheckTraffic checks that a traffic-pattern map (the default, or a file relative to dir) exists
// and is valid.
func CheckTraffic(name, dir string) error {
	if name == "" || name == DefaultTraffic {
		return nil
	}
	_, err := trafficmap.Load(TrafficPath(name, dir), stage.Default())
	return err
}

// TrafficPath is the file of a traffic-pattern map named in a scenario whose relative paths are
// resolved against dir.
func TrafficPath(name, dir string) string {
	if dir != "" && !filepath.IsAbs(name) {
		return filepath.Join(dir, name)
	}
	return name
}
