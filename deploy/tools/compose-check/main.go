// compose-check validates a docker-compose file the way `docker compose
// config` does, without a Docker engine: it loads the file with
// compose-go (the library Docker Compose itself uses), which checks it
// against the Compose Specification's JSON schema, interpolates variables,
// resolves profiles and checks references (depends_on, networks, volumes).
//
//	go run . [-profile full]... docker-compose.yml
//	go run . -commands-of quickstore docker-compose.yml
//
// Prints the normalized model's services per profile (or, with
// -commands-of, each matching service's command as JSON) and exits
// non-zero with the loader's message on any error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type profiles []string

func (p *profiles) String() string     { return strings.Join(*p, ",") }
func (p *profiles) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var active profiles
	flag.Var(&active, "profile", "activate a profile (repeatable)")
	commandsOf := flag.String("commands-of", "", "print only the command (JSON) of every service whose image starts with this")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-profile P]... FILE")
		os.Exit(2)
	}
	file, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithName("quickstore"),
		cli.WithProfiles(active),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	if *commandsOf != "" {
		for name, svc := range project.Services {
			if strings.HasPrefix(svc.Image, *commandsOf) {
				cmd, _ := json.Marshal([]string(svc.Command))
				fmt.Printf("%s\t%s\n", name, cmd)
			}
		}
		return
	}
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Printf("profiles [%s]: %d services\n", active.String(), len(names))
	for _, name := range names {
		svc := project.Services[name]
		deps := make([]string, 0, len(svc.DependsOn))
		for dep, cfg := range svc.DependsOn {
			deps = append(deps, dep+":"+cfg.Condition)
		}
		sort.Strings(deps)
		health := "-"
		if svc.HealthCheck != nil && !svc.HealthCheck.Disable {
			health = "healthcheck"
		}
		fmt.Printf("  %s\t%s\t%s\tdepends_on=[%s]\n", name, svc.Image, health, strings.Join(deps, " "))
	}
}
