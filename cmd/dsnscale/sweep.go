package main

import "github.com/dsnscale/dsnscale/sweeps/sweepcli"

func init() {
	register("sweep", "run a scenario from small to full scale and answer its capacity (sweep FILE|NAME|SCENARIO --axis dsns=500,1000 [--repeat N] [--until-fail] [--plan])", sweepcli.Run)
}
