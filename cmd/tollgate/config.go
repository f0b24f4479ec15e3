package main

import (
	"fmt"

	"github.com/tollgate/tollgate/config"
)

// loadConfig reads and validates the configuration.
func loadConfig(path string, e env) (config.Config, error) {
	cfg, err := config.Load(path, e.lookupEnv)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}
