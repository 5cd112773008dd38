//go:build race

package distrib_test

const raceEnabled = true
