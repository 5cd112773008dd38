package main

import "github.com/dsnscale/dsnscale/loadgen/loadcli"

func init() {
	register("load", "northbound load against a control plane (load --target URL --rate 2000/s --duration 30s --mix NAME|FILE)", loadcli.Run)
}
